"""Noise models: the correlated field has the stable covariance asked for; ramps, white noise and spikes as stated."""

import numpy as np
import pytest
from scipy import fft

from defoscan.synth.noise import (
    _embedding_shape,
    atmosphere_ranges,
    cell_sigma,
    correlated_field,
    draw_noise_parameters,
    planar_ramp,
    practical_range,
    spikes,
    stable_covariance,
    stable_variogram,
    white_noise,
)


def test_stable_model_hand_values():
    assert stable_covariance(0.0, sigma=3.0, length=2000.0, alpha=1.0) == pytest.approx(9.0)
    assert stable_covariance(2000.0, sigma=3.0, length=2000.0, alpha=0.7) == pytest.approx(9.0 / np.e)
    assert stable_covariance(4000.0, sigma=2.0, length=2000.0, alpha=2.0) == pytest.approx(4.0 * np.exp(-4.0))
    gamma = stable_variogram(np.array([0.0, 1000.0, 1e9]), sigma=2.0, length=1000.0, alpha=1.5, nugget=1.0)
    np.testing.assert_allclose(gamma, [0.0, 1.0 + 4.0 * (1 - np.exp(-1.0)), 5.0])
    # Practical range: the correlated part reaches 95 % of its sill there.
    h = practical_range(1500.0, 0.8)
    assert stable_variogram(h, sigma=1.0, length=1500.0, alpha=0.8) == pytest.approx(1.0 - np.exp(-3.0))


def test_same_seed_same_field_other_seed_other_field():
    args = {"sigma": 3.0, "length": 2000.0, "alpha": 1.2, "cell_size": 100.0}
    a = correlated_field((100, 140), np.random.default_rng(7), **args)
    b = correlated_field((100, 140), np.random.default_rng(7), **args)
    c = correlated_field((100, 140), np.random.default_rng(8), **args)
    assert a.shape == (100, 140)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1.0


@pytest.mark.parametrize("alpha", [0.6, 1.0, 5 / 3])
def test_correlated_field_variance_and_covariance_at_length(alpha):
    # L = 5 cells on 128 x 128: the map holds many correlation lengths, so 40 realisations pin the moments to ~1 %.
    sigma, length, cell = 3.0, 500.0, 100.0
    model = {"sigma": sigma, "length": length, "alpha": alpha, "cell_size": cell}
    sq, at_l, at_2l = [], [], []
    for seed in range(40):
        z = correlated_field((128, 128), np.random.default_rng(seed), **model)
        sq.append(np.mean(z * z))  # zero mean by construction: no sample mean to subtract
        at_l.append(0.5 * (np.mean(z[:, 5:] * z[:, :-5]) + np.mean(z[5:] * z[:-5])))
        at_2l.append(np.mean(z[:, 10:] * z[:, :-10]))
    assert np.mean(sq) == pytest.approx(sigma**2, rel=0.04)
    assert np.mean(at_l) == pytest.approx(sigma**2 * np.exp(-1.0), abs=0.04 * sigma**2)
    assert np.mean(at_2l) == pytest.approx(sigma**2 * np.exp(-(2.0**alpha)), abs=0.04 * sigma**2)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_short_lag_structure_function_has_slope_alpha(alpha):
    # For h << L, gamma(2h) / gamma(h) -> 2^alpha: the power-law slope of the atmosphere.
    z = correlated_field((256, 256), np.random.default_rng(1), sigma=2.0, length=6000.0, alpha=alpha, cell_size=100.0)
    g1 = np.mean((z[:, 1:] - z[:, :-1]) ** 2) + np.mean((z[1:] - z[:-1]) ** 2)
    g2 = np.mean((z[:, 2:] - z[:, :-2]) ** 2) + np.mean((z[2:] - z[:-2]) ** 2)
    expected = (1 - np.exp(-((200 / 6000) ** alpha))) / (1 - np.exp(-((100 / 6000) ** alpha)))
    assert np.log2(g2 / g1) == pytest.approx(np.log2(expected), abs=0.08)
    assert np.log2(expected) == pytest.approx(alpha, abs=0.1)


@pytest.mark.parametrize(("shape", "length", "alpha"), [((64, 64), 30_000.0, 2.0), ((256, 256), 30_000.0, 1.9)])
def test_embedding_is_accurate_even_when_the_range_exceeds_the_map(shape, length, alpha):
    # Worst cases: the padding is capped, so some eigenvalues are negative and clipped. The covariance actually
    # drawn (inverse FFT of the clipped eigenvalues) stays within 2 % of sigma^2 of the model at the map's lags.
    grid = _embedding_shape(shape, length / 100.0, alpha)
    dy, dx = (np.minimum(np.arange(n), n - np.arange(n)) * 100.0 for n in grid)
    cov = stable_covariance(np.hypot(dy[:, None], dx[None, :]), sigma=1.0, length=length, alpha=alpha)
    drawn = fft.ifft2(np.maximum(fft.fft2(cov).real, 0.0)).real
    error = np.abs(drawn - cov)[: shape[0], : shape[1]].max()
    assert 1e-4 < error < 0.02  # clipping happened, and it is small


def test_padding_is_capped():
    assert _embedding_shape((1024, 1024), 300.0, 0.5) == (2048, 2048)
    assert _embedding_shape((256, 512), 1.0, 2.0)[0] < 300  # short range: little padding


def test_correlated_field_rejects_bad_parameters():
    with pytest.raises(ValueError, match="alpha"):
        correlated_field((8, 8), np.random.default_rng(0), sigma=1.0, length=100.0, alpha=2.5, cell_size=10.0)
    with pytest.raises(ValueError, match="length"):
        correlated_field((8, 8), np.random.default_rng(0), sigma=1.0, length=0.0, alpha=1.0, cell_size=10.0)


def test_white_noise_scalar_and_per_cell_sigma():
    z = white_noise((400, 400), np.random.default_rng(0), 2.5)
    assert z.std() == pytest.approx(2.5, rel=0.01)
    assert abs(np.corrcoef(z[:, 1:].ravel(), z[:, :-1].ravel())[0, 1]) < 0.01
    count = np.where(np.arange(400)[None, :] < 200, 1, 4) * np.ones((400, 1), dtype=int)
    z = white_noise((400, 400), np.random.default_rng(1), cell_sigma(2.0, count))
    assert z[:, :200].std() == pytest.approx(2.0, rel=0.02)
    assert z[:, 200:].std() == pytest.approx(1.0, rel=0.02)
    np.testing.assert_allclose(cell_sigma(3.0, np.array([0, 1, 4, 9])), [3.0, 3.0, 1.5, 1.0])


class _FixedDraws:
    """Stands in for a Generator in planar_ramp: returns the given values in order."""

    def __init__(self, *values):
        self.values = list(values)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.values.pop(0)


@pytest.mark.parametrize(("azimuth", "north_rise", "east_rise"), [(0.0, 1.0, 0.0), (np.pi / 2, 0.0, 1.0)])
def test_planar_ramp_direction_and_units(azimuth, north_rise, east_rise):
    # Gradient 0.3 mm/yr per km over 50 x 80 cells of 200 m: 9.8 km north-south, 15.8 km east-west.
    ramp = planar_ramp((50, 80), _FixedDraws(azimuth, 0.3), max_gradient=1.0, cell_size=200.0)
    assert ramp.mean() == pytest.approx(0.0, abs=1e-12)
    # Row 0 is north: rising to the north means row 0 is higher than the last row.
    assert ramp[0, 0] - ramp[-1, 0] == pytest.approx(north_rise * 0.3 * 49 * 0.2)
    assert ramp[0, -1] - ramp[0, 0] == pytest.approx(east_rise * 0.3 * 79 * 0.2)


def test_planar_ramp_random_gradients_are_planes_up_to_the_bound():
    rows, cols, cell = 60, 90, 100.0
    y, x = np.mgrid[0:rows, 0:cols]
    design = np.c_[np.ones(x.size), x.ravel(), y.ravel()]
    gradients, azimuths = [], []
    for seed in range(200):
        ramp = planar_ramp((rows, cols), np.random.default_rng(seed), max_gradient=0.5, cell_size=cell)
        coef, *_ = np.linalg.lstsq(design, ramp.ravel(), rcond=None)
        assert np.abs(design @ coef - ramp.ravel()).max() < 1e-9 and abs(ramp.mean()) < 1e-12
        east, north = coef[1] * 1000 / cell, -coef[2] * 1000 / cell  # mm/yr per km
        gradients.append(np.hypot(east, north))
        azimuths.append(np.arctan2(east, north))
    assert max(gradients) <= 0.5
    assert np.mean(gradients) == pytest.approx(0.25, abs=0.03)  # uniform on [0, 0.5]
    assert np.histogram(azimuths, bins=4, range=(-np.pi, np.pi))[0].min() > 30  # all directions


def test_planar_ramp_quadratic_term():
    ramp = planar_ramp((40, 50), np.random.default_rng(3), max_gradient=0.5, cell_size=100.0, max_curvature=0.2)
    y, x = np.mgrid[0:40, 0:50]
    plane = np.c_[np.ones(x.size), x.ravel(), y.ravel()]
    quad = np.c_[plane, x.ravel() ** 2, x.ravel() * y.ravel(), y.ravel() ** 2]
    residual = lambda a: ramp.ravel() - a @ np.linalg.lstsq(a, ramp.ravel(), rcond=None)[0]  # noqa: E731
    assert np.abs(residual(plane)).max() > 1e-3  # not a plane
    assert np.abs(residual(quad)).max() < 1e-9  # exactly quadratic
    assert abs(ramp.mean()) < 1e-12


def test_spikes_only_on_observed_cells_with_heavy_tailed_sizes():
    rng = np.random.default_rng(0)
    observed = rng.random((300, 300)) < 0.3
    values, mask = spikes(observed, rng, rate=0.05, amplitude_scale=4.0, tail=2.0)
    assert not (mask & ~observed).any()
    np.testing.assert_array_equal(values != 0, mask)
    n = observed.sum()
    assert abs(mask.sum() - 0.05 * n) < 4 * np.sqrt(n * 0.05 * 0.95)  # Binomial(n, rate)
    size = np.abs(values[mask])
    assert size.min() >= 4.0
    # Pareto with minimum 4 and index 2: P(|a| > 2 * 4) = 1/4, median 4 * sqrt(2).
    assert np.mean(size > 8.0) == pytest.approx(0.25, abs=0.04)
    assert np.median(size) == pytest.approx(4.0 * np.sqrt(2.0), rel=0.08)
    assert np.mean(values[mask] > 0) == pytest.approx(0.5, abs=0.06)


def test_spikes_rate_zero_and_one_and_bad_rate():
    observed = np.zeros((20, 20), dtype=bool)
    observed[5:10, 3:8] = True
    values, mask = spikes(observed, np.random.default_rng(1), rate=0.0, amplitude_scale=5.0)
    assert not mask.any() and not values.any()
    values, mask = spikes(observed, np.random.default_rng(1), rate=1.0, amplitude_scale=5.0)
    np.testing.assert_array_equal(mask, observed)
    with pytest.raises(ValueError, match="rate"):
        spikes(observed, np.random.default_rng(1), rate=1.5, amplitude_scale=5.0)


def test_draw_noise_parameters_within_ranges_and_log_uniform():
    rng = np.random.default_rng(0)
    draws = [draw_noise_parameters(rng) for _ in range(2000)]
    assert draw_noise_parameters(np.random.default_rng(3)) == draw_noise_parameters(np.random.default_rng(3))
    for key, (lo, hi) in atmosphere_ranges.items():
        values = np.array([d[key] for d in draws])
        assert lo <= values.min() and values.max() <= hi
    sigmas = np.array([d["sigma"] for d in draws])
    assert np.median(sigmas) == pytest.approx(np.sqrt(1.0 * 8.0), rel=0.08)  # log-uniform: geometric midpoint
    # The parameters feed correlated_field as they are.
    z = correlated_field((32, 32), np.random.default_rng(0), **draws[0], cell_size=100.0)
    assert z.shape == (32, 32) and np.isfinite(z).all()
