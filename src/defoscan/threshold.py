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

from defoscan.labels import number_regions
from defoscan.region_attributes import Relative, first_cell, is_subsidence, velocity_attributes
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
    noise_floor : float
        For the CNN's regions (the detectors share these floors): the mean velocity against the background a
        region needs, in robust noise sigmas of the map (:mod:`defoscan.noise_level`), when that is more than
        ``min_velocity``; 0 switches it off.
    """

    k: float = 3.0
    background_size: float = 5000.0
    min_velocity: float = 2.0
    gap: int = 1
    min_cells: int = 4
    min_points: int = 4
    noise_floor: float = 1.5

    def as_dict(self):
        """Plain dict, for run.json."""
        return asdict(self)


def block_size(cell_size, background_size):
    """Cells across a block of the robust background (at least one)."""
    return max(1, int(round(background_size / cell_size)))


def block_medians(velocity, cell_size, background_size, *, origin=(0, 0), min_valid=10):
    """Median velocity of every block of the global block lattice that the map overlaps.

    Blocks are ``block = background_size / cell_size`` cells across (rounded) and anchored to the global grid: their
    edges lie at global cell indices that are whole multiples of ``block``, wherever the array starts. The map is read
    one band of block rows at a time (a band spans the map's width), so ``velocity`` may be a Zarr array larger than
    memory; memory is one band plus one number per block.

    Parameters
    ----------
    velocity : array-like
        2-D, NaN where no data; anything that slices to numpy arrays (numpy, Zarr).
    cell_size : float
        Metres.
    background_size : float
        Metres across a block.
    origin : (int, int)
        Global ``(row, column)`` index of ``velocity[0, 0]`` (:func:`defoscan.fill.tiling.grid_origin`).
    min_valid : int
        Cells with data a block needs to count (or all the map's cells with data, if fewer); emptier blocks take
        their nearest counted block's median.

    Returns
    -------
    medians : numpy.ndarray of float64
        One value per block, every block filled; all NaN if no block counts.
    first : (int, int)
        Global block index of ``medians[0, 0]`` (block ``(i, j)`` covers global cells ``[i block, (i + 1) block)``
        by ``[j block, (j + 1) block)``).
    """
    block = block_size(cell_size, background_size)
    height, width = velocity.shape
    first = (int(origin[0]) // block, int(origin[1]) // block)
    top, left = int(origin[0]) - first[0] * block, int(origin[1]) - first[1] * block  # lattice cells before the map
    rows, cols = -(-(top + height) // block), -(-(left + width) // block)
    counts = np.zeros((rows, cols), dtype=np.int64)
    medians = np.full((rows, cols), np.nan)
    for i in range(rows):
        r0, r1 = max(i * block - top, 0), min((i + 1) * block - top, height)
        band = np.full((block, cols * block), np.nan)
        band[r0 + top - i * block : r1 + top - i * block, left : left + width] = np.asarray(
            velocity[r0:r1, :], dtype=np.float64
        )
        blocks = band.reshape(block, cols, block).transpose(1, 0, 2).reshape(cols, -1)
        counts[i] = np.isfinite(blocks).sum(axis=1)
        some = counts[i] > 0
        if some.any():
            medians[i, some] = np.nanmedian(blocks[some], axis=1)
    total = int(counts.sum())
    enough = counts >= min(min_valid, total)
    if total == 0 or not enough.any():
        return np.full((rows, cols), np.nan), first
    # Empty blocks (sea, gaps) take the nearest counted block's median so interpolation has values everywhere.
    nearest = ndimage.distance_transform_edt(~enough, return_distances=False, return_indices=True)
    return medians[tuple(nearest)], first


def background_at(medians, first, cell_size, background_size, origin, shape):
    """The robust background on a rectangle of cells, interpolated bilinearly between block medians.

    The block grid is extended linearly by one block on every side (so a ramp is removed out to the map's edges),
    and each cell takes the bilinear interpolation at its centre between block centres. A cell's value depends only
    on ``medians`` and its global index: any rectangle gives the same numbers as the whole map.

    Parameters
    ----------
    medians, first
        From :func:`block_medians` on the whole map.
    cell_size, background_size : float
        As given to :func:`block_medians`.
    origin : (int, int)
        Global ``(row, column)`` index of the rectangle's first cell.
    shape : (int, int)
        Rows and columns of the rectangle.

    Returns
    -------
    numpy.ndarray of float64
        Background at every cell of the rectangle (NaN everywhere if no block counted).
    """
    block = block_size(cell_size, background_size)
    height, width = (int(v) for v in shape)
    if not np.isfinite(medians).any():
        return np.full((height, width), np.nan)
    for axis in (0, 1):
        if medians.shape[axis] > 1:
            first_, second = np.take(medians, [0], axis), np.take(medians, [1], axis)
            last, before = np.take(medians, [-1], axis), np.take(medians, [-2], axis)
            medians = np.concatenate([2 * first_ - second, medians, 2 * last - before], axis=axis)
        else:
            medians = np.concatenate([medians] * 3, axis=axis)
    # Cell centres in the extended block-centre coordinates, from the cells' offsets to the first block's edge.
    row0, col0 = int(origin[0]) - first[0] * block, int(origin[1]) - first[1] * block
    ry = (np.arange(row0, row0 + height) + 0.5) / block + 0.5
    rx = (np.arange(col0, col0 + width) + 0.5) / block + 0.5
    grid_y, grid_x = np.meshgrid(ry, rx, indexing="ij")
    return ndimage.map_coordinates(medians, [grid_y, grid_x], order=1, mode="nearest")


def robust_background(velocity, cell_size, background_size, min_valid=10, *, origin=(0, 0)):
    """Median velocity in large blocks, interpolated bilinearly to every cell.

    :func:`block_medians` then :func:`background_at` on the whole array: the blocks lie on the global block lattice,
    so a map's background can also be computed chunk by chunk (medians once, then each chunk) with the same numbers.

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
    origin : (int, int)
        Global ``(row, column)`` index of ``velocity[0, 0]``; blocks have edges at global indices that are whole
        multiples of the block size. The default anchors them to the array's corner.

    Returns
    -------
    numpy.ndarray
        Background at every cell (finite wherever the map has any data).
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    medians, first = block_medians(velocity, cell_size, background_size, origin=origin, min_valid=min_valid)
    return background_at(medians, first, cell_size, background_size, origin, velocity.shape)


def z_region(window, footprint, counted, sign, velocity, relative, count, z_magnitude, k, min_cells, min_points):
    """A candidate region of the z-score detectors (threshold, Gi* hotspots, active deformation areas), or None.

    The cells that count are those of ``counted`` whose relative velocity has the region's sign (so ``sign``,
    ``mean_relative`` and ``peak_relative`` agree, :mod:`defoscan.region_attributes`); the region needs
    ``min_cells`` of them and ``min_points`` points.

    Parameters
    ----------
    window : tuple of slice
        The region's bounding box.
    footprint : numpy.ndarray of bool or None
        Its cells within the window written to the label map with the counted cells (gaps bridged); None: the
        counted cells alone.
    counted : numpy.ndarray of bool
        Within the window: the cells the detector flagged.
    sign : str
        ``subsidence`` or ``uplift``, the detector's pass.
    velocity : numpy.ndarray
        The gridded velocity (whole map).
    relative : defoscan.region_attributes.Relative
    count : numpy.ndarray
        Points per cell (whole map).
    z_magnitude : numpy.ndarray
        ``|z|`` per cell (whole map), in the detector's units.
    k : float
        The detector's ``|z|`` cut-off: the score rises from 0 at ``mean_z = k`` with size and strength.
    min_cells, min_points : int

    Returns
    -------
    dict or None
        ``window``, ``cells``, ``first``, ``score``, ``n_cells``, ``n_points``, the velocity attributes of
        :func:`defoscan.region_attributes.velocity_attributes`, ``mean_z``; for
        :func:`defoscan.labels.number_regions`.
    """
    rel = relative.for_window(window)[window]
    down = is_subsidence(rel)
    counted = counted & (down if sign == "subsidence" else ~down & np.isfinite(rel))
    n_cells = int(counted.sum())
    n_points = int(np.nansum(count[window][counted]))
    if n_cells < min_cells or n_points < min_points or n_cells == 0:
        return None
    attributes = velocity_attributes(velocity[window][counted], rel[counted])
    mean_z = float(z_magnitude[window][counted].mean())
    cells = counted if footprint is None else footprint | counted
    return {
        "window": window,
        "cells": cells,
        "first": first_cell(window, cells, velocity.shape[1]),
        "score": float(1.0 - np.exp(-(mean_z - k) * np.sqrt(n_cells) / k)),
        "n_cells": n_cells,
        "n_points": n_points,
        **attributes,
        "mean_z": mean_z,
    }


def threshold_detect(velocity, count, cell_size, parameters=None, *, origin=(0, 0)):
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
    origin : (int, int)
        Global ``(row, column)`` index of ``velocity[0, 0]``, for the background's blocks
        (:func:`robust_background`).

    Returns
    -------
    labels : numpy.ndarray of int32
        Region number of each cell of a region's footprint (kept cells and the gaps bridged between them), 0
        elsewhere. Regions are numbered from 1 by decreasing score.
    regions : list of dict
        Per region: ``label``, ``score``, ``n_cells`` (kept cells), ``n_points``, the velocity attributes of
        :mod:`defoscan.region_attributes` (``mean_velocity``, ``peak_velocity``, ``mean_relative``,
        ``peak_relative``, ``background_velocity``, ``sign``), ``mean_z``. The two signs' footprints are disjoint:
        a gap cell bridged by both signs' closings goes to neither, and a sign's closing never takes the other
        sign's kept cells.
    noise : dict
        ``sigma`` (mm/yr) and the background's median, for the run record.
    """
    p = parameters or ThresholdParameters()
    background = robust_background(velocity, cell_size, p.background_size, origin=origin)
    residual = velocity - background
    sigma = robust_sigma(residual)
    labels = np.zeros(velocity.shape, dtype=np.int32)
    if not np.isfinite(sigma) or sigma <= 0:
        return labels, [], {"sigma_mm_yr": sigma}
    z = residual / sigma
    relative = Relative(velocity, cell_size, p.background_size, origin, fine=residual)
    structure = np.ones((3, 3), dtype=bool)
    strong = np.abs(residual) >= p.min_velocity
    kept = {"subsidence": (z < -p.k) & strong, "uplift": (z > p.k) & strong}
    closed = {
        sign: ndimage.binary_closing(cells, structure, iterations=p.gap, border_value=0) | cells
        for sign, cells in kept.items()
    }
    # Disjoint footprints (issue 16: one label map held both and one sign overwrote the other's regions).
    footprints = {
        "subsidence": closed["subsidence"] & ~closed["uplift"] | kept["subsidence"],
        "uplift": closed["uplift"] & ~closed["subsidence"] | kept["uplift"],
    }
    magnitude = np.abs(z)
    found = []
    for sign, footprint in footprints.items():
        components, n = ndimage.label(footprint, structure)
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            region = components[window] == index  # work inside the region's bounding box: cheap on big maps
            candidate = z_region(
                window,
                region,
                region & kept[sign][window],
                sign,
                velocity,
                relative,
                count,
                magnitude,
                p.k,
                p.min_cells,
                p.min_points,
            )
            if candidate is not None:
                found.append(candidate)
    regions = number_regions(found, labels)  # by score; ties (rare) by position: deterministic numbering
    return labels, regions, {"sigma_mm_yr": float(sigma), "background_median_mm_yr": float(np.nanmedian(background))}
