"""``defoscan synth``: a dataset as the API writes it, a profile of real maps with --fit, bad input in one line."""

import hashlib
import json
import os

import numpy as np
import pytest

from defoscan.cli import main
from defoscan.synth.dataset import load_profiles, read_dataset, read_manifest, write_dataset
from defoscan.synth.profile import load_profile


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def file_hashes(directory):
    return {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in sorted(os.listdir(directory))}


def assert_bad_input(args, capsys, out, says):
    """Status 2, one line on stderr saying what is wrong, no traceback, nothing left at OUT or beside it."""
    status, _, err = run_cli(args, capsys)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert says in lines[0], lines[0]
    assert not os.path.exists(out)
    parent = os.path.dirname(os.path.abspath(out))
    assert not [n for n in os.listdir(parent) if n.startswith(".")]  # no temporary files either
    return lines[0]


def test_synth_writes_the_dataset_the_api_writes(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["synth", "--n", 6, "--seed", 4, "--out", out, "--shape", "24x16", "--shard-size", 4, "--workers", 1]
    status, stdout, _ = run_cli(args, capsys)
    assert status == 0
    assert "wrote 6 samples of 24 x 16 cells of 50 m" in stdout and "3 positive, 3 negative (2 hard)" in stdout
    write_dataset(tmp_path / "api", 6, seed=4, shape=(24, 16), shard_size=4, workers=1)
    assert file_hashes(out) == file_hashes(tmp_path / "api")
    manifest = read_manifest(out)
    assert [(s["start"], s["stop"]) for s in manifest["shards"]] == [(0, 4), (4, 6)]
    assert [s.velocity.shape for s in read_dataset(out)] == [(24, 16)] * 6


def test_fit_writes_a_profile_that_synth_draws_around(amsterdam_csv, tmp_path, capsys):
    profile = tmp_path / "amsterdam.json"
    status, stdout, _ = run_cli(["synth", "--fit", amsterdam_csv, "--out", profile, "--cell-size", 10], capsys)
    assert status == 0 and "1 profile(s) (example)" in stdout
    fitted = load_profile(profile)
    assert fitted["name"] == "example" and fitted["cell_size"] == 10.0
    out = tmp_path / "data"
    status, stdout, _ = run_cli(
        ["synth", "--n", 4, "--seed", 1, "--profile", profile, "--out", out, "--shape", 16, "--workers", 1], capsys
    )
    assert status == 0 and "cells of 10 m" in stdout  # the profile's cell size is the default
    manifest = read_manifest(out)
    assert manifest["cell_size"] == 10.0 and manifest["profile"]["profiles"] == [fitted]
    assert (
        manifest["profile"]["sha256"]
        == hashlib.sha256(json.dumps([fitted], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )
    spike_rates = [s.info["conditions"]["spike_rate"] for s in read_dataset(out)]
    assert all(np.isfinite(spike_rates))


def test_fit_of_a_map_too_small_is_one_line(tmp_path, capsys):
    table = tmp_path / "five.csv"
    table.write_text("lon,lat,velocity\n" + "".join(f"4.9{i},52.37,{i - 2}.5\n" for i in range(5)))
    profile = tmp_path / "profile.json"
    line = assert_bad_input(["synth", "--fit", table, "--out", profile], capsys, profile, "cannot fit a profile")
    assert str(table) in line


def test_fit_of_two_tracks_writes_a_list(ustica_l2b_022_zip, ustica_l2b_117_zip, tmp_path, capsys):
    profile = tmp_path / "ustica.json"
    status, _, _ = run_cli(["synth", "--fit", ustica_l2b_022_zip, ustica_l2b_117_zip, "--out", profile], capsys)
    assert status == 0
    profiles = load_profiles(profile)
    assert [p["name"].split()[-1] for p in profiles] == ["T022", "T117"]
    assert profiles[0]["noise"] != profiles[1]["noise"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--n", 0, "--seed", 1], "must be a positive whole number"),
        (["--n", -5, "--seed", 1], "must be a positive whole number"),
        (["--n", 4], "needs --n (samples) and --seed"),
        (["--n", 4, "--seed", 1, "--shape", "big"], "--shape must be N or ROWSxCOLS"),
        (["--n", 4, "--seed", 1, "--shape", "4"], "at least 8 cells"),
        (["--n", 4, "--seed", 1, "--shard-size", 0], "shard size"),
        (["--n", 4, "--seed", 1, "--hard-fraction", 2], "--hard-fraction must lie in [0, 1]"),
    ],
)
def test_bad_options_are_one_line_and_status_2(tmp_path, capsys, extra, says):
    out = tmp_path / "data"
    assert_bad_input(["synth", "--out", out, *extra], capsys, out, says)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "not a profile"),
        ('{"version": 1}', "no 'coverage' part"),
        ('{"version": 99}', "version 99"),
    ],
)
def test_bad_profile_is_one_line_naming_the_file(tmp_path, capsys, text, says):
    profile = tmp_path / "profile.json"
    profile.write_text(text)
    out = tmp_path / "data"
    line = assert_bad_input(["synth", "--n", 4, "--seed", 1, "--profile", profile, "--out", out], capsys, out, says)
    assert str(profile) in line


def test_missing_profile_and_missing_input(tmp_path, capsys):
    out = tmp_path / "data"
    missing = tmp_path / "nope.json"
    args = ["synth", "--n", 4, "--seed", 1, "--profile", missing, "--out", out]
    line = assert_bad_input(args, capsys, out, "not found")
    assert str(missing) in line
    profile = tmp_path / "profile.json"
    missing_map = tmp_path / "nope.csv"
    line = assert_bad_input(["synth", "--fit", missing_map, "--out", profile], capsys, profile, str(missing_map))
    assert "Traceback" not in line


def test_out_is_a_file_or_holds_another_dataset(tmp_path, capsys):
    afile = tmp_path / "taken"
    afile.write_text("not a directory")
    status, _, err = run_cli(["synth", "--n", 4, "--seed", 1, "--out", afile], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "not a directory" in err
    assert afile.read_text() == "not a directory"
    out = tmp_path / "data"
    assert run_cli(["synth", "--n", 3, "--seed", 1, "--out", out, "--shape", 16, "--workers", 1], capsys)[0] == 0
    before = file_hashes(out)
    status, _, err = run_cli(["synth", "--n", 3, "--seed", 2, "--out", out, "--shape", 16], capsys)
    assert status == 2 and "another dataset" in err and len(err.strip().splitlines()) == 1
    assert file_hashes(out) == before


def test_fit_and_dataset_options_do_not_mix(amsterdam_csv, tmp_path, capsys):
    out = tmp_path / "profile.json"
    assert_bad_input(["synth", "--fit", "--out", out], capsys, out, "--fit needs the real maps")
    assert_bad_input(["synth", "--fit", amsterdam_csv, "--n", 3, "--out", out], capsys, out, "do not go with --fit")
    data = tmp_path / "data"
    assert_bad_input(["synth", amsterdam_csv, "--n", 3, "--seed", 1, "--out", data], capsys, data, "only with --fit")
    folder = tmp_path / "folder"
    folder.mkdir()
    status, _, err = run_cli(["synth", "--fit", amsterdam_csv, "--out", folder], capsys)
    assert status == 2 and "is a directory" in err and os.listdir(folder) == []


def test_scenes_are_made_once_by_the_same_options_and_code(tmp_path, capsys, monkeypatch):
    out = tmp_path / "scenes"
    args = ["synth", "--scenes", "--n", "2", "--seed", "3", "--shape", "80", "--out", out]
    status, printed, err = run_cli(args, capsys)
    assert status == 0, err
    made = file_hashes(out)
    assert "scenes.json" in made and {"scene-000.csv", "scene-001.csv"} <= set(made)
    (out / "scene-009.csv").write_text("an earlier generator's scene\n")
    # The same options and code: nothing is made again.
    status, printed, err = run_cli(args, capsys)
    assert status == 0 and "are there already" in printed
    assert (out / "scene-009.csv").exists()
    # Other options, or other code: the old scenes go, the new ones are made (the same seed: the same files).
    monkeypatch.setattr("defoscan.fingerprint.source_digest", lambda: "another generator")
    status, printed, err = run_cli(args, capsys)
    assert status == 0 and "are there already" not in printed
    again = file_hashes(out)
    assert not (out / "scene-009.csv").exists()
    scenes = sorted(name for name in made if name.startswith("scene-0"))
    assert [again[name] for name in scenes] == [made[name] for name in scenes]
    assert json.loads((out / "scenes.json").read_text())["source"] == "another generator"
