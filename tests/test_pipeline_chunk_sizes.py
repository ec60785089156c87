"""The same result at any chunk size: every detector, on points and on a raster that must be reprojected, as one chunk
in memory and in chunks of 64 cells (the CNN also of 256), and the CNN and a baseline on a two-process dask cluster
(issue 17)."""

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from defoscan.detectors import DETECTORS
from defoscan.pipeline import detect
from defoscan.synth.scene import make_scene, write_scene

RASTERS = ("velocity.tif", "count.tif", "velocity_filled.tif", "probability.tif")
# The scene at 50 m (the model's cells, its default for the CNN; 300 x 300 cells); the raster at its own.
OPTIONS = {"points": {"cell_size": 50.0}, "raster": {}}


@pytest.fixture(scope="module")
def scene_csv(tmp_path_factory):
    """15 x 15 km of points with signals, spikes and gaps (a seeded synthetic scene)."""
    points, truths, info = make_scene(16, shape=(300, 300), cell_size=50.0)
    csv, _, _ = write_scene(str(tmp_path_factory.mktemp("scene")), "scene", points, truths, info)
    return csv


@pytest.fixture(scope="module")
def lonlat_raster(tmp_path_factory):
    """A 0.0005 degree (about 50 m) longitude/latitude raster over Leeds, gridded into British National Grid cells:
    each chunk is warped on its own, so the reprojection must not depend on where a chunk starts."""
    rng = np.random.default_rng(5)
    height, width = 260, 420
    lon = -1.60 + 0.0005 * (np.arange(width) + 0.5)
    lat = 53.85 - 0.0005 * (np.arange(height) + 0.5)
    east, north = np.meshgrid((lon + 1.5) * 66.0, (lat - 53.79) * 111.2)  # km from a bowl
    values = rng.normal(0.0, 1.0, (height, width)) - 30.0 * np.exp(-(east**2 + north**2) / (2 * 0.7**2))
    values[rng.random((height, width)) < 0.4] = -9999  # gaps
    path = tmp_path_factory.mktemp("raster") / "velocity.tif"
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32"}
    profile.update(crs="EPSG:4326", transform=from_origin(-1.60, 53.85, 0.0005, 0.0005), nodata=-9999)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(np.float32), 1)
        dst.update_tags(units="mm/yr")
    return str(path)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
        yield running.scheduler_address


@pytest.fixture(scope="module")
def whole_runs(scene_csv, lonlat_raster, tmp_path_factory):
    """Every detector on each input as one chunk in memory: the reference."""
    runs = {}
    for kind, path in (("points", scene_csv), ("raster", lonlat_raster)):
        for name in DETECTORS:
            out = tmp_path_factory.mktemp(f"{kind}-{name}") / "out"
            runs[kind, name] = (detect([path], str(out), detector=name, **OPTIONS[kind]), str(out))
    return runs


def _read(path):
    with rasterio.open(path) as src:
        return src.read(), src.transform, src.descriptions


def assert_same_outputs(reference, out, *, detector):
    """Rasters cell for cell, detections row for row (the CNN's probabilities to the last bits of torch's sums,
    which depend on its thread count; region means summed in another order to 1e-9)."""
    for name in RASTERS:
        (a, transform_a, bands_a), (b, transform_b, bands_b) = (
            _read(os.path.join(reference, name)),
            _read(os.path.join(out, name)),
        )
        assert (transform_b, bands_b) == (transform_a, bands_a), name
        if name == "probability.tif" and detector == "cnn":
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_allclose(b, a, atol=1e-6, equal_nan=True)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
    frame_a = gpd.read_file(os.path.join(reference, "detections.gpkg"), layer="detections")
    frame_b = gpd.read_file(os.path.join(out, "detections.gpkg"), layer="detections")
    assert len(frame_a) == len(frame_b)
    pd.testing.assert_frame_equal(
        pd.DataFrame(frame_b.drop(columns="geometry")), pd.DataFrame(frame_a.drop(columns="geometry")), rtol=1e-9
    )
    assert all(g1.equals(g2) for g1, g2 in zip(frame_a.geometry, frame_b.geometry, strict=True))


@pytest.mark.parametrize("kind", ["points", "raster"])
@pytest.mark.parametrize("detector", list(DETECTORS))
def test_same_result_at_any_chunk_size(whole_runs, scene_csv, lonlat_raster, tmp_path, kind, detector):
    record, reference = whole_runs[kind, detector]
    assert record["parameters"]["chunk"] is None  # one chunk, in memory
    grid = record["grid"]
    assert max(grid["width"], grid["height"]) > 256  # 64 and 256 cells cut it into chunks
    assert len(record["detections"]) > 0 or detector == "ada"  # the comparison is not of two empty maps
    # The baselines run on the whole map whatever the chunk (only despiking and gridding are chunked): one chunk size
    # is enough for them; the CNN, chunk-exact stage by stage, is run at a chunk smaller and one larger than a block.
    for chunk in (64, 256) if DETECTORS[detector].chunk_exact else (64,):
        out = str(tmp_path / f"chunk{chunk}")
        path = scene_csv if kind == "points" else lonlat_raster
        chunked = detect([path], out, detector=detector, chunk=chunk, **OPTIONS[kind])
        assert chunked["parameters"]["chunk"] == chunk and chunked["grid"] == grid
        assert [t["despike"] for t in chunked["tracks"]] == [t["despike"] for t in record["tracks"]]
        assert [t["cells_with_data"] for t in chunked["tracks"]] == [t["cells_with_data"] for t in record["tracks"]]
        assert_same_outputs(reference, out, detector=detector)


@pytest.mark.parametrize("kind", ["points", "raster"])
@pytest.mark.parametrize("detector", ["cnn", "threshold"])  # the chunk-exact detector and a whole-map one
def test_same_result_on_a_two_process_cluster(whole_runs, scene_csv, lonlat_raster, cluster, tmp_path, kind, detector):
    _, reference = whole_runs[kind, detector]
    out = str(tmp_path / "out")
    path = scene_csv if kind == "points" else lonlat_raster
    record = detect([path], out, detector=detector, chunk=64, scheduler=cluster, **OPTIONS[kind])
    assert record["parameters"]["scheduler"] == cluster
    assert_same_outputs(reference, out, detector=detector)


def test_every_switch_off_its_default_gives_the_same_result_chunked(scene_csv, tmp_path):
    """The ablation switches (no despiking, no hysteresis, the per-pixel head alone, the gridded map scanned) apply in
    a chunked run as in memory, and are recorded alike."""
    switches = {"despike": False, "hysteresis": False, "localise": "pixel", "scan_filled": False}
    whole = detect([scene_csv], str(tmp_path / "whole"), **switches, **OPTIONS["points"])
    chunked = detect([scene_csv], str(tmp_path / "chunked"), chunk=64, **switches, **OPTIONS["points"])
    assert whole["tracks"][0]["despike"] == {"removed": 0, "switched_off": True}
    parameters = whole["parameters"]
    assert parameters["low_probability_threshold"] == parameters["probability_threshold"]  # no hysteresis
    assert parameters["model"]["input"]["localise"] == "pixel" and parameters["model"]["input"]["fill"] is False
    for key in ("despike", "low_probability_threshold", "probability_threshold", "model"):
        assert chunked["parameters"][key] == parameters[key], key
    assert len(whole["detections"]) > 0
    assert_same_outputs(str(tmp_path / "whole"), str(tmp_path / "chunked"), detector="cnn")
