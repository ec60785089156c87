"""The README's Python code gives what the command line gives: its probabilities are probability.tif's."""

import re

import numpy as np
import rasterio

from conftest import REPO
from defoscan.pipeline import detect
from defoscan.synth.scene import make_scene, write_scene


def readme_python():
    """The README's first ``python`` code block."""
    (block, *_) = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return block


def test_the_readme_snippet_gives_the_probability_map_of_detect(tmp_path):
    points, truths, info = make_scene(3, shape=(300, 300))  # 15 x 15 km with signals, spikes and gaps
    csv, _, _ = write_scene(str(tmp_path), "scene", points, truths, info)
    detect([csv], str(tmp_path / "out"))
    code = readme_python()
    assert code.count('"points.csv"') == 1
    namespace = {}
    exec(compile(code.replace('"points.csv"', repr(csv)), "README.md", "exec"), namespace)
    (probability,) = namespace["probabilities"]
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        written = src.read(1)
    assert probability.shape == written.shape
    np.testing.assert_array_equal(np.isnan(probability), np.isnan(written))
    assert np.isfinite(written).sum() > 1000 and np.nanmax(written) > 0.5  # a map worth comparing, with signals
    assert np.nanmax(np.abs(probability - written)) < 1e-5
