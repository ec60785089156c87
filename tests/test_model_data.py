import os

import numpy as np

from defoscan.model.data import FILL_CACHE, load_windows
from defoscan.synth.dataset import read_dataset


def test_windows_are_the_dataset_samples(tiny_dataset):
    windows = load_windows(tiny_dataset)
    samples = list(read_dataset(tiny_dataset))
    assert len(windows) == len(samples) == 48
    for i in (0, 17, 47):
        np.testing.assert_array_equal(windows.velocity[i], samples[i].velocity)
        assert windows.label[i] == samples[i].label
        assert windows.info[i]["kinds"] == samples[i].info["kinds"]
        peak = np.abs(samples[i].deformation[samples[i].mask]).max() if samples[i].mask.any() else 0.0
        assert windows.info[i]["peak"] == peak
    assert len(load_windows(tiny_dataset, limit=20)) == 20
    half = windows.subset(windows.label == 1)
    assert len(half) == 24 and half.label.all()


def test_filled_windows_keep_data_fill_gaps_and_are_cached(tiny_dataset):
    raw = load_windows(tiny_dataset, limit=16)
    filled = load_windows(tiny_dataset, limit=16, fill=True, workers=1)
    observed = np.isfinite(raw.velocity)
    np.testing.assert_array_equal(filled.velocity[observed], raw.velocity[observed])
    assert np.isfinite(filled.velocity).sum() > observed.sum()
    cache = os.path.join(tiny_dataset, FILL_CACHE)
    assert any(name.endswith(".npy") for name in os.listdir(cache))
    again = load_windows(tiny_dataset, limit=8, fill=True, workers=1)  # read from the cache
    np.testing.assert_array_equal(again.velocity, filled.velocity[:8])


def test_concatenated_sets_keep_order_and_refuse_other_shapes(tiny_dataset):
    import pytest

    from defoscan.model.data import concat_windows

    a = load_windows(tiny_dataset, limit=10)
    both = concat_windows([a, load_windows(tiny_dataset, limit=6)])
    assert len(both) == 16 and both.fingerprint == f"{a.fingerprint}+{a.fingerprint}"
    np.testing.assert_array_equal(both.velocity[10:], a.velocity[:6])
    small = a.subset(np.arange(2))
    small.velocity = small.velocity[:, :16, :16]
    with pytest.raises(ValueError, match="differ in window shape"):
        concat_windows([a, small])


def test_sets_of_several_cell_sizes_are_joined_and_listed(tiny_dataset):
    from defoscan.model.data import concat_windows

    a = load_windows(tiny_dataset, limit=4)
    coarse = load_windows(tiny_dataset, limit=2)
    coarse.cell_size = 200.0
    for info in coarse.info:
        info["cell_size"] = 200.0
    both = concat_windows([coarse, a])
    assert both.cell_size == 50.0 and both.cell_sizes == [50.0, 200.0]
    np.testing.assert_array_equal(both.window_cell_sizes(), [200.0, 200.0, 50.0, 50.0, 50.0, 50.0])
    assert both.subset(np.arange(2)).cell_sizes == [200.0]  # a subset lists only the sizes it holds
