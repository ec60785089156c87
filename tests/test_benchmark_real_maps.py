"""The real-maps benchmark (``defoscan.benchmark.real_maps``): localisation scores of hand-made shapes with known
answers, the project's truth file, a case made from the real data, and one row run end to end through the driver."""

import importlib.util
import json
import math
import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

import defoscan
from defoscan.benchmark.real_maps import (
    CASES,
    case_inputs,
    case_truths,
    goals,
    localisation,
    project_truths,
    real_maps_table,
    truth_circles,
)
from defoscan.crs import working_crs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRUTH = {"lon": 10.0, "lat": 45.0, "radius_km": 1.0, "sign": "subsidence", "peak_mm_yr": -20}
CRS = working_crs(np.array([10.0]), np.array([45.0]))


def detections(*shapes_and_scores):
    shapes, scores = zip(*shapes_and_scores, strict=True) if shapes_and_scores else ((), ())
    return gpd.GeoDataFrame({"score": list(scores)}, geometry=list(shapes), crs=CRS)


def centre():
    return truth_circles([TRUTH], CRS).geometry.iloc[0].centroid


def test_a_tight_detection_is_localised_a_map_wide_one_is_not():
    tight = centre().buffer(800.0, quad_segs=64)
    whole_map = shapely.box(*centre().buffer(50_000.0).bounds)

    scored = localisation(detections((tight, 0.9)), [TRUTH], area_km2=100.0)
    (truth,) = scored["truths"]
    assert truth["found"] and truth["localised"]
    assert truth["share_inside"] == pytest.approx(1.0)
    assert truth["truth_covered"] == pytest.approx(0.64, abs=0.01)  # (0.8 / 1.0) squared
    assert scored["detected_share"] == pytest.approx(math.pi * 0.64 / 100.0, rel=0.01)

    scored = localisation(detections((whole_map, 0.9)), [TRUTH], area_km2=10_000.0)
    (truth,) = scored["truths"]
    assert truth["found"] and not truth["localised"]
    assert truth["truth_covered"] == pytest.approx(1.0)
    assert truth["share_inside"] == pytest.approx(math.pi / 10_000.0, rel=0.01)
    assert scored["outside"] == 0


def test_the_best_detection_is_the_highest_score_and_others_count_outside():
    tight = centre().buffer(800.0, quad_segs=64)
    whole_map = shapely.box(*centre().buffer(50_000.0).bounds)
    far = shapely.box(centre().x + 10_000, centre().y, centre().x + 12_000, centre().y + 1_000)  # 2 km²

    scored = localisation(detections((whole_map, 0.5), (tight, 0.8), (far, 0.99)), [TRUTH], area_km2=None)
    (truth,) = scored["truths"]
    assert truth["best_score"] == pytest.approx(0.8) and truth["share_inside"] == pytest.approx(1.0)
    assert (scored["outside"], scored["outside_km2"]) == (1, pytest.approx(2.0))
    assert scored["detected_share"] is None and scored["cells"] is None
    # the map-wide one ranks first now: it is the best, and it is not inside
    scored = localisation(detections((whole_map, 0.9), (tight, 0.8)), [TRUTH], area_km2=None)
    assert not scored["truths"][0]["localised"]


def test_a_control_counts_every_detection_outside_and_a_miss_is_not_found():
    far = shapely.box(centre().x + 10_000, centre().y, centre().x + 12_000, centre().y + 1_000)
    control = localisation(detections((far, 0.7)), [], area_km2=50.0)
    assert (control["detections"], control["outside"], control["found"], control["truths"]) == (1, 1, 0, [])
    missed = localisation(detections((far, 0.7)), [TRUTH], area_km2=50.0)
    assert missed["truths"][0] == {
        "found": False,
        "best_score": None,
        "best_area_km2": None,
        "share_inside": None,
        "truth_covered": None,
        "localised": False,
    }
    assert localisation(detections(), [], area_km2=None)["detections"] == 0
    nothing = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")  # as an empty detections.geojson reads: no columns
    assert localisation(nothing, [TRUTH], area_km2=None)["truths"][0]["found"] is False


def test_cell_auc_of_a_map_that_is_high_only_inside_the_truth(tmp_path):
    x0, y0 = centre().x - 5_000, centre().y + 5_000
    transform = from_origin(x0, y0, 100.0, 100.0)
    xs = x0 + 100.0 * (np.arange(100) + 0.5)
    ys = y0 - 100.0 * (np.arange(100) + 0.5)
    inside = np.hypot(xs[None, :] - centre().x, ys[:, None] - centre().y) < 1000.0
    path = str(tmp_path / "probability.tif")
    profile = dict(driver="GTiff", width=100, height=100, count=1, dtype="float32", crs=CRS, transform=transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(inside.astype("float32")[None])
    scored = localisation(detections(), [TRUTH], area_km2=100.0, probability_path=path)
    assert scored["cells"]["roc_auc"] == pytest.approx(1.0)
    assert scored["cells"]["positive_cells"] == pytest.approx(math.pi * 100, rel=0.05)


def test_the_project_truths_list_kirishima_and_ustica_with_how_they_were_read():
    truths = project_truths()
    assert set(truths) == {"kirishima", "ustica"}
    assert [t["name"] for t in truths["kirishima"]["truths"]] == ["Shinmoedake crater", "Iwo-yama"]
    assert (truths["ustica"]["truths"][0]["lat"], truths["ustica"]["truths"][0]["radius_km"]) == (38.6955, 0.25)
    for entry in truths.values():
        assert entry["how"]
        assert all({"lon", "lat", "radius_km", "sign", "peak_mm_yr"} <= set(t) for t in entry["truths"])


def test_every_case_has_its_truths_and_london_is_a_control(real_data_dir):
    counts = {name: len(case_truths(case, str(real_data_dir))) for name, case in CASES.items()}
    assert counts == {
        "mexico_city": 1,
        "jakarta": 2,
        "hochiminh": 6,
        "london_control": 0,
        "maoxian_sbas": 1,
        "kirishima": 2,
        "ustica": 1,
    }


def test_mexico_city_is_made_once_and_read_by_defoscan(real_data_dir, tmp_path):
    (path,) = case_inputs(CASES["mexico_city"], str(real_data_dir), str(tmp_path))
    made = os.path.getmtime(path)
    assert case_inputs(CASES["mexico_city"], str(real_data_dir), str(tmp_path)) == [path]
    assert os.path.getmtime(path) == made and os.listdir(os.path.dirname(path)) == ["mexico_city.tif"]
    (track,) = defoscan.read([path])
    velocity = track["velocity"].values
    assert velocity.shape == (60, 100) and np.count_nonzero(np.isfinite(velocity)) == 5898  # as PROVENANCE.md says


def test_one_row_on_maoxian_through_the_driver_then_resumed(real_data_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("real_maps_driver", os.path.join(REPO, "benchmarks", "real_maps.py"))
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    table = tmp_path / "table.md"
    table.write_text("# Real maps\n<!-- real-maps:begin -->\nstale\n<!-- real-maps:end -->\nafter\n")
    argv = ["--data", str(real_data_dir), "--work", str(tmp_path / "work"), "--table", str(table)]
    result = driver.main([*argv, "--rows", "threshold", "--cases", "maoxian_sbas"])
    (entry,) = result["rows"]
    scored = entry["cases"]["maoxian_sbas"]
    assert entry["name"] == "threshold" and len(scored["truths"]) == 1
    assert scored["area_km2"] > 0 and scored["seconds"] > 0
    assert os.path.exists(tmp_path / "work" / "threshold" / "maoxian_sbas" / "probability.tif")
    text = table.read_text()
    assert "stale" not in text and text.endswith("after\n") and "Maoxian" in text and "`threshold`" in text
    assert "London control: not run" in text
    kept = json.loads((tmp_path / "work" / "threshold" / "maoxian_sbas.json").read_text())
    assert kept["result"] == scored
    again = driver.main([*argv, "--rows", "threshold", "--cases", "maoxian_sbas"])  # taken from the kept result
    assert again["rows"][0]["cases"]["maoxian_sbas"]["seconds"] == scored["seconds"]


def test_goals_and_table_of_a_hand_made_result():
    def scored(found, localised, share, outside, detections):
        truth = {"found": found, "localised": localised, "share_inside": share, "truth_covered": share}
        return {
            "truths": [truth] if found is not None else [],
            "found": int(bool(found)),
            "outside": outside,
            "localised": int(bool(localised)),
            "detections": detections,
            "cells": {"roc_auc": 0.75},
        }

    result = {
        "cases": {
            "kirishima": {"label": "Kirishima", "truths": [{"name": "Shinmoedake crater"}]},
            "ustica": {"label": "Ustica", "truths": [{"name": "Ustica patch"}]},
            "london_control": {"label": "London", "truths": []},
        },
        "rows": [
            {
                "name": "cnn",
                "row": {"label": "defoscan", "group": "detector"},
                "cases": {
                    "kirishima": scored(True, True, 0.8, 4, 5),
                    "ustica": scored(False, False, None, 0, 0),
                    "london_control": scored(None, None, None, 3, 3),
                },
            }
        ],
    }
    met = {goal: ok for goal, (_, ok) in goals(result).items()}
    assert list(met.values()) == [False, False, True, True]  # 1/2 localised, 3 on London, crater, Ustica clean
    table = real_maps_table(result)
    assert "| **defoscan** | detector | 1/1, 1/1, 0.80, 0.80, 4, 0.75 | 0/1, 0/1, -, -, 0, 0.75 | 3 |" in table
    assert "1/2 — **not met**" in table


def test_a_detection_of_the_other_sign_does_not_find_a_truth():
    tight = centre().buffer(800.0, quad_segs=64)
    ring = centre().buffer(1500.0, quad_segs=64).difference(centre().buffer(900.0))  # mostly outside the 1 km circle
    signed = gpd.GeoDataFrame({"score": [0.9, 0.8], "sign": ["uplift", "subsidence"]}, geometry=[tight, ring], crs=CRS)
    # the uplift inside the subsidence circle is the best by score, but not of the truth's sign; it counts outside
    scored = localisation(signed, [TRUTH], area_km2=None)
    (truth,) = scored["truths"]
    assert truth["found"] and truth["best_score"] == pytest.approx(0.8) and not truth["localised"]
    assert scored["outside"] == 1
    uplift_only = localisation(signed.iloc[[0]], [TRUTH], area_km2=None)
    assert not uplift_only["truths"][0]["found"] and uplift_only["outside"] == 1
    mixed = localisation(signed.iloc[[0]], [{**TRUTH, "sign": "mixed"}], area_km2=None)
    assert mixed["truths"][0]["localised"] and mixed["outside"] == 0
