"""Regions from a probability map: the CNN detector's counterpart of :func:`defoscan.threshold.threshold_detect`.

Hysteresis: cells with data whose probability reaches a lower cut-off (``low_threshold``) are joined into
8-connected regions, and a region is kept if one of its cells reaches the cut-off itself — so a detection is
decided at the cut-off and outlined at the lower one, and one signal whose probability dips inside does not break
into fragments. Regions with fewer than ``min_cells`` cells or ``min_points`` points are dropped. A region's
``score`` is its greatest probability; its velocities are measured against the same robust background as the
threshold detector's (:func:`defoscan.threshold.robust_background`), so a map's reference offset or a regional ramp
does not enter ``mean_velocity`` or ``peak_velocity``, and its ``sign`` is the sign of that mean (subsidence if
negative).
"""

import numpy as np
from scipy import ndimage

from defoscan.labels import number_regions
from defoscan.threshold import robust_background

# detect's lower cut-off, as a share of the cut-off: chosen on 100 validation scenes (seed 16; best IoU 0.42 at
# 0.4-0.5 against 0.32 without hysteresis, the same 4 % of negative scenes raised; docs/SCAN.md).
LOW_THRESHOLD_RATIO = 0.5
# A region whose mean is under min_velocity is still kept if its peak reaches this many times min_velocity: a
# crater's subsidence beside its uplift averages out (chosen on validation scenes, docs/EVALUATION.md).
STRONG_PEAK_RATIO = 5.0
# A region wider than the background's blocks is measured against blocks this many times larger: the small blocks
# would absorb its mean (a 20 km subsidence bowl under 5 km blocks; docs/EVALUATION.md).
COARSE_BACKGROUND_RATIO = 4.0


def probability_regions(
    probability,
    velocity,
    count,
    cell_size,
    threshold=0.5,
    *,
    low_threshold=None,
    background_size=5000.0,
    min_cells=4,
    min_points=4,
    min_velocity=0.0,
    origin=(0, 0),
):
    """Regions of a probability map at or above a cut-off, with the attributes of the output contract.

    Parameters
    ----------
    probability : numpy.ndarray
        2-D, in [0, 1], NaN where not scanned (:func:`defoscan.scan.scan_probability`).
    velocity : numpy.ndarray
        The gridded (not gap-filled) velocity, mm/yr, NaN where no data; cells without data never join a region.
    count : numpy.ndarray
        Points per cell.
    cell_size : float
        Metres.
    threshold : float
        Probability a region needs in at least one cell (inclusive).
    low_threshold : float, optional
        Probability the other cells of a region need (inclusive); ``threshold`` by default (no hysteresis).
    background_size : float
        Metres across the blocks of the robust background.
    min_cells, min_points : int
        Cells and points (sum of the cells' counts) a region needs.
    min_velocity : float
        Magnitude of mean velocity against the background (mm/yr) a region needs, unless its peak reaches
        :data:`STRONG_PEAK_RATIO` times it: ``detect`` passes the threshold detector's ``min_velocity``, so both
        report motion of the same size (docs/EVALUATION.md measures it).
    origin : (int, int)
        Global ``(row, column)`` index of the map's first cell, for the background's blocks
        (:func:`defoscan.threshold.robust_background`).

    Returns
    -------
    labels : numpy.ndarray of int32
        Region number per cell, 0 elsewhere; regions numbered from 1 by decreasing score (ties by position).
    regions : list of dict
        Per region: ``label``, ``score`` (greatest probability), ``n_cells``, ``n_points``, ``mean_velocity`` and
        ``peak_velocity`` (mm/yr against the background — against :data:`COARSE_BACKGROUND_RATIO` times larger blocks
        for a region wider than a block; the peak is the value of greatest magnitude, signed),
        ``sign`` (``subsidence`` if the mean is negative, else ``uplift``), ``mean_probability``.

    See also
    --------
    defoscan.threshold.threshold_detect : the baseline, same outputs.
    """
    probability = np.asarray(probability, dtype=np.float64)
    velocity = np.asarray(velocity, dtype=np.float64)
    count = np.asarray(count)
    labels = np.zeros(velocity.shape, dtype=np.int32)
    data = np.isfinite(velocity)
    low_threshold = threshold if low_threshold is None else min(float(low_threshold), float(threshold))
    scored = np.nan_to_num(probability, nan=-1.0)
    kept = data & (scored >= low_threshold)
    if not (kept & (scored >= threshold)).any():
        return labels, []
    residual = velocity - robust_background(velocity, cell_size, background_size, origin=origin)
    coarse = None  # against COARSE_BACKGROUND_RATIO times larger blocks, made when a wide region needs it
    components, _ = ndimage.label(kept, np.ones((3, 3), dtype=bool))
    found = []
    for index, window in enumerate(ndimage.find_objects(components), start=1):
        cells = components[window] == index
        if scored[window][cells].max() < threshold:  # no cell reaches the cut-off: not a detection
            continue
        n_cells = int(cells.sum())
        n_points = int(np.nansum(count[window][cells]))
        if n_cells < min_cells or n_points < min_points:
            continue
        if wider_than_blocks(window, cell_size, background_size):
            if coarse is None:
                blocks = COARSE_BACKGROUND_RATIO * background_size
                coarse = velocity - robust_background(velocity, cell_size, blocks, origin=origin)
            values = coarse[window][cells]
        else:
            values = residual[window][cells]
        values = values[np.isfinite(values)]
        if values.size == 0:  # no background (too little data anywhere): nothing to measure against
            continue
        mean = float(values.mean())
        peak = float(values[np.argmax(np.abs(values))])
        if abs(mean) < min_velocity and abs(peak) < STRONG_PEAK_RATIO * min_velocity:
            continue
        found.append(
            {
                "window": window,
                "cells": cells,
                "score": float(probability[window][cells].max()),
                "n_cells": n_cells,
                "n_points": n_points,
                "mean_velocity": mean,
                "peak_velocity": peak,
                "sign": "subsidence" if mean < 0 else "uplift",
                "mean_probability": float(probability[window][cells].mean()),
            }
        )
    regions = number_regions(found, labels)
    return labels, regions


def wider_than_blocks(window, cell_size, background_size):
    """Whether a region's bounding box (a pair of slices) spans more than one block of the robust background."""
    rows, cols = window
    return max(rows.stop - rows.start, cols.stop - cols.start) * cell_size > background_size
