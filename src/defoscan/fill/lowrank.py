"""Low-rank tools: a randomized truncated SVD and the singular value soft threshold (the nuclear norm's prox).

A full SVD of a 1024 x 1024 tile costs about a second; the randomized range finder of Halko, Martinsson & Tropp
(2011) gets the leading ``rank`` components in a few matrix products. Passing the right singular vectors of the
previous iterate as ``basis`` (subspace iteration) makes one power step enough inside an iterative solver.

The small factorisations (QR of a 1024 x 56 panel, SVD of 56 x 1024) run with OpenBLAS limited to one thread:
when other processes keep the cores busy, OpenBLAS's threads wait for time slices inside every LAPACK call
and a 1 ms QR takes a second (measured on the benchmark machine under load); one thread is as fast when idle.
"""

import contextlib
import ctypes
import functools
import glob
import os

import numpy as np


def randomized_svd(a, rank, rng, *, oversample=8, power_steps=1, basis=None):
    """Leading singular triplets of ``a`` by a randomized range finder.

    Parameters
    ----------
    a : numpy.ndarray
        2-D.
    rank : int
        Components wanted.
    rng : numpy.random.Generator
    oversample : int
        Extra random directions, for accuracy of the last wanted components.
    power_steps : int
        Subspace (power) iterations; each sharpens the spectrum's decay.
    basis : numpy.ndarray, optional
        ``(columns, m)`` starting right subspace (e.g. the previous iterate's ``V``) instead of a random one.

    Returns
    -------
    u, s, vt : numpy.ndarray
        ``a ~ u @ diag(s) @ vt`` with at most ``rank`` components.
    """
    with one_blas_thread():
        return _randomized_svd(a, rank, rng, oversample, power_steps, basis)


def _randomized_svd(a, rank, rng, oversample, power_steps, basis):
    m, n = a.shape
    width = min(rank + oversample, m, n)
    if basis is None or basis.shape[1] < width:
        start = rng.standard_normal((n, width)).astype(a.dtype)
        if basis is not None:
            start[:, : basis.shape[1]] = basis
    else:
        start = basis[:, :width]
    q, _ = np.linalg.qr(a @ start)
    for _ in range(power_steps):
        z, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ z)
    u_small, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    u = q @ u_small
    return u[:, :rank], s[:rank], vt[:rank]


def soft_threshold_svd(a, threshold, rank, rng, **options):
    """The proximal map of ``threshold * ||X||_*`` at ``a``, from the leading ``rank`` singular values.

    Exact when fewer than ``rank`` singular values exceed ``threshold``; otherwise the components beyond
    ``rank`` are dropped (a truncated prox).

    Returns
    -------
    numpy.ndarray
    """
    u, s, vt = randomized_svd(a, rank, rng, **options)
    keep = s > threshold
    return (u[:, keep] * (s[keep] - threshold)) @ vt[keep]


def spectral_norm(a, rng, *, steps=8):
    """Estimate of the largest singular value by power iteration."""
    v = rng.standard_normal(a.shape[1])
    sigma = 0.0
    for _ in range(steps):
        u = a @ v
        sigma = np.linalg.norm(u)
        if sigma == 0:
            return 0.0
        v = a.T @ (u / sigma)
        v /= np.linalg.norm(v)
    return float(sigma)


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with numpy's OpenBLAS on one thread (restored after); a no-op where it cannot be set."""
    controls = _openblas_thread_controls()
    if controls is None:
        yield
        return
    get, set_ = controls
    before = get()
    set_(1)
    try:
        yield
    finally:
        set_(before)


@functools.cache
def _openblas_thread_controls():
    """``(get, set)`` of the thread count of the OpenBLAS bundled with numpy's wheel, or None."""
    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (
            ("scipy_openblas", "64_"),
            ("scipy_openblas", ""),
            ("openblas", "64_"),
            ("openblas", ""),
        ):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None
