#!/usr/bin/env bash
# Starts the BUILT bundle (not the source tree): --version, renders the demo plant off screen and checks the
# picture is a plant (not blank), then opens the window on the demo plant under Xvfb (it quits once the plant
# is drawn) and starts `twin-viewer demo` (broker and virtual plant are the bundle too) for a few seconds.
# Slow (builds first if needed): not part of `make test`; CI runs it after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/dist/twin-viewer/twin-viewer
[ -x "$BIN" ] || bash packaging/build.sh
"$BIN" --version
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/bundle.png
env -u DISPLAY "$BIN" render "build/dist/twin-viewer/_internal/layouts/demo_plant/demo_plant.json" --out "$OUT"
.venv/bin/python - "$OUT" <<'PY'
import sys
import numpy as np
from PIL import Image
img = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=float)
assert img.shape[0] >= 600 and img.shape[1] >= 900, img.shape
grey = img.mean(axis=2)
assert grey.std() > 8, "a blank picture"  # a floor, machines and labels make contrast
print(f"bundle smoke test: {sys.argv[1]} {img.shape[1]}x{img.shape[0]}, contrast {grey.std():.1f}: OK")
PY

# The window, from the bundle, on a display (Xvfb when there is none): it quits once the plant is drawn.
run_x() { if [ -n "${DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 1600x1000x24" "$@"; fi; }
START=$(date +%s.%N)
TWIN_VIEWER_STARTUP_PROBE="$TMP/shown" TWIN_VIEWER_SETTINGS="$TMP/settings.ini" TWIN_VIEWER_LOG_DIR="$TMP" \
  run_x timeout 60 "$BIN" "build/dist/twin-viewer/_internal/layouts/demo_plant/demo_plant.json"
[ -s "$TMP/shown" ] || { echo "bundle smoke test: the window never showed the plant" >&2; exit 1; }
awk -v s="$START" '{printf "bundle smoke test: window with the demo plant after %.2f s (cold): OK\n", $1 - s}' "$TMP/shown"
# The demo: embedded broker and virtual plant are started as the bundle's own hidden subcommands.
set +e
TWIN_VIEWER_SETTINGS="$TMP/settings.ini" TWIN_VIEWER_LOG_DIR="$TMP" run_x timeout 15 "$BIN" demo >"$TMP/demo.txt" 2>&1
rc=$?
set -e
grep -q "embedded broker on" "$TMP/demo.txt" && ! grep -q "Traceback\|Failed to execute" "$TMP/demo.txt" && [ $rc -eq 124 ] \
  || { echo "bundle smoke test: twin-viewer demo failed (exit $rc):" >&2; cat "$TMP/demo.txt" >&2; exit 1; }
echo "bundle smoke test: twin-viewer demo ran 15 s with its broker and virtual plant: OK"
du -sm build/dist/twin-viewer | awk '{print "{\"figure\": \"bundle_mb\", \"value\": " $1 ", \"unit\": \"MB\", \"goal\": 400, \"higher_is_better\": false}"}'
