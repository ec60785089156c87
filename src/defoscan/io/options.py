"""What the user may tell a reader about a file."""

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ReadOptions:
    """Reader options, all optional.

    Parameters
    ----------
    columns : dict
        Column names by role (``lon``, ``lat``, ``x``, ``y``, ``velocity``, ``velocity_std``, ``coherence``,
        ``height``) overriding recognition by common names.
    crs : str or None
        CRS of easting/northing columns or of a raster without one (``EPSG:27700``, ...).
    units : str or None
        Velocity unit overriding what the file declares (``mm/yr``, ``cm/yr``, ``m/yr``).
    time_series : bool
        Keep per-date displacement columns (memory grows with points x dates).
    delimiter : str or None
        Field delimiter of a text table (``,``, ``;``, tab, ...); detected from the file when not given.
    decimal : str or None
        Decimal mark of a text table (``.`` or ``,``); detected from the file when not given.
    min_coherence : float or None
        Points (or raster cells) whose temporal coherence is below this are dropped: a table's coherence column
        (EGMS ``temporal_coherence``), MintPy's ``temporalCoherence.h5`` beside a ``velocity.h5``.
    bbox : tuple of float or None
        Area of interest ``(west, east, south, north)``; points and cells outside it are dropped.
    bbox_crs : str
        CRS of ``bbox``: longitude/latitude (``EPSG:4326``) by default, or the working CRS's code.
    nodata : float or None
        A velocity value (in the file's own unit, as written) that marks no data, besides what the file declares
        (a GeoTIFF's nodata tag, MintPy's 0). When given, defoscan does not guess fill values
        (:data:`defoscan.io.filters.FILL_VALUES`).
    layer : str or None
        The layer of a vector file holding several (GeoPackage); by default its only layer of points.
    """

    columns: dict = field(default_factory=dict)
    crs: str | None = None
    units: str | None = None
    time_series: bool = False
    delimiter: str | None = None
    decimal: str | None = None
    min_coherence: float | None = None
    bbox: tuple | None = None
    bbox_crs: str = "EPSG:4326"
    nodata: float | None = None
    layer: str | None = None

    def as_dict(self):
        """Plain dict, for run.json."""
        record = asdict(self)
        record["bbox"] = None if self.bbox is None else [float(v) for v in self.bbox]
        record["nodata"] = float(self.nodata) if self.nodata is not None and math.isfinite(self.nodata) else None
        return record
