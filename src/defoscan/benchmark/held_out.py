"""The held-out scene benchmarks (issue 18): scenes the training data's generator did not make, at default settings.

Two benchmarks, one registry entry each (:data:`BENCHMARKS`):

- ``tay``: real deformation fields. The Tay et al. (2022) city maps (:mod:`.tay_scenes`), observed as sparse
  EGMS-like points with synthetic noise; its cities are split once into training, validation and test
  (``defoscan/data/benchmarks/tay_split.json``).
- ``ood``: out-of-distribution synthetic scenes (:mod:`.ood_scenes`): cell sizes, coverage, atmosphere, signals
  and regional motion outside the ranges the training profiles were fitted to; validation and test drawn with
  their own seeds.

For each, :func:`run_benchmark` makes the validation and test scenes once (the scene directory is complete when
its ``suite.json`` stamp is written, last), tunes every baseline over its natural parameters on the validation
scenes (:mod:`.tuning`), then runs the detector, the baselines at their defaults and the tuned baselines on the
test scenes, all at ``detect``'s default settings (no cell size or option per benchmark), scored and pooled as
:mod:`.suite` does, with its intervals. The goals are issue 18's: F1 at least ``goal_f1`` and at least
``goal_margin`` above the best baseline (at its defaults or tuned), at most 1 false alarm per 1000 km² of
signal-free ground, each judged at its interval's conservative end.
"""

import dataclasses
import json
import os
import shutil

from defoscan.benchmark import suite as scene_suite
from defoscan.fingerprint import source_digest
from defoscan.outputs import write_json

# The detector, the baselines at their defaults, and the detector as it was before issue 18's noise floor.
DEFAULT_ROWS = ("cnn", "threshold", "gistar", "ada", "fixed-floor")
STAMP = "suite.json"  # written last into a scene directory: the scenes are complete, and which code made them


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A registry entry: how to make a split's scenes and what the detector must reach on them.

    Attributes
    ----------
    name, label : str
    make : callable
        ``make(split, out_dir, real_data) -> int``, scenes written; ``split`` is ``validation`` or ``test``.
    goal_f1 : float
    goal_margin : float
        F1 above the best baseline's, at its defaults or tuned.
    marker : str
        The table goes between ``<!-- {marker}:begin -->`` and ``<!-- {marker}:end -->``.
    needs_real_data : bool
    """

    name: str
    label: str
    make: object
    goal_f1: float
    goal_margin: float
    marker: str
    needs_real_data: bool = False


TAY_SEEDS = {"validation": 19, "test": 18}
TAY_PER_CITY = 3
OOD_SCENES = {"validation": (12, 22), "test": (24, 21)}  # split -> (scenes, seed)


def _make_tay(split, out_dir, real_data):
    from defoscan.benchmark.tay_scenes import write_tay_suite

    data = os.path.join(real_data, "10_tay_city_velocity")
    return write_tay_suite(data, split, out_dir, seed=TAY_SEEDS[split], per_city=TAY_PER_CITY)


def _make_ood(split, out_dir, real_data):
    from defoscan.benchmark.ood_scenes import write_ood_suite

    n, seed = OOD_SCENES[split]
    write_ood_suite(out_dir, n, seed)
    return n


BENCHMARKS = {
    "tay": Benchmark(
        "tay", "real deformation fields (Tay et al. 2022 cities, test cities)", _make_tay, 0.85, 0.15, "tay", True
    ),
    "ood": Benchmark("ood", "out-of-distribution synthetic scenes", _make_ood, 0.85, 0.15, "ood"),
}


def ensure_scenes(benchmark, split, work_dir, real_data=None):
    """The directory of a split's scenes, made unless complete and made by this code (its :data:`STAMP`).

    Scenes made by other package source (another generator, perhaps) are made again: a table never compares rows
    on scenes the code of its runs would not draw.
    """
    folder = os.path.join(work_dir, f"{split}-scenes")
    stamp = os.path.join(folder, STAMP)
    if os.path.exists(stamp):
        with open(stamp) as handle:
            if json.load(handle).get("source") == source_digest():
                return folder
        shutil.rmtree(folder)
    count = benchmark.make(split, folder, real_data)
    os.makedirs(folder, exist_ok=True)
    write_json(stamp, {"benchmark": benchmark.name, "split": split, "scenes": count, "source": source_digest()})
    return folder


def run_benchmark(benchmark, work_dir, *, real_data=None, rows=DEFAULT_ROWS, tune=True, progress=None):
    """Make the scenes, tune the baselines on validation, run and pool every row on the test scenes (module notes).

    Parameters
    ----------
    benchmark : Benchmark or str
    work_dir : str
        Scenes, tuning maps, runs and kept results; a rerun reuses what is complete.
    real_data : str, optional
        The real-data folder (:func:`defoscan.real_data.real_data_dir`'s default when not given).
    rows : sequence of str
        Names of :data:`defoscan.benchmark.suite.ROWS` run at their defaults.
    tune : bool
        Add the baselines tuned on the validation scenes.
    progress : callable, optional
        ``(done, total, description)``, as :func:`defoscan.benchmark.suite.run_suite` calls it.

    Returns
    -------
    dict
        :func:`defoscan.benchmark.suite.run_suite`'s result and ``benchmark`` (its name), ``tuning`` (each
        baseline's sweep and choice on the validation scenes), ``breakdown`` (:func:`breakdown`) and ``goals`` (the
        benchmark's, as :func:`defoscan.benchmark.suite.goals` gives them).
    """
    from defoscan.errors import InputError
    from defoscan.real_data import real_data_dir

    benchmark = BENCHMARKS[benchmark] if isinstance(benchmark, str) else benchmark
    folder = real_data_dir(real_data)
    if benchmark.needs_real_data and folder is None:
        raise InputError(real_data, f"the {benchmark.name} benchmark needs the real-data folder; give --data DIR")
    os.makedirs(work_dir, exist_ok=True)
    chosen = [row for row in scene_suite.ROWS if row.name in rows]
    tuning = {}
    if tune:
        from defoscan.benchmark import tuning as baseline_tuning

        validation = ensure_scenes(benchmark, "validation", work_dir, folder and str(folder))
        tuning = tune_baselines(validation, os.path.join(work_dir, "validation-maps"))
        chosen += baseline_tuning.tuned_rows(tuning)
    test = ensure_scenes(benchmark, "test", work_dir, folder and str(folder))
    result = scene_suite.run_suite(
        test, os.path.join(work_dir, "runs"), rows=chosen, real=False, progress=progress, scene_cell_size=False
    )
    result["benchmark"] = benchmark.name
    result["tuning"] = tuning
    result["breakdown"] = breakdown(result, test)
    result["goals"] = scene_suite.goals(result, goal_f1=benchmark.goal_f1, goal_margin=benchmark.goal_margin)
    write_json(os.path.join(work_dir, "results.json"), result)
    return result


def tune_baselines(scene_dir, work_dir):
    """Every baseline tuned on the scenes of ``scene_dir`` (:func:`defoscan.benchmark.tuning.tune`), kept as JSON.

    The validation maps are made once (one default thresholding ``detect`` per scene: the gridded map every
    baseline sees at its defaults); the choices are kept in ``work_dir`` with a fingerprint of the scenes, the
    grids and the package source, so a rerun reuses them.
    """
    from defoscan.benchmark import tuning as baseline_tuning
    from defoscan.fingerprint import digest, file_identity, source_digest

    names = scene_suite.scene_names(scene_dir)
    files = [file_identity(os.path.join(scene_dir, name + ".csv")) for name in names]
    mark = digest({"scenes": files, "source": source_digest(), "grids": baseline_tuning.GRIDS})
    kept = os.path.join(work_dir, "tuning.json")
    if os.path.exists(kept):
        with open(kept) as handle:
            document = json.load(handle)
        if document.get("fingerprint") == mark:
            return document["tuning"]
    maps = [baseline_tuning.scene_maps(scene_dir, name, work_dir, detector="threshold") for name in names]
    tuning = {detector: baseline_tuning.tune(detector, maps) for detector in baseline_tuning.BASELINES}
    write_json(kept, {"fingerprint": mark, "tuning": tuning})
    return tuning


def breakdown(result, scene_dir):
    """Pooled F1 of every row per regime of each factor, where the scenes record one (``info["regime"]``).

    Returns
    -------
    dict
        ``{factor: {regime: {"scenes": n, "truths": t, "f1": {row: value or None}}}}``; empty when the scenes
        record no regimes (the Tay scenes).
    """
    from defoscan.benchmark.intervals import pooled_scores, scene_counts

    infos = []
    for name in result["scenes"]:
        with open(os.path.join(scene_dir, name + ".json")) as handle:
            infos.append(json.load(handle).get("regime"))
    if not infos or any(info is None for info in infos):
        return {}
    table = {}
    for factor in infos[0]:
        for regime in sorted({info[factor] for info in infos}):
            picked = [k for k, info in enumerate(infos) if info[factor] == regime]
            cell = {"scenes": len(picked), "f1": {}}
            for entry in result["rows"]:
                counts = scene_counts([entry["per_scene"][k] for k in picked])
                f1 = float(pooled_scores(counts.sum(axis=0))["f1"]) if len(counts) else float("nan")
                cell["truths"] = int(counts[:, 0].sum()) if len(counts) else 0
                cell["f1"][entry["name"]] = None if f1 != f1 else f1  # NaN: no truths among these scenes
            table.setdefault(factor, {})[regime] = cell
    return table


def benchmark_table(result):
    """The benchmark's table (Markdown): :func:`defoscan.benchmark.suite.results_table` with its goals, then F1 by
    regime where the scenes record regimes (few scenes each: indicative only)."""
    benchmark = BENCHMARKS[result["benchmark"]]
    text = scene_suite.results_table(result, goal_f1=benchmark.goal_f1, goal_margin=benchmark.goal_margin)
    parts = result.get("breakdown") or {}
    if not parts:
        return text
    names = [entry["name"] for entry in result["rows"]]
    lines = ["", "F1 by regime (scenes, truths; few scenes each: indicative only):", ""]
    lines += ["| factor | regime | scenes | truths | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 4)]
    for factor, regimes in parts.items():
        for regime, cell in regimes.items():
            values = ["-" if cell["f1"][name] is None else f"{cell['f1'][name]:.2f}" for name in names]
            lines.append(f"| {factor} | {regime} | {cell['scenes']} | {cell['truths']} | " + " | ".join(values) + " |")
    return text + "\n".join(lines) + "\n"
