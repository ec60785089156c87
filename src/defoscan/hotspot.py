"""Getis-Ord Gi* hotspots: a baseline detector of the evaluation (issue 7), with the contract of ``threshold_detect``.

Gi* (Getis and Ord 1992; Ord and Getis 1995) asks, at every cell, whether the values within a distance of it are
larger (or smaller) than the map's mean by more than chance allows. With binary weights over the cells with data
within ``radius`` (the cell itself included), ``n`` cells with data, their mean ``m`` and standard deviation ``s``,
and ``W_i`` the cells with data around cell ``i``:

    Gi*_i = (sum_j x_j - m W_i) / (s sqrt((n W_i - W_i^2) / (n - 1)))

a z-score under the null of no spatial association. As used on InSAR velocities (hotspot analysis of PS maps), the
values are the velocities less the same robust background the other detectors remove
(:func:`defoscan.threshold.robust_background`), so a reference offset or a ramp is not a hotspot. Cells with
``|Gi*| >= z`` of one sign form 8-connected regions; a region needs ``min_cells`` cells and ``min_points`` points.
No correction for multiple testing is made, as in the usual hotspot maps: that is part of what the baseline is.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage, signal

from defoscan.labels import number_regions
from defoscan.region_attributes import Relative
from defoscan.threshold import robust_background, z_region


@dataclass(frozen=True)
class HotspotParameters:
    """Parameters of :func:`gistar_detect`.

    Attributes
    ----------
    radius : float
        Metres: the neighbourhood of the weights.
    z : float
        ``|Gi*|`` a cell needs (3: two-sided p of about 0.003).
    background_size, min_cells, min_points
        As for :class:`defoscan.threshold.ThresholdParameters`.
    """

    radius: float = 500.0
    z: float = 3.0
    background_size: float = 5000.0
    min_cells: int = 4
    min_points: int = 4

    def as_dict(self):
        return asdict(self)


def disc(radius_cells):
    """Binary weights of the cells within ``radius_cells`` of the centre (centre distances), as a square array."""
    r = int(np.floor(radius_cells))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    return (dy**2 + dx**2 <= radius_cells**2).astype(np.float64)


def getis_ord(values, radius_cells):
    """Gi* z-score of every cell with data (NaN elsewhere, and where the statistic is undefined).

    Parameters
    ----------
    values : numpy.ndarray
        2-D, NaN where no data.
    radius_cells : float
        Radius of the binary weights, in cells.

    Returns
    -------
    numpy.ndarray of float64
    """
    data = np.isfinite(values)
    n = int(data.sum())
    z = np.full(values.shape, np.nan)
    if n < 2:
        return z
    x = np.where(data, values, 0.0).astype(np.float64)
    mean = x[data].mean()
    s = np.sqrt(np.mean(x[data] ** 2) - mean**2)
    if not s > 0:
        return z
    kernel = disc(radius_cells)
    # Sums over each cell's neighbourhood by FFT convolution (the disc is symmetric), rounded counts exact.
    local = signal.fftconvolve(x, kernel, mode="same")
    weight = np.rint(signal.fftconvolve(data.astype(np.float64), kernel, mode="same"))
    spread = n * weight - weight**2
    good = data & (spread > 0)
    z[good] = (local[good] - mean * weight[good]) / (s * np.sqrt(spread[good] / (n - 1)))
    return z


def gistar_detect(velocity, count, cell_size, parameters=None, *, origin=(0, 0)):
    """Regions of significant Gi* hotspots (uplift) and coldspots (subsidence).

    Parameters
    ----------
    velocity : numpy.ndarray
        Gridded velocity (mm/yr), NaN where no data.
    count : numpy.ndarray
        Points per cell.
    cell_size : float
        Metres.
    parameters : HotspotParameters, optional
    origin : (int, int)
        Global index of ``velocity[0, 0]``, for the background's blocks.

    Returns
    -------
    labels, regions, noise
        As :func:`defoscan.threshold.threshold_detect`: regions numbered from 1 by decreasing score, with
        ``label``, ``score``, ``n_cells``, ``n_points``, the velocity attributes of
        :mod:`defoscan.region_attributes`, and ``mean_z`` (mean ``|Gi*|``); ``noise`` holds the residuals'
        standard deviation.
    """
    p = parameters or HotspotParameters()
    residual = velocity - robust_background(velocity, cell_size, p.background_size, origin=origin)
    z = getis_ord(residual, p.radius / cell_size)
    labels = np.zeros(velocity.shape, dtype=np.int32)
    relative = Relative(velocity, cell_size, p.background_size, origin, fine=residual)
    magnitude = np.abs(z)
    found = []
    for sign, kept in (("subsidence", z <= -p.z), ("uplift", z >= p.z)):  # NaN compares False
        components, _ = ndimage.label(kept, np.ones((3, 3), dtype=bool))
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            cells = components[window] == index
            # A Gi* cell of one sign may sit on a residual of the other (its neighbours decide): not counted.
            candidate = z_region(
                window, None, cells, sign, velocity, relative, count, magnitude, p.z, p.min_cells, p.min_points
            )
            if candidate is not None:
                found.append(candidate)
    regions = number_regions(found, labels)
    finite = residual[np.isfinite(residual)]
    return labels, regions, {"residual_std_mm_yr": float(finite.std()) if finite.size else None}
