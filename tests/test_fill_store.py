"""The gap-filling stage on a store: equal to filling the map whole, each tile solved once, resumable."""

import os
import signal
import subprocess
import sys
import time

import distributed
import numpy as np
import pytest
import zarr
from scipy import ndimage

import defoscan.fill
from defoscan.fill import fill_array
from defoscan.fill_store import fill_store
from defoscan.scan_store import write_map

ORIGIN = (-40017, 3021)  # a global index not on a tile boundary
OPTIONS = {"cell_size": 50.0, "method": "completion", "max_distance": 400.0, "tile": 48, "halo": 8}  # stride 32


@pytest.fixture(scope="module")
def sparse_map():
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:130, 0:115]
    velocity = (0.05 * rows - 0.03 * cols + 8.0 * np.exp(-((rows - 60) ** 2 + (cols - 50) ** 2) / 200.0)).astype(
        np.float32
    )
    observed = ndimage.binary_dilation(rng.random(velocity.shape) < 0.05, iterations=2) & (
        rng.random(velocity.shape) < 0.6
    )
    velocity[~observed] = np.nan
    velocity[:, 80:] = np.nan  # a strip with no data: tiles with nothing to fill
    count = np.where(observed, rng.integers(1, 6, velocity.shape), 0)
    return velocity, count


@pytest.fixture
def counted(monkeypatch):
    """Count the tile solves of the ``completion`` method (in this process)."""
    calls = []
    base = defoscan.fill.METHODS["completion"]

    def solve(v, w, t, **options):
        calls.append(v.shape)
        return base(v, w, t, **options)

    monkeypatch.setitem(defoscan.fill.METHODS, "completion", solve)
    return calls


def assert_same(filled, whole):
    assert np.array_equal(np.isnan(filled), np.isnan(whole))
    assert np.nanmax(np.abs(filled - whole)) < 1e-4


@pytest.mark.parametrize(
    ("origin", "chunk"),
    [
        (ORIGIN, 40),  # chunk between the stride and the tile
        ((12345, -777), 13),  # chunk smaller than the stride: most chunks own no tile
        ((-33, -5), 100),  # chunk larger than a tile, tiles starting before the map
        ((70, 45), 200),  # one chunk for the whole map
    ],
)
def test_the_store_fill_equals_the_whole_map_fill_and_solves_each_tile_once(
    sparse_map, tmp_path, counted, origin, chunk
):
    velocity, count = sparse_map
    whole = fill_array(velocity, count, origin=origin, **OPTIONS)
    assert np.isfinite(whole).sum() > np.isfinite(velocity).sum() + 2000  # something was filled
    solves = len(counted)
    write_map(tmp_path / "s.zarr", velocity, origin, chunk=chunk, count=count)
    seen = []
    filled = fill_store(tmp_path / "s.zarr", chunk=chunk, progress=lambda d, t: seen.append((d, t)), **OPTIONS)[...]
    chunks = -(-130 // chunk) * -(-115 // chunk)
    assert seen == [(k, 2 * chunks) for k in range(1, 2 * chunks + 1)]  # solving, then blending, per chunk
    assert sorted(counted[solves:]) == sorted(counted[:solves])  # the same tiles, each solved once
    assert_same(filled, whole)
    tiles = zarr.open_group(str(tmp_path / "s.zarr"))["fill_tiles"]
    assert tiles.chunks == (48, 48)
    assert tiles.nchunks_initialized < tiles.nchunks  # the empty tiles were not stored


def test_a_stopped_fill_resumes_with_the_chunks_left(sparse_map, tmp_path):
    velocity, count = sparse_map
    whole = fill_array(velocity, count, origin=ORIGIN, **OPTIONS)
    write_map(tmp_path / "s.zarr", velocity, ORIGIN, chunk=40, count=count)

    def stop_at(when):
        def stop(done, total):
            if done == when:
                raise KeyboardInterrupt

        return stop

    with pytest.raises(KeyboardInterrupt):
        fill_store(tmp_path / "s.zarr", chunk=40, progress=stop_at(5), **OPTIONS)  # solving tiles
    assert int(zarr.open_group(str(tmp_path / "s.zarr"))["done"]["fill_tiles"][...].sum()) == 5
    with pytest.raises(KeyboardInterrupt):
        fill_store(tmp_path / "s.zarr", chunk=40, progress=stop_at(15), **OPTIONS)  # blending
    flags = zarr.open_group(str(tmp_path / "s.zarr"))["done"]
    assert int(flags["fill_tiles"][...].sum()) == 12 and int(flags["fill"][...].sum()) == 3
    seen = []
    filled = fill_store(tmp_path / "s.zarr", chunk=40, progress=lambda d, t: seen.append(d), **OPTIONS)[...]
    assert seen == list(range(16, 25))
    assert_same(filled, whole)
    with pytest.raises(ValueError, match="other chunks"):
        fill_store(tmp_path / "s.zarr", chunk=30, **OPTIONS)
    with pytest.raises(ValueError, match="other options"):
        fill_store(tmp_path / "s.zarr", chunk=40, **{**OPTIONS, "max_distance": 500.0})


def test_a_fill_that_failed_inside_a_chunk_redoes_only_its_unfinished_tiles(sparse_map, tmp_path, counted, monkeypatch):
    velocity, count = sparse_map
    origin = (-33, -5)
    whole = fill_array(velocity, count, origin=origin, **OPTIONS)
    solves = len(counted)
    base = defoscan.fill.METHODS["completion"]

    def fail_after_fourteen(v, w, t, **options):
        if len(counted) == solves + 14:
            raise RuntimeError("killed")
        return base(v, w, t, **options)

    write_map(tmp_path / "s.zarr", velocity, origin, chunk=60, count=count)  # 3 x 2 chunks
    monkeypatch.setitem(defoscan.fill.METHODS, "completion", fail_after_fourteen)
    with pytest.raises(RuntimeError, match="killed"):
        fill_store(tmp_path / "s.zarr", chunk=60, **OPTIONS)
    monkeypatch.setitem(defoscan.fill.METHODS, "completion", base)
    flags = zarr.open_group(str(tmp_path / "s.zarr"))["done"]["fill_tiles"][...]
    assert 0 < flags.sum() < flags.size  # stopped with some chunks' tiles stored, one's partly
    first_run = len(counted) - solves  # fourteen tiles solved, the fifteenth failed
    filled = fill_store(tmp_path / "s.zarr", chunk=60, **OPTIONS)[...]
    assert_same(filled, whole)
    second_run = len(counted) - solves - first_run
    assert second_run < solves  # the finished chunks' tiles were not solved again
    assert second_run + first_run > solves  # the tiles of the chunk that failed were solved again


def kill_when(path, stage, flags, options):
    """Run fill_store in a child process and SIGKILL it once ``stage`` has ``flags`` chunks done."""
    script = (
        "import sys, time\n"
        "from defoscan.fill_store import fill_store\n"
        f"fill_store(sys.argv[1], chunk=20, progress=lambda d, t: time.sleep(0.05), **{options!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(path)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            group = zarr.open_group(str(path), mode="r")
            if "done" in group and stage in group["done"] and int(group["done"][stage][...].sum()) >= flags:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the fill ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()


def test_a_killed_fill_resumes_to_the_same_map(sparse_map, tmp_path):
    velocity, count = sparse_map
    write_map(tmp_path / "killed.zarr", velocity, ORIGIN, chunk=20, count=count)  # 7 x 6 chunks
    kill_when(tmp_path / "killed.zarr", "fill_tiles", 10, OPTIONS)
    kill_when(tmp_path / "killed.zarr", "fill", 10, OPTIONS)
    flags = zarr.open_group(str(tmp_path / "killed.zarr"), mode="r")["done"]
    assert int(flags["fill_tiles"][...].sum()) == 42 and 10 <= int(flags["fill"][...].sum()) < 42
    resumed = fill_store(tmp_path / "killed.zarr", chunk=20, **OPTIONS)[...]
    write_map(tmp_path / "whole.zarr", velocity, ORIGIN, chunk=20, count=count)
    uninterrupted = fill_store(tmp_path / "whole.zarr", chunk=20, **OPTIONS)[...]
    assert np.array_equal(resumed, uninterrupted, equal_nan=True)  # same bytes
    assert_same(resumed, fill_array(velocity, count, origin=ORIGIN, **OPTIONS))


def test_a_local_cluster_of_worker_processes_gives_the_same_map(sparse_map, tmp_path):
    velocity, count = sparse_map
    whole = fill_array(velocity, count, origin=ORIGIN, **OPTIONS)
    write_map(tmp_path / "s.zarr", velocity, ORIGIN, chunk=40, count=count)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        filled = fill_store(tmp_path / "s.zarr", chunk=40, client=client, **OPTIONS)[...]
    assert_same(filled, whole)
