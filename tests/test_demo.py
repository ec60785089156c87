"""The demo: the seeded synthetic scene scored against its truth (no real data needed), and the real datasets."""

import json
import os
import subprocess
import sys

import geopandas as gpd
import pytest

from conftest import KIRISHIMA, REPO
from defoscan.cli import main
from defoscan.demo import SCENE_FILE, run_synthetic_demo

DETECT_OUTPUTS = {
    "detections.geojson",
    "detections.gpkg",
    "velocity.tif",
    "velocity_filled.tif",
    "probability.tif",
    "count.tif",
    "overview.png",
    "report.html",
    "run.json",
    *(f"{name}.qml" for name in ("velocity", "velocity_filled", "probability", "count", "detections")),
}
DEMO_OUTPUTS = DETECT_OUTPUTS | {SCENE_FILE, "truth.geojson", "scores.json"}


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def synthetic_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result, scores = run_synthetic_demo(out)
    return out, result, scores


def test_writes_every_file_and_nothing_else(synthetic_demo):
    out, _, _ = synthetic_demo
    assert set(os.listdir(out)) == DEMO_OUTPUTS
    assert not [n for n in os.listdir(out.parent) if n.startswith(".")]  # no staging directory left behind


def test_scores_agree_with_the_truth_and_the_detections(synthetic_demo):
    out, result, scores = synthetic_demo
    truth = gpd.read_file(out / "truth.geojson")
    assert scores["truths"] == len(truth) == len(scores["per_truth"]) >= 5  # several kinds of signal
    assert scores["detections"] == len(result["detections"]) == result["detections"].shape[0]
    assert scores["found"] == sum(t["found"] for t in scores["per_truth"])
    assert scores["recall"] == pytest.approx(scores["found"] / scores["truths"])
    matched = sum(len(t["detections"]) for t in scores["per_truth"])
    assert scores["false_alarms"] == scores["detections"] - matched
    p, r = scores["precision"], scores["recall"]
    assert scores["f1"] == pytest.approx(2 * p * r / (p + r))
    assert scores["found"] >= 2  # the strong signals of the scene are found by the bundled model
    assert json.loads((out / "scores.json").read_text()) == json.loads(json.dumps(scores))


def test_report_shows_the_truth(synthetic_demo):
    out, _, scores = synthetic_demo
    page = (out / "report.html").read_text()
    assert '<h2 id="truth">Truth</h2>' in page
    assert page.count("<td>found</td>") == scores["found"]
    assert page.count("<td>missed</td>") == scores["truths"] - scores["found"]
    assert f"<th>F1</th><td>{scores['f1']:.2f}</td>" in page


def test_run_record_names_the_scene_file_in_the_run_directory(synthetic_demo):
    out, _, _ = synthetic_demo
    record = json.loads((out / "run.json").read_text())
    assert [i["path"] for i in record["inputs"]] == [SCENE_FILE]
    assert str(out.parent) not in (out / "run.json").read_text()  # no staging path


def test_same_seed_same_files(synthetic_demo, tmp_path):
    out, _, _ = synthetic_demo
    again = tmp_path / "again"
    run_synthetic_demo(again)
    for name in sorted(DEMO_OUTPUTS - {"run.json", "report.html"}):  # those two hold the timings
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    first, second = (json.loads((d / "run.json").read_text()) for d in (out, again))
    first.pop("timings"), second.pop("timings")
    assert first == second


def test_runs_without_real_data_from_elsewhere(tmp_path):
    """A fresh clone with no ../shared: the demo needs nothing but the package."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "DEFOSCAN_REAL_DATA": str(empty), "PYTHONPATH": str(REPO / "src")}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "defoscan", "demo", "--out", str(out)],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert DEMO_OUTPUTS <= set(os.listdir(out))
    assert "signal(s) found" in done.stdout


def test_real_dataset_from_the_shared_folder(real_data_dir, tmp_path, capsys):
    out = tmp_path / "kirishima"
    status, printed, err = run_cli(["demo", "--dataset", "kirishima", "--data", real_data_dir, "--out", out], capsys)
    assert status == 0, err
    assert DETECT_OUTPUTS <= set(os.listdir(out)) and "truth.geojson" not in os.listdir(out)
    record = json.loads((out / "run.json").read_text())
    assert record["grid"]["crs"] == "EPSG:32652"
    assert record["detections"]["count"] >= 1  # the Shinmoedake crater


def test_real_dataset_accepts_its_own_folder(real_data_dir, tmp_path, capsys):
    out = tmp_path / "kirishima"
    status, _, err = run_cli(
        ["demo", "--dataset", "kirishima", "--data", real_data_dir / KIRISHIMA, "--out", out], capsys
    )
    assert status == 0, err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--dataset", "kirishima", "--data", "{missing}"], "no such real-data folder"),
        (["--dataset", "kirishima", "--data", "{empty}"], "not the kirishima data: missing velocity.h5"),
        (["--dataset", "etna"], "unknown demo dataset 'etna'"),
        (["--data", "{empty}"], "--data goes with a real dataset"),
    ],
)
def test_bad_demo_input_is_one_line_and_status_2(tmp_path, capsys, args, says):
    (tmp_path / "empty").mkdir()
    args = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in args]
    out = tmp_path / "out"
    status, _, err = run_cli(["demo", *args, "--out", out], capsys)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err
    assert not out.exists()


def test_real_dataset_without_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEFOSCAN_REAL_DATA", str(tmp_path / "nowhere"))
    status, _, err = run_cli(["demo", "--dataset", "ustica", "--out", tmp_path / "out"], capsys)
    assert status == 2 and "needs its real data: give --data DIR" in err
