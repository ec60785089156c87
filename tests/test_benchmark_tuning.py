"""Tuning the baselines on validation scenes (``defoscan.benchmark.tuning``): choices predictable on hand-made maps,
the false-alarm rule and its fallback, and tuned rows that ``detect`` runs."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio.transform import from_origin

from defoscan.benchmark.suite import GOAL_FALSE_ALARMS, detect_options
from defoscan.benchmark.tuning import GRIDS, OVERALL, WITHIN_GOAL, combinations, tune, tuned_rows
from defoscan.pipeline import detect
from defoscan.synth.scene import make_scene, write_scene

CELL = 50.0
SIZE = 60  # cells a side: 3 km, 9 km²
TRANSFORM = from_origin(500000.0, 5000000.0, CELL, CELL)
CRS = "EPSG:32631"


def bowl(peak, row, col, spread=3.0):
    """A Gaussian bowl of ``peak`` mm/yr at cell (row, col), ``spread`` cells wide."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    return peak * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * spread**2))


def truth(bowls):
    """Truth circles (2 spreads) around bowls given as (peak, row, col)."""
    shapes = [shapely.Point(TRANSFORM * (col + 0.5, row + 0.5)).buffer(2 * 3.0 * CELL) for peak, row, col in bowls]
    kinds = [{"kind": "compaction", "peak_velocity": peak} for peak, _, _ in bowls]
    return gpd.GeoDataFrame(kinds, geometry=shapes, crs=CRS)


def scene(seed, bowls, bumps=()):
    """A scene's maps: 1 mm/yr noise, the truth's ``bowls`` and untrue ``bumps`` (an artefact), one point a cell."""
    velocity = np.random.default_rng(seed).normal(0.0, 1.0, (SIZE, SIZE))
    for peak, row, col in (*bowls, *bumps):
        velocity += bowl(peak, row, col)
    return {
        "velocity": velocity,
        "count": np.ones((SIZE, SIZE)),
        "transform": TRANSFORM,
        "crs": CRS,
        "area": SIZE * SIZE * CELL**2 / 1e6,
        "truth": truth(bowls) if bowls else truth([]).iloc[:0],
        "signals": bool(bowls),
    }


@pytest.fixture(scope="module")
def maps():
    """A strong bowl (z about 30) and a weak one (z about 5); a signal-free scene with an artefact of z about 5."""
    return [scene(1, [(-30.0, 15, 15), (-5.0, 45, 45)]), scene(2, [], bumps=[(5.0, 30, 30)])]


def test_combinations_last_name_fastest():
    assert combinations({"k": (1, 2), "radius": (3, 4)}) == [
        {"k": 1, "radius": 3},
        {"k": 1, "radius": 4},
        {"k": 2, "radius": 3},
        {"k": 2, "radius": 4},
    ]


def test_grids_have_the_same_budget_over_more_than_one_parameter():
    budgets = {detector: len(combinations(grid)) for detector, grid in GRIDS.items()}
    assert set(budgets) == {"threshold", "gistar", "ada"}
    assert set(budgets.values()) == {24}
    assert all(len(grid) >= 2 for grid in GRIDS.values())


def test_a_low_k_that_finds_the_artefact_is_not_chosen(maps):
    result = tune("threshold", maps, {"k": (3.0, 8.0)})
    low, high = result["sweep"]
    # k = 3 finds both bowls (F1 1) and the artefact (a false alarm in 9 km²); k = 8 only the strong bowl.
    assert low["recall"] == 1.0 and low["f1"] == 1.0
    assert low["false_alarms_per_1000_km2"] == pytest.approx(1000 / 9)
    assert high["recall"] == 0.5 and high["false_alarms_per_1000_km2"] == 0.0
    assert result["rule"] == WITHIN_GOAL
    assert result["best"] == {"k": 8.0} and result["chosen"] == 1
    assert (result["scenes"], result["scenes_with_signals"], result["truths"]) == (2, 1, 2)
    assert result["signal_free_km2"] == pytest.approx(9.0)


def test_without_a_combination_within_the_goal_the_best_f1_is_chosen(maps):
    result = tune("threshold", maps, {"k": (2.5, 3.0)})
    assert all(e["false_alarms_per_1000_km2"] > GOAL_FALSE_ALARMS for e in result["sweep"])
    assert result["rule"] == OVERALL
    best = max(e["f1"] for e in result["sweep"])
    assert result["sweep"][result["chosen"]]["f1"] == best


def test_a_background_smaller_than_the_bowl_loses_it():
    quiet = [scene(1, [(-30.0, 15, 15), (-5.0, 45, 45)]), scene(2, [])]
    result = tune("threshold", quiet, {"k": (4.0,), "background_size": (150.0, 5000.0)})
    small, large = result["sweep"]
    # Blocks of 3 cells follow the bowls (about 12 cells across) and take them away with the background.
    assert small["recall"] == 0.0
    assert large["recall"] == 1.0 and large["false_alarms_per_1000_km2"] == 0.0
    assert result["best"] == {"k": 4.0, "background_size": 5000.0}


def test_ties_go_to_the_first_in_grid_order(maps):
    result = tune("threshold", maps, {"k": (8.0, 9.0)})
    assert result["sweep"][0]["f1"] == result["sweep"][1]["f1"]
    assert result["best"] == {"k": 8.0}


def test_the_other_baselines_are_tuned_over_their_parameters(maps):
    gistar = tune("gistar", maps, {"z": (3.0, 40.0), "radius": (100.0,)})
    assert [e["parameters"] for e in gistar["sweep"]] == [{"z": 3.0, "radius": 100.0}, {"z": 40.0, "radius": 100.0}]
    assert gistar["sweep"][0]["recall"] > gistar["sweep"][1]["recall"]  # z = 40 over 5 cells finds nothing
    ada = tune("ada", maps, {"k": (3.0, 10.0)})
    assert ada["best"] == {"k": 10.0}  # k = 3 finds the artefact; k = 10 keeps the strong bowl only
    assert ada["sweep"][1]["recall"] == 0.5


def test_tuned_rows_run_through_detect(tmp_path):
    choices = {
        "cnn": {"best": {"threshold": 0.4}, "sweep": []},  # not a baseline: no row
        "threshold": {"best": {"k": 4.0, "background_size": 10000.0}, "sweep": [{}] * 24},
        "gistar": {"best": {"z": 8.0, "radius": 500.0}, "sweep": [{}] * 24},
        "ada": {"best": {"k": 5.0, "link": 500.0, "background_size": 2000.0}, "sweep": [{}] * 24},
    }
    rows = tuned_rows(choices)
    assert [row.name for row in rows] == ["threshold-tuned", "gistar-tuned", "ada-tuned"]
    assert {row.group for row in rows} == {"baseline"}
    assert rows[0].label == (
        "thresholding, tuned on this benchmark's validation split: k = 4, background 10 km (best of 24 combinations)"
    )
    assert rows[0].options == {"detector": "threshold", "parameters": {"k": 4.0, "background_size": 10000.0}}
    assert rows[1].options == {"detector": "gistar", "baseline": {"z": 8.0, "radius": 500.0}}
    points, truths, info = make_scene(3, shape=(120, 120), kinds=("quarry",))
    csv, _, _ = write_scene(str(tmp_path), "scene", points, truths, info)
    for row in rows:
        record = detect([csv], **detect_options(row.options)).record["parameters"]
        assert record["detector"] == row.options["detector"]
        given = record if row.options["detector"] == "threshold" else record["baseline"]
        assert given.items() >= choices[row.options["detector"]]["best"].items()
