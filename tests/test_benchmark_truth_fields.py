"""Synthetic maps with a known truth: reproducible from a seed, with the coverage, masks and statistics asked for."""

import numpy as np
import pytest
from scipy import ndimage

from defoscan.benchmark.truth_fields import (
    add_spikes,
    blocked_holdout,
    bowls,
    clustered_mask,
    point_counts,
    smooth_background,
    synthetic_map,
)


def test_same_seed_same_map_other_seed_other_map():
    a, b, c = synthetic_map((96, 128), 0.15, 3), synthetic_map((96, 128), 0.15, 3), synthetic_map((96, 128), 0.15, 4)
    np.testing.assert_array_equal(a.velocity, b.velocity)
    np.testing.assert_array_equal(a.truth, b.truth)
    assert not np.array_equal(np.isnan(a.velocity), np.isnan(c.velocity))


def test_smooth_background_amplitude_and_smoothness():
    rng = np.random.default_rng(0)
    field = smooth_background((256, 256), rng, amplitude=2.0, ramp=0.0)
    assert field.std() == pytest.approx(2.0, rel=1e-6)
    # Smooth: neighbouring cells differ by much less than the field varies.
    assert np.abs(np.diff(field, axis=1)).mean() < 0.25 * field.std()
    ramped = smooth_background((64, 64), np.random.default_rng(1), amplitude=1e-9, ramp=5.0)
    plane = np.c_[np.ones(64 * 64), np.mgrid[0:64, 0:64].reshape(2, -1).T]
    residual = ramped.ravel() - plane @ np.linalg.lstsq(plane, ramped.ravel(), rcond=None)[0]
    assert np.abs(residual).max() < 1e-6  # with no random field, a plane


def test_bowls_mask_marks_where_bowls_are_strong():
    # All subsiding, so overlapping bowls add up instead of cancelling.
    field, mask = bowls((200, 200), np.random.default_rng(5), n=4, min_velocity=2.0, uplift=0.0)
    assert mask.any() and not mask.all()
    assert (field <= 0).all() and np.abs(field[mask]).min() >= 2.0 * 0.999
    # Every strong cell belongs to the mask (one bowl's threshold is 20% of its peak).
    peak = np.abs(field).max()
    assert mask[np.abs(field) > 0.5 * peak].all()


def test_bowls_are_mostly_subsidence():
    signs = []
    for seed in range(40):
        field, _ = bowls((64, 64), np.random.default_rng(seed), n=1, uplift=0.2)
        signs.append(np.sign(field.sum()))
    assert 0.6 < np.mean(np.array(signs) < 0) < 0.95


@pytest.mark.parametrize("coverage", [0.05, 0.15, 0.4])
def test_clustered_mask_has_the_coverage_and_clusters(coverage):
    rng = np.random.default_rng(2)
    mask = clustered_mask((300, 300), coverage, rng)
    assert mask.sum() == round(coverage * mask.size)
    # Clustered: observed cells have more observed neighbours than uniform random cells would.
    neighbours = ndimage.convolve(mask.astype(float), np.ones((5, 5)), mode="constant")[mask] - 1
    assert neighbours.mean() / 24 > 1.5 * coverage


def test_clustered_mask_rejects_bad_coverage():
    with pytest.raises(ValueError, match="coverage"):
        clustered_mask((10, 10), 0.0, np.random.default_rng(0))


def test_point_counts_at_least_one_where_observed_zero_elsewhere():
    rng = np.random.default_rng(3)
    mask = clustered_mask((100, 100), 0.2, rng)
    counts = point_counts(mask, rng)
    assert (counts[mask] >= 1).all() and (counts[~mask] == 0).all()


def test_add_spikes_only_where_allowed_and_returns_a_copy():
    rng = np.random.default_rng(4)
    velocity = np.zeros((50, 50))
    where = np.zeros((50, 50), dtype=bool)
    where[10:40, 10:40] = True
    spiked, spikes = add_spikes(velocity, where, rng, fraction=0.1, amplitude=(10.0, 20.0))
    assert spikes.sum() == 90 and not (spikes & ~where).any()
    assert (np.abs(spiked[spikes]) >= 10).all() and (spiked[~spikes] == 0).all()
    assert (velocity == 0).all()


def test_synthetic_map_noise_scales_with_count_and_nan_off_data():
    m = synthetic_map((256, 256), 0.3, 8, spike_fraction=0.0)
    assert np.isnan(m.velocity[~m.observed]).all() and np.isfinite(m.velocity[m.observed]).all()
    error = (m.velocity - m.truth)[m.observed]
    single = m.count[m.observed] == 1
    many = m.count[m.observed] >= 4
    assert error[single].std() == pytest.approx(1.5, rel=0.15)
    assert error[many].std() < 0.6 * error[single].std()


def test_blocked_holdout_hides_whole_blocks_of_observed_cells():
    rng = np.random.default_rng(6)
    observed = clustered_mask((200, 240), 0.4, rng)
    hidden = blocked_holdout(observed, rng, block=10, fraction=0.1)
    assert not (hidden & ~observed).any()
    assert 0.1 <= hidden.sum() / observed.sum() < 0.13
    # Blocks: the hidden cells' 10 x 10 footprints hold few observed cells left visible.
    labels, n = ndimage.label(ndimage.binary_closing(hidden, np.ones((3, 3)), iterations=2))
    assert n < hidden.sum() / 5


def test_blocked_holdout_gives_the_stratum_its_share():
    rng = np.random.default_rng(7)
    observed = np.ones((200, 200), dtype=bool)
    stratum = np.zeros_like(observed)
    stratum[80:120, 80:120] = True
    hidden = blocked_holdout(observed, rng, block=10, fraction=0.2, stratum=stratum)
    assert 0.15 < hidden[stratum].mean() < 0.3
    assert 0.15 < hidden[~stratum].mean() < 0.3
