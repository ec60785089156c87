"""``detect``: the stages composed, from input files to the output directory of the contract (docs/DESIGN-NOTES.md)."""

import os
import platform
import time
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import numpy as np
from pyproj import CRS

from defoscan import __version__
from defoscan.ada import AdaParameters, ada_detect
from defoscan.cnn_regions import LOW_THRESHOLD_RATIO, probability_regions
from defoscan.crs import crs_label
from defoscan.despike import despike_grid, despike_points
from defoscan.errors import InputError
from defoscan.figures import write_overview
from defoscan.fill import DEFAULT_METHOD, fill_grid
from defoscan.fill.tiling import grid_origin
from defoscan.grid import GridDefinition, data_cell_size, grid_inputs, grid_points, points_grid, scan_cell_size
from defoscan.hotspot import HotspotParameters, gistar_detect
from defoscan.io import ReadOptions, read_inputs
from defoscan.io.filters import COUNT_ATTRS
from defoscan.log import collected_warnings, warn
from defoscan.mask import apply_mask, read_mask
from defoscan.outputs import (
    check_writable_dir,
    staged_directory,
    write_cog,
    write_geojson,
    write_geopackage,
    write_json,
)
from defoscan.regions import detections_frame, label_polygons
from defoscan.report import write_report_from_run
from defoscan.styles import detections_qml, write_styles
from defoscan.threshold import ThresholdParameters, threshold_detect

DEPENDENCIES = (
    "numpy",
    "scipy",
    "pyarrow",
    "pyproj",
    "rasterio",
    "shapely",
    "geopandas",
    "xarray",
    "h5py",
    "torch",
    "safetensors",
)
DETECTORS = ("cnn", "threshold", "gistar", "ada")
DEFAULT_PROBABILITY_THRESHOLD = 0.5  # when the model card gives none
CELL_SIZE_TOLERANCE = 2.5  # grid cells this many times larger or smaller than the model's get a warning


def bundled_model_path():
    """The model shipped with the package (``defoscan/data/model/defoscan-compact.safetensors``, card beside it)."""
    return files("defoscan") / "data" / "model" / "defoscan-compact.safetensors"


def detect(inputs, out_dir, **keywords):
    """Find deformation in the inputs and write every output of the contract into ``out_dir``.

    The warnings reported while it runs (:func:`defoscan.log.warn`) are kept in ``run.json`` (``warnings``) and
    shown in the report. Parameters, returns: :func:`run_detect`.
    """
    with collected_warnings() as messages:
        return run_detect(inputs, out_dir, warnings=messages, **keywords)


def run_detect(
    inputs,
    out_dir,
    *,
    options=None,
    cell_size=None,
    parameters=None,
    baseline=None,
    fill_method=DEFAULT_METHOD,
    detector="cnn",
    model=None,
    probability_threshold=None,
    despike=True,
    hysteresis=True,
    localise=None,
    scan_filled=None,
    mask=None,
    log=None,
    warnings=None,
):
    """Find deformation in the inputs and write every output of the contract into ``out_dir`` (see :func:`detect`).

    Parameters
    ----------
    inputs : sequence of str
        Input files of one area (tracks are kept apart, see :func:`defoscan.io.read_inputs`).
    out_dir : str
        Output directory; created if missing; files are replaced only when the whole run succeeds.
    options : defoscan.io.ReadOptions, optional
    cell_size : float, optional
        Metres. By default the model's cell size where the data support it (:func:`defoscan.grid.model_cell_size`)
        for the ``cnn`` detector, the data's own default (:func:`defoscan.grid.data_cell_size`) for the others.
    parameters : defoscan.threshold.ThresholdParameters, optional
        The threshold detector's parameters; the CNN detector uses their ``background_size`` (velocities of a
        region are measured against that robust background), ``min_cells``, ``min_points`` and ``min_velocity``
        (a region's mean velocity against the background must reach it, or its peak
        :data:`defoscan.cnn_regions.STRONG_PEAK_RATIO` times it).
    baseline : defoscan.hotspot.HotspotParameters or defoscan.ada.AdaParameters, optional
        The ``gistar`` or ``ada`` detector's own parameters (for ``gistar``, by default its defaults with
        ``parameters``' background size and minimum sizes; for ``ada`` its defaults).
    fill_method : str
        Gap-filling method of :mod:`defoscan.fill` for ``velocity_filled.tif`` (the modified matrix completion by
        default, the best measured; see docs/FILL.md).
    detector : {"cnn", "threshold", "gistar", "ada"}
        ``cnn``: scan each track with the model (:func:`defoscan.scan.scan_probability`) and take the regions of the
        probability map (:func:`defoscan.cnn_regions.probability_regions`). ``threshold``: the baseline
        (:func:`defoscan.threshold.threshold_detect`). ``gistar``: the Getis-Ord Gi* hotspot baseline
        (:func:`defoscan.hotspot.gistar_detect`, with ``parameters``' background size and minimum sizes). ``ada``:
        the active-deformation-area baseline (:func:`defoscan.ada.ada_detect`, its own defaults).
    model : str or os.PathLike, optional
        Weights file of the CNN (its ``.json`` card beside it); the bundled model by default
        (:func:`bundled_model_path`). Loaded before anything else is done.
    probability_threshold : float, optional
        Probability a region needs in one of its cells (CNN); the model card's ``threshold`` by default, else 0.5.
        The region's other cells need :data:`defoscan.cnn_regions.LOW_THRESHOLD_RATIO` times it (hysteresis).
    despike, hysteresis : bool
        Switches for the ablations of the evaluation (:mod:`defoscan.suite`): ``despike=False`` grids the points
        (or the raster) as read; ``hysteresis=False`` keeps only the cells over the probability threshold (CNN).
    localise : {"window", "pixel", "product"}, optional
        What the scanner blends (:func:`defoscan.scan.cell_probability`), instead of the model card's ``localise``;
        with ``window`` the probability threshold defaults to the card's ``window_threshold``.
    scan_filled : bool, optional
        Scan the gap-filled map (True) or the gridded one (False) instead of what the model was trained on.
    mask : str or os.PathLike, optional
        Polygons or a raster of the area to keep (:mod:`defoscan.mask`); cells outside lose their data after
        gridding.
    log : callable, optional
        Called with a short message as each stage starts (and as the scan progresses).
    warnings : list, optional
        Messages to record as the run's warnings in ``run.json`` (:func:`detect` passes the ones it collects).

    Returns
    -------
    dict
        The run record written to ``run.json``, plus ``detections`` (the GeoDataFrame).
    """
    options = options or ReadOptions()
    parameters = parameters or ThresholdParameters()
    log = log or (lambda message: None)
    if detector not in DETECTORS:
        raise InputError(None, f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    wanted = {"gistar": HotspotParameters, "ada": AdaParameters}.get(detector)
    if baseline is not None and (wanted is None or not isinstance(baseline, wanted)):
        raise InputError(None, f"baseline parameters {type(baseline).__name__} do not apply to the {detector} detector")
    check_writable_dir(out_dir)
    timings = {}
    started = time.perf_counter()
    network, card, model_path = None, None, None
    if detector == "cnn":  # fail on a bad model file before any work
        model_path = str(bundled_model_path() if model is None else model)
        network, card = _load_model(model_path, bundled=model is None)
        card = _recipe_overrides(card, localise, scan_filled)
        probability_threshold = _probability_threshold(probability_threshold, card, model_path)
    elif model is not None or probability_threshold is not None or localise is not None or scan_filled is not None:
        raise InputError(None, "a model, a probability threshold and scan options apply to the cnn detector only")

    log("reading")
    datasets = read_inputs(list(inputs), options)
    timings["read_s"] = time.perf_counter() - started
    requested = cell_size
    if cell_size is None:
        cell_size = data_cell_size(datasets)
        if detector == "cnn":
            cell_size, why = scan_cell_size(datasets, card["input"])
            if why:
                warn(why)
    elif detector == "cnn":
        check_cell_size(cell_size, card["input"])

    log("despiking and gridding")
    mark = time.perf_counter()
    spikes = {}
    if "point" in datasets[0].dims:  # points: despike before gridding; the cell median absorbs what is left
        # The grid is the input's (extent and density of all points read), as a chunked run must take it
        # before it can despike (defoscan.runner).
        common = points_grid(datasets, cell_size)
        grids = []
        for points in datasets:
            kept, spikes[points.attrs.get("track") or "all"] = _despiked(points, despike_points, despike)
            grids.append(grid_points(kept, grid=common))
    else:  # rasters: despike the gridded map
        grids = []
        for grid in grid_inputs(datasets, cell_size=cell_size):
            kept, spikes[grid.attrs.get("track") or "all"] = _despiked(grid, despike_grid, despike)
            grids.append(kept)
    first = grids[0]
    transform = first.rio.transform(recalc=True)
    crs = CRS.from_user_input(first.rio.crs)
    definition = GridDefinition(crs, transform.a, transform.c, transform.f, first.sizes["x"], first.sizes["y"])
    if not any(np.isfinite(g["velocity"].values).any() for g in grids):
        raise InputError(inputs[0], "no valid velocity values to grid")
    masked = None
    if mask is not None:
        area = read_mask(mask, crs)
        grids, removed = zip(*(apply_mask(grid, area) for grid in grids), strict=True)
        grids, masked = list(grids), {"path": os.path.abspath(mask), "cells_removed": list(removed)}
        if not any(np.isfinite(g["velocity"].values).any() for g in grids):
            raise InputError(mask, "the mask leaves no cell with data")
    timings["despike_grid_s"] = time.perf_counter() - mark

    log("filling gaps")
    mark = time.perf_counter()
    grids = [fill_grid(grid, method=fill_method) for grid in grids]
    timings["fill_s"] = time.perf_counter() - mark

    log("detecting")
    mark = time.perf_counter()
    low_ratio = LOW_THRESHOLD_RATIO if hysteresis else 1.0  # hysteresis off: one cut-off
    records, noise, probabilities = [], {}, []
    timings["scan_s"] = 0.0
    for grid in grids:
        track = grid.attrs.get("track") or "all"
        velocity, count = grid["velocity"].values, grid["count"].values
        origin = grid_origin(transform)  # the robust background's blocks lie on the global grid
        if detector == "cnn":
            scan_mark = time.perf_counter()
            probability = _scan_track(grid, network, card["input"], track, log)
            timings["scan_s"] += time.perf_counter() - scan_mark
            labels, regions = probability_regions(
                probability,
                velocity,
                count,
                definition.cell_size,
                probability_threshold,
                low_threshold=low_ratio * probability_threshold,
                background_size=parameters.background_size,
                min_cells=parameters.min_cells,
                min_points=parameters.min_points,
                min_velocity=parameters.min_velocity,
                origin=origin,
            )
        else:
            if detector == "threshold":
                labels, regions, noise[track] = threshold_detect(
                    velocity, count, definition.cell_size, parameters, origin=origin
                )
            elif detector == "ada":
                labels, regions, noise[track] = ada_detect(
                    velocity, count, definition.cell_size, baseline, origin=origin
                )
            else:
                hotspot = baseline or HotspotParameters(
                    background_size=parameters.background_size,
                    min_cells=parameters.min_cells,
                    min_points=parameters.min_points,
                )
                labels, regions, noise[track] = gistar_detect(
                    velocity, count, definition.cell_size, hotspot, origin=origin
                )
            # The baselines have no probability: 1 in their regions' footprints, 0 elsewhere with data.
            probability = np.where(labels > 0, 1.0, np.where(np.isfinite(velocity), 0.0, np.nan))
        probabilities.append((f"probability {track}", probability))
        polygons = label_polygons(labels, transform)
        for region in regions:
            records.append(
                {
                    **region,
                    "geometry": polygons[region["label"]],
                    "kind": "deformation",
                    "track": track,
                    "detector": detector,
                }
            )
    frame = detections_frame(records, crs)
    timings["detect_s"] = time.perf_counter() - mark - timings["scan_s"]

    log("writing")
    mark = time.perf_counter()
    record = _run_record(inputs, datasets, grids, definition, options, requested, parameters, noise, spikes, frame)
    record["parameters"].update(
        fill_method=fill_method,
        detector=detector,
        model=_model_record(model_path, card),
        probability_threshold=probability_threshold,
        low_probability_threshold=low_ratio * probability_threshold if detector == "cnn" else None,
        despike=despike,
        baseline=None if baseline is None else baseline.as_dict(),
        mask=masked,
    )
    record["warnings"] = warnings if warnings is not None else []
    with staged_directory(out_dir) as staging:
        software = f"defoscan {__version__}"
        tracks = [g.attrs.get("track") or "all" for g in grids]
        velocities = [g["velocity"].values for g in grids]
        counts = [g["count"].values for g in grids]
        write_cog(
            os.path.join(staging, "velocity.tif"),
            [(f"velocity {t}", v) for t, v in zip(tracks, velocities, strict=True)],
            transform,
            crs,
            tags={"units": "mm/yr", "software": software},
            units="mm/yr",
        )
        write_cog(
            os.path.join(staging, "count.tif"),
            [(f"count {t}", c) for t, c in zip(tracks, counts, strict=True)],
            transform,
            crs,
            tags={"units": "points", "software": software},
            units="points",
            nodata=0,
        )
        filled = [(f"velocity_filled {t}", g["velocity_filled"].values) for t, g in zip(tracks, grids, strict=True)]
        write_cog(
            os.path.join(staging, "velocity_filled.tif"),
            filled,
            transform,
            crs,
            tags={"units": "mm/yr", "fill_method": fill_method, "software": software},
            units="mm/yr",
        )
        probability_tags = {"units": "probability", "detector": detector, "software": software}
        if detector != "cnn":
            probability_tags["note"] = (
                f"{detector} detector: not a probability; 1 in detected regions, 0 elsewhere with data"
            )
        else:
            probability_tags["probability_threshold"] = str(probability_threshold)
        write_cog(
            os.path.join(staging, "probability.tif"),
            probabilities,
            transform,
            crs,
            tags=probability_tags,
            units="probability",
        )
        write_geojson(os.path.join(staging, "detections.geojson"), frame)
        write_geopackage(os.path.join(staging, "detections.gpkg"), frame, style=detections_qml())
        write_styles(staging, velocities, counts)
        write_overview(os.path.join(staging, "overview.png"), grids, frame)
        timings["write_s"] = time.perf_counter() - mark
        timings["total_s"] = time.perf_counter() - started
        record["timings"] = {k: round(v, 3) for k, v in timings.items()}
        write_json(os.path.join(staging, "run.json"), record)
        write_report_from_run(staging)  # from the files just written, as `defoscan report` rebuilds it
    return {**record, "detections": frame}


def _load_model(path, *, bundled):
    """The network and its card; a file that does not load is an :class:`InputError` naming it."""
    from defoscan.model.weights import load_model

    try:
        network, card = load_model(path)
    except ValueError as error:
        problem, prefix = str(error), f"{Path(path)}: "
        problem = problem[len(prefix) :] if problem.startswith(prefix) else problem
        if bundled and not os.path.isfile(path):
            problem += " (the bundled model is not installed; pass --model PATH or --detector threshold)"
        raise InputError(path, f"cannot load the model: {problem}") from None
    from defoscan.model.inputs import REQUIRED_KEYS, input_channels

    recipe = card.get("input")
    missing = sorted(set(REQUIRED_KEYS) - set(recipe)) if isinstance(recipe, dict) else ["input"]
    if missing:
        raise InputError(path, f"cannot load the model: its card lacks the input recipe keys {', '.join(missing)}")
    try:
        channels = input_channels(recipe)
    except (TypeError, ValueError) as error:
        raise InputError(path, f"cannot load the model: its card's input recipe is not valid ({error})") from None
    if channels != card["in_channels"]:
        raise InputError(
            path,
            f"cannot load the model: its input recipe makes {channels} channels, the network takes "
            f"{card['in_channels']}",
        )
    from defoscan.model.networks import for_inference

    return for_inference(network), card


def _despiked(data, despiker, switched_on):
    """``data`` despiked by ``despiker`` and the record of it for run.json; left as read when switched off."""
    if not switched_on:
        return data, {"removed": 0, "switched_off": True}
    kept, spike = despiker(data)
    return kept, dict(spike.attrs)


def _recipe_overrides(card, localise, scan_filled):
    """The card with the input recipe's ``localise`` and ``fill`` replaced where given (the cut-off follows)."""
    if localise is None and scan_filled is None:
        return card
    from defoscan.scan import LOCALISE_MODES

    recipe = dict(card["input"])
    card = {**card, "input": recipe}
    if localise is not None:
        if localise not in LOCALISE_MODES:
            raise InputError(None, f"unknown localise mode {localise!r}; choose from {', '.join(LOCALISE_MODES)}")
        recipe["localise"] = localise
        if localise == "window" and "window_threshold" in card:
            card["threshold"] = card["window_threshold"]
    if scan_filled is not None:
        recipe["fill"] = bool(scan_filled)
    return card


def _probability_threshold(value, card, path):
    """The cut-off given, else the card's, else 0.5; in (0, 1]."""
    source = None if value is not None else path
    value = card.get("threshold", DEFAULT_PROBABILITY_THRESHOLD) if value is None else value
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise InputError(source, f"probability threshold must be in (0, 1], got {value}")
    return value


def check_cell_size(cell_size, recipe):
    """Warn when a cell size the user chose is far from the model's (a default one is warned about when chosen)."""
    trained = float(recipe["cell_size"])
    if not trained / CELL_SIZE_TOLERANCE <= float(cell_size) <= trained * CELL_SIZE_TOLERANCE:
        warn(
            f"grid cells of {float(cell_size):g} m, the model was trained on {trained:g} m cells; "
            "its probabilities may not hold at this scale"
        )


def _scan_track(grid, network, recipe, track, log):
    """Probability map of one track's grid (the gap-filled map if the model was trained on filled windows)."""
    from defoscan.fill.tiling import grid_origin
    from defoscan.scan import scan_probability

    source = grid["velocity_filled"] if recipe.get("fill") else grid["velocity"]
    quarters = set()

    def progress(done, total):
        quarter = 4 * done // max(total, 1)
        if quarter not in quarters and 0 < quarter < 4:
            quarters.add(quarter)
            log(f"scanning {track}: {done:,} of {total:,} windows")

    log(f"scanning {track}")
    origin = grid_origin(grid.rio.transform(recalc=True))  # windows on the global lattice
    return scan_probability(
        source.values, network, recipe, origin=origin, valid=np.isfinite(grid["velocity"].values), progress=progress
    )


def _model_record(path, card):
    """What run.json says about the model: where, which weights, which architecture and input."""
    if card is None:
        return None
    described = {
        "path": os.path.abspath(path),
        "weights_sha256": card.get("weights_sha256"),
        "arch": card.get("arch"),
        "input": card.get("input"),
    }
    described.update({key: card[key] for key in ("name", "version") if key in card})
    return described


def _run_record(inputs, datasets, grids, definition, options, cell_size, parameters, noise, spikes, frame):
    cells = definition.width * definition.height
    n_points = int(sum(ds.sizes.get("point", 0) for ds in datasets))
    tracks = []
    for ds, grid in zip(datasets, grids, strict=True):
        occupied = int(np.isfinite(grid["velocity"].values).sum())
        tracks.append(
            {
                "track": grid.attrs.get("track") or "all",
                "sources": ds.attrs.get("sources", []),
                "points": int(ds.sizes["point"]) if "point" in ds.dims else None,
                "cells_with_data": occupied,
                "coverage": occupied / cells,
                "noise": noise.get(grid.attrs.get("track") or "all", {}),
                "despike": spikes.get(grid.attrs.get("track") or "all", {}),
                "dropped": {key: int(ds.attrs[key]) for key in COUNT_ATTRS if key in ds.attrs},
            }
        )
    points = n_points if datasets and "point" in datasets[0].dims else None
    return run_record(inputs, definition, options, cell_size, parameters, points, tracks, frame)


def run_record(inputs, grid, options, cell_size, parameters, points, tracks, frame, dependencies=DEPENDENCIES):
    """The run record of ``run.json``: software, inputs, parameters, grid, points, tracks, detections.

    Parameters
    ----------
    inputs : sequence of str
    grid : defoscan.grid.GridDefinition
    options : defoscan.io.ReadOptions
    cell_size : float or None
        As requested.
    parameters : defoscan.threshold.ThresholdParameters
    points : int or None
        Points read (None for rasters).
    tracks : list of dict
        One entry per track.
    frame : geopandas.GeoDataFrame
        The detections.
    dependencies : sequence of str
        Distributions whose versions are recorded.

    Returns
    -------
    dict
    """
    return {
        "software": {
            "defoscan": __version__,
            "python": platform.python_version(),
            **{name: version(name) for name in dependencies},
        },
        "inputs": [{"path": os.path.abspath(p), "bytes": os.path.getsize(p)} for p in inputs],
        "parameters": {
            **parameters.as_dict(),
            "cell_size_requested": cell_size,
            **{key: value for key, value in options.as_dict().items() if key != "time_series"},
        },
        "grid": {
            "crs": crs_label(grid.crs),
            "cell_size_m": grid.cell_size,
            "width": grid.width,
            "height": grid.height,
            "bounds": grid.bounds,
        },
        "points": points,
        "tracks": tracks,
        "detections": {
            "count": len(frame),
            "by_sign": {s: int((frame["sign"] == s).sum()) for s in ("subsidence", "uplift")},
        },
    }
