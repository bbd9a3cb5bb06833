"""Turning test statistics into scores that mean the same on every signal.

A score is a probability-like number in [0, 1]: how sure we are that a value is
not normal, given what normal looked like. A z-score becomes 1 − (two-sided tail
probability); a Hotelling T² with d degrees of freedom becomes its chi-square CDF.
So a threshold of 0.999 means "one sample in a thousand of normal data would
pass it" for a single sensor and for a whole machine alike.

Vectorised numpy only (no scipy at run time): erf by Abramowitz & Stegun 7.1.26
(|error| < 1.5e-7) and the chi-square CDF by the Wilson–Hilferty cube-root
normal approximation (accurate to ~1e-3 in the tail region that matters here).
"""

from __future__ import annotations

import math

import numpy as np

_SQRT2 = np.sqrt(2.0)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, vectorised (Abramowitz & Stegun 7.1.26)."""
    x = np.asarray(x, dtype=float)
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF."""
    return 0.5 * (1.0 + erf(np.asarray(z, dtype=float) / _SQRT2))


def z_to_score(z: np.ndarray) -> np.ndarray:
    """|z| -> 1 − two-sided tail probability, in [0, 1]; NaN stays NaN."""
    return erf(np.abs(np.asarray(z, dtype=float)) / _SQRT2)


def chi2_cdf(x: np.ndarray, dof: int) -> np.ndarray:
    """Chi-square CDF with ``dof`` degrees of freedom (exact for 1 and 2, else Wilson–Hilferty)."""
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    if dof == 1:
        return erf(np.sqrt(x / 2.0))
    if dof == 2:
        return 1.0 - np.exp(-x / 2.0)
    k = float(dof)
    c = 2.0 / (9.0 * k)
    z = (np.cbrt(x / k) - (1.0 - c)) / np.sqrt(c)
    return normal_cdf(z)


def chi2_cdf_scalar(x: float, dof: int) -> float:
    """:func:`chi2_cdf` for one number with the math module (the live path: no numpy call overhead)."""
    if not math.isfinite(x):
        return 1.0 if x > 0 else 0.0
    x = max(x, 0.0)
    if dof == 1:
        return math.erf(math.sqrt(x / 2.0))
    if dof == 2:
        return 1.0 - math.exp(-x / 2.0)
    c = 2.0 / (9.0 * dof)
    z = ((x / dof) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def clean_score(score: np.ndarray) -> np.ndarray:
    """Scores the scene may use: NaN and infinities never leave the analytics package (NaN -> 0)."""
    score = np.asarray(score, dtype=float)
    return np.clip(np.nan_to_num(score, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
