"""Build the compiled simulation kernel (viewer/sim/_kernel.pyx) in place: Cython to C++, then the C++ compiler.

    python packaging/build_kernel.py [--force]

Run by the bootstrap (``make setup``) when the extension is missing or older than its source. Needs Cython
(the project's ``build`` extra) and a C++ compiler with the Python headers; without them the viewer runs the
pure-Python reference kernel (viewer.sim.engine), which gives the same figures, only slower.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "viewer" / "sim" / "_kernel.pyx"


def built() -> Path | None:
    found = sorted(SOURCE.parent.glob("_kernel.*.so")) + sorted(SOURCE.parent.glob("_kernel.*.pyd"))
    return found[0] if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args()
    existing = built()
    if existing is not None and not args.force and existing.stat().st_mtime >= SOURCE.stat().st_mtime:
        return 0
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
        from setuptools.dist import Distribution
    except ImportError as exc:
        print(f"build_kernel: {exc}: install Cython (pip install -e '.[build]')", file=sys.stderr)
        return 1
    os.chdir(ROOT)  # relative paths below: the objects land in build/kernel-obj/viewer/sim, not under a copy of ROOT
    ext = Extension("viewer.sim._kernel", ["viewer/sim/_kernel.pyx"], language="c++",
                    extra_compile_args=["-O2", "-g0"], extra_link_args=["-s"])
    try:
        modules = cythonize([ext], quiet=True, build_dir="build/kernel")
        dist = Distribution({"name": "twin-viewer-kernel", "ext_modules": modules})
        cmd = dist.get_command_obj("build_ext")
        cmd.inplace = True
        cmd.force = True  # only called when out of date: compile and link afresh
        cmd.build_temp = "build/kernel-obj"
        dist.run_command("build_ext")
    except Exception as exc:  # compiler missing or failing: say so, the reference kernel still runs
        print(f"build_kernel: the compiled kernel could not be built ({exc})", file=sys.stderr)
        return 1
    print(f"build_kernel: built {built()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
