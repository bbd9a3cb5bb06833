"""The third-party components the viewer runs on, with their versions and licences (Help > About).

From a source install they are read from the installed packages' metadata (everything ``twin-viewer``
requires, followed through their own requirements). The bundle has no package metadata, so ``make
package`` writes the same list, and the licence texts, into the bundle's ``third_party/`` folder with
``python -m viewer.licences --out DIR``, and the bundled app reads that.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

BUNDLED_FILE = "third_party/licences.json"
# Parts inside the wheels that carry no metadata of their own.
NATIVE_PARTS = (
    ("Python", f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}", "PSF-2.0",
     "the interpreter (bundled)"),
    ("Qt", "", "LGPL-3.0-only", "inside PySide6; shared libraries, replaceable by the user"),
    ("ICU", "", "Unicode-3.0", "inside PySide6 (Qt's text support)"),
    ("OpenBLAS", "", "BSD-3-Clause", "inside numpy"),
)


@dataclass(frozen=True)
class Component:
    """One third-party component."""

    name: str
    version: str
    licence: str
    note: str = ""


def _licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (meta.get("License") or "").strip()
    if text and len(text) <= 80 and "\n" not in text:  # a name; some packages paste the whole text here
        return text
    return ", ".join(classifiers) or "see its licence file"


def _requirement_name(requirement: str) -> str | None:
    """The distribution a requirement names, or None for one that only applies with an extra."""
    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else None


def runtime_distributions(root: str = "twin-viewer") -> list[metadata.Distribution]:
    """The installed distributions ``root`` needs at run time (its extras and test tools not included)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform
        seen[key] = dist
        todo += [n for n in (_requirement_name(r) for r in dist.requires or []) if n]
    seen.pop("twin-viewer", None)
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def components() -> list[Component]:
    """What the About box lists: the bundled list when frozen, else the installed packages."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        path = Path(frozen) / BUNDLED_FILE
        try:
            return [Component(**item) for item in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError):
            return [Component("(list missing)", "", "", f"{path} could not be read")]
    return _listed(runtime_distributions())


def _listed(dists: list[metadata.Distribution]) -> list[Component]:
    found = [Component(d.metadata["Name"], d.version, _licence_of(d)) for d in dists]
    qt = next((d.version for d in dists if d.metadata["Name"].lower().startswith("pyside6")), "")
    return found + [Component(name, qt if name == "Qt" else version, licence, note)
                    for name, version, licence, note in NATIVE_PARTS]


def licence_texts(dists: list[metadata.Distribution]) -> str:
    """All licence files of ``dists``, one after another (what the bundle's THIRD_PARTY_LICENSES.txt holds)."""
    parts = []
    for dist in dists:
        files = [f for f in dist.files or [] if re.search(r"(LICEN[CS]E|COPYING|NOTICE)", f.name, re.IGNORECASE)
                 and ".dist-info" in str(f)]
        for f in files:
            try:
                text = Path(dist.locate_file(f)).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            parts.append(f"{'=' * 78}\n{dist.metadata['Name']} {dist.version}: {f.name}\n{'=' * 78}\n{text.strip()}\n")
    return "\n".join(parts)


def _section(title: str, text: str) -> str:
    return f"{'=' * 78}\n{title}\n{'=' * 78}\n{text.strip()}\n"


def write_bundle_files(out: Path, extra: Sequence[tuple[str, Path]] = ()) -> Path:
    """Write licences.json and THIRD_PARTY_LICENSES.txt for the bundle into ``out``; ``extra`` adds licence
    texts the wheels do not carry as files (title, file): Qt's LGPL, for one. Python's own licence is added
    from the interpreter's library folder."""
    dists = runtime_distributions()
    if not dists:
        raise RuntimeError("twin-viewer is not installed in this environment: no dependencies to list")
    out.mkdir(parents=True, exist_ok=True)
    listed = _listed(dists)
    (out / "licences.json").write_text(json.dumps([asdict(c) for c in listed], indent=1), encoding="utf-8")
    parts = [licence_texts(dists)]
    python_licence = Path(sysconfig.get_path("stdlib")) / "LICENSE.txt"
    if python_licence.exists():
        parts.append(_section(f"Python {platform.python_version()}: LICENSE.txt", python_licence.read_text()))
    parts += [_section(title, path.read_text(encoding="utf-8")) for title, path in extra]
    (out / "THIRD_PARTY_LICENSES.txt").write_text("\n".join(parts), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the third-party licence list for the bundle")
    parser.add_argument("--out", type=Path, required=True, help="folder (the bundle's third_party/)")
    parser.add_argument("--extra", action="append", default=[], metavar="TITLE=FILE",
                        help="a licence text to add (repeatable)")
    args = parser.parse_args(argv)
    extra = []
    for item in args.extra:
        title, _, path = item.partition("=")
        extra.append((title, Path(path)))
    out = write_bundle_files(args.out, extra)
    print(f"wrote {out / 'licences.json'} and {out / 'THIRD_PARTY_LICENSES.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
