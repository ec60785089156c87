"""The scene benchmark (``defoscan.benchmark.suite``): pooling with known answers, the table and goals, a run that
resumes, the real-data checks, and the command's bad input."""

import json
import os

import numpy as np
import pytest

import defoscan.benchmark.suite
from defoscan.benchmark.suite import (
    KEPT,
    REAL_CHECKS,
    ROWS,
    Row,
    goals,
    pool,
    results_table,
    run_real,
    run_suite,
    scene_names,
    write_table,
)
from defoscan.cli import main
from defoscan.synth.scene import make_scene, write_scene

THRESHOLD = Row("threshold", "baseline", "thresholding", {"detector": "threshold"})


def scene_result(truths, found, detections, false_alarms, area, *, by_kind=None, signals=True):
    return {
        "truths": truths,
        "found": found,
        "detections": detections,
        "false_alarms": false_alarms,
        "area_km2": area,
        "signals": signals,
        "recall_by_kind": by_kind or {},
        "recall_by_band": {},
    }


def test_pool_counts_over_scenes_not_averages_of_scenes():
    results = [
        scene_result(
            4, 3, 5, 1, 100.0, by_kind={"mining": {"truths": 2, "found": 2}, "dome": {"truths": 2, "found": 1}}
        ),
        scene_result(6, 3, 3, 0, 100.0, by_kind={"dome": {"truths": 6, "found": 3}}),
        scene_result(0, 0, 2, 2, 500.0, signals=False),
        scene_result(0, 0, 0, 0, 500.0, signals=False),
    ]
    pooled = pool(results)
    assert pooled["truths"] == 10 and pooled["found"] == 6 and pooled["recall"] == 0.6
    assert pooled["detections"] == 8 and pooled["matched"] == 7 and pooled["precision"] == 7 / 8
    assert pooled["f1"] == pytest.approx(2 * 0.6 * 0.875 / (0.6 + 0.875))
    assert pooled["recall_by_kind"] == {
        "mining": {"truths": 2, "found": 2, "recall": 1.0},
        "dome": {"truths": 8, "found": 4, "recall": 0.5},
    }
    # Signal-free scenes: 2 false alarms over 1000 km2; scenes with signals: 1 over 200 km2.
    assert pooled["false_alarms_per_1000_km2"] == 2.0
    assert pooled["false_alarms_per_1000_km2_with_signals"] == 5.0
    nothing = pool([scene_result(3, 0, 0, 0, 10.0)])
    assert nothing["precision"] is None and nothing["f1"] == 0.0 and nothing["false_alarms_per_1000_km2"] is None


def fake_suite(ours, baseline, negatives):
    """A suite of two rows from per-scene results: ``ours`` and ``baseline`` are lists of scene results (the same
    scenes), ``negatives`` the signal-free scenes both rows saw."""

    def entry(name, group, results):
        results = results + negatives
        real = {
            "kirishima": {"detections": 3, "found": True, "found_area_km2": 0.42},
            "ustica": {"detections": 0, "found": None},
        }
        per_scene = [{key: r[key] for key in defoscan.benchmark.suite.SCENE_COUNTS} for r in results]
        row = {"group": group, "label": name.upper()}
        return {"name": name, "row": row, "pooled": pool(results), "real": real, "per_scene": per_scene}

    rows = [entry("cnn", "detector", ours), entry("threshold", "baseline", baseline)]
    return {"scenes": ["scene-000"], "rows": rows, "skipped": {"ab-raw": "model x not found"}}


def alike(n, truths, found, detections, false_alarms, *, by_kind=None):
    return [scene_result(truths, found, detections, false_alarms, 50.0, by_kind=by_kind) for _ in range(n)]


QUIET = [scene_result(0, 0, 0, 0, 500.0, signals=False) for _ in range(10)]  # 5000 km2 without a false alarm


def test_goals_are_met_at_the_conservative_end_of_their_intervals():
    # Every scene alike: the intervals collapse on the figures; 0 alarms in 5000 km2: upper bound 0.74 per 1000.
    met = goals(fake_suite(alike(20, 5, 5, 5, 0), alike(20, 5, 3, 5, 2), QUIET))
    assert [value for value, _, _ in met.values()] == [1.0, pytest.approx(0.4), 0.0]
    assert [status for _, _, status in met.values()] == ["met", "met", "met"]
    assert list(met.values())[2][1] == pytest.approx([0.0, 3.689 / 5], abs=1e-3)
    # One false alarm in 2410 km2: 0.41 per 1000 km2, but the upper bound is 2.3: the data cannot tell.
    sparse = [scene_result(0, 0, 1, 1, 2410.0, signals=False)]
    unsure = goals(fake_suite(alike(20, 5, 5, 5, 0), alike(20, 5, 3, 5, 2), sparse))
    value, span, status = list(unsure.values())[2]
    assert value == pytest.approx(0.415, abs=1e-3) and span[1] == pytest.approx(2.31, abs=0.01)
    assert status == "not resolved"


def test_goals_not_resolved_when_the_scenes_disagree_and_not_met_when_all_miss():
    # Half the scenes perfect, half missing everything: F1 0.5 pooled, its interval wide.
    mixed = alike(6, 5, 5, 5, 0) + alike(6, 5, 0, 5, 5)
    spread = goals(fake_suite(mixed, alike(12, 5, 2, 5, 3), QUIET))
    value, span, status = list(spread.values())[0]
    assert value == pytest.approx(0.5) and span[0] < 0.4 and 0.6 < span[1] < 0.9 and status == "not met"
    margin, margin_span, margin_status = list(spread.values())[1]
    assert margin == pytest.approx(0.1) and margin_span[0] < 0.2 < margin_span[1]
    assert margin_status == "not resolved"
    short = goals(fake_suite(alike(20, 5, 4, 5, 1), alike(20, 5, 4, 5, 1), QUIET))
    assert [status for _, _, status in short.values()][:2] == ["not met", "not met"]


def test_table_has_a_line_per_row_with_intervals_and_says_which_goals_are_met():
    quarry = {"quarry": {"truths": 5, "found": 5}}
    sparse = [scene_result(0, 0, 5, 5, 1000.0, signals=False)]
    table = results_table(fake_suite(alike(20, 5, 5, 5, 0, by_kind=quarry), alike(20, 5, 3, 5, 2), sparse))
    lines = table.splitlines()
    assert lines[0].startswith("| row | group | F1 (95 % interval) | precision | recall | quarry (100) |")
    assert lines[2].startswith("| **CNN** | detector | 1.00 (1.00–1.00) | 1.00 | 1.00 | 1.00 |")
    assert lines[3].startswith("| THRESHOLD | baseline | 0.60 (0.60–0.60) |")
    assert "| 5.0 (1.6–11.7) |" in lines[2]  # 5 alarms in 1000 km2: Garwood 1.62-11.67
    assert "yes (0.42), 3 | 0 |" in lines[2]
    assert "- Goal F1 >= 0.9: 1.00 (1.00–1.00) — met" in table
    assert "per 1000 km² (signal-free): 5.00 (1.62–11.67) — **not met**" in table
    assert "Row `ab-raw` not run: model x not found" in table


def test_write_table_replaces_only_between_the_markers(tmp_path):
    page = tmp_path / "EVALUATION.md"
    write_table(page, "first\n")
    assert page.read_text() == "<!-- results:begin -->\nfirst\n<!-- results:end -->\n"
    page.write_text("# Title\n\nprose\n" + page.read_text() + "\nafter\n")
    write_table(page, "second\n")
    assert page.read_text() == "# Title\n\nprose\n<!-- results:begin -->\nsecond\n<!-- results:end -->\n\nafter\n"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Two small scenes: one with a quarry and a mining bowl, one signal-free."""
    folder = tmp_path_factory.mktemp("scenes")
    for index, signals in enumerate((True, False)):
        points, truths, info = make_scene(22 + 3 * index, shape=(120, 120), kinds=("quarry", "mining"), signals=signals)
        write_scene(str(folder), f"scene-{index:03d}", points, truths, info)
    (folder / "scene-009.json").write_text("{}")  # incomplete: no points, no truth
    return folder


def test_suite_runs_scores_and_resumes(scenes, tmp_path, monkeypatch):
    assert scene_names(str(scenes)) == ["scene-000", "scene-001"]
    absent = Row("ab-none", "model ablation", "absent model", model="none.safetensors")
    calls = []
    suite = run_suite(
        str(scenes),
        str(tmp_path),
        rows=[THRESHOLD, absent],
        models_dir=str(tmp_path),
        real=False,
        progress=lambda *a: calls.append(a),
    )
    assert suite["skipped"] == {"ab-none": f"model {tmp_path / 'none.safetensors'} not found"}
    (entry,) = suite["rows"]
    truths = json.loads((scenes / "scene-000.json").read_text())["signals"]
    pooled = entry["pooled"]
    assert pooled["scenes"] == 2 and pooled["scenes_with_signals"] == 1 and pooled["truths"] == len(truths) >= 1
    assert pooled["area_km2"] > 0 and pooled["false_alarms_per_1000_km2"] is not None
    assert calls[-1] == (2, 2, "done")
    assert sorted(os.listdir(tmp_path / "threshold" / "scene-000")) == sorted(KEPT)

    # A second run takes the kept results; a changed scene is run again.
    def no_detect(*args, **kwargs):
        raise AssertionError("ran again")

    monkeypatch.setattr(defoscan.benchmark.suite, "_detect", no_detect)
    again = run_suite(str(scenes), str(tmp_path), rows=[THRESHOLD], real=False)
    assert again["rows"][0]["pooled"] == pooled
    # Other code (any change to the package's source) runs every scene again: a table never mixes versions.
    monkeypatch.setattr(defoscan.benchmark.suite, "source_digest", lambda: "other code")
    with pytest.raises(AssertionError, match="ran again"):
        run_suite(str(scenes), str(tmp_path), rows=[THRESHOLD], real=False)
    monkeypatch.undo()
    monkeypatch.setattr(defoscan.benchmark.suite, "_detect", no_detect)
    stat = os.stat(scenes / "scene-001.csv")
    os.utime(scenes / "scene-001.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="ran again"):
        run_suite(str(scenes), str(tmp_path), rows=[THRESHOLD], real=False)


def test_real_checks_are_skipped_with_a_warning_without_the_folder(scenes, tmp_path, caplog):
    suite = run_suite(str(scenes), str(tmp_path), rows=[THRESHOLD], real=True, real_data=str(tmp_path / "none"))
    assert suite["rows"][0]["real"] == {}
    assert "real-data checks skipped" in caplog.text and str(tmp_path / "none") in caplog.text


def test_missing_real_data_folder_is_bad_input(scenes, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate-scenes", str(scenes), "--out", str(tmp_path / "w"), "--real-data", str(tmp_path / "none")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"defoscan: error: {tmp_path / 'none'}: no such real-data folder"


def test_real_checks_kirishima_crater_found_ustica_clean(tmp_path, real_data_dir):
    kirishima, ustica = REAL_CHECKS
    found = run_real(THRESHOLD, kirishima, str(tmp_path), None, real_data_dir)
    assert found["found"] is True and found["found_area_km2"] < 1.0 and found["detections"] >= 1
    clean = run_real(THRESHOLD, ustica, str(tmp_path), None, real_data_dir)
    assert clean["detections"] == 0 and clean["found"] is None and clean["false_alarms_per_1000_km2"] == 0.0
    assert 3.0 < clean["area_km2"] < 10.0  # the island's cells with data


def test_rows_cover_the_detector_the_baselines_and_an_ablation_per_enhancement():
    groups = {}
    for row in ROWS:
        groups.setdefault(row.group, []).append(row.name)
    assert groups["detector"] == ["cnn"]
    assert groups["baseline"] == ["threshold", "gistar", "ada", "threshold-val", "gistar-val", "ada-val"]
    assert {"no-despike", "no-fill", "no-hysteresis", "window-only"} <= set(groups["ablation"])
    assert {"ab-single", "ab-enhanced", "ab-raw", "ab-generic", "ab-fill"} == set(groups["model ablation"])


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def test_command_bad_input_is_one_line_and_exit_2(tmp_path, scenes, capsys):
    status, err = run_cli(["evaluate-scenes", tmp_path / "none", "--out", tmp_path / "w"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "no scenes here" in err
    status, err = run_cli(["evaluate-scenes", scenes, "--out", tmp_path / "w", "--rows", "cnn,magic"], capsys)
    assert status == 2 and "unknown rows magic" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


def test_detect_options_make_parameter_classes_from_plain_dicts():
    from defoscan.ada import AdaParameters
    from defoscan.benchmark.suite import detect_options
    from defoscan.hotspot import HotspotParameters
    from defoscan.threshold import ThresholdParameters

    options = {"detector": "threshold", "parameters": {"k": 4.5}}
    assert detect_options(options) == {"detector": "threshold", "parameters": ThresholdParameters(k=4.5)}
    assert options["parameters"] == {"k": 4.5}  # the row's own options are left as they are
    assert detect_options({"detector": "gistar", "baseline": {"z": 6.0}})["baseline"] == HotspotParameters(z=6.0)
    assert detect_options({"detector": "ada", "baseline": {"k": 3.0}})["baseline"] == AdaParameters(k=3.0)


def test_a_tiny_suite_with_a_known_answer_scores_it(tmp_path):
    """One scene with a single strong bowl over quiet ground, one quiet scene: thresholding finds the bowl and
    nothing else, so recall, precision and F1 are 1 and there is no false alarm (issue 22: a score, not a shape)."""
    import shapely.geometry

    from defoscan.synth.scene import SCENE_ORIGIN

    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:100, 0:100]
    x = SCENE_ORIGIN[0] + (cols.ravel() + 0.5) * 50.0
    y = SCENE_ORIGIN[1] - (rows.ravel() + 0.5) * 50.0
    centre = (SCENE_ORIGIN[0] + 2500.0, SCENE_ORIGIN[1] - 2500.0)
    distance = np.hypot(x - centre[0], y - centre[1])
    for index, signals in enumerate((True, False)):
        velocity = rng.normal(0.0, 0.5, x.size) + (np.where(distance < 400.0, -50.0, 0.0) if signals else 0.0)
        truths = []
        if signals:
            disc = shapely.geometry.Point(centre).buffer(400.0)
            truths = [{"geometry": disc, "kind": "quarry", "peak_velocity": -50.0, "sign": "subsidence"}]
        info = {"signals": truths and [{"kind": "quarry"}], "cell_size": 50.0}
        write_scene(
            str(tmp_path / "scenes"), f"scene-{index:03d}", {"x": x, "y": y, "velocity": velocity}, truths, info
        )
    suite = run_suite(str(tmp_path / "scenes"), str(tmp_path / "work"), rows=[THRESHOLD], real=False)
    pooled = suite["rows"][0]["pooled"]
    assert (pooled["truths"], pooled["found"], pooled["detections"], pooled["matched"]) == (1, 1, 1, 1)
    assert pooled["f1"] == 1.0 and pooled["false_alarms"] == 0 and pooled["false_alarms_with_signals"] == 0
    assert pooled["share_inside"] > 0.8 and pooled["iou"] > 0.6  # the bowl outlined, not the map
