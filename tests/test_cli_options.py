"""The command line's options: -h everywhere, help that reads as words, and one line with exit status 2 for every
bad option, checked before any work; the reading options reach the readers."""

import re

import pytest
import typer

from defoscan.cli import app, main
from defoscan.errors import InputError
from defoscan.io import ReadOptions

COMMANDS = sorted(typer.main.get_command(app).commands)


def run_cli(args, capsys):
    """Run the command line in-process; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def points(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("longitude,latitude,velocity\n-1.5,53.8,1.0\n-1.49,53.81,2.0\n")
    return path


# --- help ---------------------------------------------------------------------------------------------------------


def test_every_command_is_listed():
    assert {"detect", "demo", "report", "grid", "fill", "synth", "evaluate", "evaluate-scenes", "train"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("command", ["", *COMMANDS])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_reads_as_words(command, flag, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # no wrapping: a stray " ." cannot hide at a line break
    status, out, err = run_cli([*command.split(), flag], capsys)
    assert status == 0, err
    assert f"Usage: defoscan {command}".rstrip() in out
    assert not re.findall(r"<[\w\[\]|,. ]+>", out), out  # typer's <float>, <list[Path]>, <bool>
    assert not re.findall(r"\{[^}]*\}", out), out  # {inputs}
    assert not re.findall(r"\S \.(\s|$)", out), out  # "metres ." where markup ate "[default: ...]"


def test_detect_help_shows_the_metavars(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    _, out, _ = run_cli(["detect", "-h"], capsys)
    assert "Usage: defoscan detect [OPTIONS] INPUT..." in out
    for option, metavar in [
        ("--out", "DIR"),
        ("--cell-size", "M"),
        ("--crs", "EPSG"),
        ("--lon", "COL"),
        ("--probability-threshold", "P"),
        ("--threshold", "K"),
        ("--workers", "N"),
        ("--mask", "FILE"),
        ("--bbox", "W E S N"),
        ("--min-coherence", "C"),
    ]:
        assert re.search(rf"{re.escape(option)}\s+{metavar}\s", out), option
    assert re.search(r"--quiet\s+-q\s+Write errors only", out)  # a flag: no metavar


def test_help_paragraphs_are_rewrapped(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    _, out, _ = run_cli(["synth", "-h"], capsys)
    assert "and manifest.json (written last); a rerun with the same options resumes an interrupted one." in out


# --- bad options: one line, exit status 2, nothing written ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cell-size", "-50"], "--cell-size: must be positive, got -50"),
        (["--cell-size", "0"], "--cell-size: must be positive, got 0"),
        (["--cell-size", "ten"], "--cell-size: "),
        (["--crs", "999999"], "--crs: must be a CRS (an EPSG code such as 27700, WKT or PROJ), got '999999'"),
        (["--threshold", "0"], "--threshold: must be positive, got 0"),
        (["--probability-threshold", "0"], "--probability-threshold: must be in (0, 1], got 0"),
        (["--probability-threshold", "1.5"], "--probability-threshold: must be in (0, 1], got 1.5"),
        (["--workers", "0"], "--workers: must be >= 1, got 0"),
        (["--chunk", "16"], "--chunk: must be >= 64, got 16"),
        (["--min-coherence", "1.5"], "--min-coherence: must be in [0, 1], got 1.5"),
        (["--min-coherence", "-0.1"], "--min-coherence: must be in [0, 1], got -0.1"),
        (["--bbox", "2", "1", "53", "54"], "--bbox: must be W E S N with W < E and S < N, got 2 1 53 54"),
        (["--bbox", "1", "2", "54", "53"], "--bbox: must be W E S N with W < E and S < N, got 1 2 54 53"),
        (["--bbox", "1", "2", "53"], "'--bbox' requires 4 arguments"),
        (["--bbox-crs", "3857"], "--bbox-crs is the CRS of --bbox; give --bbox W E S N with it"),
        (["--bbox", "530000", "531000", "180000", "181000"], "not in longitude/latitude degrees; give --bbox-crs"),
        (["--bbox", "1", "2", "53", "54", "--bbox-crs", "nonsense"], "--bbox-crs: must be a CRS"),
        (["--detector", "magic"], "--detector: must be one of cnn, threshold, gistar, ada, got 'magic'"),
        (["--units", "furlongs"], "--units: must be one of mm/yr, cm/yr, m/yr, got 'furlongs'"),
        (["--delimiter", "ab"], "--delimiter: must be one character"),
        (["--decimal", ";"], '--decimal: must be "." or ",", got \';\''),
        (["--mask", "nowhere.geojson"], "--mask: no such file: nowhere.geojson"),
        (["--no-such-option"], "No such option: --no-such-option"),
        (["-q", "-v"], "-q (errors only) and -v (more messages) do not go together"),
    ],
)
def test_bad_detect_option_is_one_line(points, tmp_path, capsys, args, says):
    out = tmp_path / "out"
    status, printed, err = run_cli(["detect", points, "--out", out, *args], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("defoscan: error: ") and says in err, err
    assert "Traceback" not in err and printed == ""
    assert not out.exists()


def test_bad_option_line_in_full(points, tmp_path, capsys):
    _, _, err = run_cli(["detect", points, "--out", tmp_path / "o", "--cell-size", "-50"], capsys)
    assert err == "defoscan: error: --cell-size: must be positive, got -50 (see 'defoscan detect -h')\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["detect", "{points}"], "Missing option '--out'"),
        (["detect"], "Missing argument 'INPUT...'"),
        (["grid", "{points}", "--out", "{tmp}/g.tif", "--cell-size", "0"], "--cell-size: must be positive, got 0"),
        (["grid", "{points}", "--out", "{tmp}/g.tif", "--crs", "999999"], "--crs: must be a CRS"),
        (["fill", "{points}", "--out", "{tmp}/f.tif", "--cell-size", "-1"], "--cell-size: must be positive, got -1"),
        (["fill", "{points}", "--out", "{tmp}/f.tif", "--max-distance", "0"], "--max-distance: must be positive"),
        (["fill", "{points}", "--out", "{tmp}/f.tif", "--min-coherence", "2"], "--min-coherence: must be in [0, 1]"),
        (["synth", "--fit", "{points}", "--out", "{tmp}/p.json", "--bbox", "0", "0", "1", "2"], "--bbox: must be"),
        (["synth", "--out", "{tmp}/d", "--cell-size", "0"], "--cell-size: must be positive, got 0"),
        (["report", "{tmp}", "--top", "-1"], "--top: must be >= 0, got -1"),
        (["evaluate", "{points}", "{points}", "--area-km2", "0"], "--area-km2: must be positive, got 0"),
        (["train", "{tmp}", "--out", "{tmp}/m.safetensors", "--lr", "0"], "--lr: must be positive, got 0"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
)
def test_bad_option_of_any_command_is_one_line(points, tmp_path, capsys, args, says):
    args = [a.format(points=points, tmp=tmp_path) for a in args]
    status, _, err = run_cli(args, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("defoscan: error: ") and says in err, err
    assert err.rstrip().endswith("-h')")  # where the help is
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]  # nothing written


def test_an_option_error_of_the_parser_names_the_command(points, tmp_path, capsys):
    _, _, err = run_cli(["detect", points, "--out", tmp_path / "o", "--bbox", "1"], capsys)
    assert err.rstrip().endswith("(see 'defoscan detect -h')")


# --- good options: what reaches the readers and detect ------------------------------------------------------------


def test_reading_options_reach_the_reader(points, tmp_path, capsys, monkeypatch):
    seen = {}

    def read_inputs(paths, options):
        seen["options"] = options
        raise InputError(paths[0], "stop here")

    monkeypatch.setattr("defoscan.io.read_inputs", read_inputs)
    args = ["grid", points, "--out", tmp_path / "g.tif", "--crs", "27700", "--delimiter", "tab", "--decimal", ","]
    args += ["--min-coherence", "0.7", "--bbox", "-1.6", "-1.4", "53.7", "53.9", "--bbox-crs", "4326"]
    status, _, err = run_cli(args, capsys)
    assert status == 2 and "stop here" in err
    assert seen["options"] == ReadOptions(
        crs="EPSG:27700",
        delimiter="\t",
        decimal=",",
        min_coherence=0.7,
        bbox=(-1.6, -1.4, 53.7, 53.9),
        bbox_crs="EPSG:4326",
    )


def test_defaults_leave_the_reader_to_detect(points, tmp_path, capsys, monkeypatch):
    seen = {}

    def read_inputs(paths, options):
        seen["options"] = options
        raise InputError(paths[0], "stop here")

    monkeypatch.setattr("defoscan.io.read_inputs", read_inputs)
    run_cli(["fill", points, "--out", tmp_path / "f.tif"], capsys)
    assert seen["options"] == ReadOptions()


def test_projected_bbox_with_its_crs(points, tmp_path, capsys, monkeypatch):
    seen = {}

    def read_inputs(paths, options):
        seen["options"] = options
        raise InputError(paths[0], "stop here")

    monkeypatch.setattr("defoscan.io.read_inputs", read_inputs)
    args = ["grid", points, "--out", tmp_path / "g.tif", "--bbox", "530000", "531000", "180000", "181000"]
    run_cli([*args, "--bbox-crs", "27700"], capsys)
    assert seen["options"].bbox == (530000, 531000, 180000, 181000) and seen["options"].bbox_crs == "EPSG:27700"


@pytest.mark.parametrize("with_mask", [False, True])
def test_mask_is_passed_to_detect(points, tmp_path, capsys, monkeypatch, with_mask):
    seen = {}

    def detect(inputs, out_dir, **kwargs):
        seen.update(kwargs)
        raise InputError(None, "stop here")

    monkeypatch.setattr("defoscan.pipeline.detect", detect)
    mask = tmp_path / "water.geojson"
    mask.write_text('{"type": "FeatureCollection", "features": []}')
    extra = ["--mask", mask] if with_mask else []
    status, _, _ = run_cli(["detect", points, "--out", tmp_path / "o", "--min-coherence", "0.5", *extra], capsys)
    assert status == 2
    assert seen.get("mask") == (str(mask) if with_mask else None)
    assert seen["options"].min_coherence == 0.5


@pytest.mark.parametrize(
    ("given", "kept"), [("27700", "EPSG:27700"), ("epsg:3035", "epsg:3035"), (" 32633 ", "EPSG:32633")]
)
def test_crs_codes_are_kept_as_pyproj_reads_them(points, tmp_path, capsys, monkeypatch, given, kept):
    seen = {}

    def read_inputs(paths, options):
        seen["crs"] = options.crs
        raise InputError(paths[0], "stop here")

    monkeypatch.setattr("defoscan.io.read_inputs", read_inputs)
    run_cli(["grid", points, "--out", tmp_path / "g.tif", "--crs", given], capsys)
    assert seen["crs"] == kept
