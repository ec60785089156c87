"""Vector points: GeoPackages and Shapefiles written with geopandas, in lon/lat and projected CRSs."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from defoscan.errors import InputError
from defoscan.io import ReadOptions, detect_format, read_input
from defoscan.points import describe_crs

LON = np.array([4.90, 4.91, 4.92, 4.93])
LAT = np.array([52.30, 52.31, 52.32, 52.33])
VEL = np.array([1.5, -2.0, 0.25, -7.0])


def _lonlat_frame(**columns):
    columns = columns or {"velocity": VEL}
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(LON, LAT), crs="EPSG:4326")


def _bng_frame(**columns):
    x = np.array([530_000.0, 530_010.0, 530_020.5, 530_031.0])
    y = np.array([180_000.0, 180_015.0, 180_030.0, 180_045.5])
    columns = columns or {"velocity": VEL}
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(x, y), crs="EPSG:27700"), x, y


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson", ".fgb"])
def test_lonlat_points(tmp_path, suffix):
    path = tmp_path / f"points{suffix}"
    _lonlat_frame(velocity=VEL, coherence=[0.9, 0.8, 0.7, 0.6]).to_file(path)
    assert detect_format(path) == "vector"
    ds = read_input(path)
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(LON, LAT)
    assert describe_crs(ds) == "EPSG:32631"
    assert ds.attrs["crs_declared"] == 0
    # FlatGeobuf stores features in spatial-index order: compare feature by feature, ordered by easting.
    order = np.argsort(ds["x"].values)
    np.testing.assert_allclose(ds["x"].values[order], x, atol=1e-6)
    np.testing.assert_allclose(ds["y"].values[order], y, atol=1e-6)
    np.testing.assert_allclose(ds["velocity"].values[order], VEL, rtol=1e-6)
    np.testing.assert_allclose(ds["coherence"].values[order], [0.9, 0.8, 0.7, 0.6], rtol=1e-6)
    assert ds.attrs["sources"] == [str(path)]


@pytest.mark.parametrize("suffix", [".gpkg", ".shp"])
def test_projected_points_keep_their_crs(tmp_path, suffix):
    frame, x, y = _bng_frame(vel=VEL, vel_std=[0.1, 0.2, 0.3, 0.4], height=[1.0, 2.0, 3.0, 4.0])
    path = tmp_path / f"points{suffix}"
    frame.to_file(path)
    ds = read_input(path)
    assert describe_crs(ds) == "EPSG:27700"
    assert ds.attrs["crs_declared"] == 1
    np.testing.assert_array_equal(ds["x"].values, x)
    np.testing.assert_array_equal(ds["y"].values, y)
    np.testing.assert_allclose(ds["velocity"].values, VEL, rtol=1e-6)
    np.testing.assert_allclose(ds["velocity_std"].values, [0.1, 0.2, 0.3, 0.4], rtol=1e-6)
    np.testing.assert_allclose(ds["height"].values, [1.0, 2.0, 3.0, 4.0], rtol=1e-6)


def test_units_from_name_and_option(tmp_path):
    frame, _, _ = _bng_frame(vel_m_yr=VEL / 1000.0)
    path = tmp_path / "points.gpkg"
    frame.to_file(path)
    np.testing.assert_allclose(read_input(path)["velocity"].values, VEL, rtol=1e-6)
    np.testing.assert_allclose(read_input(path, ReadOptions(units="cm/yr"))["velocity"].values, VEL / 100.0, rtol=1e-6)


def test_shapefile_truncated_name_with_explicit_column(tmp_path):
    # DBF names are cut to 10 characters: EGMS's mean_velocity becomes mean_veloc; --velocity names it.
    path = tmp_path / "egms.shp"
    _lonlat_frame(mean_velocity=VEL).to_file(path)
    with pytest.raises(InputError, match="velocity attribute"):
        read_input(path)
    ds = read_input(path, ReadOptions(columns={"velocity": "mean_veloc"}))
    np.testing.assert_allclose(ds["velocity"].values, VEL, rtol=1e-6)


def test_missing_velocity_values_are_dropped(tmp_path):
    path = tmp_path / "points.gpkg"
    _lonlat_frame(velocity=[1.0, np.nan, 3.0, np.nan]).to_file(path)
    ds = read_input(path)
    np.testing.assert_allclose(ds["velocity"].values, [1.0, 3.0])
    x, _ = Transformer.from_crs(4326, 32631, always_xy=True).transform(LON[[0, 2]], LAT[[0, 2]])
    np.testing.assert_allclose(ds["x"].values, x, atol=1e-6)


@pytest.mark.parametrize("missing", [None, shapely.Point()], ids=["null", "empty"])
def test_features_without_a_position_are_dropped(tmp_path, missing):
    geometry = [shapely.Point(LON[0], LAT[0]), missing, shapely.Point(LON[2], LAT[2]), shapely.Point(LON[3], LAT[3])]
    path = tmp_path / "points.gpkg"
    gpd.GeoDataFrame({"velocity": VEL, "coherence": [0.9, 0.8, 0.7, 0.6]}, geometry=geometry, crs=4326).to_file(path)
    ds = read_input(path)
    keep = [0, 2, 3]
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(LON[keep], LAT[keep])
    np.testing.assert_allclose(ds["x"].values, x, atol=1e-6)
    np.testing.assert_allclose(ds["y"].values, y, atol=1e-6)
    np.testing.assert_allclose(ds["velocity"].values, VEL[keep], rtol=1e-6)
    np.testing.assert_allclose(ds["coherence"].values, [0.9, 0.7, 0.6], rtol=1e-6)


def test_non_point_features_are_refused(tmp_path):
    path = tmp_path / "lines.gpkg"
    line = shapely.LineString([(4.9, 52.3), (4.91, 52.31)])
    gpd.GeoDataFrame({"velocity": [1.0]}, geometry=[line], crs=4326).to_file(path)
    with pytest.raises(InputError, match="point features"):
        read_input(path)


def test_no_velocity_attribute(tmp_path):
    path = tmp_path / "points.gpkg"
    _lonlat_frame(speed=VEL).to_file(path)
    with pytest.raises(InputError, match="velocity attribute"):
        read_input(path)
    ds = read_input(path, ReadOptions(columns={"velocity": "speed"}))
    np.testing.assert_allclose(ds["velocity"].values, VEL, rtol=1e-6)


def test_layer_without_crs_needs_crs_option(tmp_path):
    path = tmp_path / "points.shp"
    frame, x, _ = _bng_frame()
    frame.set_crs(None, allow_override=True).to_file(path)
    with pytest.raises(InputError, match="no CRS"):
        read_input(path)
    ds = read_input(path, ReadOptions(crs="EPSG:27700"))
    assert describe_crs(ds) == "EPSG:27700"
    np.testing.assert_array_equal(ds["x"].values, x)


def test_empty_layer_is_refused(tmp_path):
    path = tmp_path / "points.gpkg"
    gpd.GeoDataFrame({"velocity": np.array([], float)}, geometry=gpd.GeoSeries([], crs=4326)).to_file(path)
    with pytest.raises(InputError, match="no features"):
        read_input(path)


def test_corrupt_vector_is_refused(tmp_path):
    path = tmp_path / "points.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(InputError, match="vector"):
        read_input(path)


# --- GeoPackages of several layers (issue 24) ---------------------------------------------------------------------


def _outline():
    return gpd.GeoDataFrame({"name": ["area"]}, geometry=[shapely.box(4.8, 52.2, 5.0, 52.4)], crs="EPSG:4326")


def test_the_only_layer_of_points_is_read(tmp_path, recwarn):
    # The outline first: GDAL's default layer. Read before, the outline was refused ("expected point features")
    # after pyogrio's UserWarning "More than one layer found" was printed raw.
    path = tmp_path / "two.gpkg"
    _outline().to_file(path, layer="outline")
    _lonlat_frame().to_file(path, layer="points")
    ds = read_input(path)
    np.testing.assert_allclose(np.sort(ds["velocity"].values), np.sort(VEL), rtol=1e-6)
    assert not [w for w in recwarn if "layer" in str(w.message)]  # pyogrio is told which layer: no warning of its own


def test_several_layers_of_points_need_the_layer_option(tmp_path, recwarn):
    path = tmp_path / "two.gpkg"
    _lonlat_frame().to_file(path, layer="ascending")
    _lonlat_frame(velocity=-VEL).to_file(path, layer="descending")
    _outline().to_file(path, layer="outline")
    with pytest.raises(InputError) as error:
        read_input(path)
    assert str(error.value) == (
        f"{path}: the file holds 3 layers (ascending (Point), descending (Point), outline (Polygon)); name the one "
        "to read with --layer NAME"
    )
    ds = read_input(path, ReadOptions(layer="descending"))
    np.testing.assert_allclose(np.sort(ds["velocity"].values), np.sort(-VEL), rtol=1e-6)
    with pytest.raises(InputError, match=r"no layer named 'both' \(layers: ascending, descending, outline\)"):
        read_input(path, ReadOptions(layer="both"))
    assert not [w for w in recwarn if "layer" in str(w.message)]
