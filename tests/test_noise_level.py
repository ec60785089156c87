"""defoscan.noise_level: the map's robust noise against its background, and the region floor tied to it."""

import numpy as np
import pytest

from defoscan.noise_level import noise_sigma, region_floor, sample_stride


def noisy_map(sigma=3.0, shape=(400, 400), seed=0):
    """White noise of ``sigma`` mm/yr on a ramp, a -40 mm/yr bowl over a few % of the map, a third without data."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    velocity = rng.normal(0.0, sigma, shape) + 0.02 * cols + 5.0
    velocity[(rows - 200) ** 2 + (cols - 200) ** 2 < 40**2] -= 40.0
    velocity[rng.random(shape) < 0.33] = np.nan
    return velocity


def test_the_noise_is_measured_through_a_ramp_and_a_bowl():
    assert noise_sigma(noisy_map(3.0), 50.0, 5000.0) == pytest.approx(3.0, rel=0.08)
    assert noise_sigma(noisy_map(1.0), 50.0, 5000.0) == pytest.approx(1.0, rel=0.08)


def test_the_same_number_whatever_the_chunking_and_with_few_samples():
    velocity = noisy_map(2.0)
    whole = noise_sigma(velocity, 50.0, 5000.0, chunk=1024)
    assert noise_sigma(velocity, 50.0, 5000.0, chunk=64) == whole
    assert noise_sigma(velocity, 50.0, 5000.0, chunk=100) == whole
    sampled = noise_sigma(velocity, 50.0, 5000.0, max_samples=10_000)  # every 4th row and column
    assert sample_stride(velocity.shape, 10_000) == 4 and sampled == pytest.approx(2.0, rel=0.1)
    assert np.isnan(noise_sigma(np.full((20, 20), np.nan), 50.0, 5000.0))


def test_the_floor_follows_the_noise_and_never_drops_below_the_fixed_floor():
    assert region_floor(2.0, 4.0, 1.5) == 6.0
    assert region_floor(2.0, 0.5, 1.5) == 2.0
    assert region_floor(2.0, float("nan"), 1.5) == 2.0
    assert region_floor(0.0, 4.0, 0.0) == 0.0  # switched off
