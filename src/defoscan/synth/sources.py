"""Deformation sources: the 3-D ground velocity of the signals a detector must find.

Each source is a plain function of coordinate arrays ``x, y`` (easting, northing, metres, any shape that
broadcasts, e.g. cell centres from ``numpy.meshgrid``) and its parameters, returning the velocity as a tuple
``(east, north, up)`` of float64 arrays in mm/yr (up positive: subsidence is negative ``up``). Azimuths are
degrees clockwise from north. Project them onto a radar's line of sight with :mod:`defoscan.synth.geometry`.

========== ===================================================== ==================================
kind       source                                                model
========== ===================================================== ==================================
mogi       pressure change in a small deep body (reservoir, gas   Mogi (1958) point source
           store, aquifer)
mining     longwall / room-and-pillar panels                      Knothe-Budryk influence function
dome       groundwater or mine-water rebound                      elliptical Gaussian dome
tunnel     settlement over a bored tunnel                         Peck (1969) trough
landslide  a slow lobe moving down a slope                        sharp head scarp, smooth toe
quarry     a pit or settling backfill                             flat-bottomed, steep-sided basin
compaction consolidation of made ground under built-up areas      smoothed built-up x random field
========== ===================================================== ==================================

Drawing and evaluating are separate: :func:`draw_source` picks the parameters of one source at random within the
ranges documented below (and in ``docs/synth-sources.md``), as a JSON-serialisable dict that serves as the
sample's label; :func:`evaluate_source` makes the field from that dict, so a sample can be re-made from its labels.
Every drawn source has its peak speed (largest ``sqrt(east^2 + north^2 + up^2)``) inside :data:`PEAK_SPEED`.
"""

import numpy as np
from scipy import ndimage, special

KINDS = ("mining", "dome", "mogi", "tunnel", "landslide", "quarry", "compaction")

# Range of the peak speed of a drawn source, mm/yr. Deformation in the built environment is slow: persistent
# scatterers lose coherence (and C-band phase aliases) on faster ground, so 100 mm/yr is the upper end of what a
# velocity map holds.
PEAK_SPEED = {
    "mining": (5.0, 100.0),
    "dome": (2.0, 30.0),
    "mogi": (2.0, 100.0),
    "tunnel": (2.0, 50.0),
    "landslide": (5.0, 100.0),
    "quarry": (10.0, 100.0),
    "compaction": (1.0, 15.0),
}

_M_TO_MM = 1000.0


def _local(x, y, x0, y0, azimuth_deg):
    """Coordinates along an azimuth (``u``) and across it, positive to its right (``v``), from ``(x0, y0)``."""
    a = np.deg2rad(azimuth_deg)
    dx, dy = np.asarray(x, dtype=np.float64) - x0, np.asarray(y, dtype=np.float64) - y0
    return dx * np.sin(a) + dy * np.cos(a), dx * np.cos(a) - dy * np.sin(a)


def _to_east_north(hu, hv, azimuth_deg):
    """Horizontal components along (``hu``) and across (``hv``) an azimuth, back to (east, north)."""
    a = np.deg2rad(azimuth_deg)
    return hu * np.sin(a) + hv * np.cos(a), hu * np.cos(a) - hv * np.sin(a)


def _log_uniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def mogi(x, y, x0, y0, depth, volume_rate, poisson=0.25):
    """Mogi point source in an elastic half-space: a small pressurised body at depth.

    With ``r`` the horizontal distance from the source, ``d`` its depth and ``R^2 = r^2 + d^2`` (Mogi 1958;
    Segall 2010, *Earthquake and Volcano Deformation*, eq. 7.14)::

        u_z = (1 - nu) dV / pi * d / R^3        u_r = (1 - nu) dV / pi * r / R^3

    The uplift peaks above the source at ``(1 - nu) dV / (pi d^2)`` and halves at ``r = 0.766 d``; the radial
    motion peaks at ``r = d / sqrt(2)`` with 0.385 of the peak uplift. Drawn: depth 200-3000 m (log-uniform),
    peak 2-100 mm/yr, deflation (extraction from a reservoir or aquifer) three times in four.

    Parameters
    ----------
    x, y : numpy.ndarray
        Easting, northing, metres.
    x0, y0 : float
        Source position, metres.
    depth : float
        Source depth, metres (> 0).
    volume_rate : float
        Rate of volume change of the source, m^3/yr (negative: deflation, subsidence).
    poisson : float
        Poisson's ratio ``nu`` (0.25: a Poisson solid).

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr.
    """
    dx, dy = np.asarray(x, dtype=np.float64) - x0, np.asarray(y, dtype=np.float64) - y0
    scale = (1.0 - poisson) * volume_rate / np.pi * _M_TO_MM / (dx**2 + dy**2 + depth**2) ** 1.5
    return scale * dx, scale * dy, scale * depth


def _panel_edges(panel_width, n_panels, gap):
    """Across-axis edges ``(v1, v2)`` of ``n_panels`` panels side by side, ``gap`` apart, centred on 0."""
    pitch = panel_width + gap
    centres = (np.arange(n_panels) - (n_panels - 1) / 2.0) * pitch
    return [(c - panel_width / 2.0, c + panel_width / 2.0) for c in centres]


def _strip(t, edges, radius):
    """Knothe influence integrated across strips: the share of the influence of ``t`` over the strips, and its
    derivative with respect to ``t``."""
    k = np.sqrt(np.pi) / radius
    share = np.zeros_like(t)
    slope = np.zeros_like(t)
    for t1, t2 in edges:
        share += 0.5 * (special.erf(k * (t2 - t)) - special.erf(k * (t1 - t)))
        slope += (np.exp(-((k * (t - t1)) ** 2)) - np.exp(-((k * (t - t2)) ** 2))) / radius
    return share, slope


def mining_bowl(
    x,
    y,
    x0,
    y0,
    depth,
    extraction_rate,
    panel_width,
    panel_length,
    n_panels=1,
    gap=0.0,
    azimuth_deg=0.0,
    tan_beta=2.0,
    subsidence_factor=0.7,
):
    """Subsidence trough over extracted panels: the Knothe-Budryk influence-function method.

    Every extracted element ``dA`` lowers the surface by ``S_max f(x, y) dA`` with the Gaussian influence
    function ``f = exp(-pi rho^2 / r^2) / r^2`` (Knothe 1953, 1957), ``rho`` the horizontal distance to the
    element and ``r = depth / tan(beta)`` the radius of influence. Integrated over a rectangular panel of edges
    ``u1..u2`` (along) and ``v1..v2`` (across) this is, with ``k = sqrt(pi) / r``::

        w = S_max / 4 [erf(k (u2 - u)) - erf(k (u1 - u))] [erf(k (v2 - v)) - erf(k (v1 - v))]

    summed over panels. ``S_max = a m`` is the subsidence of a fully wide (supercritical) extraction: the
    subsidence factor ``a`` times the extracted thickness (here as a rate, mm/yr of seam thickness removed, so
    ``S_max`` is in mm/yr). As ``f`` integrates to 1, the trough's volume equals ``S_max`` times the panel area,
    and narrower (subcritical) panels subside less than ``S_max``. The horizontal motion points down the trough's
    slope towards the panels, ``u_h = B grad(w)`` with ``B = r / sqrt(2 pi)`` (Budryk 1953; the peak is 0.4
    ``S_max`` above a panel edge).

    Ranges drawn by :func:`draw_source`: depth 50-600 m (shallow room-and-pillar to deep longwall),
    ``tan(beta)`` 1.5-2.5 (Knothe; Kratzsch 1983, *Mining Subsidence Engineering*), ``a`` 0.5-0.9 (0.9 for
    caved longwall panels in the NCB *Subsidence Engineers' Handbook*, 1975; lower for partial extraction),
    panels 80-300 m wide and 200-1500 m long, 1-4 panels with 20-60 m pillars between them; the extraction rate
    is set so the peak speed is 5-100 mm/yr.

    Parameters
    ----------
    x, y : numpy.ndarray
        Easting, northing, metres.
    x0, y0 : float
        Centre of the group of panels, metres.
    depth : float
        Depth of the seam, metres.
    extraction_rate : float
        Extracted thickness per year, mm/yr.
    panel_width, panel_length : float
        Size of one panel across and along its long axis, metres.
    n_panels : int
        Panels side by side across the long axis.
    gap : float
        Width of the pillar left between adjacent panels, metres.
    azimuth_deg : float
        Azimuth of the panels' long axis.
    tan_beta : float
        Tangent of the angle of major influence.
    subsidence_factor : float
        ``a``: maximum subsidence over extracted thickness.

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr; ``up`` is negative (subsidence).
    """
    radius = depth / tan_beta
    s_max = subsidence_factor * extraction_rate
    u, v = _local(x, y, x0, y0, azimuth_deg)
    along, d_along = _strip(u, [(-panel_length / 2.0, panel_length / 2.0)], radius)
    across, d_across = _strip(v, _panel_edges(panel_width, int(n_panels), gap), radius)
    w = s_max * along * across
    b = radius / np.sqrt(2.0 * np.pi)
    east, north = _to_east_north(b * s_max * d_along * across, b * s_max * along * d_across, azimuth_deg)
    return east, north, -w


def _mining_peak_share(depth, panel_width, panel_length, n_panels, gap, tan_beta):
    """Largest speed of the trough over ``S_max``: on the centre line across the panels (where the motion along
    the panels is nil), vertical and horizontal parts together (between two panels the horizontal adds a little)."""
    radius = depth / tan_beta
    along, _ = _strip(np.zeros(1), [(-panel_length / 2.0, panel_length / 2.0)], radius)
    span = n_panels * panel_width + (n_panels - 1) * gap
    v = np.linspace(-span / 2.0 - radius, span / 2.0 + radius, 4001)
    across, d_across = _strip(v, _panel_edges(panel_width, n_panels, gap), radius)
    b = radius / np.sqrt(2.0 * np.pi)
    return float(along[0] * np.hypot(across, b * d_across).max())


def dome(x, y, x0, y0, amplitude, radius, ratio=1.0, azimuth_deg=0.0, horizontal=0.1):
    """A smooth elliptical dome: uplift from groundwater or mine-water rebound (or subsidence from drawdown).

    ``up = amplitude exp(-q / 2)`` with ``q = (u / radius)^2 + (v / (ratio radius))^2`` in axes along and
    across ``azimuth_deg``. Aquifer swelling is mostly vertical; the small horizontal part points down the
    dome's slope (outward for uplift, like an inflating Mogi source), ``u_h = -horizontal radius grad(up)``.
    For ``horizontal < ratio`` the peak speed stays ``|amplitude|``, at the centre.

    Ranges drawn by :func:`draw_source`: uplift 2-30 mm/yr, radius 300-2500 m (log-uniform; the dome spans
    about 1-10 km), ratio 0.5-1, horizontal 0.05-0.2. Uplift of this size and extent is seen over recovering
    aquifers (Bell et al. 2008, Water Resources Research 44, W02407, Las Vegas) and over coalfields where pumping
    stopped and mine water rises (Gee et al. 2020, Remote Sensing of Environment 249, 112021).

    Parameters
    ----------
    x, y : numpy.ndarray
    x0, y0 : float
        Centre, metres.
    amplitude : float
        Vertical velocity at the centre, mm/yr (positive: uplift).
    radius : float
        Standard deviation of the Gaussian along ``azimuth_deg``, metres.
    ratio : float
        Across-axis over along-axis radius, in (0, 1].
    azimuth_deg : float
        Azimuth of the long axis.
    horizontal : float
        Horizontal motion per unit of ``radius`` times the vertical slope.

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr.
    """
    u, v = _local(x, y, x0, y0, azimuth_deg)
    up = amplitude * np.exp(-0.5 * ((u / radius) ** 2 + (v / (ratio * radius)) ** 2))
    # -horizontal * radius * grad(up), grad(up) = -up * (u / radius^2, v / (ratio radius)^2)
    east, north = _to_east_north(horizontal * up * u / radius, horizontal * up * v / (ratio**2 * radius), azimuth_deg)
    return east, north, up


def tunnel_trough(x, y, x_start, y_start, x_end, y_end, depth, settlement_rate, trough_factor=0.5):
    """Settlement over a bored tunnel: Peck's Gaussian trough along a segment, tapered at its ends.

    Across the axis the settlement is ``S exp(-t^2 / (2 i^2))`` (Peck 1969), ``t`` the offset from the axis and
    ``i = K z0`` the trough width (the inflection point), ``z0`` the depth of the axis, ``K`` about 0.5 in clays
    and 0.25-0.35 in sands and gravels (O'Reilly & New 1982; Mair & Taylor 1997). The trough's volume per metre
    of tunnel is ``sqrt(2 pi) i S`` (the volume loss). Along the axis it rises as the cumulative Gaussian
    ``Phi(s / i)`` from each end (the longitudinal profile of Attewell & Woodman 1982), ``s`` the distance inside
    the segment. The horizontal motion points at the tunnel axis with size ``(d / z0)`` times the settlement,
    ``d`` the distance to the nearest point of the segment (O'Reilly & New 1982: displacement vectors aim at the
    axis); it peaks at ``t = i`` with ``0.61 K S``.

    Ranges drawn by :func:`draw_source`: depth 10-50 m, ``K`` 0.25-0.5, length 300-5000 m (log-uniform),
    settlement 2-50 mm/yr on the axis (volume loss of 0.5-2% spread over the years a velocity map spans, and the
    slow consolidation that follows tunnelling in clay: Wongsaroj, Soga & Mair 2007, Geotechnique 57(1), 75-90).

    Parameters
    ----------
    x, y : numpy.ndarray
    x_start, y_start, x_end, y_end : float
        Ends of the tunnel axis, metres.
    depth : float
        ``z0``, depth of the axis, metres.
    settlement_rate : float
        ``S``, settlement on the axis far from the ends, mm/yr (positive: the ground goes down).
    trough_factor : float
        ``K``.

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    length = float(np.hypot(x_end - x_start, y_end - y_start))
    if length == 0.0:
        raise ValueError("the tunnel's start and end are the same point")
    ax, ay = (x_end - x_start) / length, (y_end - y_start) / length
    dx, dy = x - x_start, y - y_start
    s = dx * ax + dy * ay
    t = -dx * ay + dy * ax
    i = trough_factor * depth
    along = special.ndtr(s / i) * special.ndtr((length - s) / i)
    w = settlement_rate * np.exp(-0.5 * (t / i) ** 2) * along
    nearest = np.clip(s, 0.0, length)
    to_axis_x, to_axis_y = x_start + nearest * ax - x, y_start + nearest * ay - y
    return w * to_axis_x / depth, w * to_axis_y / depth, -w


def landslide(
    x, y, x0, y0, length, width, velocity, azimuth_deg, slope_deg, head_width=None, toe_fraction=0.25, bend=0.1
):
    """A slow landslide: a lobe moving down a slope, with a sharp head scarp and a smooth toe.

    In axes along the downslope azimuth (``s``, from the centre ``(x0, y0)``) and across it (``t``), the speed
    is ``velocity * head(s, t) * toe(s) * side(t)``:

    - ``head``: 0 above the scarp, rising linearly to 1 over ``head_width`` below it (the moving mass breaks
      away from stable ground at the scarp); the scarp lies at ``s = -length/2`` on the axis and curves
      downslope towards the flanks, ``bend * length * (2 t / width)^2`` (an arcuate scarp);
    - ``toe``: 1, then a Gaussian decline over ``toe_fraction * length`` reaching ``exp(-1)`` at ``s = length/2``
      (the toe bulges and spreads, so motion fades gradually);
    - ``side``: ``exp(-(2 |t| / width)^4)``, a flat-topped cross profile.

    The motion is parallel to the slope: unit vector ``(sin(az) cos(slope), cos(az) cos(slope), -sin(slope))``.
    The peak speed is ``velocity``, on the axis between the scarp and the toe.

    Ranges drawn by :func:`draw_source`: length 100-2000 m (log-uniform), width 0.3-1 times the length, speed
    5-100 mm/yr (the "extremely slow" to "very slow" classes of Cruden & Varnes 1996, the slow-moving landslides
    that InSAR tracks: Lacroix, Handwerger & Bievre 2020, Nature Reviews Earth & Environment 1, 404-419), slope
    5-35 deg, head width 1-4% and toe 15-30% of the length, bend 0-0.2.

    Parameters
    ----------
    x, y : numpy.ndarray
    x0, y0 : float
        Centre of the lobe, metres.
    length, width : float
        Head-to-toe length and width, metres.
    velocity : float
        Peak speed along the slope, mm/yr (> 0).
    azimuth_deg : float
        Downslope direction.
    slope_deg : float
        Slope angle (dip of the motion), degrees.
    head_width : float, optional
        Distance over which the speed rises below the scarp, metres; ``length / 50`` when not given.
    toe_fraction : float
        Length of the toe's decline over the length.
    bend : float
        How far the scarp curves downslope at the flanks, over the length.

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr; ``up`` is negative.
    """
    if head_width is None:
        head_width = length / 50.0
    s, t = _local(x, y, x0, y0, azimuth_deg)
    across = 2.0 * t / width
    scarp = -length / 2.0 + bend * length * across**2
    head = np.clip((s - scarp) / head_width, 0.0, 1.0)
    toe_scale = toe_fraction * length
    toe = np.exp(-((np.maximum(s - (length / 2.0 - toe_scale), 0.0) / toe_scale) ** 2))
    speed = velocity * head * toe * np.exp(-(across**4))
    a, dip = np.deg2rad(azimuth_deg), np.deg2rad(slope_deg)
    return speed * np.sin(a) * np.cos(dip), speed * np.cos(a) * np.cos(dip), -speed * np.sin(dip)


def quarry(x, y, x0, y0, rate, radius, ratio=1.0, azimuth_deg=0.0, squareness=2.0, taper=20.0):
    """A quarry pit or excavation: a compact, flat-bottomed, steep-sided subsidence basin.

    The outline is a superellipse ``|u / a|^p + |v / b|^p = 1`` (``a = radius``, ``b = ratio * radius``,
    ``p = squareness``: 2 an ellipse, larger a rounded rectangle, like a worked-out pit or a fill cell). Inside,
    the ground goes down at ``rate``; the sides fall from full to zero over ``taper`` metres across the outline
    (a smoothstep, so the basin is flat inside and still at the rim). Vertical only.

    Ranges drawn by :func:`draw_source`: 100-800 m across (``radius`` 50-400 m, log-uniform), ratio 0.4-1,
    squareness 2-4, taper 10-40 m (at most half the short semi-axis), subsidence 10-100 mm/yr (log-uniform).
    These are design choices for the brief's compact, fast signal (settling backfill or waste, deepening
    excavation) rather than values from one reference: faster, actively worked pits decorrelate and leave no
    points in a velocity map.

    Parameters
    ----------
    x, y : numpy.ndarray
    x0, y0 : float
        Centre, metres.
    rate : float
        Subsidence rate inside the pit, mm/yr (positive: the ground goes down).
    radius : float
        Long semi-axis, metres.
    ratio : float
        Short over long semi-axis, in (0, 1].
    azimuth_deg : float
        Azimuth of the long axis.
    squareness : float
        Superellipse exponent, >= 2.
    taper : float
        Width of the sides, metres, measured across the short axis.

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr.
    """
    u, v = _local(x, y, x0, y0, azimuth_deg)
    b = ratio * radius
    rho = (np.abs(u / radius) ** squareness + np.abs(v / b) ** squareness) ** (1.0 / squareness)
    # (1 - rho) b is the distance inside the outline across the short axis.
    z = np.clip((1.0 - rho) * b / taper + 0.5, 0.0, 1.0)
    up = -rate * z * z * (3.0 - 2.0 * z)
    zero = np.zeros_like(up)
    return zero, zero.copy(), up


def _grid_spacing(x, y):
    """Cell sizes ``(dy, dx)`` of a regular 2-D grid of cell centres."""
    if x.ndim != 2 or x.shape != y.shape or min(x.shape) < 2:
        raise ValueError("compaction needs x and y as 2-D grids of cell centres (from numpy.meshgrid)")
    dx, dy = abs(float(x[0, 1] - x[0, 0])), abs(float(y[1, 0] - y[0, 0]))
    if dx == 0.0 or dy == 0.0:
        raise ValueError("compaction needs x varying along rows and y down columns (numpy.meshgrid's 'xy' order)")
    return dy, dx


def compaction(x, y, built_up, rng, amplitude=5.0, smoothing=200.0, correlation_length=1500.0, active_fraction=0.4):
    """Compaction of made ground: slow subsidence in patches of the built-up area.

    Fill, reclaimed land and soft soil under recent buildings consolidate for years to decades, so towns show
    patchy subsidence of a few mm/yr that follows where there are buildings (e.g. Tosi, Teatini & Strozzi 2013,
    Scientific Reports 3, 2710, Venice). The field is ``-amplitude * g / max(g)`` with
    ``g = smooth(built_up) * m``: ``smooth`` a Gaussian of ``smoothing`` metres (the share of built-up ground
    around a cell) and ``m`` a smooth random field in (0, 1) that turns compaction on in ``active_fraction`` of
    the map (a logistic of a Gaussian random field of ``correlation_length`` metres, thresholded at that
    quantile). Vertical only; the peak subsidence on the grid is ``amplitude`` (zero where nothing is built up).
    Unlike the other sources this one depends on the grid: ``x`` and ``y`` must be 2-D regular cell centres and the
    random field is drawn per grid.

    Ranges drawn by :func:`draw_source`: 1-15 mm/yr (log-uniform), smoothing 100-400 m, correlation length
    500-3000 m, active fraction 0.2-0.6.

    Parameters
    ----------
    x, y : numpy.ndarray
        2-D grids of cell centres (``numpy.meshgrid`` in its default ``xy`` order), metres.
    built_up : numpy.ndarray of bool or float
        Where there are buildings (a map's coverage mask stands in), same shape as ``x``.
    rng : numpy.random.Generator
        Draws the random field.
    amplitude : float
        Peak subsidence, mm/yr (positive).
    smoothing : float
        Standard deviation of the smoothing of ``built_up``, metres.
    correlation_length : float
        Standard deviation of the Gaussian that correlates the random field, metres.
    active_fraction : float
        Share of the map where compaction is switched on, in (0, 1).

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    built_up = np.asarray(built_up, dtype=np.float64)
    if built_up.shape != x.shape:
        raise ValueError(f"built_up has shape {built_up.shape}, the grid {x.shape}")
    dy, dx = _grid_spacing(x, y)
    density = ndimage.gaussian_filter(built_up, (smoothing / dy, smoothing / dx), mode="nearest", truncate=3.0)
    # The random field is filtered in the Fourier domain: its correlation length is many cells, where a spatial
    # filter would be slow. It wraps around the edges, which a random field may.
    noise = np.fft.rfft2(rng.standard_normal(x.shape))
    field = np.fft.irfft2(
        ndimage.fourier_gaussian(noise, (correlation_length / dy, correlation_length / dx), n=x.shape[1]), s=x.shape
    )
    field = (field - field.mean()) / max(field.std(), 1e-12)
    threshold = np.quantile(field, 1.0 - active_fraction)
    active = special.expit((field - threshold) / 0.25)
    g = density * active
    peak = g.max()
    up = -amplitude * g / peak if peak > 0 else np.zeros_like(g)
    zero = np.zeros_like(up)
    return zero, zero.copy(), up


def _check_extent(extent):
    west, east, south, north = (float(v) for v in extent)
    if not (west < east and south < north):
        raise ValueError(f"extent must be (west, east, south, north) with west < east and south < north: {extent}")
    return west, east, south, north


def draw_source(kind, rng, extent):
    """Draw the parameters of one source of a kind, at random within the documented ranges.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    rng : numpy.random.Generator
    extent : (float, float, float, float)
        ``(west, east, south, north)``, metres: the source's centre is drawn uniformly inside.

    Returns
    -------
    params : dict
        Keyword arguments of the source's function (after ``x, y``; for ``compaction`` after ``built_up``, with a
        ``seed`` for its random field), plain Python floats and ints, JSON-serialisable.
    kind : str
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    west, east, south, north = _check_extent(extent)
    x0, y0 = float(rng.uniform(west, east)), float(rng.uniform(south, north))
    if kind == "mogi":
        depth = _log_uniform(rng, 200.0, 3000.0)
        peak = _log_uniform(rng, *PEAK_SPEED["mogi"])
        sign = -1.0 if rng.random() < 0.75 else 1.0
        poisson = 0.25
        volume_rate = sign * peak / _M_TO_MM * np.pi * depth**2 / (1.0 - poisson)
        params = {"x0": x0, "y0": y0, "depth": depth, "volume_rate": float(volume_rate), "poisson": poisson}
    elif kind == "mining":
        while True:  # redraw layouts so narrow and deep that they would need an implausible extraction rate
            geometry = {
                "depth": _log_uniform(rng, 50.0, 600.0),
                "panel_width": float(rng.uniform(80.0, 300.0)),
                "panel_length": float(rng.uniform(200.0, 1500.0)),
                "n_panels": int(rng.integers(1, 5)),
                "tan_beta": float(rng.uniform(1.5, 2.5)),
            }
            geometry["gap"] = float(rng.uniform(20.0, 60.0)) if geometry["n_panels"] > 1 else 0.0
            share = _mining_peak_share(**geometry)
            if share >= 0.3:
                break
        factor = float(rng.uniform(0.5, 0.9))
        peak = _log_uniform(rng, *PEAK_SPEED["mining"])
        params = {
            "x0": x0,
            "y0": y0,
            "extraction_rate": peak / (factor * share),
            **geometry,
            "azimuth_deg": float(rng.uniform(0.0, 180.0)),
            "subsidence_factor": factor,
        }
    elif kind == "dome":
        params = {
            "x0": x0,
            "y0": y0,
            "amplitude": _log_uniform(rng, *PEAK_SPEED["dome"]),
            "radius": _log_uniform(rng, 300.0, 2500.0),
            "ratio": float(rng.uniform(0.5, 1.0)),
            "azimuth_deg": float(rng.uniform(0.0, 180.0)),
            "horizontal": float(rng.uniform(0.05, 0.2)),
        }
    elif kind == "tunnel":
        depth = float(rng.uniform(10.0, 50.0))
        k = float(rng.uniform(0.25, 0.5))
        length = _log_uniform(rng, 300.0, 5000.0)
        a = np.deg2rad(rng.uniform(0.0, 180.0))
        half_e, half_n = 0.5 * length * np.sin(a), 0.5 * length * np.cos(a)
        peak = _log_uniform(rng, *PEAK_SPEED["tunnel"])
        # The end tapers leave Phi(L / 2i)^2 of the settlement at mid-length, where the trough peaks.
        mid_share = float(special.ndtr(length / (2.0 * k * depth)) ** 2)
        params = {
            "x_start": float(x0 - half_e),
            "y_start": float(y0 - half_n),
            "x_end": float(x0 + half_e),
            "y_end": float(y0 + half_n),
            "depth": depth,
            "settlement_rate": peak / mid_share,
            "trough_factor": k,
        }
    elif kind == "landslide":
        length = _log_uniform(rng, 100.0, 2000.0)
        params = {
            "x0": x0,
            "y0": y0,
            "length": length,
            "width": float(length * rng.uniform(0.3, 1.0)),
            "velocity": _log_uniform(rng, *PEAK_SPEED["landslide"]),
            "azimuth_deg": float(rng.uniform(0.0, 360.0)),
            "slope_deg": float(rng.uniform(5.0, 35.0)),
            "head_width": float(length * rng.uniform(0.01, 0.04)),
            "toe_fraction": float(rng.uniform(0.15, 0.3)),
            "bend": float(rng.uniform(0.0, 0.2)),
        }
    elif kind == "quarry":
        radius = _log_uniform(rng, 50.0, 400.0)
        ratio = float(rng.uniform(0.4, 1.0))
        params = {
            "x0": x0,
            "y0": y0,
            "rate": _log_uniform(rng, *PEAK_SPEED["quarry"]),
            "radius": radius,
            "ratio": ratio,
            "azimuth_deg": float(rng.uniform(0.0, 180.0)),
            "squareness": float(rng.uniform(2.0, 4.0)),
            "taper": float(min(rng.uniform(10.0, 40.0), 0.5 * ratio * radius)),
        }
    else:  # compaction
        params = {
            "amplitude": _log_uniform(rng, *PEAK_SPEED["compaction"]),
            "smoothing": float(rng.uniform(100.0, 400.0)),
            "correlation_length": float(rng.uniform(500.0, 3000.0)),
            "active_fraction": float(rng.uniform(0.2, 0.6)),
            "seed": int(rng.integers(2**31)),
        }
    return params, kind


_FUNCTIONS = {
    "mogi": mogi,
    "mining": mining_bowl,
    "dome": dome,
    "tunnel": tunnel_trough,
    "landslide": landslide,
    "quarry": quarry,
}


def evaluate_source(kind, params, x, y, built_up=None, rng=None):
    """The velocity field of a source from its parameters (as :func:`draw_source` gives them).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    params : dict
    x, y : numpy.ndarray
        Easting, northing, metres (2-D cell centres for ``compaction``).
    built_up : numpy.ndarray, optional
        For ``compaction`` only: where there are buildings, shape of ``x``.
    rng : numpy.random.Generator, optional
        For ``compaction`` only, when ``params`` has no ``seed``.

    Returns
    -------
    east, north, up : numpy.ndarray of float64
        mm/yr.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind != "compaction":
        return _FUNCTIONS[kind](x, y, **params)
    if built_up is None:
        raise ValueError("compaction needs the built_up array")
    params = dict(params)
    seed = params.pop("seed", None)
    if seed is not None:
        rng = np.random.default_rng(seed)
    elif rng is None:
        raise ValueError("compaction needs a 'seed' in its params or an rng")
    return compaction(x, y, built_up, rng, **params)
