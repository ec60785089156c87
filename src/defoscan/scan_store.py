"""Scanning a map held in a Zarr store, chunk by chunk, in this process or on a dask.distributed cluster, resumably.

The store is a Zarr group holding the map the model reads and where it holds data, with the map's global origin:

- ``velocity`` (float32, rows x columns, mm/yr, NaN = no data): the gridded map, or the gap-filled one for a model
  trained on filled windows;
- ``valid`` (bool, same shape): the observed cells;
- attribute ``origin``: global ``[row, column]`` index of cell ``[0, 0]`` (:func:`defoscan.fill.tiling.grid_origin`).

:func:`scan_store` adds ``probability`` (float32, chunked like the scan) and ``done`` (one flag per chunk, each in its
own Zarr chunk, so that workers never write the same object). Each chunk is scanned by
:func:`defoscan.scan.scan_probability` from its block read with ``window - 1`` cells of context, on the map's
global window lattice, so the result equals the whole-map scan whatever the chunking, the order, or the workers;
a chunk's flag is set only after its probabilities are written, so a run stopped at any point and started again
scans only the chunks not yet done. Workers load the model themselves from its file (they must see the same file
system), once per process.
"""

import functools

import numpy as np
import torch
import zarr

from defoscan.hashing import file_sha256

PROBABILITY = "probability"
DONE = "done"


def write_map(path, velocity, valid, origin, *, chunk=1024):
    """Create a scan store from in-memory arrays (tests, and maps gridded whole).

    Parameters
    ----------
    path : str
        Directory of the new Zarr group (replaced if it exists).
    velocity : numpy.ndarray
        2-D map the model reads (mm/yr, NaN = no data).
    valid : numpy.ndarray of bool
        Observed cells.
    origin : tuple of int
        Global ``(row, column)`` index of ``velocity[0, 0]``.
    chunk : int
        Zarr chunk side of the arrays.

    Returns
    -------
    zarr.Group
    """
    group = zarr.open_group(str(path), mode="w")
    shape = np.shape(velocity)
    group.create_array("velocity", shape=shape, chunks=(chunk, chunk), dtype="float32", fill_value=np.nan)[...] = (
        np.asarray(velocity, dtype=np.float32)
    )
    group.create_array("valid", shape=shape, chunks=(chunk, chunk), dtype="bool", fill_value=False)[...] = np.asarray(
        valid, dtype=bool
    )
    group.attrs["origin"] = [int(origin[0]), int(origin[1])]
    return group


def scan_store(path, model_path, *, chunk=1024, client=None, progress=None, threads=None):
    """Scan the map of a store into its ``probability`` array, skipping chunks already done.

    Parameters
    ----------
    path : str
        The store (:func:`write_map`, or the chunked runner).
    model_path : str
        Weights file of the model (its card beside it); read by every worker.
    chunk : int
        Cells per chunk side; a store scanned before keeps its own chunking (resuming with another is refused).
    client : distributed.Client, optional
        Scan the chunks on this cluster (``client.map``); in this process, one chunk after another, by default.
    progress : callable, optional
        Called as ``progress(done, total)`` in chunks, after each chunk finishes, ``done`` counting chunks finished
        by earlier runs too.
    threads : int, optional
        torch threads per chunk scan in this process (default: torch's); workers of a cluster use one each.

    Returns
    -------
    zarr.Array
        The ``probability`` array.
    """
    group = zarr.open_group(str(path), mode="r+")
    height, width = group["velocity"].shape
    grid = (-(-height // chunk), -(-width // chunk))
    if PROBABILITY in group:
        if tuple(group[PROBABILITY].chunks) != (chunk, chunk):
            raise ValueError(f"{path} was scanned in chunks of {group[PROBABILITY].chunks}, not {chunk}")
    else:
        group.create_array(
            PROBABILITY, shape=(height, width), chunks=(chunk, chunk), dtype="float32", fill_value=np.nan
        )
        group.create_array(DONE, shape=grid, chunks=(1, 1), dtype="uint8", fill_value=0)
    done = group[DONE][...]
    pending = [(int(i), int(j)) for i, j in zip(*np.nonzero(done == 0), strict=True)]
    total, finished = grid[0] * grid[1], grid[0] * grid[1] - len(pending)
    sha = file_sha256(model_path)
    if client is None:
        if threads is not None:
            torch.set_num_threads(int(threads))
        for i, j in pending:
            scan_chunk(str(path), str(model_path), sha, i, j, chunk)
            finished += 1
            if progress is not None:
                progress(finished, total)
    else:
        from distributed import as_completed

        futures = client.map(
            scan_chunk,
            [str(path)] * len(pending),
            [str(model_path)] * len(pending),
            [sha] * len(pending),
            [i for i, _ in pending],
            [j for _, j in pending],
            [chunk] * len(pending),
            threads=1,
            pure=False,
        )
        for future in as_completed(futures):
            future.result()  # raises a worker's error here
            finished += 1
            if progress is not None:
                progress(finished, total)
    return zarr.open_group(str(path), mode="r")[PROBABILITY]


def scan_chunk(path, model_path, sha, i, j, chunk, threads=None):
    """Scan chunk ``(i, j)`` of a store and mark it done (the task a worker runs).

    Parameters
    ----------
    path, model_path : str
    sha : str
        SHA-256 of the weights, so that a worker's cached model is the one asked for.
    i, j : int
        Chunk row and column.
    chunk : int
    threads : int, optional
        torch threads for this scan.
    """
    from defoscan.scan import scan_probability

    if threads is not None:
        torch.set_num_threads(int(threads))
    model, card = _model(model_path, sha)
    recipe = card["input"]
    group = zarr.open_group(path, mode="r+")
    velocity, valid = group["velocity"], group["valid"]
    height, width = velocity.shape
    origin = tuple(int(v) for v in group.attrs["origin"])
    context = int(recipe["window"]) - 1
    r, c = i * chunk, j * chunk
    r0, c0 = max(r - context, 0), max(c - context, 0)
    r1, c1 = min(r + chunk + context, height), min(c + chunk + context, width)
    core = (r - r0, min(r + chunk, height) - r0, c - c0, min(c + chunk, width) - c0)
    probability = scan_probability(
        velocity[r0:r1, c0:c1],
        model,
        recipe,
        origin=(origin[0] + r0, origin[1] + c0),
        core=core,
        bounds=(origin[0], origin[0] + height, origin[1], origin[1] + width),
        valid=valid[r0:r1, c0:c1],
    )
    group[PROBABILITY][r : r + probability.shape[0], c : c + probability.shape[1]] = probability
    group[DONE][i, j] = 1  # only once the chunk's probabilities are stored


@functools.lru_cache(maxsize=2)
def _model(model_path, sha):
    """The model of a weights file, loaded once per process (``sha`` keys the cache to the file's content)."""
    from defoscan.model import load_model

    model, card = load_model(model_path)
    if card.get("weights_sha256") not in (None, sha):
        raise ValueError(f"{model_path}: weights changed while scanning")
    model.eval()
    return model, card
