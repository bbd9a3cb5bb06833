"""What normal looks like for one signal, and how unusual each new value is.

A :class:`SignalModel` learns from a block of normal values and then scores one value at a
time (the live path; plain floats, no numpy per sample). What it knows:

- **Operating levels** (modes): a signal that switches between idle and running, or between
  products, is a few levels, each with its own centre and robust spread; a value is judged
  against the nearest one. Levels are found where the sorted learning values leave an empty
  gap much wider than the signal's short-term noise (so quantised and cyclic signals stay one
  level). A lasting new level is flagged, then added when it is accepted as the new normal.
- **Value evidence**: ``-ln P(|Z| >= |z|)`` of the value's robust z against its level, with
  a heavier exponential tail where the learning data showed more extreme values than a normal
  distribution would.
- **Persistence**: the sum of the last ``w`` samples' evidence (each capped, so one spike
  cannot carry a window), against a gamma law whose shape and scale follow the learning data's
  autocorrelation (Brown's method): a moderate but lasting shift or spread increase builds up
  where no single sample is remarkable.
- **Flat line**: a run of exactly repeated values, against how often the learning data
  repeated (a stuck sensor repeats forever; a quantised one often, so it needs a long run).
- **Rhythm**: how long the signal stays on one side of its level centre, learned online from
  completed stretches (a shift pattern, a daily cycle, a batch sawtooth); a stretch far longer
  than any seen is a broken rhythm (the cycle stopped, the batch never emptied).

The baseline follows slow drift (only on values that look normal) and new levels learn fast at
first (a running mean over their first samples). Everything is plain JSON in :meth:`state_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from viewer.analytics.calibration import (
    LN10,
    NEG_TAIL_TABLE,
    TABLE_PER_Z,
    TABLE_Z,
    gamma_evidence_threshold,
    gamma_tail_evidence,
    gamma_tail_evidence_array,
    neg_tail_ln,
    normal_tail_ln_array,
)

MAD_TO_SIGMA = 1.4826
ADAPT_BAND = 2.5758  # |z| below this (99 % of normal values) teaches the baseline
ADAPT_EVERY = 4  # drift following runs on every 4th such value, with 4 steps' weight
YOUNG_LEVEL = 100.0  # a level learned from fewer samples than this keeps learning on every value near it
YOUNG_BAND = 4.0
TRUNCATED_3_SIGMA = 0.98658  # sd of a standard normal cut at ±3, so the cut sd / this = sigma
TRUNCATED_BAND_VAR = 0.92481  # variance of a standard normal cut at ±2.5758 (the adaptation band)
MODE_GAP = 6.0  # a new level needs an empty gap this many noise sigmas wide
RHYTHM_BAND = 0.5  # |z| a value must pass to count as being on one side of the level centre
RHYTHM_MIN_STRETCHES = 6
Z_LIMIT = 1e6  # |z| beyond this counts as this far: evidence stays finite (~2e11 decades) and sums too
Z_RELATION = 5.0  # z-scores entering T² are clipped, so one wild signal does not become a "relation"
RECURRING_EPISODES = 3  # a level unknown to the model that comes back this often is an operating level
RHYTHM_MIN_MEAN = 10.0  # samples: a mean stretch shorter than this is noise around a level, not a rhythm
RUN_MIN_STRETCHES = 60  # ... whose run law needs this many stretches to be trusted
RHYTHM_IN_BAND = 3.0  # a broken rhythm is a value inside its band that stays on one side too long
RHYTHM_MAX_SHAPE = 50.0
LOG10_2 = math.log10(2.0)


@dataclass(frozen=True)
class SignalSettings:
    """The per-signal part of the scorer's configuration."""

    windows: tuple[int, ...] = (8,)  # persistence windows (samples), besides the single sample
    window_cap: float = 9.21  # ln(1e4): beyond "one in 10,000" a sample adds only the log of the rest (soft_cap)
    adapt: float = 1e-3  # slowest drift-following rate of a level (per sample)
    gate: float = 2.0  # a signal adapts only while its own evidence is below this (decades)
    max_modes: int = 6
    run_margin: float = 3.0  # decades a run on one side of the level must beat its law by


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and a robust sigma: the standard deviation of the values within 3 MAD-sigmas of the
    median, corrected for that cut (nearly as efficient as the plain standard deviation on normal
    data, unmoved by a few outliers); the plain standard deviation where the MAD is 0 (quantised)."""
    med = float(np.median(values))
    mad = MAD_TO_SIGMA * float(np.median(np.abs(values - med)))
    if not mad > 0:
        return med, float(np.std(values))
    kept = values[np.abs(values - med) < 3.0 * mad]
    return med, float(np.sqrt(np.mean((kept - med) ** 2))) / TRUNCATED_3_SIGMA


def short_term_noise(values: np.ndarray) -> float:
    """The sample-to-sample noise sigma, from first differences (robust to level changes)."""
    d = np.diff(values)
    if len(d) == 0:
        return 0.0
    noise = MAD_TO_SIGMA * float(np.median(np.abs(d))) / math.sqrt(2.0)
    return noise if noise > 0 else float(np.std(d)) / math.sqrt(2.0)


def find_modes(values: np.ndarray, floor: float, noise: float, max_modes: int) -> list[list[float]]:
    """Operating levels of ``values``: [centre, scale, count] each, split at wide empty gaps."""
    v = np.sort(np.asarray(values, dtype=float))
    smallest = max(5, int(0.03 * len(v)))  # a level needs a few percent of the samples
    pending = [(0, len(v))]
    modes: list[list[float]] = []
    while pending:
        a, b = pending.pop()
        part = v[a:b]
        if b - a >= 2 * smallest and len(modes) + len(pending) + 1 < max_modes:
            gaps = np.diff(part)
            lo, hi = smallest - 1, (b - a) - smallest
            if hi > lo:
                i = lo + int(np.argmax(gaps[lo:hi]))
                left = max(robust_location_scale(part[: i + 1])[1], floor)
                right = max(robust_location_scale(part[i + 1:])[1], floor)
                if gaps[i] > MODE_GAP * max(left, right, noise):
                    pending += [(a, a + i + 1), (a + i + 1, b)]
                    continue
        centre, scale = robust_location_scale(part)
        modes.append([centre, max(scale, floor), float(b - a)])
    modes.sort()
    return modes


def soft_cap(y: float, cap: float) -> float:
    """One sample's share of a window sum: its evidence up to ``cap``, then only the log of the rest.

    One spike cannot carry a window (an 8-sigma spike adds about 13 instead of 32), yet a stronger lasting
    anomaly still sums to more than a weaker one, so window evidence keeps ordering them.
    """
    return y if y <= cap else cap + math.log1p(y - cap)


def soft_cap_array(y: np.ndarray, cap: float) -> np.ndarray:
    """:func:`soft_cap` of an array."""
    return np.where(y <= cap, y, cap + np.log1p(np.maximum(y - cap, 0.0)))


def capped_exponential_moments(cap: float) -> tuple[float, float]:
    """Mean and variance of min(X, cap) for X ~ Exp(1): the null law of one sample's capped evidence."""
    return 1.0 - math.exp(-cap), 1.0 - 2.0 * cap * math.exp(-cap) - math.exp(-2.0 * cap)


def window_laws(y: np.ndarray, windows: tuple[int, ...], null_mean: float, null_var: float,
                ) -> list[tuple[float, float]]:
    """Gamma (shape, scale) of the sums of ``w`` consecutive values of the series ``y``.

    Independent normal samples give sums of independent values with the null mean and variance
    (capped Exp(1) evidence: shape ``w``, scale 1, the exact law). Where the learning data's window
    sums are clearly more variable than that (autocorrelated samples, or tails heavier than the
    model's), the law widens to the sums' own mean and variance (a direct form of Brown's method,
    1975). Only a clear excess counts (beyond two and a half standard errors of the variance
    estimate), so independent data keep the exact law instead of one widened by estimation noise.
    """
    n = len(y)
    laws = []
    for w in windows:
        mean, var = w * null_mean, w * null_var
        if n >= 4 * w + 20:
            sums = np.convolve(y, np.ones(w), mode="valid")
            independent = len(sums) / w  # overlapping windows: about this many independent ones
            mean_s, var_s = float(np.mean(sums)), float(np.var(sums))
            if mean_s > mean + 2.5 * math.sqrt(var / independent):
                mean = mean_s
            if var_s > var * (1.0 + 2.5 * math.sqrt(2.0 / independent)):
                var = var_s
        shape, scale = mean * mean / var, var / mean
        if abs(shape - round(shape)) < 0.01 * shape and abs(scale - 1.0) < 0.01:
            shape, scale = float(round(shape)), 1.0  # the exact law (the cap is negligible)
        laws.append((shape, scale))
    return laws


def _stretch_events(z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Where :meth:`SignalModel.update` ends a stretch: a new level, or a value past the band on the other side."""
    sign = np.where(z > RHYTHM_BAND, 1, np.where(z < -RHYTHM_BAND, -1, 0))
    idx = np.arange(len(z))
    mode_change = np.concatenate([[k[0] != 0], k[1:] != k[:-1]]) if len(k) else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(mode_change, idx, 0))
    # The side before each sample: the last non-zero sign since its level was entered (0 if none).
    last_nonzero = np.maximum.accumulate(np.where(sign != 0, idx, -1))
    prev = np.concatenate([[-1], last_nonzero[:-1]])
    side_before = np.where((prev >= group_start) & (prev >= 0), sign[np.maximum(prev, 0)], 0)
    side_before = np.where(mode_change, 0, side_before)
    return mode_change | ((sign != 0) & (sign != side_before))


def _run_lengths(repeat: np.ndarray) -> np.ndarray:
    """For each position, how many consecutive True values end there (0 where False)."""
    idx = np.arange(len(repeat))
    last_false = np.maximum.accumulate(np.where(~repeat, idx, -1))
    return np.where(repeat, idx - last_false, 0)


class SignalModel:
    """One signal's normal behaviour and per-value evidence (see the module docstring)."""

    def __init__(self, settings: SignalSettings | None = None) -> None:
        self.settings = settings or SignalSettings()
        self.learned = False
        self.modes: list[list[float]] = []  # [centre, scale, count, time last used]
        self.floor = 1e-12
        self.noise = 0.0
        self.tail = (0.0, 1.0)  # (share of |z| > 3, mean excess) of a heavier tail; 0 = normal
        self.window_laws: list[tuple[float, float]] = []  # gamma (shape, scale) per window
        self._window_floor: list[float] = []  # per window: the sum below which it gives < 1 decade
        self.set_repeat(0.5, 0.5)  # P(a run of repeats starts), P(it goes on)
        self.nonnegative = False
        self.stretches = [0.0, 0.0, 0.0, 0.0]  # rhythm: completed stretches n, mean, M2, max
        self._stretch_law: tuple[str, float, float] = ("none", 0.0, 0.0)
        self.candidates: list[list[float]] = []  # levels seen in episodes: [centre, scale, episodes, last time]
        self.held = math.nan  # a value accepted as held (a flat line accepted as the new normal)
        self.reset_statistics()

    # --- learning -----------------------------------------------------------------------------------
    def learn(self, values: np.ndarray) -> None:
        """Learn normal from a block of values in time order (NaNs are skipped)."""
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if len(v) < 10:
            self.learned = False
            return
        d = np.diff(v)
        nonzero = np.abs(d[d != 0])
        resolution = float(np.percentile(nonzero, 5)) if len(nonzero) else 0.0
        # The magnitude from the median: one error code (3.4e38) in the learning block must not set the floor.
        self.floor = max(1e-9 * max(1.0, float(np.median(np.abs(v)))), 0.3 * resolution, 1e-12)
        self.noise = max(short_term_noise(v), self.floor)
        # Learned levels are trusted (never "young"): only a level accepted from a few samples keeps learning.
        self.modes = [[c, s, max(n, YOUNG_LEVEL), 0.0]
                      for c, s, n in find_modes(v, self.floor, self.noise, self.settings.max_modes)]
        self.nonnegative = bool(np.min(v) >= 0)
        z, ks = self.nearest_array(v)
        self._learn_tail(np.abs(z))
        self._learn_windows(z)
        zero = d == 0
        runs = int(np.sum(zero[1:] & ~zero[:-1])) + int(len(zero) > 0 and bool(zero[0]))
        repeats = int(zero.sum())
        self.set_repeat((runs + 0.5) / (len(d) + 1.0), (repeats - runs + 0.5) / (repeats + 1.0))
        self.stretches = [0.0, 0.0, 0.0, 0.0]
        self.reset_statistics()
        self._learn_stretches(z, ks)
        self.learned = True

    def _learn_tail(self, abs_z: np.ndarray) -> None:
        beyond = abs_z[abs_z > 3.0] - 3.0
        expected = 0.0027 * len(abs_z)  # a normal distribution puts 0.27 % beyond 3 sigma
        if len(beyond) > 3.0 * expected + 3.0:
            self.tail = (len(beyond) / len(abs_z), max(float(np.mean(beyond)), 0.3))
        else:
            self.tail = (0.0, 1.0)

    def _learn_windows(self, z: np.ndarray) -> None:
        cap = self.settings.window_cap
        y = soft_cap_array(self.neg_ln_p_array(z), cap)
        self.window_laws = window_laws(y, self.settings.windows, *capped_exponential_moments(cap))
        self._window_floor = [gamma_evidence_threshold(1.0, a, b) for a, b in self.window_laws]

    def set_repeat(self, p_start: float, p_more: float) -> None:
        """How likely a run of repeated values starts and goes on (the flat-line evidence follows)."""
        self.repeat = (p_start, p_more)
        self._flat_base = -math.log10(p_start) - LOG10_2
        self._flat_step = -math.log10(p_more)

    def reset_statistics(self) -> None:
        """Forget the running window sums, repeat runs and the current rhythm stretch."""
        longest = max(self.settings.windows, default=1)
        self.ring = [0.0] * longest
        self.ring_pos = 0
        self.sums = [0.0] * len(self.settings.windows)
        self.last = math.nan
        self.run = 0
        self.side = 0  # +1 above the band of the level, -1 below, 0 not yet known
        self.side_mode = 0
        self.stretch = 0
        self.mode_index = 0
        self._windows = tuple(self.settings.windows) or (1,)
        self._w0 = self._windows[0]
        self._more_windows = len(self._windows) > 1
        self._next_pos = [*range(1, longest), 0]
        self._cap = self.settings.window_cap
        self._adapt = self.settings.adapt
        self._countdown = ADAPT_EVERY
        self._set_rhythm_limit()

    # --- scoring ------------------------------------------------------------------------------------
    def nearest(self, x: float) -> tuple[float, int]:
        """(z against the nearest level, that level's index)."""
        best_z, best = 0.0, -1
        for i, mode in enumerate(self.modes):
            z = (x - mode[0]) / mode[1]
            if best < 0 or abs(z) < abs(best_z):
                best_z, best = z, i
        return best_z, max(best, 0)

    def nearest_array(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`nearest` of many values: (z, level index) arrays (a missing value: z 0)."""
        x = np.asarray(values, dtype=float)
        centres = np.array([m[0] for m in self.modes])
        scales = np.array([m[1] for m in self.modes])
        zz = (np.nan_to_num(x)[:, None] - centres) / scales
        k = np.argmin(np.abs(zz), axis=1)
        z = np.where(np.isfinite(x), zz[np.arange(len(x)), k], 0.0)
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=Z_LIMIT, neginf=-Z_LIMIT), -Z_LIMIT, Z_LIMIT), k

    def neg_ln_p_array(self, z: np.ndarray) -> np.ndarray:
        """-:meth:`value_ln_p` of many z-scores."""
        a = np.abs(z)
        y = -normal_tail_ln_array(z)
        share, excess = self.tail
        if share > 0:
            y = np.where(a > 3.0, np.minimum(y, (a - 3.0) / excess - math.log(share)), y)
        return y

    def value_ln_p(self, z: float) -> float:
        """ln P(a normal value is at least this far out): normal tail, or the learned heavier one."""
        a = abs(z)
        y = neg_tail_ln(a)
        share, excess = self.tail
        if share > 0 and a > 3.0:
            y = min(y, (a - 3.0) / excess - math.log(share))
        return -y

    def update(self, x: float, time: float, adapt: bool, learn: bool) -> tuple[float, str, float]:
        """Evidence (decades), its kind and the z the component's T² uses (clipped at ±Z_RELATION; 0 for a
        level still being learned) of one value; NaN -> (0, "", 0).

        ``adapt``: follow drift on a normal-looking value and let a completed stretch teach the
        rhythm (the component is normal); ``learn``: let a young level learn (the reference is not
        frozen). This is the live path (every signal of every component, every frame): plain
        floats, locals, the common single-level case first, tails computed only where they matter.
        """
        if x != x or not self.learned:
            return 0.0, "", 0.0
        modes = self.modes
        if len(modes) == 1:
            k, mode = 0, modes[0]
            z = (x - mode[0]) / mode[1]
        else:
            z, k = self.nearest(x)
            mode = modes[k]
            if k != self.mode_index:
                mode[3] = time  # when each level was last entered: the oldest goes first when full
                self.mode_index = k
        a = z if z >= 0 else -z
        if a > Z_LIMIT or a != a:  # a wild value (1e300, a decoding slip): far out, but finite evidence
            a = Z_LIMIT
            z = Z_LIMIT if x > mode[0] else -Z_LIMIT
        if a < TABLE_Z:  # -ln P(|Z| >= a): calibration.neg_tail_ln, inlined
            f = a * TABLE_PER_Z
            i = int(f)
            y = NEG_TAIL_TABLE[i]
            y += (f - i) * (NEG_TAIL_TABLE[i + 1] - y)
        else:
            y = neg_tail_ln(a)
        if a > 3.0 and self.tail[0] > 0:
            y = min(y, (a - 3.0) / self.tail[1] - math.log(self.tail[0]))
        evidence, kind = y / LN10, "value"
        # Persistence windows over capped evidence: a running sum per window, one ring for all.
        capped = y if y <= self._cap else self._cap + math.log1p(y - self._cap)  # soft_cap, inlined
        ring, pos, sums = self.ring, self.ring_pos, self.sums
        total = sums[0] + capped - ring[pos - self._w0]  # a negative index wraps around the ring
        sums[0] = total
        if total > self._window_floor[0]:  # below it the window says less than one decade
            e = gamma_tail_evidence(total, *self.window_laws[0])
            if e > evidence:
                evidence, kind = e, "level"
        if self._more_windows:
            for j in range(1, len(self._windows)):
                total = sums[j] + capped - ring[pos - self._windows[j]]
                sums[j] = total
                if total > self._window_floor[j]:
                    e = gamma_tail_evidence(total, *self.window_laws[j])
                    if e > evidence:
                        evidence, kind = e, "level"
        ring[pos] = capped
        self.ring_pos = self._next_pos[pos]
        if x == self.last and x != self.held:  # a flat line (not at a value accepted as held)
            self.run += 1
            e = self._flat_base + (self.run - 1) * self._flat_step
            if e > evidence:
                evidence, kind = e, "flat"
        else:
            self.run = 0
            self.last = x
        # Rhythm: a stretch ends when the value passes the band on the other side of its level.
        sign = 1 if z > RHYTHM_BAND else -1 if z < -RHYTHM_BAND else 0
        if (sign and sign != self.side) or k != self.side_mode:
            if self.side and adapt and evidence < self.settings.gate:
                self._learn_stretch(self.stretch + 1.0)
            self.stretch = 0
            self.side, self.side_mode = sign, k
        else:
            self.stretch += 1
            if self.stretch > self._rhythm_limit and a < RHYTHM_IN_BAND:  # outside the band: a level shift
                e = self._rhythm_evidence()
                if e > evidence:
                    evidence, kind = e, "rhythm"
        if mode[2] < YOUNG_LEVEL:
            # A level just accepted from a few samples is still being learned: a running mean and
            # variance on every value near it, whatever the evidence (it is the model that is unsure).
            if a < YOUNG_BAND and learn:
                self._follow_young(mode, x)
        elif adapt and a < ADAPT_BAND and evidence < self.settings.gate:
            self._countdown -= 1
            if self._countdown <= 0:
                self._follow(mode, x)
        if mode[2] < YOUNG_LEVEL:
            z = 0.0  # a level still being learned says nothing of the component's relation (T²)
        return evidence, kind, (z if z < Z_RELATION else Z_RELATION) if z > -Z_RELATION else -Z_RELATION

    def _follow(self, mode: list[float], x: float) -> None:
        """Drift following, on every ADAPT_EVERY-th normal-looking value with that many steps' weight
        (the same time constant at a fraction of the cost): a running mean while the level is young,
        then a slow exponential one; the spread follows the second moment of the in-band deviations,
        corrected for the band's cut so it agrees with the learning estimate."""
        self._countdown = ADAPT_EVERY
        rate = ADAPT_EVERY / (mode[2] + ADAPT_EVERY)
        if rate < ADAPT_EVERY * self._adapt:
            rate = ADAPT_EVERY * self._adapt
        mode[2] += ADAPT_EVERY
        dev = x - mode[0]
        mode[0] += rate * dev
        var = mode[1] * mode[1]
        var += rate * (dev * dev / TRUNCATED_BAND_VAR - var)
        mode[1] = math.sqrt(var) if var > self.floor * self.floor else self.floor

    def evidence_batch(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(evidence, z for the relation) of many values in time order, as a frozen model streaming them
        from fresh running statistics would give (vectorised; the model itself is not changed)."""
        x = np.asarray(values, dtype=float)
        missing = ~np.isfinite(x)
        if not self.learned:
            return np.zeros(len(x)), np.zeros(len(x))
        z, k = self.nearest_array(x)
        y = np.where(missing, 0.0, self.neg_ln_p_array(z))
        evidence = y / LN10
        # The streaming path skips a missing value entirely: windows and runs see only real values.
        seen = ~missing
        ys = soft_cap_array(y[seen], self._cap)
        window_e = np.zeros(int(seen.sum()))
        c = np.cumsum(ys)
        for (shape, scale), w, floor in zip(self.window_laws, self._windows, self._window_floor, strict=True):
            sums = c.copy()
            sums[w:] = c[w:] - c[:-w]
            window_e = np.maximum(window_e, np.where(sums > floor, gamma_tail_evidence_array(sums, shape, scale), 0.0))
        e_seen = np.maximum(evidence[seen], window_e)
        xs, ks, zs = x[seen], k[seen], z[seen]
        if len(xs):
            repeat = np.concatenate([[False], xs[1:] == xs[:-1]])
            run = _run_lengths(repeat)
            flat = np.where(run > 0, self._flat_base + (run - 1) * self._flat_step, 0.0)
            e_seen = np.maximum(e_seen, flat)
            e_seen = np.maximum(e_seen, self._rhythm_batch(zs, ks))
        evidence[seen] = e_seen
        young = np.array([m[2] < YOUNG_LEVEL for m in self.modes])[k]
        return evidence, np.clip(np.where(young, 0.0, z), -Z_RELATION, Z_RELATION)  # as T² sees it

    def _rhythm_batch(self, z: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The rhythm evidence of :meth:`update`'s stretch counting, vectorised (no learning)."""
        if not math.isfinite(self._rhythm_limit):
            return np.zeros(len(z))
        n = len(z)
        idx = np.arange(n)
        event = _stretch_events(z, k)
        last_event = np.maximum.accumulate(np.where(event, idx, -1))
        stretch = np.where(last_event >= 0, idx - last_event, idx + 1).astype(float)
        long = (stretch > self._rhythm_limit) & (np.abs(z) < RHYTHM_IN_BAND)
        out = np.zeros(n)
        if long.any():
            law = self._stretch_law
            if law[0] == "gamma":
                out[long] = gamma_tail_evidence_array(stretch[long], law[1], law[2]) - 1.0
            else:
                out[long] = stretch[long] * law[1] - self.settings.run_margin
        return out

    def _follow_young(self, mode: list[float], x: float) -> None:
        """Welford's running mean and variance for a young level (the spread never below the noise)."""
        mode[2] += 1.0
        rate = 1.0 / mode[2]
        dev = x - mode[0]
        mode[0] += rate * dev
        var = mode[1] * mode[1]
        var += rate * (dev * (x - mode[0]) - var)
        floor = max(self.noise, self.floor)
        mode[1] = math.sqrt(var) if var > floor * floor else floor

    def _learn_stretch(self, length: float) -> None:
        """A completed stretch teaches the rhythm (Welford's running mean and variance)."""
        st = self.stretches
        st[0] += 1.0
        delta = length - st[1]
        st[1] += delta / st[0]
        st[2] += delta * (length - st[1])
        if length > st[3]:
            st[3] = length
            self._set_rhythm_limit()
        elif st[0] >= RHYTHM_MIN_STRETCHES:
            self._set_rhythm_limit()

    def _set_rhythm_limit(self) -> None:
        """The law of how long the signal keeps to one side of its level, from the completed stretches.

        A rhythm (a cycle, a batch): long stretches (at least RHYTHM_MIN_MEAN samples on average) with
        a regular length, a gamma law fitted to them. Noise around a level: stretches a few samples
        long, geometric, with the chance of going on estimated on the safe side (the upper end of the
        mean's confidence interval); a long run on one side is then a small lasting shift (a sign test).
        Either way evidence starts only past the longest stretch seen (1.5 times it for a rhythm) and
        keeps a decade of margin.
        """
        n, mean, m2, longest = self.stretches
        if n < RHYTHM_MIN_STRETCHES or mean <= 1.0:
            self._rhythm_limit, self._stretch_law = math.inf, ("none", 0.0, 0.0)
        elif mean >= RHYTHM_MIN_MEAN:
            var = max(m2 / (n - 1.0), 1.0)
            shape = min(mean * mean / var, RHYTHM_MAX_SHAPE)
            self._rhythm_limit, self._stretch_law = 1.5 * longest, ("gamma", shape, mean / shape)
        elif n >= RUN_MIN_STRETCHES:
            upper = mean * (1.0 + 2.0 / math.sqrt(n))
            self._rhythm_limit = longest
            self._stretch_law = ("geometric", -math.log10(1.0 - 1.0 / upper), 0.0)
        else:
            self._rhythm_limit, self._stretch_law = math.inf, ("none", 0.0, 0.0)

    def _rhythm_evidence(self) -> float:
        """Evidence of the current stretch under the learned law, less a decade of margin."""
        law = self._stretch_law
        if law[0] == "gamma":
            return gamma_tail_evidence(float(self.stretch), law[1], law[2]) - 1.0
        return self.stretch * law[1] - self.settings.run_margin

    def _learn_stretches(self, z: np.ndarray, k: np.ndarray) -> None:
        """The completed stretches of the learning block start the rhythm's statistics."""
        starts = np.flatnonzero(_stretch_events(z, k))
        lengths = np.diff(starts).astype(float)
        if len(lengths):
            self.stretches = [float(len(lengths)), float(np.mean(lengths)),
                              float(np.sum((lengths - np.mean(lengths)) ** 2)), float(np.max(lengths))]
        self._set_rhythm_limit()

    # --- new normal ---------------------------------------------------------------------------------
    def accept(self, recent: np.ndarray, time: float, kind: str = "") -> None:
        """Take the recent values as normal too.

        Each group of them that no level explains becomes a new level; a group at a known level but
        much wider widens it (a lasting spread change); groups a level already explains change
        nothing. ``kind`` is what the signal showed: an accepted flat line makes repeats ordinary, an
        accepted broken rhythm forgets the old rhythm (it is learned again from the new stretches).
        """
        v = np.asarray(recent, dtype=float)
        v = v[np.isfinite(v)]
        if not self.learned or len(v) == 0:
            return
        if len(v) < 10:
            found = [[float(np.median(v)), 0.0, float(len(v))]]
        else:
            found = find_modes(v, self.floor, self.noise, self.settings.max_modes)
        for centre, scale, count in found:
            z, k = self.nearest(centre)
            mode = self.modes[k]
            if abs(z) <= 2.0:
                if scale > 1.5 * mode[1]:
                    mode[1] = scale
                    mode[2] = min(mode[2], count)
                mode[3] = time
                continue
            width = max(scale, self.noise, self.floor) if len(v) >= 10 else max(mode[1], self.floor)
            self.modes.append([centre, width, count, time])
        if len(self.modes) > self.settings.max_modes:  # the level not seen for longest goes first
            self.modes.sort(key=lambda m: -m[3])
            del self.modes[self.settings.max_modes:]
        self.modes.sort(key=lambda m: m[0])
        if kind == "flat":
            self.held = float(v[-1])  # this value may stay as long as it likes now
        if kind in ("flat", "rhythm"):  # a held value has no rhythm either: learn it again from what comes
            self.stretches = [0.0, 0.0, 0.0, 0.0]
        self.reset_statistics()

    def note_episode(self, recent: np.ndarray, time: float, keep_s: float) -> bool:
        """An episode ended without being accepted: remember the levels its values showed that no learned
        level explains; a level that comes back in RECURRING_EPISODES episodes (each within ``keep_s`` of
        the last) is an operating level the learning period did not see, and is learned. Returns whether
        one was."""
        v = np.asarray(recent, dtype=float)
        v = v[np.isfinite(v)]
        if not self.learned or len(v) < 3:
            return False
        self.candidates = [c for c in self.candidates if time - c[3] <= keep_s]
        found = find_modes(v, self.floor, self.noise, self.settings.max_modes) if len(v) >= 10 else \
            [[float(np.median(v)), max(self.noise, self.floor), float(len(v))]]
        promoted = False
        for centre, scale, count in found:
            if abs(self.nearest(centre)[0]) <= 3.0:
                continue  # a learned level explains these values
            match = next((c for c in self.candidates if abs(centre - c[0]) < 3.0 * max(c[1], scale)), None)
            if match is None:
                self.candidates.append([centre, max(scale, self.noise, self.floor), 1.0, time])
                continue
            match[2] += 1.0
            match[3] = time
            if match[2] >= RECURRING_EPISODES:
                self.modes.append([match[0], match[1], max(count, YOUNG_LEVEL), time])
                self.candidates.remove(match)
                promoted = True
        if promoted:
            if len(self.modes) > self.settings.max_modes:
                self.modes.sort(key=lambda m: -m[3])
                del self.modes[self.settings.max_modes:]
            self.modes.sort(key=lambda m: m[0])
            self.mode_index = self.side_mode = 0  # indices into the re-sorted levels
        del self.candidates[4:]
        return promoted

    # --- what the operator sees ---------------------------------------------------------------------
    def normal_band(self, width: float = 3.0) -> tuple[float, float] | None:
        """The band of the current level (centre ± width sigmas), inside the signal's physical range."""
        if not self.learned or not self.modes:
            return None
        centre, scale = self.modes[min(self.mode_index, len(self.modes) - 1)][:2]
        low, high = centre - width * scale, centre + width * scale
        if self.nonnegative:
            low, high = max(low, 0.0), max(high, 0.0)
        return low, high

    def level_bands(self, width: float = 3.0) -> list[tuple[float, float]]:
        """The band (centre ± width sigmas) of every learned level, lowest first, inside the physical range."""
        floor = 0.0 if self.nonnegative else -math.inf
        return [(max(m[0] - width * m[1], floor), max(m[0] + width * m[1], floor)) for m in self.modes]

    # --- persistence --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything learned and running, as JSON-ready data."""
        return {"learned": self.learned, "modes": [list(m) for m in self.modes], "floor": self.floor,
                "noise": self.noise, "tail": list(self.tail), "window_laws": [list(w) for w in self.window_laws],
                "repeat": list(self.repeat), "nonnegative": self.nonnegative, "stretches": list(self.stretches),
                "ring": list(self.ring), "ring_pos": self.ring_pos, "sums": list(self.sums),
                "last": None if self.last != self.last else self.last, "run": self.run,
                "side": [self.side, self.side_mode], "stretch": self.stretch,
                "mode_index": self.mode_index, "countdown": self._countdown,
                "candidates": [list(c) for c in self.candidates],
                "held": None if self.held != self.held else self.held}

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: SignalSettings | None = None) -> SignalModel:
        """Rebuild from :meth:`state_dict` output (raises KeyError, TypeError or ValueError if malformed)."""
        model = cls(settings)
        model.learned = bool(state["learned"])
        model.modes = [[float(x) for x in m][:4] + [0.0] * (4 - len(m)) for m in state["modes"]]
        model.floor = float(state["floor"])
        model.noise = float(state["noise"])
        share, excess = (float(x) for x in state["tail"])
        model.tail = (share, excess)
        model.window_laws = [(float(a), float(b)) for a, b in state["window_laws"]]
        if not all(math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0 for a, b in model.window_laws):
            raise ValueError("window laws must be finite and positive")
        model._window_floor = [gamma_evidence_threshold(1.0, a, b) for a, b in model.window_laws]
        p_start, p_more = (float(x) for x in state["repeat"])
        model.set_repeat(p_start, p_more)
        model.nonnegative = bool(state["nonnegative"])
        model.stretches = [float(x) for x in state["stretches"]][:4]
        ring = [float(x) for x in state["ring"]]
        if len(ring) == len(model.ring):
            model.ring, model.ring_pos = ring, int(state["ring_pos"]) % len(ring)
            sums = [float(x) for x in state["sums"]]
            if len(sums) == len(model.sums):
                model.sums = sums
        model.last = math.nan if state["last"] is None else float(state["last"])
        model.run = int(state["run"])
        model.side, model.side_mode = (int(x) for x in state["side"])
        model.stretch = int(state["stretch"])
        model.mode_index = int(state.get("mode_index", 0))
        model.candidates = [[float(x) for x in c][:4] for c in state.get("candidates", [])]
        model.held = math.nan if state.get("held") is None else float(state["held"])
        model._countdown = int(state.get("countdown", ADAPT_EVERY))
        model._set_rhythm_limit()
        if model.learned and (not model.modes or len(model.window_laws) != len(model.settings.windows)
                              or not all(m[1] > 0 for m in model.modes)):
            raise ValueError("inconsistent signal model")
        return model
