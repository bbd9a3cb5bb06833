#!/usr/bin/env bash
# Starts the BUILT bundle (not the source tree): --version, then render the demo plant off screen and check the
# picture is a plant (not blank). Slow (builds first if needed): not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/dist/twin-viewer/twin-viewer
[ -x "$BIN" ] || bash packaging/build.sh
"$BIN" --version
OUT=$(mktemp -d)/bundle.png
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
