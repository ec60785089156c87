"""What every detector reports of a region's velocity, and the split of candidate regions by sign.

One definition for all detectors (threshold, Gi*, ADA, CNN, and the chunked CNN regions of
:mod:`defoscan.regions_store`):

- ``relative`` velocity: the gridded velocity less the local robust background
  (:func:`defoscan.threshold.robust_background`, blocks ``background_size`` across; blocks
  :data:`COARSE_BACKGROUND_RATIO` times larger for a region whose parent component is wider than a block, since the
  small blocks would absorb its mean);
- ``mean_velocity``, ``peak_velocity``: the velocities as gridded (what velocity.tif shows), mean over the region's
  cells and the value at its *peak cell*, the cell of greatest ``|relative|``;
- ``mean_relative``, ``peak_relative``: the same against the background (the peak at the same cell);
- ``background_velocity``: the mean background under the region, so ``mean_velocity = background_velocity +
  mean_relative``;
- ``sign``: ``subsidence`` if ``mean_relative < 0`` else ``uplift`` (below ``-ZERO``, a rounding tolerance).

No region holds cells of both signs of the relative velocity (:func:`sign_parts`), so ``sign``, ``mean_relative``
and ``peak_relative`` always agree.
"""

import numpy as np
from scipy import ndimage

# A region wider than the background's blocks is measured against blocks this many times larger: the small blocks
# would absorb its mean (a 20 km subsidence bowl under 5 km blocks; docs/EVALUATION.md).
COARSE_BACKGROUND_RATIO = 4.0
# mm/yr: a relative velocity above -ZERO counts as uplift (>= 0). Far below what InSAR resolves; it only keeps the
# last bits of interpolation (a flat map's background is 3.0000000000000004) from splitting a region.
ZERO = 1e-6
EIGHT = np.ones((3, 3), dtype=bool)
SIGNS = ("subsidence", "uplift")


def wider_than_blocks(window, cell_size, background_size):
    """Whether a region's bounding box (a pair of slices) spans more than one block of the robust background."""
    rows, cols = window
    return max(rows.stop - rows.start, cols.stop - cols.start) * cell_size > background_size


class Relative:
    """Velocity less the local robust background, the coarse background made only when a wide region needs it.

    Parameters
    ----------
    velocity : numpy.ndarray
        Gridded velocity (mm/yr), NaN where no data.
    cell_size, background_size : float
        Metres.
    origin : (int, int)
        Global index of ``velocity[0, 0]``, for the background's blocks.
    fine : numpy.ndarray, optional
        The relative velocity against ``background_size`` blocks, if the caller has it already.
    """

    def __init__(self, velocity, cell_size, background_size, origin=(0, 0), fine=None):
        from defoscan.threshold import robust_background  # here: threshold imports this module

        self._background = robust_background
        self.velocity = np.asarray(velocity, dtype=np.float64)
        self.cell_size, self.background_size, self.origin = cell_size, background_size, origin
        if fine is None:
            fine = self.velocity - self._background(self.velocity, cell_size, background_size, origin=origin)
        self.fine = fine
        self._coarse = None

    def coarse(self):
        """Relative velocity against :data:`COARSE_BACKGROUND_RATIO` times larger blocks."""
        if self._coarse is None:
            blocks = COARSE_BACKGROUND_RATIO * self.background_size
            background = self._background(self.velocity, self.cell_size, blocks, origin=self.origin)
            self._coarse = self.velocity - background
        return self._coarse

    def for_window(self, window):
        """The relative velocity a component of bounding box ``window`` is measured against (whole map)."""
        return self.coarse() if wider_than_blocks(window, self.cell_size, self.background_size) else self.fine


def sign_parts(window, cells, relative):
    """Split a component into its 8-connected parts of one sign of the relative velocity.

    Parameters
    ----------
    window : tuple of slice
        The component's bounding box on the map.
    cells : numpy.ndarray of bool
        Its cells within the window.
    relative : numpy.ndarray
        Relative velocity within the window; cells where it is NaN go to neither part.

    Returns
    -------
    list of (str, tuple of slice, numpy.ndarray of bool)
        ``(sign, window, cells)`` per part, subsidence parts first, each in ``ndimage.label`` order; windows on the
        map, cells within them.
    """
    parts = []
    down = is_subsidence(relative)
    for sign, side in zip(SIGNS, (down, ~down & np.isfinite(relative)), strict=True):
        components, _ = ndimage.label(cells & side, EIGHT)
        for index, sub in enumerate(ndimage.find_objects(components), start=1):
            part = (
                slice(window[0].start + sub[0].start, window[0].start + sub[0].stop),
                slice(window[1].start + sub[1].start, window[1].start + sub[1].stop),
            )
            parts.append((sign, part, components[sub] == index))
    return parts


def velocity_attributes(velocity, relative):
    """The velocity attributes of a region from its cells' absolute and relative velocities.

    Parameters
    ----------
    velocity, relative : numpy.ndarray
        1-D, the region's cells as gridded and against the background (mm/yr); cells where either is NaN are
        left out.

    Returns
    -------
    dict or None
        ``mean_velocity``, ``peak_velocity``, ``mean_relative``, ``peak_relative``, ``background_velocity``,
        ``sign``; None if no cell has both values.
    """
    velocity, relative = np.asarray(velocity, dtype=np.float64), np.asarray(relative, dtype=np.float64)
    finite = np.isfinite(velocity) & np.isfinite(relative)
    if not finite.any():
        return None
    velocity, relative = velocity[finite], relative[finite]
    peak = int(np.argmax(np.abs(relative)))  # first among equal magnitudes, as numpy's argmax
    return attributes_from_sums(
        float(velocity.sum()), float(relative.sum()), int(velocity.size), float(velocity[peak]), float(relative[peak])
    )


def attributes_from_sums(sum_velocity, sum_relative, n, peak_velocity, peak_relative):
    """:func:`velocity_attributes` from sums (the chunked regions accumulate them): the one place of the rules."""
    mean_velocity, mean_relative = sum_velocity / n, sum_relative / n
    return {
        "mean_velocity": mean_velocity,
        "peak_velocity": peak_velocity,
        "mean_relative": mean_relative,
        "peak_relative": peak_relative,
        "background_velocity": mean_velocity - mean_relative,
        "sign": "subsidence" if is_subsidence(mean_relative) else "uplift",
    }


def is_subsidence(relative):
    """Whether relative velocities count as subsidence (below ``-ZERO``); NaN is not."""
    return np.asarray(relative) < -ZERO


def strong_enough(attributes, min_velocity, strong_peak_ratio):
    """The velocity floor: ``|mean_relative| >= min_velocity`` or ``|peak_relative| >= ratio * min_velocity``."""
    return abs(attributes["mean_relative"]) >= min_velocity or abs(attributes["peak_relative"]) >= (
        strong_peak_ratio * min_velocity
    )


def first_cell(window, cells, width):
    """Global row-major index (on a map ``width`` cells wide) of a region's first cell: the last tie-break."""
    rows, cols = np.nonzero(cells)
    return int((window[0].start + rows[0]) * width + window[1].start + cols[0])
