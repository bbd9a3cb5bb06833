"""A tiny Qt-free signal: the model's change events.

Views connect plain callables; the Qt layer re-emits into Qt signals where it
needs queued delivery. Kept deliberately small (see napari's EventedModel for
the idea, without its weight).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Signal:
    """Callbacks called in connection order with the emitted arguments."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []
        self._blocked = 0

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        """Connect ``slot``; returns it so this can be used as a decorator."""
        if slot not in self._slots:
            self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable[..., Any]) -> None:
        """Disconnect ``slot`` if connected."""
        if slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        """Call every connected slot, unless blocked."""
        if self._blocked:
            return
        for slot in list(self._slots):
            slot(*args)

    @contextmanager
    def blocked(self) -> Iterator[None]:
        """Suppress emission inside the block (avoids echo loops when a view writes back)."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1
