"""What a card says its model was trained on: measured on the windows, with known answers."""

import numpy as np

from defoscan.model.data import WindowSet
from defoscan.model.domain import training_domain


def windows_of(peaks, deforming_cells, coverage, kinds, cell_size=50.0):
    n = len(peaks)
    mask = np.zeros((n, 8, 8), dtype=bool)
    for i, cells in enumerate(deforming_cells):
        mask[i].flat[:cells] = True
    info = [
        {"kinds": k, "hard": False, "peak": p, "coverage_fraction": c, "cell_size": cell_size}
        for p, c, k in zip(peaks, coverage, kinds, strict=True)
    ]
    return WindowSet(
        velocity=np.zeros((n, 8, 8), np.float32),
        count=np.zeros((n, 8, 8), np.uint16),
        mask=mask,
        label=np.array([1 if p > 0 else 0 for p in peaks], np.int8),
        index=np.arange(n),
        info=info,
        cell_size=cell_size,
        fingerprint="x",
    )


def test_the_domain_is_measured_on_the_positive_windows():
    # Three positives (peaks 2, 10, 100 mm/yr; 4, 16, 64 cells of 50 m) and one negative.
    windows = windows_of(
        [2.0, 10.0, 100.0, 0.0], [4, 16, 64, 0], [0.1, 0.5, 0.9, 0.3], [["quarry"], ["dome", "mogi"], ["dome"], []]
    )
    domain = training_domain(windows)
    assert domain["data"] == "synthetic" and (domain["windows"], domain["positives"]) == (4, 3)
    assert domain["cell_sizes_m"] == [50.0] and domain["window_cells"] == 8
    assert domain["kinds"] == {"dome": 2, "mogi": 1, "quarry": 1}
    assert domain["peak_mm_yr"]["p50"] == 10.0 and domain["peak_mm_yr"]["p5"] == 2.8  # numpy's linear percentile
    assert domain["deforming_area_km2"]["p50"] == 16 * 0.0025 and domain["deforming_area_km2"]["p95"] < 64 * 0.0025
    assert domain["coverage_fraction"]["p50"] == 0.4  # over all four windows


def test_without_positives_the_signal_ranges_are_none():
    domain = training_domain(windows_of([0.0, 0.0], [0, 0], [0.2, 0.4], [[], []]))
    assert domain["positives"] == 0 and domain["peak_mm_yr"] is None and domain["deforming_area_km2"] is None
    assert domain["kinds"] == {}
