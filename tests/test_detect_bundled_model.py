"""``detect`` with the bundled, trained model on the bundled real maps: the Shinmoedake crater (centimetres a year)
gets a high probability and lies in a detection; the stable Ustica island, scanned, gets none."""

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Point

from defoscan.detect import bundled_model_path, detect
from defoscan.model import load_model

SHINMOEDAKE = (130.883, 31.911)  # lon, lat of the crater (data provenance: about +-5 cm/yr there)


@pytest.fixture(scope="module")
def card():
    return load_model(bundled_model_path())[1]


@pytest.fixture(scope="module")
def kirishima_cnn(tmp_path_factory, kirishima_velocity_h5):
    out = tmp_path_factory.mktemp("kirishima-cnn")
    return out, detect([str(kirishima_velocity_h5)], str(out))


def test_the_bundled_model_is_a_trained_one(card):
    assert card["arch"] == "compact" and card["name"] == "defoscan-compact"
    assert card["metrics"]["val_auc"] > 0.9
    assert 0.0 < card["threshold"] < 1.0
    assert card["input"]["mode"] == "enhanced"


def test_the_crater_gets_a_high_probability_and_a_detection(kirishima_cnn, card):
    out, result = kirishima_cnn
    with rasterio.open(out / "probability.tif") as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(*SHINMOEDAKE)
        row, col = src.index(x, y)
        probability = src.read(1)
    assert probability[row, col] > max(card["threshold"], 0.9)
    crater = gpd.GeoSeries([Point(*SHINMOEDAKE)], crs=4326).to_crs(result["detections"].crs).iloc[0]
    assert result["detections"].contains(crater).any()
    record = json.loads((out / "run.json").read_text())
    assert record["parameters"]["detector"] == "cnn"
    assert record["parameters"]["model"]["weights_sha256"] == card["weights_sha256"]


def test_ustica_is_scanned_and_nothing_is_found(tmp_path, ustica_l2b_022_zip, ustica_l2b_117_zip, card):
    result = detect([str(ustica_l2b_022_zip), str(ustica_l2b_117_zip)], str(tmp_path / "out"))
    assert len(result["detections"]) == 0
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        for band in (1, 2):
            probability = src.read(band)
            assert np.isfinite(probability).sum() > 1000  # the island was scanned, not skipped
            assert np.nanmax(probability) < card["threshold"]
