"""Adds the system libraries PyInstaller copied into the bundle to its licence list (make package).

PyInstaller takes some shared libraries from the build machine (glib, xcb, OpenSSL, ...). On Debian each
belongs to a package whose copyright file states its licence: this finds the package of every such library
in the bundle's top folder, lists it in ``third_party/licences.json`` and appends the copyright files to
``THIRD_PARTY_LICENSES.txt``. Without dpkg (another build system) it says so and lists the file names only.

    python packaging/system_licences.py build/dist/twin-viewer/_internal
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path


def package_of(library: str) -> tuple[str, str] | None:
    """(Debian package, version) that installed ``library`` on this machine, or None."""
    found = subprocess.run(["dpkg", "-S", f"*/{library}"], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout:
        return None
    package = found.stdout.splitlines()[0].split(":")[0]
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return package, version.stdout.strip()


def main(internal: Path) -> int:
    third = internal / "third_party"
    libraries = sorted(p.name for p in internal.iterdir()
                       if p.is_file() and not p.is_symlink() and p.name.startswith("lib") and ".so" in p.name
                       and not p.name.startswith("libpython"))  # Python is listed with its own licence
    listed = json.loads((third / "licences.json").read_text(encoding="utf-8"))
    texts = []
    have_dpkg = shutil.which("dpkg") is not None
    packages: dict[str, list[str]] = {}
    for library in libraries:
        owner = package_of(library) if have_dpkg else None
        if owner is None:
            listed.append({"name": library, "version": "", "licence": "see its project",
                           "note": "system library copied from the build machine"})
            continue
        packages.setdefault(f"{owner[0]} {owner[1]}", []).append(library)
    for package, libs in sorted(packages.items()):
        name, version = package.split(" ", 1)
        listed.append({"name": name, "version": version, "licence": "see THIRD_PARTY_LICENSES.txt",
                       "note": f"system library from Debian: {', '.join(libs)}"})
        copyright_file = Path("/usr/share/doc") / name / "copyright"
        if copyright_file.exists():
            text = copyright_file.read_text(encoding="utf-8", errors="replace").strip()
            texts.append(f"{'=' * 78}\n{name} {version} (Debian; {', '.join(libs)}): copyright\n{'=' * 78}\n{text}\n")
    (third / "licences.json").write_text(json.dumps(listed, indent=1), encoding="utf-8")
    with (third / "THIRD_PARTY_LICENSES.txt").open("a", encoding="utf-8") as handle:
        handle.write("\n" + "\n".join(texts))
    where = "Debian packages" if have_dpkg else "file names only (no dpkg here)"
    print(f"listed {len(libraries)} system libraries ({len(packages)} {where})")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
