"""The command line: the outputs of the contract, and one clear line with exit status 2 for every bad input."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from defoscan.cli import main
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels
from defoscan.model.networks import build_model
from defoscan.model.weights import save_model

OUTPUTS = {
    "detections.geojson",
    "detections.gpkg",
    "velocity.tif",
    "velocity_filled.tif",
    "probability.tif",
    "run.json",
    "overview.png",
    "report.html",
}
# Bad-input tests are about the inputs: they run the baseline detector, so they do not depend on the bundled model
# (the cnn detector loads its model first and would report a missing model instead).
BASELINE = ["--detector", "threshold"]


def run_cli(args, capsys):
    """Run the command line in-process; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_bad_input(args, capsys, out_dir, *, names, says):
    """Exit 2, one line on stderr naming the file and the problem, no traceback, nothing left behind."""
    status, _, err = run_cli(args, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(names) in lines[0]
    assert says in lines[0].lower()
    assert not os.path.exists(out_dir)
    parent = os.path.dirname(os.path.abspath(out_dir))
    if os.path.isdir(parent):
        assert not [n for n in os.listdir(parent) if ".partial-" in n]
    return lines[0]


def write_csv(path, text):
    path.write_text(text)
    return path


def geotiff(path, crs, values=None, transform=None):
    values = np.ones((8, 8), dtype=np.float32) if values is None else values
    transform = transform or from_origin(4_500_000, 1_800_000, 100, 100)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=-9999,
    ) as dst:
        dst.write(values, 1)
    return path


# --- bad input: one test per case --------------------------------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert_bad_input(
        ["detect", *BASELINE, missing, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=missing,
        says="no such file",
    )


def test_unknown_format(tmp_path, capsys):
    odd = tmp_path / "velocities.xyz"
    odd.write_bytes(b"\x00\x01\x02 not a format defoscan knows")
    assert_bad_input(
        ["detect", *BASELINE, odd, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=odd,
        says="unknown format",
    )


def test_no_coordinate_columns(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "a,b,velocity\n1,2,3\n4,5,6\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="no recognisable coordinate columns",
    )


def test_no_velocity_column(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,height\n13.1,38.7,3\n13.2,38.71,4\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="no recognisable velocity column",
    )


def test_named_column_missing(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,v_mm\n13.1,38.7,3\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--velocity", "rate", "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="no column named 'rate'",
    )


def test_latitude_out_of_range(tmp_path, capsys):
    # 95 is no latitude, and 120 could not be one either: no hint of swapped columns.
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n13.1,38.7,1\n120.0,95.0,2\n")
    line = assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="latitude 95 out of range",
    )
    assert "swapped" not in line


def test_lonlat_swapped(tmp_path, capsys):
    # Kirishima's place written with the columns the wrong way round: latitude 130.9 cannot be.
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n31.91,130.88,1\n31.92,130.89,2\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"], capsys, tmp_path / "out", names=table, says="swapped"
    )


def test_longitude_out_of_range(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n530000,38.7,1\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="longitude 530000 out of range",
    )


def test_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_bad_input(
        ["detect", *BASELINE, empty, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=empty,
        says="empty file",
    )


def test_header_only(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"], capsys, tmp_path / "out", names=table, says="no rows"
    )


def test_all_nan_velocity(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n13.1,38.7,nan\n13.2,38.71,\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="no row has finite coordinates",
    )


def test_all_nodata_raster(tmp_path, capsys):
    raster = geotiff(tmp_path / "v.tif", "EPSG:3035", np.full((8, 8), -9999, dtype=np.float32))
    assert_bad_input(
        ["detect", *BASELINE, raster, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=raster,
        says="no valid velocity",
    )


def test_corrupt_zip(tmp_path, capsys, ustica_l2b_022_zip):
    broken = tmp_path / "EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip"
    broken.write_bytes(ustica_l2b_022_zip.read_bytes()[:200_000])  # a download cut short
    assert_bad_input(
        ["detect", *BASELINE, broken, "--out", tmp_path / "out"], capsys, tmp_path / "out", names=broken, says="corrupt"
    )


def test_zip_without_csv(tmp_path, capsys):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt.md", "nothing here")
    assert_bad_input(
        ["detect", *BASELINE, archive, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=archive,
        says="expected one csv",
    )


def test_corrupt_hdf5(tmp_path, capsys, kirishima_velocity_h5):
    broken = tmp_path / "velocity.h5"
    broken.write_bytes(kirishima_velocity_h5.read_bytes()[:4096])
    assert_bad_input(
        ["detect", *BASELINE, broken, "--out", tmp_path / "out"], capsys, tmp_path / "out", names=broken, says="corrupt"
    )


def test_hdf5_without_velocity(tmp_path, capsys):
    other = tmp_path / "coherence.h5"
    with h5py.File(other, "w") as f:
        f["temporalCoherence"] = np.ones((4, 4), dtype=np.float32)
    assert_bad_input(
        ["detect", *BASELINE, other, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=other,
        says="no 'velocity' dataset",
    )


def test_mixed_crs(tmp_path, capsys):
    laea = geotiff(tmp_path / "a.tif", "EPSG:3035")
    utm = geotiff(tmp_path / "b.tif", "EPSG:32633", transform=from_origin(300_000, 4_290_000, 100, 100))
    line = assert_bad_input(
        ["detect", *BASELINE, laea, utm, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=laea,
        says="different crss",
    )
    assert "EPSG:3035" in line and "EPSG:32633" in line


def test_points_and_raster_mixed(tmp_path, capsys, kirishima_velocity_h5):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n130.88,31.91,1\n")
    assert_bad_input(
        ["detect", *BASELINE, table, kirishima_velocity_h5, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="cannot mix",
    )


def test_easting_northing_without_crs(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "easting,northing,velocity\n530000,180000,1\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=table,
        says="pass --crs",
    )


def test_unknown_units(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "longitude,latitude,velocity\n13.1,38.7,1\n")
    assert_bad_input(
        ["detect", *BASELINE, table, "--units", "furlongs/fortnight", "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names="--units",
        says="must be one of mm/yr, cm/yr, m/yr, got 'furlongs/fortnight'",
    )


def test_output_parent_is_a_file(tmp_path, capsys, kirishima_velocity_h5):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker / "out"
    assert_bad_input(
        ["detect", *BASELINE, kirishima_velocity_h5, "--out", out], capsys, out, names=out, says="is a file"
    )


def test_output_not_writable(tmp_path, capsys, kirishima_velocity_h5):
    if os.geteuid() == 0:  # root ignores permission bits: use a place no one may create directories in
        out = "/proc/defoscan-test/out"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "out"
    assert_bad_input(
        ["detect", *BASELINE, kirishima_velocity_h5, "--out", out], capsys, out, names=out, says="not writable"
    )


def test_failure_keeps_existing_outputs(tmp_path, capsys, ustica_l2b_117_zip):
    out = tmp_path / "out"
    status, _, _ = run_cli(["detect", *BASELINE, ustica_l2b_117_zip, "--out", out], capsys)
    assert status == 0
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    bad = write_csv(tmp_path / "t.csv", "a,b\n1,2\n")
    status, _, err = run_cli(["detect", *BASELINE, bad, "--out", out], capsys)
    assert status == 2
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before
    assert not [n for n in os.listdir(tmp_path) if ".partial-" in n]


# --- the model: --model, --detector, --probability-threshold -------------------------------------------------------


@pytest.fixture
def small_model(tmp_path):
    """A small untrained CompactNet (windows of 32 cells) whose window probability is sigmoid(3) = 0.95 everywhere."""
    recipe = {**DEFAULT_RECIPE, "window": 32}
    model = build_model("compact", input_channels(recipe), width=8, fcn=False)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(3.0)
    path = tmp_path / "model" / "small.safetensors"
    path.parent.mkdir()
    save_model(model, path, {"input": recipe, "threshold": 0.5})
    return path


@pytest.fixture
def noisy_raster(tmp_path):
    values = np.random.default_rng(0).normal(0.0, 2.0, (64, 64)).astype(np.float32)
    return geotiff(tmp_path / "v.tif", "EPSG:3035", values)


def test_corrupt_model(tmp_path, capsys, noisy_raster, small_model):
    small_model.write_bytes(small_model.read_bytes()[:1000])
    assert_bad_input(
        ["detect", noisy_raster, "--model", small_model, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=small_model,
        says="cannot load the model",
    )


def test_missing_model(tmp_path, capsys, noisy_raster):
    missing = tmp_path / "nowhere.safetensors"
    assert_bad_input(
        ["detect", noisy_raster, "--model", missing, "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names=missing,
        says="model weights file not found",
    )


def test_unknown_detector(tmp_path, capsys, noisy_raster):
    assert_bad_input(
        ["detect", noisy_raster, "--detector", "magic", "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names="--detector",
        says="must be one of cnn, threshold, gistar, ada, got 'magic'",
    )


def test_probability_threshold_out_of_range(tmp_path, capsys, noisy_raster, small_model):
    assert_bad_input(
        ["detect", noisy_raster, "--model", small_model, "--probability-threshold", "2", "--out", tmp_path / "out"],
        capsys,
        tmp_path / "out",
        names="--probability-threshold",
        says="must be in (0, 1], got 2",
    )


def test_detect_with_a_model(tmp_path, capsys, noisy_raster, small_model, one_torch_thread):
    out = tmp_path / "out"
    args = ["detect", noisy_raster, "--model", small_model, "--probability-threshold", "0.99", "--out", out]
    status, printed, err = run_cli(args, capsys)
    assert status == 0, err
    assert OUTPUTS <= set(os.listdir(out))
    assert "0 detection(s)" in printed  # 0.95 everywhere, under the 0.99 asked for
    parameters = json.loads((out / "run.json").read_text())["parameters"]
    assert parameters["detector"] == "cnn" and parameters["probability_threshold"] == 0.99
    assert parameters["model"]["path"] == str(small_model)
    with rasterio.open(out / "probability.tif") as src:
        assert np.allclose(src.read(1), 1 / (1 + np.exp(-3.0)), atol=1e-4)


# --- the real script, as users and other tools call it -------------------------------------------------------


def test_script_bad_input_exit_status(tmp_path):
    missing = tmp_path / "nowhere.csv"
    result = subprocess.run(
        [sys.executable, "-m", "defoscan", "detect", *BASELINE, str(missing), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"defoscan: error: {missing}: no such file"


def test_script_usage_error_exit_status():
    result = subprocess.run([sys.executable, "-m", "defoscan", "detect"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --- successful runs --------------------------------------------------------------------------------------------


def test_demo_writes_every_output(tmp_path, capsys):
    out = tmp_path / "demo"
    status, printed, err = run_cli(["demo", "--out", out], capsys)
    assert status == 0, err
    assert OUTPUTS <= set(os.listdir(out))
    assert f"report: {out / 'report.html'}" in printed
    record = json.loads((out / "run.json").read_text())
    assert {"scene.csv", "truth.geojson", "scores.json"} <= set(os.listdir(out))  # the synthetic scene (test_demo)
    assert record["detections"]["count"] == len(json.loads((out / "detections.geojson").read_text())["features"])
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html


def test_grid_command_writes_velocity_and_count(tmp_path, capsys):
    table = write_csv(
        tmp_path / "t.csv", "easting,northing,velocity\n530010,180010,1\n530020,180020,3\n530150,180010,-4\n"
    )
    out = tmp_path / "grid.tif"
    status, _, err = run_cli(["grid", table, "--crs", "27700", "--cell-size", "100", "--out", out], capsys)
    assert status == 0, err
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 27700
        assert src.descriptions == ("velocity all", "count all")
        assert src.transform.c == 530000 and src.transform.f == 180100 and src.res == (100.0, 100.0)
        velocity, count = src.read(1), src.read(2)
    assert velocity[0, 0] == 2.0 and count[0, 0] == 2  # median of 1 and 3
    assert velocity[0, 1] == -4.0 and count[0, 1] == 1


def test_grid_command_refuses_coordinates_at_no_place_on_earth(tmp_path, capsys):
    table = write_csv(tmp_path / "t.csv", "easting,northing,velocity\n1e308,1800000,1\n1e308,1800100,3\n")
    out = tmp_path / "grid.tif"
    status, _, err = run_cli(["grid", table, "--crs", "3035", "--out", out], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{table}: the data lie at easting 1e+308 in EPSG:3035: no place on the Earth" in err
    assert not out.exists()


# --- chunked runs (--chunk, --workers, --scheduler): bad input ---------------------------------------------------


def test_chunked_run_takes_a_raster_and_any_detector(tmp_path, capsys):
    # Issue 17: every input kind and detector runs chunked; the work directory goes once the outputs are in.
    raster = geotiff(tmp_path / "velocity.tif", "EPSG:3035")
    status, out, err = run_cli(
        ["detect", raster, "--out", tmp_path / "out", "--chunk", "64", "--detector", "threshold"], capsys
    )
    assert status == 0, err
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["parameters"]["chunk"] == 64 and record["parameters"]["detector"] == "threshold"
    assert record["points"] is None and record["tracks"][0]["cells_with_data"] > 0
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".defoscan-work")]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not both"),
        (["--chunk", "16"], "--chunk: must be >= 64, got 16"),
        (["--workers", "0"], "--workers: must be >= 1, got 0"),
    ],
)
def test_chunked_run_refuses_bad_options(tmp_path, capsys, options, says):
    points = write_csv(tmp_path / "p.csv", "longitude,latitude,velocity\n-1.5,53.8,1.0\n")
    status, _, err = run_cli(["detect", points, "--out", tmp_path / "out", *options], capsys)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "out")


def test_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("defoscan.pipeline.SCHEDULER_TIMEOUT", "3s")  # nothing listens there: no need to wait 30 s
    points = write_csv(tmp_path / "p.csv", "longitude,latitude,velocity\n-1.5,53.8,1.0\n")
    status, _, err = run_cli(["detect", points, "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "cannot reach the dask scheduler" in err
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".defoscan-work")]


def test_a_bug_propagates_as_itself(tmp_path, monkeypatch):
    # Not bad input: the traceback a bug report needs, of the error itself (main's except clauses named an Abort
    # that typer 0.2x's click lacks, so any such error became an AttributeError).
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("defoscan.pipeline.detect", bug)
    points = write_csv(tmp_path / "p.csv", "longitude,latitude,velocity\n-1.5,53.8,1.0\n")
    with pytest.raises(ZeroDivisionError, match="a bug"):
        main(["detect", *BASELINE, str(points), "--out", str(tmp_path / "out")])


# --- a full disk: one line, exit 2, the staging gone, a chunked run's work kept to resume (issue 23) ---------------


@pytest.fixture(scope="module")
def scene_csv(tmp_path_factory):
    """A synthetic scene of 128 x 128 cells of 50 m (four chunks of 64): outputs of about 400 kB."""
    from defoscan.synth.scene import make_scene, write_scene

    points, truths, info = make_scene(5, shape=(128, 128), cell_size=50.0)
    csv, _, _ = write_scene(str(tmp_path_factory.mktemp("scene")), "scene", points, truths, info)
    return csv


def assert_disk_full(status, err, out, *, chunked):
    """One line naming the output, exit 2; the staging removed; a chunked run's work directory kept."""
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"defoscan: error: no space left on device writing {out} (")
    assert "MB free there now" in lines[0]
    parent = os.path.dirname(out)
    assert not [
        n
        for n in os.listdir(parent)
        if ".partial-" in n or n.startswith(f".{os.path.basename(out)}.") and not n.endswith(".defoscan-work")
    ]
    assert not os.path.exists(out)
    work = os.path.join(parent, f".{os.path.basename(out)}.defoscan-work")
    assert os.path.isdir(work) == chunked
    if chunked:
        assert f"it resumes from {work}" in lines[0]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_writing_outputs(tmp_path, capsys, monkeypatch, scene_csv, code):
    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("defoscan.result.write_geojson", full)
    out = str(tmp_path / "out")
    status, _, err = run_cli(["detect", *BASELINE, scene_csv, "--out", out], capsys)
    assert_disk_full(status, err, out, chunked=False)


def test_disk_full_in_a_chunked_run_resumes(tmp_path, capsys, monkeypatch, scene_csv):
    import defoscan.pipeline

    grid_chunk = defoscan.pipeline.grid_chunk

    def full_at_the_last_chunk(store, i, j, chunk, **options):
        if (i, j) == (1, 1):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return grid_chunk(store, i, j, chunk, **options)

    monkeypatch.setattr("defoscan.pipeline.grid_chunk", full_at_the_last_chunk)
    out = str(tmp_path / "out")
    args = ["detect", *BASELINE, scene_csv, "--out", out, "--chunk", "64"]
    status, _, err = run_cli(args, capsys)
    assert_disk_full(status, err, out, chunked=True)
    monkeypatch.setattr("defoscan.pipeline.grid_chunk", grid_chunk)  # space freed
    status, _, err = run_cli([*args, "-v"], capsys)
    assert status == 0, err
    assert "resuming the run kept in" in err
    reference = tmp_path / "reference"
    assert run_cli(["detect", *BASELINE, scene_csv, "--out", reference, "--chunk", "64"], capsys)[0] == 0
    for name in ("velocity.tif", "velocity_filled.tif", "probability.tif", "detections.geojson"):
        assert (tmp_path / "out" / name).read_bytes() == (reference / name).read_bytes(), name
    assert sorted(os.listdir(tmp_path)) == ["out", "reference"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real file system of 200 kB (a tmpfs; needs root and mount), grown with ``grow(size)``; skipped elsewhere."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")

    def grow(size):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    yield mount, grow
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("chunk", [None, 64])
def test_disk_full_on_a_real_small_file_system(small_tmpfs, capfd, scene_csv, chunk):
    mount, grow = small_tmpfs
    out = str(mount / "out")
    args = ["detect", *BASELINE, scene_csv, "--out", out, *(["--chunk", chunk] if chunk else [])]
    status, _, err = run_cli(args, capfd)  # capfd: what GDAL or libtiff would print on stderr themselves counts
    assert_disk_full(status, err, out, chunked=chunk is not None)
    grow("8m")
    status, _, err = run_cli(args, capfd)
    assert status == 0, err
    assert OUTPUTS <= set(os.listdir(out))
    assert os.listdir(mount) == ["out"]


# --- runs killed or interrupted (issue 24) --------------------------------------------------------------------------

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def test_a_rerun_killed_in_its_final_move_leaves_one_whole_set(tmp_path, capsys, scene_csv):
    out = tmp_path / "out"
    assert run_cli(["detect", *BASELINE, scene_csv, "--out", out, "--cell-size", "100"], capsys)[0] == 0
    killed_after_the_exchange = (
        "import os, signal\n"
        "import defoscan.outputs as outputs\n"
        "exchange = outputs._exchange\n"
        "def exchanging(a, b):\n"
        "    assert exchange(a, b)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "outputs._exchange = exchanging\n"
        "from defoscan.cli import main\n"
        f"main(['detect', '--detector', 'threshold', {scene_csv!r}, '--out', {str(out)!r}, '--cell-size', '50'])\n"
    )
    done = subprocess.run([sys.executable, "-c", killed_after_the_exchange], capture_output=True, text=True, env=ENV)
    assert done.returncode == -9, done.stderr
    # The new set whole in OUT (before the fix: the new detections beside the old run.json), the old one aside.
    assert json.loads((out / "run.json").read_text())["grid"]["cell_size_m"] == 50.0
    with rasterio.open(out / "velocity.tif") as src:
        assert src.res == (50.0, 50.0)
    (old,) = [n for n in os.listdir(tmp_path) if n.startswith(".out.partial-")]
    assert json.loads((tmp_path / old / "run.json").read_text())["grid"]["cell_size_m"] == 100.0
    assert run_cli(["report", out], capsys)[0] == 0
    assert run_cli(["detect", *BASELINE, scene_csv, "--out", out, "--cell-size", "50"], capsys)[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["out"]  # what the killed run left removed by the next


def test_sigint_in_a_chunked_run_says_how_to_resume(tmp_path, scene_csv):
    """A real SIGINT (Ctrl-C, pressed twice): exit 130, one line saying what to do; the same command then resumes."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "defoscan", "detect", *BASELINE, scene_csv, "--out", str(out), "--chunk", "64"]
    command.append("-q")
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    kept = tmp_path / ".out.defoscan-work" / "fingerprint.json"
    deadline = time.monotonic() + 120
    while not kept.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    time.sleep(0.05)
    child.send_signal(signal.SIGINT)  # while the first one unwinds: ignored, the exit still says its line
    err = child.communicate(timeout=120)[1]
    assert child.returncode == 130, err
    assert err == "defoscan: interrupted; rerun the same command to resume\n"
    assert sorted(os.listdir(tmp_path)) == [".out.defoscan-work"]  # no lock file, no staging, no output
    resumed = subprocess.run([*command[:-1], "-v"], capture_output=True, text=True, env=ENV, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the run kept in" in resumed.stderr
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_an_interrupted_run_in_memory_says_so(tmp_path, capsys, scene_csv, monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # main ignores later SIGINTs: not pytest's own

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("defoscan.result.write_geojson", interrupted)
    status, _, err = run_cli(["detect", *BASELINE, scene_csv, "--out", tmp_path / "out"], capsys)
    assert (status, err) == (130, "defoscan: interrupted\n")
    assert os.listdir(tmp_path) == []


# --- a map across the antimeridian (issue 23, case 2) --------------------------------------------------------------


@pytest.fixture(scope="module")
def fiji_csv(tmp_path_factory):
    """Points every 200 m over 30 x 16 km around 180 degrees over Fiji (as many each side), a bowl on the line."""
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32760", always_xy=True)
    centre_x, centre_y = to_utm.transform(180.0, -17.0)
    x, y = np.meshgrid(np.arange(-15_000, 15_000, 200.0) + 100, np.arange(-8_000, 8_000, 200.0) + 100)
    rng = np.random.default_rng(0)
    velocity = -40 * np.exp(-((np.hypot(x, y) / 2500) ** 2)) + rng.normal(0, 1.0, x.shape)
    lon, lat = to_utm.transform(centre_x + x.ravel(), centre_y + y.ravel(), direction="INVERSE")
    lon = (lon + 180) % 360 - 180  # 179.86 to 180, then -180 to -179.86, as a points table has them
    assert (lon > 0).sum() == (lon < 0).sum()  # the naive median longitude is 0: UTM zone 31
    path = tmp_path_factory.mktemp("fiji") / "fiji.csv"
    rows = "\n".join(f"{a:.6f},{b:.6f},{v:.2f}" for a, b, v in zip(lon, lat, velocity.ravel(), strict=True))
    path.write_text("longitude,latitude,velocity\n" + rows + "\n")
    return path


@pytest.mark.parametrize("chunk", [None, 64])
def test_detections_across_the_antimeridian(tmp_path, capsys, fiji_csv, chunk):
    out = tmp_path / "out"
    args = ["detect", *BASELINE, fiji_csv, "--out", out, *(["--chunk", chunk] if chunk else [])]
    status, _, err = run_cli(args, capsys)
    assert status == 0, err
    assert json.loads((out / "run.json").read_text())["grid"]["crs"] in ("EPSG:32701", "EPSG:32760")
    features = json.loads((out / "detections.geojson").read_text())["features"]
    bowl = features[0]
    assert bowl["properties"]["sign"] == "subsidence" and bowl["geometry"]["type"] == "MultiPolygon"
    parts = [np.array(rings[0]) for rings in bowl["geometry"]["coordinates"]]
    assert sorted(np.sign(part[:, 0].mean()) for part in parts) == [-1, 1]  # cut at 180: a part each side
    for feature in features:  # RFC 7946: every ring within [-180, 180], none drawn round the globe
        kind = feature["geometry"]["type"]
        polygons = (
            feature["geometry"]["coordinates"] if kind == "MultiPolygon" else [feature["geometry"]["coordinates"]]
        )
        for ring in (np.array(rings[0]) for rings in polygons):
            assert np.abs(ring[:, 0]).max() <= 180 and np.ptp(ring[:, 0]) < 1
