"""Chunk stages of a run's store (``defoscan.store``): flags, order, threads."""

import threading

import numpy as np
import zarr

from defoscan.store import LocalThreads, chunk_window, run_stage

SEEN = []
LOCK = threading.Lock()


def record(path, i, j, chunk, *, tag):
    """A task that notes which chunk it ran and on which thread."""
    with LOCK:
        SEEN.append((tag, i, j, threading.current_thread().name))


def _store(tmp_path, shape):
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    group.attrs.update(origin=[0, 0], shape=list(shape))
    return str(tmp_path / "s.zarr")


def test_every_chunk_once_in_row_major_order_then_nothing_left(tmp_path):
    path = _store(tmp_path, (25, 30))
    SEEN.clear()
    assert run_stage(path, "a", record, chunk=10, tag="a") == 9
    assert [(i, j) for _, i, j, _ in SEEN] == [(i, j) for i in range(3) for j in range(3)]
    assert run_stage(path, "a", record, chunk=10, tag="a") == 0  # all flagged: a restarted run redoes nothing


def test_the_fullest_chunks_go_first(tmp_path):
    path = _store(tmp_path, (20, 30))
    cells = [[5, 0, 90], [40, 90, 1]]
    zarr.open_group(path, mode="r+").attrs["data_cells"] = cells
    SEEN.clear()
    run_stage(path, "b", record, chunk=10, tag="b")
    # By cells with data, descending; ties (the two 90s) in row-major order.
    assert [(i, j) for _, i, j, _ in SEEN] == [(0, 2), (1, 1), (1, 0), (0, 0), (1, 2), (0, 1)]


def test_local_threads_run_every_chunk_on_the_pool(tmp_path):
    path = _store(tmp_path, (40, 40))
    SEEN.clear()
    pool = LocalThreads(2)
    try:
        done = []
        assert (
            run_stage(path, "c", record, chunk=10, client=pool, progress=lambda d, t: done.append((d, t)), tag="c")
            == 16
        )
    finally:
        pool.close()
    assert sorted((i, j) for _, i, j, _ in SEEN) == [(i, j) for i in range(4) for j in range(4)]
    assert all(name.startswith("defoscan-chunk") for *_, name in SEEN)
    assert done[-1] == (16, 16) and len(done) == 16
    assert zarr.open_group(path, mode="r")["done"]["c"][...].all()


def test_chunk_window_clips_the_context_to_the_map():
    block, core, target, origin = chunk_window((25, 30), (100, -7), 2, 0, 10, 4)
    assert block == (slice(16, 25), slice(0, 14))
    assert core == (4, 9, 0, 10)
    assert target == (slice(20, 25), slice(0, 10))
    assert origin == (116, -7)
    assert np.arange(30)[block[1]][core[2] : core[3]].tolist() == list(range(10))


def test_arrays_are_never_chunked_longer_than_the_map():
    """An in-memory run is one chunk of max(shape) a side: on a long strip its buffer must stay the strip's size."""
    from zarr.storage import MemoryStore

    from defoscan.store import create_array

    group = zarr.open_group(MemoryStore(), mode="w")
    group.attrs["shape"] = [10, 5000]
    strip = create_array(group, "velocity", "float32", 5000, np.nan)
    assert strip.chunks == (10, 5000)
    strip[...] = np.ones((10, 5000), dtype=np.float32)
    assert strip.nbytes == 10 * 5000 * 4 and float(strip[...].sum()) == 50_000.0
    assert create_array(group, "count", "uint32", 64, 0).chunks == (10, 64)  # a chunked run's chunks are kept
