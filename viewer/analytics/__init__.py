"""Local anomaly scoring and failure horizons: Qt-free, numpy only, state as plain JSON.

- :mod:`~viewer.analytics.calibration`: statistics -> probability-like scores that mean the same everywhere.
- :mod:`~viewer.analytics.detectors`: robust univariate and multivariate (T²) streaming detectors.
- :mod:`~viewer.analytics.scorer`: a component's score, level (with hysteresis) and explanation.
- :mod:`~viewer.analytics.horizon`: time to reach a limit at the current trend, with a range.
"""
