"""Synthetic evaluation scenes (``defoscan.synth.scene``): signals of every kind where the points are, and truth."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from defoscan.evaluate import score
from defoscan.synth.scene import SCENE_CRS, make_scene, truth_signs_held, write_scene
from defoscan.synth.sources import KINDS


@pytest.fixture(scope="module")
def scene():
    return make_scene(7, shape=(300, 300))  # a seed whose coverage has room for every kind


def test_every_kind_is_placed_where_points_are_and_apart(scene):
    points, truths, info = scene
    placed = [s["kind"] for s in info["signals"]]
    assert sorted(set(placed) | set(info["not_placed"])) == sorted(KINDS)
    assert len(placed) >= len(KINDS) - 1  # a kind may fail to find room, and is then listed
    assert [t["kind"] for t in truths] == placed  # one truth per signal
    inside = shapely.contains_xy(shapely.union_all([t["geometry"] for t in truths]), points["x"], points["y"])
    assert inside.sum() >= 10 * len(placed)  # the signals are seen by points
    # Apart: no two signals' truth polygons touch.
    for a, first in enumerate(truths):
        for second in truths[a + 1 :]:
            assert first["geometry"].distance(second["geometry"]) > 0


def test_the_points_carry_the_signals(scene):
    points, truths, _ = scene
    deepest = min(truths, key=lambda t: t["peak_velocity"])
    assert deepest["sign"] == "subsidence" and deepest["peak_velocity"] < -5
    inside = shapely.contains_xy(deepest["geometry"], points["x"], points["y"])
    outside = ~shapely.contains_xy(shapely.union_all([t["geometry"] for t in truths]), points["x"], points["y"])
    assert np.median(points["velocity"][inside]) < np.median(points["velocity"][outside]) - 2


def test_the_same_seed_gives_the_same_scene_and_signal_free_has_no_truth():
    a, b = make_scene(8, shape=(120, 120), kinds=("quarry",)), make_scene(8, shape=(120, 120), kinds=("quarry",))
    np.testing.assert_array_equal(a[0]["velocity"], b[0]["velocity"])
    assert [t["geometry"].wkt for t in a[1]] == [t["geometry"].wkt for t in b[1]]
    points, truths, info = make_scene(8, shape=(120, 120), signals=False)
    assert truths == [] and info["signals"] == [] and points["x"].size > 0


def test_written_scene_reads_back_and_scores_itself_perfectly(scene, tmp_path):
    points, truths, info = scene
    csv, truth_path, record = write_scene(tmp_path, "scene-003", points, truths, info)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["longitude", "latitude", "velocity"] and len(table) == points["x"].size
    truth = gpd.read_file(truth_path)
    assert len(truth) == len(truths) and set(truth["kind"]) == {t["kind"] for t in truths}
    assert json.loads(open(record).read())["crs"] == SCENE_CRS
    result = score(truth, truth)
    assert result["recall"] == 1.0 and result["precision"] == 1.0
    # Each truth lists the signs of its motion; the peak's is among them.
    assert list(truth["signs"]) == [t["signs"] for t in truths]
    assert all(t["sign"] in t["signs"].split(",") for t in truths)


def test_a_truth_holds_the_signs_of_its_deforming_cells():
    assert truth_signs_held(np.array([-12.0, -8.0, -3.0, 2.5])) == "subsidence"  # one uplift cell is not a lobe
    assert truth_signs_held(np.array([-12.0, -8.0, -3.0, 2.5, 3.0, 4.0])) == "subsidence,uplift"
    assert truth_signs_held(np.array([5.0, 6.0, 7.0])) == "uplift"
    assert truth_signs_held(np.array([-2.0, 9.0])) == "uplift"  # too few of either: the peak's


def test_points_per_cell_are_capped_and_signals_are_mostly_seen():
    from defoscan.synth.scene import MIN_SEEN_FRACTION, SCENE_ORIGIN

    points, truths, info = make_scene(5, shape=(200, 200), max_per_cell=2, kinds=("mining", "quarry", "tunnel"))
    cell = np.floor((points["x"] - SCENE_ORIGIN[0]) / 50.0) * 1e6 + np.floor((SCENE_ORIGIN[1] - points["y"]) / 50.0)
    _, per_cell = np.unique(cell, return_counts=True)
    assert per_cell.max() == 2  # the profile's dense towns are thinned to the cap
    for truth in truths:  # a signal's deforming area is observed at least in the set share of its cells
        seen = np.unique(cell[shapely.contains_xy(truth["geometry"], points["x"], points["y"])]).size
        assert seen >= MIN_SEEN_FRACTION * truth["geometry"].area / 50.0**2 - 1e-9
