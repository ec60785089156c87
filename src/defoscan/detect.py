"""``detect``: the stages composed, from input files to the output directory of the contract (DESIGN.md)."""

import os
import platform
import time
from importlib.metadata import version

import numpy as np
from pyproj import CRS

from defoscan import __version__
from defoscan.crs import crs_label
from defoscan.despike import despike_grid, despike_points
from defoscan.errors import InputError
from defoscan.figures import write_overview
from defoscan.fill import DEFAULT_METHOD, fill_grid
from defoscan.grid import GridDefinition, grid_inputs
from defoscan.io import ReadOptions, read_inputs
from defoscan.outputs import (
    check_writable_dir,
    staged_directory,
    write_cog,
    write_geojson,
    write_geopackage,
    write_json,
)
from defoscan.regions import detections_frame, label_polygons
from defoscan.report import write_report
from defoscan.threshold import ThresholdParameters, threshold_detect

DEPENDENCIES = ("numpy", "scipy", "pyarrow", "pyproj", "rasterio", "shapely", "geopandas", "xarray", "h5py")


def detect(inputs, out_dir, *, options=None, cell_size=None, parameters=None, fill_method=DEFAULT_METHOD, log=None):
    """Find deformation in the inputs and write every output of the contract into ``out_dir``.

    Parameters
    ----------
    inputs : sequence of str
        Input files of one area (tracks are kept apart, see :func:`defoscan.io.read_inputs`).
    out_dir : str
        Output directory; created if missing; files are replaced only when the whole run succeeds.
    options : defoscan.io.ReadOptions, optional
    cell_size : float, optional
        Metres; the density-based default of :mod:`defoscan.grid` when not given.
    parameters : defoscan.threshold.ThresholdParameters, optional
    fill_method : str
        Gap-filling method of :mod:`defoscan.fill` for ``velocity_filled.tif`` (the modified matrix completion by
        default, the best measured; see docs/FILL.md).
    log : callable, optional
        Called with a short message as each stage starts.

    Returns
    -------
    dict
        The run record written to ``run.json``, plus ``detections`` (the GeoDataFrame).
    """
    options = options or ReadOptions()
    parameters = parameters or ThresholdParameters()
    log = log or (lambda message: None)
    check_writable_dir(out_dir)
    timings = {}
    started = time.perf_counter()

    log("reading")
    datasets = read_inputs(list(inputs), options)
    timings["read_s"] = time.perf_counter() - started

    log("despiking and gridding")
    mark = time.perf_counter()
    spikes = {}
    if "point" in datasets[0].dims:  # points: despike before gridding; the cell median absorbs what is left
        despiked = []
        for points in datasets:
            kept, spike = despike_points(points)
            spikes[points.attrs.get("track") or "all"] = dict(spike.attrs)
            despiked.append(kept)
        grids = grid_inputs(despiked, cell_size=cell_size)
    else:  # rasters: despike the gridded map
        grids = []
        for grid in grid_inputs(datasets, cell_size=cell_size):
            kept, spike = despike_grid(grid)
            spikes[grid.attrs.get("track") or "all"] = dict(spike.attrs)
            grids.append(kept)
    first = grids[0]
    transform = first.rio.transform(recalc=True)
    crs = CRS.from_user_input(first.rio.crs)
    definition = GridDefinition(crs, transform.a, transform.c, transform.f, first.sizes["x"], first.sizes["y"])
    if not any(np.isfinite(g["velocity"].values).any() for g in grids):
        raise InputError(inputs[0], "no valid velocity values to grid")
    timings["despike_grid_s"] = time.perf_counter() - mark

    log("filling gaps")
    mark = time.perf_counter()
    grids = [fill_grid(grid, method=fill_method) for grid in grids]
    timings["fill_s"] = time.perf_counter() - mark

    log("detecting")
    mark = time.perf_counter()
    records, noise = [], {}
    for grid in grids:
        track = grid.attrs.get("track") or "all"
        labels, regions, noise[track] = threshold_detect(
            grid["velocity"].values, grid["count"].values, definition.cell_size, parameters
        )
        polygons = label_polygons(labels, transform)
        for region in regions:
            records.append(
                {
                    **region,
                    "geometry": polygons[region["label"]],
                    "kind": "deformation",
                    "track": track,
                    "detector": "threshold",
                }
            )
    frame = detections_frame(records, crs)
    timings["detect_s"] = time.perf_counter() - mark

    log("writing")
    mark = time.perf_counter()
    record = _run_record(inputs, datasets, grids, definition, options, cell_size, parameters, noise, spikes, frame)
    record["parameters"]["fill_method"] = fill_method
    with staged_directory(out_dir) as staging:
        bands = [(f"velocity {g.attrs.get('track') or 'all'}", g["velocity"].values) for g in grids]
        bands += [(f"count {g.attrs.get('track') or 'all'}", g["count"].values) for g in grids]
        write_cog(
            os.path.join(staging, "velocity.tif"),
            bands,
            transform,
            crs,
            tags={"units": "mm/yr", "software": f"defoscan {__version__}"},
        )
        filled = [(f"velocity_filled {g.attrs.get('track') or 'all'}", g["velocity_filled"].values) for g in grids]
        write_cog(
            os.path.join(staging, "velocity_filled.tif"),
            filled,
            transform,
            crs,
            tags={"units": "mm/yr", "fill_method": fill_method, "software": f"defoscan {__version__}"},
        )
        write_geojson(os.path.join(staging, "detections.geojson"), frame)
        write_geopackage(os.path.join(staging, "detections.gpkg"), frame)
        write_overview(os.path.join(staging, "overview.png"), grids, frame)
        timings["write_s"] = time.perf_counter() - mark
        timings["total_s"] = time.perf_counter() - started
        record["timings"] = {k: round(v, 3) for k, v in timings.items()}
        write_report(os.path.join(staging, "report.html"), record, frame, os.path.join(staging, "overview.png"))
        write_json(os.path.join(staging, "run.json"), record)
    return {**record, "detections": frame}


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
            }
        )
    return {
        "software": {
            "defoscan": __version__,
            "python": platform.python_version(),
            **{name: version(name) for name in DEPENDENCIES},
        },
        "inputs": [{"path": os.path.abspath(p), "bytes": os.path.getsize(p)} for p in inputs],
        "parameters": {
            "detector": "threshold",
            **parameters.as_dict(),
            "cell_size_requested": cell_size,
            "columns": dict(options.columns),
            "crs": options.crs,
            "units": options.units,
        },
        "grid": {
            "crs": crs_label(definition.crs),
            "cell_size_m": definition.cell_size,
            "width": definition.width,
            "height": definition.height,
            "bounds": definition.bounds,
        },
        "points": n_points if datasets and "point" in datasets[0].dims else None,
        "tracks": tracks,
        "detections": {
            "count": len(frame),
            "by_sign": {s: int((frame["sign"] == s).sum()) for s in ("subsidence", "uplift")},
        },
    }
