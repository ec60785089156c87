import json

import numpy as np
import pytest

from defoscan.synth import geometry, sources
from defoscan.synth.sample import (
    LABEL_FRACTION,
    LABEL_THRESHOLD,
    MIN_SEEN,
    block_mean,
    cell_centres,
    deformation_field,
    draw_sample,
)


def test_same_seed_gives_byte_identical_samples():
    a = draw_sample(np.random.default_rng(7), shape=(64, 64), positive=True)
    b = draw_sample(np.random.default_rng(7), shape=(64, 64), positive=True)
    for name in ("velocity", "count", "deformation", "mask", "spikes"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert json.dumps(a.info, sort_keys=True) == json.dumps(b.info, sort_keys=True)
    c = draw_sample(np.random.default_rng(8), shape=(64, 64), positive=True)
    assert c.velocity.tobytes() != a.velocity.tobytes()


def test_positive_samples_carry_seen_deformation_and_a_consistent_mask():
    rng = np.random.default_rng(11)
    for _ in range(12):
        s = draw_sample(rng, shape=(96, 96), positive=True)
        observed = np.isfinite(s.velocity)
        assert not (s.mask & (np.abs(s.deformation) < LABEL_THRESHOLD)).any()
        assert s.mask[np.unravel_index(np.argmax(np.abs(s.deformation)), s.mask.shape)] == (
            s.info["peak_deformation"] >= LABEL_THRESHOLD
        )
        assert s.info["seen_cells"] == int((s.mask & observed).sum())
        assert s.label == int(s.info["seen_cells"] >= MIN_SEEN)
        assert 1 <= len(s.info["sources"]) <= 3
        assert s.info["peak_deformation"] == pytest.approx(float(np.abs(s.deformation).max()), rel=1e-5)
        assert np.array_equal(observed, s.count > 0)
        json.dumps(s.info)  # labels are JSON


def test_negative_samples_have_no_deformation_and_hard_ones_are_rougher():
    rng = np.random.default_rng(12)
    easy = [draw_sample(rng, shape=(64, 64), positive=False, hard=False) for _ in range(20)]
    hard = [draw_sample(rng, shape=(64, 64), positive=False, hard=True) for _ in range(20)]
    for s in easy + hard:
        assert s.label == 0 and not s.mask.any() and not s.deformation.any() and s.info["sources"] == []
    assert min(s.info["conditions"]["atmosphere"]["sigma"] for s in hard) >= 3.0
    assert np.median([s.info["conditions"]["spike_rate"] for s in hard]) > np.median(
        [s.info["conditions"]["spike_rate"] for s in easy]
    )


def test_coverage_asked_for_is_kept():
    rng = np.random.default_rng(13)
    s = draw_sample(rng, shape=(128, 128), positive=False)
    assert np.isfinite(s.velocity).mean() == pytest.approx(s.info["coverage"]["coverage"], abs=0.01)


def test_deformation_is_the_cell_mean_of_the_los_projection():
    # One Mogi source, 100 m cells (4x4 sub-cells of 25 m): against a hand-made average of the LOS projection.
    shape, cell = (40, 40), 100.0
    params = {"x0": 2000.0, "y0": -2000.0, "depth": 800.0, "volume_rate": -2.0e4}
    look = {"incidence_deg": 39.0, "heading_deg": -12.0, "looking": "right"}
    out, mask = deformation_field([("mogi", params)], shape, cell, look, np.ones(shape, dtype=bool))
    x, y = cell_centres(shape, cell, 4)
    e, n, u = sources.mogi(x, y, **params)
    expected = block_mean(geometry.project_to_los(e, n, u, 39.0, -12.0), 4)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    peak = np.abs(expected).max()
    assert np.array_equal(mask, np.abs(expected) >= max(LABEL_THRESHOLD, LABEL_FRACTION * peak))
    # deflation: the peak is subsidence, above the source (cell 20, 20 has its corner there)
    row, col = np.unravel_index(np.argmin(out), shape)
    assert abs(row - 19.5) <= 1.5 and abs(col - 19.5) <= 1.5 and out.min() < 0


def test_cell_centres_are_north_up():
    x, y = cell_centres((2, 3), 10.0)
    assert x[0].tolist() == [5.0, 15.0, 25.0]
    assert y[:, 0].tolist() == [-5.0, -15.0]


@pytest.mark.parametrize("kind", sources.KINDS)
def test_each_kind_on_the_line_of_sight_matches_a_hand_computed_projection(kind):
    # Descending Sentinel-1, incidence 35 deg, heading -168 deg, 25 m cells (no sub-cells): LOS = -sin(i) cos(h) e
    # + sin(i) sin(h) n + cos(i) u, written out here rather than taken from the geometry module.
    shape, cell = (48, 48), 25.0
    rng = np.random.default_rng(5)
    params, _ = sources.draw_source(kind, rng, (300.0, 900.0, -900.0, -300.0))
    built_up = np.zeros(shape, dtype=bool)
    built_up[10:30, 12:40] = True
    look = {"incidence_deg": 35.0, "heading_deg": -168.0, "looking": "right"}
    out, _ = deformation_field([(kind, params)], shape, cell, look, built_up)
    x, y = cell_centres(shape, cell)
    e, n, u = sources.evaluate_source(kind, params, x, y, built_up=built_up)
    inc, head = np.radians(35.0), np.radians(-168.0)
    by_hand = -np.sin(inc) * np.cos(head) * e + np.sin(inc) * np.sin(head) * n + np.cos(inc) * u
    np.testing.assert_allclose(out, by_hand, rtol=1e-9, atol=1e-9)
    assert np.abs(out).max() > 0
