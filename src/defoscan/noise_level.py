"""The map's own noise level, and the velocity floor a region must clear against it (issue 18).

A fixed floor (a region's mean 2 mm/yr from its surroundings, or its peak 10 mm/yr) lets a noisy map raise hundreds
of small regions: where residual atmosphere and point noise reach 3-5 mm/yr, blobs of that size are everywhere,
and the CNN, trained on quieter maps, takes some of them for deformation. The floor is therefore tied to the map's
noise: the robust standard deviation (1.4826 x MAD) of the gridded velocity against the robust background
(:func:`defoscan.threshold.robust_background`'s blocks). A region needs a mean of
``ThresholdParameters.noise_floor`` times it (or a peak :data:`defoscan.cnn_regions.STRONG_PEAK_RATIO` times
that), never less than the fixed floor. The median absolute deviation ignores the deformation itself as long as
it covers less than half the map.

Chosen on the validation splits only (issue 18's held-out benchmarks' validation scenes and the own suite's
validation scenes; docs/DESIGN-NOTES.md): 1.5 sigma.

The level is computed tile by tile on a global lattice of sample cells (every ``stride``-th row and column of the
global grid, ``stride`` chosen from the map's size so at most :data:`MAX_SAMPLES` cells are read): the same number
whatever the chunking, and bounded memory on a country's map.
"""

import numpy as np

from defoscan.robust import robust_sigma
from defoscan.threshold import background_at, block_medians

MAX_SAMPLES = 4_000_000  # cells the noise level is measured on at most


def sample_stride(shape, max_samples=MAX_SAMPLES):
    """Rows and columns between sample cells so that a map of ``shape`` gives at most ``max_samples`` of them."""
    cells = int(shape[0]) * int(shape[1])
    return max(1, int(np.ceil(np.sqrt(cells / max_samples))))


def noise_sigma(
    velocity, cell_size, background_size, *, origin=(0, 0), chunk=1024, max_samples=MAX_SAMPLES, medians=None
):
    """Robust standard deviation of the velocity against the robust background, mm/yr (module notes).

    Parameters
    ----------
    velocity : array-like
        2-D, NaN where no data; numpy or Zarr (read one tile at a time).
    cell_size, background_size : float
        Metres.
    origin : (int, int)
        Global ``(row, column)`` index of ``velocity[0, 0]``.
    chunk : int
        Tile side read at a time.
    max_samples : int
    medians : tuple, optional
        :func:`defoscan.threshold.block_medians` of ``velocity`` at ``background_size``, when already computed.

    Returns
    -------
    float
        NaN when the map has no data.
    """
    height, width = velocity.shape
    stride = sample_stride((height, width), max_samples)
    medians, first = medians or block_medians(velocity, cell_size, background_size, origin=origin)
    residuals = []
    # Sample rows/columns on the global lattice: global index a multiple of the stride.
    rows = np.flatnonzero((np.arange(height) + int(origin[0])) % stride == 0)
    cols = np.flatnonzero((np.arange(width) + int(origin[1])) % stride == 0)
    for r0 in range(0, height, chunk):
        r1 = min(r0 + chunk, height)
        tile_rows = rows[(rows >= r0) & (rows < r1)]
        if tile_rows.size == 0:
            continue
        for c0 in range(0, width, chunk):
            c1 = min(c0 + chunk, width)
            tile_cols = cols[(cols >= c0) & (cols < c1)]
            if tile_cols.size == 0:
                continue
            values = np.asarray(velocity[r0:r1, c0:c1], dtype=np.float64)
            background = background_at(
                medians, first, cell_size, background_size, (origin[0] + r0, origin[1] + c0), values.shape
            )
            picked = np.ix_(tile_rows - r0, tile_cols - c0)
            residual = (values - background)[picked]
            residuals.append(residual[np.isfinite(residual)])
    if not residuals or sum(part.size for part in residuals) == 0:
        return float("nan")
    return float(robust_sigma(np.concatenate(residuals)))


def region_floor(min_velocity, sigma, factor):
    """The velocity floor of a region, mm/yr: ``factor`` noise sigmas (0: none), never under ``min_velocity``."""
    if not np.isfinite(sigma):
        return float(min_velocity)
    return float(max(min_velocity, factor * sigma))
