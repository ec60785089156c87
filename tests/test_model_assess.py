import numpy as np
import pytest

from defoscan.model.assess import window_scores
from defoscan.model.data import WindowSet


def _windows(labels, kinds, peaks, hard, mask_cells):
    n = len(labels)
    mask = np.zeros((n, 32, 32), bool)
    for i, cells in enumerate(mask_cells):
        mask[i].flat[:cells] = True
    info = [{"kinds": k, "hard": h, "peak": p} for k, h, p in zip(kinds, hard, peaks, strict=True)]
    return WindowSet(
        np.zeros((n, 32, 32), np.float32),
        np.ones((n, 32, 32), np.uint16),
        mask,
        np.asarray(labels, np.int8),
        np.arange(n),
        info,
        50.0,
        "x",
    )


def test_recall_per_kind_band_and_size_at_one_cutoff():
    # 100 negatives scored 0..99 (1 % above 98); positives: a fast mine found, a slow tunnel missed, a big dome found
    labels = [0] * 100 + [1, 1, 1]
    kinds = [[]] * 100 + [["mining"], ["tunnel"], ["dome"]]
    peaks = [0.0] * 100 + [40.0, 3.0, 12.0]
    hard = [i % 2 == 0 for i in range(100)] + [False] * 3
    cells = [0] * 100 + [10, 4, 1000]  # equivalent diameters about 180 m, 110 m, 1.8 km
    scores = np.r_[np.arange(100.0), 150.0, 50.0, 120.0]
    result = window_scores(scores, _windows(labels, kinds, peaks, hard, cells))
    assert result["cutoff"] == 98.0 and result["recall"] == pytest.approx(2 / 3)
    assert result["by_kind"]["mining"]["recall"] == 1.0 and result["by_kind"]["tunnel"]["recall"] == 0.0
    assert result["by_band"]["2-5"]["recall"] == 0.0 and result["by_band"][">30"]["recall"] == 1.0
    assert result["by_band"]["5-10"]["n"] == 0 and np.isnan(result["by_band"]["5-10"]["recall"])
    assert result["by_size"]["0-300 m"]["n"] == 2 and result["by_size"]["1000-3000 m"]["recall"] == 1.0
    assert result["fpr_hard"] == 0.0 and result["fpr_easy"] == pytest.approx(1 / 50)  # 99 is odd: easy
