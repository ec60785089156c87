"""Real-deformation scenes from the Tay et al. (2022) maps: the truth rule on a field of known bowls, the points."""

import numpy as np
import pytest
from affine import Affine

from defoscan.benchmark import tay_scenes
from defoscan.synth.scene import SCENE_ORIGIN

CELL = tay_scenes.CELL_SIZE
LEVEL = 3.0  # mm/yr: the hand-made map's stable ground, as a map relative to some reference has


def _gaussian(shape, row, col, sigma, peak):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return peak * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))


def _beyond_area_km2(peak, sigma, rate=tay_scenes.RATE):
    """Area where a Gaussian bowl, smoothed as the truth smooths it, is beyond ``rate``."""
    wide = np.hypot(sigma, tay_scenes.SMOOTHING)
    radius = wide * np.sqrt(2 * np.log(abs(peak) * (sigma / wide) ** 2 / rate))
    return np.pi * radius**2 * CELL**2 / 1e6


@pytest.fixture
def field():
    """A flat map at LEVEL with a little noise, a subsidence bowl, an uplift bowl, a tiny bowl, and a NaN strip."""
    shape = (150, 160)
    velocity = LEVEL + np.random.default_rng(0).normal(0.0, 0.5, shape)
    velocity += _gaussian(shape, 50, 50, 6.0, -30.0) + _gaussian(shape, 100, 115, 5.0, 20.0)
    velocity += _gaussian(shape, 120, 40, 2.5, -20.0)  # beyond the rate on 0.2 km2: no truth
    velocity[:, 140:] = np.nan  # outside the city
    velocity[:20, :30] = np.nan
    return velocity


def test_stable_level_is_the_flat_ground(field):
    _, _, stats = tay_scenes.relative_field(field)
    assert stats["level"] == pytest.approx(LEVEL, abs=0.3)
    assert stats["pixel_noise"] == pytest.approx(0.5, rel=0.3)


def test_truth_is_the_two_big_bowls_with_their_signs_and_areas(field):
    _, smoothed, _ = tay_scenes.relative_field(field)
    labels, regions = tay_scenes.truth_regions(smoothed, CELL)
    assert [(r["kind"], r["sign"]) for r in regions] == [("compaction", "subsidence"), ("uplift", "uplift")]
    assert regions[0]["area_km2"] == pytest.approx(_beyond_area_km2(-30.0, 6.0), rel=0.15)
    assert regions[1]["area_km2"] == pytest.approx(_beyond_area_km2(20.0, 5.0), rel=0.15)
    assert regions[0]["peak_velocity"] == pytest.approx(-30.0 * 36 / 37, abs=1.5)  # the smoothed peak
    assert labels[50, 50] == 1 and labels[100, 115] == 2 and labels[120, 40] == 0
    polygons = tay_scenes.region_polygons(labels, Affine(CELL, 0, 0, 0, -CELL, 0))
    assert [p.area / 1e6 for p in polygons] == pytest.approx([r["area_km2"] for r in regions])


def test_tiny_bowl_is_a_truth_once_the_minimum_area_allows_it(field):
    _, smoothed, _ = tay_scenes.relative_field(field)
    _, regions = tay_scenes.truth_regions(smoothed, CELL, min_area_km2=0.01)
    assert len(regions) == 3


def _scene(field, seed):
    relative, smoothed, _ = tay_scenes.relative_field(field)
    window = (0, field.shape[0], 0, field.shape[1])
    transform = Affine(CELL, 0, 400_000, 0, -CELL, 4_000_000)
    return tay_scenes.tile_scene(relative, smoothed, window, transform, np.random.default_rng(seed))


def test_scene_points_lie_only_inside_the_mask(field):
    points, truths, details = _scene(field, 3)
    assert points["x"].size > 100
    cols = ((points["x"] - SCENE_ORIGIN[0]) // CELL).astype(int)
    rows = ((SCENE_ORIGIN[1] - points["y"]) // CELL).astype(int)
    assert np.isfinite(field[rows, cols]).all()
    assert {t["kind"] for t in truths} | {t["kind"] for t in details["unseen"]} == {"compaction", "uplift"}


def test_same_seed_same_scene(field):
    a, b, c = _scene(field, 5), _scene(field, 5), _scene(field, 6)
    for key in ("x", "y", "velocity"):
        np.testing.assert_array_equal(a[0][key], b[0][key])
    assert a[0]["x"].size != c[0]["x"].size or not np.array_equal(a[0]["x"], c[0]["x"])


def test_choose_tiles_are_disjoint_and_hold_data():
    valid = np.zeros((500, 300), dtype=bool)
    valid[:, :150] = True
    tiles = tay_scenes.choose_tiles(valid, np.random.default_rng(1), tile_pixels=100, count=3)
    assert len(tiles) == 3
    taken = np.zeros(valid.shape, dtype=int)
    for row0, row1, col0, col1 in tiles:
        assert (row1 - row0, col1 - col0) == (100, 100)
        assert valid[row0:row1, col0:col1].mean() >= tay_scenes.MIN_DATA
        taken[row0:row1, col0:col1] += 1
    assert taken.max() == 1
    assert tay_scenes.choose_tiles(valid[:80, :90], np.random.default_rng(1), tile_pixels=100, count=3) == [
        (0, 80, 0, 90)
    ]


def test_a_real_test_city_makes_a_readable_scene_with_truth(tmp_path):
    from defoscan import read
    from defoscan.real_data import real_data_dir
    from defoscan.synth.scene import write_scene

    folder = real_data_dir()
    if folder is None or not (folder / "10_tay_city_velocity").is_dir():
        pytest.skip("no real-data folder")
    scenes, _ = tay_scenes.city_scenes(folder / "10_tay_city_velocity", "Barcelona", split="test", seed=0)
    points, truths, info = scenes[0]
    assert truths and info["signals"] == len(truths) and info["city"] == "Barcelona"
    assert all(t["peak_velocity"] <= -tay_scenes.RATE for t in truths if t["sign"] == "subsidence")
    csv, _, _ = write_scene(tmp_path, "scene-001", points, truths, info)
    (track,) = read(csv)
    assert track.sizes["point"] == points["x"].size
    np.testing.assert_allclose(track["velocity"].to_numpy(), points["velocity"], atol=0.006)  # 2 decimals


def test_the_split_is_by_city_disjoint_and_complete():
    from defoscan.benchmark.tay_scenes import split_cities

    parts = {name: split_cities(name) for name in ("training", "validation", "test")}
    every = [city for cities in parts.values() for city in cities]
    assert len(every) == len(set(every)) == 31
    assert (len(parts["training"]), len(parts["validation"]), len(parts["test"])) == (16, 7, 8)
