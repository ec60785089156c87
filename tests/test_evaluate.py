"""Object-level scoring (``defoscan.evaluate``) on hand-made detections and truths with known answers."""

import json

import geopandas as gpd
import pytest
from shapely.geometry import Polygon, box

from defoscan.errors import InputError
from defoscan.evaluate import band_label, evaluate_files, match_detections, score

CRS = "EPSG:32630"  # metres


def frame(geometries, **columns):
    return gpd.GeoDataFrame(columns, geometry=list(geometries), crs=CRS)


def truths():
    """Three 1 km squares side by side 2 km apart, and a fourth far away."""
    return frame(
        [box(0, 0, 1000, 1000), box(3000, 0, 4000, 1000), box(6000, 0, 7000, 1000), box(0, 50_000, 1000, 51_000)],
        kind=["mining", "mining", "landslide", "quarry"],
        peak_velocity=[-3.0, -12.0, 7.5, -45.0],
    )


def test_one_huge_polygon_claims_one_truth_only():
    # Covers the three neighbours; overlaps the middle one most (all of it), the others by half.
    huge = frame([box(500, -100, 6500, 1100)])
    result = score(huge, truths())
    assert result["matches"] == [1]
    assert (result["found"], result["recall"], result["precision"]) == (1, 0.25, 1.0)
    assert result["f1"] == pytest.approx(2 * 0.25 / 1.25)


def test_outline_quality_tells_a_map_wide_region_from_a_tight_one():
    # Both find the first square; the huge one lies mostly outside it, the tight one inside.
    huge = score(frame([box(-4500, -4500, 5500, 5500)]), truths())  # 100 km2 around a 1 km2 truth
    tight = score(frame([box(100, 100, 900, 1100), box(20_000, 0, 21_000, 1000)]), truths())
    assert huge["found"] == tight["found"] == 1
    assert huge["share_inside"] == [pytest.approx(0.01)] and huge["iou"] == [pytest.approx(0.01)]
    # 800 x 1000 m, of which 800 x 900 inside; union 1 km2 + 800 x 100 m; the false alarm has no outline figures
    assert tight["share_inside"] == [pytest.approx(0.9)] and tight["iou"] == [pytest.approx(0.72 / 1.08)]
    assert score(frame([]), truths())["share_inside"] == []


def test_fragments_find_a_truth_once_and_are_not_false_alarms():
    pieces = frame([box(0, 0, 400, 400), box(600, 600, 1000, 1000), box(3100, 100, 3200, 200)])
    result = score(pieces, truths())
    assert result["matches"] == [0, 0, 1]
    assert (result["found"], result["false_alarms"], result["precision"]) == (2, 0, 1.0)


def test_a_detection_finds_only_a_truth_whose_motion_has_its_sign():
    signed = truths().assign(sign=["subsidence", "subsidence", "uplift", "subsidence"])
    # An uplift over the first (subsidence) square, a subsidence over the third (uplift) one, a right one on the second.
    detections = frame(
        [box(100, 100, 900, 900), box(6100, 100, 6900, 900), box(3100, 100, 3900, 900)],
        sign=["uplift", "subsidence", "subsidence"],
    )
    result = score(detections, signed)
    assert result["matches"] == [-1, -1, 1]
    assert (result["found"], result["false_alarms"]) == (1, 2)
    # A huge uplift over the first two squares and the uplift third: the only truth of its sign is the third.
    assert score(frame([box(-100, -100, 6500, 1100)], sign=["uplift"]), signed)["matches"] == [2]
    # A truth holding both signs (a Mogi source's lobes; `signs`) or "mixed" is found by either; unsigned truths too.
    both = signed.assign(signs=["subsidence,uplift", "", "", ""], sign=["subsidence", "mixed", "uplift", "subsidence"])
    detections = frame([box(100, 100, 900, 900), box(3100, 100, 3900, 900)], sign=["uplift", "uplift"])
    assert score(detections, both)["matches"] == [0, 1]
    assert score(detections, truths())["matches"] == [0, 1]
    assert score(frame([box(100, 100, 900, 900)]), signed)["matches"] == [0]  # detections without a sign


def test_frames_with_any_index_labels_are_matched_by_position():
    pieces = frame([box(20_000, 0, 21_000, 1000), box(0, 0, 400, 400), box(3100, 100, 3200, 200)])
    kept = pieces[pieces.geometry.area < 1e6]  # a filtered frame: index labels 1 and 2
    result = score(kept, truths().iloc[[1, 0]])
    assert result["matches"] == [1, 0] and result["found"] == 2


def test_false_alarms_and_their_rate():
    detections = frame([box(0, 0, 1000, 1000), box(20_000, 0, 21_000, 1000), box(1000, 0, 2000, 1000)])
    result = score(detections, truths(), area_km2=500.0)
    # The third only touches the first truth along an edge: no area in common, a false alarm.
    assert result["matches"] == [0, -1, -1]
    assert result["false_alarms"] == 2
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["false_alarms_per_1000_km2"] == pytest.approx(4.0)


def test_recall_by_kind_and_velocity_band():
    detections = frame([box(3200, 200, 3800, 800), box(6000, 0, 6500, 500), box(0, 50_000, 10, 50_010)])
    result = score(detections, truths())
    assert result["recall_by_kind"] == {
        "landslide": {"truths": 1, "found": 1, "recall": 1.0},
        "mining": {"truths": 2, "found": 1, "recall": 0.5},
        "quarry": {"truths": 1, "found": 1, "recall": 1.0},
    }
    bands = result["recall_by_band"]
    assert bands["2-5"] == {"truths": 1, "found": 0, "recall": 0.0}
    assert bands["5-10"]["found"] == bands["10-30"]["found"] == bands[">30"]["found"] == 1
    assert band_label((30.0, float("inf"))) == ">30"


def test_nothing_detected_and_nothing_true():
    empty = frame([])
    result = score(empty, truths(), area_km2=100.0)
    assert (result["recall"], result["found"], result["false_alarms_per_1000_km2"]) == (0.0, 0, 0.0)
    assert result["precision"] is None and result["f1"] == 0.0  # no detection to be right or wrong
    clean = score(frame([box(0, 0, 10, 10)]), frame([]), area_km2=1000.0)
    assert clean["false_alarms_per_1000_km2"] == 1.0 and clean["precision"] == 0.0
    assert clean["recall"] is None and clean["f1"] is None
    assert match_detections(empty, truths()).size == 0


def test_files_in_longitude_latitude_with_the_run_record(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    detections = frame([box(3200, 200, 3800, 800), Polygon([(9000, 0), (9500, 0), (9500, 500)])])
    detections.to_crs("EPSG:4326").to_file(out / "detections.geojson")
    truths().to_crs("EPSG:4326").to_file(tmp_path / "truth.geojson")
    (out / "run.json").write_text(
        json.dumps({"grid": {"cell_size_m": 50.0}, "tracks": [{"cells_with_data": 40_000}, {"cells_with_data": 1}]})
    )
    result = evaluate_files(str(out / "detections.geojson"), str(tmp_path / "truth.geojson"))
    assert result["matches"] == [1, -1]
    assert result["area_km2"] == pytest.approx(100.0)
    assert result["false_alarms_per_1000_km2"] == pytest.approx(10.0)


def test_a_missing_file_is_bad_input(tmp_path):
    frame([box(0, 0, 1, 1)]).to_file(tmp_path / "d.gpkg")
    with pytest.raises(InputError, match="no such file"):
        evaluate_files(str(tmp_path / "d.gpkg"), str(tmp_path / "missing.geojson"))


def test_the_command_prints_the_scores_and_writes_them(tmp_path, capsys):
    from defoscan.cli import main

    frame([box(3200, 200, 3800, 800), box(9000, 0, 9500, 500)]).to_file(tmp_path / "d.gpkg")
    truths().to_file(tmp_path / "t.geojson")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "evaluate",
                str(tmp_path / "d.gpkg"),
                str(tmp_path / "t.geojson"),
                "--area-km2",
                "250",
                "--out",
                str(tmp_path / "s.json"),
            ]
        )
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "recall" in printed and "25.0 %" in printed and "4.00" in printed
    scores = json.loads((tmp_path / "s.json").read_text())
    assert (scores["found"], scores["false_alarms"], scores["false_alarms_per_1000_km2"]) == (1, 1, 4.0)


def test_the_command_refuses_a_missing_truth_in_one_line(tmp_path, capsys):
    from defoscan.cli import main

    frame([box(0, 0, 1, 1)]).to_file(tmp_path / "d.gpkg")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(tmp_path / "d.gpkg"), str(tmp_path / "missing.geojson")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "missing.geojson" in err and "no such file" in err


def test_cell_scores_of_a_probability_map(tmp_path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from defoscan.evaluate import cell_scores

    # 20 x 20 cells of 100 m from (0, 2000): the first truth square (0-1000 m) covers the bottom-left 10 x 10.
    probability = np.full((2, 20, 20), np.nan, dtype=np.float32)
    probability[0, 10:, :10] = 0.9  # the truth's cells, band 1
    probability[1, :10, :] = 0.2  # elsewhere, band 2
    probability[1, 10:, 10:] = 0.95  # a false high where no truth is: ranks above the truth's cells
    path = tmp_path / "probability.tif"
    profile = {"driver": "GTiff", "width": 20, "height": 20, "count": 2, "dtype": "float32", "crs": CRS}
    with rasterio.open(path, "w", transform=from_origin(0, 2000, 100, 100), nodata=np.nan, **profile) as dst:
        dst.write(probability)
    result = cell_scores(str(path), truths())
    assert (result["cells"], result["positive_cells"]) == (400, 100)
    # Positives (0.9) beat the 200 cells at 0.2 and lose to the 100 at 0.95: AUC 200 / 300.
    assert result["roc_auc"] == pytest.approx(2 / 3)
    # Precision at the positives' rank: 100 of 200 cells above 0.2; recall 1 reached there.
    assert result["average_precision"] == pytest.approx(0.5)
