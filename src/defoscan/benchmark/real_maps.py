"""The real-maps benchmark: every row on real maps it was not built from, scored by localisation.

The synthetic scene benchmark (:mod:`defoscan.benchmark.suite`) draws its scenes from the generator that made the
training data. Here each row of the suite runs at its defaults (no cell size, no per-map option) on real maps of
known deformation (:data:`CASES`): the development cases of the real-data folder (``09_cases_for_development``:
Mexico City, Jakarta, Ho Chi Minh City, the London control, the Maoxian landslide) and the project's two real
datasets (Kirishima, Ustica). Each truth is a circle (lon, lat, radius); a case without truths is a control.

A detection that covers the whole map also "finds" every truth, so finding is not enough: :func:`localisation`
measures, per truth, the share of its best detection (the highest ``score`` among those intersecting it) that lies
inside the truth circles and the share of the circle covered by all detections; a truth is **localised** when both
are at least one half (:data:`LOCALISED_SHARE`). Only detections of a sign the truth holds count for it
(:func:`defoscan.evaluate.compatible_signs`: an uplift over a subsidence bowl does not find it). Detections
intersecting no truth of their sign are counted as outside.

Inputs converted from raw files are made once in the work directory (``inputs/``) and reused; every (row, case)
result is kept as a JSON file with a fingerprint (:func:`defoscan.benchmark.suite._fingerprint`), so a run resumes.
The run directories keep the probability map beside the detections, for the cell-level ROC AUC.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from importlib.resources import files

import geopandas as gpd
import numpy as np
import shapely

from defoscan.atomic import atomic_path
from defoscan.benchmark import suite
from defoscan.crs import working_crs
from defoscan.errors import InputError
from defoscan.evaluate import cell_scores, compatible_signs, examined_area_km2, read_polygons
from defoscan.fingerprint import digest
from defoscan.real_data import dataset_files, real_data_dir

DEVELOPMENT = "09_cases_for_development"
LOCALISED_SHARE = 0.5  # share inside and share covered a localised truth needs
GOAL_CONTROL_DETECTIONS = 2  # on the London control
CRATER = "Shinmoedake crater"  # Kirishima's truth the goals name
DEFAULT_ROWS = ("cnn", "threshold", "gistar", "ada", "threshold-val", "gistar-val", "ada-val", "fixed-floor")
KEPT = (*suite.KEPT, "probability.tif")


@dataclasses.dataclass(frozen=True)
class Case:
    """A real map of the benchmark.

    Attributes
    ----------
    name : str
    label : str
        What the table says.
    folder : str
        Subfolder of the real-data folder (a development case's own folder).
    script : str, optional
        Converter making the input from the raw files, relative to ``folder``; run with this Python.
    arguments : tuple of str
        The converter's arguments; ``{raw}`` is the case's ``raw`` folder, ``{out}`` the file to write.
    output : str, optional
        Name of the converted input in the work directory.
    dataset : str, optional
        A dataset of :data:`defoscan.real_data.DATASETS` read as it is, instead of a converter; its truths are the
        project's (``defoscan/data/benchmarks/real_truth.json``).
    """

    name: str
    label: str
    folder: str
    script: str | None = None
    arguments: tuple = ()
    output: str | None = None
    dataset: str | None = None


def _tay(name, label, city, *crop):
    arguments = ("{raw}", city, "{out}") + (("--crop", *crop) if crop else ())
    return Case(name, label, f"{DEVELOPMENT}/{name}", "../tay_merge.py", arguments, f"{name}.tif")


CASES = {
    case.name: case
    for case in (
        Case(
            "mexico_city",
            "Mexico City (stacked interferograms)",
            f"{DEVELOPMENT}/mexico_city",
            "convert.py",
            ("{raw}", "{out}"),
            "mexico_city.tif",
        ),
        _tay("jakarta", "Jakarta (Tay et al.)", "Jakarta"),
        _tay("hochiminh", "Ho Chi Minh City (Tay et al.)", "HoChiMinhCity"),
        _tay("london_control", "London, control (Tay et al.)", "London", "-0.35", "0.05", "51.30", "51.65"),
        Case(
            "maoxian_sbas",
            "Maoxian landslide (StaMPS SBAS points)",
            f"{DEVELOPMENT}/maoxian_sbas",
            "convert.py",
            ("{raw}/Maoxian_SBAS.csv", "{out}"),
            "maoxian_sbas.csv",
        ),
        Case("kirishima", "Kirishima (MintPy ALOS-2)", "01_kirishima_mintpy_alos2", dataset="kirishima"),
        Case("ustica", "Ustica (EGMS L2b, two tracks)", "03_egms_ustica_italy", dataset="ustica"),
    )
}


def project_truths():
    """The truths the project established for its real datasets: ``{dataset: {"how": ..., "truths": [...]}}``."""
    with (files("defoscan") / "data" / "benchmarks" / "real_truth.json").open("r", encoding="utf-8") as handle:
        return json.load(handle)


def case_truths(case, real_data):
    """The truth circles of ``case``: dicts with ``lon``, ``lat``, ``radius_km``, ``sign``, ``peak_mm_yr``."""
    if case.dataset is not None:
        return project_truths()[case.dataset]["truths"]
    with open(os.path.join(real_data, case.folder, "truth.json"), encoding="utf-8") as handle:
        truths = json.load(handle)
    return [truths] if isinstance(truths, dict) else truths


def case_inputs(case, real_data, work_dir):
    """The input files of ``case``, converting the raw files once into ``work_dir/inputs`` (atomically).

    Raises
    ------
    InputError
        When the case's folder is missing from ``real_data`` or its converter fails.
    """
    if case.dataset is not None:
        return dataset_files(case.dataset, real_data)
    folder = os.path.join(real_data, case.folder)
    if not os.path.isdir(folder):
        raise InputError(folder, f"no such folder (real-map case {case.name})")
    path = os.path.join(work_dir, "inputs", case.output)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as temporary:
            arguments = [a.format(raw=os.path.join(folder, "raw"), out=temporary) for a in case.arguments]
            command = [sys.executable, os.path.join(folder, case.script), *arguments]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise InputError(folder, f"{case.script} failed: {done.stderr.strip().splitlines()[-1:]}")
    return [path]


def truth_circles(truths, crs):
    """Truth circles as polygons in the metric ``crs`` (a GeoDataFrame with the truths' fields)."""
    frame = gpd.GeoDataFrame(
        list(truths),
        geometry=gpd.points_from_xy([t["lon"] for t in truths], [t["lat"] for t in truths]),
        crs="EPSG:4326",
    ).to_crs(crs)
    radii = np.array([1000.0 * t["radius_km"] for t in truths])
    return frame.set_geometry(frame.geometry.buffer(radii, quad_segs=32))


def localisation(detections, truths, *, area_km2, probability_path=None):
    """Score detections against truth circles by where they lie (module notes).

    Parameters
    ----------
    detections : geopandas.GeoDataFrame
        With ``score`` (higher first); any CRS.
    truths : sequence of dict
        Circles: ``lon``, ``lat`` (degrees), ``radius_km``; an empty sequence is a control.
    area_km2 : float or None
        Area with data, for the share of it covered by detections.
    probability_path : str, optional
        The run's probability map, for the cell-level ROC AUC inside against outside the truths.

    Returns
    -------
    dict
        ``detections``, ``truths`` (per truth: ``found``, ``best_score``, ``best_area_km2``, ``share_inside``,
        ``truth_covered``, ``localised``; the shares None where nothing was found), ``found``, ``localised``,
        ``outside`` and ``outside_km2`` (detections intersecting no truth, their area), ``detected_km2``,
        ``area_km2``, ``detected_share`` (of the area with data) and ``cells`` (:func:`defoscan.evaluate.cell_scores`,
        None without a probability map).
    """
    centres = [(t["lon"], t["lat"]) for t in truths] or _centres(detections)
    crs = working_crs(*np.array(centres, dtype=np.float64).reshape(-1, 2).T)
    circles = truth_circles(truths, crs)
    if len(detections) == 0:  # an empty detections file has no attribute columns
        detections = detections.assign(score=np.empty(0))
    ranked = detections.sort_values("score", ascending=False, kind="stable")  # the best detection first
    shapes = ranked.to_crs(crs).geometry.make_valid().to_numpy()
    scores = ranked["score"].to_numpy(dtype=np.float64)
    every_truth = shapely.union_all(circles.geometry.to_numpy())
    every_detection = shapely.union_all(shapes)
    same_sign = compatible_signs(ranked, list(truths))  # an uplift over a subsidence bowl does not find it
    touching = np.zeros(len(shapes), dtype=bool)
    per_truth = []
    for number, circle in enumerate(circles.geometry):
        hits = shapely.intersects(shapes, circle) & same_sign[:, number]
        touching |= hits
        entry = {"found": bool(hits.any()), "best_score": None, "best_area_km2": None}
        entry["share_inside"] = entry["truth_covered"] = None
        if hits.any():
            best = int(np.flatnonzero(hits)[0])
            entry["best_score"] = float(scores[best])
            entry["best_area_km2"] = float(shapes[best].area / 1e6)
            entry["share_inside"] = float(shapely.intersection(shapes[best], every_truth).area / shapes[best].area)
            of_its_sign = shapely.union_all(shapes[same_sign[:, number]])
            entry["truth_covered"] = float(shapely.intersection(circle, of_its_sign).area / circle.area)
        entry["localised"] = bool(hits.any() and min(entry["share_inside"], entry["truth_covered"]) >= LOCALISED_SHARE)
        per_truth.append(entry)
    detected = float(every_detection.area / 1e6)
    return {
        "detections": len(shapes),
        "truths": per_truth,
        "found": sum(t["found"] for t in per_truth),
        "localised": sum(t["localised"] for t in per_truth),
        "outside": int(np.count_nonzero(~touching)),
        "outside_km2": float(shapely.area(shapes[~touching]).sum() / 1e6),
        "detected_km2": detected,
        "area_km2": area_km2,
        "detected_share": detected / area_km2 if area_km2 else None,
        "cells": None if probability_path is None else cell_scores(probability_path, circles),
    }


def run_case(row, case, work_dir, real_data, models_dir=None):
    """Run one row on one case at its defaults (or take the kept result) and score it by :func:`localisation`.

    Returns
    -------
    dict
        :func:`localisation`'s result and ``seconds``, how long detect and scoring took when it ran.
    """
    inputs = case_inputs(case, real_data, work_dir)
    truths = case_truths(case, real_data)
    mark = digest({"run": suite._fingerprint(row, inputs, models_dir), "truths": truths})
    kept = os.path.join(work_dir, row.name, f"{case.name}.json")
    cached = suite._read_kept(kept, mark)
    if cached is not None:
        return cached
    out = os.path.join(work_dir, row.name, case.name)
    started = time.perf_counter()
    suite._detect(row, inputs, out, models_dir, keep=KEPT)
    detections_path = os.path.join(out, "detections.geojson")
    probability = os.path.join(out, "probability.tif")
    result = localisation(
        read_polygons(detections_path, "detections"),
        truths,
        area_km2=examined_area_km2(detections_path),
        probability_path=probability if os.path.exists(probability) else None,
    )
    result["seconds"] = time.perf_counter() - started
    suite._keep(kept, mark, result, out)
    return result


def run_real_maps(work_dir, *, rows=DEFAULT_ROWS, cases=tuple(CASES), real_data=None, models_dir=None, progress=None):
    """Run every row on every case.

    Parameters
    ----------
    work_dir : str
        Converted inputs, run directories and kept results.
    rows : sequence of str
        Names of rows of :data:`defoscan.benchmark.suite.ROWS`.
    cases : sequence of str
        Keys of :data:`CASES`.
    real_data : str, optional
        The real-data folder (:func:`defoscan.real_data.real_data_dir`'s default when not given).
    models_dir : str, optional
        Where the model ablations' weights are.
    progress : callable, optional
        Called with ``(done, total, description)`` before each run.

    Returns
    -------
    dict
        ``cases``: ``{name: {"label", "truths"}}``; ``rows``: one ``{"name", "row", "cases": {case: result}}`` per
        row, in the order given.
    """
    folder = real_data_dir(real_data)
    if folder is None:
        raise InputError(real_data, "no real-data folder (give --data DIR or set DEFOSCAN_REAL_DATA)")
    by_name = {row.name: row for row in suite.ROWS}
    unknown = [name for name in [*rows, *cases] if name not in by_name and name not in CASES]
    if unknown:
        raise InputError(None, f"unknown rows or cases: {', '.join(unknown)}")
    total, done, table = len(rows) * len(cases), 0, []
    for name in rows:
        results = {}
        for case_name in cases:
            if progress:
                progress(done, total, f"{name} on {case_name}")
            results[case_name] = run_case(by_name[name], CASES[case_name], work_dir, str(folder), models_dir)
            done += 1
        table.append({"name": name, "row": dataclasses.asdict(by_name[name]), "cases": results})
    if progress:
        progress(done, total, "done")
    described = {c: {"label": CASES[c].label, "truths": case_truths(CASES[c], str(folder))} for c in cases}
    return {"cases": described, "rows": table}


def goals(result, row="cnn"):
    """The issue's goals for one row: ``{goal: (value, met)}``, value None where a case was not run."""
    cases = next((entry["cases"] for entry in result["rows"] if entry["name"] == row), {})
    signals = [(c, r) for c, r in cases.items() if result["cases"][c]["truths"]]
    truths = sum(len(r["truths"]) for _, r in signals)
    localised = sum(r["localised"] for _, r in signals)
    london = cases.get("london_control")
    crater = None
    if "kirishima" in cases:
        names = [t.get("name") for t in result["cases"]["kirishima"]["truths"]]
        crater = cases["kirishima"]["truths"][names.index(CRATER)]["found"]
    ustica = cases.get("ustica")
    clean = (
        None
        if ustica is None
        else ustica["outside"] == 0
        and all(t["share_inside"] >= LOCALISED_SHARE for t in ustica["truths"] if t["found"])
    )
    return {
        "every known signal localised (share inside >= 0.5, covered >= 0.5)": (
            f"{localised}/{truths}" if signals else None,
            bool(signals) and localised == truths,
        ),
        f"at most {GOAL_CONTROL_DETECTIONS} detections on the London control": (
            None if london is None else london["detections"],
            london is not None and london["detections"] <= GOAL_CONTROL_DETECTIONS,
        ),
        "Kirishima's crater found": (crater, bool(crater)),
        "Ustica clean apart from its patch": (None if ustica is None else ustica["outside"], bool(clean)),
    }


def real_maps_table(result):
    """The table (Markdown): one row per detector row, a column per case; the goals of each row below it.

    A case with truths reads ``found/truths, localised/truths, median share inside, median truth covered, outside
    detections`` (``-`` for a median without a found truth) and the cell-level ROC AUC where there is one; a control
    reads its number of detections.
    """
    cases = list(result["cases"])
    header = ["row", "group"] + [_case_header(result["cases"][c]) for c in cases]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in result["rows"]:
        label = entry["row"]["label"]
        cells = [f"**{label}**" if entry["name"] == "cnn" else label, entry["row"]["group"]]
        cells += [_case_cell(entry["cases"][c]) if c in entry["cases"] else "-" for c in cases]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for entry in result["rows"]:
        met = [
            f"{goal}: " + ("not run" if value is None else f"{value} — {'met' if ok else '**not met**'}")
            for goal, (value, ok) in goals(result, entry["name"]).items()
        ]
        lines.append(f"- `{entry['name']}`: " + "; ".join(met))
    return "\n".join(lines) + "\n"


def _centres(detections):
    if len(detections) == 0:
        return [(0.0, 0.0)]  # nothing to measure: any projected CRS will do
    points = detections.to_crs("EPSG:4326").geometry.representative_point()
    return list(zip(points.x, points.y, strict=True))


def _case_header(described):
    if not described["truths"]:
        return f"{described['label']}: detections"
    return f"{described['label']} ({len(described['truths'])}): found, localised, inside, covered, outside, AUC"


def _case_cell(scored):
    if not scored["truths"]:
        return str(scored["detections"])
    n = len(scored["truths"])
    found = [t for t in scored["truths"] if t["found"]]
    inside = suite._number(float(np.median([t["share_inside"] for t in found]))) if found else "-"
    covered = suite._number(float(np.median([t["truth_covered"] for t in found]))) if found else "-"
    auc = (scored["cells"] or {}).get("roc_auc")
    return f"{scored['found']}/{n}, {scored['localised']}/{n}, {inside}, {covered}, {scored['outside']}, " + (
        suite._number(auc)
    )
