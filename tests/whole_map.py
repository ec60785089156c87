"""Whole-map reference implementations (test oracles) of what the pipeline computes chunk by chunk on a store.

They are the in-memory forms the chunked stages replaced (issue 17): kept here, independent of
:mod:`defoscan.regions_store`, so that the store's results are checked against a second, simpler computation.
"""

import numpy as np
import rasterio.features
import shapely
from scipy import ndimage

from defoscan.cnn_regions import STRONG_PEAK_RATIO
from defoscan.labels import number_regions
from defoscan.region_attributes import Relative, first_cell, sign_parts, strong_enough, velocity_attributes


def whole_map_regions(
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
    """:func:`defoscan.cnn_regions.probability_regions` computed on the whole map with ``scipy.ndimage``."""
    probability = np.asarray(probability, dtype=np.float64)
    velocity = np.asarray(velocity, dtype=np.float64)
    count = np.asarray(count)
    labels = np.zeros(velocity.shape, dtype=np.int32)
    data = np.isfinite(velocity)
    low_threshold = threshold if low_threshold is None else min(float(low_threshold), float(threshold))
    scored = np.nan_to_num(probability, nan=-1.0)
    kept = data & (scored >= low_threshold)
    if not (kept & (scored >= threshold)).any():
        return labels, []
    relative = Relative(velocity, cell_size, background_size, origin)
    components, _ = ndimage.label(kept, np.ones((3, 3), dtype=bool))
    found = []
    for index, window in enumerate(ndimage.find_objects(components), start=1):
        cells = components[window] == index
        if scored[window][cells].max() < threshold:  # no cell reaches the cut-off: not a detection
            continue
        measure = relative.for_window(window)  # the component's width decides, for all its parts
        for _, part, part_cells in sign_parts(window, cells, measure[window]):
            n_cells = int(part_cells.sum())
            n_points = int(np.nansum(count[part][part_cells]))
            if n_cells < min_cells or n_points < min_points:
                continue
            if scored[part][part_cells].max() < threshold:  # each part is decided at the cut-off, as a component
                continue
            attributes = velocity_attributes(velocity[part][part_cells], measure[part][part_cells])
            if attributes is None or not strong_enough(attributes, min_velocity, STRONG_PEAK_RATIO):
                continue
            found.append(
                {
                    "window": part,
                    "cells": part_cells,
                    "first": first_cell(part, part_cells, velocity.shape[1]),
                    "score": float(probability[part][part_cells].max()),
                    "n_cells": n_cells,
                    "n_points": n_points,
                    **attributes,
                    "mean_probability": float(probability[part][part_cells].mean()),
                }
            )
    regions = number_regions(found, labels)
    return labels, regions


def whole_map_polygons(labels, transform):
    """Polygons of every labelled region of a whole label map (GDAL, 8-connectivity), by region number."""
    labels = np.asarray(labels, dtype=np.int32)
    parts = {}
    for geometry, value in rasterio.features.shapes(labels, mask=labels > 0, transform=transform, connectivity=8):
        parts.setdefault(int(value), []).append(shapely.geometry.shape(geometry))
    return {label: shapely.union_all(polys) for label, polys in sorted(parts.items())}
