#!/usr/bin/env bash
# make package: the one-folder bundle, a .tar.gz of it, and a .deb where dpkg-deb exists.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv/bin
# PyInstaller reads libraries with binutils (objdump), and the bundle is stripped and pruned with them.
if ! command -v objdump >/dev/null || ! command -v strip >/dev/null || ! command -v readelf >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils >/dev/null
  else
    echo "make package needs binutils (objdump, strip, readelf): sudo apt-get install binutils" >&2
    exit 1
  fi
fi
"$VENV/pip" install -q 'pyinstaller>=6.5'
VERSION=$("$VENV/python" -c "import viewer; print(viewer.__version__)")
rm -rf build/dist/twin-viewer
"$VENV/pyinstaller" packaging/twin-viewer.spec --distpath build/dist --workpath build/work --noconfirm --log-level WARN
BUNDLE=build/dist/twin-viewer
# Wheels ship many libraries with their symbol tables and debug info (libpython alone 23 -> 6 MB); stripping
# them is safe, except numpy's OpenBLAS, which breaks: left as it is.
find "$BUNDLE/_internal" -name '*.so*' -type f ! -path '*/numpy.libs/*' -exec strip --strip-unneeded {} +
# Help > About in the bundle: the third-party components, their licence texts, and this build's stamp.
"$VENV/python" -m viewer.licences --out "$BUNDLE/_internal/third_party" \
  --extra "Qt 6 (inside PySide6), PySide6 and shiboken6: GNU LGPL 3.0=packaging/licenses/LGPL-3.0.txt" \
  --extra "GNU GPL 3.0 (the LGPL's base text)=packaging/licenses/GPL-3.0.txt"
"$VENV/python" packaging/system_licences.py "$BUNDLE/_internal"
printf '{"commit": "%s", "date": "%s"}\n' "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
  "$(date -u +%Y-%m-%d)" > "$BUNDLE/_internal/third_party/build.json"
# PyInstaller links every library into _internal/; those of the left-out VTK and Qt parts now point nowhere.
find "$BUNDLE/_internal" -maxdepth 1 -xtype l -delete
du -sm "$BUNDLE" | awk '{print "bundle: " $1 " MB unpacked"}'
tar -C build/dist -czf "build/twin-viewer-$VERSION-linux-x86_64.tar.gz" twin-viewer
echo "wrote build/twin-viewer-$VERSION-linux-x86_64.tar.gz"
if command -v dpkg-deb >/dev/null; then
  ROOT=build/deb
  rm -rf "$ROOT"
  mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" "$ROOT/usr/share/mime/packages"
  cp -a "$BUNDLE" "$ROOT/opt/twin-viewer"
  ln -s /opt/twin-viewer/twin-viewer "$ROOT/usr/bin/twin-viewer"
  cp packaging/twin-viewer.desktop "$ROOT/usr/share/applications/"
  cp packaging/twin-viewer-mime.xml "$ROOT/usr/share/mime/packages/twin-viewer.xml"
  for size in 16 32 48 64 128 256; do
    mkdir -p "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps"
    cp "packaging/icons/twin-viewer-$size.png" "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps/twin-viewer.png"
  done
  cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: twin-viewer
Version: $VERSION
Architecture: amd64
Maintainer: twin-viewer team <noreply@example.invalid>
Depends: libgl1, libegl1, libegl-mesa0 | libegl-nvidia0, libgl1-mesa-dri | libgl1-nvidia-glvnd-glx, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, libxcb-shape0, libxcb-xinerama0, libfontconfig1, libdbus-1-3
Description: 3D digital-twin viewer for factory control rooms
 Live MQTT telemetry, alarms, anomaly scores, recordings and a layout editor with throughput simulation.
CONTROL
  printf '#!/bin/sh\nupdate-mime-database /usr/share/mime >/dev/null 2>&1 || true\nupdate-desktop-database >/dev/null 2>&1 || true\n' > "$ROOT/DEBIAN/postinst"
  chmod 755 "$ROOT/DEBIAN/postinst"
  dpkg-deb --root-owner-group --build "$ROOT" "build/twin-viewer_${VERSION}_amd64.deb" >/dev/null
  echo "wrote build/twin-viewer_${VERSION}_amd64.deb (uninstall: apt remove twin-viewer)"
fi
