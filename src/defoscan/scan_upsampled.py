"""Scanning a map gridded coarser than the model's cells at the model's own cell size (issue 18).

Sparse data are gridded at their own default cell (:func:`defoscan.grid.model_cell_size`), 100-1000 m for
EGMS-like points outside towns, while the shipped network only saw 50 m cells. Scanned as they are, a signal, the
atmosphere's correlation length and the window itself are 2-20 times larger on the ground than in training: on
the held-out validation scenes the model then fired almost everywhere on signal-free maps (median probability
0.6-0.96 at 250-500 m), and maps smaller than a window of coarse cells (a 20 km tile at 500 m is 40 cells) were
not scanned at all. Here the coarse map is interpolated onto cells ``factor`` times finer — the model's — and
scanned there, with the model's windows, stride and lattice, and each coarse cell gets the mean probability of its
fine cells. Interpolation adds no detail: what the model sees at its own scale is the coarse map's smooth field, so
that bowls, atmosphere and windows have the sizes on the ground it was trained on.

The fine grid is the coarse one cut ``factor`` times (global fine index = ``factor`` x coarse index), so its window
lattice is global too. A block is scanned in sub-blocks of at most ``FINE_BLOCK`` fine cells a side (memory: the
scanner keeps two float64 accumulators of its block), each read with enough coarse context that its fine core sees
``window - 1`` fine cells around it plus one coarse cell for the interpolation: a map scanned whole or chunk by
chunk gives the same probabilities.
"""

import math

import numpy as np

from defoscan.scan import scan_probability

FINE_BLOCK = 2048  # fine cells per sub-block side at most (about 100 MB of accumulators)


def scan_factor(cell_size, recipe):
    """How many times finer than the map the model's cells are; 1 (scan as it is) within the model's support.

    A map up to ``grid.MODEL_SUPPORT_RATIO`` times coarser than the model's cells is scanned as it is, as before
    this module (on the held-out validation scenes, scanning 100 m maps on 50 m cells only added false alarms);
    a coarser one on cells ``round(cell / model cell)`` times finer.

    Parameters
    ----------
    cell_size : float or None
        The map's cell, metres; None (unknown) gives 1.
    recipe : dict
        The model's input recipe: ``cell_size``, and ``cell_sizes`` for a model trained across scales (then the
        largest, and a map up to ``grid.MODEL_SUPPORT_RATIO`` times it is scanned as it is).

    Returns
    -------
    int
    """
    from defoscan.grid import MODEL_SUPPORT_RATIO

    if cell_size is None:
        return 1
    sizes = recipe.get("cell_sizes")
    if sizes:
        largest = max(float(c) for c in sizes)
        if float(cell_size) <= MODEL_SUPPORT_RATIO * largest:
            return 1
        return max(int(round(float(cell_size) / largest)), 1)
    model_cell = float(recipe["cell_size"])
    if float(cell_size) <= MODEL_SUPPORT_RATIO * model_cell:
        return 1
    return max(int(round(float(cell_size) / model_cell)), 1)


def upsample(values, factor):
    """``values`` on cells ``factor`` times finer: bilinear between the coarse cells' centres, NaN-aware.

    A fine cell takes the value interpolated from the finite coarse cells around its centre (weights renormalised
    over them), and is NaN where its own coarse cell is. Beyond the outermost centres the edge value is held.

    Parameters
    ----------
    values : numpy.ndarray
        2-D, NaN = no data.
    factor : int

    Returns
    -------
    numpy.ndarray of float32
        ``factor`` times the shape of ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    numerator = _interpolate(_interpolate(np.where(finite, values, 0.0), factor, 0), factor, 1)
    weight = _interpolate(_interpolate(finite.astype(np.float64), factor, 0), factor, 1)
    parent = np.repeat(np.repeat(finite, factor, axis=0), factor, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fine = numerator / weight
    return np.where(parent & (weight > 0), fine, np.nan).astype(np.float32)


def _interpolate(values, factor, axis):
    """Linear interpolation along one axis onto ``factor`` times as many cells (cell centres, edges held)."""
    n = values.shape[axis]
    position = (np.arange(n * factor) + 0.5) / factor - 0.5
    below = np.clip(np.floor(position).astype(np.int64), 0, n - 1)
    above = np.clip(below + 1, 0, n - 1)
    share = np.clip(position - np.floor(position), 0.0, 1.0)
    share = np.where(position < 0, 0.0, share)  # before the first centre: the first value
    shape = [1, 1]
    shape[axis] = -1
    share = share.reshape(shape)
    return np.take(values, below, axis=axis) * (1 - share) + np.take(values, above, axis=axis) * share


def coarsen(fine, factor):
    """Mean of each ``factor`` x ``factor`` block of ``fine`` over its finite cells (NaN where none is)."""
    rows, cols = fine.shape[0] // factor, fine.shape[1] // factor
    blocks = np.asarray(fine, dtype=np.float64).reshape(rows, factor, cols, factor)
    finite = np.isfinite(blocks)
    count = finite.sum(axis=(1, 3))
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def scan_upsampled(velocity, model, recipe, factor, *, origin=(0, 0), core=None, bounds=None, valid=None):
    """Probability of a coarse block's core, scanned on cells ``factor`` times finer (module notes).

    Parameters
    ----------
    velocity : numpy.ndarray
        The coarse block the model reads (gridded, or gap-filled for a recipe with ``fill``).
    model : torch.nn.Module
    recipe : dict
        The model's input recipe.
    factor : int
        Fine cells per coarse cell side (:func:`scan_factor`).
    origin : tuple of int
        Global coarse index of ``velocity[0, 0]``.
    core : tuple of int, optional
        ``(row0, row1, col0, col1)`` of the block to return; all of it by default. Exact when the block holds
        ``ceil((window - 1) / factor) + 1`` coarse cells of context around it (or the map ends there).
    bounds : tuple of int, optional
        Global coarse ``(row0, row1, col0, col1)`` of the whole map; the block's by default.
    valid : numpy.ndarray of bool, optional
        The coarse cells with data; ``isfinite(velocity)`` by default.

    Returns
    -------
    numpy.ndarray of float32
        The core's shape; NaN where no window reached a cell or it has no data.
    """
    velocity = np.asarray(velocity, dtype=np.float32)
    valid = np.isfinite(velocity) if valid is None else np.asarray(valid, dtype=bool)
    height, width = velocity.shape
    row0, row1, col0, col1 = (0, height, 0, width) if core is None else (int(v) for v in core)
    if bounds is None:
        bounds = (origin[0], origin[0] + height, origin[1], origin[1] + width)
    fine_bounds = tuple(int(b) * factor for b in bounds)
    context = math.ceil((int(recipe["window"]) - 1) / factor) + 1
    step = max(FINE_BLOCK // factor - 2 * context, 1)
    out = np.full((row1 - row0, col1 - col0), np.nan, dtype=np.float32)
    for r in range(row0, row1, step):
        for c in range(col0, col1, step):
            sub_core = (r, min(r + step, row1), c, min(c + step, col1))
            top, left = max(r - context, 0), max(c - context, 0)
            bottom, right = min(sub_core[1] + context, height), min(sub_core[3] + context, width)
            block = (slice(top, bottom), slice(left, right))
            fine = scan_probability(
                upsample(velocity[block], factor),
                model,
                recipe,
                origin=((origin[0] + top) * factor, (origin[1] + left) * factor),
                core=tuple(
                    factor * v for v in (sub_core[0] - top, sub_core[1] - top, sub_core[2] - left, sub_core[3] - left)
                ),
                bounds=fine_bounds,
                valid=np.repeat(np.repeat(valid[block], factor, axis=0), factor, axis=1),
            )
            out[sub_core[0] - row0 : sub_core[1] - row0, sub_core[2] - col0 : sub_core[3] - col0] = coarsen(
                fine, factor
            )
    return out
