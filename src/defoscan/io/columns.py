"""Recognising the columns of a points table by their common names."""

import re

import numpy as np

# Lower-case names, most specific first. Units are declared per column where the name says them.
ROLE_NAMES = {
    "lon": ("longitude", "lon", "long", "lng", "pnt_lon", "lon_deg", "longitude_deg"),
    "lat": ("latitude", "lat", "pnt_lat", "lat_deg", "latitude_deg"),
    "x": ("easting", "east", "x", "e", "x_coord", "xcoord", "pnt_x"),
    "y": ("northing", "north", "y", "n", "y_coord", "ycoord", "pnt_y"),
    "velocity": (
        "mean_velocity",
        "velocity",
        "vel",
        "velocity_mm_yr",
        "vel_mm_yr",
        "velocity_mmyr",
        "v",
        "vlos",
        "v_los",
        "los_velocity",
        "velocity_los",
        "vel_los",
        "mean_vel",
        "linear_rate",
        "rate",
        "pnt_linear",
        "linear",
        "velocity_m_yr",
        "vel_m_yr",
        "vel_cm_yr",
        "velocity_cm_yr",
    ),
    "velocity_std": (
        "mean_velocity_std",
        "velocity_std",
        "vel_std",
        "std_velocity",
        "velocity_sigma",
        "sigma_velocity",
        "std",
        "pnt_linear_std",
    ),
    "coherence": ("temporal_coherence", "coherence", "coh", "pnt_enscoh", "ens_coh", "temp_coh"),
    "height": ("height_ortho", "height", "pnt_height", "elevation", "elev", "h", "height_ellipse"),
}

# Units implied by a column name (a DePSI pnt_linear is in m/yr; a *_m_yr column says so itself).
UNITS_BY_NAME = {
    "pnt_linear": "m/yr",
    "velocity_m_yr": "m/yr",
    "vel_m_yr": "m/yr",
    "vel_cm_yr": "cm/yr",
    "velocity_cm_yr": "cm/yr",
    "velocity_mm_yr": "mm/yr",
    "vel_mm_yr": "mm/yr",
    "velocity_mmyr": "mm/yr",
}

_DATE_COLUMN = re.compile(r"^(?:d_)?(\d{4})-?(\d{2})-?(\d{2})$")


def find_column(names, role, given=None):
    """Return the column of ``names`` that plays ``role``, or ``None``.

    Parameters
    ----------
    names : sequence of str
        Column names as the file has them.
    role : str
        One of the keys of ``ROLE_NAMES``.
    given : str, optional
        A name the user passed: used as it is (matched ignoring case).
    """
    by_lower = {name.strip().lower(): name for name in names}
    if given is not None:
        return by_lower.get(given.strip().lower())
    for candidate in ROLE_NAMES[role]:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def date_columns(names):
    """Columns whose names are dates (``20200103``, ``d_20160327``, ``2020-01-03``) and their dates.

    Returns
    -------
    columns : list of str
    dates : numpy.ndarray of datetime64[D]
    """
    columns, dates = [], []
    for name in names:
        match = _DATE_COLUMN.match(name.strip().lower())
        if match:
            year, month, day = match.groups()
            try:
                dates.append(np.datetime64(f"{year}-{month}-{day}", "D"))
            except ValueError:
                continue
            columns.append(name)
    return columns, np.array(dates, dtype="datetime64[D]")
