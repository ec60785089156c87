"""Figures: the overview map of gridded velocity with detections outlined and numbered (in memory, or from a store)."""

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio.crs  # noqa: E402
from affine import Affine  # noqa: E402

from defoscan.outputs import atomic_path  # noqa: E402
from defoscan.store_outputs import window_shape  # noqa: E402

VELOCITY_CMAP = "RdBu"  # diverging, centred on zero: red = away from the satellite (subsidence), blue = towards
NO_DATA_COLOUR = "0.85"
MAX_LABELS = 50  # detections numbered on the map: the report's cards (defoscan.report.DEFAULT_TOP)
DPI = 200  # print quality at the figure's 6 inches a panel


def symmetric_limit(values, percentile=98.0, floor=1.0):
    """Colour limit centred on zero: a high percentile of ``|values|`` (at least ``floor`` mm/yr)."""
    finite = np.abs(values[np.isfinite(values)])
    return max(floor, float(np.percentile(finite, percentile))) if finite.size else floor


def write_overview(path, tracks, frame, transform, crs, *, max_pixels=2000, dpi=DPI, truth=None):
    """Write ``overview.png``: one panel per track, velocity in mm/yr, detections outlined with their number.

    Each track's velocity is reduced to at most ``max_pixels`` a side by :func:`block_mean` (the mean of the
    finite cells of ``k x k`` blocks), read window by window, so a country's map is drawn in bounded memory; the
    colour limit is taken from the reduced images. A map no larger than ``max_pixels`` is drawn cell for cell.

    Parameters
    ----------
    path : str
    tracks : list of (str, array-like)
        Track name (``None`` for ``"all"``) and its 2-D velocity (Zarr array, numpy array), all on one grid.
    frame : geopandas.GeoDataFrame
        Detections in the maps' CRS, with ``id`` and ``track``.
    transform : affine.Affine
        The maps' transform (north up).
    crs : pyproj.CRS or str
    max_pixels : int
        Most image pixels per side of a panel.
    dpi : int
    truth : geopandas.GeoDataFrame, optional
        Known outlines (a synthetic scene's truth) in the maps' CRS, drawn dashed on every panel.
    """
    label = rasterio.crs.CRS.from_user_input(crs).to_string()
    panels = []
    for track, values in tracks:
        height, width = values.shape
        factor = max(1, -(-max(height, width) // int(max_pixels)))
        image = block_mean(values, factor)
        scaled = transform * Affine.scale(factor)
        panels.append((track or "all", image, image_extent(scaled, *image.shape), label))
    limit = max(symmetric_limit(image) for _, image, _, _ in panels)
    _write_panels(path, panels, frame, limit, dpi, truth=truth)


def block_mean(values, factor, *, window=None):
    """Mean of the finite cells of each ``factor x factor`` block of a 2-D array, read window by window.

    Parameters
    ----------
    values : array-like
        2-D values that slice (Zarr array, numpy array); NaN (any non-finite value) = no data.
    factor : int
        Block side in cells; blocks at the far edges are partial (the mean of the cells there).
    window : int, optional
        Cells per side of a read window, rounded to a multiple of ``factor``; about 2048, in whole chunks of a
        Zarr array, by default (:func:`defoscan.store_outputs.window_shape`).

    Returns
    -------
    numpy.ndarray
        float32, ``ceil(rows / factor) x ceil(columns / factor)``; NaN where a block has no finite cell.
    """
    height, width = values.shape
    factor = int(factor)
    steps = [factor * max(1, -(-side // factor)) for side in window_shape(values, window)]
    out = np.full((-(-height // factor), -(-width // factor)), np.nan, dtype=np.float32)
    for r0 in range(0, height, steps[0]):
        for c0 in range(0, width, steps[1]):
            block = np.asarray(values[r0 : r0 + steps[0], c0 : c0 + steps[1]], dtype=np.float64)
            rows, columns = -(-block.shape[0] // factor), -(-block.shape[1] // factor)
            padded = np.full((rows * factor, columns * factor), np.nan)
            padded[: block.shape[0], : block.shape[1]] = block
            finite = np.isfinite(padded)
            sums = np.where(finite, padded, 0.0).reshape(rows, factor, columns, factor).sum(axis=(1, 3))
            counts = finite.reshape(rows, factor, columns, factor).sum(axis=(1, 3))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(counts > 0, sums / counts, np.nan)
            out[r0 // factor : r0 // factor + rows, c0 // factor : c0 // factor + columns] = mean
    return out


def image_extent(transform, height, width):
    """Matplotlib ``extent`` (left, right, bottom, top) in km of a north-up grid."""
    return (
        np.array([transform.c, transform.c + width * transform.a, transform.f + height * transform.e, transform.f])
        / 1000.0
    )


def _write_panels(path, panels, frame, limit, dpi, truth=None):
    """The overview figure: ``panels`` of (track, 2-D image, extent in km, CRS label), colours within ``limit``.

    Every detection is outlined; the :data:`MAX_LABELS` highest-scoring ones carry their number (those the report
    gives a card), so that a country's thousands of detections do not bury the map under numbers.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(panels)
    labelled = set(frame.sort_values(["score", "id"], ascending=[False, True])["id"].head(MAX_LABELS))
    with plt.rc_context({"font.size": 9, "axes.titlesize": 11, "axes.labelsize": 9}):
        fig, axes = plt.subplots(1, n, figsize=(6.0 * n, 6.0), squeeze=False, constrained_layout=True)
        for ax, (track, values, extent, crs_label) in zip(axes[0], panels, strict=True):
            image = ax.imshow(
                values, cmap=VELOCITY_CMAP, vmin=-limit, vmax=limit, extent=extent, interpolation="nearest"
            )
            ax.set_facecolor(NO_DATA_COLOUR)  # no data shows grey, distinct from zero velocity (white)
            for polygon in [] if truth is None else [p for g in truth.geometry for p in getattr(g, "geoms", [g])]:
                xs, ys = polygon.exterior.xy
                ax.plot(np.asarray(xs) / 1000.0, np.asarray(ys) / 1000.0, color="0.2", linewidth=0.9, linestyle="--")
            on_track = frame[frame["track"] == track]
            for _, row in on_track.iterrows():
                for polygon in getattr(row.geometry, "geoms", [row.geometry]):
                    xs, ys = polygon.exterior.xy
                    ax.plot(np.asarray(xs) / 1000.0, np.asarray(ys) / 1000.0, color="black", linewidth=0.8)
                if row["id"] not in labelled:
                    continue
                point = row.geometry.representative_point()
                ax.annotate(
                    str(row["id"]),
                    (point.x / 1000.0, point.y / 1000.0),
                    fontsize=7,
                    fontweight="bold",
                    ha="center",
                    va="center",
                    color="black",
                    bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.75},
                )
            ax.set_title(f"Track {track}: {len(on_track)} detection(s)")
            ax.set_xlabel(f"easting (km, {crs_label})")
            ax.set_ylabel("northing (km)")
            ax.ticklabel_format(useOffset=False, style="plain")
            ax.set_aspect("equal")
            fig.colorbar(
                image, ax=ax, shrink=0.8, extend="both", label="LOS velocity (mm/yr)\nnegative = away from satellite"
            )
            handles = [
                Line2D([], [], color="black", linewidth=0.8, label="detection (number: report card)"),
                Patch(facecolor=NO_DATA_COLOUR, edgecolor="0.5", label="no data"),
            ]
            if truth is not None:
                handles.insert(1, Line2D([], [], color="0.2", linewidth=0.9, linestyle="--", label="truth"))
            ax.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.09),
                ncol=len(handles),
                frameon=False,
                fontsize=8,
            )
        with atomic_path(path) as temporary:
            fig.savefig(temporary, dpi=dpi, format="png", metadata={"Software": None})
        plt.close(fig)
