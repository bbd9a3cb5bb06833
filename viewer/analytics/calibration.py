"""Tail probabilities in log form, and the score that turns evidence into a number in [0, 1).

Every statistic the scorer computes ends as *evidence*: ``-log10`` of the probability that a
normal sample would look at least this unusual. Evidence adds meaning across signals and
machines alike (3 = one normal sample in a thousand, 6 = one in a million) and never saturates.
The *score* shown and written out is ``1 - 10**-evidence`` up to :data:`CALIBRATED_EVIDENCE`
(so a threshold ``q`` on the score passes a share ``1 - q`` of normal samples), then it keeps
rising more slowly toward 1 (``1 - 10**-12 * (12 / e) ** 0.25``): strong anomalies stay ordered and
distinct in a float (1 - score stays above the float's 1e-16 up to e = 1e17), never reading 1.

Vectorised numpy and plain-float twins (the live path scores one sample at a time, where a
numpy call costs more than the arithmetic). No scipy at run time:

- the two-sided normal tail uses the Chebyshev fit of erfc by Press et al. (Numerical Recipes,
  ``erfcc``) in log form: relative error below 1.2e-7 for every z, no underflow up to any z;
- gamma (and so chi-square) upper tails are exact sums for integer shapes up to 64 and the
  Wilson–Hilferty cube-root normal approximation otherwise (slightly conservative in the far tail).
"""

from __future__ import annotations

import math

import numpy as np

LN10 = math.log(10.0)
CALIBRATED_EVIDENCE = 12.0  # up to 1 - 1e-12 the score is the probability itself
MAX_EXACT_SHAPE = 64
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _erfc_exponent(t: float | np.ndarray, x: float | np.ndarray) -> float | np.ndarray:
    """Numerical Recipes' erfcc: erfc(x) = t * exp(this), t = 1 / (1 + x/2); floats and arrays alike."""
    return -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))


def _log_erfc(x: float) -> float:
    """ln erfc(x) for x >= 0 (Numerical Recipes' erfcc, in log form)."""
    if x > 1e150:  # keeps x * x finite; such a tail is beyond any evidence that matters
        x = 1e150
    t = 1.0 / (1.0 + 0.5 * x)
    return math.log(t) + _erfc_exponent(t, x)


def normal_tail_ln(z: float) -> float:
    """ln P(|Z| >= |z|) for a standard normal Z (two-sided; 0 at z = 0, about -z²/2 far out)."""
    if z != z:
        return 0.0
    return _log_erfc(abs(z) * _INV_SQRT2)


# The live path reads -ln P(|Z| >= z) from a table (linear interpolation, error < 1e-5) up to
# TABLE_Z; beyond it the asymptotic expansion is as accurate.
TABLE_Z = 12.0
TABLE_STEP = 0.005
TABLE_PER_Z = 1.0 / TABLE_STEP


def _neg_tail_table() -> list[float]:
    return [-_log_erfc(i * TABLE_STEP * _INV_SQRT2) for i in range(int(TABLE_Z / TABLE_STEP) + 2)]


NEG_TAIL_TABLE = _neg_tail_table()
_HALF_LN_PI_OVER_2 = 0.5 * math.log(math.pi / 2.0)


def neg_tail_ln(abs_z: float) -> float:
    """-ln P(|Z| >= abs_z) for abs_z >= 0, fast (table, then the asymptotic series)."""
    if abs_z < TABLE_Z:
        x = abs_z * TABLE_PER_Z
        i = int(x)
        a = NEG_TAIL_TABLE[i]
        return a + (x - i) * (NEG_TAIL_TABLE[i + 1] - a)
    inv = 1.0 / (abs_z * abs_z)
    return 0.5 * abs_z * abs_z + math.log(abs_z) + _HALF_LN_PI_OVER_2 - math.log1p(inv * (-1.0 + 3.0 * inv))


def normal_tail_ln_array(z: np.ndarray) -> np.ndarray:
    """:func:`normal_tail_ln` of an array (NaN -> 0: a missing value is not evidence)."""
    x = np.abs(np.nan_to_num(np.asarray(z, dtype=float), nan=0.0)) * _INV_SQRT2
    t = 1.0 / (1.0 + 0.5 * x)
    return np.log(t) + _erfc_exponent(t, x)


def _upper_normal_ln(z: float) -> float:
    """ln P(Z >= z), one-sided."""
    if z >= 0:
        return _log_erfc(z * _INV_SQRT2) - math.log(2.0)
    return math.log1p(-0.5 * math.exp(_log_erfc(-z * _INV_SQRT2)))


def _ln_poisson_sum(x: float, k: int) -> float:
    """ln sum_{j<k} x^j / j!, so that P(Gamma(k) >= x) = exp(-x) * sum (exact for integer k), overflow-safe."""
    if x <= k:
        term = total = 1.0
        for j in range(1, k):
            term *= x / j
            total += term
        return math.log(total)
    # Far out the last term dominates: x^(k-1)/(k-1)! * (1 + (k-1)/x + (k-1)(k-2)/x^2 + ...).
    term = rest = 1.0
    for j in range(k - 1, 0, -1):
        term *= j / x
        rest += term
    return (k - 1) * math.log(x) - math.lgamma(k) + math.log(rest)


def _ln_half_integer_tail(x: float, m: int) -> float:
    """ln P(Gamma(m + 1/2) >= x), exact: erfc(sqrt x) + exp(-x) sum_{j=1..m} x^(j-1/2) / Gamma(j + 1/2)."""
    terms = [_log_erfc(math.sqrt(x))]
    ln_x = math.log(x)
    terms += [(j - 0.5) * ln_x - math.lgamma(j + 0.5) - x for j in range(1, m + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def gamma_tail_evidence(s: float, shape: float, scale: float = 1.0) -> float:
    """-log10 P(G >= s) for G ~ Gamma(shape, scale); 0 below the mean's neighbourhood is fine."""
    if not s > 0:
        return 0.0
    x = s / scale
    if shape == int(shape) and 1 <= shape <= MAX_EXACT_SHAPE:
        return (x - _ln_poisson_sum(x, int(shape))) / LN10
    if shape - 0.5 == int(shape - 0.5) and 0.5 <= shape <= MAX_EXACT_SHAPE:
        return -_ln_half_integer_tail(x, int(shape - 0.5)) / LN10
    dof = 2.0 * shape
    c = 2.0 / (9.0 * dof)
    z = ((2.0 * x / dof) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return -_upper_normal_ln(z) / LN10


def gamma_evidence_threshold(evidence: float, shape: float, scale: float = 1.0) -> float:
    """The smallest sum whose :func:`gamma_tail_evidence` reaches ``evidence`` (bisection)."""
    if not (shape > 0 and scale > 0 and math.isfinite(shape) and math.isfinite(scale)):
        raise ValueError(f"gamma law needs a positive finite shape and scale, not {shape!r}, {scale!r}")
    low, high = 0.0, shape * scale
    for _ in range(200):
        if gamma_tail_evidence(high, shape, scale) >= evidence:
            break
        high *= 2.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if gamma_tail_evidence(mid, shape, scale) < evidence:
            low = mid
        else:
            high = mid
    return high


def gamma_tail_evidence_array(s: np.ndarray, shape: float, scale: float = 1.0) -> np.ndarray:
    """:func:`gamma_tail_evidence` of an array (one shape and scale)."""
    x = np.maximum(np.asarray(s, dtype=float), 0.0) / scale
    if shape == int(shape) and 1 <= shape <= MAX_EXACT_SHAPE:
        k = int(shape)
        near = np.minimum(x, k)  # forward sum where x <= k
        term = np.ones_like(x)
        total = np.ones_like(x)
        for j in range(1, k):
            term = term * near / j
            total = total + term
        far_x = np.maximum(x, k)  # backward sum where x > k
        term = np.ones_like(x)
        rest = np.ones_like(x)
        for j in range(k - 1, 0, -1):
            term = term * j / far_x
            rest = rest + term
        ln_sum = np.where(x <= k, np.log(total), (k - 1) * np.log(far_x) - math.lgamma(k) + np.log(rest))
        return np.where(x > 0, (x - ln_sum) / LN10, 0.0)
    if shape - 0.5 == int(shape - 0.5) and 0.5 <= shape <= MAX_EXACT_SHAPE:
        m = int(shape - 0.5)
        safe = np.maximum(x, 1e-300)
        terms = [normal_tail_ln_array(np.sqrt(2.0 * safe))]  # ln erfc(sqrt x)
        ln_x = np.log(safe)
        terms += [(j - 0.5) * ln_x - math.lgamma(j + 0.5) - safe for j in range(1, m + 1)]
        stacked = np.vstack(terms)
        top = np.max(stacked, axis=0)
        ln_tail = top + np.log(np.sum(np.exp(stacked - top), axis=0))
        return np.where(x > 0, -ln_tail / LN10, 0.0)
    dof = 2.0 * shape
    c = 2.0 / (9.0 * dof)
    z = (np.cbrt(2.0 * x / dof) - (1.0 - c)) / math.sqrt(c)
    upper = np.where(z >= 0, normal_tail_ln_array(z) - math.log(2.0),
                     np.log1p(-0.5 * np.exp(normal_tail_ln_array(z))))
    return np.where(x > 0, -upper / LN10, 0.0)


def chi2_tail_evidence(x: float, dof: int) -> float:
    """-log10 P(chi² with ``dof`` degrees of freedom >= x)."""
    if dof == 1:
        return -normal_tail_ln(math.sqrt(max(x, 0.0))) / LN10
    return gamma_tail_evidence(0.5 * x, 0.5 * dof)


def chi2_tail_evidence_array(x: np.ndarray, dof: int) -> np.ndarray:
    """:func:`chi2_tail_evidence` of an array."""
    if dof == 1:
        return -normal_tail_ln_array(np.sqrt(np.maximum(x, 0.0))) / LN10
    return gamma_tail_evidence_array(0.5 * np.asarray(x, dtype=float), 0.5 * dof)


def evidence_to_score(evidence: float) -> float:
    """Evidence (decades) -> score in [0, 1): the probability itself up to 1e-12, then a slower rise."""
    if not evidence > 0:
        return 0.0
    if evidence <= CALIBRATED_EVIDENCE:
        return -math.expm1(-evidence * LN10)
    return 1.0 - 10.0 ** -CALIBRATED_EVIDENCE * (CALIBRATED_EVIDENCE / evidence) ** 0.25


def evidence_to_score_array(evidence: np.ndarray) -> np.ndarray:
    """:func:`evidence_to_score` of an array (NaN -> 0)."""
    e = np.nan_to_num(np.asarray(evidence, dtype=float), nan=0.0, posinf=1e300)
    e = np.maximum(e, 0.0)
    with np.errstate(divide="ignore"):
        compressed = 1.0 - 10.0 ** -CALIBRATED_EVIDENCE * (CALIBRATED_EVIDENCE / np.maximum(e, 1e-300)) ** 0.25
    return np.where(e <= CALIBRATED_EVIDENCE, -np.expm1(-e * LN10), compressed)


def score_to_evidence(score: float) -> float:
    """The inverse of :func:`evidence_to_score` (thresholds are given as scores, compared as evidence)."""
    if not score > 0:
        return 0.0
    if score >= 1.0:
        return math.inf
    tail = 1.0 - score
    if tail >= 10.0 ** -CALIBRATED_EVIDENCE:
        return -math.log10(tail)
    return CALIBRATED_EVIDENCE * (10.0 ** -CALIBRATED_EVIDENCE / tail) ** 4


def describe_rarity(evidence: float) -> str:
    """'1 in 3,000', '1 in 2.1 million', ... how rare a normal sample this unusual would be."""
    if evidence < 0.3:
        return "ordinary"
    if evidence > 15:
        return "far beyond anything normal"
    odds = 10.0 ** evidence
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if odds >= size:
            return f"1 in {odds / size:.2g} {word}"
    return f"1 in {odds:,.0f}" if odds >= 100 else f"1 in {odds:.2g}"
