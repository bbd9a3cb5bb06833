"""Errors that carry *where* and *why*, so a user can fix the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a layout: a JSON path (``$.components[3].mesh``) and a reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class LayoutError(Exception):
    """A layout file that cannot be used; ``problems`` lists each fault with its JSON path."""

    def __init__(self, source: Path | str | None, problems: list[Problem]) -> None:
        self.source = Path(source) if source is not None else None
        self.problems = list(problems)
        where = str(self.source) if self.source else "layout"
        lines = [f"{where}: {len(self.problems)} problem(s)"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class MeshError(Exception):
    """A mesh file that is missing, unreadable, outside the layout folder, or over the size limit."""


class Cancelled(Exception):  # noqa: N818 - reads as "the work was Cancelled"
    """Raised inside long work when the user pressed Cancel."""
