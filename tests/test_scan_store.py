"""Scanning a Zarr-held map chunk by chunk: equal to the whole-map scan, resumable (also after a SIGKILL), the same
on a LocalCluster."""

import os
import signal
import subprocess
import sys
import time

import distributed
import numpy as np
import pytest
import zarr

from defoscan.model import build_model, load_model, save_model
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels
from defoscan.scan import scan_probability
from defoscan.scan_store import scan_store, scanned_cells, write_map

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ORIGIN = (-2000, 351)  # somewhere on the global lattice, not on a stride multiple


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    recipe = {**DEFAULT_RECIPE, "window": 32, "localise": "product"}
    model = build_model("compact", input_channels(recipe), width=8, fcn=True, seed=3).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(model, path, {"input": recipe, "threshold": 0.5})
    return path


@pytest.fixture(scope="module")
def a_map():
    rng = np.random.default_rng(7)
    velocity = rng.normal(scale=3.0, size=(100, 87)).astype(np.float32)
    velocity[40:60, 30:50] += 15.0 * np.exp(-((np.arange(20)[:, None] - 10) ** 2 + (np.arange(20) - 10) ** 2) / 30)
    velocity[rng.random(velocity.shape) < 0.3] = np.nan
    velocity[:, 75:] = np.nan  # a coast
    return velocity, np.isfinite(velocity)


@pytest.fixture(scope="module")
def whole(tiny_model, a_map):
    model, card = load_model(tiny_model)
    return scan_probability(a_map[0], model, card["input"], origin=ORIGIN, valid=a_map[1])


def test_the_store_scan_equals_the_whole_map_scan(tiny_model, a_map, whole, tmp_path):
    write_map(tmp_path / "s.zarr", a_map[0], ORIGIN, chunk=40)
    seen = []
    probability = scan_store(tmp_path / "s.zarr", tiny_model, chunk=40, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(k, 9) for k in range(1, 10)]  # 3 x 3 chunks
    result = probability[...]
    assert np.array_equal(np.isfinite(result), np.isfinite(whole)) and np.isfinite(whole).sum() > 3000
    assert np.nanmax(np.abs(result - whole)) < 1e-5


def test_a_stopped_scan_resumes_with_the_chunks_left(tiny_model, a_map, whole, tmp_path):
    write_map(tmp_path / "s.zarr", a_map[0], ORIGIN, chunk=40)

    def stop_after_four(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_store(tmp_path / "s.zarr", tiny_model, chunk=40, progress=stop_after_four)
    seen = []
    result = scan_store(tmp_path / "s.zarr", tiny_model, chunk=40, progress=lambda d, t: seen.append(d))[...]
    assert seen == [5, 6, 7, 8, 9]  # only the five chunks not done
    assert np.nanmax(np.abs(result - whole)) < 1e-5 and np.array_equal(np.isnan(result), np.isnan(whole))
    with pytest.raises(ValueError, match="chunks of"):
        scan_store(tmp_path / "s.zarr", tiny_model, chunk=50)


def test_a_local_cluster_of_worker_processes_gives_the_same_map(tiny_model, a_map, whole, tmp_path):
    write_map(tmp_path / "s.zarr", a_map[0], ORIGIN, chunk=30)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        result = scan_store(tmp_path / "s.zarr", tiny_model, chunk=30, client=client)[...]
    assert np.nanmax(np.abs(result - whole)) < 1e-5 and np.array_equal(np.isnan(result), np.isnan(whole))


def test_a_killed_scan_resumes_to_the_same_map(tiny_model, a_map, tmp_path):
    write_map(tmp_path / "killed.zarr", a_map[0], ORIGIN, chunk=20)  # 5 x 5 chunks
    write_map(tmp_path / "whole.zarr", a_map[0], ORIGIN, chunk=20)
    script = (
        "import sys, time\n"
        "from defoscan.scan_store import scan_store\n"
        "scan_store(sys.argv[1], sys.argv[2], chunk=20, threads=1, progress=lambda d, t: time.sleep(0.3))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "killed.zarr"), str(tiny_model)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            group = zarr.open_group(str(tmp_path / "killed.zarr"), mode="r")
            if "done" in group and "scan" in group["done"] and int(group["done"]["scan"][...].sum()) >= 3:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the scan ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    flags = int(zarr.open_group(str(tmp_path / "killed.zarr"), mode="r")["done"]["scan"][...].sum())
    assert 3 <= flags < 25
    seen = []
    resumed = scan_store(
        tmp_path / "killed.zarr", tiny_model, chunk=20, threads=1, progress=lambda d, t: seen.append(d)
    )
    assert len(seen) == 25 - flags  # the finished chunks were not scanned again
    uninterrupted = scan_store(tmp_path / "whole.zarr", tiny_model, chunk=20, threads=1)
    assert np.array_equal(resumed[...], uninterrupted[...], equal_nan=True)  # same bytes


def test_scanned_cells_counts_the_cells_with_data_the_scan_reached(tiny_model, a_map, tmp_path):
    # Issue 24: a map the scanner's windows cannot read (too sparse for them) has a probability of NaN everywhere.
    velocity = a_map[0].copy()
    sparse = np.full_like(velocity, np.nan)
    sparse[::16, ::16] = velocity[::16, ::16]  # far under the windows' share of cells with data
    for name, values in (("full", velocity), ("sparse", sparse), ("empty", np.full_like(velocity, np.nan))):
        write_map(tmp_path / f"{name}.zarr", values, ORIGIN, chunk=40)
        scan_store(tmp_path / f"{name}.zarr", tiny_model, chunk=40)
    full = scanned_cells(tmp_path / "full.zarr", chunk=40)
    assert full == {"cells_with_data": int(np.isfinite(velocity).sum()), "cells_scanned": full["cells_with_data"],
                    "share": 1.0}  # fmt: skip
    sparse_record = scanned_cells(tmp_path / "sparse.zarr", chunk=33)  # any reading chunk: the same counts
    assert sparse_record["cells_with_data"] == int(np.isfinite(sparse).sum()) > 0
    assert sparse_record["cells_scanned"] == 0 and sparse_record["share"] == 0.0
    assert scanned_cells(tmp_path / "empty.zarr") == {"cells_with_data": 0, "cells_scanned": 0, "share": 1.0}
