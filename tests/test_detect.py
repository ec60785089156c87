"""``detect`` end to end on the bundled real data: known signals found, the stable control clean."""

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point

from defoscan.detect import detect

SHINMOEDAKE = Point(130.883, 31.911)  # lon, lat of the crater (data provenance: about +-5 cm/yr there)


@pytest.fixture(scope="module")
def kirishima_run(tmp_path_factory, kirishima_velocity_h5):
    out = tmp_path_factory.mktemp("kirishima")
    return out, detect([str(kirishima_velocity_h5)], str(out))


def test_kirishima_flags_the_shinmoedake_crater(kirishima_run):
    out, _ = kirishima_run
    detections = gpd.read_file(out / "detections.geojson").to_crs(32652)
    crater = gpd.GeoSeries([SHINMOEDAKE], crs=4326).to_crs(32652).iloc[0]
    near = detections[detections.distance(crater) < 300.0]
    assert len(near) >= 1
    strongest = near.loc[near["peak_velocity"].abs().idxmax()]
    assert abs(strongest["peak_velocity"]) > 30.0  # the crater moves at centimetres per year
    assert strongest["score"] > 0.9
    # The crater ranks among the top detections of the whole map.
    assert near["id"].min() <= 5


def test_kirishima_outputs_agree_with_each_other(kirishima_run):
    out, result = kirishima_run
    geojson = json.loads((out / "detections.geojson").read_text())
    gpkg = gpd.read_file(out / "detections.gpkg")
    record = json.loads((out / "run.json").read_text())
    assert len(geojson["features"]) == len(gpkg) == record["detections"]["count"] == len(result["detections"])
    assert gpkg.crs.to_epsg() == 32652
    assert np.allclose(sorted(gpkg["area_km2"]), sorted(gpkg.geometry.area / 1e6), rtol=1e-4)
    with rasterio.open(out / "velocity.tif") as src:
        assert src.crs.to_epsg() == 32652 and src.res == (20.0, 20.0)
        assert list(src.bounds) == [record["grid"]["bounds"][i] for i in (0, 2, 1, 3)]
    with rasterio.open(out / "velocity.tif") as src, rasterio.open(out / "velocity_filled.tif") as filled:
        gridded, completed = src.read(1), filled.read(1)
        assert filled.transform == src.transform and filled.tags()["fill_method"] == "completion"
    observed = np.isfinite(gridded)
    assert np.array_equal(completed[observed], gridded[observed])  # data cells are kept as they are
    assert np.isfinite(completed[~observed]).mean() > 0.9  # gaps inside the volcano map are filled
    properties = geojson["features"][0]["properties"]
    assert set(properties) >= {"id", "score", "area_km2", "n_points", "mean_velocity", "peak_velocity", "sign", "kind"}
    assert properties["sign"] in ("subsidence", "uplift") and 0 <= properties["score"] <= 1


def test_ustica_stable_control_flags_nothing(tmp_path, ustica_l2b_022_zip, ustica_l2b_117_zip):
    result = detect([str(ustica_l2b_022_zip), str(ustica_l2b_117_zip)], str(tmp_path / "out"))
    assert len(result["detections"]) == 0
    assert json.loads((tmp_path / "out" / "detections.geojson").read_text()) == {
        "type": "FeatureCollection",
        "features": [],
    }
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    # Ascending and descending are kept apart, each with its own points and coverage.
    assert [(t["track"], t["points"]) for t in record["tracks"]] == [("T022", 11590), ("T117", 11759)]
    assert record["points"] == 11590 + 11759
    assert record["grid"]["crs"] == "EPSG:3035"
    removed = [t["despike"]["removed"] for t in record["tracks"]]
    assert all(0 < r < 0.01 * n for r, n in zip(removed, (11590, 11759), strict=True))  # a few bad scatterers
    with rasterio.open(tmp_path / "out" / "velocity.tif") as src:
        assert src.descriptions == ("velocity T022", "velocity T117", "count T022", "count T117")
        # Every point kept after despiking is counted once in its track's count band.
        assert src.read(3).sum() == 11590 - removed[0] and src.read(4).sum() == 11759 - removed[1]


def test_same_inputs_give_byte_identical_outputs(tmp_path, ustica_l2b_117_zip, kirishima_run):
    out, _ = kirishima_run
    again = tmp_path / "again"
    detect([str(json.loads((out / "run.json").read_text())["inputs"][0]["path"])], str(again))
    for name in ("detections.geojson", "detections.gpkg", "velocity.tif", "velocity_filled.tif", "overview.png"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_points_input_end_to_end_with_an_injected_bowl(tmp_path, amsterdam_csv):
    """The real Amsterdam scatterers (a 280 m x 80 m patch) with a 30 mm/yr, 25 m subsidence bowl added."""
    import pandas as pd

    table = pd.read_csv(amsterdam_csv)
    lon, lat = table["pnt_lon"].to_numpy(), table["pnt_lat"].to_numpy()
    centre = (np.median(lon), np.median(lat))
    r2 = ((lon - centre[0]) * 68_000) ** 2 + ((lat - centre[1]) * 111_000) ** 2  # metres squared
    table["pnt_linear"] = table["pnt_linear"] - 0.030 * np.exp(-r2 / 25.0**2)  # m/yr, as DePSI stores it
    path = tmp_path / "amsterdam_bowl.csv"
    table.to_csv(path, index=False)
    result = detect([str(path)], str(tmp_path / "out"), cell_size=10.0)
    frame = result["detections"]
    assert (frame["sign"] == "subsidence").any()
    bowl_centre = gpd.GeoSeries([Point(*centre)], crs=4326).to_crs(frame.crs).iloc[0]
    hit = frame[frame.distance(bowl_centre) < 70.0]
    assert len(hit) == 1 and hit.iloc[0]["peak_velocity"] < -15.0
