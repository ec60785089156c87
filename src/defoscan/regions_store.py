"""The regions stage of a chunked run: :func:`defoscan.cnn_regions.probability_regions` on a store, chunk by chunk.

:func:`regions_store` gives the regions and the label map that ``probability_regions`` gives on the whole map, reading
one chunk at a time:

1. the hysteresis components are labelled into the store's ``labels`` array by :func:`defoscan.labels.label_chunked`
   (the same partition as whole-map labelling);
2. the robust background's block medians are computed once over the whole map on the global block lattice
   (:func:`defoscan.threshold.block_medians`, one band of blocks at a time), and each chunk's background is
   interpolated from them (:func:`defoscan.threshold.background_at`): the same numbers as the whole map's;
3. one pass over the chunks accumulates, per component, what a region's attributes need: greatest probability,
   cells, points, sums of probability and of the finite residual velocities and their count, the residual of
   greatest magnitude (ties go to the first cell in row-major order of the map, as ``numpy.argmax`` does on the
   whole map) and the bounding box's first row and column (the ``find_objects`` window ``probability_regions``
   sorts by). Regions are dropped and ordered by the same rules; ties in score and window fall to the order of the
   components' first cells, which is ``probability_regions``' order too (the order of ``ndimage.label``);
4. ``labels`` is rewritten through one lookup table to the final numbers.

Everything is exact except the means (``mean_velocity``, ``mean_probability``): sums taken in another order than
numpy's pairwise summation over the whole region may differ in the last bits.

:func:`store_polygons` gives :func:`defoscan.regions.label_polygons` of the stored label map. Each chunk is polygonised
as ``label_polygons`` polygonises the whole map (GDAL, 8-connectivity, in whole-map pixel coordinates, so that pieces
meet exactly); a label whose cells all lie in one chunk keeps those pieces. A label crossing chunk borders has its
pieces unioned; where the union is not one valid polygon, the label has cells touching only at a corner, which GDAL
returns as one polygon whose ring touches itself, and that label alone is polygonised again from its bounding box,
as ``label_polygons`` does, so the geometry is the same.

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

from defoscan.cnn_regions import COARSE_BACKGROUND_RATIO, STRONG_PEAK_RATIO
from defoscan.labels import label_chunked
from defoscan.store import create_array
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

    Returns
    -------
    list of dict
        Per region, as :func:`defoscan.cnn_regions.probability_regions`: ``label``, ``score``, ``n_cells``,
        ``n_points``, ``mean_velocity``, ``peak_velocity``, ``sign``, ``mean_probability``. The store's ``labels``
        (int32) holds the region numbers, 0 elsewhere.
    """
    group = zarr.open_group(str(path), mode="r+")
    origin = tuple(int(v) for v in group.attrs["origin"])
    height, width = (int(v) for v in group.attrs["shape"])
    prob_array, vel_array, count_array = group[probability], group[velocity], group[count]
    low = threshold if low_threshold is None else min(float(low_threshold), float(threshold))

    def scored(key):  # probability as float64, NaN never reaching a cut-off
        return np.nan_to_num(np.asarray(prob_array[key], dtype=np.float64), nan=-1.0)

    def mask(key):
        return np.isfinite(np.asarray(vel_array[key], dtype=np.float64)) & (scored(key) >= low)

    labels = create_array(group, "labels", "int32", chunk, 0)
    n = label_chunked(
        _ChunkFunction((height, width), mask),
        labels,
        chunk=chunk,
        seeds=_ChunkFunction((height, width), lambda key: scored(key) >= threshold),
    )
    if n == 0:
        return []
    size = n + 1  # index 0: background cells, ignored
    # Residuals against the background's blocks, and against blocks COARSE_BACKGROUND_RATIO times larger for the
    # regions wider than a block (as probability_regions measures them).
    backgrounds = [
        (block_medians(vel_array, cell_size, blocks, origin=origin), blocks, _Residuals(size))
        for blocks in (background_size, COARSE_BACKGROUND_RATIO * background_size)
    ]
    score = np.full(size, -np.inf)
    n_cells = np.zeros(size, dtype=np.int64)
    n_points = np.zeros(size, dtype=np.int64)
    sum_probability = np.zeros(size)
    start_row = np.full(size, np.iinfo(np.int64).max)
    start_col = np.full(size, np.iinfo(np.int64).max)
    end_row = np.full(size, -1, dtype=np.int64)
    end_col = np.full(size, -1, dtype=np.int64)
    for r in range(0, height, chunk):
        for c in range(0, width, chunk):
            window = (slice(r, r + chunk), slice(c, c + chunk))
            block = np.asarray(labels[window])
            inside = block > 0
            if not inside.any():
                continue
            rows, cols = np.nonzero(inside)  # row-major order
            label = block[rows, cols]
            p = np.asarray(prob_array[window], dtype=np.float64)[rows, cols]
            v = np.asarray(vel_array[window], dtype=np.float64)
            corner = (origin[0] + r, origin[1] + c)
            points = np.asarray(count_array[window])[rows, cols]
            np.maximum.at(score, label, p)
            n_cells += np.bincount(label, minlength=size)
            n_points += np.bincount(label, weights=points, minlength=size).astype(np.int64)
            sum_probability += np.bincount(label, weights=p, minlength=size)
            np.minimum.at(start_row, label, rows + r)
            np.minimum.at(start_col, label, cols + c)
            np.maximum.at(end_row, label, rows + r)
            np.maximum.at(end_col, label, cols + c)
            cell = (rows + r) * width + cols + c
            for (medians, first), blocks, residuals in backgrounds:
                residual = (v - background_at(medians, first, cell_size, blocks, corner, v.shape))[rows, cols]
                residuals.add(label, residual, cell)

    # Each region's measure: against the coarse blocks if it is wider than a block (probability_regions' rule).
    wide = (np.maximum(end_row - start_row, end_col - start_col) + 1) * cell_size > background_size
    fine, coarse = (residuals for _, _, residuals in backgrounds)
    sum_residual = np.where(wide, coarse.sum, fine.sum)
    n_residual = np.where(wide, coarse.n, fine.n)
    peak = np.where(wide, coarse.peak, fine.peak)
    with np.errstate(invalid="ignore", divide="ignore"):
        strong = (np.abs(sum_residual / n_residual) >= min_velocity) | (
            np.abs(peak) >= STRONG_PEAK_RATIO * min_velocity
        )
    kept = np.flatnonzero((n_cells >= min_cells) & (n_points >= min_points) & (n_residual > 0) & strong)
    kept = kept[kept > 0]
    # probability_regions sorts by (-score, window start) stably in ndimage.label order, the components' first cells
    # in row-major order: label_chunked numbers components in that order too.
    kept = kept[np.lexsort((kept, start_col[kept], start_row[kept], -score[kept]))]
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
        mean = float(sum_residual[index] / n_residual[index])
        regions.append(
            {
                "label": number,
                "score": float(score[index]),
                "n_cells": int(n_cells[index]),
                "n_points": int(n_points[index]),
                "mean_velocity": mean,
                "peak_velocity": float(peak[index]),
                "sign": "subsidence" if mean < 0 else "uplift",
                "mean_probability": float(sum_probability[index] / n_cells[index]),
            }
        )
    return regions


class _Residuals:
    """Per-label sums, counts and peak (the value of greatest magnitude, first cell in row-major order among equal
    magnitudes) of residuals, accumulated chunk by chunk."""

    def __init__(self, size):
        self.sum = np.zeros(size)
        self.n = np.zeros(size, dtype=np.int64)
        self.peak = np.full(size, np.nan)
        self.magnitude = np.full(size, -1.0)
        self.cell = np.full(size, np.iinfo(np.int64).max)

    def add(self, label, residual, cell):
        """Accumulate a chunk's cells: their labels, residuals (NaN skipped) and global row-major cell numbers."""
        finite = np.isfinite(residual)
        label, values, cell = label[finite], residual[finite], cell[finite]
        size = self.sum.size
        self.sum += np.bincount(label, weights=values, minlength=size)
        self.n += np.bincount(label, minlength=size)
        magnitude = np.abs(values)
        order = np.lexsort((cell, -magnitude, label))
        label, magnitude, cell, values = label[order], magnitude[order], cell[order], values[order]
        head = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
        label, magnitude, cell, values = label[head], magnitude[head], cell[head], values[head]
        tie = (magnitude == self.magnitude[label]) & (cell < self.cell[label])
        better = (magnitude > self.magnitude[label]) | tie
        label = label[better]
        self.peak[label], self.magnitude[label], self.cell[label] = values[better], magnitude[better], cell[better]


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
        Region number to shapely Polygon or MultiPolygon, equal to :func:`defoscan.regions.label_polygons` on the
        whole label map.
    """
    array = zarr.open_group(str(path), mode="r")[labels]
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
