"""Regions from a probability map: cut-off, connectivity, size limits, attributes against the background."""

import numpy as np
import pytest

from defoscan.cnn_regions import probability_regions


def flat_map(shape=(60, 60), level=3.0):
    """A map at a constant reference offset (the background), everything with data, one point per cell."""
    return np.full(shape, level), np.ones(shape, dtype=int)


def test_one_region_with_its_attributes():
    velocity, count = flat_map()
    velocity[20:25, 30:34] = 3.0 - np.arange(20).reshape(5, 4)  # a bowl: 0 .. -19 mm/yr below the offset
    probability = np.zeros(velocity.shape)
    probability[20:25, 30:34] = 0.8
    probability[22, 32] = 0.97
    labels, regions = probability_regions(probability, velocity, count, 50.0)
    assert len(regions) == 1
    (region,) = regions
    # The cell at the offset (0 against the background) is the uplift side: one cell, under min_cells.
    assert region["label"] == 1 and region["n_cells"] == region["n_points"] == 19
    assert region["score"] == pytest.approx(0.97)
    assert region["mean_relative"] == pytest.approx(-10.0)  # against the background (the 3 mm/yr offset)
    assert region["peak_relative"] == pytest.approx(-19.0)
    assert region["mean_velocity"] == pytest.approx(-7.0) and region["peak_velocity"] == pytest.approx(-16.0)
    assert region["background_velocity"] == pytest.approx(3.0)
    assert region["sign"] == "subsidence"
    bowl = probability >= 0.5
    bowl[20, 30] = False
    assert np.array_equal(labels == 1, bowl)


def test_uplift_and_ranking_by_score():
    velocity, count = flat_map()
    velocity[5:8, 5:8] = 13.0  # +10 against the background
    velocity[40:43, 40:43] = -7.0
    probability = np.zeros(velocity.shape)
    probability[5:8, 5:8] = 0.6
    probability[40:43, 40:43] = 0.9
    labels, regions = probability_regions(probability, velocity, count, 50.0)
    assert [(r["label"], r["sign"]) for r in regions] == [(1, "subsidence"), (2, "uplift")]
    assert regions[1]["mean_relative"] == pytest.approx(10.0) and regions[1]["peak_relative"] == pytest.approx(10.0)
    assert regions[1]["mean_velocity"] == pytest.approx(13.0) and regions[1]["peak_velocity"] == pytest.approx(13.0)
    assert (labels[40:43, 40:43] == 1).all() and (labels[5:8, 5:8] == 2).all()


def test_cut_off_is_inclusive_and_adjustable():
    velocity, count = flat_map()
    probability = np.zeros(velocity.shape)
    probability[10:12, 10:12] = 0.5
    assert len(probability_regions(probability, velocity, count, 50.0)[1]) == 1
    assert probability_regions(probability, velocity, count, 50.0, threshold=0.51)[1] == []


def test_diagonal_cells_join_and_small_regions_are_dropped():
    velocity, count = flat_map()
    probability = np.zeros(velocity.shape)
    for i in range(4):  # a diagonal line: one region under 8-connectivity
        probability[10 + i, 10 + i] = 0.9
    probability[30:32, 30] = 0.9  # two cells: too small
    labels, regions = probability_regions(probability, velocity, count, 50.0)
    assert len(regions) == 1 and regions[0]["n_cells"] == 4
    assert labels[30, 30] == 0


def test_too_few_points_and_cells_without_data():
    velocity, count = flat_map()
    count[:] = 0
    count[10:12, 10:12] = 1  # a raster resampled from few points: 4 cells, only 3 of them with a point
    count[11, 11] = 0
    velocity[40:42, 40:43] = np.nan  # no data: never part of a region, whatever the probability says
    probability = np.zeros(velocity.shape)
    probability[10:12, 10:12] = 0.9
    probability[40:42, 40:43] = 0.9
    probability[45, 45] = np.nan
    labels, regions = probability_regions(probability, velocity, count, 50.0)
    assert regions == [] and not labels.any()
    assert len(probability_regions(probability, velocity, count, 50.0, min_points=3)[1]) == 1


def test_nothing_above_the_cut_off():
    velocity, count = flat_map((10, 10))
    labels, regions = probability_regions(np.full((10, 10), np.nan), velocity, count, 50.0)
    assert regions == [] and labels.dtype == np.int32 and not labels.any()


def test_hysteresis_decides_at_the_cut_off_and_outlines_at_the_lower_one():
    velocity, count = flat_map()
    probability = np.zeros(velocity.shape)
    probability[10:20, 10:14] = 0.4  # a signal whose probability dips...
    probability[12, 11] = 0.9  # ...with one confident cell
    probability[15, 10:14] = 0.2  # a dip across it: two fragments at 0.4, one region at 0.2
    probability[40:44, 40:44] = 0.45  # over the lower cut-off, never over the cut-off: not a detection
    labels, regions = probability_regions(probability, velocity, count, 50.0, threshold=0.8)
    assert len(regions) == 0  # the confident cell alone is under min_cells
    labels, regions = probability_regions(probability, velocity, count, 50.0, threshold=0.8, low_threshold=0.3)
    assert [r["n_cells"] for r in regions] == [20] and regions[0]["score"] == pytest.approx(0.9)
    assert (labels[10:15, 10:14] == 1).all() and (labels[15:20] == 0).all() and (labels[40:44, 40:44] == 0).all()
    labels, regions = probability_regions(probability, velocity, count, 50.0, threshold=0.8, low_threshold=0.2)
    assert [r["n_cells"] for r in regions] == [40]
    assert regions[0]["mean_probability"] == pytest.approx((0.9 + 0.4 * 35 + 0.2 * 4) / 40)
    # a lower cut-off above the cut-off is the cut-off
    assert (
        probability_regions(probability, velocity, count, 50.0, threshold=0.3, low_threshold=0.9)[1]
        == (probability_regions(probability, velocity, count, 50.0, threshold=0.3)[1])
    )


def test_regions_moving_less_than_min_velocity_are_dropped():
    velocity, count = flat_map()
    velocity[20:25, 30:34] = 3.0 - np.arange(20).reshape(5, 4)  # mean -9.5 mm/yr against the background
    velocity[40:44, 10:14] = 3.0 + np.linspace(-1.5, 1.0, 16).reshape(4, 4)  # mean -0.25: the map's own noise
    probability = np.zeros(velocity.shape)
    probability[20:25, 30:34] = 0.8
    probability[40:44, 10:14] = 0.9
    # No floor by default: the bowl (less its cell at 0), the noise's subsidence and uplift parts.
    assert len(probability_regions(probability, velocity, count, 50.0)[1]) == 3
    labels, regions = probability_regions(probability, velocity, count, 50.0, min_velocity=2.0)
    assert [r["mean_relative"] for r in regions] == [pytest.approx(-10.0)]
    assert labels[24, 33] == 1 and not labels[40:44, 10:14].any()


def test_a_collapse_beside_an_inflation_is_two_regions_whose_sign_agrees_with_their_velocities():
    """Issue 16 item 1: Shinmoedake read "uplift, mean 2.0, peak -50.1 mm/yr", one region of both signs."""
    velocity, count = flat_map()
    # A crater: -12 mm/yr subsidence beside +11 mm/yr uplift, a mean near zero, one blob of probability.
    velocity[20:24, 30:34] = 3.0 + np.array([[-12.0, -6, 5, 11], [-12, -6, 5, 11], [-9, -4, 4, 8], [-9, -4, 4, 8]])
    probability = np.zeros(velocity.shape)
    probability[20:24, 30:34] = 0.9
    labels, regions = probability_regions(probability, velocity, count, 50.0, min_velocity=2.0)
    assert [r["sign"] for r in regions] == ["subsidence", "uplift"]  # equal scores: by position
    down, up = regions
    assert down["mean_relative"] == pytest.approx(-31 * 2 / 8) and down["peak_relative"] == pytest.approx(-12.0)
    assert up["mean_relative"] == pytest.approx(28 * 2 / 8) and up["peak_relative"] == pytest.approx(11.0)
    assert down["mean_velocity"] == pytest.approx(3.0 - 7.75) and up["peak_velocity"] == pytest.approx(14.0)
    assert (labels[20:24, 30:32] == 1).all() and (labels[20:24, 32:34] == 2).all()
    for r in regions:
        assert np.sign(r["mean_relative"]) == np.sign(r["peak_relative"]) == (-1 if r["sign"] == "subsidence" else 1)
        assert r["mean_velocity"] == pytest.approx(r["background_velocity"] + r["mean_relative"])
    # At a third of the size each side moves 2.6 / 2.3 mm/yr: both still over the 2 mm/yr floor; at a sixth, none.
    velocity[20:24, 30:34] = 3.0 + (velocity[20:24, 30:34] - 3.0) / 6.0
    assert probability_regions(probability, velocity, count, 50.0, min_velocity=2.0)[1] == []


def test_a_region_wider_than_the_background_blocks_is_measured_against_coarser_blocks():
    from defoscan.cnn_regions import COARSE_BACKGROUND_RATIO
    from defoscan.threshold import robust_background

    velocity, count = flat_map((240, 240))
    rows, cols = np.mgrid[0:240, 0:240]
    velocity = velocity - 12.0 * np.exp(-((rows - 120) ** 2 + (cols - 120) ** 2) / (2 * 30.0**2))  # 20 km-ish bowl
    probability = np.where((rows - 120) ** 2 + (cols - 120) ** 2 < 60**2, 0.9, 0.0)
    inside = probability > 0
    fine = (velocity - robust_background(velocity, 50.0, 2000.0))[inside].mean()
    assert fine > -2.0  # 2 km blocks absorb most of a bowl 6 km across: the floor would drop it
    (region,) = probability_regions(probability, velocity, count, 50.0, background_size=2000.0, min_velocity=2.0)[1]
    coarse = velocity - robust_background(velocity, 50.0, COARSE_BACKGROUND_RATIO * 2000.0)
    down = inside & (coarse < 0)  # the bowl's subsidence side against the coarse background
    assert region["mean_relative"] == pytest.approx(coarse[down].mean()) and region["mean_relative"] < -2.0
    assert region["sign"] == "subsidence" and region["n_cells"] == down.sum()
