"""The Gi* hotspot baseline (``defoscan.hotspot``): the statistic against its definition, and detection."""

import numpy as np
import pytest

from defoscan.hotspot import HotspotParameters, disc, getis_ord, gistar_detect


def brute_force_gistar(values, i, j, radius):
    """Gi* at one cell straight from the definition (binary weights, cells with data, the cell included)."""
    data = np.isfinite(values)
    x = values[data]
    n, mean, s = x.size, x.mean(), np.sqrt(np.mean(x**2) - x.mean() ** 2)
    rows, cols = np.nonzero(data)
    near = (rows - i) ** 2 + (cols - j) ** 2 <= radius**2
    w = near.sum()
    return (values[rows[near], cols[near]].sum() - mean * w) / (s * np.sqrt((n * w - w**2) / (n - 1)))


def test_gistar_equals_its_definition_with_gaps():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 2, (40, 50))
    values[rng.random(values.shape) < 0.4] = np.nan
    z = getis_ord(values, 4.5)
    for i, j in [(0, 0), (10, 20), (39, 49), (20, 3)]:
        if np.isfinite(values[i, j]):
            assert z[i, j] == pytest.approx(brute_force_gistar(values, i, j, 4.5), rel=1e-9, abs=1e-9)
        else:
            assert np.isnan(z[i, j])
    assert disc(1.0).sum() == 5 and disc(1.5).sum() == 9


def test_a_bowl_is_a_coldspot_and_noise_mostly_not():
    rng = np.random.default_rng(5)
    shape, cell = (120, 120), 50.0
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    bowl = -15.0 * np.exp(-((yy - 60) ** 2 + (xx - 40) ** 2) / (2 * 8.0**2))
    velocity = bowl + rng.normal(0, 1.5, shape) + 0.01 * xx  # a small ramp: removed with the background
    velocity[rng.random(shape) < 0.3] = np.nan
    count = np.where(np.isfinite(velocity), 3, 0)
    labels, regions, noise = gistar_detect(velocity, count, cell, HotspotParameters(radius=300.0))
    assert regions and regions[0]["sign"] == "subsidence"
    assert labels[60, 40] == regions[0]["label"] == 1
    assert regions[0]["peak_velocity"] < -10
    assert noise["residual_std_mm_yr"] > 1
    quiet = rng.normal(0, 1.5, shape)
    _, quiet_regions, _ = gistar_detect(quiet, np.full(shape, 3), cell, HotspotParameters(radius=300.0, z=4.0))
    assert len(quiet_regions) <= 1  # chance alone rarely reaches |z| 4 over 4 cells
