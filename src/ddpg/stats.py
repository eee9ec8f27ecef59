"""Aggregate scores over seeds: the interquartile mean (IQM) and a stratified percentile
bootstrap confidence interval, as recommended by Agarwal et al. (2021), "Deep Reinforcement
Learning at the Edge of the Statistical Precipice".

Definitions (those of the rliable library, so numbers are comparable with papers that use it):

- IQM: the mean of the middle half of the scores. With n scores sorted, floor(n / 4) are cut
  from each end and the rest averaged; this is ``scipy.stats.trim_mean(x, 0.25)``. Below 4
  scores nothing is cut, so the IQM equals the mean.
- Stratified bootstrap: each replicate resamples, with replacement, the runs of each stratum
  (task, here the environment) separately, keeping every stratum's size, then computes the
  statistic on the pooled replicate. With one stratum it is the ordinary bootstrap over seeds.
- Percentile interval: the (1 - c) / 2 and (1 + c) / 2 quantiles (numpy's default, linear
  interpolation) of the statistic over the replicates.
- Reproducible: every interval draws from a fresh ``numpy.random.default_rng(seed)``, so it
  depends only on its own scores (not on what else a report contains) and repeats exactly with
  the same numpy.

Why numpy alone and not rliable, scipy or arch: the whole computation is a sort, a slice and
``Generator.integers``, about 30 lines here, and numpy is already a core dependency. Measured on
Python 3.11 / x86-64 (pip install into a clean virtual environment beside numpy 2.4.6):

- scipy 1.17.1 adds 143 MB installed, and ``import scipy.stats`` takes about 2.2 s (numpy: 0.3 s);
  its ``trim_mean`` is the IQM above and ``scipy.stats.bootstrap`` resamples several samples
  independently (a stratified bootstrap), but it is not otherwise needed by this library.
- arch 8.0.0 adds 298 MB (scipy, pandas 81 MB, statsmodels 61 MB, patsy, formulaic, narwhals,
  wrapt), ``import arch.bootstrap`` about 3.2 s.
- rliable 1.2.0 adds 300 MB (arch, scipy, pandas, statsmodels, seaborn, absl-py and the rest);
  it requires arch < 8, and as pip resolved it on 2026-11-27 (arch 7.2.0 with pandas 3.1.1)
  ``from rliable import library`` fails at import with a TypeError inside arch.

A library would be worth its weight for BCa intervals, probabilities of improvement or
performance profiles; the IQM and a percentile interval are not. tests/test_report.py checks
both against hand-computed values and the exact bootstrap distribution, and against scipy's
``trim_mean`` and ``bootstrap`` when scipy is installed. Details: docs/report.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 10_000
BOOTSTRAP_SEED = 0

Statistic = Callable[[np.ndarray], np.ndarray]


def iqm(scores: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray | float:
    """Interquartile mean along `axis`: the mean after cutting floor(n / 4) scores from each end."""
    x = np.sort(np.asarray(scores, dtype=np.float64), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise ValueError("the IQM of no scores is undefined")
    cut = n // 4
    middle = np.take(x, np.arange(cut, n - cut), axis=axis)
    result = middle.mean(axis=axis)
    return float(result) if np.ndim(result) == 0 else result


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(iqm(x, axis=-1))


def stratified_bootstrap_ci(
    strata: Sequence[np.ndarray | Sequence[float]],
    statistic: Statistic = _iqm_rows,
    confidence: float = CONFIDENCE,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over the pooled scores of `strata`.

    `strata` holds one array of scores per task; each replicate resamples every array with
    replacement at its own size. `statistic` maps a (reps, n) array to (reps,) values, one per
    row (default: the IQM)."""
    groups = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    groups = [g for g in groups if g.size]
    if not groups:
        raise ValueError("the bootstrap needs at least one score")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    rng = np.random.default_rng(seed)
    replicates = np.concatenate(
        [g[rng.integers(0, g.size, size=(reps, g.size))] for g in groups], axis=1
    )
    values = np.asarray(statistic(replicates), dtype=np.float64)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)
