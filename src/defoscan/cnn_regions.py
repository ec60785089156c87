"""Regions from a probability map: the CNN detector's counterpart of :func:`defoscan.threshold.threshold_detect`.

Hysteresis: cells with data whose probability reaches a lower cut-off (``low_threshold``) are joined into
8-connected regions, and a region is kept if one of its cells reaches the cut-off itself — so a detection is
decided at the cut-off and outlined at the lower one, and one signal whose probability dips inside does not break
into fragments. A kept component is then split by the sign of its relative velocity (velocity less the local
robust background, :mod:`defoscan.region_attributes`) into 8-connected parts: subsidence and uplift cells are never
one region (a crater's collapse beside its inflation are two detections). Each part is a region if one of its
cells reaches the cut-off (each detection is decided at the cut-off: on 6 validation scenes, seed 8, this kept F1
0.574 -> 0.582 and the signal-free false alarms 935 -> 914 per 1000 km², against the parts inheriting their
component's seed), it has ``min_cells`` cells, ``min_points`` points and motion above the velocity floor; its
``score`` is its greatest
probability, its velocity attributes those of :func:`defoscan.region_attributes.velocity_attributes` (as gridded
and against the background).
"""

import numpy as np

from defoscan.region_attributes import COARSE_BACKGROUND_RATIO  # noqa: F401 (re-exported: the docs name it here)

# detect's lower cut-off, as a share of the cut-off: chosen on 100 validation scenes (seed 16; best IoU 0.42 at
# 0.4-0.5 against 0.32 without hysteresis, the same 4 % of negative scenes raised; docs/SCAN.md).
LOW_THRESHOLD_RATIO = 0.5
# A region whose mean is under min_velocity is still kept if its peak reaches this many times min_velocity: a
# crater's subsidence beside its uplift averages out (chosen on validation scenes, docs/EVALUATION.md).
STRONG_PEAK_RATIO = 5.0


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
        Cells and points (sum of the cells' counts) a region (one sign's part of a component) needs.
    min_velocity : float
        Magnitude of mean velocity against the background (``mean_relative``, mm/yr) a region needs, unless its
        ``peak_relative`` reaches
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
        Per region: ``label``, ``score`` (greatest probability), ``n_cells``, ``n_points``, ``mean_velocity``,
        ``peak_velocity`` (as gridded), ``mean_relative``, ``peak_relative`` (against the background — against
        :data:`COARSE_BACKGROUND_RATIO` times larger blocks when the component is wider than a block; the peak is
        the cell of greatest ``|relative|``), ``background_velocity``, ``sign`` (``subsidence`` if
        ``mean_relative`` is negative, else ``uplift``; every cell's relative velocity has that sign),
        ``mean_probability``.

    See also
    --------
    defoscan.threshold.threshold_detect : the baseline, same outputs.
    """
    import zarr
    from zarr.storage import MemoryStore

    from defoscan.regions_store import regions_store
    from defoscan.store import create_array

    probability = np.asarray(probability, dtype=np.float32)
    chunk = max(max(probability.shape), 1)  # one chunk: the map held in memory
    group = zarr.open_group(MemoryStore(), mode="w")
    group.attrs.update(origin=[int(origin[0]), int(origin[1])], shape=[int(n) for n in probability.shape])
    create_array(group, "velocity", "float32", chunk, np.nan)[...] = np.asarray(velocity, dtype=np.float32)
    create_array(group, "count", "uint32", chunk, 0)[...] = np.asarray(count, dtype=np.uint32)
    create_array(group, "probability", "float32", chunk, np.nan)[...] = probability
    regions = regions_store(
        group.store,
        cell_size=cell_size,
        threshold=threshold,
        low_threshold=low_threshold,
        background_size=background_size,
        min_cells=min_cells,
        min_points=min_points,
        min_velocity=min_velocity,
        chunk=chunk,
    )
    return group["labels"][...], regions
