"""Chunked runs of the pipeline (``defoscan.pipeline``): the same outputs at any chunk size, resumable, on a cluster."""

import json
import os
import signal
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.warp
import shapely

from conftest import write_villages
from defoscan.errors import InputError
from defoscan.pipeline import detect, work_directory

CHUNK = 64  # cells: the test map is cut into about a dozen chunks


@pytest.fixture(scope="module")
def points_csv(tmp_path_factory):
    """About 20 x 15 km of points near Leeds: a 1 km subsidence bowl, a smaller uplift, spikes, a ramp."""
    rng = np.random.default_rng(7)
    n = 60_000
    lon = -1.75 + rng.random(n) * 0.30
    lat = 53.70 + rng.random(n) * 0.14
    east = (lon + 1.6) * 66.0  # km from the bowl, roughly
    north = (lat - 53.77) * 111.2
    velocity = rng.normal(0.0, 1.5, n) + 0.05 * east
    velocity += -25.0 * np.exp(-(east**2 + north**2) / (2 * 0.8**2))
    velocity += 12.0 * np.exp(-((east - 5.0) ** 2 + (north + 3.0) ** 2) / (2 * 0.4**2))
    spikes = rng.random(n) < 0.01
    velocity[spikes] += rng.choice([-1.0, 1.0], spikes.sum()) * rng.uniform(15, 60, spikes.sum())
    path = tmp_path_factory.mktemp("runner") / "points.csv"
    pd.DataFrame({"longitude": lon.round(6), "latitude": lat.round(6), "velocity": velocity.round(2)}).to_csv(
        path, index=False
    )
    return str(path)


@pytest.fixture(scope="module")
def chunked(points_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("chunked") / "out"
    return detect([points_csv], str(out), cell_size=50.0, chunk=CHUNK), str(out)


def _bands(path):
    with rasterio.open(path) as src:
        return src.read(), src.descriptions, src.transform, src.crs


@pytest.mark.parametrize("stage", ["grid", "scan"])  # a killed fill: tests/test_fill_store.py
def test_killed_run_resumes_to_the_same_outputs(points_csv, chunked, tmp_path, stage):
    """A real SIGKILL in the middle of a stage; the same command again reuses the work done and ends the same."""
    out = str(tmp_path / "out")
    command = [sys.executable, "-m", "defoscan", "detect", points_csv, "--out", out, "--cell-size", "50"]
    command += ["--chunk", str(CHUNK)]
    work = work_directory(out)
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    flags = os.path.join(work, "store", "0.zarr", "done", stage)
    deadline = time.monotonic() + 300
    while not os.path.exists(flags) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the stage
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert os.path.isdir(work) and not os.path.exists(os.path.join(out, "detections.geojson"))
    stale = tmp_path / ".out.partial-killedwhilewriting"  # what a kill during the writing leaves
    stale.mkdir()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert not stale.exists()
    _, reference = chunked
    for name in ("velocity.tif", "velocity_filled.tif", "probability.tif"):
        np.testing.assert_array_equal(_bands(os.path.join(out, name))[0], _bands(os.path.join(reference, name))[0])
    with open(os.path.join(out, "detections.geojson")) as a, open(os.path.join(reference, "detections.geojson")) as b:
        assert json.load(a) == json.load(b)
    assert not os.path.exists(work)


def test_local_cluster_of_two_processes_gives_the_same_outputs(points_csv, chunked, tmp_path):
    out = str(tmp_path / "out")
    record = detect([points_csv], out, cell_size=50.0, chunk=CHUNK, workers=2)
    assert record["parameters"]["workers"] == 2
    _, reference = chunked
    for name in ("velocity.tif", "velocity_filled.tif"):
        np.testing.assert_array_equal(_bands(os.path.join(out, name))[0], _bands(os.path.join(reference, name))[0])
    # Workers run torch on one thread, this process on two: the network's sums differ in the last bits.
    probability = _bands(os.path.join(out, "probability.tif"))[0]
    np.testing.assert_allclose(probability, _bands(os.path.join(reference, "probability.tif"))[0], atol=1e-6)
    with open(os.path.join(out, "detections.geojson")) as a, open(os.path.join(reference, "detections.geojson")) as b:
        assert json.load(a) == json.load(b)


def test_changed_parameters_start_afresh(points_csv, tmp_path):
    out = str(tmp_path / "out")
    work = work_directory(out)
    os.makedirs(work)
    with open(os.path.join(work, "fingerprint.json"), "w") as handle:
        json.dump({"inputs": "another run"}, handle)
    os.makedirs(os.path.join(work, "store"))
    messages = []
    with pytest.raises(InputError, match="at least 64"):
        detect([points_csv], out, chunk=8)
    detect([points_csv], out, cell_size=100.0, chunk=CHUNK, log=messages.append)
    assert "the inputs or parameters changed since the interrupted run: starting afresh" in messages


def test_an_input_rewritten_in_place_is_not_resumed_and_fresh_starts_afresh(tmp_path, monkeypatch):
    """The same size and modification time (restored from an archive): its content sample tells (issue 24, 10)."""
    import errno

    import defoscan.pipeline
    from defoscan.synth.scene import make_scene, write_scene

    points, truths, info = make_scene(5, shape=(128, 128), cell_size=50.0)
    csv, _, _ = write_scene(str(tmp_path / "scene"), "scene", points, truths, info)
    grid_chunk = defoscan.pipeline.grid_chunk

    def stopped_at_the_last_chunk(store, i, j, chunk, **options):
        if (i, j) == (1, 1):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return grid_chunk(store, i, j, chunk, **options)

    def stopped_run():
        monkeypatch.setattr("defoscan.pipeline.grid_chunk", stopped_at_the_last_chunk)
        with pytest.raises(OSError):
            detect([csv], out, detector="threshold", chunk=CHUNK)
        monkeypatch.setattr("defoscan.pipeline.grid_chunk", grid_chunk)
        assert os.path.isdir(work_directory(out))

    out = str(tmp_path / "out")
    stopped_run()
    stat = os.stat(csv)
    text = open(csv).read()
    header, first, rest = text.split("\n", 2)
    digit = first.rstrip()[-1]
    with open(csv, "w") as handle:  # one velocity's last digit changed: same size, and the same time set back
        handle.write(f"{header}\n{first.rstrip()[:-1]}{'2' if digit != '2' else '3'}\n{rest}")
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(csv).st_size == stat.st_size
    messages = []
    detect([csv], out, detector="threshold", chunk=CHUNK, log=messages.append)
    assert "the inputs or parameters changed since the interrupted run: starting afresh" in messages
    stopped_run()
    messages = []
    detect([csv], out, detector="threshold", chunk=CHUNK, log=messages.append, fresh=True)
    assert f"starting afresh: the work kept in {work_directory(out)} is discarded" in messages
    assert not any(m.startswith("resuming") for m in messages)


def test_bad_input_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("longitude,latitude,velocity\n")
    out = str(tmp_path / "out")
    with pytest.raises(InputError, match="no row"):
        detect([str(bad)], out, chunk=CHUNK)
    assert not os.path.exists(out) and not os.path.exists(work_directory(out))


def test_two_egms_tracks_chunked_as_in_memory(tmp_path, ustica_l2b_022_zip, ustica_l2b_117_zip):
    """The EGMS zips over Ustica: two tracks kept apart, each despiked, gridded, filled, scanned the same."""
    inputs = [str(ustica_l2b_022_zip), str(ustica_l2b_117_zip)]
    a = detect(inputs, str(tmp_path / "a"))
    b = detect(inputs, str(tmp_path / "b"), chunk=64)
    assert b["grid"] == a["grid"] and b["grid"]["width"] > 64  # two chunks across
    assert [t["track"] for t in b["tracks"]] == [t["track"] for t in a["tracks"]] == ["T022", "T117"]
    assert [t["despike"]["removed"] for t in b["tracks"]] == [t["despike"]["removed"] for t in a["tracks"]]
    for name in ("velocity.tif", "velocity_filled.tif", "probability.tif"):
        values_a, names_a, _, _ = _bands(str(tmp_path / "a" / name))
        values_b, names_b, _, _ = _bands(str(tmp_path / "b" / name))
        assert names_b == names_a
        np.testing.assert_allclose(values_b, values_a, atol=1e-6 if name == "probability.tif" else 0)
    assert len(b["detections"]) == len(a["detections"])


def test_mask_chunked_as_in_memory(points_csv, tmp_path):
    # Keep a polygon around the bowl only, across several chunks: the same cells removed, the same detections.
    keep = gpd.GeoDataFrame(geometry=[shapely.box(-1.70, 53.74, -1.50, 53.80)], crs="EPSG:4326")
    keep.to_file(tmp_path / "keep.gpkg")
    mask = str(tmp_path / "keep.gpkg")
    a = detect([points_csv], str(tmp_path / "a"), cell_size=50.0, mask=mask)
    b = detect([points_csv], str(tmp_path / "b"), cell_size=50.0, chunk=CHUNK, mask=mask)
    assert a["parameters"]["mask"] == b["parameters"]["mask"]
    assert a["parameters"]["mask"]["cells_removed"][0] > 0
    velocity_a, velocity_b = (_bands(str(tmp_path / o / "velocity.tif"))[0] for o in ("a", "b"))
    np.testing.assert_array_equal(velocity_b, velocity_a)
    with rasterio.open(tmp_path / "b" / "velocity.tif") as src:
        west, south, east, north = rasterio.warp.transform_bounds("EPSG:4326", src.crs, -1.70, 53.74, -1.50, 53.80)
        rows, cols = np.nonzero(np.isfinite(velocity_b[0]))
        x, y = src.xy(rows, cols)
    assert np.min(x) > west - 200 and np.max(x) < east + 200 and np.min(y) > south - 200 and np.max(y) < north + 200
    assert len(a["detections"]) == len(b["detections"]) >= 1


def test_chunked_default_cell_size_is_the_models(points_csv, tmp_path):
    # 60,000 points over about 20 x 15 km: their own default is 100 m, within reach of the model's 50 m cells.
    record = detect([points_csv], str(tmp_path / "out"), chunk=CHUNK)
    assert record["grid"]["cell_size_m"] == 50.0 and record["parameters"]["cell_size_requested"] is None
    assert record["warnings"] == []


def test_scattered_villages_get_the_same_cell_size_and_warning_chunked(tmp_path):
    # Five villages of 1 km, 8 km apart: at 50 m no scan window would hold 10 % of cells with data.
    path = write_villages(tmp_path)
    a = detect([str(path)], str(tmp_path / "a"))
    b = detect([str(path)], str(tmp_path / "b"), chunk=CHUNK)
    assert a["grid"] == b["grid"] and a["grid"]["cell_size_m"] > 50.0
    assert a["warnings"] == b["warnings"] and len(a["warnings"]) == 2
    assert "would be scanned at 50 m" in a["warnings"][0]
    # ... and at their own 100 m neither (issue 24): said, and recorded alike.
    assert "the detector scanned none of the map's" in a["warnings"][1]
    assert a["scan_incomplete"] == b["scan_incomplete"] == ["all"]
    assert a["tracks"][0]["scanned"] == b["tracks"][0]["scanned"]


def test_read_filters_are_recorded_alike_in_memory_and_chunked(points_csv, tmp_path):
    from defoscan.io import ReadOptions

    frame = pd.read_csv(points_csv)
    frame.loc[[3, 30, 300], "velocity"] = 1e30  # physically impossible: dropped as invalid, counted, warned
    path = tmp_path / "points.csv"
    frame.to_csv(path, index=False)
    bbox = (-1.75, -1.50, 53.70, 53.80)
    inside = frame["longitude"].between(*bbox[:2]) & frame["latitude"].between(*bbox[2:])
    options = ReadOptions(bbox=bbox)
    a = detect([str(path)], str(tmp_path / "a"), cell_size=50.0, options=options, detector="threshold")
    b = detect([str(path)], str(tmp_path / "b"), cell_size=50.0, chunk=CHUNK, options=options)
    for record in (a, b):
        (track,) = record["tracks"]
        assert track["dropped"]["invalid_velocities"] == 3
        assert track["dropped"]["outside_bbox"] == int((~inside).sum()) - int((~inside)[[3, 30, 300]].sum())
        assert record["points"] == int(inside.sum()) - int(inside[[3, 30, 300]].sum())
        assert record["parameters"]["bbox"] == list(bbox) and record["parameters"]["bbox_crs"] == "EPSG:4326"
        (warning,) = record["warnings"]
        assert "3 velocities beyond" in warning
    on_disk = json.loads((tmp_path / "b" / "run.json").read_text())
    assert on_disk["tracks"][0]["dropped"] == b["tracks"][0]["dropped"] and on_disk["warnings"] == b["warnings"]
