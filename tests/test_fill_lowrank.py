"""Randomized SVD and the singular value threshold against numpy's full SVD."""

import numpy as np
import pytest

from defoscan.fill.lowrank import one_blas_thread, randomized_svd, soft_threshold_svd, spectral_norm


def _low_rank(rng, shape=(120, 90), rank=5):
    return rng.standard_normal((shape[0], rank)) @ (
        rng.standard_normal((rank, shape[1])) * np.arange(rank, 0, -1)[:, None]
    )


def test_randomized_svd_recovers_a_low_rank_matrix():
    rng = np.random.default_rng(0)
    a = _low_rank(rng)
    u, s, vt = randomized_svd(a, 5, rng)
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False)[:5], rtol=1e-8)
    np.testing.assert_allclose(u @ np.diag(s) @ vt, a, atol=1e-8 * np.abs(a).max())


def test_randomized_svd_warm_basis_gives_the_same_leading_values():
    rng = np.random.default_rng(1)
    a = _low_rank(rng, rank=8) + 0.01 * rng.standard_normal((120, 90))
    _, s0, vt = randomized_svd(a, 8, rng)
    _, s1, _ = randomized_svd(a, 8, rng, basis=vt.T, power_steps=0)
    np.testing.assert_allclose(s1, s0, rtol=1e-3)


def test_soft_threshold_is_the_nuclear_norm_prox():
    rng = np.random.default_rng(2)
    a = _low_rank(rng, rank=6)
    s = np.linalg.svd(a, compute_uv=False)
    tau = 0.5 * (s[2] + s[3])
    z = soft_threshold_svd(a, tau, 10, rng)
    expected = np.maximum(s - tau, 0)
    np.testing.assert_allclose(np.linalg.svd(z, compute_uv=False)[:6], expected[:6], atol=1e-8 * s[0])
    assert np.linalg.matrix_rank(z, tol=1e-6 * s[0]) == 3


def test_spectral_norm():
    a = _low_rank(np.random.default_rng(3))
    assert spectral_norm(a, np.random.default_rng(4), steps=30) == pytest.approx(np.linalg.norm(a, 2), rel=1e-6)


def test_one_blas_thread_restores_the_setting():
    from defoscan.fill.lowrank import _openblas_thread_controls

    controls = _openblas_thread_controls()
    before = controls[0]() if controls else None
    with one_blas_thread():
        if controls:
            assert controls[0]() == 1
    assert (controls[0]() if controls else None) == before
