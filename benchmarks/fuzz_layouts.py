"""Layout fuzzing at scale: 10,000 mutated documents (``--quick``: 1,000) through loading, validation, the
layout checks, the plant geometry and the simulation model (tests/layout_fuzz.py); each must open or be
refused with a LayoutError / MeshError. Prints every crash with its document, ends with the JSON figures.

    python benchmarks/fuzz_layouts.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_common import emit
from hypothesis import HealthCheck, given, settings
from layout_fuzz import mutated_documents, open_document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 cases instead of 10,000")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cases = 1_000 if args.quick else 10_000
    outcomes: Counter[str] = Counter()
    crashes: list[tuple[str, str]] = []
    folder = Path(tempfile.mkdtemp(prefix="fuzz-layouts-"))

    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[hypothesis_phase()])
    @given(doc=mutated_documents())
    def run(doc: dict) -> None:
        try:
            outcomes[open_document(doc, folder)] += 1
        except Exception as exc:  # a crash: what the figure counts
            outcomes["crash"] += 1
            crashes.append((f"{type(exc).__name__}: {exc}"[:300], json.dumps(doc)[:2000]))
            print(traceback.format_exc(limit=3), file=sys.stderr)

    began = time.perf_counter()
    from hypothesis import seed

    seed(args.seed)(run)()
    wall = time.perf_counter() - began
    total = sum(outcomes.values())
    print(f"{total:,} cases in {wall:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in outcomes.most_common()),
          file=sys.stderr)
    for reason, doc in crashes[:20]:
        print(f"CRASH {reason}\n  {doc[:400]}", file=sys.stderr)
    mesh_outcomes = fuzz_meshes(folder, cases // 3, args.seed)
    print("meshes: " + ", ".join(f"{k} {v:,}" for k, v in mesh_outcomes.most_common()), file=sys.stderr)
    emit([{"figure": "fuzz_layout_crashes", "value": outcomes["crash"], "unit": "crashes", "goal": 0,
           "higher_is_better": False, "note": f"of {total:,} mutated demo-plant documents"},
          {"figure": "fuzz_layout_cases", "value": total, "unit": "cases",
           "note": ", ".join(f"{k} {v:,}" for k, v in outcomes.most_common())},
          {"figure": "fuzz_mesh_crashes", "value": mesh_outcomes["crash"], "unit": "crashes", "goal": 0,
           "higher_is_better": False,
           "note": f"of {sum(mesh_outcomes.values()):,} mutated STL, OBJ, PLY, OFF, GLB, glTF and COLLADA files: "
                   + ", ".join(f"{k} {v:,}" for k, v in mesh_outcomes.most_common())}])
    return 1 if outcomes["crash"] or mesh_outcomes["crash"] else 0


def fuzz_meshes(folder: Path, cases: int, seed_value: int) -> Counter[str]:
    """Mesh files of every format, bytes flipped, cut, inserted, numbers replaced (tests/layout_fuzz.py)."""
    from hypothesis import seed
    from hypothesis import strategies as st
    from layout_fuzz import mesh_seeds, mutated_mesh_bytes, open_mesh

    seeds = mesh_seeds(folder)
    outcomes: Counter[str] = Counter()

    @settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[hypothesis_phase()])
    @given(case=st.data())
    def run(case: st.DataObject) -> None:
        kind, data = case.draw(mutated_mesh_bytes(seeds))
        try:
            outcomes[open_mesh(kind, data, folder)] += 1
        except Exception as exc:  # a crash: what the figure counts
            outcomes["crash"] += 1
            print(f"CRASH {kind}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)

    seed(seed_value)(run)()
    return outcomes


def hypothesis_phase():
    from hypothesis import Phase

    return Phase.generate


if __name__ == "__main__":
    sys.exit(main())
