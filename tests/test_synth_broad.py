import numpy as np
import pytest

from defoscan.synth import broad
from defoscan.synth.dataset import make_sample, read_manifest, remake_sample, write_dataset
from defoscan.synth.sample import MIN_SEEN, deformation_field, draw_sample


def test_conditions_stay_in_the_broad_ranges_and_hard_blobs_are_sized_in_cells():
    rng = np.random.default_rng(1)
    for _ in range(200):
        c = broad.draw_conditions(rng, cell_size=200.0)
        assert 0.5 <= c["atmosphere"]["sigma"] <= 8.0 and 300.0 <= c["atmosphere"]["length"] <= 50_000.0
        assert 0.5 <= c["point_noise"] <= 6.0 and 0.0 <= c["ramp_gradient"] <= 1.0
        assert 0.0 <= c["spike_rate"] <= 0.05 and 0.03 <= c["coverage"] <= 0.9
        hard = broad.draw_conditions(rng, hard=True, cell_size=200.0)
        assert 3.0 <= hard["atmosphere"]["sigma"] <= 8.0
        assert 10 * 200.0 <= hard["atmosphere"]["length"] <= 100 * 200.0  # 10-100 cells of 200 m
        assert hard["ramp_gradient"] >= 0.3 and hard["spike_rate"] >= 0.02


def test_sources_are_stretched_with_the_cell_and_scaled_to_their_peak_rate():
    rng = np.random.default_rng(2)
    scales = [broad.draw_source(rng, "dome", (64, 64), 200.0)[2]["scale"] for _ in range(300)]
    assert 4 * 0.4 <= min(scales) and max(scales) <= 4 * 3.0  # 200 m cells: 4 x the 50 m stretch
    look = {"incidence_deg": 0.0, "heading_deg": 0.0}  # vertical look: LOS = up
    params = {"x0": 1600.0, "y0": -1600.0, "depth": 500.0, "volume_rate": -1e5, "poisson": 0.25}
    built = np.ones((64, 64), dtype=bool)
    # stretched by 2 about the origin: the same bowl as the source at (3200, -3200) with depth 1000 m, rescaled
    stretched, _ = deformation_field([("mogi", params, {"scale": 2.0, "peak": 40.0})], (64, 64), 100.0, look, built)
    big = {**params, "x0": 3200.0, "y0": -3200.0, "depth": 1000.0}
    plain, _ = deformation_field([("mogi", big)], (64, 64), 100.0, look, built)
    assert np.abs(stretched).max() == pytest.approx(40.0)
    np.testing.assert_allclose(stretched, plain * 40.0 / np.abs(plain).max(), rtol=1e-3, atol=1e-3)


def test_window_noise_is_the_robust_spread_of_the_observed_cells():
    noise_field = np.array([[0.0, 1.0, -1.0, 100.0], [5.0, 5.0, 5.0, 5.0]])
    observed = np.array([[True, True, True, True], [False] * 4])
    assert broad.window_noise(noise_field, observed) == pytest.approx(1.4826)  # median 0.5 .. MAD 1
    assert broad.window_noise(noise_field, np.zeros_like(observed)) == 0.0


def test_only_cells_above_twice_the_noise_make_a_positive():
    deformation = np.array([[1.0, 2.5, 3.5, 10.0]])
    mask = np.ones((1, 4), dtype=bool)
    observed = np.array([[True, True, True, False]])
    noise_field = np.array([[-1.0, 0.0, 1.0, 0.0]])  # MAD 1: spread 1.4826, threshold 2.97 mm/yr
    seen, extra = broad.seen_cells(deformation, mask, observed, noise_field)
    assert seen == 1 and extra["noise_spread"] == pytest.approx(1.4826)  # 10 mm/yr is not observed


def test_broad_positives_are_detectable_and_negatives_have_no_signal():
    for i in range(12):
        s = make_sample(3, i, positive=i % 2 == 0, hard=i % 4 == 1, shape=(64, 64), cell_size=100.0, conditions="broad")
        assert s.info["conditions_mode"] == "broad" and s.label == int(i % 2 == 0)
        if s.label:
            observed = s.count > 0
            detectable = observed & s.mask & (np.abs(s.deformation) >= 2.0 * s.info["noise_spread"])
            assert detectable.sum() >= MIN_SEEN
            assert all({"scale", "peak"} <= set(source) for source in s.info["sources"])
        else:
            assert not s.info["sources"] and not s.deformation.any()


def test_unknown_conditions_and_broad_with_a_profile_are_refused(tmp_path):
    from defoscan.errors import InputError

    with pytest.raises(ValueError, match="conditions must be one of default, broad"):
        draw_sample(np.random.default_rng(0), conditions="fitted")
    with pytest.raises(InputError, match="unknown conditions"):
        write_dataset(tmp_path / "a", 4, seed=1, conditions="nope")


def test_a_broad_dataset_records_its_mode_and_remakes_its_samples(tmp_path):
    out = tmp_path / "broad"
    write_dataset(out, 6, seed=4, shape=(32, 32), cell_size=200.0, shard_size=3, workers=1, conditions="broad")
    manifest = read_manifest(out)
    assert manifest["conditions"] == "broad" and manifest["cell_size"] == 200.0
    again = remake_sample(out, 4)
    from defoscan.synth.dataset import read_dataset

    stored = list(read_dataset(out))[4]
    np.testing.assert_array_equal(again.velocity, stored.velocity)
    np.testing.assert_array_equal(again.mask, stored.mask)
    default = tmp_path / "default"
    assert "conditions" not in write_dataset(default, 2, seed=4, shape=(32, 32), workers=1)
