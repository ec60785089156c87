"""The modified matrix completion: a robust, weighted, graph-regularised completion of one tile.

Objective
---------
For a tile ``X`` (rows x columns) with observed cells ``O``, cell velocities ``y`` and data weights
``w = count ** count_power`` (1 for every cell by default: counting points as independent measured worse)::

    min_X  sum_{i in O} w_i huber_c((X_i - y_i) / s)                 robust weighted data fidelity
         + a/2 ||grad X||^2                                            membrane (graph Dirichlet) energy
         + b/2 (||X_xx||^2 + ||X_yy||^2 + 2 ||X_xy||^2)                 thin-plate energy
         + mu ||X - m||_{*,k}                                          truncated nuclear norm (optional)

- ``a = kappa tau^2 / q`` from the tile's own short-lag variogram ``gamma(h) ~ tau^2 + q h`` (noise nugget against
  the roughness of the field: :mod:`defoscan.fill.smoothing`), ``b = 30 a``: a noisy, quiet map is smoothed
  hard, a clean raster with sharp signals lightly. One fixed weight had to trade one kind of map against the
  other (docs/FILL.md).
- ``||grad X||^2 = tr(X^T L_r X) + tr(X L_c X^T)`` with ``L_r, L_c`` the path-graph Laplacians of the rows and
  columns: the graph regularisation of "matrix completion on graphs" (Kalofolias et al. 2014), which on an image
  is the membrane energy. The thin-plate term (second differences wherever defined: planes cost nothing) makes
  the fill curve like a spline in tension (Smith & Wessel 1990) instead of sagging into cones between isolated
  cells; ``a`` is the tension.
- The Huber loss (quadratic within ``c`` robust standard deviations ``s``, linear beyond) is the sparse
  component of robust matrix completion (low-rank + sparse, Candes et al. 2011): ``huber_c(r) = min_S
  1/2 (r - S)^2 + c |S|``, so a spike on an observed cell is absorbed into ``S`` instead of being spread over
  its neighbourhood. ``s`` is the robust (MAD) scale of the weighted residuals.
- ``||Z||_{*,k}`` is the truncated nuclear norm (sum of the singular values after the ``k`` largest; Hu et
  al. 2013) of the tile minus its weighted mean ``m``. It leaves the dominant structure unshrunk and favours
  fills consistent with the rows and columns around a gap. On the tuning maps it lowered the overall error by
  2-3 % at best while raising it inside deformation areas, for 3.4 times the time (docs/FILL.md), so ``mu``
  defaults to 0; it is kept as an option and in the ablation.

Solver
------
Iteratively reweighted least squares for the Huber loss: each pass solves the quadratic problem with weights
``w_i min(1, c s / |r_i|)`` by multigrid-preconditioned CG (:mod:`defoscan.fill.multigrid`), warm-started from
the previous pass; the early passes need only a rough solution. With ``mu > 0``, ADMM on ``X = Z``: the
``X``-step is the same quadratic solve with the weights raised by ``rho`` and the target pulled to ``Z - U``;
the ``Z``-step the truncated singular value threshold (:mod:`defoscan.fill.lowrank`, randomized SVD of at most
``rank`` components).

Lengths are in cells. Defaults were chosen by measurement on tuning maps separate from the reported ones
(docs/FILL.md).
"""

from dataclasses import asdict, dataclass

import numpy as np

from defoscan.fill.lowrank import randomized_svd
from defoscan.fill.multigrid import solve
from defoscan.fill.smoothing import membrane_weight
from defoscan.robust import robust_sigma

# Tiles too sparse for a variogram: the best fixed (membrane, plate) of the tuning before the weights adapted.
FALLBACK_WEIGHTS = (0.03, 0.3)


@dataclass(frozen=True)
class CompletionParameters:
    """Parameters of :func:`complete` (defaults from docs/FILL.md).

    Parameters
    ----------
    membrane : float, optional
        ``a``, weight of the membrane energy (tension), in data-weight units. None (default): from the tile's own
        data, ``smoothing * nugget / slope`` of its short-lag variogram (:mod:`defoscan.fill.smoothing`).
    plate : float, optional
        ``b``, weight of the thin-plate energy; None: ``plate_ratio * a``.
    smoothing : float
        ``kappa`` of the data-driven membrane weight.
    smoothing_bounds : (float, float)
        Least and largest data-driven membrane weight.
    plate_ratio : float
        ``b / a`` when the plate weight is not given.
    huber : float
        ``c``, robust standard deviations beyond which a residual counts linearly.
    count_power : float
        Data weight ``w = count ** count_power``: 1 trusts a cell of ``n`` points ``n`` times more (independent
        point noise), 0 weighs all cells alike; points of one cell share building and atmosphere, so the truth
        is in between.
    robust_passes : int
        Reweighting passes after the first (least-squares) solve; 0 gives a plain weighted fit.
    iterations : int
        Multigrid-CG iterations of the final solve; the first passes take half.
    nuclear : float
        ``mu``, weight of the truncated nuclear norm; 0 switches the low-rank term (and ADMM) off.
    keep : int
        ``k``, leading singular values left unpenalised.
    rank : int
        Singular components computed by the randomized SVD.
    admm_iterations : int
        ADMM iterations when ``nuclear > 0``.
    rho : float
        ADMM penalty.
    """

    membrane: float | None = None
    plate: float | None = None
    smoothing: float = 0.004
    smoothing_bounds: tuple = (0.001, 0.3)
    plate_ratio: float = 30.0
    huber: float = 2.5
    count_power: float = 0.0
    robust_passes: int = 2
    iterations: int = 10
    nuclear: float = 0.0
    keep: int = 16
    rank: int = 48
    admm_iterations: int = 10
    rho: float = 1.0

    def as_dict(self):
        """Plain dict, for run records."""
        return asdict(self)

    def weights_for(self, velocity):
        """``(a, b)`` for one tile: as given, or ``a`` from the tile's variogram and ``b = plate_ratio * a``."""
        a = self.membrane
        if a is None:
            a = membrane_weight(velocity, self.smoothing, self.smoothing_bounds)
            if a is None:  # too few neighbouring cells for a variogram
                return FALLBACK_WEIGHTS
        b = self.plate if self.plate is not None else self.plate_ratio * a
        return a, b


def complete(velocity, weight, target=None, parameters=None, *, seed=0):
    """Complete one tile (see the module notes for the objective and solver).

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D, NaN where no data.
    weight : numpy.ndarray
        2-D data weights (point counts); cells without data are ignored.
    target : numpy.ndarray of bool, optional
        Cells that need a value; unused (the completion estimates every cell), kept for the common interface.
    parameters : CompletionParameters, optional
    seed : int
        Seed of the randomized SVD (only with ``nuclear > 0``).

    Returns
    -------
    numpy.ndarray of float32
        The completed tile, NaN everywhere if the tile has no data.
    """
    p = parameters or CompletionParameters()
    observed = np.isfinite(velocity) & (np.asarray(weight) > 0)
    if not observed.any():
        return np.full(velocity.shape, np.nan, dtype=np.float32)
    y = np.where(observed, velocity, 0.0).astype(np.float32)
    w = np.where(observed, np.power(np.maximum(weight, 1e-12), p.count_power), 0.0).astype(np.float32)
    a, b = p.weights_for(velocity)
    rough = max(2, p.iterations // 2)
    x = solve(y, w, a, b, iterations=rough if p.robust_passes else p.iterations)
    for step in range(p.robust_passes):
        w_robust = huber_weights(y, x, w, observed, p.huber)
        last = step == p.robust_passes - 1
        x = solve(y, w_robust, a, b, x0=x, iterations=p.iterations if last else rough)
    if p.nuclear > 0:
        w_final = huber_weights(y, x, w, observed, p.huber) if p.robust_passes else w
        x = _low_rank_admm(y, w_final, x, p, a, b, np.random.default_rng(seed))
    return x


def huber_weights(y, x, weight, observed, c):
    """IRLS weights of the Huber loss: ``weight * min(1, c s / |r|)`` with ``r = sqrt(weight) (y - x)``.

    ``s`` is the robust standard deviation (``1.4826 * MAD``) of ``r`` over the observed cells.
    """
    r = np.sqrt(weight[observed]) * (y[observed] - x[observed])
    scale = robust_sigma(r)
    out = np.zeros_like(weight)
    if scale <= 0:  # an exact fit (too few cells to disagree): nothing to down-weight
        out[observed] = weight[observed]
        return out
    out[observed] = weight[observed] * np.minimum(1.0, c * scale / np.maximum(np.abs(r), 1e-30))
    return out


def _low_rank_admm(y, w, x, p, membrane, plate, rng):
    """ADMM for the objective with the truncated nuclear norm, started from the quadratic solution ``x``.

    The ``Z``-step shrinks singular values ``keep+1 .. rank`` by ``mu / rho`` and leaves the rest of the matrix
    (the leading ``keep`` and whatever lies beyond ``rank``) as it is: beyond ``rank`` the prox is not computed,
    so the penalty there is under-applied rather than the tail being cut off.
    """
    mean = float((w * y).sum(dtype=np.float64) / w.sum(dtype=np.float64))
    u = np.zeros_like(x)
    basis = None
    threshold = np.float32(p.nuclear / p.rho)
    for _ in range(p.admm_iterations):
        a = x + u - mean
        left, s, right = randomized_svd(a, p.rank, rng, basis=basis)
        basis = right.T
        cut = np.minimum(s[p.keep :], threshold)
        z = mean + a - (left[:, p.keep :] * cut) @ right[p.keep :]
        u += x - z
        w_shifted = w + np.float32(p.rho)
        pulled = (w * y + np.float32(p.rho) * (z - u)) / w_shifted
        x = solve(pulled, w_shifted, membrane, plate, x0=x, iterations=4)
    return x
