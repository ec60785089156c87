"""The overview figure: print resolution, every detection outlined, the report's cards numbered."""

import geopandas as gpd
import matplotlib.axes
import numpy as np
from affine import Affine
from matplotlib.image import imread
from shapely.geometry import box

from defoscan.figures import DPI, MAX_LABELS, write_overview

CELL = 50.0
ORIGIN = (600_000.0, 5_800_000.0)


TRANSFORM = Affine(CELL, 0.0, ORIGIN[0], 0.0, -CELL, ORIGIN[1])
CRS = "EPSG:32631"


def grid(shape=(200, 300), track="A"):
    """A track's velocity map, as ``write_overview`` takes it: (track name, 2-D values)."""
    values = np.random.default_rng(1).normal(0.0, 3.0, shape)
    values[:20, :20] = np.nan
    return track, values


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
    write_overview(tmp_path / "o.png", [grid()], detections(3), TRANSFORM, CRS)
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
    write_overview(tmp_path / "o.png", [grid()], frame, TRANSFORM, CRS)
    assert len(outlines) == len(frame)  # every detection outlined
    assert labels == [str(i) for i in range(1, MAX_LABELS + 1)]  # the highest scores numbered
