"""The thresholding baseline on synthetic maps with known answers."""

import numpy as np
import pytest

from defoscan.threshold import (
    ThresholdParameters,
    background_at,
    block_medians,
    block_size,
    robust_background,
    threshold_detect,
)


def noisy_map(shape=(200, 200), sigma=1.0, seed=0):
    return np.random.default_rng(seed).normal(0.0, sigma, shape)


def bowl(shape, centre, radius, amplitude):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r2 = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / radius**2
    return amplitude * np.exp(-r2)


def test_background_removes_ramp_and_offset_but_keeps_a_small_bowl():
    shape = (200, 200)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    ramp = 5.0 + 0.05 * xx - 0.03 * yy
    signal = bowl(shape, (100, 100), 5, -20.0)
    background = robust_background(ramp + signal, cell_size=50.0, background_size=2500.0)
    residual = ramp + signal - background
    assert np.abs(residual[signal > -0.01]).max() < 0.5  # the ramp is gone away from the bowl
    assert residual[100, 100] < -18.0  # the bowl, 10 cells across in 50-cell blocks, stays


def test_background_ignores_no_data_and_fills_everywhere():
    values = noisy_map() + 7.0
    values[:, :120] = np.nan  # sea on the west
    background = robust_background(values, cell_size=50.0, background_size=2500.0)
    assert np.isfinite(background).all()
    assert np.nanmedian(background) == pytest.approx(7.0, abs=0.2)


@pytest.mark.parametrize("amplitude, sign", [(-15.0, "subsidence"), (12.0, "uplift")])
def test_finds_one_bowl_with_its_sign_and_velocity(amplitude, sign):
    shape = (200, 200)
    velocity = noisy_map() + bowl(shape, (60, 140), 6, amplitude)
    labels, regions, noise = threshold_detect(velocity, np.ones(shape, int), 50.0)
    assert len(regions) == 1
    (region,) = regions
    assert region["sign"] == sign
    assert noise["sigma_mm_yr"] == pytest.approx(1.0, rel=0.15)
    assert np.sign(region["peak_velocity"]) == np.sign(amplitude)
    assert abs(region["peak_velocity"]) == pytest.approx(abs(amplitude), abs=3.5)
    rows, cols = np.nonzero(labels == 1)
    assert abs(rows.mean() - 60) < 2 and abs(cols.mean() - 140) < 2
    assert 0.0 < region["score"] <= 1.0


def test_pure_noise_gives_nothing():
    labels, regions, _ = threshold_detect(noisy_map(seed=3), np.ones((200, 200), int), 50.0)
    assert regions == [] and not labels.any()


def test_subsidence_and_uplift_side_by_side_stay_apart():
    shape = (200, 200)
    velocity = noisy_map() + bowl(shape, (100, 80), 6, -15.0) + bowl(shape, (100, 120), 6, 15.0)
    _, regions, _ = threshold_detect(velocity, np.ones(shape, int), 50.0)
    assert sorted(r["sign"] for r in regions) == ["subsidence", "uplift"]


def test_sparse_points_of_one_area_form_one_region():
    shape = (200, 200)
    velocity = noisy_map() + bowl(shape, (100, 100), 8, -20.0)
    sparse = np.full(shape, np.nan)
    sparse[::2, ::2] = velocity[::2, ::2]  # every other cell empty: a gap of one cell everywhere
    _, regions, _ = threshold_detect(sparse, np.isfinite(sparse).astype(int), 50.0)
    assert len(regions) == 1


def test_minimum_size_drops_single_cells():
    velocity = noisy_map()
    velocity[50, 50] = -40.0  # one spike
    _, regions, _ = threshold_detect(velocity, np.ones(velocity.shape, int), 50.0)
    assert regions == []
    one_cell = ThresholdParameters(min_cells=1, min_points=1)
    labels, regions, _ = threshold_detect(velocity, np.ones(velocity.shape, int), 50.0, one_cell)
    # Without the size rule the spike is found first, among many single noise cells beyond 3 sigma.
    assert regions[0]["peak_velocity"] == pytest.approx(-40.0) and labels[50, 50] == 1
    assert len(regions) > 10


def test_velocity_floor_stops_quiet_maps_from_flagging_sub_mm_motion():
    shape = (200, 200)
    quiet = noisy_map(sigma=0.2) + bowl(shape, (100, 100), 8, -1.5)  # 7 sigma, but only 1.5 mm/yr
    _, regions, _ = threshold_detect(quiet, np.ones(shape, int), 50.0)
    assert regions == []
    _, regions, _ = threshold_detect(quiet, np.ones(shape, int), 50.0, ThresholdParameters(min_velocity=0.5))
    assert len(regions) == 1


def test_all_nan_map_gives_nothing():
    labels, regions, _ = threshold_detect(np.full((10, 10), np.nan), np.zeros((10, 10), int), 50.0)
    assert regions == [] and not labels.any()


@pytest.mark.parametrize("origin", [(0, 0), (7, -13), (-100003, 8017)])
def test_block_medians_then_each_chunk_equal_the_whole_map_background(origin):
    rng = np.random.default_rng(5)
    shape = (150, 170)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    velocity = 2.0 + 0.04 * xx - 0.02 * yy + noisy_map(shape, seed=6)
    velocity[rng.random(shape) < 0.3] = np.nan
    velocity[:, :40] = np.nan  # sea: empty blocks take their nearest block's median
    whole = robust_background(velocity, 50.0, 1000.0, origin=origin)
    medians, first = block_medians(velocity, 50.0, 1000.0, origin=origin)
    block = block_size(50.0, 1000.0)
    assert block == 20 and first == (origin[0] // block, origin[1] // block)
    assert medians.shape == (-(-(origin[0] % block + 150) // block), -(-(origin[1] % block + 170) // block))
    assert np.isfinite(whole).all()
    for chunk in (16, 23, 64):
        for r in range(0, shape[0], chunk):
            for c in range(0, shape[1], chunk):
                part = velocity[r : r + chunk, c : c + chunk]
                corner = (origin[0] + r, origin[1] + c)
                got = background_at(medians, first, 50.0, 1000.0, corner, part.shape)
                assert np.array_equal(got, whole[r : r + chunk, c : c + chunk])


def test_block_medians_read_band_by_band_from_zarr_equal_numpy(tmp_path):
    zarr = pytest.importorskip("zarr")
    velocity = noisy_map((90, 75), seed=2)
    velocity[10:50, 5:30] = np.nan
    stored = zarr.create_array(str(tmp_path / "v.zarr"), shape=velocity.shape, chunks=(32, 32), dtype="float64")
    stored[...] = velocity
    expected = block_medians(velocity, 50.0, 600.0, origin=(-55, 31))
    got = block_medians(stored, 50.0, 600.0, origin=(-55, 31))
    assert got[1] == expected[1] and np.array_equal(got[0], expected[0])


def test_blocks_anchored_to_a_multiple_of_the_block_are_the_corner_anchored_ones():
    velocity = noisy_map((130, 110), seed=4) + np.linspace(0.0, 9.0, 110)
    velocity[40:90, 60:] = np.nan
    corner = robust_background(velocity, 50.0, 1000.0)  # origin (0, 0): blocks from the array's corner, as before
    for origin in ((20, -40), (-200000, 140)):
        assert np.array_equal(robust_background(velocity, 50.0, 1000.0, origin=origin), corner)
    shifted = robust_background(velocity, 50.0, 1000.0, origin=(7, 3))
    assert not np.array_equal(shifted, corner)  # other blocks, other medians
    assert np.median(np.abs(shifted - corner)) < 0.5  # but about the same background


def test_a_map_without_data_has_no_background():
    medians, _ = block_medians(np.full((30, 30), np.nan), 50.0, 500.0, origin=(3, 4))
    assert np.isnan(medians).all()
    assert np.isnan(robust_background(np.full((30, 30), np.nan), 50.0, 500.0, origin=(3, 4))).all()


def interleaved_map(shape=(60, 60), value=10.0):
    """Subsidence and uplift cells on alternate diagonals one empty cell apart: each sign's closing (gap 1) bridges
    across the other's cells, as on the Tianjin map of Tay et al. (2022) (issue 16 item 3)."""
    rng = np.random.default_rng(3)
    velocity = rng.normal(0.0, 0.5, shape)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    patch = (rows >= 20) & (rows < 40) & (cols >= 20) & (cols < 40)
    diagonal = (rows + cols) % 4
    velocity[patch & (diagonal == 0)] = -value
    velocity[patch & (diagonal == 2)] = value
    velocity[patch & (diagonal % 2 == 1)] = np.nan
    return velocity, np.ones(shape, dtype=int)


@pytest.mark.parametrize("detector", ["threshold", "gistar", "ada"])
def test_interleaved_subsidence_and_uplift_each_region_owns_its_cells(detector):
    from defoscan.ada import ada_detect
    from defoscan.hotspot import HotspotParameters, gistar_detect

    velocity, count = interleaved_map()
    run = {
        "threshold": lambda: threshold_detect(velocity, count, 50.0),
        "gistar": lambda: gistar_detect(velocity, count, 50.0, HotspotParameters(radius=60.0)),
        "ada": lambda: ada_detect(velocity, count, 50.0),
    }[detector]
    labels, regions, _ = run()
    assert {"subsidence", "uplift"} <= {r["sign"] for r in regions}
    assert sorted(set(np.unique(labels)) - {0}) == [r["label"] for r in regions]  # every region has cells
    for region in regions:
        cells = labels == region["label"]
        down = -1 if region["sign"] == "subsidence" else 1
        assert np.sign(region["mean_relative"]) == np.sign(region["peak_relative"]) == down
        # a region's footprint never takes a flagged cell of the other sign
        assert not (cells & (down * velocity < -5.0)).any()


def test_a_subsidence_inside_the_gap_bridged_by_an_uplift_keeps_its_cells_and_polygon():
    """The old failure of the Tianjin map: the uplift's closing took every cell of a subsidence region, whose label
    then had no cell and no polygon (``KeyError`` in detect)."""
    velocity, count = np.random.default_rng(5).normal(0.0, 0.5, (60, 60)), np.ones((60, 60), dtype=int)
    velocity[15:35, 15:35] = 20.0  # a strong uplift...
    velocity[24:26, 24:26] = -10.0  # ...round a small collapse its closing bridges over
    labels, regions, _ = threshold_detect(velocity, count, 50.0)
    assert [r["sign"] for r in regions] == ["uplift", "subsidence"]
    assert sorted(set(np.unique(labels)) - {0}) == [1, 2]
    assert (labels[24:26, 24:26] == 2).all() and (labels[15:35, 15:35] == 1).sum() == 400 - 4
