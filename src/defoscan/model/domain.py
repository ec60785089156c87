"""Where a trained model applies: what its training windows held, recorded in its card (issue 22, item 10).

A model's probabilities hold only for maps like its training windows. The card's ``applies_to`` says what those
were, measured on the windows themselves (not on the generator's nominal ranges): synthetic data only, the cell
sizes and window, how much of a window held data, the kinds of signal and how often, and the range of the signals'
peak rate (the largest ``|LOS deformation|`` on a deforming cell) and deforming area among the positives, as the
5th, 50th and 95th percentiles. A map whose signals or coverage lie outside these ranges is outside what the model
was shown (docs/MODEL.md).
"""

import numpy as np

PERCENTILES = (5, 50, 95)


def training_domain(windows):
    """What the training windows held (module notes).

    Parameters
    ----------
    windows : defoscan.model.data.WindowSet
        The windows trained on.

    Returns
    -------
    dict
        ``data`` ("synthetic"), ``windows``, ``positives``, ``cell_sizes_m``, ``window_cells``,
        ``coverage_fraction`` (percentiles over all windows), ``kinds`` (positives by kind; a window with two kinds
        counts for both), ``peak_mm_yr`` and ``deforming_area_km2`` (percentiles over the positives; None without
        any).
    """
    positive = np.flatnonzero(np.asarray(windows.label) == 1)
    cell_sizes = windows.window_cell_sizes()
    coverage = [info.get("coverage_fraction") for info in windows.info]
    coverage = np.array([c for c in coverage if c is not None], dtype=float)
    kinds = {}
    for i in positive:
        for kind in windows.info[i].get("kinds") or []:
            kinds[kind] = kinds.get(kind, 0) + 1
    peaks = np.array([windows.info[i]["peak"] for i in positive], dtype=float)
    areas = np.array([windows.mask[i].sum() * cell_sizes[i] ** 2 / 1e6 for i in positive], dtype=float)
    return {
        "data": "synthetic",
        "windows": int(len(windows.label)),
        "positives": int(len(positive)),
        "cell_sizes_m": windows.cell_sizes,
        "window_cells": int(windows.velocity.shape[-1]),
        "coverage_fraction": _percentiles(coverage),
        "kinds": dict(sorted(kinds.items())),
        "peak_mm_yr": _percentiles(peaks),
        "deforming_area_km2": _percentiles(areas),
    }


def _percentiles(values):
    if not len(values):
        return None
    return {f"p{q}": round(float(v), 6) for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True)}
