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
    assert card["input"]["mode"] == "single"


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
    report = (out / "report.html").read_text()
    assert f"cnn (model defoscan-compact, weights sha256 {card['weights_sha256'][:12]})" in report


@pytest.fixture(scope="module")
def ustica_cnn(tmp_path_factory, ustica_l2b_022_zip, ustica_l2b_117_zip):
    out = tmp_path_factory.mktemp("ustica-cnn")
    result = detect([str(ustica_l2b_022_zip), str(ustica_l2b_117_zip)], str(out))
    with rasterio.open(out / "probability.tif") as src:
        probability = dict(zip(("T022", "T117"), (src.read(1), src.read(2)), strict=True))
    return result, probability


def test_ustica_is_scanned(ustica_cnn):
    _, probability = ustica_cnn
    for band in probability.values():
        assert np.isfinite(band).sum() > 1000  # the island (11 % of a window) is read, not skipped


def test_ustica_ascending_track_is_clean(ustica_cnn, card):
    result, probability = ustica_cnn
    assert np.nanmax(probability["T117"]) < card["threshold"]
    assert not (result["detections"]["track"] == "T117").any()


@pytest.mark.xfail(
    strict=True,
    reason="known failure (docs/MODEL.md): on T022 the coastal rim reads 2-3 mm/yr below the plateau, possibly "
    "height-correlated tropospheric delay (no elevation model of Ustica here to check), a nuisance the synthetic "
    "training data lack; the network calls it "
    "deformation",
)
def test_ustica_descending_track_is_clean(ustica_cnn, card):
    result, probability = ustica_cnn
    assert np.nanmax(probability["T022"]) < card["threshold"]
