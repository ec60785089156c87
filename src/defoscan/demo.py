"""The demo: a seeded synthetic scene run through ``detect`` and scored against its truth, or a real dataset.

The default demo needs no data beside the package: :func:`run_synthetic_demo` draws a scene with
:func:`defoscan.synth.scene.make_scene` (the generator of ``defoscan synth --scenes``: towns, roads and rural scatter,
correlated atmosphere, a ramp, point noise and spikes, one signal of each kind), runs
:func:`defoscan.pipeline.detect` on its points with the bundled model and default settings, and scores the detections
against the truth polygons (:func:`defoscan.evaluate.score`). The run directory gets, beside detect's outputs,
``scene.csv`` (the points detected on), ``truth.geojson``, ``scores.json``, an overview with the truth outlines drawn
dashed, and a report with a Truth section. Everything is staged and moved in only when all is written; the same seed
gives the same files but for the timings.

:func:`run_real_demo` runs one of the real datasets of :mod:`defoscan.real_data` from a folder the user gives.
"""

import json
import os
import shutil

import numpy as np

from defoscan.errors import InputError
from defoscan.outputs import staged_directory, write_json
from defoscan.real_data import DATASETS, dataset_files, real_data_dir

SEED = 16
SHAPE = (240, 240)  # cells: 12 x 12 km at 50 m, a town and its surroundings; a few seconds on two cores
CELL_SIZE = 50.0
SCENE_FILE = "scene.csv"  # the points, as recorded in run.json (relative to the run directory)
TRUTH_FILE = "truth.geojson"
SCORES_FILE = "scores.json"


def run_synthetic_demo(out_dir, *, seed=SEED, shape=SHAPE, cell_size=CELL_SIZE, log=None):
    """Draw the demo scene, detect on it, score the detections and write it all into ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
    seed : int
    shape : tuple of int
        Cells of the scene, ``(rows, columns)``.
    cell_size : float
        Metres, of the scene (detect grids at its own default).
    log : callable, optional
        Stage messages.

    Returns
    -------
    result : dict
        :func:`defoscan.pipeline.detect`'s result.
    scores : dict
        The content of ``scores.json``.
    """
    from defoscan.pipeline import detect
    from defoscan.report import write_report_from_run
    from defoscan.synth.scene import make_scene, write_scene

    if log:
        log("drawing the synthetic scene")
    points, truths, info = make_scene(seed, shape=shape, cell_size=cell_size)
    with staged_directory(out_dir) as staging:
        scratch = os.path.join(staging, ".scene")
        csv, truth_path, _ = write_scene(scratch, "scene", points, truths, info)
        scene_csv = os.path.join(staging, SCENE_FILE)
        os.replace(csv, scene_csv)
        os.replace(truth_path, os.path.join(staging, TRUTH_FILE))
        shutil.rmtree(scratch)
        result = detect([scene_csv], staging, log=log)
        _relative_inputs(os.path.join(staging, "run.json"), scene_csv, SCENE_FILE)
        scores = scene_scores(staging, info)
        write_json(os.path.join(staging, SCORES_FILE), scores)
        redraw_overview(staging)
        write_report_from_run(staging)
    return result, scores


def run_real_demo(out_dir, dataset, data=None, *, log=None):
    """Run ``detect`` with the bundled model on a real dataset (:data:`defoscan.real_data.DATASETS`).

    Parameters
    ----------
    out_dir : str or os.PathLike
    dataset : str
    data : str or os.PathLike, optional
        The real-data folder (numbered subfolders) or the dataset's own folder; ``$DEFOSCAN_REAL_DATA`` (else
        ``../shared/data/real``) when not given.
    log : callable, optional

    Raises
    ------
    InputError
        Unknown dataset, no folder, or the dataset's files missing in it.
    """
    from defoscan.pipeline import detect

    if dataset not in DATASETS:
        raise InputError(None, f"unknown demo dataset {dataset!r}; choose from synthetic, {', '.join(DATASETS)}")
    folder = data if data is not None else real_data_dir()
    if folder is None:
        raise InputError(None, f"the {dataset} demo needs its real data: give --data DIR (or set DEFOSCAN_REAL_DATA)")
    return detect(dataset_files(dataset, folder), str(out_dir), log=log)


def scene_scores(run_dir, info):
    """The detections of ``run_dir`` scored against its ``truth.geojson``: the totals and each truth found or not."""
    from defoscan.evaluate import examined_area_km2, read_polygons, score

    detections_path = os.path.join(run_dir, "detections.geojson")
    detections = read_polygons(detections_path, "detections")
    truths = read_polygons(os.path.join(run_dir, TRUTH_FILE), "truth")
    result = score(detections, truths, area_km2=examined_area_km2(detections_path))
    matches = np.asarray(result.pop("matches"), dtype=np.int64)
    ids = detections["id"].to_numpy() if len(detections) else np.zeros(0, dtype=np.int64)
    result["per_truth"] = [
        {
            "id": int(truth["id"]),
            "kind": truth["kind"],
            "peak_velocity": round(float(truth["peak_velocity"]), 3),
            "sign": truth["sign"],
            "found": bool((matches == row).any()),
            "detections": [int(i) for i in ids[matches == row]],
        }
        for row, truth in truths.iterrows()
    ]
    result["scene"] = {"seed": info["seed"], "shape": info["shape"], "cell_size": info["cell_size"]}
    result["not_placed"] = info["not_placed"]
    return result


def redraw_overview(run_dir):
    """Rewrite ``overview.png`` of ``run_dir`` with the outlines of its ``truth.geojson`` drawn dashed."""
    import geopandas as gpd
    import rasterio

    from defoscan.figures import write_overview
    from defoscan.report import load_run

    record, frame = load_run(run_dir)
    with rasterio.open(os.path.join(run_dir, "velocity.tif")) as src:
        tracks = [
            (name.split(" ", 1)[1] if " " in name else "", src.read(band))
            for band, name in enumerate(src.descriptions, start=1)
        ]
        transform, crs = src.transform, src.crs
    truth = gpd.read_file(os.path.join(run_dir, TRUTH_FILE)).to_crs(record["grid"]["crs"])
    write_overview(os.path.join(run_dir, "overview.png"), tracks, frame, transform, crs, truth=truth)


def _relative_inputs(record_path, path, relative):
    """Record ``path`` as ``relative`` in the run record: the staging directory's name would change every run."""
    with open(record_path, encoding="utf-8") as handle:
        record = json.load(handle)
    write_json(record_path, _replace(record, path, relative))


def _replace(value, old, new):
    if isinstance(value, dict):
        return {key: _replace(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, old, new) for item in value]
    return new if value == old else value
