"""How much to smooth a tile, from the tile's own data: the noise nugget against the roughness of the signal.

The completion is the MAP estimate of a smooth field seen through noise: with data noise variance ``tau^2`` and a
field whose increments grow in variance by ``q`` per cell of distance, the data term weighs ``1/tau^2`` and the
smoothness term ``1/q``, so the right membrane weight (in data-weight units) is proportional to ``tau^2 / q``. Both
come from the short-lag semivariogram of the observed cells, ``gamma(h) ~ tau^2 + q h`` for ``h`` of a few cells:
the intercept is the nugget (noise that neighbouring cells do not share), the slope how fast the field itself
changes.

Noisy, quiet maps (EGMS points over stable ground: large nugget, flat variogram) are smoothed hard; clean rasters
with sharp signals (a 20 m volcano map: small nugget, steep variogram) lightly. One fixed weight had to trade
one kind of map against the other (docs/FILL.md).
"""

import numpy as np

LAGS = (1, 2, 3, 4, 6, 8)  # cells: short enough for the linear part of the variogram
MEDIAN_CHI2_1 = 0.4549  # median of a chi-square variable with one degree of freedom
MIN_PAIRS = 50  # pairs below which a lag's semivariance is not trusted


def short_lag_semivariogram(velocity, lags=LAGS):
    """Robust semivariance of observed cell pairs ``h`` cells apart along rows and columns.

    ``gamma(h) = median(d^2) / (2 * 0.4549)`` over the differences ``d`` of the pairs: the median makes one spike
    or a few cells of a deformation area count as little as any other pair (for Gaussian differences it equals
    the classical estimate).

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D, NaN where no data.
    lags : sequence of int
        Lags, cells.

    Returns
    -------
    numpy.ndarray of float64
        Semivariance per lag, NaN where fewer than ``MIN_PAIRS`` pairs exist.
    """
    gamma = np.full(len(lags), np.nan)
    for i, h in enumerate(lags):
        rows, cols = velocity.shape
        parts = []
        if cols > h:
            parts.append((velocity[:, h:] - velocity[:, :-h]).ravel())
        if rows > h:
            parts.append((velocity[h:, :] - velocity[:-h, :]).ravel())
        if not parts:
            continue
        d = np.concatenate(parts)
        d = d[np.isfinite(d)]
        if d.size >= MIN_PAIRS:
            gamma[i] = float(np.median(d.astype(np.float64) ** 2)) / (2.0 * MEDIAN_CHI2_1)
    return gamma


def nugget_and_slope(velocity, lags=LAGS):
    """``tau^2`` and ``q`` of ``gamma(h) ~ tau^2 + q h``, least squares over the short lags.

    Returns
    -------
    (float, float) or None
        None when fewer than three lags have enough pairs.
    """
    gamma = short_lag_semivariogram(velocity, lags)
    ok = np.isfinite(gamma)
    if ok.sum() < 3:
        return None
    h = np.asarray(lags, dtype=np.float64)[ok]
    slope, nugget = np.polyfit(h, gamma[ok], 1)
    return float(nugget), float(slope)


def membrane_weight(velocity, scale, bounds, lags=LAGS):
    """Membrane weight ``scale * tau^2 / q``, clipped to ``bounds``; None when it cannot be estimated.

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D tile, NaN where no data.
    scale : float
        ``kappa``: the constant of proportionality, chosen on tuning maps (docs/FILL.md).
    bounds : (float, float)
        Least and largest weight returned.
    lags : sequence of int

    Returns
    -------
    float or None
        None for tiles with too few neighbouring pairs to measure a variogram.
    """
    fitted = nugget_and_slope(velocity, lags)
    if fitted is None:
        return None
    nugget, slope = fitted
    # A negative intercept is noise-free data (sampling error of the fit); a flat variogram is a quiet field.
    nugget, slope = max(nugget, 1e-6), max(slope, 1e-6)
    return float(np.clip(scale * nugget / slope, *bounds))
