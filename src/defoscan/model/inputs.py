"""Window images for the network: one velocity window, how training and scanning both turn it into channels.

The same function serves training samples and windows cut from a real map, so what the network sees never differs
between the two. Steps:

1. The window's own reference is removed: the median of its cells with data is subtracted. An InSAR velocity map
   is relative to a reference point somewhere else, so a window's mean level carries no information; wrapping at
   2 mm/yr would turn an arbitrary offset into an arbitrary fringe phase.
2. The window is over-wrapped (:func:`defoscan.wrap.make_input`) in the recipe's mode, with a validity channel
   (1 where the window has data, 0 elsewhere; no-data cells are 0 in every channel).

A recipe is a plain dict (it is stored in the model card): ``mode`` (``enhanced``, ``single`` or ``raw``),
``intervals`` (mm/yr, or None for the mode's default), ``representation`` (``cos_sin`` or ``phase``), ``scale``
(mm/yr, for ``raw``), ``fill`` (whether windows are cut from the gap-filled map), ``window`` (cells per side),
``cell_size`` (metres, the training data's; the smallest for a network trained across scales, whose card also
holds ``cell_sizes``, the list, see :func:`defoscan.grid.model_cell_size`) and ``min_valid`` (the smallest share
of a window with data that the scanner reads: training windows, thinned by coverage dropout, go down to about 8 %;
the authors' 50 % would leave coasts, islands and rural land unscanned).
"""

import numpy as np

from defoscan.wrap import ENHANCED_INTERVALS, channel_names, make_input

# The input the shipped model reads: fringes at the radar's own interval, 27.7 mm/yr, which beat the enhanced
# over-wrapping and the raw velocity at equal training in the ablation (docs/MODEL.md).
DEFAULT_RECIPE = {
    "mode": "single",
    "intervals": None,
    "representation": "cos_sin",
    "scale": 20.0,
    "fill": False,
    "window": 128,
    "cell_size": 50.0,
    "min_valid": 0.1,
}
# Keys a model card's recipe must hold; the others (``min_valid``) have a default where they are read.
REQUIRED_KEYS = ("mode", "intervals", "representation", "scale", "fill", "window", "cell_size")


def recipe_with(**changes):
    """The default recipe with some keys changed (unknown keys refused).

    Returns
    -------
    dict
    """
    unknown = set(changes) - set(DEFAULT_RECIPE)
    if unknown:
        raise ValueError(f"unknown recipe keys: {', '.join(sorted(unknown))}")
    recipe = {**DEFAULT_RECIPE, **changes}
    if recipe["mode"] == "enhanced" and "intervals" not in changes:
        recipe["intervals"] = list(ENHANCED_INTERVALS)
    if recipe["mode"] == "single" and "intervals" not in changes:
        recipe["intervals"] = None  # the radar's own half wavelength per year
    if recipe["mode"] == "raw":
        recipe["intervals"] = None
    return recipe


def input_channels(recipe):
    """Number of channels :func:`window_input` makes with ``recipe``."""
    return len(input_names(recipe))


def input_names(recipe):
    """Channel names, e.g. ``["cos@2", "sin@2", ..., "valid"]``."""
    return channel_names(
        mode=recipe["mode"], intervals=recipe["intervals"], representation=recipe["representation"], with_validity=True
    )


def window_input(velocity, recipe):
    """Channels of one window (or a stack of windows).

    Parameters
    ----------
    velocity : numpy.ndarray
        ``(rows, columns)`` or ``(n, rows, columns)``, mm/yr, NaN = no data.
    recipe : dict
        See the module notes.

    Returns
    -------
    numpy.ndarray of float32
        ``(channels, rows, columns)`` or ``(n, channels, rows, columns)``.
    """
    velocity = np.asarray(velocity, dtype=np.float32)
    if velocity.ndim == 3:
        return np.stack([window_input(v, recipe) for v in velocity])
    if velocity.ndim != 2:
        raise ValueError(f"a window is 2-D (or a stack of them), got shape {velocity.shape}")
    valid = np.isfinite(velocity)
    centred = velocity - np.median(velocity[valid]) if valid.any() else velocity
    return make_input(
        centred,
        mode=recipe["mode"],
        intervals=recipe["intervals"],
        representation=recipe["representation"],
        scale=recipe["scale"],
        with_validity=True,
    )
