"""Local anomaly scoring and failure horizons: Qt-free, numpy only, state as plain JSON.

- :mod:`~viewer.analytics.calibration`: tail probabilities in log form; evidence -> a score that means the
  same everywhere and never saturates.
- :mod:`~viewer.analytics.signal_model`: one signal's normal behaviour (operating levels, persistence,
  flat lines, rhythm) and the evidence of each new value.
- :mod:`~viewer.analytics.scorer`: a component's score, level, episodes and the new normal.
- :mod:`~viewer.analytics.monitor`: a scorer per component of a plant, fed from live values.
- :mod:`~viewer.analytics.horizon`: time to reach a limit at the current trend, with a range.
"""
