"""Scanning a map coarser than the model's cells on the model's own cells: interpolation, the factor, exactness
by block and by chunk, and a map smaller than a window of its coarse cells still scanned."""

import numpy as np
import pytest
import zarr

import defoscan.scan_upsampled as scan_upsampled
from defoscan.model import build_model, load_model, save_model
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels
from defoscan.scan import scan_probability
from defoscan.scan_store import scan_store, write_map
from defoscan.scan_upsampled import coarsen, scan_factor, upsample

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE = {**DEFAULT_RECIPE, "window": 32, "localise": "product", "cell_size": 50.0}
ORIGIN = (-300, 41)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    model = build_model("compact", input_channels(RECIPE), width=8, fcn=True, seed=3).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(model, path, {"input": RECIPE, "threshold": 0.5})
    return path


@pytest.fixture(scope="module")
def coarse_map():
    rng = np.random.default_rng(4)
    velocity = rng.normal(scale=2.0, size=(30, 26)).astype(np.float32)
    velocity[10:18, 8:16] -= 20.0
    velocity[rng.random(velocity.shape) < 0.25] = np.nan
    return velocity


def test_upsample_holds_a_constant_reproduces_a_ramp_and_keeps_no_data():
    constant = np.full((3, 4), 7.0)
    assert np.allclose(upsample(constant, 5), 7.0) and upsample(constant, 5).shape == (15, 20)
    ramp = np.tile(np.arange(6, dtype=float), (4, 1))  # 1 per coarse cell along the columns
    fine = upsample(ramp, 4)
    # Between the outermost centres the fine cells lie on the line: a quarter of a coarse cell apart.
    assert np.allclose(np.diff(fine[0, 2:-2]), 0.25)
    holed = ramp.copy()
    holed[1, 2] = np.nan
    fine = upsample(holed, 4)
    assert np.isnan(fine[4:8, 8:12]).all() and np.isfinite(fine).sum() == fine.size - 16
    # Its neighbours are interpolated from the finite cells only: a constant row stays constant beside the hole.
    assert np.allclose(upsample(np.where(np.isnan(holed), np.nan, 3.0), 4)[np.isfinite(fine)], 3.0)


def test_coarsen_is_the_mean_of_each_block_over_its_finite_cells():
    fine = np.arange(16, dtype=float).reshape(4, 4)
    fine[0, 0] = np.nan
    fine[2:, 2:] = np.nan
    result = coarsen(fine, 2)
    assert result[0, 0] == pytest.approx((1 + 4 + 5) / 3) and np.isnan(result[1, 1])
    assert result[0, 1] == pytest.approx((2 + 3 + 6 + 7) / 4)


@pytest.mark.parametrize(
    "cell, recipe, expected",
    [
        (None, RECIPE, 1),
        (50.0, RECIPE, 1),
        (100.0, RECIPE, 1),  # within the model's support (grid.MODEL_SUPPORT_RATIO): scanned as it is
        (250.0, RECIPE, 5),
        (500.0, RECIPE, 10),
        (500.0, {**RECIPE, "cell_sizes": [50.0, 200.0]}, 1),  # within 2.5 x the largest of a multi-scale model
        (1000.0, {**RECIPE, "cell_sizes": [50.0, 200.0]}, 5),
    ],
)
def test_scan_factor(cell, recipe, expected):
    assert scan_factor(cell, recipe) == expected


def test_the_upsampled_scan_is_the_fine_scan_coarsened(tiny_model, coarse_map):
    model, card = load_model(tiny_model)
    fine = scan_probability(upsample(coarse_map, 5), model, card["input"], origin=(ORIGIN[0] * 5, ORIGIN[1] * 5))
    expected = coarsen(fine, 5)
    result = scan_upsampled.scan_upsampled(coarse_map, model, card["input"], 5, origin=ORIGIN)
    assert np.array_equal(np.isfinite(result), np.isfinite(coarse_map))
    assert np.nanmax(np.abs(result - expected)) < 1e-5


def test_sub_blocks_give_the_same_map(tiny_model, coarse_map, monkeypatch):
    model, card = load_model(tiny_model)
    whole = scan_upsampled.scan_upsampled(coarse_map, model, card["input"], 5, origin=ORIGIN)
    monkeypatch.setattr(scan_upsampled, "FINE_BLOCK", 5 * 18)  # sub-cores of 4 coarse cells with 7 of context
    blocked = scan_upsampled.scan_upsampled(coarse_map, model, card["input"], 5, origin=ORIGIN)
    assert np.array_equal(np.isnan(whole), np.isnan(blocked)) and np.nanmax(np.abs(whole - blocked)) < 1e-5


def test_the_store_scans_a_coarse_map_on_the_models_cells_chunk_by_chunk(tiny_model, coarse_map, tmp_path):
    model, card = load_model(tiny_model)
    # 10 x 10 cells of 250 m fill under a tenth of one 32-cell window: scanned as they are, nothing is reached.
    small = coarse_map[:10, :10]
    assert np.isnan(scan_probability(small, model, card["input"], origin=ORIGIN)).all()
    assert np.isfinite(scan_upsampled.scan_upsampled(small, model, card["input"], 5, origin=ORIGIN)).sum() > 50
    whole = scan_upsampled.scan_upsampled(coarse_map, model, card["input"], 5, origin=ORIGIN)
    write_map(tmp_path / "s.zarr", coarse_map, ORIGIN, chunk=8)
    zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").attrs["cell_size"] = 250.0
    result = scan_store(tmp_path / "s.zarr", tiny_model, chunk=8)[...]
    assert np.array_equal(np.isfinite(result), np.isfinite(coarse_map))
    assert np.nanmax(np.abs(result - whole)) < 1e-5
