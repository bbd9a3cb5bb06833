"""Which kernel runs a replication: the compiled one (``_kernel.pyx``) where it is built, else the reference.

Both give the same figures part for part (``tests/test_sim_kernels.py``); the compiled kernel is 10-20x
faster. ``TWIN_VIEWER_SIM_KERNEL=python`` forces the reference (for checking a result, or a machine where the
extension does not load)."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from viewer.sim.engine import Replication, ReplicationResult, prepare
from viewer.sim.model import SimModel

try:
    from viewer.sim import _kernel as _compiled  # type: ignore[attr-defined]
except ImportError:  # not built (no compiler at setup): the reference runs, slower
    _compiled = None


def kernel_name() -> str:
    """'compiled' or 'python' (what :func:`simulate` uses now)."""
    if _compiled is None or os.environ.get("TWIN_VIEWER_SIM_KERNEL", "").lower() == "python":
        return "python"
    return "compiled"


def compiled_kernel() -> object | None:
    """The compiled module when it is built and not switched off, else None."""
    return _compiled if kernel_name() == "compiled" else None


def simulate(model: SimModel, duration: float, seed: int | np.random.SeedSequence = 0,
             cancelled: Callable[[], bool] | None = None) -> ReplicationResult:
    """Run one replication for ``duration`` seconds (the warm-up included) and return its raw figures."""
    prepared = prepare(model, duration, seed)
    if kernel_name() == "compiled":
        return _compiled.simulate(prepared, cancelled)  # type: ignore[union-attr]
    return Replication(prepared, cancelled).run()
