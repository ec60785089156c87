"""The baseline fillers: exact where they must be, and each the method it claims to be."""

import numpy as np
import pytest
from scipy.interpolate import LinearNDInterpolator

from defoscan.fill.baselines import knn, linear, nearest, softimpute


def _sample(field, mask):
    return np.where(mask, field, np.nan)


def test_nearest_takes_the_nearest_cell():
    v = np.full((5, 7), np.nan)
    v[0, 0], v[4, 6] = 1.0, 9.0
    out = nearest(v, np.isfinite(v).astype(float), np.ones(v.shape, dtype=bool))
    assert out[1, 1] == 1.0 and out[3, 5] == 9.0 and out[0, 0] == 1.0


def test_linear_reproduces_a_plane_inside_the_hull_and_matches_scipy():
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:60, 0:80]
    plane = 0.3 * rows - 0.2 * cols + 4.0
    mask = rng.random(plane.shape) < 0.05
    out = linear(_sample(plane, mask), mask.astype(float), np.ones(plane.shape, dtype=bool))
    points = np.argwhere(mask).astype(float)
    inside = np.isfinite(LinearNDInterpolator(points, plane[mask])(np.argwhere(np.ones(plane.shape)).astype(float)))
    inside = inside.reshape(plane.shape)
    np.testing.assert_allclose(out[inside], plane[inside], atol=1e-9)
    # Outside the hull: nearest.
    near = nearest(_sample(plane, mask), mask.astype(float), np.ones(plane.shape, dtype=bool))
    np.testing.assert_array_equal(out[~inside], near[~inside])


def test_linear_is_piecewise_linear_on_the_delaunay_triangles():
    # Four corners of a square with a non-planar value: every cell inside one of the two triangles is linear.
    v = np.full((11, 11), np.nan)
    v[0, 0], v[0, 10], v[10, 0], v[10, 10] = 0.0, 0.0, 0.0, 10.0
    out = linear(v, np.isfinite(v).astype(float), np.ones(v.shape, dtype=bool))
    # Both diagonals are Delaunay; either way the centre is 0 or 5, and the edges are linear.
    assert out[5, 5] in (pytest.approx(0.0), pytest.approx(5.0))
    np.testing.assert_allclose(out[10, :], np.linspace(0, 10, 11))


def test_knn_is_inverse_distance_weighted_by_count():
    v = np.full((1, 11), np.nan)
    v[0, 0], v[0, 10] = 0.0, 10.0
    w = np.zeros(v.shape)
    w[0, 0], w[0, 10] = 1.0, 3.0
    out = knn(v, w, np.ones(v.shape, dtype=bool), k=2, power=2.0)
    # At the middle both are 5 cells away: weights 1/25 and 3/25.
    assert out[0, 5] == pytest.approx(7.5)
    assert out[0, 0] == 0.0
    # k larger than the data is fine.
    assert np.isfinite(knn(v, w, np.ones(v.shape, dtype=bool), k=12)).all()


def test_knn_fills_only_targets():
    v = np.full((4, 4), np.nan)
    v[0, 0] = 1.0
    target = np.zeros(v.shape, dtype=bool)
    target[1, 1] = True
    out = knn(v, np.isfinite(v).astype(float), target)
    assert out[1, 1] == 1.0 and np.isnan(out[3, 3])


def test_softimpute_recovers_a_low_rank_matrix():
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((80, 3)) @ rng.standard_normal((3, 70)) + 2.0
    mask = rng.random(truth.shape) < 0.5
    out = softimpute(_sample(truth, mask), mask.astype(float), np.ones(truth.shape, dtype=bool), shrinkage=0.01)
    error = np.sqrt(np.mean((out - truth)[~mask] ** 2))
    assert error < 0.1 * truth.std()


@pytest.mark.parametrize("method", [nearest, linear, knn, softimpute])
def test_no_data_gives_nan(method):
    v = np.full((6, 6), np.nan)
    out = method(v, np.zeros(v.shape), np.ones(v.shape, dtype=bool))
    assert np.isnan(out).all()
