"""The active-deformation-area baseline (``defoscan.ada``) on maps with known answers."""

import numpy as np
import pytest

from defoscan.ada import AdaParameters, ada_detect, stable_statistics


def test_stable_statistics_set_the_deforming_cells_aside():
    rng = np.random.default_rng(2)
    values = rng.normal(1.0, 2.0, 20_000)
    values[:1000] = -40.0  # a subsiding area: 5 % of the cells
    values[5] = np.nan
    mean, std = stable_statistics(values)
    assert mean == pytest.approx(1.0, abs=0.1) and std == pytest.approx(2.0, rel=0.1)
    assert np.isnan(stable_statistics(np.full(4, np.nan))[0])


def test_an_area_of_active_cells_and_lone_ones_left_out():
    rng = np.random.default_rng(4)
    shape, cell = (100, 100), 50.0
    velocity = rng.uniform(-1.0, 1.0, shape)  # never two standard deviations out (0.58 mm/yr): no active noise
    velocity[40:50, 40:50] = -12.0  # an active area
    velocity[45, 52] = -12.0  # two cells off it: linked (100 m)
    velocity[10, 10] = 15.0  # a lone active cell: too few points
    count = np.full(shape, 2)
    labels, regions, noise = ada_detect(velocity, count, cell, AdaParameters(min_points=5))
    bowl = [r for r in regions if r["sign"] == "subsidence" and r["n_cells"] >= 100]
    assert len(bowl) == 1 and bowl[0]["n_cells"] == 101  # the block and the linked cell
    assert labels[45, 52] == labels[45, 45] == bowl[0]["label"]
    assert labels[10, 10] == 0
    assert noise["stable_std_mm_yr"] == pytest.approx(1 / np.sqrt(3), rel=0.05)
    assert bowl[0]["peak_velocity"] == -12.0  # as gridded
    background = bowl[0]["background_velocity"]  # the local robust background under it (medians of the noise)
    assert abs(background) < 1.0 and bowl[0]["mean_relative"] == pytest.approx(-12.0 - background)


def test_a_flat_map_has_no_areas():
    labels, regions, _ = ada_detect(np.zeros((10, 10)), np.ones((10, 10)), 50.0)
    assert regions == [] and not labels.any()
