"""Noise in a velocity map: residual atmosphere, white noise, ramps and spikes, drawn from one stated model.

The model of what a velocity map holds away from deformation (residual atmosphere, unmodelled noise) is a
zero-mean stationary Gaussian random field with the *stable* (powered-exponential) covariance

    C(h) = sigma^2 exp(-(h / L)^alpha),    0 < alpha <= 2

(a valid covariance in the plane for every alpha in that interval), plus an independent white part of standard
deviation ``tau`` (the nugget). Its semivariogram is

    gamma(h) = tau^2 + sigma^2 (1 - exp(-(h / L)^alpha))    for h > 0,  gamma(0) = 0:

- the sill is ``sigma^2 + tau^2``; ``sigma`` in mm/yr;
- ``L`` is the correlation length, metres (``C(L) = sigma^2 / e``); the practical range, where ``gamma`` reaches
  95 % of the correlated sill, is ``L * 3^(1/alpha)``;
- at short lags ``gamma(h) - tau^2 ~ sigma^2 (h / L)^alpha``: ``alpha`` is the power-law slope of the structure
  function. A power-law (Kolmogorov-like) atmosphere with spectrum ``k^-beta`` has ``alpha = beta - 2``: the
  turbulent troposphere, ``beta = 8/3``, gives ``alpha = 2/3`` (Hanssen 2001, *Radar Interferometry*, ch. 4;
  Lohman & Simons 2005, G-cubed 6, Q01007). ``alpha = 1`` is the exponential covariance, ``alpha = 2`` the
  Gaussian one (very smooth fields).

:func:`correlated_field` draws the correlated part, :func:`white_noise` the nugget (or per-cell noise from the
point count, :func:`cell_sigma`); ``defoscan.synth.variogram`` estimates and fits the same model
(:func:`stable_variogram`) on a real map, so that generation and fitting cannot drift apart. Besides the
stationary noise, a map holds :func:`planar_ramp` (orbit and reference errors) and :func:`spikes` (unwrapping
errors, bad scatterers). :data:`atmosphere_ranges` and :func:`draw_noise_parameters` give the ranges the
atmosphere's parameters are drawn from when no fitted profile is at hand.

Randomness only through an explicit ``numpy.random.Generator``; the same generator state gives the same arrays.
Velocities in mm/yr, lengths in metres, grids north-up (row 0 is the north edge).
"""

import numpy as np
from scipy import fft

# Ranges of the atmosphere's parameters when nothing is fitted (see draw_noise_parameters). Multi-year Sentinel-1
# velocity maps keep a few mm/yr of residual atmosphere and unmodelled motion (sigma 1-8 mm/yr, the upper end for
# short stacks or wet climates), correlated over 1-30 km (turbulence: a few km; stratified and long-wavelength
# residuals: tens of km), with structure-function slopes from rough (0.5) to smooth (1.9); 2/3 is Kolmogorov.
atmosphere_ranges = {
    "sigma": (1.0, 8.0),  # mm/yr, drawn log-uniformly
    "length": (1_000.0, 30_000.0),  # m, drawn log-uniformly
    "alpha": (0.5, 1.9),  # drawn uniformly
}

# Circulant embedding: the periodic grid extends the map by PADDING_RANGES practical ranges, at most by
# max(map side, MAX_PADDING) cells per axis. The cap keeps a 1024 x 1024 map on a 2048 x 2048 grid.
PADDING_RANGES = 2.0
MAX_PADDING = 1024


def stable_covariance(h, *, sigma, length, alpha):
    """The stable (powered-exponential) covariance ``sigma^2 exp(-(h / length)^alpha)``.

    Parameters
    ----------
    h : float or numpy.ndarray
        Lag distance, m.
    sigma : float
        Standard deviation, mm/yr.
    length : float
        Correlation length, m.
    alpha : float
        Shape, in (0, 2].

    Returns
    -------
    numpy.ndarray
        (mm/yr)^2.
    """
    h = np.asarray(h, dtype=np.float64)
    return sigma**2 * np.exp(-((h / length) ** alpha))


def stable_variogram(h, *, sigma, length, alpha, nugget=0.0):
    """Semivariogram of the noise model: ``nugget^2 + sigma^2 (1 - exp(-(h / length)^alpha))``, 0 at ``h = 0``.

    Parameters
    ----------
    h : float or numpy.ndarray
        Lag distance, m.
    sigma : float
        Standard deviation of the correlated part, mm/yr.
    length : float
        Correlation length, m.
    alpha : float
        Shape, in (0, 2].
    nugget : float
        Standard deviation of the white part, mm/yr (the variogram's nugget is its square).

    Returns
    -------
    numpy.ndarray
        (mm/yr)^2.
    """
    h = np.asarray(h, dtype=np.float64)
    gamma = nugget**2 + sigma**2 - stable_covariance(h, sigma=sigma, length=length, alpha=alpha)
    return np.where(h > 0, gamma, 0.0)


def practical_range(length, alpha):
    """Lag where the correlated part of the variogram reaches 95 % of its sill: ``length * 3^(1/alpha)``, m."""
    return length * 3.0 ** (1.0 / alpha)


def correlated_field(shape, rng, *, sigma, length, alpha, cell_size):
    """A Gaussian random field with the stable covariance, drawn exactly by circulant embedding.

    The covariance is laid on a periodic grid larger than the map (lags measured around the torus), whose
    covariance matrix is circulant: its eigenvalues are the FFT of the covariance, and ``irfft2(sqrt(eig) *
    rfft2(white))`` has exactly that covariance (Dietrich & Newsam 1997, SIAM J. Sci. Comput. 18(4)). The map is
    a corner of that grid. The grid extends the map by 2 practical ranges per axis, where the covariance has
    decayed to a few per cent at most (0.3 % for ``alpha = 1``), so the wrapped grid is a valid covariance and the
    map's lags are not polluted by the wrap; the extension is capped at ``max(side, 1024)`` cells (a 1024 x 1024
    map is simulated on a 2048 x 2048 grid). Where the practical range exceeds the map (long lengths on small
    maps), some eigenvalues come out slightly negative and are set to zero: the covariance is then off by up to
    about 1 % of ``sigma^2`` (measured worst case: a 64 x 64 map of 100 m cells, ``L`` = 30 km, ``alpha`` = 2;
    see ``docs/synth-noise.md``).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    rng : numpy.random.Generator
    sigma : float
        Standard deviation, mm/yr.
    length : float
        Correlation length ``L``, m.
    alpha : float
        Shape, in (0, 2].
    cell_size : float
        Cell side, m.

    Returns
    -------
    numpy.ndarray of float64
        Zero-mean field (in expectation), mm/yr.
    """
    if not 0.0 < alpha <= 2.0:
        raise ValueError(f"alpha must be in (0, 2], got {alpha}")
    if length <= 0 or cell_size <= 0 or sigma < 0:
        raise ValueError(f"need length > 0, cell_size > 0, sigma >= 0; got {length}, {cell_size}, {sigma}")
    rows, cols = shape
    grid = _embedding_shape(shape, length / cell_size, alpha)
    sqrt_eig = _embedding_sqrt_eigenvalues(grid, length / cell_size, alpha)
    white = rng.standard_normal(grid)
    field = fft.irfft2(sqrt_eig * fft.rfft2(white), s=white.shape)
    return sigma * field[:rows, :cols]


def _embedding_shape(shape, length_cells, alpha):
    """Periodic grid for the circulant embedding: each side plus a few practical ranges, capped, FFT-friendly."""
    pad = PADDING_RANGES * practical_range(length_cells, alpha)
    return tuple(fft.next_fast_len(n + int(min(np.ceil(pad), max(n, MAX_PADDING))), real=True) for n in shape)


def _embedding_sqrt_eigenvalues(grid, length_cells, alpha):
    """Square roots of the circulant's eigenvalues on the periodic ``grid``, unit variance, ``rfft2`` layout."""
    # Lags on the torus: index i is |i| or |n - i| cells away, whichever is shorter.
    dy, dx = (np.minimum(np.arange(n), n - np.arange(n)).astype(np.float64) for n in grid)
    h2 = (dy[:, None] ** 2 + dx[None, :] ** 2) / length_cells**2
    cov = np.exp(-(h2 ** (alpha / 2.0)))
    eig = fft.rfft2(cov).real  # real: the torus covariance is even in both axes
    # Negative eigenvalues (a covariance not yet decayed at the wrap, rounding) cannot be drawn: set them to zero.
    return np.sqrt(np.maximum(eig, 0.0))


def white_noise(shape, rng, sigma):
    """Independent Gaussian noise per cell.

    Parameters
    ----------
    shape : tuple of int
    rng : numpy.random.Generator
    sigma : float or numpy.ndarray
        Standard deviation, mm/yr: one value, or one per cell (broadcast to ``shape``; see :func:`cell_sigma`).

    Returns
    -------
    numpy.ndarray of float64
    """
    return np.broadcast_to(np.asarray(sigma, dtype=np.float64), shape) * rng.standard_normal(shape)


def cell_sigma(sigma, count):
    """Noise of a cell averaging ``count`` points of noise ``sigma`` each: ``sigma / sqrt(count)``.

    Parameters
    ----------
    sigma : float
        One point's velocity noise, mm/yr.
    count : numpy.ndarray of int
        Points per cell.

    Returns
    -------
    numpy.ndarray of float64
        mm/yr; cells without points get ``sigma`` (as if one point), so the result stays finite.
    """
    return sigma / np.sqrt(np.maximum(np.asarray(count, dtype=np.float64), 1.0))


def planar_ramp(shape, rng, *, max_gradient, cell_size, max_curvature=0.0):
    """A zero-mean plane of random azimuth and gradient, optionally with a random quadratic term.

    Orbit errors and the choice of reference leave a long-wavelength ramp in a velocity map; in multi-year
    Sentinel-1 stacks it is typically a few mm/yr per 10 km or less, i.e. ``max_gradient`` about 0.1-0.5 mm/yr
    per km (larger before orbit or GNSS correction, smaller in EGMS L3 products, which are GNSS-calibrated).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``; row 0 is the north edge.
    rng : numpy.random.Generator
    max_gradient : float
        Largest gradient, mm/yr per km; the gradient is uniform in ``[0, max_gradient]``, its azimuth uniform.
    cell_size : float
        Cell side, m.
    max_curvature : float
        Largest coefficient of the quadratic term ``a x^2 + b x y + c y^2`` (``x``, ``y`` in km from the map's
        centre), mm/yr per km^2; each coefficient uniform in ``[-max_curvature, max_curvature]``. 0: a plane only.

    Returns
    -------
    numpy.ndarray of float64
        mm/yr, mean exactly zero over the map.
    """
    rows, cols = shape
    azimuth = rng.uniform(0.0, 2.0 * np.pi)  # direction of steepest rise, clockwise from north
    gradient = rng.uniform(0.0, max_gradient)
    # Easting and northing in km from the centre; northing falls with the row (north-up).
    x = (np.arange(cols) - (cols - 1) / 2.0)[None, :] * cell_size / 1000.0
    y = -(np.arange(rows) - (rows - 1) / 2.0)[:, None] * cell_size / 1000.0
    ramp = gradient * (np.sin(azimuth) * x + np.cos(azimuth) * y)
    if max_curvature > 0:
        a, b, c = rng.uniform(-max_curvature, max_curvature, 3)
        ramp = ramp + a * x**2 + b * x * y + c * y**2
    return ramp - ramp.mean()


def spikes(observed, rng, *, rate, amplitude_scale, tail=2.0):
    """Spike outliers on observed cells: unwrapping errors and bad scatterers.

    The number of spikes is ``Binomial(n_observed, rate)``, on distinct observed cells at random. Sizes are
    heavy-tailed: ``|a| = amplitude_scale * (1 + P)`` with ``P`` Lomax (Pareto II) of index ``tail``, i.e. a
    classical Pareto with minimum ``amplitude_scale``: ``P(|a| > x) = (amplitude_scale / x)^tail``; sign + or -
    with equal odds. A Pareto rather than a log-normal: real spikes have a floor (a smaller one is not told from
    noise) and a power-law tail (an unwrapping error is a whole cycle, a bad scatterer anything); with ``tail = 2``
    the median is ``1.41 * amplitude_scale`` and 1 % exceed ``10 * amplitude_scale``.

    Parameters
    ----------
    observed : numpy.ndarray of bool
        Cells that may carry a spike.
    rng : numpy.random.Generator
    rate : float
        Probability that an observed cell carries a spike, in [0, 1].
    amplitude_scale : float
        Smallest spike size, mm/yr.
    tail : float
        Pareto tail index (larger: lighter tail).

    Returns
    -------
    spike_values : numpy.ndarray of float64
        The spikes to add to the map, mm/yr; 0 elsewhere.
    spike_mask : numpy.ndarray of bool
        The cells carrying one (a subset of ``observed``).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    candidates = np.flatnonzero(observed)
    chosen = rng.choice(candidates, size=rng.binomial(candidates.size, rate), replace=False)
    size = amplitude_scale * (1.0 + rng.pareto(tail, chosen.size))
    spike_values = np.zeros(np.shape(observed))
    spike_values.flat[chosen] = size * rng.choice([-1.0, 1.0], chosen.size)
    spike_mask = np.zeros(np.shape(observed), dtype=bool)
    spike_mask.flat[chosen] = True
    return spike_values, spike_mask


def draw_noise_parameters(rng, ranges=None):
    """Draw the atmosphere's parameters from :data:`atmosphere_ranges` (or ``ranges``).

    ``sigma`` and ``length`` are drawn log-uniformly (scale parameters: 1-2 mm/yr is as likely as 4-8 mm/yr),
    ``alpha`` uniformly.

    Parameters
    ----------
    rng : numpy.random.Generator
    ranges : dict, optional
        ``{"sigma": (lo, hi), "length": (lo, hi), "alpha": (lo, hi)}``; :data:`atmosphere_ranges` by default.

    Returns
    -------
    dict
        ``sigma`` (mm/yr), ``length`` (m), ``alpha``: keyword arguments of :func:`correlated_field`.
    """
    ranges = atmosphere_ranges if ranges is None else ranges
    sigma = float(np.exp(rng.uniform(*np.log(ranges["sigma"]))))
    length = float(np.exp(rng.uniform(*np.log(ranges["length"]))))
    alpha = float(rng.uniform(*ranges["alpha"]))
    return {"sigma": sigma, "length": length, "alpha": alpha}
