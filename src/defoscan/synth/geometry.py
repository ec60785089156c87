"""Line-of-sight geometry: what a radar sees of a 3-D ground motion.

A SAR satellite measures only the component of the ground velocity along its line of sight (LOS). The LOS is set
by two angles:

- the *heading* ``h``: azimuth of the flight direction, degrees clockwise from north (Sentinel-1 ascending passes
  fly a little west of north, about -12 deg; descending passes a little west of south, about -168 deg);
- the *incidence* ``theta``: angle between the vertical and the LOS at the ground, degrees.

A right-looking radar looks at azimuth ``h + 90`` (to the right of its track), so seen from the ground the
satellite lies at azimuth ``h - 90``. The unit vector from the ground to the satellite, in (east, north, up), is::

    right-looking:  (-sin(theta) cos(h),  sin(theta) sin(h),  cos(theta))
    left-looking:   ( sin(theta) cos(h), -sin(theta) sin(h),  cos(theta))

This is the convention of MintPy (``utils0.enu2los`` with ISCE-2's LOS azimuth ``az = 90 - h`` for right-looking)
and of Fialko, Simons & Agnew (2001, GRL 28(16), 3063-3066): ``d_los = (v_n sin h - v_e cos h) sin(theta) + v_u
cos(theta)``. A positive LOS velocity is motion *towards* the satellite: uplift is positive, subsidence negative,
for either pass. Ascending Sentinel-1 looks east, so eastward motion is away from it (negative); descending looks
west, so eastward motion is towards it (positive).
"""

import numpy as np

# Sentinel-1 Interferometric Wide swath (IW1-IW3): incidence 29.1-46.0 deg (ESA Sentinel-1 User Handbook, 2013,
# acquisition modes). The ground-track heading depends on latitude: with the orbit's 98.18 deg inclination and
# the Earth turning under the satellite (ground speed about 6.8 km/s), an ascending track heads -12.0 deg at the
# equator, -15.2 deg at 50 deg latitude and -18.4 deg at 60 deg (spherical Earth, circular orbit), so -19 to -11
# covers the latitudes up to about 60 deg. Descending headings mirror ascending ones: h_desc = -180 - h_asc.
SENTINEL1 = {
    "ascending": {"heading_deg": -12.0, "heading_range_deg": (-19.0, -11.0), "incidence_range_deg": (29.1, 46.0)},
    "descending": {"heading_deg": -168.0, "heading_range_deg": (-169.0, -161.0), "incidence_range_deg": (29.1, 46.0)},
}


def los_unit_vector(incidence_deg, heading_deg, looking="right"):
    """Unit vector from the ground to the satellite, in (east, north, up).

    ``(-sin(theta) cos(h), sin(theta) sin(h), cos(theta))`` for a right-looking radar, the horizontal part
    reversed for a left-looking one (``theta`` incidence, ``h`` heading; see the module docstring).

    Parameters
    ----------
    incidence_deg : float or numpy.ndarray
        Incidence angle from the vertical, degrees.
    heading_deg : float or numpy.ndarray
        Azimuth of the flight direction, degrees clockwise from north. Broadcasts with ``incidence_deg``.
    looking : {"right", "left"}
        Side the radar looks to, seen along its track (Sentinel-1 and most SARs: right).

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        Components of the unit vector, broadcast to a common shape.
    """
    if looking not in ("right", "left"):
        raise ValueError(f"looking must be 'right' or 'left', got {looking!r}")
    theta = np.deg2rad(np.asarray(incidence_deg, dtype=np.float64))
    heading = np.deg2rad(np.asarray(heading_deg, dtype=np.float64))
    side = 1.0 if looking == "right" else -1.0
    east = -side * np.sin(theta) * np.cos(heading)
    north = side * np.sin(theta) * np.sin(heading)
    up = np.broadcast_to(np.cos(theta), east.shape).copy()
    return east, north, up


def project_to_los(east, north, up, incidence_deg, heading_deg, looking="right"):
    """Project a ground velocity onto the line of sight: positive towards the satellite.

    Parameters
    ----------
    east, north, up : float or numpy.ndarray
        Velocity components, mm/yr (any unit: the result has the same).
    incidence_deg : float or numpy.ndarray
        Incidence angle, degrees; an array varies it across the map (near range to far range).
    heading_deg : float or numpy.ndarray
        Flight direction, degrees clockwise from north.
    looking : {"right", "left"}

    Returns
    -------
    numpy.ndarray of float64
        LOS velocity, broadcast over all the inputs.
    """
    ue, un, uu = los_unit_vector(incidence_deg, heading_deg, looking)
    return np.asarray(east) * ue + np.asarray(north) * un + np.asarray(up) * uu


def draw_geometry(rng, orbit=None):
    """Draw a Sentinel-1 viewing geometry: the pass, a heading and an incidence within :data:`SENTINEL1`'s ranges.

    Parameters
    ----------
    rng : numpy.random.Generator
    orbit : {"ascending", "descending"}, optional
        The pass; either with equal chance when not given.

    Returns
    -------
    dict
        ``orbit`` (str), ``heading_deg`` and ``incidence_deg`` (plain floats, uniform within the ranges), and
        ``looking`` ("right").
    """
    if orbit is None:
        orbit = "ascending" if rng.random() < 0.5 else "descending"
    if orbit not in SENTINEL1:
        raise ValueError(f"orbit must be one of {tuple(SENTINEL1)}, got {orbit!r}")
    spec = SENTINEL1[orbit]
    return {
        "orbit": orbit,
        "heading_deg": float(rng.uniform(*spec["heading_range_deg"])),
        "incidence_deg": float(rng.uniform(*spec["incidence_range_deg"])),
        "looking": "right",
    }
