"""The reliability table of a probability map: known answers for calibrated and over-confident maps, no-data cells
left out, counts that add up over maps, and a map read from its files against a truth polygon."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from defoscan.benchmark.reliability import (
    expected_calibration_error,
    map_counts,
    markdown,
    reliability_counts,
    reliability_table,
)


def test_a_calibrated_map_has_almost_no_calibration_error():
    rng = np.random.default_rng(0)
    probability = rng.random(200_000)
    inside = rng.random(probability.size) < probability  # a cell of probability p deforms a share p of the time
    counts = reliability_counts(probability, inside)
    assert expected_calibration_error(counts) < 0.01
    for row in reliability_table(counts):
        assert row["share_inside"] == pytest.approx(row["mean_probability"], abs=0.02)


def test_an_over_confident_map_has_its_gap_as_the_error():
    rng = np.random.default_rng(1)
    probability = np.full(10_000, 0.9)
    inside = rng.random(probability.size) < 0.1
    counts = reliability_counts(probability, inside)
    (row,) = [r for r in reliability_table(counts) if r["cells"]]
    assert (row["low"], row["high"], row["cells"]) == (0.9, 1.0, 10_000)
    assert expected_calibration_error(counts) == pytest.approx(0.8, abs=0.01)


def test_no_data_cells_are_left_out_and_counts_add_up():
    probability = np.array([[0.05, np.nan], [0.55, 1.0]])
    inside = np.array([[False, True], [True, True]])
    counts = reliability_counts(probability, inside)
    assert counts[:, 0].sum() == 3 and counts[:, 2].sum() == 2  # the NaN cell counts for nothing
    assert counts[9, 0] == 1  # a probability of exactly 1 falls in the last bin
    assert np.array_equal(reliability_counts(probability, inside) * 2, counts + counts)
    assert expected_calibration_error(np.zeros((10, 3))) is None
    with pytest.raises(ValueError, match="shape"):
        reliability_counts(probability, inside[:1])


def test_a_run_map_is_read_against_its_truth_polygon(tmp_path):
    probability = np.full((10, 10), 0.2, dtype=np.float32)
    probability[2:5, 2:5] = 0.8
    probability[9, 9] = np.nan
    transform = from_origin(500_000.0, 4_000_500.0, 50.0, 50.0)
    path = tmp_path / "probability.tif"
    profile = {"driver": "GTiff", "width": 10, "height": 10, "count": 1, "dtype": "float32", "crs": "EPSG:32633"}
    with rasterio.open(path, "w", transform=transform, **profile) as dst:
        dst.write(probability, 1)
    # The truth is the 3 x 3 cells of rows and columns 2-4, given in WGS84 (read in the map's CRS).
    box = shapely.box(500_100.0, 4_000_250.0, 500_250.0, 4_000_400.0)
    truth = tmp_path / "truth.geojson"
    gpd.GeoDataFrame(geometry=[box], crs="EPSG:32633").to_crs("EPSG:4326").to_file(truth)
    counts = map_counts(path, truth)
    assert counts[8].tolist() == pytest.approx([9, 7.2, 9])  # the 0.8 cells are the truth's
    assert counts[2].tolist() == pytest.approx([90, 18.0, 0])
    table = markdown({"a split": counts})
    assert "| 0.8-0.9 | 9, 0.80, 1.00 |" in table and "a split 0.200" in table  # every cell 0.2 from its share
