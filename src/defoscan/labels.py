"""Connected components of a map too large for memory: labelled chunk by chunk, merged across chunk borders.

The regions stage of a country-scale run (issue 6) needs the 8-connected components of "probability at or above the
lower cut-off" over the whole map, and keeps a component if one of its cells reaches the cut-off (hysteresis, as
:func:`defoscan.cnn_regions.probability_regions` does in memory). :func:`label_chunked` gives the same partition
reading one chunk at a time:

1. each chunk is labelled on its own (``scipy.ndimage.label``), its labels offset to be unique over the map, and
   whether each label holds a seed cell is noted;
2. the labels facing each other across every chunk border (8-connectivity: diagonal neighbours too) are joined as
   edges of a graph, whose connected components (``scipy.sparse.csgraph``) are the map's components;
3. each chunk is relabelled through one lookup table: components without a seed become 0, the others are numbered
   1, 2, ... in the order of their first cell in row-major order.

Memory: one chunk, the border rows and columns, and one integer per provisional label.
"""

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

EIGHT = np.ones((3, 3), dtype=bool)


def label_chunked(mask, out, *, chunk=1024, seeds=None):
    """Label the 8-connected components of ``mask`` into ``out``, chunk by chunk.

    Parameters
    ----------
    mask : array-like of bool
        2-D; anything that slices to numpy arrays (numpy, Zarr, an xarray variable's data).
    out : array-like of int32
        Same shape, written chunk by chunk (a numpy array or a Zarr array); 0 outside the kept components.
    chunk : int
        Cells per chunk side.
    seeds : array-like of bool, optional
        Cells that make a component kept (hysteresis); every component is kept by default.

    Returns
    -------
    int
        Number of components kept, labelled ``1 .. n`` in the order of their first cell (row-major).
    """
    height, width = mask.shape
    rows, cols = range(0, height, chunk), range(0, width, chunk)
    offset = 0
    seeded = [np.zeros(1, dtype=bool)]  # label 0 is background
    for r in rows:
        for c in cols:
            block = np.asarray(mask[r : r + chunk, c : c + chunk], dtype=bool)
            labels, n = ndimage.label(block, EIGHT)
            labels[labels > 0] += offset
            out[r : r + chunk, c : c + chunk] = labels.astype(np.int32)
            has_seed = np.ones(n, dtype=bool)
            if seeds is not None:
                seed_block = np.asarray(seeds[r : r + chunk, c : c + chunk], dtype=bool) & block
                has_seed = np.bincount(labels[seed_block] - offset, minlength=n + 1)[1:] > 0
            seeded.append(has_seed)
            offset += n
    seeded = np.concatenate(seeded)
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for r in rows[1:]:  # horizontal borders: the row above against the row below, offsets -1, 0, +1
        pairs.append(_facing(np.asarray(out[r - 1, :]), np.asarray(out[r, :])))
    for c in cols[1:]:  # vertical borders
        pairs.append(_facing(np.asarray(out[:, c - 1]), np.asarray(out[:, c])))
    pairs = np.concatenate(pairs)
    n_labels = offset + 1
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_labels, n_labels))
    _, component = connected_components(graph, directed=False)
    kept_component = np.zeros(component.max() + 1, dtype=bool)
    np.logical_or.at(kept_component, component[1:], seeded[1:])
    kept_component[component[0]] = False  # background
    # Number kept components by their first cell in row-major order: scan chunk rows, then rows within them.
    numbering = np.zeros(component.max() + 1, dtype=np.int64)
    count = 0
    for r in rows:
        band = np.asarray(out[r : r + chunk, :])
        order = component[band.ravel()]
        first = order[np.sort(np.unique(order, return_index=True)[1])]  # in order of first appearance
        new = first[kept_component[first] & (numbering[first] == 0)]
        numbering[new] = count + 1 + np.arange(len(new))
        count += len(new)
    lookup = numbering[component].astype(np.int32)
    lookup[0] = 0
    for r in rows:
        for c in cols:
            out[r : r + chunk, c : c + chunk] = lookup[np.asarray(out[r : r + chunk, c : c + chunk])]
    return count


def _facing(before, after):
    """Label pairs of two adjacent lines of cells that touch under 8-connectivity (both labelled)."""
    found = []
    for shift in (-1, 0, 1):
        a = before[max(shift, 0) : len(before) + min(shift, 0)]
        b = after[max(-shift, 0) : len(after) + min(-shift, 0)]
        both = (a > 0) & (b > 0)
        found.append(np.stack([a[both], b[both]], axis=1))
    return np.concatenate(found).astype(np.int64)


def number_regions(found, labels):
    """Number regions from 1 by decreasing score (ties by position) and write their cells into ``labels``.

    The last step the detectors share (:func:`defoscan.threshold.threshold_detect`,
    :func:`defoscan.cnn_regions.probability_regions`, :func:`defoscan.hotspot.gistar_detect`,
    :func:`defoscan.ada.ada_detect`).

    Parameters
    ----------
    found : list of dict
        Each with ``score``, ``window`` (the region's bounding slices), ``cells`` (its cells within the window),
        optionally ``first`` (global row-major index of its first cell, the last tie-break) and its other
        attributes; ``window``, ``cells`` and ``first`` are taken out. Regions' cells must be disjoint.
    labels : numpy.ndarray of int32
        Written in place with each region's number on its cells.

    Returns
    -------
    list of dict
        The regions in order, each with ``label`` first and the other attributes.
    """
    found = sorted(found, key=lambda r: (-r["score"], r["window"][0].start, r["window"][1].start, r.get("first", 0)))
    regions = []
    for number, region in enumerate(found, start=1):
        window, cells = region.pop("window"), region.pop("cells")
        region.pop("first", None)
        if not cells.any() or (labels[window][cells] != 0).any():
            # Every region must own its cells, or it has no polygon (issue 16: threshold's two signs overlapped).
            raise ValueError(f"region {number} has no cells or shares cells with a better-scoring region")
        labels[window][cells] = number
        regions.append({"label": number, **region})
    return regions
