"""The README's Python code gives what the command line gives: its probabilities are probability.tif's."""

import re

import geopandas as gpd
import numpy as np
import rasterio

from conftest import REPO
from defoscan.pipeline import detect
from defoscan.synth.scene import make_scene, write_scene


def readme_python():
    """The README's first ``python`` code block."""
    (block, *_) = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return block


def test_the_readme_python_gives_what_the_command_line_writes(tmp_path, monkeypatch):
    points, truths, info = make_scene(5, shape=(300, 300))  # 15 x 15 km with signals, spikes and gaps
    csv, _, _ = write_scene(str(tmp_path), "scene", points, truths, info)
    detect([csv], str(tmp_path / "cli"))  # what `defoscan detect` runs
    code = readme_python()
    assert code.count('"points.csv"') == 1 and code.count('"out"') == 1
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace('"points.csv"', repr(csv)), "README.md", "exec"), namespace)
    with rasterio.open(tmp_path / "cli" / "probability.tif") as src:
        written = src.read(1)
    probability = namespace["probability"].values
    assert probability.shape == written.shape
    np.testing.assert_array_equal(np.isnan(probability), np.isnan(written))
    assert np.isfinite(written).sum() > 1000 and np.nanmax(written) > 0.5  # a map worth comparing, with signals
    np.testing.assert_array_equal(probability, written)
    detections = namespace["detections"]
    assert len(detections) > 0 and set(namespace["subsiding"]["sign"]) == {"subsidence"}
    cli = gpd.read_file(tmp_path / "cli" / "detections.gpkg", layer="detections")
    assert list(detections["id"]) == list(cli["id"]) and np.allclose(detections["score"], cli["score"])
    for name in ("velocity.tif", "velocity_filled.tif", "probability.tif", "count.tif"):
        with rasterio.open(tmp_path / "out" / name) as a, rasterio.open(tmp_path / "cli" / name) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    assert (tmp_path / "out" / "report.html").stat().st_size > 0
