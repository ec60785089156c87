"""The one composition of the stages, from input files to the output directory of the contract (docs/ARCHITECTURE.md).

Every run goes through the same chunk stages on a Zarr store of the map (:mod:`defoscan.store`). A run held in
memory is one chunk on an in-memory store (``zarr.storage.MemoryStore``) with no work directory; a chunked run
(``chunk``, ``workers`` or ``scheduler``) keeps the store and its intermediates in a work directory beside the
output (``.<name>.defoscan-work``), so that it is memory bounded and resumable:

======================  ====================================================================================
stage                   how
======================  ====================================================================================
read                    the inputs as tracks (:mod:`defoscan.tracks`): held, or tables streamed to Parquet and
                        partitioned by chunk (:mod:`defoscan.points_store`); rasters held
grid                    the cell size (:func:`choose_cell_size`) and the map's :class:`~defoscan.gridspec.GridSpec`
despike + grid          points: per chunk with the points around it, the map's noise sigma exact from every
                        chunk's residuals (:func:`despike_chunk`, :func:`grid_chunk`); rasters: warped and
                        despiked on the whole map (:func:`warp_map`, :func:`despike_raster`), masked per chunk
fill                    :func:`defoscan.fill_store.fill_store`
detect                  the detector's registry entry (:mod:`defoscan.detectors`)
polygons                :func:`defoscan.regions_store.store_polygons`
write                   COGs and the overview read from the store window by window, staged, then moved in
======================  ====================================================================================

Chunk stages run through :func:`defoscan.store.run_stage`: one after another in an in-memory run; on this
process's threads, a chunk per core, in a chunked run (:class:`defoscan.store.LocalThreads`), or on a
dask.distributed cluster (``workers``: a LocalCluster of that many processes; ``scheduler``: an existing cluster,
whose workers must see the work directory at the same path). A chunked run keeps every stage's results as it
goes (per-chunk flags, files renamed into place): started again with the same command after being killed, it
redoes only what was not finished; with other inputs or parameters it starts afresh. The same map gives the same
rasters and detections at any chunk size.
"""

import contextlib
import dataclasses
import inspect
import os
import platform
import shutil
import time
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import MemoryStore

from defoscan import __version__
from defoscan.cnn_regions import LOW_THRESHOLD_RATIO
from defoscan.cores import usable_cores
from defoscan.crs import crs_label
from defoscan.despike import despike_grid, point_spikes, point_statistics
from defoscan.detectors import DetectorSettings, detector
from defoscan.errors import InputError
from defoscan.fill import DEFAULT_METHOD
from defoscan.fill_store import fill_store
from defoscan.fingerprint import file_identity, same
from defoscan.grid import MIN_SCANNABLE_SHARE, median_grid, model_cell_size, scannable_share
from defoscan.gridspec import GridSpec
from defoscan.hashing import file_sha256
from defoscan.io import ReadOptions, distinct_inputs
from defoscan.locking import output_lock
from defoscan.log import collected_warnings, warn
from defoscan.mask import keep_cells, read_mask
from defoscan.outputs import STAGING, check_run_dir
from defoscan.raster import make_raster
from defoscan.regions import detections_frame
from defoscan.regions_store import store_polygons
from defoscan.result import DetectionResult
from defoscan.robust import robust_sigma_of_parts
from defoscan.store import LocalThreads, codecs_for, create_array, release_memory, run_stage, store_like
from defoscan.threshold import ThresholdParameters
from defoscan.tracks import map_grid, read_tracks

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
    "zarr",
    "dask",
    "distributed",
)
DEFAULT_CHUNK = 1024  # cells per chunk side of a chunked run: 4 MB per float32 layer
MIN_CHUNK = 64
SCHEDULER_TIMEOUT = "30s"  # how long to try reaching a --scheduler before giving up with one line
DEFAULT_PROBABILITY_THRESHOLD = 0.5  # when the model card gives none
CELL_SIZE_TOLERANCE = 2.5  # grid cells this many times larger or smaller than the model's get a warning
DESPIKE = {"radius": 250.0, "neighbours": 16}  # the points' neighbourhood (despike_points' defaults)
_SPIKE_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(point_spikes).parameters.items()
    if name in ("k", "min_neighbours", "min_support", "support", "min_residual")
}


def bundled_model_path():
    """The model shipped with the package (``defoscan/data/model/defoscan-compact.safetensors``, card beside it)."""
    return files("defoscan") / "data" / "model" / "defoscan-compact.safetensors"


def detect(inputs, out_dir=None, **keywords):
    """Find deformation in the inputs; write every output of the contract into ``out_dir`` if one is given.

    The warnings reported while it runs (:func:`defoscan.log.warn`) are kept in the result's record (``warnings``,
    written to ``run.json``) and shown in the report.

    Parameters
    ----------
    inputs : sequence of str
        Input files of one area (tracks are kept apart, see :func:`defoscan.io.read_inputs`).
    out_dir : str, optional
        Output directory; created if missing; files are replaced only when the whole run succeeds. Without it
        nothing is written (:meth:`defoscan.result.DetectionResult.write` writes later); a chunked run needs it.
    **keywords
        As for :func:`run_detect`.

    Returns
    -------
    defoscan.result.DetectionResult

    Examples
    --------
    >>> import defoscan
    >>> from defoscan.synth.scene import make_scene, write_scene
    >>> points, truths, info = make_scene(3, shape=(96, 96), cell_size=50.0)
    >>> csv, _, _ = write_scene(str(getfixture("tmp_path")), "scene", points, truths, info)
    >>> result = defoscan.detect([csv], detector="threshold")
    >>> result.velocity.rio.crs is not None, "sign" in result.detections.columns
    (True, True)
    """
    with collected_warnings() as messages:
        return run_detect(inputs, out_dir, warnings=messages, **keywords)


def run_detect(
    inputs,
    out_dir=None,
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
    chunk=None,
    workers=None,
    scheduler=None,
    log=None,
    progress=None,
    warnings=None,
    wait=False,
    fresh=False,
):
    """Find deformation in the inputs (see :func:`detect`).

    Parameters
    ----------
    inputs : sequence of str
    out_dir : str, optional
    options : defoscan.io.ReadOptions, optional
    cell_size : float, optional
        Metres. By default the model's cell size where the data support it (:func:`defoscan.grid.model_cell_size`)
        for a detector with a model, the data's own default for the others.
    parameters : defoscan.threshold.ThresholdParameters, optional
        The threshold detector's parameters; the other detectors use their ``background_size`` (velocities of a
        region are measured against that robust background), ``min_cells``, ``min_points`` and (CNN)
        ``min_velocity``.
    baseline : defoscan.hotspot.HotspotParameters or defoscan.ada.AdaParameters, optional
        The ``gistar`` or ``ada`` detector's own parameters.
    fill_method : str
        Gap-filling method of :mod:`defoscan.fill` for ``velocity_filled.tif`` (docs/FILL.md).
    detector : str
        A name of :data:`defoscan.detectors.DETECTORS`: ``cnn`` (the model's scan), ``threshold``, ``gistar``,
        ``ada`` (baselines).
    model : str or os.PathLike, optional
        Weights file of the CNN (its ``.json`` card beside it); the bundled model by default. Loaded before
        anything else is done.
    probability_threshold : float, optional
        Probability a region needs in one of its cells (CNN); the model card's ``threshold`` by default, else 0.5.
        The region's other cells need :data:`defoscan.cnn_regions.LOW_THRESHOLD_RATIO` times it (hysteresis).
    despike, hysteresis : bool
        Switches for the evaluation's ablations: ``despike=False`` grids the data as read; ``hysteresis=False``
        keeps only the cells over the probability threshold (CNN).
    localise : {"window", "pixel", "product"}, optional
        What the scanner blends (:func:`defoscan.scan.cell_probability`), instead of the card's ``localise``.
    scan_filled : bool, optional
        Scan the gap-filled map (True) or the gridded one (False) instead of what the model was trained on.
    mask : str or os.PathLike, optional
        Polygons or a raster of the area to keep (:mod:`defoscan.mask`).
    chunk : int, optional
        Run chunk by chunk in chunks of this many cells a side, in a work directory beside ``out_dir``.
    workers : int, optional
        Run the chunk stages on a ``dask.distributed.LocalCluster`` of this many processes (a chunked run).
    scheduler : str, optional
        Address of a running dask.distributed scheduler to run them on (a chunked run).
    log : callable, optional
        ``log(message)`` as each stage starts.
    progress : callable, optional
        ``progress(stage, done, total)`` in chunks, as chunks finish.
    warnings : list, optional
        Messages to record as the run's warnings.
    wait : bool
        When another run holds ``out_dir`` (:func:`defoscan.locking.output_lock`), wait for it to end instead of
        refusing.
    fresh : bool
        A chunked run: discard the work an interrupted run kept, instead of resuming it.

    Returns
    -------
    defoscan.result.DetectionResult
    """
    options = options or ReadOptions()
    inputs = distinct_inputs(list(inputs))  # a file given twice is read, fingerprinted and recorded once
    parameters = parameters or ThresholdParameters()
    log = log or (lambda message: None)
    entry = _checked_detector(detector, baseline, model, probability_threshold, localise, scan_filled)
    chunked = chunk is not None or workers is not None or scheduler is not None
    if chunked:
        chunk = DEFAULT_CHUNK if chunk is None else int(chunk)
        _check_chunking(chunk, workers, scheduler, out_dir)
    if out_dir is not None:
        check_run_dir(out_dir, beside="the work directory of a chunked run" if chunked else STAGING)
    lock = contextlib.nullcontext() if out_dir is None else output_lock(out_dir, wait=wait, log=log)
    with lock:  # one run at a time into out_dir: held for the run's life, work directory included
        started = time.perf_counter()
        model_path, card, threshold = _model_settings(entry, model, probability_threshold, localise, scan_filled)
        low_threshold = None if threshold is None else (LOW_THRESHOLD_RATIO if hysteresis else 1.0) * threshold
        work = None
        if chunked:  # resume the same run, or start afresh
            work = work_directory(out_dir)
            settings = {"cell_size": cell_size, "fill_method": fill_method, "despike": bool(despike), "mask": mask}
            settings.update(parameters=parameters, baseline=baseline, threshold=threshold, low=low_threshold)
            _prepare(work, _fingerprint(inputs, options, entry, model_path, card, chunk, settings), log, fresh)
        timings = {}
        client = cluster = None
        try:
            mark = time.perf_counter()
            try:  # bad input or an unreachable cluster: one line, and nothing to resume is kept
                if chunked:
                    client, cluster = _client(workers, scheduler)
                log("reading")
                crs, tracks = read_tracks(list(inputs), options, work)
                recipe = None if card is None else card["input"]
                grid = map_grid(crs, tracks, choose_cell_size(tracks, cell_size, recipe))
                if mask is not None:
                    read_mask(mask, crs)  # a bad mask fails now, in one line, before any chunk is worked
            finally:
                timings["read_s"] = time.perf_counter() - mark
            chunk = chunk if chunked else max(grid.shape)  # in memory: one chunk
            _release_arrow_memory()
            mask_path = None if mask is None else os.path.abspath(mask)
            stores, spikes = _grid_tracks(tracks, grid, chunk, work, client, progress, despike, mask_path, log, timings)
            if not any(_cells_with_data(store) for _, store in stores):
                if mask is not None and any(_chunk_total(store, "cells") for _, store in stores):
                    raise InputError(mask, "the mask leaves no cell with data")
                raise InputError(inputs[0], "no valid velocity values to grid")
            detecting = DetectorSettings(
                grid=grid,
                chunk=chunk,
                parameters=parameters,
                baseline=baseline,
                model_path=model_path,
                recipe=None if card is None else card["input"],
                threshold=threshold,
                low_threshold=low_threshold,
                client=client,
                timings=timings,
            )
            records, noise, scanned = _detect_tracks(stores, entry, detecting, fill_method, progress, log, timings)
        except InputError:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            _close(client, cluster)
        frame = detections_frame(records, crs)
        release_memory()
        record = _run_record(inputs, tracks, stores, grid, options, cell_size, parameters, noise, spikes, frame)
        record["scan_incomplete"] = _check_scanned(tracks, scanned, grid, card, cell_size)
        for entry_record in record["tracks"]:
            if entry_record["track"] in scanned:
                entry_record["scanned"] = scanned[entry_record["track"]]
        record["parameters"].update(
            fill_method=fill_method,
            detector=entry.name,
            model=_model_record(model_path, card),
            probability_threshold=threshold,
            low_probability_threshold=low_threshold,
            despike=bool(despike),
            baseline=None if baseline is None else baseline.as_dict(),
            mask=None if mask is None else _mask_record(mask_path, stores),
            chunk=chunk if chunked else None,
            workers=workers,
            scheduler=scheduler,
            threads=(usable_cores() if chunked and workers is None and scheduler is None else None),
        )
        record["warnings"] = warnings if warnings is not None else []
        timings["total_s"] = time.perf_counter() - started
        record["timings"] = {k: round(v, 3) for k, v in timings.items()}
        result = DetectionResult(record, frame, stores, grid)
        if out_dir is not None:
            log("writing")
            result.write(out_dir, started=started)
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
                result.kept_in(out_dir)
        return result


def _model_settings(entry, model, probability_threshold, localise, scan_filled):
    """The model file, its card (the scan options applied) and the probability cut-off; all None without a model."""
    if not entry.needs_model:
        return None, None, None
    model_path = str(bundled_model_path() if model is None else model)
    card = _recipe_overrides(load_card(model_path, bundled=model is None), localise, scan_filled)
    return model_path, card, _probability_threshold(probability_threshold, card, model_path)


def _fingerprint(inputs, options, entry, model_path, card, chunk, settings):
    """What a chunked run's work depends on (:mod:`defoscan.fingerprint`): a change starts it afresh."""
    settings = dict(settings)
    for key in ("parameters", "baseline"):
        settings[key] = None if settings[key] is None else settings[key].as_dict()
    settings["mask"] = None if settings["mask"] is None else file_identity(settings["mask"])
    return {
        "inputs": [file_identity(p) for p in inputs],
        "options": options.as_dict(),
        "detector": entry.name,
        "model": None if model_path is None else file_sha256(model_path),
        "recipe": None if card is None else card["input"],
        "chunk": chunk,
        "settings": settings,
        "software": __version__,
    }


def _grid_tracks(tracks, grid, chunk, work, client, progress, despike, mask, log, timings):
    """Each track's store, despiked and gridded (points) or warped (rasters); their despike records by track."""
    stores, spikes = [], {}
    for index, track in enumerate(tracks):
        store = MemoryStore() if work is None else os.path.join(work, "store", f"{index}.zarr")
        mark = time.perf_counter()
        _open_store(store, grid, chunk, track.name)
        if track.kind == "points":
            track.partition(grid, chunk)
            timings["read_s"] += time.perf_counter() - mark
            mark = time.perf_counter()
            log(f"despiking and gridding {track.name}")
            spikes[track.name] = _grid_points(store, track, chunk, client, progress, despike, mask)
        else:
            log(f"gridding {track.name}")
            spikes[track.name] = _grid_rasters(store, track, chunk, client, progress, despike, mask)
        timings["despike_grid_s"] = timings.get("despike_grid_s", 0.0) + time.perf_counter() - mark
        stores.append((track.name, store))
    return stores, spikes


def _detect_tracks(stores, entry, settings, fill_method, progress, log, timings):
    """Fill each track's gaps and run the detector on it; the detection records, and the noise records and (for a
    detector with a scan) the cells scanned (:func:`defoscan.scan_store.scanned_cells`) by track."""
    records, noise, coverage = [], {}, {}
    for name, store in stores:
        mark = time.perf_counter()
        log(f"filling gaps {name}")
        fill_store(
            store,
            cell_size=settings.grid.cell_size,
            chunk=settings.chunk,
            method=fill_method,
            client=settings.client,
            progress=_stage_progress(progress, f"fill {name}"),
        )
        timings["fill_s"] = timings.get("fill_s", 0.0) + time.perf_counter() - mark
        mark, scanned = time.perf_counter(), timings.get("scan_s", 0.0)
        log(f"{entry.stage} {name}")
        track_settings = dataclasses.replace(settings, progress=_stage_progress(progress, f"{entry.stage} {name}"))
        regions, noise[name] = entry.run(store, track_settings)
        if entry.needs_model:
            from defoscan.scan_store import scanned_cells  # torch: only for a detector with a model

            coverage[name] = scanned_cells(store, settings.chunk)
        polygons = store_polygons(store, settings.grid.transform, chunk=settings.chunk)
        for region in regions:
            records.append(
                {**region, "geometry": polygons[region["label"]], "kind": "deformation", "track": name}
                | {"detector": entry.name}
            )
        detected = time.perf_counter() - mark - (timings.get("scan_s", 0.0) - scanned)
        timings["detect_s"] = timings.get("detect_s", 0.0) + detected
    return records, noise, coverage


def _check_scanned(tracks, scanned, grid, card, requested):
    """The tracks the detector's scan left largely unexamined, each warned about; an empty list when none.

    Under :data:`defoscan.grid.MIN_SCANNABLE_SHARE` of a track's cells with data scanned (the share the default
    cell size demands of the model's cells), its "no detection" is no result there: a map gridded far coarser than
    the model's cells, or too sparse for its windows, may not be scanned at all (its probability.tif all NaN). The
    command line exits with :data:`defoscan.cli.EXIT_NOT_SCANNED` then, unless the user chose the cell size.
    """
    incomplete = []
    for track in tracks:
        record = scanned.get(track.name)
        if record is None or record["share"] >= MIN_SCANNABLE_SHARE:
            continue
        incomplete.append(track.name)
        from defoscan.scan_upsampled import scan_factor  # torch: only for a detector with a model

        recipe = card["input"]
        scan_cell = grid.cell_size / scan_factor(grid.cell_size, recipe)  # the model's, for a far coarser grid
        where = f"{track.sources[0]}: " if len(track.sources) == 1 else f"track {track.name}: "
        how = "none" if record["cells_scanned"] == 0 else f"only {record['share']:.0%}"
        hint = "" if requested is not None else ", or choose the cells with --cell-size"
        warn(
            f"{where}the detector scanned {how} of the map's {record['cells_with_data']:,} cells with data: its "
            f"windows of {int(recipe['window'])} cells of {scan_cell:g} m need "
            f"{float(recipe.get('min_valid', 0.5)):.0%} of their cells with data (the model was trained on "
            f"{float(recipe['cell_size']):g} m cells); no detection there does not mean no deformation "
            f"(run --detector threshold, which reads every cell{hint})"
        )
    return incomplete


def _checked_detector(name, baseline, model, probability_threshold, localise, scan_filled):
    """The detector's registry entry, with the options given checked against it."""
    entry = detector(name)
    if baseline is not None and (entry.parameters is None or not isinstance(baseline, entry.parameters)):
        raise InputError(None, f"baseline parameters {type(baseline).__name__} do not apply to the {name} detector")
    scan_options = (model, probability_threshold, localise, scan_filled)
    if not entry.needs_model and any(value is not None for value in scan_options):
        raise InputError(None, f"a model, a probability threshold and scan options do not apply to the {name} detector")
    return entry


def _check_chunking(chunk, workers, scheduler, out_dir):
    if chunk < MIN_CHUNK:
        raise InputError(None, f"--chunk must be at least {MIN_CHUNK} cells, got {chunk}")
    if workers is not None and scheduler is not None:
        raise InputError(None, "give --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise InputError(None, f"--workers must be at least 1, got {workers}")
    if out_dir is None:
        raise InputError(None, "a chunked run (chunk, workers, scheduler) needs an output directory")


def choose_cell_size(tracks, requested, recipe):
    """The grid's cell size: the one requested, else the model's where the data support it, else the data's own.

    Parameters
    ----------
    tracks : list
        From :func:`defoscan.tracks.read_tracks`.
    requested : float or None
        Metres; a requested size far from a model's is warned about.
    recipe : dict or None
        The model card's input recipe (``cell_size``, ``cell_sizes`` when trained across scales, ``window``,
        ``min_valid``); None for a detector without one.

    Returns
    -------
    float
        Metres.
    """
    if requested is not None:
        if recipe is not None:
            check_cell_size(requested, recipe)
        return float(requested)
    own = min(track.default_cell_size() for track in tracks)
    if recipe is None:
        return own
    model_cell = float(recipe["cell_size"])
    cells = np.unique(np.concatenate([track.occupied_cells(model_cell) for track in tracks]), axis=0)
    share = scannable_share(cells, int(recipe["window"]), float(recipe.get("min_valid", 0.5)))
    cell, why = model_cell_size(own, model_cell, share, recipe.get("cell_sizes"))
    if why:
        warn(why)
    return cell


def check_cell_size(cell_size, recipe):
    """Warn when a cell size the user chose is far from the model's (a default one is warned about when chosen).

    For a model trained across scales (``cell_sizes``) "far" is outside [smallest, largest], by the same tolerance.
    A far coarser grid is scanned on the model's cells interpolated from it (:mod:`defoscan.scan_upsampled`): the
    warning says which signals it cannot resolve.
    """
    sizes = [float(c) for c in recipe.get("cell_sizes") or [recipe["cell_size"]]]
    if float(cell_size) > max(sizes) * CELL_SIZE_TOLERANCE:  # scanned on the model's cells, interpolated
        warn(
            f"grid cells of {float(cell_size):g} m, coarser than the model's {max(sizes):g} m: scanned on "
            f"{max(sizes):g} m cells interpolated from them; signals under about {2 * float(cell_size):g} m across "
            "are not resolved"
        )
    elif not min(sizes) / CELL_SIZE_TOLERANCE <= float(cell_size):
        trained = "-".join(f"{c:g}" for c in sorted({min(sizes), max(sizes)}))
        warn(
            f"grid cells of {float(cell_size):g} m, the model was trained on {trained} m cells; "
            "its probabilities may not hold at this scale"
        )


# --- the store of a track -----------------------------------------------------------------------------------------


def _open_store(store, grid, chunk, name):
    """The track's store with its grid and empty maps; the existing one when a chunked run resumes."""
    group = zarr.open_group(store_like(store), mode="a")
    if "velocity" not in group:
        group.attrs.update(**grid.zarr_attrs(), track=name)
    create_array(group, "velocity", "float32", chunk, np.nan)
    create_array(group, "count", "uint32", chunk, 0)
    group.require_group("chunks")


def store_grid(store):
    """The :class:`~defoscan.gridspec.GridSpec` of a run's store."""
    return GridSpec.from_zarr_attrs(zarr.open_group(store_like(store), mode="r").attrs)


def _chunk_group(store, i, j):
    """Where chunk ``(i, j)`` keeps what its tasks found (despike statistics, counts)."""
    return zarr.open_group(store_like(store), mode="r+")["chunks"].require_group(f"{i}_{j}")


def _chunk_records(store):
    """Every chunk's record (attributes of ``chunks/<i>_<j>``), by ``(i, j)``."""
    records = {}
    for name, member in zarr.open_group(store_like(store), mode="r")["chunks"].groups():
        records[tuple(int(v) for v in name.split("_"))] = dict(member.attrs)
    return records


def _chunk_total(store, key):
    return int(sum(int(r.get(key, 0)) for r in _chunk_records(store).values()))


def _cells_with_data(store):
    return _chunk_total(store, "cells") - _chunk_total(store, "masked")


def _record_data_cells(store, chunk):
    """Cells with data per chunk, as the store's ``data_cells``: the later stages take the fullest chunks first."""
    group = zarr.open_group(store_like(store), mode="r+")
    rows, cols = GridSpec.from_zarr_attrs(group.attrs).chunks(chunk)
    cells = np.zeros((rows, cols), dtype=np.int64)
    for (i, j), record in _chunk_records(store).items():
        cells[i, j] = record.get("cells", 0) - record.get("masked", 0)
    group.attrs["data_cells"] = cells.tolist()


# --- points: despike and grid per chunk ---------------------------------------------------------------------------


def _grid_points(store, track, chunk, client, progress, despike, mask):
    """Despike (if switched on) and grid a points track into the store; the despike record of run.json."""
    if despike:
        run_stage(
            store,
            "despike",
            despike_chunk,
            chunk=chunk,
            client=client,
            progress=_stage_progress(progress, f"despike {track.name}"),
            points=track,
        )
    sigma = _sigma(store) if despike else None
    run_stage(
        store,
        "grid",
        grid_chunk,
        chunk=chunk,
        client=client,
        progress=_stage_progress(progress, f"grid {track.name}"),
        points=track,
        sigma=sigma,
        despike=despike,
        mask=mask,
    )
    _record_data_cells(store, chunk)
    if not despike:
        return {"removed": 0, "switched_off": True}
    records = _chunk_records(store).values()
    summary = {key: sum(int(r.get(key, 0)) for r in records) for key in ("judged", "candidates", "removed")}
    return {"sigma_mm_yr": sigma, **summary, **_SPIKE_DEFAULTS, **DESPIKE}


def _margin(grid):
    return DESPIKE["radius"] * 1.001 + grid.cell_size


def despike_chunk(store, i, j, chunk, *, points):
    """Neighbourhood statistics of chunk ``(i, j)``'s points (the first despike task), kept in the store."""
    grid = store_grid(store)
    x, y, v, own = points.block(grid, chunk, i, j, _margin(grid))
    count, residual, local = point_statistics(x, y, v, own, **DESPIKE)
    group = _chunk_group(store, i, j)
    codecs = codecs_for(group)
    for name, values in (("count", count), ("residual", residual), ("local", local)):
        shape, chunks = values.shape, (max(values.size, 1),)
        stored = group.create_array(name, shape=shape, chunks=chunks, dtype=values.dtype, overwrite=True, **codecs)
        stored[...] = values


def _sigma(store):
    """The map's despike noise sigma from every chunk's residuals of judged points (exact, read chunk by chunk)."""
    group = zarr.open_group(store_like(store), mode="r+")
    if "despike_sigma" in group.attrs:
        return group.attrs["despike_sigma"]
    chunks = group["chunks"]
    names = sorted(name for name, _ in chunks.groups())
    floor = _SPIKE_DEFAULTS["min_neighbours"]

    def residuals():
        for name in names:
            member = chunks[name]
            if "residual" in member:
                yield member["residual"][...][member["count"][...] >= floor]

    sigma = robust_sigma_of_parts(residuals)
    sigma = float(sigma) if np.isfinite(sigma) else None
    group.attrs["despike_sigma"] = sigma
    return sigma


def grid_chunk(store, i, j, chunk, *, points, sigma, despike=True, mask=None):
    """Chunk ``(i, j)``'s spikes decided with the map's ``sigma``, and its cells gridded from the points kept.

    With a ``mask`` (a file's path, :mod:`defoscan.mask`), the chunk's cells outside it lose their data.
    """
    grid = store_grid(store)
    x, y, v, own = points.block(grid, chunk, i, j, _margin(grid))
    record = {"judged": 0, "candidates": 0, "removed": 0}
    kept = own
    if despike:
        saved = _chunk_group(store, i, j)
        statistics = (saved["count"][...], saved["residual"][...], saved["local"][...])
        # sigma as a Python float, as despike_points has it: NumPy compares float32 residuals with it in float32.
        spike, summary = point_spikes(x, y, v, own, statistics, np.nan if sigma is None else float(sigma), **DESPIKE)
        kept = own[~spike]
        record = {key: int(summary[key]) for key in record}
    window = grid.chunk(i, j, chunk)
    median, count = median_grid(x[kept], y[kept], v[kept], window)
    record.update(cells=int(np.count_nonzero(count)), masked=_masked(median.ravel(), count.ravel(), window, mask))
    group = zarr.open_group(store_like(store), mode="r+")
    rows, cols = grid.chunk_slices(i, j, chunk)
    group["velocity"][rows, cols] = median
    group["count"][rows, cols] = count
    _chunk_group(store, i, j).attrs.update(record)


def _masked(values, count, window, mask):
    """Set a chunk's cells outside the mask to no data (flat arrays, in place); the cells with data removed."""
    if mask is None:
        return 0
    outside = ~keep_cells(read_mask(mask, window.crs), window.transform, window.shape, window.crs).ravel()
    removed = int(np.count_nonzero(outside & (count > 0)))
    values[outside], count[outside] = np.nan, 0
    return removed


# --- rasters: warp per chunk, despike whole, mask per chunk -------------------------------------------------------


def _grid_rasters(store, track, chunk, client, progress, despike, mask):
    """Warp, despike (if switched on) and mask a raster track into the store; the despike record of run.json."""
    threads = client if isinstance(client, LocalThreads) else None  # the rasters are held by this process
    whole = max(store_grid(store).shape)  # one chunk: the map
    # GDAL's average kernel takes its source footprint from the scale of the window warped, so a reprojected raster
    # warped chunk by chunk is not the raster warped whole (90 % of the cells differed on a longitude/latitude
    # raster in 64-cell chunks): the warp is done once, on the whole map, from the rasters this process holds.
    run_stage(store, "warp", warp_map, chunk=whole, client=None, raster=track)
    summary = {"removed": 0, "switched_off": True}
    if despike:
        run_stage(store, "despike_raster", despike_raster, chunk=whole, client=None)
        summary = dict(zarr.open_group(store_like(store), mode="r").attrs["despike"])
    run_stage(store, "mask", mask_chunk, chunk=chunk, client=threads, mask=mask)
    _record_data_cells(store, chunk)
    return summary


def warp_map(store, i, j, chunk, *, raster):
    """The map warped from the track's rasters (:meth:`defoscan.tracks.RasterTrack.warp`), as one chunk."""
    gridded = raster.gridded(store_grid(store))
    group = zarr.open_group(store_like(store), mode="r+")
    group["velocity"][...] = gridded["velocity"].values
    group["count"][...] = gridded["count"].values


def despike_raster(store, i, j, chunk, **_):
    """The whole map's spike cells removed (:func:`defoscan.despike.despike_grid`: one map-wide noise estimate)."""
    grid = store_grid(store)
    group = zarr.open_group(store_like(store), mode="r+")
    raster = make_raster(group["velocity"][...], grid.transform, grid.crs, count=group["count"][...])
    despiked, spike = despike_grid(raster)
    group["velocity"][...] = despiked["velocity"].values
    group["count"][...] = despiked["count"].values
    group.attrs["despike"] = dict(spike.attrs)


def mask_chunk(store, i, j, chunk, *, mask=None):
    """Chunk ``(i, j)``'s cells with data counted, and those outside the mask (if any) set to no data."""
    grid = store_grid(store)
    group = zarr.open_group(store_like(store), mode="r+")
    rows, cols = grid.chunk_slices(i, j, chunk)
    velocity, count = group["velocity"][rows, cols].ravel(), group["count"][rows, cols].ravel()
    record = {"cells": int(np.count_nonzero(np.isfinite(velocity)))}
    record["masked"] = _masked(velocity, count, grid.chunk(i, j, chunk), mask)
    if record["masked"]:
        group["velocity"][rows, cols] = velocity.reshape(rows.stop - rows.start, -1)
        group["count"][rows, cols] = count.reshape(rows.stop - rows.start, -1)
    _chunk_group(store, i, j).attrs.update(record)


# --- the model ----------------------------------------------------------------------------------------------------


def load_card(path, *, bundled):
    """The model card of a weights file, the network loaded once to check it; an :class:`InputError` naming a file
    that does not load."""
    from defoscan.model.inputs import REQUIRED_KEYS, input_channels
    from defoscan.model.weights import load_model

    try:
        _, card = load_model(path)
    except ValueError as error:
        problem, prefix = str(error), f"{Path(path)}: "
        problem = problem[len(prefix) :] if problem.startswith(prefix) else problem
        if bundled and not os.path.isfile(path):
            problem += " (the bundled model is not installed; pass --model PATH or --detector threshold)"
        raise InputError(path, f"cannot load the model: {problem}") from None
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
    return card


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
    described.update({key: card[key] for key in ("name", "version", "applies_to") if key in card})
    return described


# --- the run record -----------------------------------------------------------------------------------------------


def _mask_record(path, stores):
    return {"path": path, "cells_removed": [_chunk_total(store, "masked") for _, store in stores]}


def _run_record(inputs, tracks, stores, grid, options, cell_size, parameters, noise, spikes, frame):
    cells = grid.width * grid.height
    entries = []
    for track, (name, store) in zip(tracks, stores, strict=True):
        occupied = _cells_with_data(store)
        entries.append(
            {
                "track": name,
                "sources": track.sources,
                "points": track.rows,
                "cells_with_data": occupied,
                "coverage": occupied / cells,
                "noise": noise.get(name, {}),
                "despike": spikes.get(name, {}),
                "dropped": dict(track.dropped),
            }
        )
    points = None if tracks[0].kind == "raster" else int(sum(t.rows for t in tracks))
    return run_record(inputs, grid, options, cell_size, parameters, points, entries, frame)


def run_record(inputs, grid, options, cell_size, parameters, points, tracks, frame, dependencies=DEPENDENCIES):
    """The run record of ``run.json``: software, inputs, parameters, grid, points, tracks, detections.

    Parameters
    ----------
    inputs : sequence of str
    grid : defoscan.gridspec.GridSpec
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
        "inputs": [_input_record(item) for item in inputs],
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


def _input_record(item):
    """A file as its path and size; a dataset passed in memory as the file it was read from (if it names one)."""
    if isinstance(item, str | os.PathLike):
        return {"path": os.path.abspath(item), "bytes": os.path.getsize(item)}
    sources = [str(source) for source in item.attrs.get("sources", [])]
    return {"path": ", ".join(sources) or "a dataset in memory", "bytes": None, "in_memory": True}


# --- a chunked run's work directory and cluster -------------------------------------------------------------------


def work_directory(out_dir):
    """Where a chunked run keeps its intermediates: a hidden sibling of the output directory."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    return os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.defoscan-work")


def _prepare(work, fingerprint, log, fresh=False):
    """Keep the work directory of the same run (resume); start afresh when the inputs or parameters changed.

    ``fresh``: start afresh whatever the kept fingerprint says (an input changed in a way its identity misses:
    :func:`defoscan.fingerprint.file_identity`).
    """
    from defoscan.atomic import write_json

    record = os.path.join(work, "fingerprint.json")
    if os.path.exists(record) and not fresh:
        import json

        with open(record) as handle:
            if same(json.load(handle), fingerprint):
                log(f"resuming the run kept in {work}")
                return
        log("the inputs or parameters changed since the interrupted run: starting afresh")
        shutil.rmtree(work)
    elif os.path.exists(work):
        if fresh:
            log(f"starting afresh: the work kept in {work} is discarded")
        shutil.rmtree(work)
    os.makedirs(work)
    write_json(record, fingerprint)


def _client(workers, scheduler):
    """A dask.distributed client (and the LocalCluster it owns), or this process's threads, one per core."""
    if workers is None and scheduler is None:
        cores = usable_cores()
        return (LocalThreads(cores) if cores > 1 else None), None
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout=SCHEDULER_TIMEOUT), None
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(None, f"cannot reach the dask scheduler at {scheduler} ({error})") from None
    with _sigint_ignored():  # the worker processes inherit it: Ctrl-C stops this process, which closes them
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored in the block (in the main thread; elsewhere nothing changes).

    A terminal's Ctrl-C goes to every process of its group: a LocalCluster's worker processes, started here, would
    each print a traceback of their own.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _close(client, cluster):
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _stage_progress(progress, stage):
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def _release_arrow_memory():
    """Hand back what Arrow's pool kept from the read passes (it keeps freed memory for reuse), then the heap's."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    release_memory()
