"""Output writers: RFC 7946 GeoJSON, GeoPackage, COG, and atomic, all-or-nothing writing."""

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.enums import ColorInterp
from shapely.geometry import Polygon, box

from defoscan.errors import InputError
from defoscan.outputs import (
    atomic_path,
    cut_at_antimeridian,
    staged_directory,
    write_cog,
    write_geojson,
    write_geopackage,
)
from defoscan.regions import detections_frame
from defoscan.regions_store import label_polygons
from defoscan.report import load_run
from defoscan.styles import detections_qml


def frame_of(polygons, crs="EPSG:32631"):
    records = [
        {
            "geometry": p,
            "score": 0.5 + i / 10,
            "n_points": 10,
            "mean_velocity": -5.0,
            "peak_velocity": -9.0,
            "sign": "subsidence",
            "kind": "deformation",
            "track": "all",
            "detector": "threshold",
        }
        for i, p in enumerate(polygons)
    ]
    return detections_frame(records, crs)


def test_geojson_is_rfc7946_lonlat_anticlockwise(tmp_path):
    clockwise = Polygon([(630000, 5800000), (630000, 5800200), (630200, 5800200), (630200, 5800000)])
    assert not clockwise.exterior.is_ccw
    write_geojson(tmp_path / "d.geojson", frame_of([clockwise]))
    document = json.loads((tmp_path / "d.geojson").read_text())
    assert "crs" not in document
    (feature,) = document["features"]
    ring = feature["geometry"]["coordinates"][0]
    assert shapely.LinearRing(ring).is_ccw
    lons, lats = zip(*ring, strict=True)
    assert 4.8 < min(lons) < max(lons) < 5.0 and 52.3 < min(lats) < max(lats) < 52.4  # UTM 31N near Amsterdam
    assert feature["properties"]["id"] == 1 and feature["properties"]["area_km2"] == pytest.approx(0.04)


def test_a_polygon_across_the_antimeridian_is_cut_there():
    # A ring as a naive reprojection gives it: from 179.9 east to -179.9 and back.
    across = Polygon([(179.9, -17.1), (-179.9, -17.1), (-179.9, -16.9), (179.9, -16.9)])
    cut = cut_at_antimeridian(across)
    assert cut.geom_type == "MultiPolygon" and cut.is_valid
    west, east = sorted(cut.geoms, key=lambda part: part.bounds[0], reverse=True)
    assert west.bounds == pytest.approx((179.9, -17.1, 180.0, -16.9))
    assert east.bounds == pytest.approx((-180.0, -17.1, -179.9, -16.9))
    assert cut.area == pytest.approx(0.2 * 0.2)  # the small box it is, not the band round the globe it was drawn as
    inside = Polygon([(179.0, -17.1), (179.9, -17.1), (179.9, -16.9)])
    assert cut_at_antimeridian(inside) is inside
    assert cut_at_antimeridian(None) is None


def test_geojson_across_the_antimeridian(tmp_path):
    # A 10 km square of UTM zone 60S centred on 180 degrees, over Fiji (GEOS failed on it: side location conflict).
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32760", always_xy=True).transform(180.0, -17.0)
    square, beside = box(x - 5000, y - 5000, x + 5000, y + 5000), box(x - 20000, y, x - 15000, y + 5000)
    write_geojson(tmp_path / "d.geojson", frame_of([beside, square], crs="EPSG:32760"))  # square: higher score
    across, west = json.loads((tmp_path / "d.geojson").read_text())["features"]
    assert across["geometry"]["type"] == "MultiPolygon" and west["geometry"]["type"] == "Polygon"
    parts = [shapely.Polygon(rings[0]) for rings in across["geometry"]["coordinates"]]
    assert all(shapely.LinearRing(part.exterior.coords).is_ccw for part in parts)
    assert sorted(round(part.bounds[0]) for part in parts) == [-180, 180]  # one part each side
    assert all(-180 <= lon <= 180 for part in parts for lon, _ in part.exterior.coords)
    assert all(part.bounds[2] - part.bounds[0] < 0.1 for part in parts)


def test_detections_numbered_by_score(tmp_path):
    frame = frame_of([box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)])
    assert list(frame["id"]) == [1, 2, 3]
    assert list(frame["score"]) == sorted(frame["score"], reverse=True)


def test_empty_results_are_valid_files(tmp_path):
    empty = frame_of([])
    write_geojson(tmp_path / "d.geojson", empty)
    write_geopackage(tmp_path / "d.gpkg", empty)
    assert json.loads((tmp_path / "d.geojson").read_text()) == {"type": "FeatureCollection", "features": []}
    read_back = gpd.read_file(tmp_path / "d.gpkg")
    assert len(read_back) == 0 and read_back.crs.to_epsg() == 32631


def test_geopackage_keeps_working_crs_and_attributes(tmp_path):
    write_geopackage(tmp_path / "d.gpkg", frame_of([box(630000, 5800000, 630100, 5800100)]))
    back = gpd.read_file(tmp_path / "d.gpkg")
    assert back.crs.to_epsg() == 32631
    assert back.loc[0, "sign"] == "subsidence" and back.loc[0, "area_km2"] == pytest.approx(0.01)


def test_cog_is_tiled_with_overviews_and_band_names(tmp_path):
    values = np.arange(1024 * 1024, dtype=np.float32).reshape(1024, 1024)
    values[0, 0] = np.nan
    transform = Affine(20, 0, 600000, 0, -20, 5800000)
    write_cog(tmp_path / "v.tif", [("velocity", values), ("count", values * 0 + 1)], transform, "EPSG:32631")
    with rasterio.open(tmp_path / "v.tif") as src:
        assert src.profile["tiled"] and src.overviews(1)
        assert src.descriptions == ("velocity", "count")
        assert src.transform == transform and src.crs.to_epsg() == 32631
        back = src.read(1)
    assert np.isnan(back[0, 0]) and np.array_equal(back[1:], values[1:])


def test_cog_bands_carry_units_and_are_never_taken_for_rgb(tmp_path):
    values = np.zeros((64, 80), dtype=np.float32)
    bands = [(f"velocity T{i}", values + i) for i in range(3)]
    write_cog(tmp_path / "v.tif", bands, Affine(20, 0, 0, 0, -20, 0), "EPSG:32631", units="mm/yr")
    with rasterio.open(tmp_path / "v.tif") as src:
        assert src.units == ("mm/yr",) * 3 and src.descriptions == ("velocity T0", "velocity T1", "velocity T2")
        # Three float bands: grey, then undefined (not red, green, blue), so no viewer composes a colour image.
        assert src.colorinterp == (ColorInterp.gray, ColorInterp.undefined, ColorInterp.undefined)
        assert src.read(3).max() == 2.0
    write_cog(tmp_path / "u.tif", bands[:2], Affine(20, 0, 0, 0, -20, 0), "EPSG:32631", units=["mm/yr", "mm"])
    with rasterio.open(tmp_path / "u.tif") as src:
        assert src.units == ("mm/yr", "mm")
    write_cog(tmp_path / "n.tif", bands[:1], Affine(20, 0, 0, 0, -20, 0), "EPSG:32631")
    with rasterio.open(tmp_path / "n.tif") as src:
        assert src.units == (None,)  # no unit unless one is given


def test_count_cog_has_no_data_where_no_point(tmp_path):
    counts = np.zeros((600, 700), dtype=np.int32)
    counts[100:300, 200:500] = 7
    counts[0, 0] = 2**24  # float32 holds counts exactly to 2**24
    transform = Affine(50, 0, 0, 0, -50, 0)
    write_cog(tmp_path / "c.tif", [("count A", counts)], transform, "EPSG:32631", units="points", nodata=0)
    with rasterio.open(tmp_path / "c.tif") as src:
        assert src.nodata == 0 and src.units == ("points",) and src.overviews(1) == [2]
        back = src.read(1)
        masked = src.read(1, masked=True)
    assert np.array_equal(back, counts) and back.sum() == 7 * 200 * 300 + 2**24
    assert masked.count() == 200 * 300 + 1  # cells without points are no data, drawn transparent


def gpkg_header(path):
    with sqlite3.connect(path) as connection:
        return tuple(connection.execute(f"PRAGMA {name}").fetchone()[0] for name in ("application_id", "user_version"))


def test_geopackage_is_version_1_2_that_gdal_3_6_reads_without_warning(tmp_path):
    write_geopackage(tmp_path / "d.gpkg", frame_of([box(630000, 5800000, 630100, 5800100)]))
    # 'GPKG' and 1.2.0: GDAL 3.7 and later write 1.4 (10400), which GDAL 3.6 "may only partially support".
    assert gpkg_header(tmp_path / "d.gpkg") == (0x47504B47, 10200)
    assert pyogrio.list_layers(tmp_path / "d.gpkg").tolist() == [["detections", "MultiPolygon"]]


@pytest.mark.parametrize("count", [0, 2])
def test_geopackage_carries_its_qgis_style(tmp_path, count):
    frame = frame_of([box(630000 + 500 * i, 5800000, 630100 + 500 * i, 5800100) for i in range(count)])
    qml = detections_qml()
    write_geopackage(tmp_path / "d.gpkg", frame, style=qml)
    path = tmp_path / "d.gpkg"
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        (style,) = [dict(row) for row in connection.execute("SELECT * FROM layer_styles")]
        contents = {row["table_name"]: row["data_type"] for row in connection.execute("SELECT * FROM gpkg_contents")}
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert style["f_table_name"] == "detections" and style["f_geometry_column"] == "geom"
    assert style["styleQML"] == qml and style["useAsDefault"] == 1 and style["styleName"] == "detections"
    assert style["update_time"] == "2000-01-01T00:00:00.000Z"
    assert contents == {"detections": "features", "layer_styles": "attributes"}  # as QGIS registers it
    assert gpkg_header(path) == (0x47504B47, 10200)  # the style does not change the version
    assert pyogrio.list_layers(path).tolist() == [["detections", "MultiPolygon"], ["layer_styles", None]]
    back = gpd.read_file(path, layer="detections")
    assert len(back) == count and back.crs.to_epsg() == 32631
    styles = gpd.read_file(path, layer="layer_styles")  # OGR reads the table as QGIS does
    assert styles.loc[0, "styleQML"] == qml and bool(styles.loc[0, "useAsDefault"])
    again = tmp_path / "again.gpkg"
    write_geopackage(again, frame, style=qml)
    assert again.read_bytes() == path.read_bytes()  # fixed stamps: the bytes depend on the content only


def test_label_polygons_follow_cell_edges():
    labels = np.zeros((4, 5), dtype=np.int32)
    labels[1:3, 1:3] = 1
    labels[0, 4] = 2
    polygons = label_polygons(labels, Affine(10, 0, 1000, 0, -10, 2000))
    assert polygons[1].equals(box(1010, 1970, 1030, 1990))
    assert polygons[2].equals(box(1040, 1990, 1050, 2000))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        with open(temporary, "w") as handle:
            handle.write("half")
        raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_staged_directory_is_all_or_nothing(tmp_path):
    out = tmp_path / "deep" / "out"
    with pytest.raises(RuntimeError), staged_directory(out) as staging:
        (open(os.path.join(staging, "a.txt"), "w")).close()
        raise RuntimeError("stage failed")
    assert os.listdir(tmp_path) == []  # not even the parent it created
    with staged_directory(out) as staging:
        with open(os.path.join(staging, "a.txt"), "w") as handle:
            handle.write("done")
    assert os.listdir(out) == ["a.txt"] and os.listdir(out.parent) == ["out"]


def test_output_path_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("")
    with pytest.raises(InputError, match="not a directory"), staged_directory(blocker):
        pass


# --- the switch: the staged set takes the old one's place in one rename (issue 24, item 6) -------------------------


def a_set(directory, tag, names=("detections.geojson", "run.json", "velocity.tif")):
    """A directory of output files whose contents say which set they belong to."""
    os.makedirs(directory, exist_ok=True)
    for name in names:
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(f"{tag} {name}")
    return directory


def contents(directory):
    return {name: open(os.path.join(directory, name)).read() for name in sorted(os.listdir(directory))}


def staged(out, source):
    """Stage a copy of the set in ``source`` and put it in place of ``out``'s."""
    with staged_directory(out) as staging:
        for name in os.listdir(source):
            with open(os.path.join(source, name)) as a, open(os.path.join(staging, name), "w") as b:
                b.write(a.read())


def test_the_staged_set_takes_the_old_ones_place_in_one_rename(tmp_path, monkeypatch):
    out = a_set(tmp_path / "out", "old")
    os.chmod(out, 0o750)
    new = a_set(tmp_path / "new", "new", names=("detections.geojson", "run.json", "velocity.tif", "report.html"))
    before = os.stat(out).st_ino
    moved = []
    monkeypatch.setattr("defoscan.outputs.os.replace", lambda *a: moved.append(a))  # never called: no file moved
    staged(out, new)
    assert contents(out) == contents(new) and moved == []
    assert os.stat(out).st_ino != before  # another directory now bears the name
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o750  # with the old one's permissions
    assert sorted(os.listdir(tmp_path)) == ["new", "out"]  # the old set removed, no lock file left
    staged(tmp_path / "fresh", new)
    current = os.umask(0)
    os.umask(current)
    assert stat.S_IMODE(os.stat(tmp_path / "fresh").st_mode) == 0o777 & ~current  # not mkdtemp's 0700


@pytest.mark.parametrize("case", ["other files", "working directory", "symbolic link"])
def test_files_are_moved_in_one_by_one_the_run_record_last_where_a_rename_would_lose_something(
    tmp_path, monkeypatch, case
):
    old = a_set(tmp_path / "old", "old")
    out = tmp_path / "out"
    if case == "symbolic link":
        os.symlink(old, out)
    else:
        os.rename(old, out)
    if case == "other files":
        (out / "notes.txt").write_text("the user's")
    if case == "working directory":
        monkeypatch.chdir(out)
    new = a_set(tmp_path / "new", "new")
    replace = os.replace
    moved = []

    def replacing(source, target):
        moved.append((os.path.basename(target), os.path.exists(out / "run.json")))
        replace(source, target)

    monkeypatch.setattr("defoscan.outputs.os.replace", replacing)
    staged(out, new)
    # The old record removed before the first file moves in, the new one moved in last.
    assert moved == [("detections.geojson", False), ("velocity.tif", False), ("run.json", False)]
    assert {k: v for k, v in contents(out).items() if k != "notes.txt"} == contents(new)
    assert (case == "other files") == ("notes.txt" in os.listdir(out))
    assert os.path.islink(out) == (case == "symbolic link")


# A process putting the set in argv[2] in place of argv[1]'s, killed (SIGKILL) at argv[3] of the final move.
KILLED_IN_THE_MOVE = """
import os, signal, sys
import defoscan.outputs as outputs

out, new, when = sys.argv[1:]
exchange, replace = outputs._exchange, os.replace
moved = []

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def exchanging(a, b):
    if when == "before the exchange":
        kill()
    done = exchange(a, b)
    kill()

def replacing(a, b):
    replace(a, b)
    moved.append(b)
    if len(moved) == 2:
        kill()

outputs._exchange = exchanging
outputs.os.replace = replacing
with outputs.staged_directory(out) as staging:
    for name in os.listdir(new):
        with open(os.path.join(new, name)) as a, open(os.path.join(staging, name), "w") as b:
            b.write(a.read())
"""


@pytest.mark.parametrize("when", ["before the exchange", "after the exchange", "in the moves of the files"])
def test_a_kill_in_the_final_move_leaves_the_old_set_or_the_new_never_a_mix(tmp_path, when):
    out = a_set(tmp_path / "out", "old")
    if when == "in the moves of the files":
        (out / "notes.txt").write_text("the user's: the files are moved in one by one")
    old = contents(out)
    new = a_set(tmp_path / "new", "new")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_THE_MOVE, str(out), str(new), when], env=environment)
    assert killed.returncode == -signal.SIGKILL
    if when == "before the exchange":
        assert contents(out) == old
    elif when == "after the exchange":
        assert contents(out) == contents(new)
    else:  # two of the three files moved in: the run record is not among them, and the old one was removed first
        assert "run.json" not in os.listdir(out)
        with pytest.raises(InputError, match="an unfinished run"):
            load_run(str(out))
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out.partial-")]  # what the killed run left
    staged(out, new)  # the next run removes it
    assert {k: v for k, v in contents(out).items() if k != "notes.txt"} == contents(new)
    assert sorted(os.listdir(tmp_path)) == ["new", "out"]
