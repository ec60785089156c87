"""The multigrid-CG solver against a direct sparse solve of the same quadratic problem."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from defoscan.fill.multigrid import laplacian, prolong, restrict, solve, thin_plate


def _sparse_laplacian(rows, cols):
    """The 4-neighbour graph Laplacian built independently, as a sparse matrix."""

    def path(n):
        d = np.full(n, 2.0)
        d[[0, -1]] = 1.0
        return sp.diags([d, -np.ones(n - 1), -np.ones(n - 1)], [0, 1, -1])

    return sp.kron(path(rows), sp.eye(cols)) + sp.kron(sp.eye(rows), path(cols))


def _sparse_thin_plate(rows, cols):
    """``Dxx'Dxx + Dyy'Dyy + 2 Dxy'Dxy`` from sparse difference matrices, built independently."""

    def second(n):
        return sp.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n))

    def first(n):
        return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n))

    dxx = sp.kron(sp.eye(rows), second(cols))
    dyy = sp.kron(second(rows), sp.eye(cols))
    dxy = sp.kron(first(rows), first(cols))
    return dxx.T @ dxx + dyy.T @ dyy + 2 * dxy.T @ dxy


def test_thin_plate_matches_the_second_differences_and_spares_planes():
    x = np.random.default_rng(5).standard_normal((8, 11))
    expected = (_sparse_thin_plate(8, 11) @ x.ravel()).reshape(8, 11)
    np.testing.assert_allclose(thin_plate(x), expected, atol=1e-12)
    rows, cols = np.mgrid[0:8, 0:11]
    np.testing.assert_allclose(thin_plate(0.3 * rows - 2.0 * cols + 1.0), 0.0, atol=1e-12)
    assert np.abs(thin_plate(rows * cols * 1.0)).max() > 0.1  # a saddle is curved


def test_laplacian_matches_the_graph_laplacian():
    x = np.random.default_rng(0).standard_normal((7, 9))
    expected = (_sparse_laplacian(7, 9) @ x.ravel()).reshape(7, 9)
    np.testing.assert_allclose(laplacian(x), expected, atol=1e-12)
    np.testing.assert_allclose(laplacian(np.full((5, 6), 3.0)), 0.0)


@pytest.mark.parametrize("fine", [(16, 16), (17, 23), (9, 4)])
def test_restrict_is_the_transpose_of_prolong(fine):
    rng = np.random.default_rng(1)
    coarse = ((fine[0] + 1) // 2, (fine[1] + 1) // 2)
    c, f = rng.standard_normal(coarse), rng.standard_normal(fine)
    assert np.vdot(prolong(c, fine), f) == pytest.approx(np.vdot(c, restrict(f, coarse)), rel=1e-12)


def test_prolong_keeps_constants_and_linear_ramps_inside():
    np.testing.assert_allclose(prolong(np.full((4, 5), 2.5), (8, 10)), 2.5)
    coarse = np.tile(np.arange(6.0), (3, 1))  # coarse cell centres 0..5 -> fine centres (j - 0.5) / 2
    fine = prolong(coarse, (6, 12))
    np.testing.assert_allclose(fine[:, 1:-1], np.tile((np.arange(1, 11) - 0.5) / 2, (6, 1)))


@pytest.mark.parametrize(("membrane", "plate"), [(1.0, 0.0), (0.0, 3.0), (0.3, 3.0)])
def test_solve_matches_a_direct_solve(membrane, plate):
    rng = np.random.default_rng(2)
    rows, cols = 45, 61
    target = rng.standard_normal((rows, cols)).cumsum(axis=0).cumsum(axis=1) * 0.1
    weight = np.where(rng.random((rows, cols)) < 0.1, rng.integers(1, 5, (rows, cols)), 0).astype(float)
    lap = _sparse_laplacian(rows, cols)
    a = sp.diags(weight.ravel()) + membrane * lap + plate * _sparse_thin_plate(rows, cols)
    expected = spsolve(a.tocsc(), weight.ravel() * target.ravel()).reshape(rows, cols)
    got = solve(target, weight, membrane, plate, iterations=60, tol=1e-7)
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()


def test_solve_reaches_across_a_wide_gap_in_few_iterations():
    # Data only in two strips 216 cells apart: the fill between them is a ramp, found in 20 iterations (plain CG
    # needs hundreds).
    rows, cols = 64, 256
    target = np.tile(np.linspace(-5.0, 5.0, cols), (rows, 1))
    weight = np.zeros((rows, cols))
    weight[:, :20] = weight[:, -20:] = 1.0
    got = solve(target, weight, 0.0, 1.0, iterations=20, tol=1e-9)
    assert np.abs(got - target).max() < 0.05


def test_solve_warm_start_converged_stays():
    rng = np.random.default_rng(3)
    target = rng.standard_normal((40, 40))
    weight = (rng.random((40, 40)) < 0.3).astype(float)
    x = solve(target, weight, 0.3, 3.0, iterations=60, tol=1e-7)
    again = solve(target, weight, 0.3, 3.0, x0=x, iterations=1)
    np.testing.assert_allclose(again, x, atol=1e-4)
