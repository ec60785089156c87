"""Detected regions as polygons with the attributes of the output contract."""

import geopandas as gpd

DETECTION_COLUMNS = (
    "id",
    "score",
    "area_km2",
    "n_points",
    "mean_velocity",
    "peak_velocity",
    "mean_relative",
    "peak_relative",
    "background_velocity",
    "sign",
    "kind",
    "track",
    "detector",
)
VELOCITY_COLUMNS = ("mean_velocity", "peak_velocity", "mean_relative", "peak_relative", "background_velocity")


def detections_frame(records, crs):
    """A GeoDataFrame of detections in the working CRS, numbered by decreasing score.

    Parameters
    ----------
    records : list of dict
        Each with ``geometry`` (shapely, working CRS) and the attributes ``score``, ``n_points``,
        ``mean_velocity``, ``peak_velocity``, ``mean_relative``, ``peak_relative``, ``background_velocity``
        (:mod:`defoscan.region_attributes`), ``sign``, ``kind``, ``track``, ``detector``.
    crs : pyproj.CRS

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``DETECTION_COLUMNS`` and ``geometry``; ``area_km2`` is the polygon area in the working CRS.
    """
    ordered = sorted(records, key=lambda r: (-r["score"], r["geometry"].bounds))
    rows = []
    for number, record in enumerate(ordered, start=1):
        row = {column: record.get(column) for column in DETECTION_COLUMNS}
        row.update(id=number, area_km2=record["geometry"].area / 1e6, geometry=record["geometry"])
        rows.append(row)
    frame = gpd.GeoDataFrame(rows, columns=[*DETECTION_COLUMNS, "geometry"], geometry="geometry", crs=crs)
    frame = frame.astype(
        {
            "id": "int64",
            "score": "float64",
            "area_km2": "float64",
            "n_points": "int64",
            **dict.fromkeys(VELOCITY_COLUMNS, "float64"),
        }
    )
    # Round to what the data support: outputs read cleanly and compare exactly across platforms.
    return frame.round({"score": 4, "area_km2": 6, **dict.fromkeys(VELOCITY_COLUMNS, 2)})
