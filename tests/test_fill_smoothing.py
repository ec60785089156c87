import numpy as np
import pytest

from defoscan.fill.smoothing import membrane_weight, nugget_and_slope, short_lag_semivariogram


def brownian_sheet_sum(shape, rng, q):
    """``B1(row) + B2(col)``, independent random walks of increment variance ``q``: semivariance ``q h / 2``."""
    rows = np.cumsum(rng.normal(0.0, np.sqrt(q), shape[0]))
    cols = np.cumsum(rng.normal(0.0, np.sqrt(q), shape[1]))
    return rows[:, None] + cols[None, :]


def test_white_noise_is_all_nugget():
    rng = np.random.default_rng(1)
    v = rng.normal(0.0, 2.0, (300, 300))
    gamma = short_lag_semivariogram(v)
    assert gamma == pytest.approx(np.full(gamma.shape, 4.0), rel=0.05)
    nugget, slope = nugget_and_slope(v)
    assert nugget == pytest.approx(4.0, rel=0.05)
    assert abs(slope) < 0.05


def test_nugget_and_slope_of_a_known_linear_variogram_with_gaps_and_spikes():
    rng = np.random.default_rng(2)
    q, tau = 0.4, 1.0
    v = brownian_sheet_sum((400, 400), rng, q) + rng.normal(0.0, tau, (400, 400))
    v[rng.random(v.shape) < 0.6] = np.nan  # 40% coverage
    observed = np.flatnonzero(np.isfinite(v))
    v.flat[rng.choice(observed, observed.size // 100, replace=False)] += 50.0  # 1% spikes: the median ignores them
    nugget, slope = nugget_and_slope(v)
    assert nugget == pytest.approx(tau**2, rel=0.2)
    assert slope == pytest.approx(q / 2, rel=0.2)


def test_noisy_quiet_maps_are_smoothed_harder_than_clean_rough_ones():
    rng = np.random.default_rng(3)
    quiet_noisy = rng.normal(0.0, 2.0, (200, 200)) + brownian_sheet_sum((200, 200), rng, 0.1)
    rough_clean = rng.normal(0.0, 0.2, (200, 200)) + brownian_sheet_sum((200, 200), rng, 1.0)
    bounds = (1e-4, 1e4)
    hard = membrane_weight(quiet_noisy, 0.01, bounds)
    light = membrane_weight(rough_clean, 0.01, bounds)
    # tau^2 / (q / 2): 4 / 0.05 against 0.04 / 0.5
    assert hard == pytest.approx(0.01 * 4.0 / 0.05, rel=0.3)
    # a nugget this small against the slope is within the intercept's sampling error: only its size is known
    assert light <= 0.01 * 0.1 / 0.5


def test_bounds_and_too_few_pairs():
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 1.0, (100, 100))
    assert membrane_weight(noise, 0.01, (0.001, 0.3)) == 0.3  # flat variogram: the upper bound
    sparse = np.full((100, 100), np.nan)
    sparse[::10, ::10] = 1.0  # no neighbouring pairs at the short lags
    assert nugget_and_slope(sparse) is None
    assert membrane_weight(sparse, 0.01, (0.001, 0.3)) is None
