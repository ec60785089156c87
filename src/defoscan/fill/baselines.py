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
from scipy.spatial import Delaunay, QhullError, cKDTree

from defoscan.fill.lowrank import randomized_svd, spectral_norm


def nearest(velocity, weight, target):
    """The value of the nearest observed cell (Euclidean distance between cell centres)."""
    observed = np.isfinite(velocity)
    if not observed.any():
        return np.full(velocity.shape, np.nan)
    _, (rows, cols) = ndimage.distance_transform_edt(~observed, return_indices=True)
    return velocity[rows, cols].astype(np.float64)


def linear(velocity, weight, target, *, seed=0):
    """Linear interpolation on the Delaunay triangulation of the observed cells; nearest outside their hull.

    The triangles are rasterised directly (every cell tested against the triangles whose bounding box holds
    it): ``scipy.spatial.Delaunay.find_simplex`` takes tens of seconds for a million cells on grid-aligned
    points, which lie on triangle edges. The points are jittered by 1e-3 cell for the triangulation only
    (cells on a grid are cocircular, a degenerate case for qhull); values are interpolated at the exact cells.
    """
    observed = np.isfinite(velocity)
    out = nearest(velocity, weight, target)
    if observed.sum() < 3 or not (target & ~observed).any():
        return out
    points = np.argwhere(observed).astype(np.float64)
    jitter = np.random.default_rng(seed).uniform(-1e-3, 1e-3, points.shape)
    try:
        simplices = Delaunay(points + jitter).simplices
    except QhullError:  # all points on a line: nearest is then the honest answer
        return out
    inside = _rasterise_triangles(points, velocity[observed].astype(np.float64), simplices, velocity.shape)
    fill = np.isfinite(inside) & ~observed
    out[fill] = inside[fill]
    return out


def _rasterise_triangles(points, values, simplices, shape, chunk=4_000_000):
    """Barycentric interpolation inside each triangle, at every cell centre the triangle holds (NaN elsewhere).

    Triangles are grouped by bounding box size (rounded up to powers of two) so each group is one vectorised
    test of its candidate cells; a cell on a shared edge gets the same value from either triangle.
    """
    out = np.full(shape, np.nan)
    r, c, v = points[simplices, 0], points[simplices, 1], values[simplices]
    dr1, dr2 = r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]
    dc1, dc2 = c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]
    det = dr1 * dc2 - dr2 * dc1
    top, left = r.min(axis=1).astype(np.int64), c.min(axis=1).astype(np.int64)
    height = r.max(axis=1).astype(np.int64) - top + 1
    width = c.max(axis=1).astype(np.int64) - left + 1
    box_h = 1 << np.ceil(np.log2(height)).astype(np.int64)
    box_w = 1 << np.ceil(np.log2(width)).astype(np.int64)
    key = np.where(det != 0, box_h * (1 << 32) + box_w, -1)  # slivers (det 0) hold no cell of their own
    order = np.argsort(key, kind="stable")
    for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        if key[group[0]] < 0:
            continue
        bh, bw = int(box_h[group[0]]), int(box_w[group[0]])
        off_r, off_c = np.divmod(np.arange(bh * bw), bw)
        step = max(1, chunk // (bh * bw))
        for i in range(0, group.size, step):
            t = group[i : i + step, None]
            rows, cols = top[t] + off_r, left[t] + off_c
            u, w = rows - r[t, 0], cols - c[t, 0]
            l1 = (u * dc2[t] - dr2[t] * w) / det[t]
            l2 = (dr1[t] * w - u * dc1[t]) / det[t]
            l0 = 1.0 - l1 - l2
            inside = (off_r < height[t]) & (off_c < width[t]) & (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
            ti, ci = np.nonzero(inside)
            tri = t[ti, 0]
            out[rows[ti, ci], cols[ti, ci]] = l0[ti, ci] * v[tri, 0] + l1[ti, ci] * v[tri, 1] + l2[ti, ci] * v[tri, 2]
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


def softimpute(velocity, weight, target, *, shrinkage=0.03, rank=48, iterations=60, path=6, tol=1e-4, seed=0):
    """Plain SoftImpute (Mazumder, Hastie & Tibshirani 2010): iterated soft-thresholded SVD.

    ``Z <- S_lambda(P_obs(Y) + P_unobs(Z))`` with ``S_lambda`` the singular value soft threshold, on the tile
    centred at the weighted mean of the data, along the paper's warm-started path of ``path`` thresholds from
    ``sigma_1 / 2`` down to ``lambda = shrinkage * sigma_1`` (``sigma_1`` of the zero-filled data), at most
    ``iterations`` in all. The SVD is a randomized one of at most ``rank`` components, warm-started from the
    previous right singular vectors.
    """
    observed = np.isfinite(velocity)
    if not observed.any():
        return np.full(velocity.shape, np.nan)
    mean = float(np.average(velocity[observed], weights=np.maximum(weight[observed], 1e-12)))
    data = np.where(observed, velocity - mean, 0.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    sigma = spectral_norm(data, rng)
    z = np.zeros_like(data)
    basis = None
    for threshold in np.geomspace(0.5 * sigma, shrinkage * sigma, path) if sigma > 0 else ():
        for _ in range(max(1, iterations // path)):
            left, s, right = randomized_svd(np.where(observed, data, z), rank, rng, basis=basis)
            basis = right.T
            keep = s > threshold
            z_new = (left[:, keep] * (s[keep] - threshold)) @ right[keep]
            change = np.linalg.norm(z_new - z) / max(float(np.linalg.norm(z)), 1e-12)
            z = z_new
            if change < tol:
                break
    return z.astype(np.float64) + mean
