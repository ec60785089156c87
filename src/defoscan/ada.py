"""Active deformation areas (ADA): a baseline detector of the evaluation (issue 7), after ADAfinder.

ADAfinder (Barra et al. 2017; Tomás et al. 2019) marks a measurement point *active* when its velocity departs from
the stable ground by more than ``k`` times the standard deviation of the stable points (2 by default), and an
*active deformation area* where at least ``min_points`` active points lie together, each within a linking distance
of another. Applied here to the gridded map as the other detectors are: cells are the points, weighted by their
point counts for ``min_points``. The stable reference is estimated from the map itself, robustly: the mean and
standard deviation of the cells within ``2.5`` standard deviations of the mean, iterated (sigma clipping), so the
deforming areas do not inflate it. Unlike :func:`defoscan.threshold.threshold_detect` no regional background is
removed (ADAfinder works on referenced, calibrated velocities), and gaps up to the linking distance are bridged.
Same outputs as ``threshold_detect``.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from defoscan.labels import number_regions
from defoscan.region_attributes import Relative
from defoscan.threshold import z_region


@dataclass(frozen=True)
class AdaParameters:
    """Parameters of :func:`ada_detect`.

    Attributes
    ----------
    k : float
        Stable standard deviations an active cell departs by (ADAfinder's default 2).
    link : float
        Metres: active cells this close belong to one area.
    min_points : int
        Points an area needs (ADAfinder's default 5).
    min_cells : int
        Active cells an area needs.
    background_size : float
        Metres across the blocks of the robust background the areas' velocities are reported against
        (:mod:`defoscan.region_attributes`; detection itself is against the stable mean).
    """

    k: float = 2.0
    link: float = 100.0
    min_points: int = 5
    min_cells: int = 2
    background_size: float = 5000.0

    def as_dict(self):
        return asdict(self)


def stable_statistics(values, clip=2.5, iterations=10):
    """Mean and standard deviation of the stable cells, by iterated sigma clipping.

    Parameters
    ----------
    values : numpy.ndarray
        NaN where no data.
    clip : float
        Standard deviations beyond which a cell is set aside as not stable.
    iterations : int

    Returns
    -------
    mean, std : float
        NaN when there are no values.
    """
    finite = values[np.isfinite(values)].astype(np.float64)
    if finite.size == 0:
        return float("nan"), float("nan")
    kept = finite
    for _ in range(iterations):
        mean, std = kept.mean(), kept.std()
        inside = finite[np.abs(finite - mean) <= clip * std]
        if inside.size == kept.size or inside.size < 2:
            break
        kept = inside
    return float(kept.mean()), float(kept.std())


def ada_detect(velocity, count, cell_size, parameters=None, *, origin=(0, 0)):
    """Active deformation areas of a gridded map.

    Parameters
    ----------
    velocity : numpy.ndarray
        Gridded velocity (mm/yr), NaN where no data.
    count : numpy.ndarray
        Points per cell.
    cell_size : float
        Metres.
    parameters : AdaParameters, optional
    origin : (int, int)
        Global index of ``velocity[0, 0]``, for the blocks of the background the attributes are measured against.

    Returns
    -------
    labels, regions, noise
        As :func:`defoscan.threshold.threshold_detect` (the same velocity attributes, against the local robust
        background; an active cell whose relative velocity has the other sign does not count); ``mean_z`` in
        stable standard deviations of the departure from the stable mean; ``noise`` holds the stable mean and
        standard deviation.
    """
    p = parameters or AdaParameters()
    mean, std = stable_statistics(velocity)
    labels = np.zeros(velocity.shape, dtype=np.int32)
    noise = {"stable_mean_mm_yr": mean, "stable_std_mm_yr": std}
    if not np.isfinite(std) or std <= 0:
        return labels, [], noise
    departure = velocity - mean
    reach = max(int(np.floor(p.link / cell_size)), 1)
    structure = np.ones((3, 3), dtype=bool)
    relative = Relative(velocity, cell_size, p.background_size, origin)
    magnitude = np.abs(departure) / std
    found = []
    for sign, active in (("subsidence", departure < -p.k * std), ("uplift", departure > p.k * std)):
        # Link active cells within `reach` cells: grow each by half the gap, label, keep the active cells.
        grown = ndimage.binary_dilation(active, structure, iterations=max(reach // 2, 1)) if reach > 1 else active
        components, _ = ndimage.label(grown, structure)
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            cells = (components[window] == index) & active[window]
            candidate = z_region(
                window, None, cells, sign, velocity, relative, count, magnitude, p.k, p.min_cells, p.min_points
            )
            if candidate is not None:
                found.append(candidate)
    regions = number_regions(found, labels)
    return labels, regions, noise
