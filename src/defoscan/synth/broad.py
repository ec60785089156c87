"""The broad condition mode: training windows far wider than the maps the fitted profiles describe (issue 18).

The shipped network was trained on conditions drawn around two real maps and failed on other worlds (held-out
benchmarks of issue 18): sparse data gridded at 100-1000 m, noise and correlation lengths it never saw in cells.
This mode draws the conditions of a window from wide ranges instead, so that one network can be trained at several
cell sizes (50, 100, 200 m) on the same 128-cell windows:

- **Noise** (:func:`draw_conditions`): atmosphere sigma 0.5-8 mm/yr and correlation length 0.3-50 km
  (log-uniform, *physical*: at 200 m cells a 300 m atmosphere is white-ish noise of 1.5 cells, at 50 m a blob of
  6 cells), shape 0.5-1.9; point noise 0.5-6 mm/yr (log-uniform); ramps 0-1 mm/yr per km; spikes 0-5 % of the
  observed cells; coverage 3-90 % of the cells (log-uniform; the project's real masks or its clustered model).
- **Hard negatives**: strong atmosphere (3-8 mm/yr) with blobs of 10-100 *cells* (the size of the signals below
  at every cell size), ramps 0.3-1 mm/yr per km, spikes 2-5 %.
- **Signals** (:func:`draw_source`): the project's kinds (:mod:`.sources`) drawn as usual, then stretched by a
  similarity factor ``cell_size / 50 m * U_log(0.4, 3)`` (the sources' own ranges were set for 50 m cells: this
  keeps the same sizes *in cells* at every cell size, from under one cell to several windows across) and scaled
  to a peak LOS rate of 1-500 mm/yr (log-uniform) over the window. Centres anywhere in the window, so large
  signals are cut by the window's edge.
- **Label** (:func:`seen_cells`): a positive must be *detectable*: at least ``MIN_SEEN`` observed cells of its mask
  where the deformation reaches :data:`DETECTION_SNR` times the window's noise (the robust spread of the
  atmosphere plus point noise over its observed cells). Without it, a 2 mm/yr bowl under 8 mm/yr of atmosphere
  would be labelled positive: a label no detector can learn, which teaches the network to fire on noise.

Everything here is plain functions of a ``numpy.random.Generator``; :mod:`.sample` holds the registry of modes.
"""

import numpy as np

from defoscan.synth import sources

RANGES = {
    "sigma": (0.5, 8.0),  # mm/yr, log-uniform
    "length": (300.0, 50_000.0),  # m, log-uniform
    "alpha": (0.5, 1.9),
    "point_noise": (0.5, 6.0),  # mm/yr, log-uniform
    "ramp_gradient": (0.0, 1.0),  # mm/yr per km
    "spike_rate": (0.0, 0.05),
    "spike_scale": (5.0, 20.0),  # mm/yr
    "coverage": (0.03, 0.9),  # share of cells, log-uniform
}
HARD = {
    "sigma": (3.0, 8.0),  # mm/yr, log-uniform
    "length_cells": (10.0, 100.0),  # cells, log-uniform: blobs the size of the signals at every cell size
    "ramp_gradient": (0.3, 1.0),
    "spike_rate": (0.02, 0.05),
}
REFERENCE_CELL = 50.0  # metres: the cell size the sources' own size ranges were set for
SIZE_FACTOR = (0.4, 3.0)  # log-uniform stretch of a source, on top of cell_size / REFERENCE_CELL
PEAK_RATE = (1.0, 500.0)  # mm/yr, log-uniform: the largest |LOS| of a source over the window
DETECTION_SNR = 2.0  # a seen cell counts for the class where |deformation| >= this times the window's noise


def _log_uniform(rng, bounds):
    return float(np.exp(rng.uniform(*np.log(bounds))))


def draw_conditions(rng, *, hard=False, cell_size=REFERENCE_CELL):
    """Noise, ramp, spikes and coverage of one window, from :data:`RANGES` (hard negatives: :data:`HARD`).

    Parameters
    ----------
    rng : numpy.random.Generator
    hard : bool
    cell_size : float
        Metres: the hard negatives' blobs are sized in cells.

    Returns
    -------
    dict
        As :func:`defoscan.synth.sample.draw_conditions`.
    """
    atmosphere = {
        "sigma": _log_uniform(rng, RANGES["sigma"]),
        "length": _log_uniform(rng, RANGES["length"]),
        "alpha": float(rng.uniform(*RANGES["alpha"])),
    }
    conditions = {
        "atmosphere": atmosphere,
        "point_noise": _log_uniform(rng, RANGES["point_noise"]),
        "ramp_gradient": float(rng.uniform(*RANGES["ramp_gradient"])),
        "spike_rate": float(rng.uniform(*RANGES["spike_rate"])),
        "spike_scale": float(rng.uniform(*RANGES["spike_scale"])),
        "spike_tail": 2.0,
        "coverage": _log_uniform(rng, RANGES["coverage"]),
        "coverage_params": None,
    }
    if hard:
        atmosphere["sigma"] = _log_uniform(rng, HARD["sigma"])
        atmosphere["length"] = _log_uniform(rng, HARD["length_cells"]) * float(cell_size)
        conditions["ramp_gradient"] = float(rng.uniform(*HARD["ramp_gradient"]))
        conditions["spike_rate"] = float(rng.uniform(*HARD["spike_rate"]))
    return conditions


def draw_source(rng, kind, shape, cell_size):
    """One source of ``kind``, stretched and scaled (see the module notes).

    The source is drawn in its own frame (:func:`defoscan.synth.sources.draw_source` over the window divided by the
    stretch), so evaluating it at ``(x / scale, y / scale)`` puts its centre in the window and makes it ``scale``
    times larger.

    Returns
    -------
    kind : str
    params : dict
        Of :func:`defoscan.synth.sources.draw_source`, in the stretched frame.
    similarity : dict
        ``scale`` (the stretch) and ``peak`` (mm/yr: the largest ``|LOS|`` of the source on the window's cells).
    """
    scale = float(cell_size) / REFERENCE_CELL * _log_uniform(rng, SIZE_FACTOR)
    width, height = shape[1] * cell_size / scale, shape[0] * cell_size / scale
    params, kind = sources.draw_source(kind, rng, (0.0, width, -height, 0.0))
    return kind, params, {"scale": scale, "peak": _log_uniform(rng, PEAK_RATE)}


def window_noise(noise_field, observed):
    """Robust spread (1.4826 MAD) of the stationary noise over a window's observed cells, mm/yr (0 if none)."""
    values = noise_field[observed]
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def seen_cells(deformation, mask, observed, noise_field):
    """Observed cells of the mask where the deformation is detectable (:data:`DETECTION_SNR` x the noise).

    Parameters
    ----------
    deformation, noise_field : numpy.ndarray
        LOS deformation and the stationary noise (atmosphere + point noise), mm/yr.
    mask, observed : numpy.ndarray of bool

    Returns
    -------
    seen : int
    extra : dict
        ``noise_spread`` (mm/yr), for the sample's info.
    """
    spread = window_noise(noise_field, observed)
    seen = observed & mask & (np.abs(deformation) >= DETECTION_SNR * spread)
    return int(seen.sum()), {"noise_spread": spread}
