"""The scene benchmark: every detector, baseline and ablation through ``detect``, scored by ``evaluate``, pooled.

A suite is a directory of scenes written by ``defoscan synth --scenes`` (``scene-NNN.csv`` with its
``-truth.geojson`` and ``.json``). Each row of :data:`ROWS` is run on every scene through
:func:`defoscan.pipeline.detect` (the same contract a user runs) at the scene's own cell size, and its detections
are scored against the truth by :func:`defoscan.evaluate.score`. The scores pool over scenes (:func:`pool`): recall
counts truths found over all scenes with signals, overall, per kind and per velocity band; precision counts the
detections in those scenes that went to a truth; F1 is of the pooled precision and recall; the false-alarm rate is
that of the signal-free scenes (detections per 1000 km² of cells with data). Each row is also run on real maps
(:data:`REAL_CHECKS`): Kirishima, whose Shinmoedake crater deforms, and Ustica, the stable control. They are not
bundled: they are read from the real-data folder (:func:`defoscan.real_data.real_data_dir`); without it those checks
are skipped with a warning.

Every (row, scene) result is kept as a small JSON file in the work directory, with a fingerprint of what made it
(the row, the scene files, the model weights), so an interrupted benchmark resumes where it stopped and a changed
row or scene is run again. The run directories keep ``detections.geojson`` and ``run.json`` only.
"""

import dataclasses
import glob
import json
import os
import shutil

import numpy as np
import shapely

from defoscan import log
from defoscan.benchmark import intervals
from defoscan.evaluate import VELOCITY_BANDS, band_label, examined_area_km2, f1_score, read_polygons, score
from defoscan.fingerprint import digest, file_identity, source_digest
from defoscan.outputs import write_json
from defoscan.real_data import dataset_files, real_data_dir
from defoscan.synth.sources import KINDS


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the results table: a way of running ``detect``.

    Attributes
    ----------
    name : str
        Short name (also the row's directory).
    group : str
        ``detector``, ``baseline``, ``ablation`` (the shipped detector with one enhancement switched off) or
        ``model ablation`` (models trained at the ablation budget, docs/MODEL.md, differing in one choice).
    label : str
        What the table says.
    options : dict
        Keyword arguments of :func:`defoscan.pipeline.detect`, plain JSON (they are part of the results'
        fingerprint): ``parameters`` and ``baseline`` as dicts of the detector's parameter fields.
    model : str, optional
        Weights file name of a model ablation, looked up in the models directory.
    """

    name: str
    group: str
    label: str
    options: dict = dataclasses.field(default_factory=dict)
    model: str | None = None


ROWS = (
    Row("cnn", "detector", "defoscan: shipped CNN, full pipeline"),
    Row("threshold", "baseline", "thresholding (k robust sigmas, foundation issue)", {"detector": "threshold"}),
    Row("gistar", "baseline", "Getis-Ord Gi* hotspots", {"detector": "gistar"}),
    Row("ada", "baseline", "active deformation areas (ADAfinder rule)", {"detector": "ada"}),
    # The baselines at the cut-off of best F1 on validation scenes (seed 8, benchmarks/scene_cutoffs.py) among those
    # within the false-alarm goal (Gi*'s z is large: correlated atmosphere inflates z-scores that assume independence).
    Row(
        "threshold-val",
        "baseline",
        "thresholding, k = 6 (chosen on validation)",
        {"detector": "threshold", "parameters": {"k": 6.0}},
    ),
    Row(
        "gistar-val", "baseline", "Gi*, z = 40 (chosen on validation)", {"detector": "gistar", "baseline": {"z": 40.0}}
    ),
    Row("ada-val", "baseline", "ADA, k = 5 (chosen on validation)", {"detector": "ada", "baseline": {"k": 5.0}}),
    Row(
        "fixed-floor",
        "ablation",
        "regions' floor fixed at 2 mm/yr, not tied to the map's noise (before issue 18)",
        {"parameters": {"noise_floor": 0.0}},
    ),
    Row("no-despike", "ablation", "without despiking", {"despike": False}),
    Row("no-fill", "ablation", "without gap filling (scans the gridded map)", {"scan_filled": False}),
    Row("no-hysteresis", "ablation", "without hysteresis (one cut-off)", {"hysteresis": False}),
    Row("window-only", "ablation", "window probabilities blended (authors' scanner)", {"localise": "window"}),
    Row("ab-single", "model ablation", "ablation-budget reference: single wrap", model="ab-single.safetensors"),
    Row("ab-enhanced", "model ablation", "… enhanced over-wrapping", model="ab-enhanced.safetensors"),
    Row("ab-raw", "model ablation", "… raw velocity input", model="ab-raw.safetensors"),
    Row("ab-generic", "model ablation", "… generic training data, not fitted", model="ab-generic.safetensors"),
    Row("ab-fill", "model ablation", "… trained on gap-filled windows", model="ab-fill.safetensors"),
)

# Real maps (datasets of defoscan.real_data): (name, a point of known deformation (lon, lat) or None, radius m).
REAL_CHECKS = (
    ("kirishima", (130.883, 31.911), 500.0),
    ("ustica", None, 0.0),
)
GOAL_F1 = 0.9
GOAL_MARGIN = 0.2  # F1 above the best baseline's
GOAL_FALSE_ALARMS = 1.0  # per 1000 km2 of signal-free scenes
KEPT = ("detections.geojson", "run.json")  # what a run directory keeps once scored
SCENE_COUNTS = ("signals", "truths", "found", "detections", "false_alarms")  # kept per scene: paired intervals


def scene_names(scene_dir):
    """Names of the complete scenes in ``scene_dir`` (``scene-NNN``: points, truth and description present)."""
    names = []
    for path in sorted(glob.glob(os.path.join(scene_dir, "scene-*.json"))):
        name = os.path.basename(path)[: -len(".json")]
        if all(os.path.exists(os.path.join(scene_dir, name + end)) for end in (".csv", "-truth.geojson")):
            names.append(name)
    return names


def row_model(row, models_dir):
    """Path of a row's model: its file in ``models_dir`` for a model ablation, else None (the shipped model)."""
    return None if row.model is None else os.path.join(models_dir, row.model)


def run_scene(row, scene_dir, name, work_dir, models_dir, *, scene_cell_size=True):
    """Run one row on one scene (or take the kept result) and score it.

    ``scene_cell_size=False`` runs ``detect`` at its default cell size instead of the scene's (benchmarks that
    must be run at default settings, issue 18).

    Returns
    -------
    dict
        :func:`defoscan.evaluate.score`'s result (without ``matches``) and ``signals``, whether the scene has any.
    """
    base = os.path.join(scene_dir, name)
    with open(base + ".json") as handle:
        info = json.load(handle)
    inputs = [base + ".csv"]
    mark = _fingerprint(row, inputs + [base + "-truth.geojson"], models_dir)
    if not scene_cell_size:  # another run than at the scene's cell size: not the same kept result
        mark = digest({"mark": mark, "cell_size": "default"})
    kept = os.path.join(work_dir, row.name, name + ".json")
    cached = _read_kept(kept, mark)
    if cached is not None:
        return cached
    out = os.path.join(work_dir, row.name, name)
    _detect(row, inputs, out, models_dir, cell_size=float(info["cell_size"]) if scene_cell_size else None)
    result = score(
        read_polygons(os.path.join(out, "detections.geojson"), "detections"),
        read_polygons(base + "-truth.geojson", "truth"),
        area_km2=examined_area_km2(os.path.join(out, "detections.geojson")),
    )
    result.pop("matches")
    result["signals"] = bool(info["signals"])
    _keep(kept, mark, result, out)
    return result


def run_real(row, check, work_dir, models_dir, real_data):
    """Run one row on one real map (or take the kept result).

    ``real_data`` is the real-data folder (:func:`defoscan.real_data.dataset_files` finds the map's files in it).

    Returns
    -------
    dict
        ``detections``, ``area_km2`` (cells with data), ``false_alarms_per_1000_km2`` (every detection of a stable
        control; the detections away from the known point elsewhere) and, where a point of known deformation is
        given, ``found``: a detection within its radius, and ``found_area_km2``, the smallest such detection's area.
    """
    name, known, radius = check
    inputs = dataset_files(name, real_data)
    mark = _fingerprint(row, inputs, models_dir)
    kept = os.path.join(work_dir, row.name, f"real-{name}.json")
    cached = _read_kept(kept, mark)
    if cached is not None:
        return cached
    out = os.path.join(work_dir, row.name, f"real-{name}")
    _detect(row, inputs, out, models_dir)
    detections = read_polygons(os.path.join(out, "detections.geojson"), "detections")
    area = examined_area_km2(os.path.join(out, "detections.geojson"))
    near = np.zeros(len(detections), dtype=bool)
    found_area = None
    if known is not None and len(detections):
        import geopandas as gpd

        site = gpd.GeoSeries([shapely.Point(known)], crs="EPSG:4326")
        local = site.estimate_utm_crs()
        projected = detections.to_crs(local)
        near = projected.distance(site.to_crs(local).iloc[0]).to_numpy() <= radius
        found_area = float(projected.area[near].min() / 1e6) if near.any() else None
    elsewhere = int(np.count_nonzero(~near))
    result = {
        "detections": len(detections),
        "found": bool(near.any()) if known is not None else None,
        "found_area_km2": found_area,
        "area_km2": area,
        "false_alarms_per_1000_km2": 1000.0 * elsewhere / area if area else None,
    }
    _keep(kept, mark, result, out)
    return result


def pool(results):
    """Pool the per-scene scores of one row (module notes).

    Parameters
    ----------
    results : list of dict
        :func:`run_scene`'s results.

    Returns
    -------
    dict
        ``truths``, ``found``, ``recall``, ``detections`` and ``matched`` (in scenes with signals), ``precision``,
        ``f1``, ``recall_by_kind`` and ``recall_by_band`` (``{name: {"truths", "found", "recall"}}``),
        ``false_alarms``/``area_km2``/``false_alarms_per_1000_km2`` of the signal-free scenes and of the scenes
        with signals (``..._with_signals``); None where undefined. ``intervals``: 95 % intervals of ``recall``,
        ``precision`` and ``f1`` (bootstrap over scenes) and of the two false-alarm rates (Poisson), each ``[low,
        high]`` or None (:mod:`defoscan.benchmark.intervals`). ``share_inside`` and ``iou``: the median outline
        quality of the matched detections (:func:`defoscan.evaluate.outline_quality`), None without any.
    """
    positive = [r for r in results if r["signals"]]
    negative = [r for r in results if not r["signals"]]
    truths = sum(r["truths"] for r in positive)
    found = sum(r["found"] for r in positive)
    detections = sum(r["detections"] for r in positive)
    matched = detections - sum(r["false_alarms"] for r in positive)
    recall = found / truths if truths else None
    precision = matched / detections if detections else None
    f1 = f1_score(precision, recall)
    pooled = {
        "scenes": len(results),
        "scenes_with_signals": len(positive),
        "truths": truths,
        "found": found,
        "recall": recall,
        "detections": detections,
        "matched": matched,
        "precision": precision,
        "f1": f1,
        "recall_by_kind": _pool_recall(positive, "recall_by_kind"),
        "recall_by_band": _pool_recall(positive, "recall_by_band"),
        "intervals": intervals.bootstrap_scores(results),
    }
    for suffix, group in (("", negative), ("_with_signals", positive)):
        alarms = sum(r["false_alarms"] for r in group)
        area = sum(r["area_km2"] or 0.0 for r in group)
        pooled["false_alarms" + suffix] = alarms
        pooled["area_km2" + suffix] = area
        pooled["false_alarms_per_1000_km2" + suffix] = 1000.0 * alarms / area if area else None
        pooled["intervals"]["false_alarms_per_1000_km2" + suffix] = intervals.poisson_rate_interval(alarms, area)
    for measure in ("share_inside", "iou"):
        values = [value for r in positive for value in r.get(measure, [])]
        pooled[measure] = float(np.median(values)) if values else None
    return pooled


def run_suite(
    scene_dir, work_dir, *, rows=ROWS, models_dir=None, real=True, real_data=None, progress=None, scene_cell_size=True
):
    """Run every row on every scene (and the real maps) and pool the scores.

    Parameters
    ----------
    scene_dir, work_dir : str
    rows : sequence of Row
    models_dir : str, optional
        Where the model ablations' weights are; rows whose file is missing are skipped (listed in ``skipped``).
    real : bool
        Run the real-data checks too (skipped with a warning when the real-data folder is not found).
    real_data : str, optional
        The real-data folder; :func:`defoscan.real_data.real_data_dir`'s default when not given.
    progress : callable, optional
        Called with ``(done, total, description)`` before each run.
    scene_cell_size : bool
        Run at each scene's cell size; False: at ``detect``'s default (:func:`run_scene`).

    Returns
    -------
    dict
        ``rows``: one ``{"name": ..., "row": ..., "pooled": pool(...), "real": {check: ...}}`` per row, in table
        order; ``scenes``: the scene names; ``skipped``: rows not run and why.
    """
    names = scene_names(scene_dir)
    if not names:
        raise ValueError(f"{scene_dir}: no scenes (defoscan synth --scenes writes them)")
    runnable, skipped = [], {}
    for row in rows:
        model = row_model(row, models_dir or "")
        if model is not None and not os.path.exists(model):
            skipped[row.name] = f"model {model} not found"
        else:
            runnable.append(row)
    checks = ()
    if real:
        folder = real_data_dir(real_data)
        if folder is None:
            where = real_data or "DEFOSCAN_REAL_DATA or ../shared/data/real"
            log.warn(f"real-data checks skipped: no real-data folder ({where}); give --real-data DIR")
        else:
            checks = REAL_CHECKS
    total = len(runnable) * (len(names) + len(checks))
    done, table = 0, []
    for row in runnable:
        results = []
        for name in names:
            if progress:
                progress(done, total, f"{row.name} on {name}")
            results.append(run_scene(row, scene_dir, name, work_dir, models_dir, scene_cell_size=scene_cell_size))
            done += 1
        real_results = {}
        for check in checks:
            if progress:
                progress(done, total, f"{row.name} on {check[0]}")
            real_results[check[0]] = run_real(row, check, work_dir, models_dir, folder)
            done += 1
        table.append(
            {
                "name": row.name,
                "row": dataclasses.asdict(row),
                "pooled": pool(results),
                "real": real_results,
                "per_scene": [{key: r[key] for key in SCENE_COUNTS} for r in results],
            }
        )
    if progress:
        progress(done, total, "done")
    return {"scenes": names, "rows": table, "skipped": skipped}


def goals(suite, *, goal_f1=GOAL_F1, goal_margin=GOAL_MARGIN):
    """The issue's goals against the suite's figures, judged at the intervals' conservative ends (issue 22).

    ``goal_f1`` and ``goal_margin`` (F1 above the best baseline's) are the own suite's unless given.

    Returns
    -------
    dict
        ``{goal: (value, interval, status)}``: the figure, its 95 % interval (``[low, high]`` or None) and
        ``met`` (the interval's conservative end meets the goal), ``not met`` (its optimistic end misses it, or
        there is no figure) or ``not resolved`` (between: the data cannot tell).
    """
    rows = {entry["name"]: entry for entry in suite["rows"]}
    ours = rows.get("cnn", {})
    pooled = ours.get("pooled", {})
    spans = pooled.get("intervals", {})
    baselines = [r for r in rows.values() if r["row"]["group"] == "baseline" and r["pooled"]["f1"] is not None]
    best = max(baselines, key=lambda r: r["pooled"]["f1"], default=None)
    f1 = pooled.get("f1")
    margin = margin_span = None
    if f1 is not None and best is not None:
        margin = f1 - best["pooled"]["f1"]
        if "per_scene" in ours and "per_scene" in best:
            margin_span = intervals.paired_f1_difference(ours["per_scene"], best["per_scene"])
    alarms = pooled.get("false_alarms_per_1000_km2")
    alarms_span = spans.get("false_alarms_per_1000_km2")
    return {
        f"F1 >= {goal_f1:g}": (f1, spans.get("f1"), goal_status(f1, spans.get("f1"), goal_f1)),
        f"F1 >= best baseline + {goal_margin:g}": (margin, margin_span, goal_status(margin, margin_span, goal_margin)),
        f"false alarms <= {GOAL_FALSE_ALARMS:g} per 1000 km² (signal-free)": (
            alarms,
            alarms_span,
            goal_status(alarms, alarms_span, GOAL_FALSE_ALARMS, at_most=True),
        ),
    }


def goal_status(value, interval, goal, *, at_most=False):
    """``met``, ``not met`` or ``not resolved`` (:func:`goals`); without an interval only ``not met`` is sure."""
    if value is None:
        return "not met"
    reaches = (lambda v: v <= goal) if at_most else (lambda v: v >= goal)
    if interval is None:
        return "not resolved" if reaches(value) else "not met"
    conservative, optimistic = (interval[1], interval[0]) if at_most else (interval[0], interval[1])
    if reaches(conservative):
        return "met"
    return "not resolved" if reaches(optimistic) else "not met"


def results_table(suite, *, goal_f1=GOAL_F1, goal_margin=GOAL_MARGIN):
    """The results table (Markdown): one row per detector, baseline and ablation; goals below it.

    F1 and the false-alarm rates carry their 95 % intervals (:mod:`defoscan.benchmark.intervals`). Recall per kind
    and band is given as a share; the header says how many truths each column counts (the same for every row).
    Outline quality: the median share of a matched detection inside its truth, and its median IoU. The real-data
    columns: Kirishima's crater found (and the area of the smallest region that finds it, so a map-wide region
    does not pass unseen), with the map's number of regions; Ustica's number of regions (left out when no row
    ran them). The goals (:func:`goals`, ``goal_f1`` and ``goal_margin``) follow the table.
    """
    entries = suite["rows"]
    totals_kind = entries[0]["pooled"]["recall_by_kind"] if entries else {}
    totals_band = entries[0]["pooled"]["recall_by_band"] if entries else {}
    kinds = [k for k in KINDS if k in totals_kind]
    bands = [b for b in map(band_label, VELOCITY_BANDS) if totals_band.get(b, {}).get("truths")]
    header = ["row", "group", "F1 (95 % interval)", "precision", "recall"]
    header += [f"{k} ({totals_kind[k]['truths']})" for k in kinds]
    header += [f"{b} mm/yr ({totals_band[b]['truths']})" for b in bands]
    header += ["share inside", "IoU"]
    header += ["false alarms /1000 km², signal-free", "false alarms /1000 km², with signals"]
    real_columns = any(entry["real"] for entry in entries)
    if real_columns:
        header += ["Kirishima: crater found (km²), regions", "Ustica: regions"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in entries:
        pooled, real = entry["pooled"], entry["real"]
        spans = pooled.get("intervals", {})
        label = entry["row"]["label"]
        cells = [f"**{label}**" if entry["name"] == "cnn" else label, entry["row"]["group"]]
        cells += [_spanned(pooled["f1"], spans.get("f1")), _number(pooled["precision"]), _number(pooled["recall"])]
        cells += [_number(pooled["recall_by_kind"].get(k, {}).get("recall")) for k in kinds]
        cells += [_number(pooled["recall_by_band"].get(b, {}).get("recall")) for b in bands]
        cells += [_number(pooled.get("share_inside")), _number(pooled.get("iou"))]
        cells += [
            _spanned(pooled["false_alarms_per_1000_km2"], spans.get("false_alarms_per_1000_km2"), 1),
            _spanned(
                pooled["false_alarms_per_1000_km2_with_signals"],
                spans.get("false_alarms_per_1000_km2_with_signals"),
                1,
            ),
        ]
        if real_columns:
            kirishima, ustica = real.get("kirishima"), real.get("ustica")
            cells.append("-" if kirishima is None else _found_cell(kirishima))
            cells.append("-" if ustica is None else str(ustica["detections"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for goal, (value, span, status) in goals(suite, goal_f1=goal_f1, goal_margin=goal_margin).items():
        shown = _spanned(value, span)
        lines.append(f"- Goal {goal}: {shown} — {status if status == 'met' else f'**{status}**'}")
    for name, why in suite["skipped"].items():
        lines.append(f"- Row `{name}` not run: {why}")
    return "\n".join(lines) + "\n"


def write_table(path, table, *, begin="<!-- results:begin -->", end="<!-- results:end -->"):
    """Put ``table`` between the markers of ``path`` (appended with the markers if absent), atomically."""
    from defoscan.outputs import atomic_path

    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    block = f"{begin}\n{table}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)


def _detect(row, inputs, out, models_dir, cell_size=None, keep=KEPT):
    from defoscan.pipeline import detect

    detect(inputs, out, cell_size=cell_size, model=row_model(row, models_dir), **detect_options(row.options))
    for entry in os.listdir(out):  # the rasters and the report are not needed to score
        if entry not in keep:
            path = os.path.join(out, entry)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def detect_options(options):
    """A row's options as :func:`defoscan.pipeline.detect` takes them: parameter dicts made into their classes."""
    from defoscan.ada import AdaParameters
    from defoscan.hotspot import HotspotParameters
    from defoscan.threshold import ThresholdParameters

    options = dict(options)
    if "parameters" in options:
        options["parameters"] = ThresholdParameters(**options["parameters"])
    if "baseline" in options:
        kind = {"gistar": HotspotParameters, "ada": AdaParameters}[options.get("detector")]
        options["baseline"] = kind(**options["baseline"])
    return options


def _fingerprint(row, paths, models_dir):
    """What a kept result was made from: the row, its model's bytes, the inputs' names, sizes and times."""
    made_by = {"name": row.name, "options": row.options, "model": row.model}  # not the label: wording may change
    model = row_model(row, models_dir)
    if model is None:
        from defoscan.pipeline import bundled_model_path

        model = str(bundled_model_path()) if row.options.get("detector", "cnn") == "cnn" else None
    files = [file_identity(path) for path in ([model] if model else []) + list(paths)]
    return digest({"made_by": made_by, "files": files, "source": source_digest()})


def _read_kept(path, mark):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        kept = json.load(handle)
    return kept["result"] if kept.get("fingerprint") == mark else None


def _keep(path, mark, result, out):
    write_json(path, {"fingerprint": mark, "run": os.path.abspath(out), "result": result})


def _pool_recall(results, key):
    pooled = {}
    for result in results:
        for name, entry in result[key].items():
            total = pooled.setdefault(name, {"truths": 0, "found": 0})
            total["truths"] += entry["truths"]
            total["found"] += entry["found"]
    for total in pooled.values():
        total["recall"] = total["found"] / total["truths"] if total["truths"] else None
    return pooled


def _number(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def _spanned(value, span, digits=2):
    """A figure with its interval: ``0.83 (0.76-0.89)``."""
    if value is None or span is None:
        return _number(value, digits)
    return f"{value:.{digits}f} ({span[0]:.{digits}f}–{span[1]:.{digits}f})"


def _found_cell(check):
    if not check["found"]:
        return f"**no**, {check['detections']}"
    return f"yes ({check['found_area_km2']:.3g}), {check['detections']}"
