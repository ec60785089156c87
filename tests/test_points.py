"""The points representation: construction, CRS handling, reprojection and joining bursts of one track."""

import numpy as np
import pytest
from pyproj import CRS, Transformer

from defoscan.points import concat_points, describe_crs, make_points, points_crs, points_lonlat, reproject_points


def _points(x, y, v, crs="EPSG:32631", track="T001", source="a.csv", **optional):
    return make_points(x, y, v, crs=crs, track=track, sources=[source], **optional)


def test_make_points_layout():
    ds = make_points(
        [1.0, 2.0],
        [3.0, 4.0],
        [0.5, -1.5],
        crs=CRS.from_epsg(32631),
        track="T022",
        sources=["f.csv"],
        crs_declared=True,
        velocity_std=[0.1, 0.2],
        coherence=[0.9, 0.8],
        height=None,
    )
    assert ds.sizes == {"point": 2}
    assert ds["velocity"].dtype == np.float32 and ds["velocity"].attrs["units"] == "mm/yr"
    assert ds["x"].dtype == np.float64 and ds["y"].dtype == np.float64
    assert set(ds.data_vars) == {"velocity", "velocity_std", "coherence"}
    assert ds.attrs["track"] == "T022" and ds.attrs["sources"] == ["f.csv"] and ds.attrs["crs_declared"] == 1
    assert points_crs(ds).to_epsg() == 32631 and describe_crs(ds) == "EPSG:32631"


def test_make_points_defaults():
    ds = make_points([0.0], [0.0], [1.0], crs="EPSG:3035")
    assert ds.attrs["track"] == "" and ds.attrs["sources"] == [] and ds.attrs["crs_declared"] == 0


def test_make_points_with_time_series():
    time = np.array(["2020-01-03", "2020-01-09"], dtype="datetime64[D]")
    ds = _points([0.0, 1.0], [0.0, 1.0], [1.0, 2.0], displacement=[[0.0, 1.0], [0.0, -2.0]], time=time)
    assert ds["displacement"].dims == ("point", "time")
    np.testing.assert_array_equal(ds["time"].values, time.astype("datetime64[ns]"))


def test_points_lonlat_and_reproject_roundtrip():
    lon, lat = np.array([4.90, 4.95]), np.array([52.37, 52.30])
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(lon, lat)
    ds = _points(x, y, [1.0, 2.0])
    got_lon, got_lat = points_lonlat(ds)
    np.testing.assert_allclose(got_lon, lon, atol=1e-9)
    np.testing.assert_allclose(got_lat, lat, atol=1e-9)

    moved = reproject_points(ds, "EPSG:3035")
    assert describe_crs(moved) == "EPSG:3035"
    ex, ey = Transformer.from_crs(4326, 3035, always_xy=True).transform(lon, lat)
    np.testing.assert_allclose(moved["x"].values, ex, atol=1e-3)
    np.testing.assert_allclose(moved["y"].values, ey, atol=1e-3)
    np.testing.assert_array_equal(moved["velocity"].values, ds["velocity"].values)
    back = reproject_points(moved, CRS.from_epsg(32631))
    np.testing.assert_allclose(back["x"].values, x, atol=1e-6)
    np.testing.assert_allclose(back["y"].values, y, atol=1e-6)
    assert describe_crs(ds) == "EPSG:32631"  # the input is left as it was


def test_reproject_to_same_crs_is_a_no_op():
    ds = _points([1.0], [2.0], [3.0])
    assert reproject_points(ds, "EPSG:32631") is ds


def test_concat_points_joins_bursts():
    a = _points([0.0, 1.0], [0.0, 1.0], [1.0, 2.0], source="a.csv", coherence=[0.5, 0.6], height=[1.0, 2.0])
    b = _points([2.0], [2.0], [3.0], source="b.csv", coherence=[0.7])
    joined = concat_points([a, b])
    assert joined.sizes["point"] == 3
    np.testing.assert_array_equal(joined["velocity"].values, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(joined["x"].values, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(joined["coherence"].values, [0.5, 0.6, 0.7], rtol=1e-6)
    assert "height" not in joined  # only what every part has
    assert joined.attrs["sources"] == ["a.csv", "b.csv"]
    assert joined.attrs["track"] == "T001"
    assert describe_crs(joined) == "EPSG:32631"


def test_concat_points_time_series_kept_only_on_shared_dates():
    t1 = np.array(["2020-01-03", "2020-01-09"], dtype="datetime64[D]")
    t2 = np.array(["2020-01-03", "2020-01-15"], dtype="datetime64[D]")
    a = _points([0.0], [0.0], [1.0], displacement=[[0.0, 1.0]], time=t1)
    b = _points([1.0], [1.0], [2.0], displacement=[[0.0, 2.0]], time=t1)
    c = _points([2.0], [2.0], [3.0], displacement=[[0.0, 3.0]], time=t2)
    same = concat_points([a, b])
    np.testing.assert_array_equal(same["displacement"].values, [[0.0, 1.0], [0.0, 2.0]])
    different = concat_points([a, c])
    assert "displacement" not in different and "time" not in different.coords
    np.testing.assert_array_equal(different["velocity"].values, [1.0, 3.0])


def test_concat_points_refuses_mixing_tracks_or_crs():
    a = _points([0.0], [0.0], [1.0], track="T022")
    with pytest.raises(ValueError, match="one track"):
        concat_points([a, _points([0.0], [0.0], [1.0], track="T117")])
    with pytest.raises(ValueError, match="one CRS"):
        concat_points([a, _points([0.0], [0.0], [1.0], track="T022", crs="EPSG:3035")])


def test_concat_single_part_is_itself():
    a = _points([0.0], [0.0], [1.0])
    assert concat_points([a]) is a
