"""QGIS styles: QML sidecars of the rasters and the detections, their limits, colours and structure."""

import os
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest
import zarr

from defoscan.figures import VELOCITY_CMAP, symmetric_limit
from defoscan.report_assets import STYLE
from defoscan.styles import (
    SIGN_COLOURS,
    count_limit,
    detections_qml,
    pseudocolor_qml,
    upper_percentile,
    velocity_limit,
    write_styles,
)

RED, BLUE = "#b2182b", "#2166ac"  # the report's legend colours of subsidence and uplift


def colour_ramp(qml):
    """(value, colour) of the items of a raster QML, in order."""
    root = ET.fromstring(qml)
    shader = root.find("./pipe/rasterrenderer/rastershader/colorrampshader")
    return [(float(item.get("value")), item.get("color")) for item in shader.findall("item")]


def test_velocity_style_is_a_diverging_ramp_centred_on_zero():
    qml = pseudocolor_qml(VELOCITY_CMAP, -12.5, 12.5, "mm/yr")
    root = ET.fromstring(qml)
    assert root.tag == "qgis" and root.get("version").startswith("3.28")
    renderer = root.find("./pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "1"
    assert (float(renderer.get("classificationMin")), float(renderer.get("classificationMax"))) == (-12.5, 12.5)
    assert renderer.find("./minMaxOrigin/limits").text == "None"  # fixed limits, not restretched per view
    shader = renderer.find("./rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    assert (float(shader.get("minimumValue")), float(shader.get("maximumValue"))) == (-12.5, 12.5)
    ramp = colour_ramp(qml)
    values = [v for v, _ in ramp]
    assert len(ramp) == 11 and values == sorted(values) and values[5] == 0.0 and values[0] == -values[-1]
    rgb = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for _, c in ramp]
    red, white, blue = rgb[0], rgb[5], rgb[-1]
    assert red[0] > 3 * red[2] and blue[2] > 3 * blue[0]  # negative (subsidence) red, positive (uplift) blue
    assert min(white) > 240  # zero is white
    # The overview's colour map: the same colours at the ends and the centre.
    expected = matplotlib.colormaps[VELOCITY_CMAP]([0.0, 0.5, 1.0], bytes=True)[:, :3]
    assert [red, white, blue] == [tuple(int(c) for c in e) for e in expected]
    assert ramp[0][1] == "#67001f" and ramp[-1][1] == "#053061"  # ColorBrewer RdBu's darkest ends
    stops = root.find("./pipe/rasterrenderer/rastershader/colorrampshader/colorramp/Option")
    options = {o.get("name"): o.get("value") for o in stops}
    assert options["color1"] == "103,0,31,255" and options["color2"] == "5,48,97,255"
    assert len(options["stops"].split(":")) == 9


def test_limits_are_robust_percentiles_read_by_windows(tmp_path):
    rng = np.random.default_rng(3)
    velocity = rng.normal(0, 4, (700, 900)).astype(np.float32)
    velocity[rng.random(velocity.shape) < 0.5] = np.nan
    velocity[0, :5] = 5000.0  # a few wild cells do not set the limit
    expected = np.percentile(np.abs(velocity[np.isfinite(velocity)]), 98)
    assert velocity_limit([velocity]) == pytest.approx(np.ceil(expected * 10) / 10)
    assert abs(velocity_limit([velocity]) - symmetric_limit(velocity)) < 0.1  # the overview's limit, rounded up
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    stored = group.create_array("v", shape=velocity.shape, chunks=(128, 128), dtype="f4", fill_value=np.nan)
    stored[...] = velocity
    assert velocity_limit([stored]) == velocity_limit([velocity])  # the chunked run's limit is the same
    assert velocity_limit([np.full((4, 4), np.nan)]) == 1.0 and velocity_limit([np.zeros((4, 4))]) == 1.0
    assert velocity_limit([np.full((4, 4), 0.3)]) == 1.0  # a stable map is not drawn in full colour
    counts = np.zeros((50, 50), dtype=np.uint32)
    counts[:10, :10] = np.arange(1, 101).reshape(10, 10)  # 1..100 points in 100 cells, none elsewhere
    assert count_limit([counts]) == 98 and count_limit([np.zeros((3, 3))]) == 2
    assert upper_percentile([np.array([[1.0, 2.0, 3.0, 4.0]])], 50, 1.0, cap=10) == 2.0
    assert upper_percentile([np.array([[-7.2]])], 50, 0.5, cap=5) == 5.0  # beyond the cap counts as the cap


def test_detections_style_outlines_by_sign():
    root = ET.fromstring(detections_qml())
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "sign"
    categories = {c.get("value"): c.get("symbol") for c in renderer.findall("./categories/category")}
    assert set(categories) == {"subsidence", "uplift", ""}
    symbols = {s.get("name"): s for s in renderer.findall("./symbols/symbol")}
    assert set(symbols) == set(categories.values())

    def options(sign):
        layer = symbols[categories[sign]].find("layer")
        assert layer.get("class") == "SimpleFill" and symbols[categories[sign]].get("type") == "fill"
        return {o.get("name"): o.get("value") for o in layer.find("Option")}

    for sign, colour in (("subsidence", RED), ("uplift", BLUE)):
        drawn = options(sign)
        rgb = ",".join(str(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
        assert drawn["outline_color"] == f"{rgb},255" and float(drawn["outline_width"]) > 0
        assert drawn["color"].startswith(f"{rgb},") and int(drawn["color"].split(",")[3]) < 64  # a light fill
        assert colour in STYLE  # the report's legend colours
    assert SIGN_COLOURS["subsidence"] != SIGN_COLOURS["uplift"]
    assert root.find("./labeling/settings/text-style").get("fieldName") == "id"


def test_write_styles_writes_a_sidecar_per_output(tmp_path):
    velocity = np.linspace(-20, 20, 400, dtype=np.float32).reshape(20, 20)
    counts = np.full((20, 20), 3, dtype=np.uint32)
    styles = write_styles(tmp_path, [velocity, velocity / 2], [counts, counts])
    names = ["count.qml", "detections.qml", "probability.qml", "velocity.qml", "velocity_filled.qml"]
    assert sorted(os.listdir(tmp_path)) == names == sorted(styles)
    for name in names:
        ET.parse(tmp_path / name)  # well-formed XML
        assert (tmp_path / name).read_text(encoding="utf-8") == styles[name]
    velocity_ramp = colour_ramp(styles["velocity.qml"])
    assert velocity_ramp == colour_ramp(styles["velocity_filled.qml"])  # comparable colours
    both = np.abs(np.concatenate([velocity.ravel(), velocity.ravel() / 2]))
    expected = np.ceil(np.percentile(both, 98) * 10) / 10  # the 98th percentile of |velocity| of both tracks
    assert velocity_ramp[-1][0] == pytest.approx(expected) and velocity_ramp[0][0] == pytest.approx(-expected)
    probability = colour_ramp(styles["probability.qml"])
    assert (probability[0][0], probability[-1][0]) == (0.0, 1.0)
    viridis = matplotlib.colormaps["viridis"]([0.0, 1.0], bytes=True)[:, :3]
    assert [c for _, c in (probability[0], probability[-1])] == ["#{:02x}{:02x}{:02x}".format(*v) for v in viridis]
    count = colour_ramp(styles["count.qml"])
    assert (count[0][0], count[-1][0]) == (1.0, 3.0)
