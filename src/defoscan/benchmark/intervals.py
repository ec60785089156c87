"""Confidence intervals for the benchmark's pooled figures (issue 22: no figure without its uncertainty).

- **F1, precision, recall**: a percentile bootstrap over scenes (a scene is the unit that was drawn: its signals
  share one atmosphere and one coverage, so truths of one scene are not independent). Each replicate draws the
  scenes with replacement and pools their counts as :func:`defoscan.benchmark.suite.pool` does.
- **A difference of F1 between two rows** run on the same scenes (the detector against the best baseline): the
  same scene draws for both rows (a paired bootstrap), so what the scenes share cancels.
- **False alarms per 1000 km²**: the exact (Garwood) Poisson interval of the count, divided by the area examined;
  one false alarm in 2,410 km² has the upper bound 2.3 per 1000 km².

Intervals are two-sided at ``level`` (95 % by default) and reproducible: the bootstrap draws from a fixed seed.
"""

import numpy as np
from scipy import stats

LEVEL = 0.95
REPLICATES = 2000
SEED = 0
COUNTS = ("truths", "found", "detections", "matched")  # what a scene adds to the pooled F1


def scene_counts(results):
    """Per scene with signals, the counts F1 pools: an array ``(scenes, 4)`` in the order of :data:`COUNTS`.

    Parameters
    ----------
    results : list of dict
        Per-scene results of :func:`defoscan.benchmark.suite.run_scene` (``signals``, ``truths``, ``found``,
        ``detections``, ``false_alarms``).
    """
    rows = [
        (r["truths"], r["found"], r["detections"], r["detections"] - r["false_alarms"]) for r in results if r["signals"]
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(COUNTS))


def pooled_scores(sums):
    """Recall, precision and F1 of pooled counts; ``sums`` is ``(..., 4)`` (:data:`COUNTS`); NaN where undefined."""
    truths, found, detections, matched = np.moveaxis(np.asarray(sums, dtype=np.float64), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(truths > 0, found / truths, np.nan)
        precision = np.where(detections > 0, matched / detections, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(recall), np.nan, np.where(np.isnan(precision), 0.0, f1))
    return {"recall": recall, "precision": precision, "f1": f1}


def scene_draws(n_scenes, *, replicates=REPLICATES, seed=SEED):
    """Scene indices of each bootstrap replicate, ``(replicates, n_scenes)``; the same for the same arguments."""
    return np.random.default_rng(seed).integers(0, n_scenes, size=(replicates, n_scenes))


def bootstrap_scores(results, *, level=LEVEL, replicates=REPLICATES, seed=SEED):
    """Percentile intervals of pooled recall, precision and F1 over scenes.

    Parameters
    ----------
    results : list of dict
        Per-scene results (:func:`scene_counts`).
    level : float
    replicates, seed : int

    Returns
    -------
    dict
        ``{"recall": [low, high], "precision": [...], "f1": [...]}``; None for a score without a defined value in
        the pooled data, or without scenes with signals.
    """
    counts = scene_counts(results)
    if len(counts) == 0:
        return {name: None for name in ("recall", "precision", "f1")}
    draws = scene_draws(len(counts), replicates=replicates, seed=seed)
    replicated = pooled_scores(counts[draws].sum(axis=1))
    whole = pooled_scores(counts.sum(axis=0))
    return {name: None if np.isnan(whole[name]) else _percentiles(values, level) for name, values in replicated.items()}


def paired_f1_difference(results_a, results_b, *, level=LEVEL, replicates=REPLICATES, seed=SEED):
    """Interval of F1(a) - F1(b) for two rows scored on the same scenes, both resampled with the same draws.

    Parameters
    ----------
    results_a, results_b : list of dict
        Per-scene results of the two rows, scene for scene in the same order.

    Returns
    -------
    list of float or None
        ``[low, high]``; None when either F1 is undefined.
    """
    a, b = scene_counts(results_a), scene_counts(results_b)
    if len(a) != len(b):
        raise ValueError(f"the rows were scored on different scenes ({len(a)} and {len(b)} with signals)")
    if len(a) == 0:
        return None
    draws = scene_draws(len(a), replicates=replicates, seed=seed)
    difference = pooled_scores(a[draws].sum(axis=1))["f1"] - pooled_scores(b[draws].sum(axis=1))["f1"]
    return _percentiles(difference, level)


def poisson_rate_interval(count, area_km2, *, level=LEVEL):
    """Exact (Garwood) interval of a Poisson rate per 1000 km²: ``[low, high]``, None without an area.

    Parameters
    ----------
    count : int
        Events seen (false alarms).
    area_km2 : float
        Area they were seen in.
    level : float
    """
    if not area_km2:
        return None
    alpha = 1.0 - level
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * (count + 1)) / 2
    return [1000.0 * float(low) / area_km2, 1000.0 * float(high) / area_km2]


def _percentiles(values, level):
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = 100.0 * (1.0 - level) / 2
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return [float(low), float(high)]
