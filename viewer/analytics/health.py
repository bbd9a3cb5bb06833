"""A component's health and its remaining useful life (RUL) as a distribution: numpy only, cheap live.

Two sources, and every estimate says which it came from:

- **history** (:class:`HealthModel`): learned from run-to-failure histories (each a table of cycles x
  [operating settings, sensors], the last row being the failure). The operating condition is found by
  clustering the settings (:class:`OperatingConditions`) and each sensor is standardised per condition, so
  a plant (or C-MAPSS FD002/FD004) with several regimes reads the same as one with one. The informative
  sensors are those that follow the remaining life; a small neural network (two ReLU layers, an ensemble of
  a few) maps the last ``window`` cycles of them, and the age, to the remaining life, trained on the usual
  piecewise-linear target (life capped at ``cap``: a healthy unit's life cannot be read from its sensors).
  The window is chosen by cross-validation grouped by unit, on the training units only.
  **Calibration** is split-conformal by unit (out-of-fold predictions, never the unit's own model),
  Mondrian by predicted life: within each band of predicted life, the residuals against the *true*
  (uncapped) remaining life make the predictive distribution, so the 90 % interval covers 90 % and
  ``P(RUL <= T)`` is a probability.
- **trend** (:func:`rul_from_trend`): no history, only a rule limit: the trend extrapolated to the limit
  (:mod:`viewer.analytics.horizon`), its slope interval read as a lognormal spread.

Streaming: :meth:`HealthModel.tracker` keeps a unit's last ``window`` rows; each update costs one small
forward pass (well under a millisecond), and a prediction uses only the cycles seen so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np

from viewer.analytics.horizon import failure_horizon

DEFAULT_CAP = 125.0  # cycles: the piecewise-linear target's plateau, the literature's usual 125-130
WINDOW_CHOICES = (20, 30)  # cycles of history per prediction, chosen by grouped cross-validation
MIN_CORRELATION = 0.3  # |corr(sensor, capped life)| below this: the sensor does not follow the wear
CONDITION_TOLERANCE = 0.1  # settings within this (scaled) distance of a centre are one operating condition
MAX_CONDITIONS = 8
# Calibration cells: bands of age (cycles seen so far) x bands of predicted life, each with its own residuals.
# The (age bands, life bands) pair is chosen by grouped cross-validation on the training units' out-of-fold
# predictions: the narrowest whose cross-validated coverage is within COVERAGE_SLACK of the level.
CALIBRATION_CHOICES = ((1, 5), (1, 10), (2, 10), (4, 5), (4, 10))
CALIBRATION_LEVEL = 0.9
COVERAGE_SLACK = 0.02
MIN_CELL_RESIDUALS = 40  # fewer cannot give a 90 % bound with room to spare ((n + 1) * 0.95 <= n needs n >= 19)
AGE_SCALE = 100.0  # the age feature in hundreds of cycles, capped
AGE_CAP = 400.0


@dataclass(frozen=True, eq=False)
class RulEstimate:
    """A remaining-life distribution: point, central interval, P(failure within T), and its source.

    ``outcomes`` are sorted equally likely remaining lives (the calibrated predictive distribution).
    """

    point: float
    low: float
    high: float
    level: float
    source: str  # "history" (a model learned from run-to-failure data) or "trend" (a rule limit and a trend)
    based_on: tuple[str, ...] = ()
    outcomes: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def p_fail_within(self, horizon: float) -> float:
        """P(remaining life <= ``horizon``), in the estimate's units (cycles or seconds)."""
        if len(self.outcomes) == 0:
            return float("nan")
        return float(np.searchsorted(self.outcomes, horizon, side="right") / len(self.outcomes))

    def describe(self, name: str, unit: str = "cycles", horizon: float | None = None) -> str:
        """'ST10: 87 % probability of failure within 14 cycles; 90 % interval 9-20 cycles; based on a, b'."""
        head = f"{name}: remaining life about {self.point:.0f} {unit}"
        if horizon is not None:
            head = f"{name}: {100 * self.p_fail_within(horizon):.0f} % probability of failure within {horizon:g} {unit}"
        basis = "learned from run-to-failure history" if self.source == "history" else "rule limit and trend"
        signals = f", {', '.join(self.based_on)}" if self.based_on else ""
        return (f"{head}; {100 * self.level:.0f} % interval {self.low:.0f}-{self.high:.0f} {unit}; "
                f"based on {basis}{signals}")


def conformal_band(residuals: np.ndarray, level: float) -> tuple[float, float]:
    """Split-conformal lower and upper residual quantiles for a central ``level`` interval.

    The ranks are the finite-sample ones: with n calibration residuals the upper bound is the
    ceil((n + 1)(1 + level) / 2)-th smallest, the lower the floor((n + 1)(1 - level) / 2)-th.
    """
    r = np.sort(np.asarray(residuals, dtype=float))
    n = len(r)
    hi_rank = math.ceil((n + 1) * (1 + level) / 2 - 1e-9)  # the 1e-9: 0.1 is not exact in binary
    lo_rank = math.floor((n + 1) * (1 - level) / 2 + 1e-9)
    high = r[min(hi_rank, n) - 1] if hi_rank <= n else math.inf
    low = r[lo_rank - 1] if lo_rank >= 1 else -math.inf
    return float(low), float(high)


@functools.lru_cache(maxsize=1)
def _openblas() -> tuple[object, object] | None:
    """numpy's bundled OpenBLAS thread-count getter and setter, where there is one (wheels from PyPI)."""
    libs = Path(np.__file__).parent.parent / "numpy.libs"
    for lib in sorted(libs.glob("libscipy_openblas*.so*")) if libs.is_dir() else []:
        try:
            blas = ctypes.CDLL(str(lib))  # already loaded by numpy: the same library, not a second copy
            return blas.scipy_openblas_get_num_threads64_, blas.scipy_openblas_set_num_threads64_
        except (OSError, AttributeError):
            continue
    return None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Matrix products on one thread while fitting: the network's matrices are small, and OpenBLAS's threads
    made a network's training 10x slower on a busy 2-core machine (31 s against 3 s, measured)."""
    blas = _openblas()
    if blas is None:
        yield
        return
    get, set_ = blas
    before = int(get())  # type: ignore[operator]
    set_(1)  # type: ignore[operator]
    try:
        yield
    finally:
        set_(before)  # type: ignore[operator]


class OperatingConditions:
    """Operating regimes found by clustering the settings (k-means, the fewest clusters that fit)."""

    def __init__(self, centres: np.ndarray, scale: np.ndarray) -> None:
        self.centres = centres
        self.scale = scale

    @classmethod
    def fit(cls, settings: np.ndarray, tolerance: float = CONDITION_TOLERANCE) -> OperatingConditions:
        """The fewest k whose every point lies within ``tolerance`` of its centre (settings scaled)."""
        s = np.atleast_2d(np.asarray(settings, dtype=float))
        scale = np.maximum(1.0, np.abs(np.median(s, axis=0)))  # a setting around 100 varies in hundreds
        z = s / scale
        centres = z.mean(axis=0, keepdims=True)
        for k in range(1, MAX_CONDITIONS + 1):
            centres = _kmeans(z, k)
            dist = np.linalg.norm(z[:, None, :] - centres[None, :, :], axis=2).min(axis=1)
            if dist.max() <= tolerance:
                break
        return cls(centres, scale)

    def assign(self, settings: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(settings, dtype=float)) / self.scale
        return np.argmin(np.linalg.norm(z[:, None, :] - self.centres[None, :, :], axis=2), axis=1)


def _kmeans(z: np.ndarray, k: int, iterations: int = 50) -> np.ndarray:
    """Deterministic k-means: farthest-point start, Lloyd iterations."""
    centres = [z[0]]
    for _ in range(1, k):
        d = np.linalg.norm(z[:, None, :] - np.array(centres)[None, :, :], axis=2).min(axis=1)
        centres.append(z[int(np.argmax(d))])
    c = np.array(centres)
    for _ in range(iterations):
        label = np.argmin(np.linalg.norm(z[:, None, :] - c[None, :, :], axis=2), axis=1)
        new = np.array([z[label == j].mean(axis=0) if np.any(label == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c


class _Network:
    """Two ReLU layers, trained with Adam on squared error; inputs standardised, output in units of 100."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, params: list[np.ndarray]) -> None:
        self.mean, self.std, self.params = mean, std, params

    @classmethod
    def train(cls, x: np.ndarray, y: np.ndarray, *, hidden: int, epochs: int, seed: int,
              l2: float = 1e-4, rate: float = 1e-3, batch: int = 256) -> _Network:
        rng = np.random.default_rng(seed)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
        # float32: half the memory traffic, about twice as fast on these small matrices; the error is far below
        # the remaining life's own spread
        z, target = ((x - mean) / std).astype(np.float32), (y / 100.0).astype(np.float32)
        d = z.shape[1]
        p = [a.astype(np.float32) for a in (
            rng.normal(0, math.sqrt(2 / d), (d, hidden)), np.zeros(hidden),
            rng.normal(0, math.sqrt(2 / hidden), (hidden, hidden)), np.zeros(hidden),
            rng.normal(0, math.sqrt(1 / hidden), (hidden, 1)), np.zeros(1))]
        m1 = [np.zeros_like(a) for a in p]
        m2 = [np.zeros_like(a) for a in p]
        step = 0
        for _ in range(epochs):
            order = rng.permutation(len(z))
            for start in range(0, len(z), batch):
                i = order[start:start + batch]
                h1 = np.maximum(z[i] @ p[0] + p[1], 0)
                h2 = np.maximum(h1 @ p[2] + p[3], 0)
                g = ((h2 @ p[4] + p[5])[:, 0] - target[i])[:, None] * np.float32(2 / len(i))
                g2 = (g @ p[4].T) * (h2 > 0)
                g1 = (g2 @ p[2].T) * (h1 > 0)
                grads = [z[i].T @ g1 + l2 * p[0], g1.sum(0), h1.T @ g2 + l2 * p[2], g2.sum(0),
                         h2.T @ g + l2 * p[4], g.sum(0)]
                step += 1
                for j, grad in enumerate(grads):
                    m1[j] = 0.9 * m1[j] + 0.1 * grad
                    m2[j] = 0.999 * m2[j] + 0.001 * grad * grad
                    p[j] -= rate * (m1[j] / (1 - 0.9 ** step)) / (np.sqrt(m2[j] / (1 - 0.999 ** step)) + 1e-8)
        return cls(mean, std, p)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        z = (np.atleast_2d(x) - self.mean) / self.std
        h = np.maximum(np.maximum(z @ p[0] + p[1], 0) @ p[2] + p[3], 0)
        return (h @ p[4] + p[5])[:, 0] * 100.0


@dataclass
class FitReport:
    """What fitting chose and why: the cross-validated error of each window, the calibration's size."""

    window: int
    cv_rmse: dict[int, float]
    conditions: int
    sensors: tuple[str, ...]
    calibration_points: int
    units: int = 0
    calibration: tuple[int, int] = (1, 1)  # (age bands, predicted-life bands) chosen (fewer where cells are small)
    # per candidate (age bands, life bands): (cross-validated coverage of the 90 % interval, mean width)
    cv_calibration: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)

    @property
    def cv_coverage(self) -> float:
        """The cross-validated coverage of the chosen calibration (grouped by unit, training units only)."""
        return self.cv_calibration.get(self.calibration, (float("nan"), float("nan")))[0]


class HealthModel:
    """RUL distribution learned from run-to-failure histories; see the module docstring.

    Build with :meth:`fit`; predict with :meth:`predict` (a whole history so far) or a :meth:`tracker`
    (one row at a time, live).
    """

    source = "history"

    def __init__(self) -> None:
        self.n_settings = 3
        self.sensor_names: tuple[str, ...] = ()
        self.conditions: OperatingConditions | None = None
        self.norm_mean = np.zeros((1, 0))
        self.norm_std = np.ones((1, 0))
        self.selected = np.zeros(0, dtype=int)
        self.window = WINDOW_CHOICES[-1]
        self.cap = DEFAULT_CAP
        self.networks: list[_Network] = []
        self.calibration = _Calibration.fit(np.zeros(1), np.zeros(1), np.ones(1), 1, 1)
        self.report: FitReport | None = None

    # -- fitting --------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, histories: Sequence[np.ndarray], *, n_settings: int = 3, sensor_names: Sequence[str] | None = None,
            cap: float = DEFAULT_CAP, windows: Sequence[int] = WINDOW_CHOICES, folds: int = 5, ensemble: int = 3,
            hidden: int = 64, epochs: int = 40, seed: int = 0) -> HealthModel:
        """Learn from ``histories``: one array per unit, rows = cycles, columns = settings then sensors.

        Each unit's last row is its failure. ``windows``: the candidates, chosen by ``folds``-fold
        cross-validation grouped by unit (RMSE against the capped target, one network per fold). The
        intervals are calibrated on out-of-fold predictions of an ensemble as large as the final one (a
        single network's errors are larger than the ensemble's: calibrating on them made the intervals too
        wide), each row with its age, in cells chosen by grouped cross-validation (:class:`_Calibration`).
        With ``n_settings=0`` there is one operating condition.
        """
        if len(histories) < folds:
            raise ValueError(f"{len(histories)} run-to-failure histories: at least {folds} are needed")
        with _one_blas_thread():
            return cls._fit(histories, n_settings=n_settings, sensor_names=sensor_names, cap=cap, windows=windows,
                            folds=folds, ensemble=ensemble, hidden=hidden, epochs=epochs, seed=seed)

    @classmethod
    def _fit(cls, histories: Sequence[np.ndarray], *, n_settings: int, sensor_names: Sequence[str] | None,
             cap: float, windows: Sequence[int], folds: int, ensemble: int, hidden: int, epochs: int,
             seed: int) -> HealthModel:
        model = cls()
        model.n_settings, model.cap = n_settings, float(cap)
        n_sensors = histories[0].shape[1] - n_settings
        model.sensor_names = tuple(sensor_names or (f"sensor {j + 1}" for j in range(n_sensors)))
        model._fit_normalisation(histories)
        lives = [np.arange(len(h), 0, -1, dtype=float) - 1.0 for h in histories]  # cycles left after each row
        normalised = [model._normalise(h) for h in histories]
        model._select_sensors(normalised, lives)
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(len(histories)) % folds
        train = dict(hidden=hidden, epochs=epochs)
        cv_rmse: dict[int, float] = {}
        oof: dict[int, list[np.ndarray]] = {}
        for window in windows:
            feats = [model._features(x[:, model.selected], window) for x in normalised]
            preds = _out_of_fold(feats, lives, fold_of, cap, seeds=(seed,), **train)
            err = np.concatenate([p - np.minimum(y, cap) for p, y in zip(preds, lives, strict=True)])
            cv_rmse[window] = float(np.sqrt(np.mean(err ** 2)))
            oof[window] = preds
        model.window = min(cv_rmse, key=cv_rmse.__getitem__)
        feats = [model._features(x[:, model.selected], model.window) for x in normalised]
        if ensemble > 1:  # the other members of each fold's ensemble: the chosen window's predictions, averaged
            more = _out_of_fold(feats, lives, fold_of, cap, seeds=tuple(seed + 100 + k for k in range(1, ensemble)),
                                **train)
            oof[model.window] = [(p + (ensemble - 1) * q) / ensemble
                                 for p, q in zip(oof[model.window], more, strict=True)]
        ages = np.concatenate([np.arange(1, len(h) + 1, dtype=float) for h in histories])
        unit_of = np.concatenate([np.full(len(h), i) for i, h in enumerate(histories)])
        model.calibration, chosen, cv_calibration = _Calibration.choose(
            np.concatenate(oof[model.window]), np.concatenate(lives), ages, fold_of[unit_of])
        x_all, y_all = np.vstack(feats), np.minimum(np.concatenate(lives), cap)
        model.networks = [_Network.train(x_all, y_all, seed=seed + 1 + k, **train) for k in range(ensemble)]
        model.report = FitReport(model.window, cv_rmse, len(model.conditions.centres), model.based_on,
                                 len(ages), len(histories), chosen, cv_calibration)
        return model

    def _fit_normalisation(self, histories: Sequence[np.ndarray]) -> None:
        table = np.vstack(histories)
        self.conditions = OperatingConditions.fit(table[:, :self.n_settings])
        label = self.conditions.assign(table[:, :self.n_settings])
        sensors = table[:, self.n_settings:]
        k = len(self.conditions.centres)
        self.norm_mean = np.array([sensors[label == j].mean(axis=0) for j in range(k)])
        std = np.array([sensors[label == j].std(axis=0) for j in range(k)])
        self.norm_std = np.where(std > 1e-9, std, np.inf)  # a constant sensor reads 0 after normalising

    def _normalise(self, rows: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(rows)
        label = self.conditions.assign(rows[:, :self.n_settings])  # type: ignore[union-attr]
        return (rows[:, self.n_settings:] - self.norm_mean[label]) / self.norm_std[label]

    def _select_sensors(self, normalised: list[np.ndarray], lives: list[np.ndarray]) -> None:
        x = np.vstack(normalised)
        y = np.minimum(np.concatenate(lives), self.cap)
        corr = np.array([abs(np.corrcoef(x[:, j], y)[0, 1]) if x[:, j].std() > 1e-9 else 0.0
                         for j in range(x.shape[1])])
        chosen = np.flatnonzero(corr >= MIN_CORRELATION)
        self.selected = chosen if len(chosen) else np.array([int(np.argmax(corr))])
        self.correlation = corr

    @staticmethod
    def _features(x: np.ndarray, window: int) -> np.ndarray:
        """Per row: the last ``window`` rows (the first repeated before the start), and the age."""
        n = len(x)
        padded = np.vstack([np.repeat(x[:1], window - 1, axis=0), x])
        idx = np.arange(n)[:, None] + np.arange(window)[None, :]
        age = np.minimum(np.arange(1, n + 1, dtype=float), AGE_CAP)[:, None] / AGE_SCALE
        return np.hstack([padded[idx].reshape(n, -1), age])

    # -- predicting -----------------------------------------------------------------------------------------
    @property
    def based_on(self) -> tuple[str, ...]:
        return tuple(self.sensor_names[j] for j in self.selected)

    def point(self, features: np.ndarray) -> np.ndarray:
        """The ensemble's mean remaining life for rows of features (capped target, never below 0)."""
        return np.maximum(np.mean([net(features) for net in self.networks], axis=0), 0.0)

    def estimate(self, point: float, level: float = 0.9, age: float | None = None) -> RulEstimate:
        """The calibrated distribution around a point prediction after ``age`` cycles seen (None: any age)."""
        residuals = self.calibration.residuals(point, age)
        low, high = conformal_band(residuals, level)
        outcomes = np.maximum(point + residuals, 0.0)  # residuals are sorted: so are the outcomes
        return RulEstimate(float(point), max(point + low, 0.0), max(point + high, 0.0), level, self.source,
                           self.based_on, outcomes)

    def predict(self, history: np.ndarray, level: float = 0.9) -> RulEstimate:
        """The estimate after the last row of ``history`` (a unit's cycles so far)."""
        x = self._normalise(history)[:, self.selected]
        return self.estimate(float(self.point(self._features(x, self.window)[-1:])[0]), level, age=len(x))

    def predict_all(self, history: np.ndarray) -> np.ndarray:
        """Point predictions after every row of ``history``, each from the rows up to it only."""
        x = self._normalise(history)[:, self.selected]
        return self.point(self._features(x, self.window))

    def tracker(self) -> UnitTracker:
        return UnitTracker(self)

    def health_index(self, history: np.ndarray) -> np.ndarray:
        """1 = healthy (life at or above the cap) ... 0 = failing, per row."""
        return np.clip(self.predict_all(history) / self.cap, 0.0, 1.0)


class UnitTracker:
    """One unit, live: rows in, an estimate out, from the unit's cycles so far only."""

    def __init__(self, model: HealthModel) -> None:
        self.model = model
        self.rows: deque[np.ndarray] = deque(maxlen=model.window)
        self.age = 0

    def update(self, row: np.ndarray, level: float = 0.9) -> RulEstimate:
        m = self.model
        self.rows.append(m._normalise(np.asarray(row, dtype=float))[0, m.selected])
        self.age += 1
        rows = list(self.rows)
        rows = [rows[0]] * (m.window - len(rows)) + rows
        features = np.concatenate([np.ravel(rows), [min(self.age, AGE_CAP) / AGE_SCALE]])
        return m.estimate(float(m.point(features[None, :])[0]), level, age=self.age)


def _out_of_fold(features: list[np.ndarray], lives: list[np.ndarray], fold_of: np.ndarray, cap: float, *,
                 seeds: Sequence[int], **train: int) -> list[np.ndarray]:
    """Each unit's predictions from an ensemble (one network per seed) trained on the other folds' units."""
    preds: list[np.ndarray] = [np.zeros(0)] * len(features)
    for fold in np.unique(fold_of):
        held = np.flatnonzero(fold_of == fold)
        kept = np.flatnonzero(fold_of != fold)
        x = np.vstack([features[i] for i in kept])
        y = np.minimum(np.concatenate([lives[i] for i in kept]), cap)
        nets = [_Network.train(x, y, seed=s, **train) for s in seeds]
        for i in held:
            preds[i] = np.maximum(np.mean([net(features[i]) for net in nets], axis=0), 0.0)
    return preds


class _Calibration:
    """Mondrian split-conformal cells: bands of age (cycles seen so far), within each bands of predicted life;
    each cell holds its sorted residuals (true, uncapped remaining life - predicted), which make the
    predictive distribution of a prediction falling in it. Age matters because a healthy-looking unit's true
    life beyond the cap depends on how long it has already run; one pooled set (``pooled``) serves a
    prediction whose age is unknown."""

    def __init__(self, age_edges: np.ndarray, life_edges: list[np.ndarray], cells: list[list[np.ndarray]],
                 pooled: tuple[np.ndarray, list[np.ndarray]]) -> None:
        self.age_edges, self.life_edges, self.cells, self.pooled = age_edges, life_edges, cells, pooled

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.age_edges) + 1, max(len(e) + 1 for e in self.life_edges)

    @staticmethod
    def _bands(predicted: np.ndarray, residual: np.ndarray, bands: int) -> tuple[np.ndarray, list[np.ndarray]]:
        bands = max(1, min(bands, len(predicted) // MIN_CELL_RESIDUALS))
        edges = np.unique(np.quantile(predicted, np.linspace(0, 1, bands + 1)[1:-1])) if bands > 1 else np.zeros(0)
        band = np.searchsorted(edges, predicted, side="right")
        return edges, [np.sort(residual[band == b]) for b in range(len(edges) + 1)]

    @classmethod
    def fit(cls, predicted: np.ndarray, true_life: np.ndarray, age: np.ndarray, age_bands: int,
            life_bands: int) -> _Calibration:
        residual = true_life - predicted
        age_bands = max(1, min(age_bands, len(age) // (MIN_CELL_RESIDUALS * life_bands)))
        age_edges = (np.unique(np.quantile(age, np.linspace(0, 1, age_bands + 1)[1:-1])) if age_bands > 1
                     else np.zeros(0))
        band = np.searchsorted(age_edges, age, side="right")
        life_edges, cells = [], []
        for b in range(len(age_edges) + 1):
            edges, residuals = cls._bands(predicted[band == b], residual[band == b], life_bands)
            life_edges.append(edges)
            cells.append(residuals)
        return cls(age_edges, life_edges, cells, cls._bands(predicted, residual, life_bands))

    def residuals(self, point: float, age: float | None) -> np.ndarray:
        if age is None:
            edges, cells = self.pooled
            return cells[int(np.searchsorted(edges, point, side="right"))]
        b = int(np.searchsorted(self.age_edges, age, side="right"))
        cell = self.cells[b][int(np.searchsorted(self.life_edges[b], point, side="right"))]
        if len(cell) < MIN_CELL_RESIDUALS // 2:  # a band left nearly empty by tied predictions
            return self.residuals(point, None)
        return cell

    def bands(self, points: np.ndarray, ages: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Each point's conformal residual band (low, high), vectorised over rows."""
        low, high = np.empty(len(points)), np.empty(len(points))
        age_band = np.searchsorted(self.age_edges, ages, side="right")
        for b, (edges, cells) in enumerate(zip(self.life_edges, self.cells, strict=True)):
            rows = np.flatnonzero(age_band == b)
            life_band = np.searchsorted(edges, points[rows], side="right")
            for k, residuals in enumerate(cells):
                lo, hi = conformal_band(residuals, level)
                low[rows[life_band == k]], high[rows[life_band == k]] = lo, hi
        return low, high

    @classmethod
    def choose(cls, predicted: np.ndarray, true_life: np.ndarray, age: np.ndarray, fold: np.ndarray,
               level: float = CALIBRATION_LEVEL) -> tuple[_Calibration, tuple[int, int],
                                                          dict[tuple[int, int], tuple[float, float]]]:
        """The cells of :data:`CALIBRATION_CHOICES` chosen by cross-validation grouped by unit (``fold``: each
        row's unit's fold): calibrate on the other folds' rows, measure coverage and width on the held-out
        fold's; the narrowest choice covering within :data:`COVERAGE_SLACK` of ``level`` (else the closest)."""
        scores: dict[tuple[int, int], tuple[float, float]] = {}
        for choice in CALIBRATION_CHOICES:
            hits, widths = [], []
            for f in np.unique(fold):
                held, kept = fold == f, fold != f
                cal = cls.fit(predicted[kept], true_life[kept], age[kept], *choice)
                low, high = cal.bands(predicted[held], age[held], level)
                residual = true_life[held] - predicted[held]
                hits.append((residual >= low) & (residual <= high))
                widths.append(high - low)
            scores[choice] = (float(np.mean(np.concatenate(hits))), float(np.mean(np.concatenate(widths))))
        fitting = [c for c, (cov, _) in scores.items() if abs(cov - level) <= COVERAGE_SLACK]
        best = (min(fitting, key=lambda c: scores[c][1]) if fitting
                else min(scores, key=lambda c: abs(scores[c][0] - level)))
        return cls.fit(predicted, true_life, age, *best), best, scores


def rul_from_trend(times: np.ndarray, values: np.ndarray, limit: float, *, signal: str = "",
                   level: float = 0.9) -> RulEstimate | None:
    """No run-to-failure history: the time (s) for the trend to reach ``limit``, spread as a lognormal.

    The median is the trend's horizon; the 90 % slope interval of :func:`failure_horizon` sets the spread
    (its ends taken as the 5 % and 95 % points). None when there is no meaningful trend.
    """
    h = failure_horizon(times, values, limit)
    if h.seconds is None:
        return None
    based_on = (signal,) if signal else ()
    if h.seconds <= 0.0:
        return RulEstimate(0.0, 0.0, 0.0, level, "trend", based_on, np.zeros(1))
    z90 = NormalDist().inv_cdf(0.95)
    low = h.low if h.low and h.low > 0 else h.seconds
    spans = [math.log(h.seconds / low)]
    if h.high is not None and math.isfinite(h.high):
        spans.append(math.log(h.high / h.seconds))
    sigma = max(max(spans) / z90, 1e-6)
    z = _normal_quantiles(999)
    outcomes = h.seconds * np.exp(sigma * z)
    zl = NormalDist().inv_cdf((1 - level) / 2)
    return RulEstimate(h.seconds, h.seconds * math.exp(sigma * zl), h.seconds * math.exp(-sigma * zl), level,
                       "trend", based_on, outcomes)


@functools.lru_cache(maxsize=4)
def _normal_quantiles(n: int) -> np.ndarray:
    """The n equally spaced standard normal quantiles ((i + 0.5) / n); computed once (a thousand inverse
    CDFs in Python cost a millisecond, and the details panel asks several times a second)."""
    unit = NormalDist()
    z = np.array([unit.inv_cdf((i + 0.5) / n) for i in range(n)])
    z.setflags(write=False)  # shared by every caller
    return z
