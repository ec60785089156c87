"""Over-wrapping: velocity maps turned into fringe images that a CNN can read (Anantrasirichai et al. 2019, 2021).

An interferogram's phase wraps every half wavelength of line-of-sight motion (Sentinel-1 C band: 27.7 mm), so a
velocity of a few mm/yr shows no fringe over a year. *Over-wrapping* wraps the velocity map at a smaller interval
so that slow signals show fringes; the *enhanced* version stacks several intervals, one per channel, so that every
speed from 2 to 100 mm/yr shows one to a few fringes in at least one channel.

- :func:`wrap_phase`: velocity to wrapped phase at one interval, in ``[-pi, pi)``.
- :func:`fringe_channels`: one or more intervals as channels, ``(cos, sin)`` pairs or the scaled phase, with an
  optional validity channel.
- :func:`fringe_counts` and :func:`enhanced_intervals`: the rule behind the default intervals
  (:data:`ENHANCED_INTERVALS`).
- :func:`velocity_channels`: the unwrapped alternative, velocity squashed into about ``[-1, 1]``.
- :func:`make_input`: the CNN input for each mode the ablation compares (``enhanced``, ``single``, ``raw``).

Intervals are in mm/yr: wrapping the displacement over ``T`` years at a length ``L`` mm is wrapping the velocity at
``L / T`` mm/yr (:func:`interval_for_period`). Inputs are numpy arrays or xarray DataArrays of mm/yr, NaN = no
data; channel stacks are numpy float32 arrays ``(channels, rows, columns)``. See ``docs/WRAP.md``.
"""

import numpy as np

# Sentinel-1 radar frequency 5.405 GHz: wavelength 55.47 mm, and the phase wraps every half wavelength of LOS motion.
SENTINEL1_HALF_WAVELENGTH_MM = 299_792_458.0 / 5.405e9 * 1e3 / 2.0

# Fringes a signal should show in at least one channel: one full fringe is the smallest ring a window shows as a
# pattern; beyond about five, fringes of small bowls come closer than two cells and alias (docs/WRAP.md).
FRINGE_BAND = (1.0, 5.0)

# Speeds the enhanced channels are made for, mm/yr: from about the noise of a well-sampled cell to fast mining.
VELOCITY_RANGE = (2.0, 100.0)

MODES = ("enhanced", "single", "raw")


def interval_for_period(length_mm, years=1.0):
    """The velocity interval, mm/yr, that wraps the displacement over ``years`` every ``length_mm``.

    Parameters
    ----------
    length_mm : float
        Wrapping length of the displacement, mm (a radar's half wavelength, or any smaller over-wrapping length).
    years : float
        Period the displacement accumulates over.

    Returns
    -------
    float
    """
    return float(length_mm) / float(years)


def wrap_phase(velocity, interval):
    """Wrapped phase of a velocity map at one interval: ``angle(exp(2 pi i v / interval))`` in ``[-pi, pi)``.

    Parameters
    ----------
    velocity : numpy.ndarray or xarray.DataArray
        mm/yr, NaN = no data (kept as NaN).
    interval : float
        Velocity per fringe (per ``2 pi`` of phase), mm/yr.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Same type and shape as ``velocity``, radians.
    """
    if not interval > 0:
        raise ValueError(f"interval must be positive, got {interval}")
    # The modulo form keeps xarray objects (and their coordinates) as they are, and puts -pi, not +pi, at the wrap.
    return (2.0 * np.pi * velocity / interval + np.pi) % (2.0 * np.pi) - np.pi


def _as_array(velocity):
    values = np.asarray(getattr(velocity, "values", velocity), dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"velocity must be a 2-D map, got shape {values.shape}")
    return values


def _finish(channels, valid, with_validity):
    """Stack channels as float32; NaN to 0 plus a 0/1 validity channel, or NaN where no data."""
    stack = np.stack(channels).astype(np.float32)
    if with_validity:
        stack[:, ~valid] = 0.0
        stack = np.concatenate([stack, valid[None].astype(np.float32)])
    else:
        stack[:, ~valid] = np.nan
    return stack


def fringe_channels(velocity, intervals, *, representation="cos_sin", with_validity=False):
    """Fringe images of a velocity map at several intervals, one (or two) channels per interval.

    Parameters
    ----------
    velocity : numpy.ndarray or xarray.DataArray
        ``(rows, columns)``, mm/yr, NaN = no data.
    intervals : sequence of float
        mm/yr per fringe.
    representation : {"cos_sin", "phase"}
        ``cos_sin``: ``cos(phase), sin(phase)`` per interval, continuous across the wrap (a fringe boundary is not
        an edge). ``phase``: the wrapped phase divided by ``pi``, in ``[-1, 1)``, one channel per interval, with a
        jump from about 1 to -1 at every fringe boundary.
    with_validity : bool
        When true, no-data cells are set to 0 in every channel and a last channel holds 1 where there are data and
        0 elsewhere; when false, no-data cells are NaN.

    Returns
    -------
    numpy.ndarray of float32
        ``(channels, rows, columns)``: ``2 * len(intervals)`` (``cos_sin``) or ``len(intervals)`` (``phase``)
        channels in interval order (for ``cos_sin``: cos, sin of the first interval, then the next), plus one
        validity channel when asked for.
    """
    values = _as_array(velocity)
    intervals = [float(i) for i in np.atleast_1d(intervals)]
    if not intervals:
        raise ValueError("at least one interval is needed")
    valid = np.isfinite(values)
    channels = []
    for interval in intervals:
        phase = wrap_phase(values, interval)
        if representation == "cos_sin":
            channels += [np.cos(phase), np.sin(phase)]
        elif representation == "phase":
            scaled = (phase / np.pi).astype(np.float32)
            # float32 rounds phases just below pi up to exactly 1: the same phase as -1, where [-1, 1) puts it.
            scaled[scaled == 1.0] = -1.0
            channels.append(scaled)
        else:
            raise ValueError(f"representation must be 'cos_sin' or 'phase', got {representation!r}")
    return _finish(channels, valid, with_validity)


def fringe_counts(peak_velocity, intervals):
    """Fringes a signal of peak speed ``peak_velocity`` shows at each interval: ``|v| / interval``.

    A bowl whose speed falls from its peak to about zero inside a window crosses ``|v| / interval`` fringes from
    its centre to its rim (the phase runs through ``2 pi |v| / interval``).

    Parameters
    ----------
    peak_velocity : float or numpy.ndarray
        mm/yr.
    intervals : sequence of float
        mm/yr per fringe.

    Returns
    -------
    numpy.ndarray
        Shape ``np.shape(peak_velocity) + (len(intervals),)``.
    """
    v = np.abs(np.asarray(peak_velocity, dtype=np.float64))
    return v[..., None] / np.asarray(intervals, dtype=np.float64)


def enhanced_intervals(velocity_range=VELOCITY_RANGE, fringe_band=FRINGE_BAND):
    """Geometrically spaced intervals such that every speed in ``velocity_range`` shows a number of fringes in
    ``fringe_band`` at one interval at least.

    The rule: the smallest interval is ``v_min / f_min`` (the slowest signal shows ``f_min`` fringes), the largest
    ``v_max / f_max`` (the fastest shows ``f_max``); consecutive intervals differ by at most ``f_max / f_min``, so
    the bands ``[f_min, f_max] * interval`` of consecutive intervals overlap or touch and cover the range. The
    fewest intervals that do it, spaced evenly on a log scale.

    Parameters
    ----------
    velocity_range : (float, float)
        Slowest and fastest peak speed, mm/yr.
    fringe_band : (float, float)
        Fewest and most fringes wanted, ``0 < f_min < f_max``.

    Returns
    -------
    numpy.ndarray of float64
        Increasing intervals, mm/yr.
    """
    v_min, v_max = (float(v) for v in velocity_range)
    f_min, f_max = (float(f) for f in fringe_band)
    if not (0 < v_min <= v_max and 0 < f_min < f_max):
        raise ValueError(f"need 0 < v_min <= v_max and 0 < f_min < f_max, got {velocity_range}, {fringe_band}")
    first, last = v_min / f_min, max(v_max / f_max, v_min / f_min)
    steps = int(np.ceil(np.log(last / first) / np.log(f_max / f_min) - 1e-12))
    return np.geomspace(first, last, steps + 1)


# 2, 6.3 and 20 mm/yr (ratio sqrt(10)): speeds 2-10, 6.3-32 and 20-100 mm/yr show one to five fringes.
ENHANCED_INTERVALS = tuple(float(i) for i in enhanced_intervals())


def velocity_channels(velocity, *, scale=20.0, squash="tanh", with_validity=False):
    """The unwrapped option: velocity scaled into about ``[-1, 1]``, one channel.

    Parameters
    ----------
    velocity : numpy.ndarray or xarray.DataArray
        ``(rows, columns)``, mm/yr, NaN = no data.
    scale : float
        mm/yr. ``tanh``: ``tanh(v / scale)``, linear for slow speeds (slope ``1 / scale``) and saturating without
        making all fast signals equal (with 20: 2 mm/yr -> 0.10, 20 -> 0.76, 100 -> 0.9999). ``clip``:
        ``v / scale`` clipped to ``[-1, 1]``.
    squash : {"tanh", "clip"}
    with_validity : bool
        As in :func:`fringe_channels`.

    Returns
    -------
    numpy.ndarray of float32
        ``(1, rows, columns)``, or ``(2, rows, columns)`` with the validity channel.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    values = _as_array(velocity)
    if squash == "tanh":
        scaled = np.tanh(values / scale)
    elif squash == "clip":
        scaled = np.clip(values / scale, -1.0, 1.0)
    else:
        raise ValueError(f"squash must be 'tanh' or 'clip', got {squash!r}")
    return _finish([scaled], np.isfinite(values), with_validity)


def make_input(velocity, *, mode="enhanced", intervals=None, representation="cos_sin", scale=20.0, with_validity=True):
    """The CNN input for a velocity map, in one of the modes the ablation compares.

    Parameters
    ----------
    velocity : numpy.ndarray or xarray.DataArray
        ``(rows, columns)``, mm/yr, NaN = no data.
    mode : {"enhanced", "single", "raw"}
        ``enhanced``: fringes at several intervals (default :data:`ENHANCED_INTERVALS`). ``single``: fringes at one
        interval (default the Sentinel-1 half wavelength over one year, 27.7 mm/yr: what the radar's own wrapping
        shows). ``raw``: the unwrapped velocity, :func:`velocity_channels`.
    intervals : sequence of float, optional
        mm/yr per fringe; one only for ``single``; not used by ``raw``.
    representation : {"cos_sin", "phase"}
        For the fringe modes, see :func:`fringe_channels`.
    scale : float
        For ``raw``, see :func:`velocity_channels`.
    with_validity : bool
        Append a 0/1 validity channel and set no-data cells to 0 (else NaN there).

    Returns
    -------
    numpy.ndarray of float32
        ``(channels, rows, columns)``; :func:`channel_names` names the channels.
    """
    if mode == "raw":
        return velocity_channels(velocity, scale=scale, with_validity=with_validity)
    intervals = _mode_intervals(mode, intervals)
    return fringe_channels(velocity, intervals, representation=representation, with_validity=with_validity)


def _mode_intervals(mode, intervals):
    if mode == "enhanced":
        return ENHANCED_INTERVALS if intervals is None else tuple(np.atleast_1d(intervals))
    if mode == "single":
        intervals = (SENTINEL1_HALF_WAVELENGTH_MM,) if intervals is None else tuple(np.atleast_1d(intervals))
        if len(intervals) != 1:
            raise ValueError(f"mode 'single' takes one interval, got {len(intervals)}")
        return intervals
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def channel_names(*, mode="enhanced", intervals=None, representation="cos_sin", with_validity=True):
    """Names of the channels :func:`make_input` returns with the same arguments, e.g. ``"cos@2.0"``.

    Returns
    -------
    list of str
    """
    if mode == "raw":
        names = ["velocity"]
    else:
        names = []
        for interval in _mode_intervals(mode, intervals):
            label = f"{float(interval):.3g}"
            names += [f"cos@{label}", f"sin@{label}"] if representation == "cos_sin" else [f"phase@{label}"]
    return names + ["valid"] if with_validity else names
