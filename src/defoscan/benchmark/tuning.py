"""Tuning the baselines on a benchmark's validation split (issues 18 and 22).

Every benchmark compares the CNN with each baseline at its defaults and with each baseline tuned on that
benchmark's own validation scenes. To be fair the tuning budget is the same for every baseline: a grid of
**24 combinations** over its natural parameters (:data:`GRIDS`), the rest at their defaults:

- thresholding: ``k`` (6 values) x ``background_size`` (4: 2-20 km);
- Gi*: ``z`` (6: 3-40) x ``radius`` (4: 250-2000 m); the background at its default 5 km;
- ADA: ``k`` (6) x ``link`` (2: 100, 500 m) x ``background_size`` (2: 2, 10 km). ADA detects against the map's
  stable mean (no background is removed, as in ADAfinder); its background only decides which active cells agree
  in sign with their region (:func:`defoscan.threshold.z_region`), so it is the weaker axis.

The values suit grids of 25-500 m cells (a radius or link below one cell acts as one cell).

Each validation scene is run through :func:`defoscan.pipeline.detect` once per kind of detector
(:func:`scene_maps`): the CNN, whose probability map its cut-off is swept over, and the thresholding detector, whose
gridded despiked map (``velocity.tif``, ``count.tif``) is the one every baseline grids at its defaults (the
baselines take the data's own cell size, the CNN the model's where the data support it: the two can differ).
Every combination's regions are then drawn again from that map as the baseline's ``detect`` draws them
(:func:`regions_of`), scored against the truth (:func:`defoscan.evaluate.score`) and pooled
(:func:`defoscan.benchmark.suite.pool`). :func:`tune` chooses a combination; :func:`tuned_rows` makes the chosen
ones rows of the suite (:class:`defoscan.benchmark.suite.Row`).
"""

import itertools
import json
import os

import numpy as np

from defoscan.ada import AdaParameters, ada_detect
from defoscan.benchmark.suite import GOAL_FALSE_ALARMS, Row, pool
from defoscan.cnn_regions import LOW_THRESHOLD_RATIO, probability_regions
from defoscan.fill.tiling import grid_origin
from defoscan.hotspot import HotspotParameters, gistar_detect
from defoscan.threshold import ThresholdParameters, threshold_detect

GRIDS = {
    "threshold": {"k": (2.5, 3.0, 4.0, 5.0, 6.0, 8.0), "background_size": (2000.0, 5000.0, 10000.0, 20000.0)},
    "gistar": {"z": (3.0, 5.0, 8.0, 12.0, 20.0, 40.0), "radius": (250.0, 500.0, 1000.0, 2000.0)},
    "ada": {"k": (2.0, 3.0, 4.0, 5.0, 6.0, 8.0), "link": (100.0, 500.0), "background_size": (2000.0, 10000.0)},
}
# A baseline's detector function and parameter class, and the keyword of detect its parameters go to.
BASELINES = {
    "threshold": (threshold_detect, ThresholdParameters, "parameters"),
    "gistar": (gistar_detect, HotspotParameters, "baseline"),
    "ada": (ada_detect, AdaParameters, "baseline"),
}
NAMES = {"threshold": "thresholding", "gistar": "Gi*", "ada": "ADA"}
# How a row's label states a parameter's value.
SHOWN = {
    "k": lambda v: f"k = {v:g}",
    "z": lambda v: f"z = {v:g}",
    "background_size": lambda v: f"background {v / 1000:g} km",
    "radius": lambda v: f"radius {v:g} m",
    "link": lambda v: f"link {v:g} m",
}
WITHIN_GOAL = "best F1 within the false-alarm goal"
OVERALL = "best F1 overall (no combination within the false-alarm goal)"


def scene_maps(scene_dir, name, work, *, scene_cell_size=False, detector="cnn"):
    """Run ``detect`` on one scene (kept in ``work/detector/name``, reused when there) and read back its maps.

    Parameters
    ----------
    scene_dir : str
        Scenes as ``defoscan synth --scenes`` writes them.
    name : str
        The scene (``scene-NNN``).
    work : str
    scene_cell_size : bool
        Grid at the scene's own cell size (its ``.json``); by default at ``detect``'s default, as the benchmarks
        run.
    detector : str
        ``cnn`` for its probability map; ``threshold`` for the gridded map the baselines see (all grid alike).

    Returns
    -------
    dict
        ``velocity`` and ``count`` (the gridded despiked map), ``probability``, ``transform``, ``crs``, ``area``
        (km² of cells with data), ``truth`` (GeoDataFrame), ``signals`` (bool), ``threshold`` (the card's
        probability cut-off; None for a baseline), ``cell_size`` (metres).
    """
    import rasterio

    from defoscan.evaluate import read_polygons
    from defoscan.pipeline import detect

    out = os.path.join(work, detector, name)
    with open(os.path.join(scene_dir, name + ".json")) as handle:
        info = json.load(handle)
    if not os.path.exists(os.path.join(out, "run.json")):
        cell_size = float(info["cell_size"]) if scene_cell_size else None
        detect([os.path.join(scene_dir, name + ".csv")], out, cell_size=cell_size, detector=detector)
    rasters = {}
    for layer in ("velocity", "count", "probability"):
        with rasterio.open(os.path.join(out, layer + ".tif")) as src:
            rasters[layer] = src.read(1).astype(np.float64)
            transform, crs = src.transform, src.crs
    with open(os.path.join(out, "run.json")) as handle:
        record = json.load(handle)
    cell = record["grid"]["cell_size_m"]
    return {
        **rasters,
        "transform": transform,
        "crs": crs,
        "area": record["tracks"][0]["cells_with_data"] * cell**2 / 1e6,
        "truth": read_polygons(os.path.join(scene_dir, name + "-truth.geojson"), "truth"),
        "signals": bool(info["signals"]),
        "threshold": record["parameters"]["probability_threshold"],
        "cell_size": cell,
    }


def regions_of(detector, parameters, maps):
    """Labels and regions of one detector with some of its parameters on one scene's maps.

    Parameters
    ----------
    detector : str
        ``cnn`` (``parameters``: ``{"threshold": probability cut-off}``, hysteresis as ``detect`` applies it) or a
        baseline of :data:`BASELINES` (``parameters``: fields of its parameter class; the others at defaults).
    parameters : dict
    maps : dict
        :func:`scene_maps`'s.

    Returns
    -------
    labels : numpy.ndarray of int32
    regions : list of dict
    """
    cell = abs(maps["transform"].a)
    origin = grid_origin(maps["transform"])
    velocity, count = maps["velocity"], maps["count"]
    if detector == "cnn":
        threshold = parameters["threshold"]
        return probability_regions(
            maps["probability"],
            velocity,
            count,
            cell,
            threshold,
            low_threshold=LOW_THRESHOLD_RATIO * threshold,
            min_velocity=ThresholdParameters().min_velocity,  # as detect passes it
            origin=origin,
        )
    function, kind, _ = BASELINES[detector]
    labels, regions, _ = function(velocity, count, cell, kind(**parameters), origin=origin)
    return labels, regions


def scene_score(detector, parameters, maps):
    """:func:`defoscan.evaluate.score` of :func:`regions_of` (without ``matches``), with the scene's ``signals``."""
    import geopandas as gpd

    from defoscan.evaluate import score
    from defoscan.regions_store import label_polygons

    labels, regions = regions_of(detector, parameters, maps)
    polygons = label_polygons(labels, maps["transform"])
    frame = gpd.GeoDataFrame(
        [{"score": r["score"]} for r in regions],
        geometry=[polygons[r["label"]] for r in regions],
        crs=maps["crs"],
    )
    result = score(frame, maps["truth"], area_km2=maps["area"])
    result.pop("matches")
    result["signals"] = maps["signals"]
    return result


def combinations(grid):
    """Every combination of a grid (``{name: values}``) as a parameter dict, the last name varying fastest."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def tune(detector, maps, grid=None):
    """Score every combination of a grid on every scene, pooled, and choose one.

    The choice: the best pooled F1 among the combinations whose signal-free false-alarm rate is at most
    :data:`defoscan.benchmark.suite.GOAL_FALSE_ALARMS` (a rate undefined for want of signal-free scenes counts as
    within), else the best F1 overall. Ties go to the fewer false alarms, then to the first in grid order.

    Parameters
    ----------
    detector : str
        As for :func:`regions_of`.
    maps : list of dict
        :func:`scene_maps` of each validation scene.
    grid : dict, optional
        ``{parameter: values}``; :data:`GRIDS`'s for the detector by default.

    Returns
    -------
    dict
        ``detector``; ``grid`` (``{name: [values]}``); ``sweep``: per combination, in grid order, ``parameters``,
        ``f1``, ``precision``, ``recall`` (None where undefined) and ``false_alarms_per_1000_km2`` (signal-free
        scenes); ``rule``: :data:`WITHIN_GOAL` or :data:`OVERALL`; ``best``: the chosen parameters (plain dict);
        ``chosen``: its index in ``sweep``; what the scores rest on: ``scenes``, ``scenes_with_signals``,
        ``truths`` and ``signal_free_km2``.
    """
    grid = GRIDS[detector] if grid is None else grid
    sweep, pooled = [], {}
    for parameters in combinations(grid):
        pooled = pool([scene_score(detector, parameters, m) for m in maps])
        entry = {"parameters": parameters}
        entry.update({key: pooled[key] for key in ("f1", "precision", "recall", "false_alarms_per_1000_km2")})
        sweep.append(entry)
    allowed = [i for i, e in enumerate(sweep) if _alarms(e) <= GOAL_FALSE_ALARMS]
    candidates = allowed or range(len(sweep))
    # max keeps the first of equal keys: grid order breaks the last ties.
    chosen = max(candidates, key=lambda i: (sweep[i]["f1"] or 0.0, -_alarms(sweep[i])))
    return {
        "detector": detector,
        "grid": {name: list(values) for name, values in grid.items()},
        "sweep": sweep,
        "rule": WITHIN_GOAL if allowed else OVERALL,
        "best": dict(sweep[chosen]["parameters"]),
        "chosen": chosen,
        **{key: pooled.get(key) for key in ("scenes", "scenes_with_signals", "truths")},
        "signal_free_km2": pooled.get("area_km2"),
    }


def tuned_rows(choices):
    """Suite rows of the baselines tuned on a validation split.

    Parameters
    ----------
    choices : dict
        ``{detector: tune(...)}`` (the JSON ``benchmarks/scene_cutoffs.py`` writes); detectors other than
        :data:`BASELINES` (the CNN's cut-off) are passed over.

    Returns
    -------
    list of defoscan.benchmark.suite.Row
        ``{detector}-tuned`` in the order of :data:`BASELINES`, group ``baseline``, whose label states the choice
        and the budget, and whose options ``suite.detect_options`` makes into ``detect``'s keywords.
    """
    rows = []
    for detector, (_, _, keyword) in BASELINES.items():
        if detector not in choices:
            continue
        choice = choices[detector]
        best = dict(choice["best"])
        shown = ", ".join(SHOWN[name](value) for name, value in best.items())
        label = (
            f"{NAMES[detector]}, tuned on this benchmark's validation split: {shown} "
            f"(best of {len(choice['sweep'])} combinations)"
        )
        rows.append(Row(f"{detector}-tuned", "baseline", label, {"detector": detector, keyword: best}))
    return rows


def _alarms(entry):
    rate = entry["false_alarms_per_1000_km2"]
    return 0.0 if rate is None else rate
