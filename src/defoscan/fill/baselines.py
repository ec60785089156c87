"""Baseline gap fillers, each a plain function of one tile: nearest, linear, inverse-distance kNN, SoftImpute.

Every filler has the signature of :func:`defoscan.fill.completion.complete`::

    filler(velocity, weight, target) -> numpy.ndarray

``velocity`` is a 2-D float array with NaN where there is no data, ``weight`` the data weight of each cell (the
point count; 0 where no data), ``target`` the cells that need a value (those near enough to data). The result
holds an estimate at every ``target`` cell (other cells may be anything, NaN included); the caller keeps the
observed values and blanks what is too far from data.
"""

import numpy as np
from scipy import ndimage
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import cKDTree

from defoscan.fill.lowrank import soft_threshold_svd, spectral_norm


def nearest(velocity, weight, target):
    """The value of the nearest observed cell (Euclidean distance between cell centres)."""
    observed = np.isfinite(velocity)
    if not observed.any():
        return np.full(velocity.shape, np.nan)
    _, (rows, cols) = ndimage.distance_transform_edt(~observed, return_indices=True)
    return velocity[rows, cols].astype(np.float64)


def linear(velocity, weight, target):
    """Linear interpolation on the Delaunay triangulation of the observed cells; nearest outside their hull."""
    observed = np.isfinite(velocity)
    out = nearest(velocity, weight, target)
    wanted = target & ~observed
    if observed.sum() < 3 or not wanted.any():
        return out
    points = np.argwhere(observed).astype(np.float64)
    try:
        interpolator = LinearNDInterpolator(points, velocity[observed].astype(np.float64))
    except Exception:  # qhull refuses collinear or too few points: nearest is then the honest answer
        return out
    inside = interpolator(np.argwhere(wanted).astype(np.float64))
    values = out[wanted]
    good = np.isfinite(inside)
    values[good] = inside[good]
    out[wanted] = values
    return out


def knn(velocity, weight, target, *, k=12, power=2.0):
    """Inverse-distance weighting of the ``k`` nearest observed cells (``cKDTree``, all cores).

    Weights are ``count / distance**power``, so a cell backed by more points counts more.
    """
    observed = np.isfinite(velocity)
    out = np.full(velocity.shape, np.nan)
    out[observed] = velocity[observed]
    wanted = target & ~observed
    n = int(observed.sum())
    if n == 0 or not wanted.any():
        return out
    k = min(k, n)
    tree = cKDTree(np.argwhere(observed).astype(np.float64))
    distance, index = tree.query(np.argwhere(wanted).astype(np.float64), k=k, workers=-1)
    if k == 1:
        distance, index = distance[:, None], index[:, None]
    w = np.maximum(weight[observed], 1e-12)[index] / np.maximum(distance, 1e-12) ** power
    out[wanted] = (w * velocity[observed][index]).sum(axis=1) / w.sum(axis=1)
    return out


def softimpute(velocity, weight, target, *, shrinkage=0.05, rank=64, iterations=100, tol=1e-4, seed=0):
    """Plain SoftImpute (Mazumder, Hastie & Tibshirani 2010): iterated soft-thresholded SVD.

    ``Z <- S_lambda(P_obs(Y) + P_unobs(Z))`` with ``S_lambda`` the singular value soft threshold, on the tile
    centred at the weighted mean of the data; ``lambda = shrinkage * sigma_1`` of the zero-filled data.
    The SVD is a randomized one of at most ``rank`` components.
    """
    observed = np.isfinite(velocity)
    if not observed.any():
        return np.full(velocity.shape, np.nan)
    mean = float(np.average(velocity[observed], weights=np.maximum(weight[observed], 1e-12)))
    data = np.where(observed, velocity - mean, 0.0)
    rng = np.random.default_rng(seed)
    z = np.zeros_like(data)
    threshold = None
    for _ in range(iterations):
        filled = np.where(observed, data, z)
        if threshold is None:
            threshold = shrinkage * spectral_norm(data, rng)
        z_new = soft_threshold_svd(filled, threshold, rank, rng)
        change = np.linalg.norm(z_new - z) / max(np.linalg.norm(z), 1e-12)
        z = z_new
        if change < tol:
            break
    return z + mean
