#!/usr/bin/env bash
# Runs the BUILT bundle in a minimal Debian 12 root that has no Python: --version first with nothing added,
# then `render` (EGL, no display) with only Mesa's EGL/GL packages, then the window on the demo plant against
# an Xvfb outside the root (its local socket bind-mounted in). Proves the bundle is self-contained and which system packages it needs
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
XVFB_PID=""
cleanup() {
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
  umount "$ROOT/tmp/.X11-unix" 2>/dev/null || true
  umount "$ROOT/proc" 2>/dev/null || true
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
if chroot "$ROOT" sh -c 'command -v python3 || command -v python' >/dev/null; then
  echo "minimal_root_test: the root has a Python; this test needs one without" >&2; exit 1
fi
rm -rf "$ROOT/opt/twin-viewer"
cp -a "$BUNDLE" "$ROOT/opt/twin-viewer"
APP=/opt/twin-viewer/twin-viewer
DEMO=/opt/twin-viewer/_internal/layouts/demo_plant/demo_plant.json
in_root() { chroot "$ROOT" env -i HOME=/tmp PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }

in_root "$APP" --version
echo "minimal_root_test: --version runs in a root without Python: OK"

# shellcheck disable=SC2086
in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $RENDER_PACKAGES" \
  >/dev/null 2>&1 || { in_root apt-get update -qq >/dev/null && in_root sh -c \
  "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $RENDER_PACKAGES" >/dev/null; }
rm -f "$ROOT/tmp/render.png"
in_root "$APP" render "$DEMO" --out /tmp/render.png
[ -s "$ROOT/tmp/render.png" ] || { echo "minimal_root_test: render wrote nothing" >&2; exit 1; }
echo "minimal_root_test: render with only $RENDER_PACKAGES added: OK ($ROOT/tmp/render.png)"

# The window: an Xvfb outside the root (local socket only, no TCP), its socket folder bind-mounted inside.
exec 3< <(Xvfb -displayfd 1 -nolisten tcp -screen 0 1600x1000x24 2>"$ROOT/tmp/xvfb.log")
XVFB_PID=$!
read -r -t 15 DISPLAY_NO <&3 || { echo "minimal_root_test: Xvfb did not start:" >&2; cat "$ROOT/tmp/xvfb.log" >&2; exit 1; }
mkdir -p "$ROOT/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$ROOT/tmp/.X11-unix"
rm -f "$ROOT/tmp/shown"
in_root env DISPLAY=":$DISPLAY_NO" TWIN_VIEWER_STARTUP_PROBE=/tmp/shown timeout 60 "$APP" "$DEMO" \
  2>&1 | grep -v "^Fontconfig error" || true
[ -s "$ROOT/tmp/shown" ] || { echo "minimal_root_test: the window never showed the plant" >&2; exit 1; }
if in_root sh -c 'ls /usr/share/fonts/*/*/*.ttf' >/dev/null 2>&1; then
  echo "minimal_root_test: the window showed the demo plant (with the root's own fonts): OK"
elif grep -q "using the bundled DejaVu Sans" "$ROOT"/tmp/.local/state/twin-viewer/log/twin-viewer.log 2>/dev/null; then
  echo "minimal_root_test: the window showed the demo plant (no fonts installed: the bundled DejaVu Sans is used): OK"
else
  echo "minimal_root_test: no system fonts and the bundled font was not used: text would be unreadable" >&2; exit 1
fi
