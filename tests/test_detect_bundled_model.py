"""``detect`` with the bundled, trained model on the bundled real maps: the Shinmoedake crater (centimetres a year)
gets a high probability and lies in a compact detection; the stable Ustica island, scanned, gets none — and its one
small real moving patch, checked from the raw data, is seen by the window head but missed by the shipped map."""

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Point

from defoscan.model import load_model
from defoscan.pipeline import bundled_model_path, detect
from defoscan.scan import scan_probability

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
    assert card["input"]["mode"] == "single" and card["input"]["fill"] is True
    assert card["input"]["localise"] == "product" and 0.0 < card["window_threshold"] < 1.0


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
    assert record["parameters"]["probability_threshold"] == pytest.approx(card["threshold"])
    assert record["parameters"]["low_probability_threshold"] == pytest.approx(0.5 * card["threshold"])
    assert record["parameters"]["model"]["weights_sha256"] == card["weights_sha256"]
    report = (out / "report.html").read_text()
    assert f"cnn (model defoscan-compact, weights sha256 {card['weights_sha256'][:12]})" in report
    assert "per-cell output" in report


def test_the_detections_outline_the_volcano_not_the_whole_map(kirishima_cnn):
    # A window classifier painted its probability over whole 2.6 km windows (72 of the 110 km2 map in one region);
    # the per-pixel map keeps the outlines to where the ground moves.
    out, result = kirishima_cnn
    found = result["detections"]
    crater = gpd.GeoSeries([Point(*SHINMOEDAKE)], crs=4326).to_crs(found.crs).iloc[0]
    assert found[found.contains(crater)]["area_km2"].max() < 10.0
    with rasterio.open(out / "velocity.tif") as src:
        mapped_km2 = np.isfinite(src.read(1)).sum() * abs(src.res[0] * src.res[1]) / 1e6
    assert mapped_km2 > 100.0 and found["area_km2"].sum() < 0.25 * mapped_km2


@pytest.fixture(scope="module")
def ustica_cnn(tmp_path_factory, ustica_l2b_022_zip, ustica_l2b_117_zip):
    out = tmp_path_factory.mktemp("ustica-cnn")
    result = detect([str(ustica_l2b_022_zip), str(ustica_l2b_117_zip)], str(out))
    with rasterio.open(out / "probability.tif") as src:
        probability = dict(zip(("T022", "T117"), (src.read(1), src.read(2)), strict=True))
    result["out"] = out
    return result, probability


def _window_head_peak(out, band=1):
    """Greatest blended window probability (the window head alone) over a detect output's track ``band``."""
    model, card = load_model(bundled_model_path())
    with rasterio.open(out / "velocity.tif") as src:
        observed = np.isfinite(src.read(band))
    with rasterio.open(out / "velocity_filled.tif") as src:
        filled = src.read(band)
    recipe = {**card["input"], "localise": "window"}
    return np.nanmax(scan_probability(filled, model, recipe, valid=observed)), card["window_threshold"]


def test_ustica_is_scanned(ustica_cnn):
    _, probability = ustica_cnn
    for band in probability.values():
        assert np.isfinite(band).sum() > 1000  # the island (11 % of a window) is read, not skipped


def test_ustica_raises_no_region_on_either_track(ustica_cnn, card):
    result, probability = ustica_cnn
    for band in probability.values():
        assert np.nanmax(band) < card["threshold"]
    assert len(result["detections"]) == 0


# Ustica is a stable island but for one compact patch: ~20 coherent scatterers near 38.6955 N 13.1652 E that the
# descending track T022 sees 6-7 mm/yr below the island (ascending T117: ~2 below, as for westward downslope motion
# plus subsidence), and where the EGMS L3 vertical product has the island's lowest value. Found by a window
# classifier's score of the island; checked from the raw points and the independent L3 grid below.
USTICA_PATCH = (13.1652, 38.6955)  # lon, lat


def _near_patch(lon, lat, metres):
    to_3035 = Transformer.from_crs(4326, 3035, always_xy=True)
    x, y = to_3035.transform(np.asarray(lon), np.asarray(lat))
    px, py = to_3035.transform(*USTICA_PATCH)
    return np.hypot(x - px, y - py) <= metres


def test_the_ustica_patch_is_real_in_the_raw_points_and_the_l3_product(l2b_022_frame, ustica_l3_u_tiff):
    points = l2b_022_frame
    near = _near_patch(points["longitude"], points["latitude"], 250.0)
    below = points["mean_velocity"] - points["mean_velocity"].median()
    coherent_and_sinking = (points["temporal_coherence"] >= 0.85) & (below <= -4.0)
    assert (near & coherent_and_sinking).sum() >= 8
    assert not (~near & coherent_and_sinking).any()  # nowhere else on the island
    with rasterio.open(ustica_l3_u_tiff) as src:
        up = src.read(1, masked=True)
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(13.1478, 38.7254)
        top, left = src.index(x, y)  # north-west corner of the island's box
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(13.2035, 38.6895)
        bottom, right = src.index(x, y)
        island = up[top : bottom + 1, left : right + 1]
        row, col = np.unravel_index(np.ma.argmin(island), island.shape)
        lon, lat = Transformer.from_crs(src.crs, 4326, always_xy=True).transform(*src.xy(top + row, left + col))
    assert _near_patch(lon, lat, 300.0) and island.min() < np.ma.median(island) - 3.0


@pytest.mark.xfail(
    strict=True,
    reason="known miss (docs/MODEL.md): the ~250 m patch is below the shipped per-cell map's cut-off (product "
    "0.15 against 0.45); the window head alone sees it (next test)",
)
def test_the_descending_track_flags_the_patch(ustica_cnn):
    result, _ = ustica_cnn
    found = result["detections"][result["detections"]["track"] == "T022"]
    patch = gpd.GeoSeries([Point(*USTICA_PATCH)], crs=4326).to_crs(found.crs).iloc[0]
    assert found.distance(patch).min() < 100.0


def test_the_window_head_sees_the_patch_and_nothing_without_it(ustica_cnn, l2b_022_frame, tmp_path):
    result, _ = ustica_cnn
    with_patch, cut = _window_head_peak(result["out"], band=1)
    assert with_patch >= cut
    points = l2b_022_frame
    kept = points[~_near_patch(points["longitude"], points["latitude"], 400.0)]
    assert len(points) - len(kept) < 0.1 * len(points)  # 6 % of the island
    kept.to_csv(tmp_path / "t022_without_patch.csv", index=False)
    detect([str(tmp_path / "t022_without_patch.csv")], str(tmp_path / "out"))
    without, _ = _window_head_peak(tmp_path / "out", band=1)
    assert without < cut
