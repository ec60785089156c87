"""Reliability of the probability map: does a cell given probability p deform a share p of the time? (issue 18)

The CNN's cell probability (``probability.tif``) is cut at the card's threshold to outline regions; whether its
values mean what they say is measured here, cell by cell, against the truth polygons of held-out scenes: the cells
with data are binned by their probability (``BINS`` equal bins of [0, 1]) and, per bin, the share of cells inside
a truth is set beside the bin's mean probability (a reliability diagram, as a table). The expected calibration
error (ECE) is the mean of ``|share - mean probability|`` over the bins, weighted by their cells. A truth's rule is
its benchmark's (Tay: beyond 10 mm/yr; out-of-distribution: 2 mm/yr and a fifth of the peak), so a model that
also fires on slower real motion is over-confident by that rule, and the table says so rather than hiding it.
"""

import numpy as np

BINS = 10


def reliability_counts(probability, inside, *, bins=BINS):
    """Cells, the sum of their probability and the cells inside a truth, per probability bin.

    Parameters
    ----------
    probability : numpy.ndarray
        Cell probabilities in [0, 1]; NaN cells (no data, or not scanned) are left out.
    inside : numpy.ndarray of bool
        Cells inside a truth, the same shape.
    bins : int

    Returns
    -------
    numpy.ndarray of float64
        ``(bins, 3)``: cells, summed probability, cells inside. Counts of several maps add up.
    """
    probability = np.asarray(probability, dtype=np.float64)
    inside = np.asarray(inside, dtype=bool)
    if probability.shape != inside.shape:
        raise ValueError(f"probability has shape {probability.shape}, the truth mask {inside.shape}")
    keep = np.isfinite(probability)
    p = np.clip(probability[keep], 0.0, 1.0)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.zeros((bins, 3))
    counts[:, 0] = np.bincount(index, minlength=bins)
    counts[:, 1] = np.bincount(index, weights=p, minlength=bins)
    counts[:, 2] = np.bincount(index, weights=inside[keep].astype(np.float64), minlength=bins)
    return counts


def reliability_table(counts):
    """Per bin: its range, cells, mean probability and the share of its cells inside a truth (None when empty).

    Parameters
    ----------
    counts : numpy.ndarray
        :func:`reliability_counts`, summed over maps.

    Returns
    -------
    list of dict
        ``low``, ``high``, ``cells``, ``mean_probability``, ``share_inside``.
    """
    bins = len(counts)
    rows = []
    for k, (cells, total, inside) in enumerate(counts):
        rows.append(
            {
                "low": k / bins,
                "high": (k + 1) / bins,
                "cells": int(cells),
                "mean_probability": total / cells if cells else None,
                "share_inside": inside / cells if cells else None,
            }
        )
    return rows


def expected_calibration_error(counts):
    """Mean over the bins of ``|share inside - mean probability|``, weighted by their cells; None without cells."""
    counts = np.asarray(counts, dtype=np.float64)
    cells = counts[:, 0].sum()
    if not cells:
        return None
    filled = counts[:, 0] > 0
    gap = np.abs(counts[filled, 2] - counts[filled, 1]) / counts[filled, 0]
    return float((gap * counts[filled, 0]).sum() / cells)


def map_counts(probability_path, truth_path, *, bins=BINS):
    """:func:`reliability_counts` of a run's ``probability.tif`` against a truth GeoJSON (any CRS)."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    with rasterio.open(probability_path) as src:
        probability = src.read(1)
        transform, crs = src.transform, src.crs
    truths = gpd.read_file(truth_path)
    inside = np.zeros(probability.shape, dtype=bool)
    if len(truths):
        shapes = [(geometry, 1) for geometry in truths.to_crs(crs).geometry if not geometry.is_empty]
        if shapes:
            inside = rasterize(shapes, out_shape=probability.shape, transform=transform).astype(bool)
    return reliability_counts(probability, inside, bins=bins)


def markdown(results):
    """A Markdown table of reliability by split: ``results`` maps a label to summed counts."""
    labels = list(results)
    header = "| probability | " + " | ".join(f"{label}: cells, mean p, share inside" for label in labels) + " |"
    lines = [header, "|---|" + "---|" * len(labels)]
    tables = {label: reliability_table(counts) for label, counts in results.items()}
    for k in range(len(next(iter(tables.values())))):
        cells = []
        for label in labels:
            row = tables[label][k]
            if row["cells"]:
                cells.append(f"{row['cells']:,}, {row['mean_probability']:.2f}, {row['share_inside']:.2f}")
            else:
                cells.append("0, -, -")
        first = tables[labels[0]][k]
        lines.append(f"| {first['low']:.1f}-{first['high']:.1f} | " + " | ".join(cells) + " |")
    eces = ", ".join(f"{label} {expected_calibration_error(counts):.3f}" for label, counts in results.items())
    lines.append("")
    lines.append(f"Expected calibration error (cells with data, weighted by bin): {eces}.")
    return "\n".join(lines)
