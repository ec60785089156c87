"""defoscan.benchmark.intervals: bootstrap intervals over scenes, the paired difference, Poisson rates."""

import numpy as np
import pytest
from scipy import stats

from defoscan.benchmark.intervals import (
    bootstrap_scores,
    paired_f1_difference,
    poisson_rate_interval,
    pooled_scores,
    scene_counts,
)


def scene(truths, found, detections, false_alarms, signals=True):
    return {
        "truths": truths,
        "found": found,
        "detections": detections,
        "false_alarms": false_alarms,
        "signals": signals,
    }


def test_pooled_scores_pool_counts_and_leave_undefined_scores_nan():
    scores = pooled_scores([[10, 6, 8, 7], [0, 0, 0, 0], [5, 0, 0, 0]])
    assert scores["recall"][0] == 0.6 and scores["precision"][0] == 7 / 8
    assert scores["f1"][0] == pytest.approx(2 * 0.6 * 0.875 / 1.475)
    assert np.isnan(scores["recall"][1]) and np.isnan(scores["f1"][1])  # no truths: F1 undefined
    assert np.isnan(scores["precision"][2]) and scores["f1"][2] == 0.0  # nothing detected: F1 0


def test_signal_free_scenes_do_not_count_for_f1():
    counts = scene_counts([scene(4, 3, 5, 1), scene(0, 0, 2, 2, signals=False)])
    assert counts.tolist() == [[4, 3, 5, 4]]


def test_bootstrap_covers_the_binomial_spread_of_a_recall():
    # 100 scenes, one truth each, found in 70: recall 0.7, its bootstrap interval the binomial one (about +-0.09).
    results = [scene(1, 1, 1, 0) if i < 70 else scene(1, 0, 0, 0) for i in range(100)]
    spans = bootstrap_scores(results)
    low, high = spans["recall"]
    half = 1.96 * np.sqrt(0.7 * 0.3 / 100)
    assert low == pytest.approx(0.7 - half, abs=0.025) and high == pytest.approx(0.7 + half, abs=0.025)
    assert spans["precision"] == [1.0, 1.0]  # every detection matched in every draw
    assert bootstrap_scores(results) == spans  # a fixed seed: the same interval every time
    assert bootstrap_scores([scene(0, 0, 3, 3, signals=False)]) == {"recall": None, "precision": None, "f1": None}


def test_paired_difference_cancels_what_the_scenes_share():
    # Scenes alternate easy (both rows find everything) and hard (both miss): each row's F1 is uncertain, the
    # difference of the two (one more false alarm per scene for b) is nearly certain.
    a = [scene(4, 4, 4, 0) if i % 2 else scene(4, 0, 4, 4) for i in range(20)]
    b = [scene(4, 4, 5, 1) if i % 2 else scene(4, 0, 5, 5) for i in range(20)]
    alone_a, alone_b = bootstrap_scores(a)["f1"], bootstrap_scores(b)["f1"]
    low, high = paired_f1_difference(a, b)
    assert (alone_a[1] - alone_a[0]) > 0.3 and (alone_b[1] - alone_b[0]) > 0.3
    assert 0 < low <= high and high - low < 0.1
    with pytest.raises(ValueError, match="different scenes"):
        paired_f1_difference(a, b[:5])


def test_poisson_interval_is_garwoods():
    low, high = poisson_rate_interval(1, 2410.0)
    assert low == pytest.approx(1000 * stats.chi2.ppf(0.025, 2) / 2 / 2410)
    assert high == pytest.approx(2.31, abs=0.01)  # issue 22: one false alarm in 2,410 km2
    assert poisson_rate_interval(0, 1000.0) == [0.0, pytest.approx(3.689, abs=1e-3)]
    assert poisson_rate_interval(3, 0.0) is None
