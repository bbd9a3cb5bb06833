"""Streaming anomaly detectors: one small interface, vectorised numpy, state as plain JSON.

Every detector has ``learn(values)`` (a block of normal data), ``update(timestamp, values)``
(one sample, the live path) and ``score_batch(timestamps, values)`` (many samples, the
replay path), and ``state_dict()`` / ``from_state()`` with plain lists and numbers, so
a saved model is data, never code.

- :class:`RobustUnivariate` scores each signal alone against a median/MAD baseline that
  follows slow drift (it adapts only on samples that look normal).
- :class:`MultivariateT2` scores a component's signals together with Hotelling's T² on a
  shrunk covariance: it catches a broken relation between signals even while each stays
  inside its own range, and tells how much each signal contributed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from viewer.analytics.calibration import chi2_cdf, chi2_cdf_scalar, z_to_score

_SQRT2 = math.sqrt(2.0)
SMALL = 16  # up to this many signals, per-value math beats vectorised numpy on one sample

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
ADAPT_BAND = 2.5758  # |z| below this (99 % of normal samples) teaches the baseline
# E[|Z| given |Z| < 2.5758] for a standard normal: (2 phi(0) - 2 phi(c)) / P(|Z| < c) = 0.77673.
TRUNCATED_ABS_DEV_TO_SIGMA = 1.0 / 0.77673


def _finite_or_zero(a: np.ndarray) -> np.ndarray:
    """NaN and infinities -> 0 (np.nan_to_num is ~5x slower on the small arrays of the live path)."""
    return np.where(np.isfinite(a), a, 0.0)


def _as_row(values: Any, n: int) -> np.ndarray:
    row = np.asarray(values, dtype=float).reshape(-1)
    if row.shape != (n,):
        raise ValueError(f"expected {n} values, got {row.shape[0]}")
    return row


class RobustUnivariate:
    """Per-signal robust z-scores; the baseline adapts slowly where values look normal."""

    def __init__(self, n_signals: int, adapt: float = 1e-3, min_scale: float = 1e-9) -> None:
        self.n = n_signals
        self.adapt = adapt
        self.min_scale = min_scale
        self.center = np.zeros(n_signals)
        self.scale = np.ones(n_signals)
        self.learned = False
        self.frozen = False
        self.adapting = True  # the component scorer pauses adaptation while it reports an anomaly

    def learn(self, values: np.ndarray) -> None:
        """Set the baseline from a block of normal samples (rows = samples); NaNs are ignored."""
        block = np.asarray(values, dtype=float).reshape(-1, self.n)
        with np.errstate(all="ignore"):
            center = np.nanmedian(block, axis=0)
            mad = np.nanmedian(np.abs(block - center), axis=0) * MAD_TO_SIGMA
            std = np.nanstd(block, axis=0)
        scale = np.where(mad > self.min_scale, mad, std)  # a mostly constant signal: fall back to its std
        self.center = np.nan_to_num(center)
        self.scale = np.maximum(np.nan_to_num(scale, nan=1.0), self.min_scale)
        self.learned = True

    def z(self, values: np.ndarray) -> np.ndarray:
        """Signed robust z-scores (NaN where a value is missing)."""
        return (np.asarray(values, dtype=float) - self.center) / self.scale

    def update(self, timestamp: float, values: Any) -> np.ndarray:
        """Scores of one sample, per signal (0 where missing); adapts the baseline on normal-looking values."""
        row = _as_row(values, self.n)
        if self.n <= SMALL:
            return self._update_small(row.tolist())
        dev = row - self.center
        z = dev / self.scale
        scores = _finite_or_zero(z_to_score(z))
        if not self.frozen and self.adapting:
            # Follow slow drift using only samples within 2.576 sigma (99 %): a drift faster than the
            # baseline can follow leaves that band, stops the adaptation and shows up as an anomaly,
            # instead of being absorbed by a growing scale. The truncated mean absolute deviation is
            # corrected exactly, so the scale stays unbiased on normal data. (NaN compares False: a
            # missing value teaches nothing.) In-place updates: this runs per sample on the live path.
            with np.errstate(invalid="ignore"):
                ok = np.abs(z) < ADAPT_BAND
            step = np.where(ok, dev, 0.0)
            self.center += self.adapt * step
            self.scale += np.where(ok, self.adapt * (TRUNCATED_ABS_DEV_TO_SIGMA * np.abs(step) - self.scale), 0.0)
            np.maximum(self.scale, self.min_scale, out=self.scale)
        return scores

    def _update_small(self, row: list[float]) -> np.ndarray:
        """:meth:`update` for a handful of signals in plain floats: the same arithmetic without a dozen
        numpy calls of fixed overhead each (the live path scores one component sample per frame)."""
        centers, scales = self.center.tolist(), self.scale.tolist()
        adapt = not self.frozen and self.adapting
        a, floor = self.adapt, self.min_scale
        scores = []
        for i, value in enumerate(row):
            dev = value - centers[i]
            z = abs(dev / scales[i])
            scores.append(math.erf(z / _SQRT2) if z == z else 0.0)  # NaN (missing) -> 0, inf -> 1
            if adapt and z < ADAPT_BAND:  # NaN and inf compare False: they teach nothing
                centers[i] += a * dev
                scales[i] = max(scales[i] + a * (TRUNCATED_ABS_DEV_TO_SIGMA * abs(dev) - scales[i]), floor)
        if adapt:
            self.center = np.array(centers)
            self.scale = np.array(scales)
        return np.array(scores)

    def score_batch(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Scores of many samples (rows) with the current baseline, vectorised (replay mode; no adaptation)."""
        return _finite_or_zero(z_to_score(self.z(np.asarray(values, dtype=float).reshape(-1, self.n))))

    def state_dict(self) -> dict[str, Any]:
        """The learned state as JSON-ready data."""
        return {"kind": "robust-univariate", "n": self.n, "adapt": self.adapt, "min_scale": self.min_scale,
                "center": self.center.tolist(), "scale": self.scale.tolist(), "learned": self.learned,
                "frozen": self.frozen}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RobustUnivariate:
        """Rebuild from :meth:`state_dict` output."""
        det = cls(int(state["n"]), float(state["adapt"]), float(state["min_scale"]))
        det.center = np.asarray(state["center"], dtype=float)
        det.scale = np.asarray(state["scale"], dtype=float)
        det.learned = bool(state["learned"])
        det.frozen = bool(state["frozen"])
        return det


class MultivariateT2:
    """Hotelling's T² of a component's signals against a learned mean and shrunk covariance."""

    def __init__(self, n_signals: int, shrinkage: float = 0.01) -> None:
        self.n = n_signals
        self.shrinkage = shrinkage
        self.mean = np.zeros(n_signals)
        self.scale = np.ones(n_signals)
        self.precision = np.eye(n_signals)  # inverse covariance of the standardised signals
        self.learned = False

    def learn(self, values: np.ndarray) -> None:
        """Mean and covariance from a block of normal samples; rows with a NaN are left out."""
        block = np.asarray(values, dtype=float).reshape(-1, self.n)
        block = block[np.isfinite(block).all(axis=1)]
        if len(block) < 2:
            raise ValueError("need at least two complete samples to learn a covariance")
        self.mean = block.mean(axis=0)
        std = block.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        standard = (block - self.mean) / self.scale
        cov = np.atleast_2d(np.cov(standard, rowvar=False))
        # Shrink toward the identity: a few hundred samples give a noisy covariance whose small
        # eigenvalues would turn harmless wiggles into huge T².
        shrunk = (1.0 - self.shrinkage) * cov + self.shrinkage * np.eye(self.n)
        self.precision = np.linalg.pinv(shrunk)
        self.learned = True

    def t2(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T² per sample and each signal's share of it (rows = samples); missing values count as the mean."""
        standard = (np.asarray(values, dtype=float).reshape(-1, self.n) - self.mean) / self.scale
        standard = _finite_or_zero(standard)
        weighted = standard @ self.precision
        contributions = standard * weighted  # sums to T² (can be negative for correlated signals)
        return contributions.sum(axis=1), contributions

    def update(self, timestamp: float, values: Any) -> tuple[float, np.ndarray]:
        """(score, contribution of each signal as a share of T²) for one sample."""
        t2, contributions = self.t2(_as_row(values, self.n))
        total = float(t2[0])
        shares = contributions[0] / total if total > 1e-12 else np.zeros(self.n)
        return chi2_cdf_scalar(total, self.n), shares

    def score_batch(self, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Scores of many samples, vectorised."""
        return chi2_cdf(self.t2(values)[0], self.n)

    def state_dict(self) -> dict[str, Any]:
        """The learned state as JSON-ready data."""
        return {"kind": "multivariate-t2", "n": self.n, "shrinkage": self.shrinkage, "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "precision": self.precision.tolist(), "learned": self.learned}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MultivariateT2:
        """Rebuild from :meth:`state_dict` output."""
        det = cls(int(state["n"]), float(state["shrinkage"]))
        det.mean = np.asarray(state["mean"], dtype=float)
        det.scale = np.asarray(state["scale"], dtype=float)
        det.precision = np.asarray(state["precision"], dtype=float).reshape(det.n, det.n)
        det.learned = bool(state["learned"])
        return det


def ledoit_wolf(z: np.ndarray) -> np.ndarray:
    """Ledoit–Wolf shrunk covariance of the rows of ``z`` (shrinkage toward a scaled identity, data-driven)."""
    n, p = z.shape
    zc = z - z.mean(axis=0)
    sample = zc.T @ zc / n
    target = np.eye(p) * np.trace(sample) / p
    d2 = float(np.sum((sample - target) ** 2))
    if d2 <= 0:
        return sample
    outer = np.einsum("ni,nj->nij", zc, zc)
    b2 = float(np.sum((outer - sample) ** 2)) / n**2
    delta = min(b2, d2) / d2
    return delta * target + (1.0 - delta) * sample


class RobustMahalanobis:
    """Squared Mahalanobis distance per signal count (``d²/p``) against a robustly learned normal.

    Standardise by median and MAD (std where the MAD is 0, as for quantised sensors; never below a
    per-signal ``scale_floor``), fit a Ledoit–Wolf covariance, drop the training rows that look
    anomalous (chi-square 97.5 % rule, scaled to the median distance) and fit again. The raw
    score is uncalibrated; :class:`SmoothedThreshold` turns it into levels (see ANOMALY_NOTES.md).
    """

    def __init__(self, n_signals: int, scale_floor: np.ndarray | None = None) -> None:
        self.n = n_signals
        self.scale_floor = np.zeros(n_signals) if scale_floor is None else np.asarray(scale_floor, dtype=float)
        self.center = np.zeros(n_signals)
        self.whiten = np.eye(n_signals)  # w = (x - center) @ whiten; d² = |w|²
        self.learned = False

    def learn(self, values: np.ndarray) -> None:
        """Fit from a block of (mostly) normal samples; rows with a NaN are left out."""
        from viewer.analytics.calibration import chi2_cdf

        block = np.asarray(values, dtype=float).reshape(-1, self.n)
        block = block[np.isfinite(block).all(axis=1)]
        if len(block) < self.n + 2:
            raise ValueError(f"need at least {self.n + 2} complete samples to learn")
        med = np.median(block, axis=0)
        mad = MAD_TO_SIGMA * np.median(np.abs(block - med), axis=0)
        std = block.std(axis=0)
        scale = np.where(mad > 1e-9 * np.maximum(1.0, np.abs(med)), mad, np.maximum(std, 1e-9))
        scale = np.maximum(scale, self.scale_floor)
        z = (block - med) / scale
        mu0 = np.median(z, axis=0)
        c0 = ledoit_wolf(np.clip(z - mu0, -4.0, 4.0))
        d2 = np.einsum("ij,jk,ik->i", z - mu0, np.linalg.pinv(c0), z - mu0)
        # Keep the rows a chi-square with p dof would call normal at 97.5 %, scaled so the median matches.
        grid = np.linspace(0.0, 20.0 * self.n, 4001)
        cdf = chi2_cdf(grid, self.n)
        q975, q50 = np.interp(0.975, cdf, grid), np.interp(0.5, cdf, grid)
        keep = d2 <= q975 * np.median(d2) / max(q50, 1e-12)
        if keep.sum() < self.n + 2:
            keep = np.ones(len(z), dtype=bool)
        mu = z[keep].mean(axis=0)
        precision = np.linalg.pinv(ledoit_wolf(z[keep]))
        # Fold standardisation and covariance into one centre and one whitening matrix (the live path
        # is then a subtraction, a small matrix product and a dot product).
        eigval, eigvec = np.linalg.eigh((precision + precision.T) / 2)
        root = eigvec @ np.diag(np.sqrt(np.clip(eigval, 0.0, None))) @ eigvec.T
        self.center = med + mu * scale
        self.whiten = (root / scale[:, None]) / np.sqrt(self.n)
        self.learned = True

    def raw(self, values: np.ndarray) -> np.ndarray:
        """``d²/p`` per sample (rows); a missing value counts as the centre."""
        dev = _finite_or_zero(np.asarray(values, dtype=float).reshape(-1, self.n) - self.center)
        w = dev @ self.whiten
        return np.einsum("ij,ij->i", w, w)

    def state_dict(self) -> dict[str, Any]:
        """The learned state as JSON-ready data."""
        return {"kind": "robust-mahalanobis", "n": self.n, "scale_floor": self.scale_floor.tolist(),
                "center": self.center.tolist(), "whiten": self.whiten.tolist(), "learned": self.learned}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RobustMahalanobis:
        """Rebuild from :meth:`state_dict` output."""
        det = cls(int(state["n"]), np.asarray(state["scale_floor"], dtype=float))
        det.center = np.asarray(state["center"], dtype=float)
        det.whiten = np.asarray(state["whiten"], dtype=float).reshape(det.n, det.n)
        det.learned = bool(state["learned"])
        return det


class SmoothedThreshold:
    """An exponential average of a raw score, alarmed above ``factor`` × its maximum over the training rows."""

    def __init__(self, alpha: float = 0.1, factor: float = 1.25) -> None:
        self.alpha = alpha
        self.factor = factor
        self.threshold = np.inf
        self.value: float | None = None

    def _run(self, raw: np.ndarray) -> np.ndarray:
        out = np.empty(len(raw))
        value = raw[0] if self.value is None and len(raw) else self.value
        a = self.alpha
        for i, r in enumerate(raw.tolist()):  # a recursive filter: sequential by nature, cheap per step
            value = value + a * (r - value)
            out[i] = value
        self.value = value
        return out

    def learn(self, raw_training: np.ndarray) -> np.ndarray:
        """Run through the training scores (the warm-up) and set the threshold from their maximum."""
        smoothed = self._run(np.asarray(raw_training, dtype=float))
        self.threshold = self.factor * float(smoothed.max())
        return smoothed

    def update(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed scores and alarm flags for the next raw scores (continuing from the last one)."""
        smoothed = self._run(np.asarray(raw, dtype=float))
        return smoothed, smoothed > self.threshold
