"""The baseline detector: simple thresholding, the method the paper argues against.

It stays in the project as the baseline every later detector must beat. Steps, on a gridded velocity map:

1. Robust background: the median velocity of blocks ``background_size`` metres across, interpolated bilinearly
   between block centres, is subtracted. Reference offsets, ramps and regional trends go; signals much smaller than
   a block stay.
2. Noise units: the residual is divided by its robust standard deviation, ``1.4826 * MAD`` over all cells with data.
3. Cells with ``|z| > k`` and a background-free velocity of at least ``min_velocity`` are kept, subsidence and
   uplift separately; the velocity floor stops a very quiet map from flagging motion below what InSAR velocities
   resolve (about 2 mm/yr). Kept cells no more than ``gap`` empty cells
   apart are joined (morphological closing), so sparse points of one area form one region.
4. Connected components (8-connectivity) with fewer than ``min_cells`` kept cells or ``min_points`` points are
   dropped.

Each region's ``score`` ranks it, it is not a calibrated probability: ``1 - exp(-(mean|z| - k) * sqrt(n) / k)`` for
``n`` kept cells of mean ``|z|``, so a region scores higher the further above the threshold and the larger it is.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from defoscan.robust import robust_sigma


@dataclass(frozen=True)
class ThresholdParameters:
    """Parameters of the thresholding detector.

    Parameters
    ----------
    k : float
        Threshold in noise units (robust standard deviations of the background-free velocity).
    background_size : float
        Metres across the blocks whose medians form the background.
    min_velocity : float
        mm/yr a kept cell's background-free velocity must reach.
    gap : int
        Empty cells bridged between kept cells of one region.
    min_cells : int
        Kept cells a region needs.
    min_points : int
        Points a region needs (sum of the cells' point counts).
    """

    k: float = 3.0
    background_size: float = 5000.0
    min_velocity: float = 2.0
    gap: int = 1
    min_cells: int = 4
    min_points: int = 4

    def as_dict(self):
        """Plain dict, for run.json."""
        return asdict(self)


def robust_background(velocity, cell_size, background_size, min_valid=10):
    """Median velocity in large blocks, interpolated bilinearly to every cell.

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D, NaN where no data.
    cell_size : float
        Metres.
    background_size : float
        Metres across a block.
    min_valid : int
        Cells with data a block needs to count; emptier blocks take their nearest counted block's value.

    Returns
    -------
    numpy.ndarray
        Background at every cell (finite wherever the map has any data).
    """
    block = max(1, int(round(background_size / cell_size)))
    height, width = velocity.shape
    rows, cols = -(-height // block), -(-width // block)
    padded = np.full((rows * block, cols * block), np.nan, dtype=np.float64)
    padded[:height, :width] = velocity
    blocks = padded.reshape(rows, block, cols, block).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    counts = np.isfinite(blocks).sum(axis=2)
    medians = np.full((rows, cols), np.nan)
    enough = counts >= min(min_valid, int(np.isfinite(velocity).sum()))
    if not enough.any():
        return np.full(velocity.shape, np.nan)
    medians[enough] = np.nanmedian(blocks[enough], axis=1)
    # Empty blocks (sea, gaps) take the nearest counted block's median so interpolation has values everywhere.
    nearest = ndimage.distance_transform_edt(~enough, return_distances=False, return_indices=True)
    medians = medians[tuple(nearest)]
    # Extend by one block on every side, linearly, so a ramp is removed out to the map's edges too.
    for axis in (0, 1):
        if medians.shape[axis] > 1:
            first, second = np.take(medians, [0], axis), np.take(medians, [1], axis)
            last, before = np.take(medians, [-1], axis), np.take(medians, [-2], axis)
            medians = np.concatenate([2 * first - second, medians, 2 * last - before], axis=axis)
        else:
            medians = np.concatenate([medians] * 3, axis=axis)
    # Cell centres in the extended block-centre coordinates, for bilinear interpolation between block medians.
    ry = (np.arange(height) + 0.5) / block + 0.5
    rx = (np.arange(width) + 0.5) / block + 0.5
    grid_y, grid_x = np.meshgrid(ry, rx, indexing="ij")
    return ndimage.map_coordinates(medians, [grid_y, grid_x], order=1, mode="nearest")


def threshold_detect(velocity, count, cell_size, parameters=None):
    """Find regions whose velocity departs from the background by more than ``k`` noise units.

    Parameters
    ----------
    velocity : numpy.ndarray
        Gridded velocity (mm/yr), NaN where no data.
    count : numpy.ndarray
        Points per cell.
    cell_size : float
        Metres.
    parameters : ThresholdParameters, optional

    Returns
    -------
    labels : numpy.ndarray of int32
        Region number of each cell of a region's footprint (kept cells and the gaps bridged between them), 0
        elsewhere. Regions are numbered from 1 by decreasing score.
    regions : list of dict
        Per region: ``label``, ``score``, ``n_cells`` (kept cells), ``n_points``, ``mean_velocity``,
        ``peak_velocity`` (mm/yr, the kept cell of largest magnitude, signed), ``sign``, ``mean_z``.
    noise : dict
        ``sigma`` (mm/yr) and the background's median, for the run record.
    """
    p = parameters or ThresholdParameters()
    background = robust_background(velocity, cell_size, p.background_size)
    residual = velocity - background
    sigma = robust_sigma(residual)
    labels = np.zeros(velocity.shape, dtype=np.int32)
    if not np.isfinite(sigma) or sigma <= 0:
        return labels, [], {"sigma_mm_yr": sigma}
    z = residual / sigma
    found = []
    structure = np.ones((3, 3), dtype=bool)
    strong = np.abs(residual) >= p.min_velocity
    for sign, kept in (("subsidence", (z < -p.k) & strong), ("uplift", (z > p.k) & strong)):
        footprint = ndimage.binary_closing(kept, structure, iterations=p.gap, border_value=0) | kept
        components, n = ndimage.label(footprint, structure)
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            region = components[window] == index  # work inside the region's bounding box: cheap on big maps
            cells = region & kept[window]
            n_cells = int(cells.sum())
            n_points = int(count[window][cells].sum())
            if n_cells < p.min_cells or n_points < p.min_points:
                continue
            values = velocity[window][cells]
            mean_z = float(np.abs(z[window][cells]).mean())
            found.append(
                {
                    "window": window,
                    "footprint": region,
                    "score": float(1.0 - np.exp(-(mean_z - p.k) * np.sqrt(n_cells) / p.k)),
                    "n_cells": n_cells,
                    "n_points": n_points,
                    "mean_velocity": float(values.mean()),
                    "peak_velocity": float(values[np.argmax(np.abs(values))]),
                    "sign": sign,
                    "mean_z": mean_z,
                }
            )
    # Rank by score; ties (rare) by position so the numbering is deterministic.
    found.sort(key=lambda r: (-r["score"], r["window"][0].start, r["window"][1].start))
    regions = []
    for number, region in enumerate(found, start=1):
        window, footprint = region.pop("window"), region.pop("footprint")
        labels[window][footprint & (labels[window] == 0)] = number
        regions.append({"label": number, **region})
    return labels, regions, {"sigma_mm_yr": float(sigma), "background_median_mm_yr": float(np.nanmedian(background))}
