#!/usr/bin/env bash
# Runs the BUILT bundle in a minimal Debian 12 root that has no Python: --version first with nothing added,
# then `render` (EGL, no display) with only Mesa's EGL/GL packages, then the window on the demo plant against
# an Xvfb outside the root (over TCP). Proves the bundle is self-contained and which system packages it needs
# (packaging/README.md lists them). Needs root, debootstrap and Debian's mirror; not part of CI.
#   MINIROOT=DIR (default build/miniroot) keeps the root between runs; rm -rf it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "minimal_root_test: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
ROOT=$(realpath -m "${MINIROOT:-build/miniroot}")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BUNDLE=build/dist/twin-viewer
# What the bundle needs from the system (everything else it carries): Mesa's EGL/GL for rendering.
RENDER_PACKAGES="libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri"
[ -x "$BUNDLE/twin-viewer" ] || bash packaging/build.sh
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
if [ ! -f "$ROOT/etc/debian_version" ]; then
  echo "minimal_root_test: debootstrap --variant=minbase bookworm $ROOT"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >/dev/null
fi
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
XVFB_PID=""
cleanup() {
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
  umount "$ROOT/proc" 2>/dev/null || true
}
trap cleanup EXIT
if chroot "$ROOT" sh -c 'command -v python3 || command -v python' >/dev/null; then
  echo "minimal_root_test: the root has a Python; this test needs one without" >&2; exit 1
fi
rm -rf "$ROOT/opt/twin-viewer"
cp -a "$BUNDLE" "$ROOT/opt/twin-viewer"
APP=/opt/twin-viewer/twin-viewer
DEMO=/opt/twin-viewer/_internal/layouts/demo_plant/demo_plant.json
in_root() { chroot "$ROOT" env -i HOME=/tmp PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }

in_root "$APP" --version
echo "minimal_root_test: --version runs with no Python and nothing installed: OK"

# shellcheck disable=SC2086
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $RENDER_PACKAGES" \
  >/dev/null 2>&1 || { in_root apt-get update -qq >/dev/null && in_root sh -c \
  "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $RENDER_PACKAGES" >/dev/null; }
rm -f "$ROOT/tmp/render.png"
in_root "$APP" render "$DEMO" --out /tmp/render.png
[ -s "$ROOT/tmp/render.png" ] || { echo "minimal_root_test: render wrote nothing" >&2; exit 1; }
echo "minimal_root_test: render with only $RENDER_PACKAGES added: OK ($ROOT/tmp/render.png)"

DISPLAY_NO=$(( 90 + RANDOM % 9 ))
Xvfb ":$DISPLAY_NO" -listen tcp -ac -screen 0 1600x1000x24 >/dev/null 2>&1 &
XVFB_PID=$!
sleep 1
rm -f "$ROOT/tmp/shown"
in_root env DISPLAY="127.0.0.1:$DISPLAY_NO" TWIN_VIEWER_STARTUP_PROBE=/tmp/shown timeout 60 "$APP" "$DEMO" \
  2>&1 | grep -v "^Fontconfig error" || true
[ -s "$ROOT/tmp/shown" ] || { echo "minimal_root_test: the window never showed the plant" >&2; exit 1; }
if ! grep -q "using the bundled DejaVu Sans" "$ROOT"/tmp/.local/state/twin-viewer/log/twin-viewer.log 2>/dev/null \
    && ! in_root sh -c 'ls /usr/share/fonts/*/*/*.ttf' >/dev/null 2>&1; then
  echo "minimal_root_test: no system fonts and the bundled font was not used: text would be unreadable" >&2; exit 1
fi
echo "minimal_root_test: the window showed the demo plant (no fonts installed: the bundled DejaVu Sans is used): OK"
