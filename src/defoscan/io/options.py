"""What the user may tell a reader about a file."""

from dataclasses import dataclass, field


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
    """

    columns: dict = field(default_factory=dict)
    crs: str | None = None
    units: str | None = None
    time_series: bool = False
