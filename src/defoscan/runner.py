"""``detect`` chunk by chunk: a country on one machine, a continent on a cluster, memory bounded, runs resumable.

The same outputs as :func:`defoscan.detect.detect` (the CNN detector), computed in map chunks held in a work
directory beside the output directory (``.<name>.defoscan-work``):

======================  ====================================================================================
stage                   how
======================  ====================================================================================
read                    tables streamed to Parquet, projected, partitioned by chunk (:mod:`defoscan.points_store`)
despike                 per chunk with the points within the radius around it; the map's noise sigma exactly from
                        every chunk's residuals (:func:`defoscan.despike.point_statistics`, ``point_spikes``)
grid                    per chunk: cell medians of the chunk's points that are not spikes
fill                    :func:`defoscan.fill_store.fill_store`
scan                    :func:`defoscan.scan_store.scan_store`
regions                 :func:`defoscan.regions_store.regions_store` (hysteresis, labels across chunk borders)
write                   COGs and the overview read from the store chunk by chunk; all outputs staged, then moved
======================  ====================================================================================

Chunk stages run through :func:`defoscan.store.run_stage`: on this process's threads, a chunk per core, by default
(:class:`defoscan.store.LocalThreads`), or on a dask.distributed cluster (``workers``: a LocalCluster of that many
processes; ``scheduler``: an existing cluster, whose workers must see the work directory at the same path). Every
stage's results are kept as it goes (per-chunk flags, files renamed into place), so a run killed at any moment and
started again with the same command redoes only what was not finished and ends with the same outputs. A run whose
inputs or parameters changed starts afresh. The work directory is removed once the outputs are in place.
"""

import glob
import inspect
import json
import os
import shutil
import time

import numpy as np
import zarr
from affine import Affine
from pyproj import CRS

from defoscan import __version__
from defoscan.cnn_regions import LOW_THRESHOLD_RATIO
from defoscan.despike import point_spikes, point_statistics
from defoscan.errors import InputError
from defoscan.fill import DEFAULT_METHOD
from defoscan.fill.tiling import grid_origin
from defoscan.fill_store import fill_store
from defoscan.grid import (
    GridDefinition,
    aligned_grid,
    cell_indices,
    cell_medians,
    check_grid_size,
    model_cell_size,
    scannable_share,
)
from defoscan.hashing import file_sha256
from defoscan.io import ReadOptions
from defoscan.io.filters import COUNT_ATTRS
from defoscan.log import collected_warnings, warn
from defoscan.mask import keep_cells, read_mask
from defoscan.outputs import check_writable_dir, staged_directory, write_geojson, write_geopackage, write_json
from defoscan.points_store import (
    choose_crs,
    default_cell_size,
    occupied_cells_of,
    partition_points,
    project_spills,
    read_block,
    spill_tables,
)
from defoscan.regions import detections_frame
from defoscan.robust import robust_sigma_of_parts
from defoscan.scan_store import scan_store
from defoscan.store import LocalThreads, create_array, release_memory, run_stage
from defoscan.threshold import ThresholdParameters

DEFAULT_CHUNK = 1024  # cells per chunk side: 4 MB per float32 layer
DESPIKE = {"radius": 250.0, "neighbours": 16}  # despike_points' neighbourhood (its defaults)
MIN_NEIGHBOURS = inspect.signature(point_spikes).parameters["min_neighbours"].default  # judged points' (sigma)


def work_directory(out_dir):
    """Where a chunked run keeps its intermediates: a hidden sibling of the output directory."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    return os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.defoscan-work")


def detect_chunked(inputs, out_dir, **keywords):
    """Find deformation in point tables chunk by chunk and write the outputs of :func:`defoscan.detect.detect`.

    The warnings reported in this process while it runs are kept in ``run.json`` and shown in the report, as
    :func:`defoscan.detect.detect` does. Parameters, returns: :func:`run_detect_chunked`.
    """
    with collected_warnings() as messages:
        return run_detect_chunked(inputs, out_dir, warnings=messages, **keywords)


def run_detect_chunked(
    inputs,
    out_dir,
    *,
    options=None,
    cell_size=None,
    parameters=None,
    fill_method=DEFAULT_METHOD,
    model=None,
    probability_threshold=None,
    chunk=DEFAULT_CHUNK,
    workers=None,
    scheduler=None,
    mask=None,
    log=None,
    progress=None,
    warnings=None,
):
    """Find deformation in point tables chunk by chunk (see :func:`detect_chunked`).

    Parameters
    ----------
    inputs, out_dir, options, cell_size, parameters, fill_method, model, probability_threshold, mask
        As for :func:`defoscan.detect.run_detect` (CNN detector).
    chunk : int
        Cells per chunk side.
    workers : int, optional
        Run the chunk stages on a ``dask.distributed.LocalCluster`` of this many worker processes.
    scheduler : str, optional
        Address of a running dask.distributed scheduler to run them on instead.
    log : callable, optional
        ``log(message)`` as each stage starts.
    progress : callable, optional
        ``progress(stage, done, total)`` in chunks, as chunks finish.
    warnings : list, optional
        Messages to record as the run's warnings in ``run.json``.

    Returns
    -------
    dict
        The run record written to ``run.json``, plus ``detections``.
    """
    from defoscan.detect import _load_model, _probability_threshold, bundled_model_path, check_cell_size

    options = options or ReadOptions()
    parameters = parameters or ThresholdParameters()
    log = log or (lambda message: None)
    if chunk < 64:
        raise InputError(None, f"--chunk must be at least 64 cells, got {chunk}")
    if workers is not None and scheduler is not None:
        raise InputError(None, "give --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise InputError(None, f"--workers must be at least 1, got {workers}")
    check_writable_dir(out_dir)
    started = time.perf_counter()
    model_path = str(bundled_model_path() if model is None else model)
    network, card = _load_model(model_path, bundled=model is None)
    del network  # tasks load the model from its file
    threshold = _probability_threshold(probability_threshold, card, model_path)
    low_threshold = LOW_THRESHOLD_RATIO * threshold
    work = work_directory(out_dir)
    fingerprint = {
        "inputs": [_file_identity(p) for p in inputs],
        "options": options.as_dict(),
        "mask": None if mask is None else _file_identity(mask),
        "cell_size": cell_size,
        "chunk": int(chunk),
        "fill_method": fill_method,
        "model": file_sha256(model_path),
        "threshold": threshold,
        "parameters": parameters.as_dict(),
        "software": __version__,
    }
    _prepare(work, fingerprint, log)
    _remove_stale_staging(out_dir)
    timings = {}
    mark = time.perf_counter()
    client = cluster = None
    try:  # bad input or an unreachable cluster: one line, and nothing to resume is kept
        client, cluster = _client(workers, scheduler)
        log("reading")
        spills = spill_tables(list(inputs), options, os.path.join(work, "spill"))
        crs = choose_crs(spills)
        tracks = project_spills(spills, crs, os.path.join(work, "projected"))
        if cell_size is None:  # the model's cell where the data support it, as in memory (defoscan.grid)
            recipe = card["input"]
            cells = np.unique(np.concatenate([occupied_cells_of(t, recipe["cell_size"]) for t in tracks]), axis=0)
            share = scannable_share(cells, recipe["window"], recipe.get("min_valid", 0.5))
            cell, why = model_cell_size(min(default_cell_size(t) for t in tracks), recipe["cell_size"], share)
            if why:
                warn(why)
        else:
            cell = float(cell_size)
            check_cell_size(cell, card["input"])
        grid = aligned_grid(
            crs,
            cell,
            min(t["west"] for t in tracks),
            max(t["east"] for t in tracks),
            min(t["south"] for t in tracks),
            max(t["north"] for t in tracks),
        )
        check_grid_size(grid, inputs[0])
        if mask is not None:
            read_mask(mask, crs)  # a bad mask fails now, in one line, before any chunk is worked
    except InputError:
        shutil.rmtree(work, ignore_errors=True)
        _close(client, cluster)
        raise
    timings["read_s"] = time.perf_counter() - mark
    _release_arrow_memory()
    try:
        stores, summaries = [], []
        for index, track in enumerate(tracks):
            name = track["track"] or "all"
            path = os.path.join(work, "store", f"{index}.zarr")
            parts = os.path.join(work, "parts", str(index))
            stats = os.path.join(work, "despike", str(index))
            mark = time.perf_counter()
            _partition(track, grid, chunk, parts, path, log, name)
            _release_arrow_memory()
            timings["read_s"] += time.perf_counter() - mark

            mark = time.perf_counter()
            log(f"despiking and gridding {name}")
            os.makedirs(stats, exist_ok=True)
            stage_progress = _stage_progress(progress, f"despike {name}")
            run_stage(
                path,
                "despike",
                despike_chunk,
                chunk=chunk,
                client=client,
                progress=stage_progress,
                parts=parts,
                stats=stats,
            )
            sigma = _sigma(stats)
            stage_progress = _stage_progress(progress, f"grid {name}")
            run_stage(
                path,
                "grid",
                grid_chunk,
                chunk=chunk,
                client=client,
                progress=stage_progress,
                parts=parts,
                stats=stats,
                sigma=sigma,
                mask=None if mask is None else os.path.abspath(mask),
            )
            summaries.append(_despike_summary(stats, sigma))
            _record_data_cells(path, stats, chunk)
            timings["despike_grid_s"] = timings.get("despike_grid_s", 0.0) + time.perf_counter() - mark

            mark = time.perf_counter()
            log(f"filling gaps {name}")
            fill_store(
                path,
                cell_size=cell,
                chunk=chunk,
                method=fill_method,
                client=client,
                progress=_stage_progress(progress, f"fill {name}"),
            )
            timings["fill_s"] = timings.get("fill_s", 0.0) + time.perf_counter() - mark

            mark = time.perf_counter()
            log(f"scanning {name}")
            scan_store(path, model_path, chunk=chunk, client=client, progress=_stage_progress(progress, f"scan {name}"))
            timings["scan_s"] = timings.get("scan_s", 0.0) + time.perf_counter() - mark
            stores.append((name, path))
    finally:
        _close(client, cluster)

    from defoscan.regions_store import regions_store, store_polygons

    mark = time.perf_counter()
    log("outlining regions")
    records = []
    for name, path in stores:
        regions = regions_store(
            path,
            cell_size=cell,
            threshold=threshold,
            low_threshold=low_threshold,
            background_size=parameters.background_size,
            min_cells=parameters.min_cells,
            min_points=parameters.min_points,
            min_velocity=parameters.min_velocity,
            chunk=chunk,
        )
        polygons = store_polygons(path, grid.transform, chunk=chunk)
        for region in regions:
            geometry = polygons[region["label"]]
            records.append({**region, "geometry": geometry, "kind": "deformation", "track": name, "detector": "cnn"})
    frame = detections_frame(records, crs)
    timings["detect_s"] = time.perf_counter() - mark
    release_memory()

    log("writing")
    mark = time.perf_counter()
    record = _run_record(inputs, spills, tracks, stores, summaries, grid, options, cell_size, parameters, frame)
    record["parameters"].update(
        fill_method=fill_method,
        detector="cnn",
        model=_model_record(model_path, card),
        probability_threshold=threshold,
        low_probability_threshold=low_threshold,
        chunk=int(chunk),
        workers=workers,
        scheduler=scheduler,
        threads=None if workers is not None or scheduler is not None else _usable_cores(),
        mask=None if mask is None else {"path": os.path.abspath(mask), "cells_removed": _masked_cells(work, stores)},
    )
    record["warnings"] = warnings if warnings is not None else []
    _write_outputs(out_dir, record, frame, stores, grid, fill_method, threshold, timings, started, mark)
    shutil.rmtree(work, ignore_errors=True)
    return {**record, "detections": frame}


def despike_chunk(path, i, j, chunk, *, parts, stats):
    """Neighbourhood statistics of chunk ``(i, j)``'s points (the first despike task), saved beside the store."""
    grid = store_grid(path)
    x, y, v, own = read_block(parts, grid, chunk, i, j, DESPIKE["radius"] * 1.001 + grid.cell_size)
    count, residual, local = point_statistics(x, y, v, own, **DESPIKE)
    _save_npz(os.path.join(stats, f"{i}_{j}.npz"), count=count, residual=residual, local=local)


def grid_chunk(path, i, j, chunk, *, parts, stats, sigma, mask=None):
    """Chunk ``(i, j)``'s spikes decided with the map's ``sigma``, and its cells gridded from the points kept.

    With a ``mask`` (a file's path, :mod:`defoscan.mask`), the chunk's cells outside it lose their data, as the
    in-memory run removes them after gridding.
    """
    grid = store_grid(path)
    x, y, v, own = read_block(parts, grid, chunk, i, j, DESPIKE["radius"] * 1.001 + grid.cell_size)
    with np.load(os.path.join(stats, f"{i}_{j}.npz")) as saved:
        statistics = (saved["count"], saved["residual"], saved["local"])
    # sigma as a Python float, as despike_points has it: NumPy compares float32 residuals with it in float32.
    spike, summary = point_spikes(x, y, v, own, statistics, np.nan if sigma is None else float(sigma), **DESPIKE)
    kept = own[~spike]
    height, width = min(chunk, grid.height - i * chunk), min(chunk, grid.width - j * chunk)
    rows, cols = cell_indices(x[kept], y[kept], grid)
    rows -= i * chunk
    cols -= j * chunk
    median, count = cell_medians(rows * width + cols, v[kept], height * width)
    masked = 0
    if mask is not None:
        window = grid.transform * Affine.translation(j * chunk, i * chunk)
        outside = ~keep_cells(read_mask(mask, grid.crs), window, (height, width), grid.crs).ravel()
        masked = int(np.count_nonzero(outside & (count > 0)))
        median[outside], count[outside] = np.nan, 0
    group = zarr.open_group(path, mode="r+")
    target = (slice(i * chunk, i * chunk + height), slice(j * chunk, j * chunk + width))
    group["velocity"][target] = median.reshape(height, width)
    group["count"][target] = count.reshape(height, width)
    record = {k: summary[k] for k in ("judged", "candidates", "removed")}
    record.update(cells=int(np.count_nonzero(count)), masked=masked)
    _write_json_atomic(os.path.join(stats, f"{i}_{j}.json"), record)


def _masked_cells(work, stores):
    """Cells with data the mask removed, per track, from the grid stage's per-chunk records."""
    return [
        sum(int(r.get("masked", 0)) for r in _chunk_records(os.path.join(work, "despike", str(index))).values())
        for index in range(len(stores))
    ]


def store_grid(path):
    """The :class:`~defoscan.grid.GridDefinition` of a run's store."""
    attrs = zarr.open_group(path, mode="r").attrs
    top, left = (int(v) for v in attrs["origin"])
    height, width = (int(v) for v in attrs["shape"])
    cell = float(attrs["cell_size"])
    return GridDefinition(CRS.from_wkt(attrs["crs"]), cell, left * cell, -top * cell, width, height)


def _partition(track, grid, chunk, parts, path, log, name):
    """The track's store (empty maps) and its points partitioned by chunk, once."""
    done = os.path.join(parts, "_done")
    if os.path.exists(done) and os.path.exists(path):
        return
    log(f"partitioning {name}")
    partition_points(track, grid, chunk, parts)
    group = zarr.open_group(path, mode="w")
    group.attrs.update(
        origin=list(grid_origin(grid.transform)),
        shape=[grid.height, grid.width],
        cell_size=grid.cell_size,
        crs=grid.crs.to_wkt(),
        track=name,
    )
    create_array(group, "velocity", "float32", chunk, np.nan)
    create_array(group, "count", "uint32", chunk, 0)
    open(done, "w").close()


def _release_arrow_memory():
    """Hand back what Arrow's pool kept from the read passes (it keeps freed memory for reuse), then the heap's."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    release_memory()


def _sigma(stats):
    """The map's despike noise sigma from every chunk's residuals of judged points (exact, read chunk by chunk)."""
    record = os.path.join(stats, "sigma.json")
    if os.path.exists(record):
        with open(record) as handle:
            return json.load(handle)["sigma"]
    files = sorted(f for f in os.listdir(stats) if f.endswith(".npz"))

    def residuals():
        for name in files:
            with np.load(os.path.join(stats, name)) as saved:
                yield saved["residual"][saved["count"] >= MIN_NEIGHBOURS]

    sigma = robust_sigma_of_parts(residuals)
    sigma = float(sigma) if np.isfinite(sigma) else None
    _write_json_atomic(record, {"sigma": sigma})
    return sigma


def _chunk_records(stats):
    """The grid stage's record of every chunk, by ``(i, j)``."""
    records = {}
    for name in os.listdir(stats):
        if name.endswith(".json") and name != "sigma.json":
            with open(os.path.join(stats, name)) as handle:
                records[tuple(int(v) for v in name[: -len(".json")].split("_"))] = json.load(handle)
    return records


def _despike_summary(stats, sigma):
    """The run record's despike entry: the map's sigma and the chunks' counts summed."""
    records = _chunk_records(stats).values()
    summary = {key: sum(r[key] for r in records) for key in ("judged", "candidates", "removed")}
    return {"sigma_mm_yr": sigma, **summary, **DESPIKE}


def _record_data_cells(path, stats, chunk):
    """Cells with data per chunk, as the store's ``data_cells`` attribute: the later stages take the fullest first."""
    group = zarr.open_group(path, mode="r+")
    height, width = (int(v) for v in group.attrs["shape"])
    cells = np.zeros((-(-height // chunk), -(-width // chunk)), dtype=np.int64)
    for (i, j), record in _chunk_records(stats).items():
        cells[i, j] = record["cells"]
    group.attrs["data_cells"] = cells.tolist()


def _write_outputs(out_dir, record, frame, stores, grid, fill_method, threshold, timings, started, mark):
    from defoscan.figures import write_overview_from_store
    from defoscan.report import write_report_from_run
    from defoscan.store_outputs import write_cog_from_arrays
    from defoscan.styles import detections_qml, write_styles

    groups = [(name, zarr.open_group(path, mode="r")) for name, path in stores]
    software = f"defoscan {__version__}"
    with staged_directory(out_dir) as staging:
        velocities = [g["velocity"] for _, g in groups]
        counts = [g["count"] for _, g in groups]
        write_cog_from_arrays(
            os.path.join(staging, "velocity.tif"),
            [(f"velocity {name}", g["velocity"]) for name, g in groups],
            grid.transform,
            grid.crs,
            tags={"units": "mm/yr", "software": software},
            units="mm/yr",
        )
        write_cog_from_arrays(
            os.path.join(staging, "count.tif"),
            [(f"count {name}", g["count"]) for name, g in groups],
            grid.transform,
            grid.crs,
            tags={"units": "points", "software": software},
            units="points",
            nodata=0,
        )
        write_cog_from_arrays(
            os.path.join(staging, "velocity_filled.tif"),
            [(f"velocity_filled {name}", g["velocity_filled"]) for name, g in groups],
            grid.transform,
            grid.crs,
            tags={"units": "mm/yr", "fill_method": fill_method, "software": software},
            units="mm/yr",
        )
        write_cog_from_arrays(
            os.path.join(staging, "probability.tif"),
            [(f"probability {name}", g["probability"]) for name, g in groups],
            grid.transform,
            grid.crs,
            tags={
                "units": "probability",
                "detector": "cnn",
                "software": software,
                "probability_threshold": str(threshold),
            },
            units="probability",
        )
        write_geojson(os.path.join(staging, "detections.geojson"), frame)
        write_geopackage(os.path.join(staging, "detections.gpkg"), frame, style=detections_qml())
        write_styles(staging, velocities, counts)
        write_overview_from_store(
            os.path.join(staging, "overview.png"),
            [(name, g["velocity"]) for name, g in groups],
            frame,
            grid.transform,
            grid.crs,
        )
        timings["write_s"] = time.perf_counter() - mark
        timings["total_s"] = time.perf_counter() - started
        record["timings"] = {k: round(v, 3) for k, v in timings.items()}
        write_json(os.path.join(staging, "run.json"), record)
        write_report_from_run(staging)  # from the files just written (windowed reads), as `defoscan report` does


def _run_record(inputs, spills, tracks, stores, summaries, grid, options, cell_size, parameters, frame):
    from defoscan.detect import DEPENDENCIES, run_record

    cells = grid.width * grid.height
    entries = []
    for track, (name, path), despike in zip(tracks, stores, summaries, strict=True):
        occupied = int(np.sum(zarr.open_group(path, mode="r").attrs["data_cells"]))
        entries.append(
            {
                "track": name,
                "sources": track["sources"],
                "points": track["rows"],
                "cells_with_data": occupied,
                "coverage": occupied / cells,
                "noise": {},
                "despike": despike,
                "dropped": {  # by the readers, summed over the track's files
                    key: sum(int(s[key]) for s in spills if s["track"] == track["track"] and key in s)
                    for key in COUNT_ATTRS
                    if any(key in s for s in spills if s["track"] == track["track"])
                },
            }
        )
    points = int(sum(s["rows"] for s in spills))
    dependencies = (*DEPENDENCIES, "dask", "distributed", "zarr")
    return run_record(inputs, grid, options, cell_size, parameters, points, entries, frame, dependencies)


def _model_record(path, card):
    from defoscan.detect import _model_record as record

    return record(path, card)


def _prepare(work, fingerprint, log):
    """Keep the work directory of the same run (resume); start afresh when the inputs or parameters changed."""
    record = os.path.join(work, "fingerprint.json")
    if os.path.exists(record):
        with open(record) as handle:
            if json.load(handle) == json.loads(json.dumps(fingerprint)):
                log(f"resuming the run kept in {work}")
                return
        log("the inputs or parameters changed since the interrupted run: starting afresh")
        shutil.rmtree(work)
    elif os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    _write_json_atomic(record, fingerprint)


def _remove_stale_staging(out_dir):
    """Staging directories of this output left by a run killed while writing (they are never moved into place)."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    pattern = os.path.join(os.path.dirname(out_dir), f".{glob.escape(os.path.basename(out_dir))}.partial-*")
    for stale in glob.glob(pattern):
        shutil.rmtree(stale, ignore_errors=True)


def _client(workers, scheduler):
    """A dask.distributed client (and the LocalCluster it owns), or this process's threads, one per core."""
    if workers is None and scheduler is None:
        cores = _usable_cores()
        return (LocalThreads(cores) if cores > 1 else None), None
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(None, f"cannot reach the dask scheduler at {scheduler} ({error})") from None
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def _close(client, cluster):
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _usable_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _stage_progress(progress, stage):
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def _file_identity(path):
    stat = os.stat(path)
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def _save_npz(path, **arrays):
    temporary = path + ".partial.npz"
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def _write_json_atomic(path, document):
    with open(path + ".partial", "w") as handle:
        json.dump(document, handle)
    os.replace(path + ".partial", path)
