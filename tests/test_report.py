"""report.html: built from a finished run's files, the same by ``detect`` and ``defoscan report``, self-contained."""

import json
import os
import re
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from defoscan.cli import main
from defoscan.pipeline import detect
from defoscan.report import DEFAULT_TOP, write_report_from_run
from defoscan.report_images import (
    COLOUR_STEPS,
    MAX_CELLS,
    colour_png,
    detection_window,
    window_shape,
    wrap_interval,
)
from defoscan.wrap import ENHANCED_INTERVALS, SENTINEL1_HALF_WAVELENGTH_MM


@pytest.fixture(scope="module")
def kirishima_run(tmp_path_factory, kirishima_velocity_h5):
    """The baseline detector on the Kirishima map (../shared): more detections than cards (about 76)."""
    out = tmp_path_factory.mktemp("report") / "run"
    result = detect([str(kirishima_velocity_h5)], str(out), detector="threshold")
    assert len(result["detections"]) > DEFAULT_TOP  # so that cards and table differ
    return out


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def truncate(path, kept):
    """Cut a file to ``kept`` of its size (0: its first 100 bytes, the TIFF header without its directory)."""
    size = int(path.stat().st_size * kept) if kept else 100
    with open(path, "r+b") as handle:
        handle.truncate(size)


def card_ids(page):
    return [int(i) for i in re.findall(r'<article class="card" id="detection-(\d+)">', page)]


def table_rows(page):
    """The table's rows: the JSON the page's script draws the table from."""
    data = re.search(r'<script type="application/json" id="detections-data">(.*?)</script>', page, re.S)
    return [] if data is None else json.loads(data.group(1).replace("<\\/", "</"))["rows"]


def test_cards_for_the_top_detections_and_every_detection_in_the_table(kirishima_run):
    page = (kirishima_run / "report.html").read_text()
    frame = gpd.read_file(kirishima_run / "detections.gpkg", layer="detections")
    ranked = frame.sort_values(["score", "id"], ascending=[False, True])
    assert card_ids(page) == list(ranked["id"][:DEFAULT_TOP])
    scores = [float(s) for s in re.findall(r'<span class="score">score ([0-9.]+)</span>', page)]
    assert scores == sorted(scores, reverse=True)
    rows = table_rows(page)
    assert [row[0] for row in rows] == list(ranked["id"])  # every detection, highest score first
    assert rows[0][1:3] == [ranked["score"].iloc[0], "deformation"]
    assert json.loads(re.search(r'id="detections-data">(.*?)</script>', page).group(1))["cards"] == card_ids(page)
    assert f"the other {len(frame) - DEFAULT_TOP} are in the" in page
    assert page.count('<figure class="panel">') == 4 * DEFAULT_TOP
    for unit in ("mm/yr", "rad", "over-wrapped, one fringe = 27.7 mm/yr (display)", "threshold footprint"):
        assert unit in page


def test_top_sets_the_number_of_cards(kirishima_run, tmp_path):
    for top in (0, 3):
        path = write_report_from_run(kirishima_run, top=top, path=tmp_path / f"top{top}.html")
        page = open(path, encoding="utf-8").read()
        assert len(card_ids(page)) == top
        assert len(table_rows(page)) == json.loads((kirishima_run / "run.json").read_text())["detections"]["count"]


def test_summary_numbers(kirishima_run):
    page = (kirishima_run / "report.html").read_text()
    record = json.loads((kirishima_run / "run.json").read_text())
    grid, (track,) = record["grid"], record["tracks"]
    area = grid["width"] * grid["height"] * grid["cell_size_m"] ** 2 / 1e6
    assert f"{area:,.1f} km² (extent of the grid)" in page
    assert f"{track['cells_with_data'] * grid['cell_size_m'] ** 2 / 1e6:,.1f} km²" in page
    assert f"{track['track']}: {track['coverage']:.1%}" in page
    signs = record["detections"]["by_sign"]
    assert f"{record['detections']['count']} ({signs['subsidence']} subsidence, {signs['uplift']} uplift)" in page
    counts = re.search(r'<table class="counts">.*?<th>deformation</th>(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r">(\d+)<", counts) == [str(signs["subsidence"]), str(signs["uplift"]), str(sum(signs.values()))]
    assert f"{record['timings']['total_s']:.1f} s" in page
    assert f"<th>numpy</th><td>{record['software']['numpy']}</td>" in page
    assert "<th>detector</th><td>threshold</td>" in page


def test_self_contained(kirishima_run):
    page = (kirishima_run / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(r.startswith(("data:", "#")) for r in references)
    assert "<script src" not in page and '<link rel="stylesheet"' not in page


def test_report_command_rebuilds_the_same_page(kirishima_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(kirishima_run, copy)
    (copy / "report.html").unlink()
    status, printed, err = run_cli(["report", copy], capsys)
    assert status == 0, err
    assert f"report: {copy / 'report.html'}" in printed
    assert (copy / "report.html").read_bytes() == (kirishima_run / "report.html").read_bytes()


def test_cards_read_small_windows_only(kirishima_run, tmp_path, monkeypatch):
    """The report never reads a whole raster: every read is windowed and at most MAX_CELLS a side."""
    reads = []
    original = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        reads.append((kwargs.get("window"), kwargs.get("out_shape")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    write_report_from_run(kirishima_run, top=5, path=tmp_path / "r.html")
    assert len(reads) == 5 * 3
    assert all(window is not None and max(shape) <= MAX_CELLS for window, shape in reads)


@pytest.mark.parametrize(
    ("prepare", "says"),
    [
        (lambda d: shutil.rmtree(d), "no such run directory"),
        (lambda d: [p.unlink() for p in d.iterdir()], "not a defoscan run directory (no run.json)"),
        (lambda d: (d / "run.json").unlink(), "an unfinished run (no run.json"),  # moved in last: killed before
        (lambda d: (d / "run.json").write_text("{not json"), "cannot read the run record"),
        (lambda d: (d / "run.json").write_text("{}"), "not a defoscan run record"),
        (lambda d: (d / "velocity.tif").unlink(), "missing: not a finished defoscan run"),
        (lambda d: [(d / n).unlink() for n in ("detections.gpkg", "detections.geojson")], "missing"),
        (lambda d: truncate(d / "velocity.tif", 1 / 8), "velocity.tif: cannot read the raster, truncated or damaged"),
        (lambda d: truncate(d / "probability.tif", 1 / 8), "probability.tif: cannot read the raster, truncated"),
        (lambda d: truncate(d / "velocity_filled.tif", 0), "velocity_filled.tif: cannot read the raster, truncated"),
        (lambda d: truncate(d / "overview.png", 1 / 2), "overview.png: not a whole PNG image, truncated or damaged"),
        (lambda d: (d / "report.html").mkdir(), "report.html: is a directory"),
    ],
)
def test_bad_run_directory(kirishima_run, tmp_path, capsys, prepare, says):
    copy = tmp_path / "copy"
    shutil.copytree(kirishima_run, copy)
    (copy / "report.html").unlink()
    prepare(copy)
    status, _, err = run_cli(["report", copy], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(copy) in lines[0] and says in lines[0]
    if copy.exists():
        assert "report.html" not in os.listdir(copy) or not os.listdir(copy / "report.html")
        assert not [n for n in os.listdir(copy) if n.startswith(".")]  # no temporary file left


def test_a_run_without_detections(tmp_path, capsys):
    values = np.random.default_rng(0).normal(0.0, 2.0, (64, 64)).astype(np.float32)
    raster = tmp_path / "flat.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 1, "dtype": "float32", "nodata": -9999}
    with rasterio.open(
        raster, "w", crs="EPSG:3035", transform=from_origin(4_500_000, 1_800_000, 100, 100), **profile
    ) as dst:
        dst.write(values, 1)
    status, printed, err = run_cli(["detect", "--detector", "threshold", raster, "--out", tmp_path / "out"], capsys)
    assert status == 0, err
    assert "0 detection(s): 0 subsidence, 0 uplift" in printed
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No deformation detected" in page and card_ids(page) == [] and table_rows(page) == []
    assert "0 (0 subsidence, 0 uplift)" in page


def test_detection_window_has_a_margin_and_a_minimum_size():
    transform = from_origin(1000.0, 2000.0, 10.0, 10.0)
    small = detection_window(box(1100, 1800, 1120, 1820).bounds, transform)
    assert small.width == small.height >= 32
    assert small.col_off < 10 and small.col_off + small.width > 12  # the detection's columns 10..12, inside
    large = detection_window(box(1000, -8000, 11000, 2000).bounds, transform)  # 1000 x 1000 cells
    assert large.width >= 1000 and large.width == large.height
    assert max(window_shape(large)) <= MAX_CELLS  # read decimated


def test_wrap_interval_follows_the_model_recipe():
    assert wrap_interval(None, 10.0) == (SENTINEL1_HALF_WAVELENGTH_MM, False)
    assert wrap_interval({"mode": "raw"}, 10.0) == (SENTINEL1_HALF_WAVELENGTH_MM, False)
    assert wrap_interval({"mode": "single", "intervals": None}, 10.0) == (SENTINEL1_HALF_WAVELENGTH_MM, True)
    assert wrap_interval({"mode": "single", "intervals": [5.0]}, 10.0) == (5.0, True)
    interval, used = wrap_interval({"mode": "enhanced", "intervals": None}, 10.0)
    assert used and interval in ENHANCED_INTERVALS and 1.0 <= 10.0 / interval <= 5.0


def test_colour_png_draws_no_data_and_the_outline():
    from io import BytesIO

    from PIL import Image

    values = np.zeros((10, 10))
    values[0, 0] = np.nan
    inside = np.zeros((10, 10), dtype=bool)
    inside[3:7, 3:7] = True
    image = Image.open(BytesIO(colour_png(values, "RdBu", -1.0, 1.0, inside, pixels=40)))
    assert image.mode == "P" and image.size == (40, 40)
    index = np.asarray(image)
    assert index[0, 0] == COLOUR_STEPS  # no data: grey
    assert index[12, 20] == COLOUR_STEPS + 2 and index[11, 20] == COLOUR_STEPS + 1  # edge black, halo white
    assert index[20, 20] == (COLOUR_STEPS - 1) // 2  # zero: the middle of the diverging map


def test_cards_of_several_tracks_read_their_own_track(tmp_path, monkeypatch):
    """Two EGMS L3 components are two tracks: each card's images come from its own track's bands."""
    import defoscan.report_images as report_images

    rows, cols = np.mgrid[0:80, 0:80]
    rng = np.random.default_rng(3)
    maps = {
        "U": -30.0 * np.exp(-((rows - 20) ** 2 + (cols - 20) ** 2) / 30.0),
        "E": 30.0 * np.exp(-((rows - 55) ** 2 + (cols - 55) ** 2) / 30.0),
    }
    inputs = []
    for component, values in maps.items():
        path = tmp_path / f"EGMS_L3_E45N17_100km_{component}_2020_2024_1.tif"
        profile = {"driver": "GTiff", "width": 80, "height": 80, "count": 1, "dtype": "float32", "nodata": -9999}
        with rasterio.open(
            path, "w", crs="EPSG:3035", transform=from_origin(4_500_000, 1_800_000, 100, 100), **profile
        ) as dst:
            dst.write((values + rng.normal(0.0, 1.0, values.shape)).astype(np.float32), 1)
        inputs.append(str(path))
    out = tmp_path / "out"
    frame = detect(inputs, str(out), detector="threshold")["detections"]
    assert set(frame["track"]) == {"L3-U", "L3-E"}
    read = []
    original = report_images.read_window

    def spy(src, band, window, shape):
        read.append(src.descriptions[band - 1])
        return original(src, band, window, shape)

    monkeypatch.setattr(report_images, "read_window", spy)
    write_report_from_run(out, path=tmp_path / "r.html")
    ranked = frame.sort_values(["score", "id"], ascending=[False, True])
    expected = [
        f"{name} {track}" for track in ranked["track"] for name in ("velocity", "velocity_filled", "probability")
    ]
    assert read == expected
    page = (tmp_path / "r.html").read_text()
    assert "L3-U: " in page and "L3-E: " in page  # coverage of both tracks in the summary
