import numpy as np

from defoscan.model.augment import augment_window, coverage_dropout, dihedral
from defoscan.synth.sample import MIN_SEEN


def test_dihedral_gives_eight_distinct_invertible_transforms():
    a = np.arange(12.0).reshape(3, 4)
    images = {dihedral(a, k, f).tobytes() + bytes(dihedral(a, k, f).shape) for k in range(4) for f in (0, 1)}
    assert len(images) == 8
    for k in range(4):
        back = np.rot90(dihedral(a, k, False), -k)
        assert np.array_equal(back, a)


def test_dropout_removes_about_the_share_asked_in_patches():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((64, 64))
    v[rng.random((64, 64)) < 0.3] = np.nan
    observed = np.isfinite(v).sum()
    out = coverage_dropout(v, rng, fraction=0.4, blob_cells=4.0)
    removed = observed - np.isfinite(out).sum()
    assert abs(removed / observed - 0.4) < 0.02
    assert np.array_equal(out[np.isfinite(out)], v[np.isfinite(out)])  # kept cells unchanged
    # patches, not salt: removed cells have mostly removed neighbours
    gone = np.isfinite(v) & ~np.isfinite(out)
    neighbours = gone[1:, :] & gone[:-1, :]
    assert neighbours.sum() / gone[1:, :].sum() > 0.6


def test_dropout_keeps_a_positive_seen():
    rng = np.random.default_rng(2)
    v = np.ones((32, 32))
    mask = np.zeros((32, 32), bool)
    mask[10:12, 10:13] = True  # six cells of deformation
    for _ in range(50):
        out = coverage_dropout(v, rng, fraction=0.9, blob_cells=2.0, mask=mask)
        assert (np.isfinite(out) & mask).sum() >= MIN_SEEN


def test_augment_moves_mask_and_velocity_together():
    rng = np.random.default_rng(3)
    mask = np.zeros((16, 16), bool)
    mask[2:5, 3:9] = True
    v = np.where(mask, 5.0, 0.0)
    for _ in range(20):
        out, m = augment_window(v, rng, mask=mask, dropout=False)
        assert np.array_equal(np.abs(out) == 5.0, m)
