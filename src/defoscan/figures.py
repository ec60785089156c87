"""Figures: the overview map of gridded velocity with detections outlined and numbered."""

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from defoscan.outputs import atomic_path  # noqa: E402

VELOCITY_CMAP = "RdBu"  # diverging, centred on zero: red = away from the satellite (subsidence), blue = towards


def symmetric_limit(values, percentile=98.0, floor=1.0):
    """Colour limit centred on zero: a high percentile of ``|values|`` (at least ``floor`` mm/yr)."""
    finite = np.abs(values[np.isfinite(values)])
    return max(floor, float(np.percentile(finite, percentile))) if finite.size else floor


def write_overview(path, grids, frame, dpi=150):
    """Write ``overview.png``: one panel per track, velocity in mm/yr, detections outlined with their number.

    Parameters
    ----------
    path : str
    grids : sequence of xarray.Dataset
        Gridded velocity per track, all on one grid.
    frame : geopandas.GeoDataFrame
        Detections in the grids' CRS, with ``id`` and ``track``.
    dpi : int
    """
    n = len(grids)
    fig, axes = plt.subplots(1, n, figsize=(6.0 * n, 5.6), squeeze=False, constrained_layout=True)
    limit = max(symmetric_limit(g["velocity"].values) for g in grids)
    for ax, grid in zip(axes[0], grids, strict=True):
        transform = grid.rio.transform(recalc=True)
        height, width = grid["velocity"].shape
        extent = (
            np.array([transform.c, transform.c + width * transform.a, transform.f + height * transform.e, transform.f])
            / 1000.0
        )
        image = ax.imshow(
            grid["velocity"].values, cmap=VELOCITY_CMAP, vmin=-limit, vmax=limit, extent=extent, interpolation="nearest"
        )
        track = grid.attrs.get("track") or "all"
        ax.set_facecolor("0.85")  # no data shows grey, distinct from zero velocity (white)
        for _, row in frame[frame["track"] == track].iterrows():
            polygons = getattr(row.geometry, "geoms", [row.geometry])
            for polygon in polygons:
                xs, ys = polygon.exterior.xy
                ax.plot(np.asarray(xs) / 1000.0, np.asarray(ys) / 1000.0, color="black", linewidth=0.9)
            point = row.geometry.representative_point()
            ax.annotate(
                str(row["id"]),
                (point.x / 1000.0, point.y / 1000.0),
                fontsize=8,
                fontweight="bold",
                ha="center",
                va="center",
                color="black",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
            )
        ax.set_title(f"Track {track}: {int((frame['track'] == track).sum())} detections")
        ax.set_xlabel(f"easting (km, {grid.rio.crs.to_string()})")
        ax.set_ylabel("northing (km)")
        ax.set_aspect("equal")
        fig.colorbar(image, ax=ax, shrink=0.85, label="LOS velocity (mm/yr), negative = away from satellite")
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format="png", metadata={"Software": None})
    plt.close(fig)
