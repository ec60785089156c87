"""What a detection run gives back: the run record, the detections, and the maps, written only when asked.

:class:`DetectionResult` is the run record of ``run.json`` (a ``dict``: ``result["tracks"]``, ``result["grid"]``,
...) with ``result["detections"]``, and for Jupyter users the same as attributes: :attr:`~DetectionResult.detections`
(a GeoDataFrame in the working CRS), :attr:`~DetectionResult.velocity`, :attr:`~DetectionResult.filled`,
:attr:`~DetectionResult.probability`, :attr:`~DetectionResult.count` (``xarray.DataArray`` with a ``track``
dimension and the CRS attached by rioxarray), and :meth:`~DetectionResult.write`, which writes the files the
command line writes.
"""

import os
import time

import numpy as np
import rioxarray
import xarray as xr
import zarr

from defoscan import __version__
from defoscan.outputs import staged_directory, write_geojson, write_geopackage, write_json
from defoscan.store import store_like

LAYERS = {  # array in the store -> (output file, band name, units)
    "velocity": ("velocity.tif", "velocity", "mm/yr"),
    "count": ("count.tif", "count", "points"),
    "velocity_filled": ("velocity_filled.tif", "velocity_filled", "mm/yr"),
    "probability": ("probability.tif", "probability", "probability"),
}


class DetectionResult(dict):
    """The run record with the detections (``"detections"``), and the maps of the run.

    Parameters
    ----------
    record : dict
        The run record (``run.json``).
    detections : geopandas.GeoDataFrame
    stores : list of (str, store)
        Track name and its Zarr store (a path or an in-memory store).
    grid : defoscan.gridspec.GridSpec
    """

    def __init__(self, record, detections, stores, grid):
        super().__init__(record)
        self["detections"] = detections  # in place of the record's summary of them, as the result has always read
        self._record = dict(record)
        self._stores = list(stores)
        self.grid = grid

    @property
    def record(self):
        """The run record, as ``run.json`` holds it."""
        return self._record

    @property
    def detections(self):
        """The detections: a GeoDataFrame in the working CRS, one row per region (the columns of the contract)."""
        return self["detections"]

    @property
    def tracks(self):
        """Track names, in band order."""
        return [name for name, _ in self._stores]

    def kept_in(self, out_dir):
        """The stores are gone (a chunked run's work directory): the maps are read from the files in ``out_dir``."""
        self._written = os.fspath(out_dir)
        self._stores = [(name, None) for name, _ in self._stores]

    def _layer(self, name):
        if getattr(self, "_written", None) is not None:  # lazily, window by window (dask), from the COG written
            path = os.path.join(self._written, LAYERS[name][0])
            array = rioxarray.open_rasterio(path, chunks=True, masked=name != "count").rename(band="track")
            return array.assign_coords(track=self.tracks).rename(name)
        groups = [zarr.open_group(store_like(store), mode="r") for _, store in self._stores]
        values = np.stack([group[name][...] for group in groups])
        coords = {"track": self.tracks, **self.grid.coords()}
        array = xr.DataArray(values, dims=("track", "y", "x"), coords=coords, name=name)
        array.attrs["units"] = LAYERS[name][2]
        return array.rio.write_crs(self.grid.crs.to_wkt()).rio.write_transform(self.grid.transform)

    @property
    def velocity(self):
        """Gridded velocity (mm/yr, NaN = no data), ``(track, y, x)``."""
        return self._layer("velocity")

    @property
    def count(self):
        """Points (or source pixels) per cell, ``(track, y, x)``."""
        return self._layer("count")

    @property
    def filled(self):
        """Gap-filled velocity (mm/yr), ``(track, y, x)``."""
        return self._layer("velocity_filled")

    @property
    def probability(self):
        """Probability of deformation per cell (a baseline's: 1 in its regions, 0 elsewhere with data)."""
        return self._layer("probability")

    def write(self, out_dir, *, started=None):
        """Write every output of the contract into ``out_dir``, staged and moved in whole.

        Parameters
        ----------
        out_dir : str or os.PathLike
        started : float, optional
            ``time.perf_counter()`` at the run's start: the record's ``total_s`` then counts the writing.
        """
        mark = time.perf_counter()
        with staged_directory(out_dir) as staging:
            write_outputs(staging, self)
            timings = dict(self._record.get("timings", {}))
            timings["write_s"] = round(time.perf_counter() - mark, 3)
            if started is not None:
                timings["total_s"] = round(time.perf_counter() - started, 3)
            self["timings"] = self._record["timings"] = timings
            write_json(os.path.join(staging, "run.json"), self.record)
            from defoscan.report import write_report_from_run

            write_report_from_run(staging)  # from the files just written, as `defoscan report` rebuilds it


def write_outputs(directory, result):
    """The rasters, detections, styles and overview of a result, written from its stores window by window."""
    from defoscan.figures import write_overview
    from defoscan.store_outputs import write_cog_from_arrays
    from defoscan.styles import detections_qml, write_styles

    groups = [(name, zarr.open_group(store_like(store), mode="r")) for name, store in result._stores]
    grid = result.grid
    parameters = result.get("parameters", {})
    software = f"defoscan {__version__}"
    extra = {
        "velocity_filled": {"fill_method": str(parameters.get("fill_method"))},
        "probability": {"detector": str(parameters.get("detector"))},
    }
    if parameters.get("probability_threshold") is not None:
        extra["probability"]["probability_threshold"] = str(parameters["probability_threshold"])
    else:
        detector = parameters.get("detector")
        extra["probability"]["note"] = (
            f"{detector} detector: not a probability; 1 in detected regions, 0 elsewhere with data"
        )
    for layer, (filename, band, units) in LAYERS.items():
        write_cog_from_arrays(
            os.path.join(directory, filename),
            [(f"{band} {name}", group[layer]) for name, group in groups],
            grid.transform,
            grid.crs,
            tags={"units": units, **extra.get(layer, {}), "software": software},
            units=units,
            **({"nodata": 0} if layer == "count" else {}),
        )
    frame = result.detections
    write_geojson(os.path.join(directory, "detections.geojson"), frame)
    write_geopackage(os.path.join(directory, "detections.gpkg"), frame, style=detections_qml())
    write_styles(directory, [g["velocity"] for _, g in groups], [g["count"] for _, g in groups])
    write_overview(
        os.path.join(directory, "overview.png"),
        [(name, g["velocity"]) for name, g in groups],
        frame,
        grid.transform,
        grid.crs,
    )
