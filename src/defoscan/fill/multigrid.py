"""Multigrid-preconditioned conjugate gradients for the quadratic part of the completion.

Solves ``(W + a L + b T) x = W y`` on a grid, where ``W`` is the diagonal of data weights (zero in the gaps),
``L`` the graph Laplacian of the 4-neighbour grid (``-Laplacian`` with zero-flux edges) and ``T`` the discrete
thin-plate operator ``Dxx'Dxx + Dyy'Dyy + 2 Dxy'Dxy`` (second differences wherever they are defined, so planes,
and only planes, cost nothing, up to the map's edges): the minimiser of
``1/2 sum w (x - y)^2 + a/2 |grad x|^2 + b/2 (|x_xx|^2 + |x_yy|^2 + 2 |x_xy|^2)``. The system is symmetric
positive definite once there are data, but badly conditioned: information must cross gaps hundreds of cells
wide, which plain or Jacobi-preconditioned CG does in as many iterations. A multigrid V-cycle carries it across
in one sweep.

- Coarse grids halve each side until one is at most ``COARSEST`` cells across; cell-centred bilinear
  prolongation ``P`` and restriction ``R = P^T``.
- Coarse operators by rediscretisation, matched to the Galerkin product ``P^T A P`` of smooth functions:
  weights ``P^T w`` (the data carry their total weight down), ``a`` unchanged (the membrane energy is scale
  free in 2-D), ``b / 4`` per level (the thin-plate energy scales as 1 / cell size squared in cell units).
- Damped Jacobi smoothing (``omega = 1 / Gershgorin bound`` of ``D^-1 A``), one sweep before and one after
  the coarse correction, so the V-cycle is a symmetric preconditioner; the coarsest grid is solved exactly with
  its dense inverse (computed once per hierarchy) when it has at most 1024 cells, by CG otherwise (long strips).

Everything runs in float32 on whole arrays (no Python loop over cells); a V-cycle costs about three operator
applications of the finest grid. Ten PCG iterations take a 1024 x 1024 benchmark map to a few hundredths of a
mm/yr RMS of the converged solution, far below the interpolation error; on the tuning maps stopping there was
as accurate as converging (docs/FILL.md), and two sweeps per level cost more time than they saved iterations.
"""

import numpy as np

from defoscan.fill.lowrank import one_blas_thread

COARSEST = 16  # cells a side: coarsening stops at this
DIRECT = 1024  # cells: a coarsest grid this small is solved with its dense inverse


def laplacian(x, out=None, scale=1.0):
    """The graph Laplacian of the 4-neighbour grid applied to ``x`` (zero-flux edges), symmetric PSD.

    The grid is the last two axes of ``x`` (leading axes are a batch). With ``out``, ``scale`` times the result
    is added to it instead (no new array).
    """
    if out is None:
        out = np.zeros_like(x)
    for axis in (0, 1):
        g = np.diff(x, axis=axis - 2)
        if scale != 1.0:
            g *= scale
        lo, hi = _slices(axis, 0, -1), _slices(axis, 1, None)
        out[lo] -= g
        out[hi] += g
    return out


def thin_plate(x, out=None, scale=1.0):
    """The thin-plate operator ``Dxx'Dxx + Dyy'Dyy + 2 Dxy'Dxy`` applied to ``x``: symmetric PSD, zero on planes.

    The grid is the last two axes of ``x``. With ``out``, ``scale`` times the result is added to it instead.
    """
    if out is None:
        out = np.zeros_like(x)
    for axis in (0, 1):
        g = np.subtract(x[_slices(axis, 2, None)], x[_slices(axis, 1, -1)])
        g -= x[_slices(axis, 1, -1)]
        g += x[_slices(axis, 0, -2)]
        if scale != 1.0:
            g *= scale
        out[_slices(axis, 2, None)] += g
        middle = out[_slices(axis, 1, -1)]
        middle -= g
        middle -= g
        out[_slices(axis, 0, -2)] += g
    g = np.subtract(x[..., 1:, 1:], x[..., 1:, :-1])
    g -= x[..., :-1, 1:]
    g += x[..., :-1, :-1]
    g *= 2.0 * scale
    out[..., 1:, 1:] += g
    out[..., 1:, :-1] -= g
    out[..., :-1, 1:] -= g
    out[..., :-1, :-1] += g
    return out


def _slices(axis, start, stop):
    return (Ellipsis, slice(start, stop), slice(None)) if axis == 0 else (Ellipsis, slice(start, stop))


def _thin_plate_diagonal(shape, dtype):
    """Diagonal of :func:`thin_plate`: 20 inside, less near the edges."""

    def second(n):  # diagonal of Dxx'Dxx along one axis: 1 per stencil a cell ends, 4 per stencil it centres
        d = np.zeros(n)
        if n >= 3:
            d[1:-1] += 4
            d[2:] += 1
            d[:-2] += 1
        return d

    def boxes(n):  # 2-cell windows holding a cell
        d = np.zeros(n)
        if n >= 2:
            d[1:] += 1
            d[:-1] += 1
        return d

    rows, cols = shape
    diag = second(cols)[None, :] + second(rows)[:, None] + 2 * boxes(rows)[:, None] * boxes(cols)[None, :]
    return diag.astype(dtype)


def _degree(shape, dtype):
    deg = np.full(shape, 4.0, dtype=dtype)
    deg[0, :] -= 1
    deg[-1, :] -= 1
    deg[:, 0] -= 1
    deg[:, -1] -= 1
    return deg


class Operator:
    """``A = W + a L + b T`` on one grid level, with its diagonal and Jacobi damping."""

    def __init__(self, weight, membrane, plate):
        self.weight, self.membrane, self.plate = weight, membrane, plate
        deg = _degree(weight.shape, weight.dtype)
        self.diag = weight + membrane * deg + plate * _thin_plate_diagonal(weight.shape, weight.dtype)
        # Gershgorin: a row of L sums to 2 deg <= 8 in absolute value, one of T to at most 16 + 16 + 32.
        bound = (weight + 2 * membrane * deg + 64 * plate) / np.maximum(self.diag, 1e-30)
        self.omega = weight.dtype.type(1.0 / float(bound.max()))
        self.step = (self.omega / np.maximum(self.diag, 1e-30)).astype(weight.dtype)  # damped Jacobi
        self._dense = None

    def __call__(self, x):
        out = self.weight * x
        if self.membrane:
            laplacian(x, out, self.membrane)
        if self.plate:
            thin_plate(x, out, self.plate)
        return out

    def solve_directly(self, rhs):
        """``A^-1 rhs`` from the inverse of the dense matrix (built once; for a small coarsest grid)."""
        if self._dense is None:
            n = self.weight.size
            matrix = self(np.eye(n, dtype=np.float64).reshape(n, *self.weight.shape)).reshape(n, n)
            matrix += 1e-9 * np.trace(matrix) / n * np.eye(n)  # a whisker of ridge: a grid without data is singular
            with one_blas_thread():  # numpy's OpenBLAS; threads stall on a loaded machine
                self._dense = np.linalg.inv(matrix)
        return (self._dense @ rhs.ravel().astype(np.float64)).reshape(rhs.shape).astype(rhs.dtype)


def prolong(coarse, shape):
    """Cell-centred bilinear interpolation of a coarse grid onto the fine grid of ``shape``."""
    fine = _up(_up(coarse, 0), 1)
    return np.ascontiguousarray(fine[: shape[0], : shape[1]])


def restrict(fine, shape):
    """The transpose of :func:`prolong`: fine values summed onto the coarse grid of ``shape``."""
    return np.ascontiguousarray(_down(_down(fine, 0), 1)[: shape[0], : shape[1]])


def _up(a, axis):
    a = np.moveaxis(a, axis, 0)
    before = np.concatenate([a[:1], a[:-1]])
    after = np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    out[0::2] = 0.75 * a + 0.25 * before
    out[1::2] = 0.75 * a + 0.25 * after
    return np.moveaxis(out, 0, axis)


def _down(a, axis):
    a = np.moveaxis(a, axis, 0)
    if a.shape[0] % 2:  # the row prolong crops off receives nothing
        a = np.concatenate([a, np.zeros_like(a[:1])])
    even, odd = a[0::2], a[1::2]
    out = 0.75 * (even + odd)
    out[1:] += 0.25 * odd[:-1]
    out[:-1] += 0.25 * even[1:]
    out[0] += 0.25 * even[0]  # the edges repeat themselves in _up
    out[-1] += 0.25 * odd[-1]
    return np.moveaxis(out, 0, axis)


def hierarchy(weight, membrane, plate):
    """The operators of every level, finest first."""
    levels = [Operator(weight, membrane, plate)]
    while min(levels[-1].weight.shape) > COARSEST:
        fine = levels[-1]
        shape = ((fine.weight.shape[0] + 1) // 2, (fine.weight.shape[1] + 1) // 2)
        levels.append(Operator(restrict(fine.weight, shape), fine.membrane, fine.plate / 4))
    return levels


def v_cycle(levels, residual, depth=0, sweeps=1):
    """One symmetric V-cycle from ``depth``: an approximate ``A^-1 residual``."""
    op = levels[depth]
    if depth == len(levels) - 1:
        if residual.size <= DIRECT:
            return op.solve_directly(residual)
        # A strip (a tile cropped to thin data): its coarsest grid is long; CG solves it.
        return conjugate_gradient(op, residual, np.zeros_like(residual), lambda r: r / op.diag, 200, 1e-8)[0]
    x = op.step * residual  # the first sweep from zero
    for _ in range(sweeps - 1):
        x += op.step * (residual - op(x))
    coarse = restrict(residual - op(x), levels[depth + 1].weight.shape)
    x += prolong(v_cycle(levels, coarse, depth + 1, sweeps), residual.shape)
    for _ in range(sweeps):
        x += op.step * (residual - op(x))
    return x


def conjugate_gradient(op, rhs, x, precondition, iterations, tol):
    """Preconditioned CG from ``x`` (updated in place); returns ``(x, iterations done)``."""
    r = rhs - op(x)
    z = precondition(r)
    p = z.copy()
    rz = float(np.vdot(r, z))
    limit = tol * (float(np.linalg.norm(rhs)) or 1.0)
    done = 0
    while done < iterations:
        done += 1
        ap = op(p)
        pap = float(np.vdot(p, ap))
        if pap <= 0:  # exact solution reached (p = 0) or lost positivity to rounding
            break
        alpha = rz / pap
        x += alpha * p
        r -= alpha * ap
        if float(np.linalg.norm(r)) < limit:
            break
        z = precondition(r)
        rz_next = float(np.vdot(r, z))
        p *= rz_next / rz
        p += z
        rz = rz_next
    return x, done


def solve(target, weight, membrane, plate, *, x0=None, iterations=10, tol=1e-6, sweeps=1):
    """Minimise ``1/2 sum weight (x - target)^2 + membrane/2 |grad x|^2 + plate/2 |second derivatives|^2``.

    Parameters
    ----------
    target : numpy.ndarray
        2-D; values where ``weight > 0`` (anything, NaN included, elsewhere).
    weight : numpy.ndarray
        2-D, non-negative; some positive.
    membrane, plate : float
        Weights of the first- and second-derivative energies (cell units).
    x0 : numpy.ndarray, optional
        Starting point (warm start); the weighted mean of the targets when not given.
    iterations : int
        Most multigrid-preconditioned CG iterations.
    tol : float
        Stop when the residual falls below ``tol`` times the right-hand side.
    sweeps : int
        Jacobi sweeps before and after each coarse correction.

    Returns
    -------
    numpy.ndarray of float32
    """
    weight = np.asarray(weight, dtype=np.float32)
    rhs = np.where(weight > 0, target, 0).astype(np.float32) * weight
    levels = hierarchy(weight, np.float32(membrane), np.float32(plate))
    if x0 is None:
        x0 = np.full(weight.shape, float(rhs.sum(dtype=np.float64) / weight.sum(dtype=np.float64)), np.float32)
    x = np.array(x0, dtype=np.float32, copy=True)
    x, _ = conjugate_gradient(levels[0], rhs, x, lambda r: v_cycle(levels, r, 0, sweeps), iterations, tol)
    return x
