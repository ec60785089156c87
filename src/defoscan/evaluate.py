"""Object-level scores of detections against truth polygons: what is found, what is missed, what is false.

Matching: each detection goes to the truth polygon it overlaps most (by area; ties to the first truth) among those
whose motion has its sign, or to none. So one huge detection covering several truths is credited with one of them
only, a truth broken into fragments by the detector is found once, and an uplift detection over a subsidence bowl
finds nothing (a user reads ``sign`` literally). A truth's signs are its ``signs`` (comma-separated: a source whose
line-of-sight motion has lobes of both signs), else its ``sign`` (``mixed``: both), else both; a detection without
``sign`` matches either (:func:`compatible_signs`). Then:

- a truth is **found** if at least one detection went to it; **recall** is the share of truths found, overall, per
  ``kind`` and per velocity band of the truth's ``|peak_velocity|`` (:data:`VELOCITY_BANDS`, mm/yr);
- a detection is a **false alarm** if it went to no truth; **precision** is the share of detections that went to a
  truth; **F1** their harmonic mean; **false alarms per 1000 km²** divides the false alarms by the area examined
  (given, or the cells with data of the run, from the ``run.json`` beside the detections).

Any overlap finds a truth, so a map-wide region "finds" a crater: :func:`outline_quality` says, per matched
detection, the share of it inside its truth and its intersection over union.

Where the run's probability map is at hand, :func:`cell_scores` adds the cell-level ROC AUC and average precision
(every cell with a probability a sample, positive inside a truth polygon).

Areas are measured in a projected CRS: the detections' if they are projected, else the working CRS that
:func:`defoscan.crs.working_crs` takes for the truths' median point.
"""

import json
import os

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import rasterio.features
import shapely

from defoscan.crs import working_crs
from defoscan.errors import InputError
from defoscan.metrics import average_precision, roc_auc

VELOCITY_BANDS = ((2.0, 5.0), (5.0, 10.0), (10.0, 30.0), (30.0, np.inf))  # |peak velocity|, mm/yr, (low, high]


def band_label(band):
    """``"2-5"``, ..., ``">30"``: how a band is named in tables."""
    low, high = band
    return f">{low:g}" if np.isinf(high) else f"{low:g}-{high:g}"


def read_polygons(path, what):
    """Polygons of a GeoJSON or GeoPackage file, with their attributes.

    Raises
    ------
    InputError
        A file that is missing, unreadable or has no CRS.
    """
    if not os.path.exists(path):
        raise InputError(path, f"no such file ({what})")
    try:
        frame = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as error:
        raise InputError(path, f"cannot read the {what} as polygons ({str(error).splitlines()[0]})") from None
    if frame.crs is None:
        raise InputError(path, f"the {what} have no CRS")
    return frame[frame.geometry.notna() & ~frame.geometry.is_empty].reset_index(drop=True)


def match_detections(detections, truths):
    """The truth each detection overlaps most.

    Parameters
    ----------
    detections, truths : geopandas.GeoDataFrame
        In one projected CRS.

    Returns
    -------
    numpy.ndarray of int
        Per detection, the row of its truth in ``truths``, -1 for none.
    """
    matched = np.full(len(detections), -1, dtype=np.int64)
    if len(detections) == 0 or len(truths) == 0:
        return matched
    pairs = gpd.sjoin(  # positions, not index labels: a filtered frame keeps its labels
        detections[["geometry"]].reset_index(drop=True).reset_index(names="detection"),
        truths[["geometry"]].reset_index(drop=True).reset_index(names="truth"),
        predicate="intersects",
    )
    if pairs.empty:
        return matched
    same_sign = compatible_signs(detections, truths)[pairs["detection"].to_numpy(), pairs["truth"].to_numpy()]
    pairs = pairs[same_sign]
    shared = shapely.intersection(pairs.geometry.values, truths.geometry.values[pairs["truth"].to_numpy()])
    pairs = pairs.assign(overlap=shapely.area(shared))
    pairs = pairs[pairs["overlap"] > 0].sort_values(["detection", "overlap", "truth"], ascending=[True, False, True])
    best = pairs.drop_duplicates("detection")
    matched[best["detection"].to_numpy()] = best["truth"].to_numpy()
    return matched


SIGNS = ("subsidence", "uplift")


def truth_signs(truth):
    """The signs of motion a truth holds (module notes), from its attributes (a mapping or a frame's row).

    Returns
    -------
    set of str
        A subset of :data:`SIGNS`; both when the truth says nothing or ``mixed``.
    """
    listed = truth.get("signs") if hasattr(truth, "get") else None
    if isinstance(listed, str) and listed.strip():
        return {sign.strip() for sign in listed.split(",")} & set(SIGNS) or set(SIGNS)
    sign = truth.get("sign") if hasattr(truth, "get") else None
    return {sign} if sign in SIGNS else set(SIGNS)


def compatible_signs(detections, truths):
    """Whether each detection's ``sign`` is one each truth holds: ``(detections, truths)`` booleans.

    Parameters
    ----------
    detections : geopandas.GeoDataFrame or sequence of dict
        ``sign`` where known (any other value, or none, matches every truth).
    truths : geopandas.GeoDataFrame or sequence of dict
        ``signs`` / ``sign`` (:func:`truth_signs`).

    Returns
    -------
    numpy.ndarray of bool
    """
    rows = truths.to_dict("records") if hasattr(truths, "to_dict") else list(truths)
    held = [truth_signs(row) for row in rows]
    if hasattr(detections, "columns"):
        signs = detections["sign"].tolist() if "sign" in detections.columns else [None] * len(detections)
    else:
        signs = [d.get("sign") for d in detections]
    return np.array([[sign not in SIGNS or sign in holds for holds in held] for sign in signs], dtype=bool).reshape(
        len(signs), len(held)
    )


def f1_score(precision, recall):
    """Harmonic mean of precision and recall; None without truths (recall None), 0 when nothing was detected."""
    if recall is None:
        return None
    if precision is None or precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def score(detections, truths, *, area_km2=None):
    """Object-level scores (module notes).

    Parameters
    ----------
    detections : geopandas.GeoDataFrame
    truths : geopandas.GeoDataFrame
        With ``kind`` and ``peak_velocity`` (mm/yr) where per-type and per-band recall are wanted.
    area_km2 : float, optional
        Area examined, for the false alarm rate.

    Returns
    -------
    dict
        ``detections``, ``truths``, ``found``, ``false_alarms``, ``recall``, ``precision``, ``f1`` (None where
        undefined: no truths, no detections),
        ``false_alarms_per_1000_km2``, ``recall_by_kind`` and ``recall_by_band`` (each ``{name: {"truths": n,
        "found": k, "recall": k / n}}``), ``matches`` (the truth row of each detection, -1 for none), and the
        outline quality of the matched detections (:func:`outline_quality`: ``share_inside``, ``iou``).
    """
    crs = _metric_crs(detections, truths)
    detections, truths = detections.to_crs(crs), truths.to_crs(crs)
    matched = match_detections(detections, truths)
    found = np.zeros(len(truths), dtype=bool)
    found[matched[matched >= 0]] = True
    false_alarms = int(np.count_nonzero(matched < 0))
    # Undefined scores are None: recall without truths, precision without detections.
    recall = float(found.mean()) if len(truths) else None
    precision = float(np.mean(matched >= 0)) if len(detections) else None
    f1 = f1_score(precision, recall)
    result = {
        "detections": len(detections),
        "truths": len(truths),
        "found": int(found.sum()),
        "false_alarms": false_alarms,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "area_km2": area_km2,
        "false_alarms_per_1000_km2": 1000.0 * false_alarms / area_km2 if area_km2 else None,
        "recall_by_kind": {},
        "recall_by_band": {},
        "matches": matched.tolist(),
        **outline_quality(detections, truths, matched),
    }
    if "kind" in truths:
        for kind in sorted(truths["kind"].dropna().unique()):
            result["recall_by_kind"][str(kind)] = _recall(found[(truths["kind"] == kind).to_numpy()])
    if "peak_velocity" in truths:
        speed = np.abs(truths["peak_velocity"].to_numpy(dtype=np.float64))
        for band in VELOCITY_BANDS:
            result["recall_by_band"][band_label(band)] = _recall(found[(speed > band[0]) & (speed <= band[1])])
    return result


def outline_quality(detections, truths, matched):
    """How well each matched detection outlines its truth: any overlap finds a truth, this says how well.

    Parameters
    ----------
    detections, truths : geopandas.GeoDataFrame
        In one projected CRS.
    matched : numpy.ndarray of int
        :func:`match_detections`' result.

    Returns
    -------
    dict
        ``share_inside`` (the share of each matched detection's area inside its truth: low for a map-wide region
        that "finds" a crater) and ``iou`` (intersection over union with its truth), lists in detection order of
        the matched detections.
    """
    hit = np.flatnonzero(matched >= 0)
    if hit.size == 0:
        return {"share_inside": [], "iou": []}
    shapes = detections.geometry.values[hit]
    targets = truths.geometry.values[matched[hit]]
    shared = shapely.area(shapely.intersection(shapes, targets))
    union = shapely.area(shapely.union(shapes, targets))
    own = shapely.area(shapes)
    return {
        "share_inside": [float(v) for v in np.where(own > 0, shared / np.maximum(own, 1e-300), 0.0)],
        "iou": [float(v) for v in np.where(union > 0, shared / np.maximum(union, 1e-300), 0.0)],
    }


def examined_area_km2(detections_path):
    """Area with data of the run that wrote ``detections_path`` (its ``run.json``): the most cells of any track."""
    record = os.path.join(os.path.dirname(os.path.abspath(detections_path)), "run.json")
    if not os.path.exists(record):
        return None
    with open(record) as handle:
        run = json.load(handle)
    cells = max((t.get("cells_with_data") or 0 for t in run.get("tracks", [])), default=0)
    return cells * run["grid"]["cell_size_m"] ** 2 / 1e6 if cells else None


def evaluate_files(detections_path, truth_path, *, area_km2=None, probability_path=None):
    """:func:`score` of two files, and :func:`cell_scores` of the run's probability map.

    The area comes from the run's ``run.json`` and the probability map is its ``probability.tif`` (both beside the
    detections) when not given; ``cells`` is None without a probability map.
    """
    detections = read_polygons(detections_path, "detections")
    truths = read_polygons(truth_path, "truth")
    if area_km2 is None:
        area_km2 = examined_area_km2(detections_path)
    result = score(detections, truths, area_km2=area_km2)
    if probability_path is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(detections_path)), "probability.tif")
        probability_path = beside if os.path.exists(beside) else None
    elif not os.path.exists(probability_path):
        raise InputError(probability_path, "no such file (probability map)")
    result["cells"] = None if probability_path is None else cell_scores(probability_path, truths)
    return result


def cell_scores(probability_path, truths):
    """Cell-level ROC AUC and average precision of a probability map against truth polygons.

    Every cell with a probability (in any band: the largest is taken) is a sample, positive if its centre lies in
    a truth polygon. The map is read whole: meant for scene benchmarks, not for a country.

    Parameters
    ----------
    probability_path : str
        ``probability.tif`` of a detect run.
    truths : geopandas.GeoDataFrame

    Returns
    -------
    dict
        ``cells``, ``positive_cells``, ``roc_auc`` and ``average_precision`` (None when a class is empty).
    """
    with rasterio.open(probability_path) as src:
        probability = src.read(masked=False).astype(np.float64)
        transform, crs, shape = src.transform, src.crs, (src.height, src.width)
    with np.errstate(all="ignore"):
        best = np.where(
            np.isnan(probability).all(axis=0), np.nan, np.nanmax(np.nan_to_num(probability, nan=-1), axis=0)
        )
    inside = np.zeros(shape, dtype=bool)
    if len(truths):
        inside = rasterio.features.rasterize(
            truths.to_crs(crs).geometry, out_shape=shape, transform=transform, fill=0, default_value=1
        ).astype(bool)
    scored = np.isfinite(best)
    labels, scores = inside[scored], best[scored]
    both = labels.any() and (~labels).any()
    return {
        "cells": int(scored.sum()),
        "positive_cells": int(labels.sum()),
        "roc_auc": roc_auc(scores, labels) if both else None,
        "average_precision": average_precision(scores, labels) if both else None,
    }


def _recall(found):
    n = int(found.size)
    return {"truths": n, "found": int(found.sum()), "recall": float(found.mean()) if n else None}


def _metric_crs(detections, truths):
    if detections.crs is not None and detections.crs.is_projected:
        return detections.crs
    if truths.crs is not None and truths.crs.is_projected:
        return truths.crs
    points = (truths if len(truths) else detections).to_crs("EPSG:4326").geometry.representative_point()
    if len(points) == 0:
        return "EPSG:3857"  # nothing to measure: any projected CRS will do
    return working_crs(points.x.to_numpy(), points.y.to_numpy())
