"""The regions stage of a chunked run: :func:`defoscan.cnn_regions.probability_regions` on a store, chunk by chunk.

:func:`regions_store` gives the regions and the label map that ``probability_regions`` gives on the whole map, reading
one chunk at a time:

1. the hysteresis components are labelled into a temporary ``labels_parent`` array by
   :func:`defoscan.labels.label_chunked` (the same partition as whole-map labelling), and their bounding boxes
   found (a component wider than a block is measured against the coarse background);
2. the robust background's block medians are computed once over the whole map on the global block lattice
   (:func:`defoscan.threshold.block_medians`, one band of blocks at a time) for both block sizes, and each chunk's
   background is interpolated from them (:func:`defoscan.threshold.background_at`): the same numbers as the whole
   map's;
3. the split by sign: the components' cells of relative velocity < 0 are labelled into ``labels`` and those >= 0
   into a temporary ``labels_uplift`` (``label_chunked`` again), numbered subsidence first;
4. one pass over the chunks accumulates, per part, what a region's attributes need: greatest probability, cells,
   points, sums of probability, velocity and relative velocity, the relative velocity of greatest magnitude and the
   velocity at that cell (ties go to the first cell in row-major order of the map, as ``numpy.argmax`` does), the
   bounding box's first row and column and the first cell. Regions are dropped and ordered by
   ``probability_regions``' rules (score, window start, first cell);
5. ``labels`` is rewritten through one lookup table to the final numbers; the temporary arrays are deleted.

Everything is exact except the means (``mean_velocity``, ``mean_relative``, ``background_velocity``,
``mean_probability``): sums taken in another order than
numpy's pairwise summation over the whole region may differ in the last bits.

:func:`store_polygons` gives the polygons of the stored label map. Each chunk is polygonised as GDAL polygonises the
whole map (8-connectivity, in whole-map pixel coordinates, so that pieces
meet exactly); a label whose cells all lie in one chunk keeps those pieces. A label crossing chunk borders has its
pieces unioned; where the union is not one valid polygon, the label has cells touching only at a corner, which GDAL
returns as one polygon whose ring touches itself, and that label alone is polygonised again from its bounding box,
as on the whole map, so the geometry does not depend on the chunking (:func:`label_polygons`: a label map held in
memory, as one chunk).

Memory: one chunk of each array, the small grid of block medians, a band of blocks (block rows by the map's width)
while computing them, about ten numbers per component with a seed; for the polygons, the polygons themselves and the
bounding box of one region with corner-only contacts.
"""

import numpy as np
import rasterio.features
import shapely
import shapely.affinity
import zarr
from affine import Affine

from defoscan.cnn_regions import STRONG_PEAK_RATIO
from defoscan.labels import label_chunked
from defoscan.region_attributes import COARSE_BACKGROUND_RATIO, attributes_from_sums, is_subsidence, strong_enough
from defoscan.store import create_array, store_like
from defoscan.threshold import background_at, block_medians


class _ChunkFunction:
    """A 2-D array-like computed slice by slice from the store (what :func:`label_chunked` reads)."""

    def __init__(self, shape, function):
        self.shape = shape
        self.function = function

    def __getitem__(self, key):
        return self.function(key)


def regions_store(
    path,
    *,
    cell_size,
    threshold,
    low_threshold=None,
    background_size=5000.0,
    min_cells=4,
    min_points=4,
    min_velocity=0.0,
    chunk=1024,
    probability="probability",
    velocity="velocity",
    count="count",
    medians=None,
):
    """Regions of a store's probability map, written to its ``labels`` array, chunk by chunk.

    Parameters
    ----------
    path : str
        The run's Zarr store (attributes ``origin`` and ``shape``).
    cell_size : float
        Metres.
    threshold : float
        Probability a region needs in at least one cell (inclusive).
    low_threshold : float, optional
        Probability the other cells of a region need (inclusive); ``threshold`` by default.
    background_size : float
        Metres across the blocks of the robust background.
    min_cells, min_points : int
        Cells and points a region needs.
    min_velocity : float
        Magnitude of mean velocity against the background (mm/yr) a region needs, unless its peak reaches
        :data:`defoscan.cnn_regions.STRONG_PEAK_RATIO` times it.
    chunk : int
        Cells per chunk side.
    probability, velocity, count : str
        Names of the arrays: probability (NaN where not scanned), gridded velocity (mm/yr, NaN where no data),
        points per cell.
    medians : tuple, optional
        :func:`defoscan.threshold.block_medians` of the velocity at ``background_size``, when the caller has them
        (the map is then read once less).

    Returns
    -------
    list of dict
        Per region, as :func:`defoscan.cnn_regions.probability_regions`: ``label``, ``score``, ``n_cells``,
        ``n_points``, the velocity attributes of :mod:`defoscan.region_attributes`, ``mean_probability``. The
        store's ``labels`` (int32) holds the region numbers, 0 elsewhere.
    """
    group = zarr.open_group(store_like(path), mode="r+")
    origin = tuple(int(v) for v in group.attrs["origin"])
    height, width = (int(v) for v in group.attrs["shape"])
    prob_array, vel_array, count_array = group[probability], group[velocity], group[count]
    low = threshold if low_threshold is None else min(float(low_threshold), float(threshold))

    def scored(key):  # probability as float64, NaN never reaching a cut-off
        return np.nan_to_num(np.asarray(prob_array[key], dtype=np.float64), nan=-1.0)

    def mask(key):
        return np.isfinite(np.asarray(vel_array[key], dtype=np.float64)) & (scored(key) >= low)

    parents = create_array(group, "labels_parent", "int32", chunk, 0)
    n = label_chunked(
        _ChunkFunction((height, width), mask),
        parents,
        chunk=chunk,
        seeds=_ChunkFunction((height, width), lambda key: scored(key) >= threshold),
    )
    labels = create_array(group, "labels", "int32", chunk, 0)
    if n == 0:
        del group["labels_parent"]
        return []
    # Each component is measured against the background's blocks, or blocks COARSE_BACKGROUND_RATIO times larger
    # if it is wider than a block (probability_regions' rule): its bounding box first.
    start_row, start_col, end_row, end_col = _boxes(parents, n + 1, chunk)
    wide = np.r_[False, ((np.maximum(end_row - start_row, end_col - start_col) + 1) * cell_size > background_size)[1:]]
    fine_medians = medians or block_medians(vel_array, cell_size, background_size, origin=origin)
    coarse_size = COARSE_BACKGROUND_RATIO * background_size
    backgrounds = [
        (fine_medians, background_size),
        (block_medians(vel_array, cell_size, coarse_size, origin=origin), coarse_size),
    ]

    def relative(key):  # relative velocity of a slice of cells, NaN outside the components
        parent = np.asarray(parents[key])
        v = np.asarray(vel_array[key], dtype=np.float64)
        corner = (origin[0] + key[0].start, origin[1] + key[1].start)
        (fine, fine_blocks), (coarse, coarse_blocks) = backgrounds
        measure = np.where(
            wide[parent],
            v - background_at(*coarse, cell_size, coarse_blocks, corner, v.shape),
            v - background_at(*fine, cell_size, fine_blocks, corner, v.shape),
        )
        return np.where(parent > 0, measure, np.nan), v

    # The components' parts of one sign (probability_regions' split by sign): subsidence numbered first.
    uplift = create_array(group, "labels_uplift", "int32", chunk, 0)
    shape = (height, width)
    n_down = label_chunked(_ChunkFunction(shape, lambda key: is_subsidence(relative(key)[0])), labels, chunk=chunk)
    n_up = label_chunked(_ChunkFunction(shape, lambda key: _uplift(relative(key)[0])), uplift, chunk=chunk)
    size = n_down + n_up + 1  # index 0: background cells, ignored
    score = np.full(size, -np.inf)
    n_cells = np.zeros(size, dtype=np.int64)
    n_points = np.zeros(size, dtype=np.int64)
    sum_probability = np.zeros(size)
    sum_velocity = np.zeros(size)
    residuals = _Residuals(size)
    start_row = np.full(size, np.iinfo(np.int64).max)
    start_col = np.full(size, np.iinfo(np.int64).max)
    first = np.full(size, np.iinfo(np.int64).max)
    for r in range(0, height, chunk):
        for c in range(0, width, chunk):
            window = (slice(r, r + chunk), slice(c, c + chunk))
            down, up = np.asarray(labels[window]), np.asarray(uplift[window])
            block = np.where(down > 0, down, np.where(up > 0, up + n_down, 0)).astype(np.int32)
            labels[window] = block
            inside = block > 0
            if not inside.any():
                continue
            rows, cols = np.nonzero(inside)  # row-major order
            label = block[rows, cols]
            p = np.asarray(prob_array[window], dtype=np.float64)[rows, cols]
            rel, v = relative(window)
            rel, v = rel[rows, cols], v[rows, cols]
            points = np.asarray(count_array[window])[rows, cols]
            np.maximum.at(score, label, p)
            n_cells += np.bincount(label, minlength=size)
            n_points += np.bincount(label, weights=points, minlength=size).astype(np.int64)
            sum_probability += np.bincount(label, weights=p, minlength=size)
            sum_velocity += np.bincount(label, weights=v, minlength=size)
            np.minimum.at(start_row, label, rows + r)
            np.minimum.at(start_col, label, cols + c)
            cell = (rows + r) * width + cols + c
            np.minimum.at(first, label, cell)
            residuals.add(label, rel, cell, v)
    del group["labels_parent"], group["labels_uplift"]

    candidates = {}
    for index in range(1, size):
        if n_cells[index] < min_cells or n_points[index] < min_points or residuals.n[index] == 0:
            continue
        if score[index] < threshold:  # a part is decided at the cut-off itself, as probability_regions does
            continue
        attributes = attributes_from_sums(
            sum_velocity[index],
            residuals.sum[index],
            int(residuals.n[index]),
            float(residuals.companion[index]),
            float(residuals.peak[index]),
        )
        if strong_enough(attributes, min_velocity, STRONG_PEAK_RATIO):
            candidates[index] = attributes
    kept = np.array(sorted(candidates), dtype=np.int64)
    # probability_regions' order: score, then the window's first row and column, then the first cell.
    kept = kept[np.lexsort((first[kept], start_col[kept], start_row[kept], -score[kept]))]
    lookup = np.zeros(size, dtype=np.int32)
    lookup[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    for r in range(0, height, chunk):
        for c in range(0, width, chunk):
            window = (slice(r, r + chunk), slice(c, c + chunk))
            block = np.asarray(labels[window])
            if block.any():
                labels[window] = lookup[block]
    regions = []
    for number, index in enumerate(kept, start=1):
        regions.append(
            {
                "label": number,
                "score": float(score[index]),
                "n_cells": int(n_cells[index]),
                "n_points": int(n_points[index]),
                **candidates[index],
                "mean_probability": float(sum_probability[index] / n_cells[index]),
            }
        )
    return regions


def _uplift(relative):
    """Cells of the uplift side (not subsidence, with a relative velocity)."""
    return ~is_subsidence(relative) & np.isfinite(relative)


def _boxes(labels, size, chunk):
    """First and last row and column of every label of a chunked label map (index 0 unused)."""
    height, width = labels.shape
    start_row = np.full(size, np.iinfo(np.int64).max)
    start_col = np.full(size, np.iinfo(np.int64).max)
    end_row = np.full(size, -1, dtype=np.int64)
    end_col = np.full(size, -1, dtype=np.int64)
    for r in range(0, height, chunk):
        for c in range(0, width, chunk):
            block = np.asarray(labels[r : r + chunk, c : c + chunk])
            rows, cols = np.nonzero(block > 0)
            label = block[rows, cols]
            np.minimum.at(start_row, label, rows + r)
            np.minimum.at(start_col, label, cols + c)
            np.maximum.at(end_row, label, rows + r)
            np.maximum.at(end_col, label, cols + c)
    return start_row, start_col, end_row, end_col


class _Residuals:
    """Per-label sums, counts and peak (the value of greatest magnitude, first cell in row-major order among equal
    magnitudes) of residuals, and a companion value at the peak cell (the velocity), accumulated chunk by chunk."""

    def __init__(self, size):
        self.sum = np.zeros(size)
        self.n = np.zeros(size, dtype=np.int64)
        self.peak = np.full(size, np.nan)
        self.magnitude = np.full(size, -1.0)
        self.cell = np.full(size, np.iinfo(np.int64).max)
        self.companion = np.full(size, np.nan)

    def add(self, label, residual, cell, companion):
        """Accumulate a chunk's cells: labels, residuals (NaN skipped), global row-major cell numbers, companions."""
        finite = np.isfinite(residual)
        label, values, cell, companion = label[finite], residual[finite], cell[finite], companion[finite]
        size = self.sum.size
        self.sum += np.bincount(label, weights=values, minlength=size)
        self.n += np.bincount(label, minlength=size)
        magnitude = np.abs(values)
        order = np.lexsort((cell, -magnitude, label))
        label, magnitude, cell, values, companion = (a[order] for a in (label, magnitude, cell, values, companion))
        head = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
        label, magnitude, cell, values, companion = (a[head] for a in (label, magnitude, cell, values, companion))
        tie = (magnitude == self.magnitude[label]) & (cell < self.cell[label])
        better = (magnitude > self.magnitude[label]) | tie
        label = label[better]
        self.peak[label], self.magnitude[label], self.cell[label] = values[better], magnitude[better], cell[better]
        self.companion[label] = companion[better]


def store_polygons(path, transform, chunk=1024, labels="labels"):
    """Polygons of every labelled region of a store's label map, chunk by chunk.

    Parameters
    ----------
    path : str
        The run's Zarr store.
    transform : affine.Affine
        The map's pixel-corner geotransform.
    chunk : int
        Cells per chunk side.
    labels : str
        Name of the label array (int, 0 for none).

    Returns
    -------
    dict
        Region number to shapely Polygon or MultiPolygon, the same as GDAL's polygons of the
        whole label map.
    """
    array = zarr.open_group(store_like(path), mode="r")[labels]
    height, width = array.shape
    pieces, bounds, crossing = {}, {}, set()
    for r in range(0, height, chunk):
        for c in range(0, width, chunk):
            block = np.asarray(array[r : r + chunk, c : c + chunk], dtype=np.int32)
            if not block.any():
                continue
            bottom, right = r + block.shape[0], c + block.shape[1]
            # Pixel coordinates of the whole map (whole numbers: pieces from neighbouring chunks meet exactly).
            found = rasterio.features.shapes(block, mask=block > 0, transform=Affine.translation(c, r), connectivity=8)
            for geometry, value in found:
                label, piece = int(value), shapely.geometry.shape(geometry)
                pieces.setdefault(label, []).append(piece)
                x0, y0, x1, y1 = piece.bounds
                old = bounds.get(label, (x0, y0, x1, y1))
                bounds[label] = (min(old[0], x0), min(old[1], y0), max(old[2], x1), max(old[3], y1))
                if (y0 == r > 0) or (x0 == c > 0) or (y1 == bottom < height) or (x1 == right < width):
                    crossing.add(label)  # on an edge shared with another chunk: may go on there
    coefficients = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
    polygons = {}
    for label in sorted(pieces):
        if label not in crossing:  # all its cells in one chunk: these are label_polygons' pieces
            union = shapely.union_all(pieces[label])
        else:
            # GDAL's rings may touch themselves (corner contacts): made valid (same area) before the union.
            union = shapely.union_all(shapely.make_valid(pieces[label]))
            if not (union.geom_type == "Polygon" and union.is_valid):
                # Corner contacts: polygonise the label's bounding box alone, with 8-connectivity, as label_polygons.
                x0, y0, x1, y1 = (int(round(v)) for v in bounds[label])
                cells = np.asarray(array[y0:y1, x0:x1]) == label
                found = rasterio.features.shapes(
                    cells.astype(np.int32), mask=cells, transform=Affine.translation(x0, y0), connectivity=8
                )
                union = shapely.union_all([shapely.geometry.shape(geometry) for geometry, _ in found])
        polygons[label] = shapely.affinity.affine_transform(union, coefficients)
    return polygons


def label_polygons(labels, transform):
    """:func:`store_polygons` of a label map held in memory (one chunk).

    Parameters
    ----------
    labels : numpy.ndarray of int
        Region number per cell, 0 for none.
    transform : affine.Affine
        The grid's pixel-corner geotransform.

    Returns
    -------
    dict
        Region number to shapely Polygon or MultiPolygon (cell edges, in the grid's CRS).
    """
    from zarr.storage import MemoryStore

    labels = np.asarray(labels, dtype=np.int32)
    chunk = max(max(labels.shape), 1)
    group = zarr.open_group(MemoryStore(), mode="w")
    group.attrs.update(origin=[0, 0], shape=[int(n) for n in labels.shape])
    create_array(group, "labels", "int32", chunk, 0)[...] = labels
    return store_polygons(group.store, transform, chunk=chunk)
