"""Robust noise scale."""

import numpy as np
import pytest

from defoscan.robust import robust_sigma


def test_robust_sigma_of_gaussian_noise_ignores_outliers_and_nan():
    values = np.random.default_rng(0).normal(0.0, 2.0, 40_000)
    values[:500] = 1000.0  # 1.25% gross outliers
    values[500:600] = np.nan
    assert robust_sigma(values) == pytest.approx(2.0, rel=0.05)
    assert np.std(values[np.isfinite(values)]) > 50  # what a plain standard deviation would say


def test_robust_sigma_of_nothing_is_nan():
    assert np.isnan(robust_sigma(np.array([np.nan, np.nan])))
