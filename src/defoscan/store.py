"""A run's Zarr store: maps on the global grid, and stages run chunk by chunk with a done flag per chunk.

A stage is a function ``task(path, i, j, chunk, **options)`` that reads what it needs of the store around chunk
``(i, j)`` and writes that chunk of its output arrays, nothing else. :func:`run_stage` runs the tasks of the chunks
not yet done — in this process, or on a dask.distributed cluster — and each chunk's flag (in ``done/<stage>``, one
Zarr chunk per flag, so that no two tasks write the same object) is set on the worker once its task has returned:
a run stopped at any point and started again redoes only the chunks whose outputs were not all written.

Store attributes: ``origin`` (global ``[row, column]`` index of cell ``[0, 0]``, :func:`defoscan.fill.tiling.
grid_origin`) and ``shape`` (``[rows, columns]``), set by whoever creates the store; optionally ``data_cells``
(cells with data per chunk), by which :func:`run_stage` orders its tasks, the fullest first (the longest tasks
first, so that threads or workers finish together).
"""

import functools
import os

import numpy as np
import zarr


def store_like(path):
    """What ``zarr.open_group`` opens: a path (``os.PathLike`` as ``str``), or a zarr store object as it is (an
    in-memory run's ``zarr.storage.MemoryStore``: its tasks run in this process)."""
    return os.fspath(path) if isinstance(path, str | os.PathLike) else path


def create_array(group, name, dtype, chunk, fill_value):
    """An array of the map's shape in the store, chunked ``chunk x chunk`` (clamped to the map's shape); the existing
    one if already there."""
    if name in group:
        return group[name]
    shape = tuple(int(v) for v in group.attrs["shape"])
    # Never a chunk longer than the map: a chunk's buffer is allocated whole, and an in-memory run's one chunk is
    # max(shape) a side (a 100 x 100,000-cell strip would otherwise take 40 GB). A chunk clamped so spans the whole
    # axis, so the tasks' chunks still write Zarr chunks of their own.
    chunks = chunk_shape(shape, chunk)
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value, **codecs_for(group))


def chunk_shape(shape, chunk):
    """The Zarr chunks of a map array of ``shape`` worked in chunks of ``chunk`` cells a side (:func:`create_array`)."""
    return tuple(max(1, min(int(chunk), int(n))) for n in shape)


def codecs_for(group):
    """No compression in an in-memory store (nothing to save on disk; compressing costs the run time), Zarr's
    default on disk."""
    from zarr.storage import MemoryStore

    return {"compressors": None} if isinstance(group.store, MemoryStore) else {}


def chunk_window(shape, origin, i, j, chunk, context):
    """Where chunk ``(i, j)`` of a map lies and what to read around it.

    Parameters
    ----------
    shape : tuple of int
        The map's ``(rows, columns)``.
    origin : tuple of int
        Global index of the map's first cell.
    i, j : int
        Chunk row and column.
    chunk : int
        Cells per chunk side.
    context : int
        Cells to read on each side of the chunk (clipped to the map).

    Returns
    -------
    block : tuple of slice
        Rows and columns to read: the chunk grown by ``context`` cells, clipped to the map.
    core : tuple of int
        ``(row0, row1, col0, col1)`` of the chunk within the block.
    target : tuple of slice
        The chunk's rows and columns in the map.
    block_origin : tuple of int
        Global index of the block's first cell.
    """
    height, width = (int(v) for v in shape)
    r, c = i * chunk, j * chunk
    r0, c0 = max(r - context, 0), max(c - context, 0)
    r1, c1 = min(r + chunk + context, height), min(c + chunk + context, width)
    core = (r - r0, min(r + chunk, height) - r0, c - c0, min(c + chunk, width) - c0)
    target = (slice(r, min(r + chunk, height)), slice(c, min(c + chunk, width)))
    return (slice(r0, r1), slice(c0, c1)), core, target, (int(origin[0]) + r0, int(origin[1]) + c0)


def run_stage(path, stage, task, *, chunk, client=None, progress=None, **options):
    """Run ``task`` on every chunk of the store not yet done for ``stage``.

    Parameters
    ----------
    path : str
        The store.
    stage : str
        Name of the stage (its flags are ``done/<stage>``).
    task : callable
        ``task(path, i, j, chunk, **options)``; importable by the workers when a ``client`` is given.
    chunk : int
        Cells per chunk side; resuming a stage with another chunking is refused.
    client : distributed.Client or LocalThreads, optional
        Run the tasks on this cluster, or on this process's threads; in this process, one after another, by
        default.
    progress : callable, optional
        ``progress(done, total)`` in chunks after each chunk, ``done`` counting chunks finished by earlier runs.
    **options
        Passed to every task.

    Returns
    -------
    int
        Chunks run by this call.
    """
    group = zarr.open_group(store_like(path), mode="r+")
    height, width = (int(v) for v in group.attrs["shape"])
    grid = (-(-height // chunk), -(-width // chunk))
    flags = group.require_group("done")
    if stage in flags and tuple(flags[stage].shape) != grid:
        raise ValueError(f"{path}: stage {stage!r} was run in other chunks than {chunk} x {chunk}")
    if stage not in flags:
        flags.create_array(stage, shape=grid, chunks=(1, 1), dtype="uint8", fill_value=0)
    pending = [(int(i), int(j)) for i, j in zip(*np.nonzero(flags[stage][...] == 0), strict=True)]
    if "data_cells" in group.attrs:  # the fullest chunks first: the pool's threads or workers then finish together
        cells = np.asarray(group.attrs["data_cells"])
        pending.sort(key=lambda ij: -cells[ij])
    total, finished = grid[0] * grid[1], grid[0] * grid[1] - len(pending)
    if client is None:
        for i, j in pending:
            flagged_task(task, store_like(path), stage, i, j, chunk, **options)
            finished += 1
            if progress is not None:
                progress(finished, total)
    else:
        futures = [
            client.submit(flagged_task, task, store_like(path), stage, i, j, chunk, pure=False, **options)
            for i, j in pending
        ]
        for future in _as_completed(client, futures):
            future.result()  # a task's error is raised here
            finished += 1
            if progress is not None:
                progress(finished, total)
    return len(pending)


class LocalThreads:
    """Chunk tasks on a pool of this process's threads, with the part of a dask client that :func:`run_stage` uses.

    The stages' numerical work (NumPy, SciPy, torch, GDAL) releases the GIL, so chunks run side by side on the
    cores; each writes its own chunks and flags, as on a cluster.
    """

    def __init__(self, threads):
        from concurrent.futures import ThreadPoolExecutor

        self.threads = int(threads)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="defoscan-chunk")

    def submit(self, function, *args, pure=True, **kwargs):
        """Like ``distributed.Client.submit`` (``pure`` has no meaning here)."""
        return self._pool.submit(function, *args, **kwargs)

    def close(self):
        """Wait for the running tasks, start no more."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _as_completed(client, futures):
    if isinstance(client, LocalThreads):
        from concurrent.futures import as_completed
    else:
        from distributed import as_completed
    return as_completed(futures)


def flagged_task(task, path, stage, i, j, chunk, **options):
    """Run one chunk's task, then set its flag (only once the task's outputs are written)."""
    task(path, i, j, chunk, **options)
    zarr.open_group(path, mode="r+")["done"][stage][i, j] = 1
    release_memory()


def release_memory():
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Chunk after chunk, a task allocates and frees arrays of many sizes; glibc keeps freed heap pages mapped, and
    they fragment, so without this the resident size creeps up with the number of chunks done, that is with the
    map's area. Trimming once per chunk keeps the peak that of the largest chunk (measured in BENCHMARKS.md,
    "country").
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError, TypeError):
        return None
    return libc
