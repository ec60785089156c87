"""defoscan.benchmark.held_out: scenes made once, every row at defaults on the test split, goals of the benchmark."""

import json
import os

import pytest

from defoscan.benchmark import held_out
from defoscan.benchmark.held_out import BENCHMARKS, Benchmark, benchmark_table, ensure_scenes, run_benchmark
from defoscan.synth.scene import make_scene, write_scene


def tiny_scenes(split, out_dir, real_data):
    """One scene with a quarry and one signal-free, 100 x 100 cells of 50 m (the seed depends on the split)."""
    base = {"validation": 40, "test": 50}[split]
    for index, signals in enumerate((True, False)):
        points, truths, info = make_scene(base + index, shape=(100, 100), kinds=("quarry",), signals=signals)
        write_scene(out_dir, f"scene-{index:03d}", points, truths, info)
    return 2


TINY = Benchmark("tiny", "two tiny scenes", tiny_scenes, 0.85, 0.15, "tiny")


def test_registry_names_the_two_held_out_benchmarks_with_issue_18s_goals():
    assert set(BENCHMARKS) == {"tay", "ood"}
    assert all((b.goal_f1, b.goal_margin) == (0.85, 0.15) for b in BENCHMARKS.values())
    assert BENCHMARKS["tay"].needs_real_data and not BENCHMARKS["ood"].needs_real_data


def test_scenes_are_made_once_by_the_same_code(tmp_path, monkeypatch):
    folder = ensure_scenes(TINY, "test", str(tmp_path))
    stamp = json.load(open(os.path.join(folder, held_out.STAMP)))
    assert stamp == {"benchmark": "tiny", "split": "test", "scenes": 2, "source": held_out.source_digest()}
    made = []
    other = Benchmark("tiny", "", lambda *a: made.append(a) or 0, 0.85, 0.15, "tiny")
    again = ensure_scenes(other, "test", str(tmp_path))
    assert again == folder and made == []  # the stamp says the scenes are complete, made by this code
    # Other package source (a changed generator): the scenes are made again, the old ones gone.
    monkeypatch.setattr(held_out, "source_digest", lambda: "another")
    ensure_scenes(other, "test", str(tmp_path))
    assert len(made) == 1 and not os.path.exists(os.path.join(folder, "scene-000.csv"))
    assert json.load(open(os.path.join(folder, held_out.STAMP)))["source"] == "another"


def test_tay_without_real_data_is_bad_input(tmp_path, monkeypatch):
    from defoscan.errors import InputError

    monkeypatch.setattr("defoscan.real_data.real_data_dir", lambda explicit=None: None)
    with pytest.raises(InputError, match="needs the real-data folder"):
        run_benchmark("tay", str(tmp_path), real_data=str(tmp_path / "none"), tune=False)


def test_rows_run_at_defaults_the_baselines_tuned_on_validation_and_the_goals_are_the_benchmarks(tmp_path, monkeypatch):
    seen = []
    real_detect = held_out.scene_suite._detect

    def recording(row, inputs, out, models_dir, cell_size=None, **kwargs):
        seen.append(cell_size)
        return real_detect(row, inputs, out, models_dir, cell_size=cell_size, **kwargs)

    monkeypatch.setattr(held_out.scene_suite, "_detect", recording)
    result = run_benchmark(TINY, str(tmp_path), rows=("threshold",))
    names = [entry["name"] for entry in result["rows"]]
    assert names == ["threshold", "threshold-tuned", "gistar-tuned", "ada-tuned"]
    assert seen == [None] * 8  # four rows on two test scenes, no cell size given: detect's defaults
    assert result["benchmark"] == "tiny" and result["scenes"] == ["scene-000", "scene-001"]
    assert set(result["tuning"]) == {"threshold", "gistar", "ada"}
    chosen = result["tuning"]["threshold"]
    assert chosen["scenes"] == 2 and len(chosen["sweep"]) == 24  # the validation scenes, the whole grid
    assert "tuned on this benchmark's validation split" in result["rows"][1]["row"]["label"]
    validation = json.load(open(tmp_path / "validation-scenes" / held_out.STAMP))
    assert validation["split"] == "validation"  # made apart from the test scenes the rows are scored on
    assert list(result["goals"]) == [
        "F1 >= 0.85",
        "F1 >= best baseline + 0.15",
        "false alarms <= 1 per 1000 km² (signal-free)",
    ]
    assert json.load(open(tmp_path / "results.json"))["benchmark"] == "tiny"
    monkeypatch.setitem(BENCHMARKS, "tiny", TINY)
    table = benchmark_table(result)
    assert "Kirishima" not in table and "- Goal F1 >= 0.85:" in table and "F1 (95 % interval)" in table


def test_f1_is_broken_down_by_the_regimes_the_scenes_record(tmp_path):
    regimes = ["large", "large", "small", "none"]
    for index, regime in enumerate(regimes):
        (tmp_path / f"scene-{index:03d}.json").write_text(json.dumps({"regime": {"signals": regime}}))

    def scene(truths, found, detections, false_alarms):
        return {
            "signals": truths > 0,
            "truths": truths,
            "found": found,
            "detections": detections,
            "false_alarms": false_alarms,
        }

    per_scene = [scene(2, 2, 2, 0), scene(2, 1, 1, 0), scene(3, 0, 1, 1), scene(0, 0, 1, 1)]
    result = {"scenes": [f"scene-{i:03d}" for i in range(4)], "rows": [{"name": "cnn", "per_scene": per_scene}]}
    parts = held_out.breakdown(result, str(tmp_path))["signals"]
    assert parts["large"]["scenes"] == 2 and parts["large"]["truths"] == 4
    assert parts["large"]["f1"]["cnn"] == pytest.approx(2 * 0.75 * 1.0 / 1.75)  # recall 3/4, precision 3/3
    assert parts["small"]["f1"]["cnn"] == 0.0 and parts["none"]["f1"]["cnn"] is None  # no truths: no F1
    (tmp_path / "scene-000.json").write_text("{}")
    assert held_out.breakdown(result, str(tmp_path)) == {}  # scenes without regimes (Tay): no breakdown
