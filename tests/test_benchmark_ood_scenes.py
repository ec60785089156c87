"""Tests of the out-of-distribution scenes: regimes do what they claim, truths follow the stated rule."""

import json
import os

import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

import defoscan
from defoscan.benchmark.ood_scenes import (
    MOGI_RADIUS_PER_DEPTH,
    REGIMES,
    make_ood_scene,
    mogi_params,
    write_ood_suite,
)
from defoscan.synth import sources
from defoscan.synth.scene import SCENE_ORIGIN

QUIET = {"atmosphere": "power-law", "regional": "none"}


def test_same_seed_same_scene():
    regime = {"spacing": "100m", "coverage": "towns", "signals": "nested"}
    first, second = make_ood_scene(4, regime=regime), make_ood_scene(4, regime=regime)
    for key in ("x", "y", "velocity"):
        np.testing.assert_array_equal(first[0][key], second[0][key])
    assert [t["geometry"].wkt for t in first[1]] == [t["geometry"].wkt for t in second[1]]
    assert first[2] == second[2]
    assert not np.array_equal(make_ood_scene(5, regime=regime)[0]["velocity"][:10], first[0]["velocity"][:10])


@pytest.mark.parametrize("spacing", ["25m", "100m", "200m"])
def test_points_are_one_per_cell_at_the_regime_spacing(spacing):
    points, _, info = make_ood_scene(1, regime={"spacing": spacing, "coverage": "city", "signals": "none"})
    cell = REGIMES["spacing"][spacing]
    assert info["cell_size"] == cell
    col = np.floor((points["x"] - SCENE_ORIGIN[0]) / cell).astype(int)
    row = np.floor((SCENE_ORIGIN[1] - points["y"]) / cell).astype(int)
    assert len(set(zip(row.tolist(), col.tolist(), strict=True))) == points["x"].size  # one point per cell
    xy = np.column_stack([points["x"], points["y"]])
    distance, _ = cKDTree(xy).query(xy, k=2)
    assert 0.3 * cell < np.median(distance[:, 1]) < 1.0 * cell  # jittered one per cell of a dense map
    assert info["shape"][0] * cell >= 13_000.0  # at least 13 km a side (600 cells of 25 m: 15 km)


@pytest.mark.parametrize(
    ("coverage", "low", "high"), [("city", 0.7, 0.9), ("rural", 0.03, 0.10), ("towns", 0.1, 0.25), ("linear", 0, 0.2)]
)
def test_coverage_share_is_that_of_the_regime(coverage, low, high):
    _, _, info = make_ood_scene(2, regime={"spacing": "50m", "coverage": coverage, "signals": "none"})
    assert low - 0.005 <= info["coverage_share"] <= high + 0.005


def test_coast_leaves_half_the_map_empty():
    points, _, info = make_ood_scene(3, regime={"spacing": "100m", "coverage": "coast", "signals": "none"})
    assert info["coverage_share"] == pytest.approx(0.5 * info["coverage"]["land_share"], abs=0.08)
    # The sea is one side: the half of the map beyond the coast holds few points.
    cell = info["cell_size"]
    col = ((points["x"] - SCENE_ORIGIN[0]) / cell).astype(int)
    row = ((SCENE_ORIGIN[1] - points["y"]) / cell).astype(int)
    occupied = np.zeros(info["shape"], dtype=bool)
    occupied[row, col] = True
    side = info["shape"][0] - info["shape"][0] % 4
    blocks = occupied[:side, :side].reshape(4, side // 4, 4, side // 4).mean(axis=(1, 3))
    assert (blocks < 0.02).sum() >= 3  # whole blocks of sea


def test_atmosphere_regimes_have_their_std():
    rng = np.random.default_rng(0)
    field, params = REGIMES["atmosphere"]["strong"](rng, (300, 300), 100.0)
    assert params["sigma"] >= 5.0
    assert 0.4 * params["sigma"] < field.std() < 1.5 * params["sigma"]  # long lengths: one draw spreads
    field, params = REGIMES["atmosphere"]["power-law"](rng, (300, 300), 100.0)
    assert 1.0 <= params["amplitude"] <= 3.0 and 2.5 <= params["beta"] <= 3.7
    assert abs(field.std() - params["amplitude"]) <= 0.5 * params["ramp"] + 0.01  # the field's std, plus the ramp


def test_strong_atmosphere_makes_noisier_maps():
    def spread(atmosphere):
        points, _, _ = make_ood_scene(
            6,
            regime={
                "spacing": "100m",
                "coverage": "city",
                "signals": "none",
                "regional": "none",
                "atmosphere": atmosphere,
            },
        )
        return np.subtract(*np.percentile(points["velocity"], [75, 25]))

    assert spread("strong") > 1.5 * spread("power-law")


def test_large_bowl_truth_has_the_analytic_area():
    _, truths, info = make_ood_scene(7, regime={"spacing": "50m", "coverage": "city", "signals": "large", **QUIET})
    (truth,) = truths
    (signal,) = info["signals"]
    params = signal["params"]
    radius = params["depth"] * MOGI_RADIUS_PER_DEPTH  # where the bowl is at 20 % of its peak
    assert 2 * radius >= 8000.0
    west, north = SCENE_ORIGIN
    height, width = (s * info["cell_size"] for s in info["shape"])
    scene = shapely.box(west, north - height, west + width, north)
    disc = shapely.Point(west + params["x0"], north + params["y0"]).buffer(radius, 256) & scene
    assert truth["geometry"].area == pytest.approx(disc.area, rel=0.02)
    assert (truth["geometry"] ^ disc).area < 0.03 * disc.area  # in the right place too
    assert truth["peak_velocity"] <= -20.0 * 0.95 and truth["sign"] == "subsidence"


def test_mogi_params_gives_the_asked_peak():
    params = mogi_params(0.0, 0.0, -50.0, 10_000.0, 40.0)
    _, _, up = sources.mogi(np.array([0.0, 5000.0]), np.array([0.0, 0.0]), **params)
    los = up * np.cos(np.deg2rad(40.0))
    assert los[0] == pytest.approx(-50.0)
    assert los[1] == pytest.approx(-50.0 * 0.2)  # the rim of the truth: 20 % of the peak, 5 km out


def test_signal_free_scenes_have_no_truths_and_hard_atmosphere():
    _, truths, info = make_ood_scene(8, regime={"spacing": "100m", "signals": "none"})
    assert truths == [] and not info["signals"]
    assert info["regime"]["atmosphere"] == "strong"


@pytest.mark.parametrize("regional", ["tilt", "long-wave"])
def test_regional_motion_is_not_a_truth(regional):
    regime = {"spacing": "100m", "coverage": "city", "signals": "none", "atmosphere": "power-law"}
    points, truths, info = make_ood_scene(9, regime={**regime, "regional": regional})
    flat, _, _ = make_ood_scene(9, regime={**regime, "regional": "none"})
    assert truths == []
    difference = points["velocity"] - flat["velocity"]  # the same draws but for the regional field
    assert np.ptp(difference) >= 0.5 * info["regional"]["across"]
    assert 5.0 <= info["regional"]["across"] <= 20.0


def test_nested_signals_are_one_truth():
    _, truths, info = make_ood_scene(10, regime={"spacing": "50m", "coverage": "city", "signals": "nested", **QUIET})
    assert len(truths) == 1
    assert len(info["signals"]) >= 2 and {s["truth"] for s in info["signals"]} == {1}
    broad = info["signals"][0]["params"]
    assert abs(truths[0]["peak_velocity"]) > 20.0  # the fast core's peak, not the broad bowl's 5-15 mm/yr
    assert broad["depth"] > max(s["params"]["depth"] for s in info["signals"][1:])


def test_unseen_small_pits_are_not_truths():
    _, truths, info = make_ood_scene(11, regime={"spacing": "200m", "coverage": "rural", "signals": "small"})
    assert len(truths) + len(info["not_placed"]) >= 1
    assert len({s["truth"] for s in info["signals"]}) == len(truths)
    assert all(s["kind"] == "quarry" for s in info["not_placed"])


def test_suite_is_balanced_and_readable(tmp_path):
    names = write_ood_suite(str(tmp_path), 4, 3)
    assert names == ["scene-000", "scene-001", "scene-002", "scene-003"]
    infos = [json.load(open(os.path.join(tmp_path, name + ".json"))) for name in names]
    assert sum(info["regime"]["signals"] == "none" for info in infos) == 1
    assert sorted(info["regime"]["spacing"] for info in infos) == sorted(REGIMES["spacing"])
    small = min(range(4), key=lambda i: infos[i]["points"])
    (track,) = defoscan.read(os.path.join(tmp_path, names[small] + ".csv"))
    assert track.sizes["point"] == infos[small]["points"]
    assert float(np.nanmax(np.abs(track["velocity"].values))) < 1000.0


def test_suite_runs_ood_scenes_at_the_default_cell_size(tmp_path, monkeypatch):
    import defoscan.benchmark.suite as suite

    scenes = tmp_path / "scenes"
    write_ood_suite(str(scenes), 1, 5)
    asked = []

    def record_detect(row, inputs, out, models_dir, cell_size=None):
        asked.append(cell_size)
        raise RuntimeError("recorded")

    monkeypatch.setattr(suite, "_detect", record_detect)
    threshold = next(row for row in suite.ROWS if row.name == "threshold")
    for scene_cell_size in (False, True):
        with pytest.raises(RuntimeError, match="recorded"):
            suite.run_suite(
                str(scenes), str(tmp_path / "work"), rows=[threshold], real=False, scene_cell_size=scene_cell_size
            )
    made_at = json.load(open(scenes / "scene-000.json"))["cell_size"]
    assert asked == [None, made_at]
