#!/usr/bin/env bash
# Set up a development machine: system packages (as root on Debian), a .venv, the project.
# Idempotent and quick when nothing changed; used by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# What Qt's xcb plugin, VTK's GL/EGL and the test harness need on a headless Debian box.
SYSTEM_PACKAGES="xvfb xauth libgl1 libegl1 libegl-mesa0 libglx-mesa0 libgl1-mesa-dri libxkbcommon-x11-0
libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0 libxrender1 libxext6 libxi6 libsm6 libice6 libfontconfig1
libdbus-1-3 fonts-dejavu-core mosquitto"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in $SYSTEM_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "bootstrap: missing system packages (install them as root):$missing" >&2
  fi
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap: Python >= 3.11 is needed, this is {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get install -y -qq python3-venv >/dev/null && "$PYTHON" -m venv .venv
    else
      echo "bootstrap: cannot create .venv (install python3-venv)" >&2; exit 1
    fi
  fi
fi

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing the project into .venv (first time takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,build]"
  touch "$stamp"
fi

# The compiled simulation kernel (viewer/sim/_kernel.pyx: Cython to C++). It needs a C++ compiler and the
# Python headers: as root on Debian the bootstrap installs g++ (and python3-dev for Debian's own Python) and
# says so; without them the viewer runs the pure-Python reference kernel, which gives the same figures slower.
if ! command -v c++ >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing a C++ compiler (g++) for the compiled simulation kernel"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
if ! .venv/bin/python -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing the Python headers (python3-dev) for the compiled simulation kernel"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-dev >/dev/null || true
  fi
fi
if ! .venv/bin/python packaging/build_kernel.py >/dev/null; then
  echo "bootstrap: the compiled simulation kernel was not built: simulations run on the reference kernel (10-20x slower)" >&2
fi
