"""The overview figure: print resolution, every detection outlined, the report's cards numbered."""

import geopandas as gpd
import matplotlib.axes
import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from matplotlib.image import imread
from shapely.geometry import box

from defoscan.figures import DPI, MAX_LABELS, write_overview

CELL = 50.0
ORIGIN = (600_000.0, 5_800_000.0)


def grid(shape=(200, 300), track="A"):
    values = np.random.default_rng(1).normal(0.0, 3.0, shape)
    values[:20, :20] = np.nan
    x = ORIGIN[0] + (np.arange(shape[1]) + 0.5) * CELL
    y = ORIGIN[1] - (np.arange(shape[0]) + 0.5) * CELL
    dataset = xr.Dataset({"velocity": (("y", "x"), values)}, coords={"x": x, "y": y}, attrs={"track": track})
    return dataset.rio.write_crs("EPSG:32631")


def detections(n):
    cells = [(30 + 12 * (i % 20), 40 + 14 * (i // 20)) for i in range(n)]
    geometries = [
        box(ORIGIN[0] + c * CELL, ORIGIN[1] - (r + 4) * CELL, ORIGIN[0] + (c + 4) * CELL, ORIGIN[1] - r * CELL)
        for c, r in cells
    ]
    scores = np.linspace(1.0, 0.5, n)
    return gpd.GeoDataFrame(
        {"id": np.arange(1, n + 1), "score": scores, "track": "A"}, geometry=geometries, crs="EPSG:32631"
    )


def test_overview_is_print_resolution(tmp_path):
    write_overview(tmp_path / "o.png", [grid()], detections(3))
    image = imread(tmp_path / "o.png")
    assert DPI >= 200 and image.shape[1] == 6 * DPI  # one panel, 6 inches wide


def test_only_the_top_detections_are_numbered(tmp_path, monkeypatch):
    labels, outlines = [], []
    annotate, plot = matplotlib.axes.Axes.annotate, matplotlib.axes.Axes.plot

    def spy_annotate(self, text, *args, **kwargs):
        labels.append(text)
        return annotate(self, text, *args, **kwargs)

    def spy_plot(self, *args, **kwargs):
        outlines.append(args)
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", spy_annotate)
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy_plot)
    frame = detections(MAX_LABELS + 10)
    write_overview(tmp_path / "o.png", [grid()], frame)
    assert len(outlines) == len(frame)  # every detection outlined
    assert labels == [str(i) for i in range(1, MAX_LABELS + 1)]  # the highest scores numbered
