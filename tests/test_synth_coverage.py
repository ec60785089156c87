"""Coverage masks: the model hits its coverage, is clustered, is reproducible; real masks match their raw files."""

import json
from importlib.resources import files

import numpy as np
import pytest

from defoscan.synth.coverage import (
    HISTOGRAM_BINS,
    _first_arrivals,
    _retarget,
    augment_mask,
    clustered_coverage,
    coverage_statistics,
    draw_coverage,
    fit_clustered_coverage,
    real_masks,
)


def _dihedral(a):
    """The 8 rotations and reflections of an array."""
    out = []
    for k in range(4):
        r = np.rot90(a, k)
        out += [r, r[::-1]]
    return out


def _is_window_of(small, big):
    """True if ``small`` equals some window of ``big``."""
    h, w = small.shape
    return any(
        np.array_equal(big[r : r + h, c : c + w], small)
        for r in range(big.shape[0] - h + 1)
        for c in range(big.shape[1] - w + 1)
    )


# --- the clustered model ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("coverage", [0.02, 0.15, 0.7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_model_hits_requested_coverage(coverage, seed):
    mask, counts = clustered_coverage((96, 128), np.random.default_rng(seed), coverage=coverage, cell_size=50.0)
    assert mask.dtype == bool and mask.shape == (96, 128)
    assert abs(mask.mean() - coverage) <= 0.01
    assert mask.sum() == round(coverage * mask.size)  # in fact to the cell
    assert counts.dtype == np.int32
    assert (counts[mask] >= 1).all() and (counts[~mask] == 0).all()


def test_model_same_seed_same_mask():
    a = clustered_coverage((80, 90), np.random.default_rng(7), coverage=0.2, cell_size=100.0)
    b = clustered_coverage((80, 90), np.random.default_rng(7), coverage=0.2, cell_size=100.0)
    c = clustered_coverage((80, 90), np.random.default_rng(8), coverage=0.2, cell_size=100.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_first_arrival_counts_match_poisson_process():
    # Constant rate r: a cell has data when its first point comes before t, so coverage c = 1 - exp(-r t), and a
    # cell with data holds Poisson(lambda) points given >= 1, lambda = r t = -ln(1 - c): mean lambda / c.
    coverage = 0.5
    mask, counts = _first_arrivals(np.full((400, 500), 3.0), coverage, np.random.default_rng(0))
    lam = -np.log(1.0 - coverage)
    assert mask.mean() == coverage
    assert counts[mask].mean() == pytest.approx(lam / coverage, abs=0.01)  # 1.386; standard error 0.002
    share_one = np.mean(counts[mask] == 1)  # P(N = 1 | N >= 1) = lambda exp(-lambda) / c
    assert share_one == pytest.approx(lam * np.exp(-lam) / coverage, abs=0.01)


def test_counts_saturate_at_max_density():
    # 50 m cells: max_density 400 per km^2 caps the points after the first at 1 per cell on average.
    _, free = clustered_coverage((128, 128), np.random.default_rng(3), coverage=0.5, cell_size=50.0)
    mask, capped = clustered_coverage(
        (128, 128), np.random.default_rng(3), coverage=0.5, cell_size=50.0, max_density=400.0
    )
    assert capped[mask].mean() < 2.0 < free[mask].mean()


def test_model_is_more_clustered_than_uniform():
    for seed in range(3):
        mask, _ = clustered_coverage((128, 128), np.random.default_rng(seed), coverage=0.15, cell_size=50.0)
        uniform = np.zeros(mask.size, dtype=bool)
        uniform[np.random.default_rng(seed).permutation(mask.size)[: mask.sum()]] = True
        model_stats = coverage_statistics(mask, 50.0)
        uniform_stats = coverage_statistics(uniform.reshape(mask.shape), 50.0)
        assert model_stats["gap_p90_m"] > 2.0 * uniform_stats["gap_p90_m"]
        assert model_stats["gap_median_m"] >= 1.4 * uniform_stats["gap_median_m"]
        # Uniform: a cell is surrounded with probability 0.15^8 (3e-7); clustered cells often are.
        assert model_stats["surrounded_fraction"] > 0.02 > uniform_stats["surrounded_fraction"]
        assert model_stats["clusters_per_km2"] < 0.6 * uniform_stats["clusters_per_km2"]


# --- statistics -----------------------------------------------------------------------------------------------------


def test_statistics_hand_computed():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:5, 2:5] = True  # 9 cells, one of them (3, 3) surrounded
    mask[8, 8] = True
    stats = coverage_statistics(mask, 100.0)  # 1 km x 1 km
    assert stats["coverage"] == 0.1
    assert stats["clusters_per_km2"] == pytest.approx(2.0)
    assert stats["cluster_median_km2"] == pytest.approx(5 * 0.01)  # median of 9 and 1 cells
    assert stats["cluster_p90_km2"] == pytest.approx(8.2 * 0.01)  # 1 + 0.9 * (9 - 1) cells
    assert stats["surrounded_fraction"] == pytest.approx(0.1)
    expected_hist = [0.0] * HISTOGRAM_BINS
    expected_hist[0] = expected_hist[3] = 0.5  # sizes 1 and 9 (8..15)
    assert stats["cluster_size_histogram"] == expected_hist
    # Gap distances by brute force: each empty cell to its nearest cell with data, centre to centre.
    full = np.argwhere(mask)
    gaps = [100.0 * np.min(np.hypot(*(full - [r, c]).T)) for r, c in np.argwhere(~mask)]
    assert stats["gap_median_m"] == pytest.approx(np.median(gaps))
    assert stats["gap_p90_m"] == pytest.approx(np.percentile(gaps, 90))
    json.dumps(stats)


def test_statistics_edge_cases():
    diagonal = np.eye(4, dtype=bool)
    assert coverage_statistics(diagonal, 1000.0)["clusters_per_km2"] == pytest.approx(1 / 16)  # 8-connected
    full = coverage_statistics(np.ones((6, 6), dtype=bool), 10.0)
    assert full["gap_p90_m"] == 0.0 and full["surrounded_fraction"] == pytest.approx(16 / 36)
    empty = coverage_statistics(np.zeros((6, 6), dtype=bool), 10.0)
    assert empty["gap_median_m"] is None and empty["clusters_per_km2"] == 0.0


# --- augmentation -------------------------------------------------------------------------------------------------


def test_augment_rotations_and_flips_keep_every_cell():
    rng = np.random.default_rng(0)
    source = rng.random((40, 40)) < 0.3
    for seed in range(8):
        out = augment_mask(source, np.random.default_rng(seed), (40, 40))
        assert out.sum() == source.sum()
        assert any(np.array_equal(out, t) for t in _dihedral(source))


def test_augment_crop_is_a_window_of_a_transform():
    source = np.random.default_rng(1).random((30, 25)) < 0.4
    for seed in range(5):
        out = augment_mask(source, np.random.default_rng(seed), (12, 17))
        assert out.shape == (12, 17)
        assert any(_is_window_of(out, t) for t in _dihedral(source))


def test_augment_tiles_small_sources_by_reflection():
    source = np.random.default_rng(2).random((5, 7)) < 0.5
    for seed in range(5):
        out = augment_mask(source, np.random.default_rng(seed), (13, 16))
        tiled = [np.pad(t, 20, mode="symmetric") for t in _dihedral(source)]
        assert any(_is_window_of(out, t) for t in tiled)


def test_augment_small_angle_keeps_coverage():
    source = np.random.default_rng(3).random((200, 200)) < 0.3
    out = augment_mask(source, np.random.default_rng(4), (64, 64), max_angle=20.0)
    assert out.shape == (64, 64)
    assert abs(out.mean() - 0.3) < 0.035  # binomial standard error 0.007
    # No empty corners: an all-data source stays all data however it is turned.
    assert augment_mask(np.ones((30, 20), bool), np.random.default_rng(5), (25, 25), max_angle=30.0).all()


# --- real masks ---------------------------------------------------------------------------------------------------


def test_real_masks_bundled_and_small():
    path = files("defoscan") / "data" / "coverage" / "real_masks.npz"
    assert path.is_file() and len(path.read_bytes()) < 200_000
    masks = real_masks()
    names = {name for name, _, _ in masks}
    assert {"ustica_egms_l2b_022", "ustica_egms_l2b_117", "amsterdam_depsi"} <= names
    assert any(name.startswith("kirishima") for name in names)
    for _, cell_size, mask in masks:
        assert mask.dtype == bool and cell_size > 0 and 0.0 < mask.mean() < 1.0


@pytest.mark.parametrize("cell_size", [25.0, 50.0, 100.0])
def test_ustica_masks_match_raw_points(l2b_022_frame, l2b_117_frame, cell_size):
    frames = {"ustica_egms_l2b_022": l2b_022_frame, "ustica_egms_l2b_117": l2b_117_frame}
    masks = {(name, size): mask for name, size, mask in real_masks()}
    for name, frame in frames.items():
        frame = frame[np.isfinite(frame["mean_velocity"])]
        x, y = frame["easting"].to_numpy(), frame["northing"].to_numpy()
        # North-up grid, edges on multiples of the cell: column floor(x / c), row from ceil(y / c).
        col, row = np.floor(x / cell_size), np.ceil(y / cell_size)
        shape = (int(row.max() - row.min()) + 1, int(col.max() - col.min()) + 1)
        occupied = len(set(zip(col, row, strict=True)))
        mask = masks[(name, cell_size)]
        assert mask.shape == shape
        assert mask.sum() == occupied
        r, c = (row.max() - row).astype(int), (col - col.min()).astype(int)
        assert mask[r, c].all()


def test_kirishima_mask_is_thinned():
    kirishima = [(size, mask) for name, size, mask in real_masks() if name.startswith("kirishima")]
    assert sorted(size for size, _ in kirishima) == [25.0, 50.0, 100.0]
    for _, mask in kirishima:
        assert 0.2 < mask.mean() < 0.45  # the raw raster has data on 96 % of its cells


# --- draw_coverage, retargeting, fitting --------------------------------------------------------------------------


def test_retarget_thins_to_a_subset_and_grows_to_a_superset():
    source = clustered_coverage((64, 64), np.random.default_rng(0), coverage=0.3, cell_size=50.0)[0]
    thin = _retarget(source, 0.1, np.random.default_rng(1))
    grown = _retarget(source, 0.5, np.random.default_rng(1))
    assert thin.sum() == round(0.1 * source.size) and grown.sum() == round(0.5 * source.size)
    assert not (thin & ~source).any() and not (source & ~grown).any()


def test_draw_coverage_real_and_model():
    mask, counts, info = draw_coverage(np.random.default_rng(0), (64, 80), 50.0, coverage=0.1, real_fraction=1.0)
    assert info["source"] == "real" and info["mask_cell_size"] in (25.0, 50.0, 100.0)
    assert mask.shape == (64, 80) and mask.sum() == round(0.1 * mask.size)
    assert (counts[mask] >= 1).all() and (counts[~mask] == 0).all()
    _, _, info = draw_coverage(np.random.default_rng(0), (64, 80), 50.0, real_fraction=0.0)
    assert info["source"] == "model" and set(info["params"]) == {"scale", "voids", "speckle", "landuse"}
    _, _, info = draw_coverage(np.random.default_rng(0), (32, 32), 1000.0, real_fraction=1.0)
    assert info["source"] == "model"  # no real mask within a factor of 2 of 1 km
    _, _, info = draw_coverage(np.random.default_rng(0), (900, 900), 50.0, real_fraction=1.0)
    assert info["source"] == "model"  # the largest real mask (437 x 370) is under a quarter of 900 x 900
    json.dumps(info)


def test_draw_coverage_reproducible_and_in_range():
    coverages = []
    for seed in range(20):
        a = draw_coverage(np.random.default_rng(seed), (48, 48), 50.0)
        b = draw_coverage(np.random.default_rng(seed), (48, 48), 50.0)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
        assert abs(a[0].mean() - a[2]["coverage"]) <= 0.5 / a[0].size
        coverages.append(a[2]["coverage"])
    assert 0.02 <= min(coverages) and max(coverages) <= 0.7
    assert {draw_coverage(np.random.default_rng(s), (8, 8), 50.0)[2]["source"] for s in range(20)} == {"real", "model"}


def test_fit_round_trip():
    truth = {"scale": 2.0, "voids": 0.45, "speckle": 0.5, "landuse": 1.0}
    mask, _ = clustered_coverage((128, 128), np.random.default_rng(5), coverage=0.15, cell_size=50.0, **truth)
    params = fit_clustered_coverage(mask, 50.0, seed=100)
    assert params["coverage"] == mask.mean()
    assert set(params) == {"coverage", *truth}

    def mean_statistics(params, seeds=range(4)):
        drawn = [clustered_coverage(mask.shape, np.random.default_rng(s), cell_size=50.0, **params)[0] for s in seeds]
        assert all(d.sum() == mask.sum() for d in drawn)  # the coverage exactly
        stats = [coverage_statistics(d, 50.0) for d in drawn]
        return {k: np.mean([s[k] for s in stats]) for k in ("gap_median_m", "gap_p90_m", "clusters_per_km2")} | {
            "surrounded_fraction": np.mean([s["surrounded_fraction"] for s in stats])
        }

    def close(stats, target):
        # Stated tolerances (a single map scatters about 20 % from seed to seed): gap distances within 30 %,
        # cluster density within 40 %, share of surrounded cells within 0.08.
        return (
            abs(stats["gap_median_m"] / target["gap_median_m"] - 1) <= 0.3
            and abs(stats["gap_p90_m"] / target["gap_p90_m"] - 1) <= 0.3
            and abs(stats["clusters_per_km2"] / target["clusters_per_km2"] - 1) <= 0.4
            and abs(stats["surrounded_fraction"] - target["surrounded_fraction"]) <= 0.08
        )

    target = coverage_statistics(mask, 50.0)
    assert close(mean_statistics(params), target)
    # The tolerances bite: small, speckled clusters without empty terrain do not pass for this mask.
    fragmented = {"coverage": params["coverage"], "scale": 0.25, "voids": 0.0, "speckle": 1.5, "landuse": 1.0}
    assert not close(mean_statistics(fragmented), target)
