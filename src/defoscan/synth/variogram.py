"""The noise of a real sparse map, measured: its empirical semivariogram and the fitted noise model.

The model is the one ``defoscan.synth.noise`` draws from (see there): a stable-covariance Gaussian field plus a
white nugget, with semivariogram ``gamma(h) = tau^2 + sigma^2 (1 - exp(-(h / L)^alpha))``. Fitting a real map's
variogram with :func:`fit_variogram` gives ``sigma``, ``length`` (``L``), ``alpha`` and ``nugget`` (``tau``)
that :func:`defoscan.synth.noise.correlated_field` and :func:`defoscan.synth.noise.white_noise` take as they are.

:func:`empirical_variogram` is exact and deterministic: on a grid with gaps (NaN), every pair of observed cells
within ``max_lag`` counts, computed with a few FFTs (Marcotte 1996, "Fast variogram computation with FFT",
Computers & Geosciences 22(10)): with the mask ``m`` and the values ``z`` (0 where not observed), the number of
pairs at lag ``h`` is the autocorrelation of ``m``, and the sum of squared differences is
``S(h) + S(-h) - 2 X(h)``, with ``S`` the cross-correlation of ``m`` and ``m z^2`` and ``X`` the autocorrelation
of ``m z``. The lags are then binned by distance (isotropic). The price of exactness is the classical (Matheron)
estimator, a mean of squared differences: a robust one (Cressie-Hawkins, fourth power of the mean root
difference) does not reduce to correlations. Spikes and localised deformation inflate the classical estimator,
so the caller removes them first: :func:`robust_residual` drops values far from a local median (spikes), and
known or detected deformation areas are masked out (set NaN) by the caller.
"""

import warnings

import numpy as np
from scipy import fft, ndimage, optimize

from defoscan.robust import robust_sigma
from defoscan.synth.noise import stable_variogram


def empirical_variogram(values, cell_size, *, max_lag=None, n_bins=30):
    """Isotropic semivariogram of a sparse grid from all pairs of observed cells (FFT, exact).

    Parameters
    ----------
    values : numpy.ndarray
        2-D grid, mm/yr, NaN where there is no data.
    cell_size : float
        Cell side, m.
    max_lag : float, optional
        Largest lag distance, m; a quarter of the shorter side of the map by default. Longer lags add pairs but
        few independent ones: the map holds few patches that far apart, so the variogram there wanders with the
        realisation and drags the fitted length (measured in ``docs/synth-noise.md``: half the side instead of a
        quarter doubles the fitted length's bias for ``L`` = map / 13).
    n_bins : int
        Number of lag bins, spaced geometrically from one cell to ``max_lag``: fine at short lags, where the
        variogram's shape (``alpha``) shows, coarse at long ones, where it is flat. Empty bins are dropped.

    Returns
    -------
    lags : numpy.ndarray of float64
        Mean lag distance of the pairs in each bin, m.
    gamma : numpy.ndarray of float64
        Semivariance, (mm/yr)^2: half the mean squared difference of the pairs in the bin.
    counts : numpy.ndarray of int64
        Number of pairs in each bin (each unordered pair once).
    """
    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    mask = np.isfinite(values)
    if max_lag is None:
        max_lag = 0.25 * min(rows, cols) * cell_size
    lag_y = min(int(np.floor(max_lag / cell_size)), rows - 1)
    lag_x = min(int(np.floor(max_lag / cell_size)), cols - 1)
    # Zero padding of max_lag cells keeps the circular correlations from wrapping onto the lags we keep.
    grid = (fft.next_fast_len(rows + lag_y, real=True), fft.next_fast_len(cols + lag_x, real=True))
    m = mask.astype(np.float64)
    # Centred values: the variogram ignores a constant, and centring keeps S and X small (less cancellation).
    z = np.where(mask, values - (values[mask].mean() if mask.any() else 0.0), 0.0)
    f_m, f_z, f_z2 = (fft.rfft2(a, s=grid) for a in (m, z, z * z))
    pairs = fft.irfft2(np.conj(f_m) * f_m, s=grid)
    s = fft.irfft2(np.conj(f_m) * f_z2, s=grid)
    x = fft.irfft2(np.conj(f_z) * f_z, s=grid)
    # Lags -lag..lag on both axes (negative lags wrap to the end of the periodic grid). The squared differences
    # at lag h are S(h) + S(-h) - 2 X(h); a bin holds h and -h alike, so summing S(h) twice is the same.
    iy = np.r_[grid[0] - lag_y : grid[0], 0 : lag_y + 1]
    ix = np.r_[grid[1] - lag_x : grid[1], 0 : lag_x + 1]
    pairs = np.rint(pairs[np.ix_(iy, ix)])
    squares = 2.0 * (s[np.ix_(iy, ix)] - x[np.ix_(iy, ix)])
    dy = np.arange(-lag_y, lag_y + 1)[:, None]
    dx = np.arange(-lag_x, lag_x + 1)[None, :]
    distance = cell_size * np.hypot(dy, dx)
    edges = np.geomspace(cell_size, max(max_lag, cell_size * 1.000001), n_bins + 1)
    edges[0] = 0.999 * cell_size  # the first bin holds the 1-cell lag whatever the rounding
    keep = (distance > 0) & (distance <= edges[-1]) & (pairs > 0)
    which = np.searchsorted(edges, distance[keep], side="left") - 1
    counts = np.bincount(which, weights=pairs[keep], minlength=n_bins)
    total = np.bincount(which, weights=squares[keep], minlength=n_bins)
    lag_sum = np.bincount(which, weights=pairs[keep] * distance[keep], minlength=n_bins)
    full = counts > 0
    # Both h and -h were summed: each unordered pair counts twice, in the pairs and in the squares alike.
    gamma = np.maximum(total[full] / (2.0 * counts[full]), 0.0)  # >= 0 but for rounding
    return lag_sum[full] / counts[full], gamma, (counts[full] / 2.0).round().astype(np.int64)


def fit_variogram(lags, gamma, counts, *, cell_size=None):
    """Fit the noise model's variogram to an empirical one by weighted least squares (Cressie 1985).

    The residual of bin ``j`` is ``sqrt(N_j) * (gamma_j / model(h_j) - 1)``: the weights ``N_j / model(h_j)^2``
    approximate the inverse variance of a bin's estimate (Cressie 1985, Math. Geol. 17(5)): relative errors, so
    the short lags, where ``gamma`` is small and its shape gives ``alpha``, are not drowned by the sill. Bounds:
    ``alpha`` in [0.1, 2], ``length`` from one cell (the shortest lag when ``cell_size`` is not given) to 3 times
    the longest lag. The fit starts from three values of ``alpha`` and keeps the best.

    Parameters
    ----------
    lags, gamma, counts : numpy.ndarray
        As returned by :func:`empirical_variogram`.
    cell_size : float, optional
        Cell side, m: the lower bound of ``length``.

    Returns
    -------
    dict
        ``sigma`` (mm/yr), ``length`` (m), ``alpha``, ``nugget`` (mm/yr, the white part's standard deviation):
        keyword arguments of :func:`defoscan.synth.noise.stable_variogram`.
    """
    lags, gamma, counts = (np.asarray(a, dtype=np.float64) for a in (lags, gamma, counts))
    ok = (counts > 0) & np.isfinite(gamma) & (lags > 0)
    lags, gamma, counts = lags[ok], gamma[ok], counts[ok]
    if lags.size < 4:
        raise ValueError(f"need at least 4 lag bins with pairs to fit 4 parameters, got {lags.size}")
    weight = np.sqrt(counts)
    scale = max(float(gamma.max()), 1e-12)
    floor = 1e-9 * scale  # keeps the model, the residuals' denominator, away from zero

    def residuals(p):
        sill, length, alpha, nugget = p
        model = stable_variogram(lags, sigma=np.sqrt(sill), length=length, alpha=alpha, nugget=np.sqrt(nugget))
        return weight * (gamma / np.maximum(model, floor) - 1.0)

    shortest = cell_size if cell_size is not None else lags.min()
    lower = [floor, shortest, 0.1, 0.0]
    upper = [10.0 * scale, 3.0 * lags.max(), 2.0, 10.0 * scale]
    # Start: sill from the last third of the bins, nugget a tenth of the first bin, length where 63 % is reached.
    sill0 = float(np.median(gamma[-max(1, lags.size // 3) :]))
    nugget0 = 0.1 * min(float(gamma[0]), sill0)
    reached = np.flatnonzero(gamma >= nugget0 + 0.63 * (sill0 - nugget0))
    length0 = float(np.clip(lags[reached[0]] if reached.size else lags.max(), lower[1] * 1.01, upper[1] * 0.99))
    best = None
    for alpha0 in (0.5, 1.0, 1.5):
        start = np.clip([max(sill0 - nugget0, 2 * floor), length0, alpha0, nugget0], lower, upper)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = optimize.least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
        if best is None or fit.cost < best.cost:
            best = fit
    sill, length, alpha, nugget = best.x
    return {
        "sigma": float(np.sqrt(sill)),
        "length": float(length),
        "alpha": float(alpha),
        "nugget": float(np.sqrt(nugget)),
    }


def robust_residual(values, cell_size, *, scale, k=4.0):
    """Drop values more than ``k`` robust sigmas from a local median: spikes out, before the variogram.

    The local median is taken in blocks of ``scale`` metres over the observed cells only (NaN-aware), and
    interpolated bilinearly between block centres (blocks without data borrow the nearest block's median). Its
    residuals' robust sigma (``1.4826 * MAD``, the whole map) sets the threshold. Outliers are removed (set NaN)
    rather than clipped to ``k`` sigmas: a clipped spike would still add ``(k sigma)^2`` to every one of its pairs.
    A localised signal broader than ``scale`` follows the local median and stays: mask it out separately.

    Parameters
    ----------
    values : numpy.ndarray
        2-D grid, mm/yr, NaN where there is no data.
    cell_size : float
        Cell side, m.
    scale : float
        Side of the median's blocks, m: larger than a spike, smaller than the noise's correlation length.
    k : float
        Threshold in robust sigmas (Gaussian noise passes a 4-sigma test but for 6 values in 100,000).

    Returns
    -------
    numpy.ndarray of float64
        ``values`` with the outliers set to NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).any():
        return values.copy()
    local = median_surface(values, cell_size, scale)
    residual = values - local
    sigma = robust_sigma(residual)
    out = values.copy()
    out[np.abs(residual) > k * sigma] = np.nan
    return out


def median_surface(values, cell_size, scale):
    """Medians of ``scale``-metre blocks over the cells with data, interpolated bilinearly between block centres.

    Blocks without data borrow the nearest block's median; a grid without any data gives zeros.

    Parameters
    ----------
    values : numpy.ndarray
        2-D grid, NaN where there is no data.
    cell_size, scale : float
        Cell side and block side, m.

    Returns
    -------
    numpy.ndarray of float64
    """
    rows, cols = values.shape
    b = max(1, int(round(scale / cell_size)))
    by, bx = -(-rows // b), -(-cols // b)
    padded = np.full((by * b, bx * b), np.nan)
    padded[:rows, :cols] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        block = np.nanmedian(padded.reshape(by, b, bx, b), axis=(1, 3))
    empty = np.isnan(block)
    if empty.all():
        return np.zeros(values.shape)
    if empty.any():
        nearest = ndimage.distance_transform_edt(empty, return_distances=False, return_indices=True)
        block = block[tuple(nearest)]
    # Block j's centre is at cell (j + 0.5) b - 0.5; map_coordinates wants block units.
    ry = (np.arange(rows) + 0.5) / b - 0.5
    rx = (np.arange(cols) + 0.5) / b - 0.5
    return ndimage.map_coordinates(block, np.meshgrid(ry, rx, indexing="ij"), order=1, mode="nearest")
