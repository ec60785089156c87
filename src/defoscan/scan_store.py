"""The scan stage of a run's store (:mod:`defoscan.store`): the map's probability, chunk by chunk.

The store holds the gridded map, ``velocity`` (float32, mm/yr, NaN = no data), whose cells with data are the observed
ones; for a model trained on gap-filled windows also ``velocity_filled`` (:mod:`defoscan.fill_store`), which it
then reads; and the attributes ``origin`` and ``shape`` (:mod:`defoscan.store`).

:func:`scan_store` adds ``probability`` (float32). Each chunk is scanned by :func:`defoscan.scan.scan_probability`
from its block read with ``window - 1`` cells of context, on the map's global window lattice, so the result equals
the whole-map scan whatever the chunking, the order, or the workers; chunks done are not scanned again when a
stopped run is started again. A map gridded coarser than the model's cells is scanned at the model's own cell size
(:mod:`defoscan.scan_upsampled`; the store's ``cell_size`` attribute says how coarse). Workers load the model
themselves from its file (they must see the same file system), once per process.
"""

import functools

import numpy as np
import torch
import zarr

from defoscan.hashing import file_sha256
from defoscan.store import chunk_shape, chunk_window, create_array, run_stage, store_like

PROBABILITY = "probability"


def write_map(path, velocity, origin, *, chunk=1024, count=None, filled=None):
    """Create a store holding a map held in memory (tests, and maps gridded whole).

    Parameters
    ----------
    path : str
        Directory of the new Zarr group (replaced if it exists).
    velocity : numpy.ndarray
        2-D gridded map (mm/yr, NaN = no data).
    origin : tuple of int
        Global ``(row, column)`` index of ``velocity[0, 0]``.
    chunk : int
        Zarr chunk side of the arrays.
    count : numpy.ndarray, optional
        Points per cell (``count``; the gap filling weighs cells by it).
    filled : numpy.ndarray, optional
        The gap-filled map (``velocity_filled``).

    Returns
    -------
    zarr.Group
    """
    group = zarr.open_group(store_like(path), mode="w")
    group.attrs["origin"] = [int(origin[0]), int(origin[1])]
    group.attrs["shape"] = [int(n) for n in np.shape(velocity)]
    create_array(group, "velocity", "float32", chunk, np.nan)[...] = np.asarray(velocity, dtype=np.float32)
    if count is not None:
        create_array(group, "count", "uint32", chunk, 0)[...] = np.asarray(count, dtype=np.uint32)
    if filled is not None:
        create_array(group, "velocity_filled", "float32", chunk, np.nan)[...] = np.asarray(filled, dtype=np.float32)
    return group


def scan_store(path, model_path, *, chunk=1024, client=None, progress=None, threads=None, recipe=None):
    """Scan the map of a store into its ``probability`` array, skipping chunks already done.

    Parameters
    ----------
    path : str
        The store.
    model_path : str
        Weights file of the model (its card beside it); read by every worker.
    chunk : int
        Cells per chunk side.
    client : distributed.Client or defoscan.store.LocalThreads, optional
        Scan the chunks on this cluster or these threads; in this process, one chunk after another, by default.
    progress : callable, optional
        ``progress(done, total)`` in chunks (:func:`defoscan.store.run_stage`).
    threads : int, optional
        torch threads per chunk (default: torch's in this process, one on a cluster's workers or a pool's threads).
    recipe : dict, optional
        The input recipe to scan with, in place of the model card's (``localise`` or ``fill`` overridden).

    Returns
    -------
    zarr.Array
        The ``probability`` array.
    """
    group = zarr.open_group(store_like(path), mode="r+")
    probability = create_array(group, PROBABILITY, "float32", chunk, np.nan)
    if tuple(probability.chunks) != chunk_shape(probability.shape, chunk):
        raise ValueError(f"{path} was scanned in chunks of {probability.chunks}, not {chunk}")
    threads = 1 if client is not None and threads is None else threads
    options = {"model_path": str(model_path), "sha": file_sha256(model_path), "threads": threads, "recipe": recipe}
    run_stage(path, "scan", scan_chunk, chunk=chunk, client=client, progress=progress, **options)
    return zarr.open_group(store_like(path), mode="r")[PROBABILITY]


def scan_chunk(path, i, j, chunk, *, model_path, sha, threads=None, recipe=None):
    """Scan chunk ``(i, j)`` of a store (the task a worker runs).

    Parameters
    ----------
    path : str
    i, j : int
        Chunk row and column.
    chunk : int
    model_path : str
    sha : str
        SHA-256 of the weights, so that a worker's cached model is the one asked for.
    threads : int, optional
        torch threads for this scan.
    recipe : dict, optional
        In place of the card's input recipe.
    """
    from defoscan.scan import scan_probability
    from defoscan.scan_upsampled import scan_factor, scan_upsampled

    if threads is not None:
        torch.set_num_threads(int(threads))
    model, card = _model(model_path, sha)
    recipe = card["input"] if recipe is None else recipe
    group = zarr.open_group(path, mode="r+")
    top, left = (int(v) for v in group.attrs["origin"])
    height, width = (int(v) for v in group.attrs["shape"])
    factor = scan_factor(group.attrs.get("cell_size"), recipe)
    context = int(recipe["window"]) - 1 if factor == 1 else -(-(int(recipe["window"]) - 1) // factor) + 1
    block, core, target, origin = chunk_window((height, width), (top, left), i, j, chunk, context)
    observed = group["velocity"][block]
    source = group["velocity_filled"][block] if recipe.get("fill") else observed
    bounds = (top, top + height, left, left + width)
    where = {"origin": origin, "core": core, "bounds": bounds, "valid": np.isfinite(observed)}
    if factor > 1:
        probability = scan_upsampled(source, model, recipe, factor, **where)
    else:
        probability = scan_probability(source, model, recipe, **where)
    group[PROBABILITY][target] = probability


def scanned_cells(path, chunk=1024):
    """How much of a scanned map the scan reached: its cells with data, and those of them with a probability.

    The scanner skips windows with too few cells with data (:func:`defoscan.scan.scan_probability`), and a map
    smaller than a window, or gridded far coarser than the model's cells, may not be scanned at all: its
    probability is NaN there, and "no detection" says nothing about those cells.

    Parameters
    ----------
    path : str or zarr store
        A store holding ``velocity`` and ``probability`` (:func:`scan_store`).
    chunk : int
        Cells per side read at a time.

    Returns
    -------
    dict
        ``cells_with_data``, ``cells_scanned`` (of those, with a probability) and ``share`` (their ratio; 1 for a
        map without data).
    """
    group = zarr.open_group(store_like(path), mode="r")
    velocity, probability = group["velocity"], group[PROBABILITY]
    height, width = velocity.shape
    with_data = scanned = 0
    for top in range(0, height, chunk):
        for left in range(0, width, chunk):
            window = (slice(top, top + chunk), slice(left, left + chunk))
            observed = np.isfinite(velocity[window])
            with_data += int(np.count_nonzero(observed))
            scanned += int(np.count_nonzero(observed & np.isfinite(probability[window])))
    share = scanned / with_data if with_data else 1.0
    return {"cells_with_data": with_data, "cells_scanned": scanned, "share": share}


@functools.lru_cache(maxsize=2)
def _model(model_path, sha):
    """The model of a weights file, loaded once per process (``sha`` keys the cache to the file's content)."""
    from defoscan.model import load_model
    from defoscan.model.networks import for_inference

    model, card = load_model(model_path)
    if card.get("weights_sha256") not in (None, sha):
        raise ValueError(f"{model_path}: weights changed while scanning")
    return for_inference(model), card
