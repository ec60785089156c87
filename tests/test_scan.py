"""The window scanner: window placement, the Gaussian weight, and blending checked against stub models."""

import numpy as np
import pytest
import torch

from defoscan.model.inputs import DEFAULT_RECIPE, input_channels, recipe_with
from defoscan.model.networks import build_model
from defoscan.scan import gaussian_weight, lattice_starts, localise_mode, scan_probability
from defoscan.store import chunk_window

RECIPE = recipe_with(window=16, min_valid=0.5)  # the authors' rule, which these tests were written for


class ConstantModel(torch.nn.Module):
    """Every window gets the same logit (and, optionally, a per-pixel map of logits)."""

    def __init__(self, logit=0.0, mask=None):
        super().__init__()
        self.logit, self.mask = float(logit), mask

    def forward(self, x):
        out = {"logit": torch.full((x.shape[0],), self.logit)}
        if self.mask is not None:
            out["mask_logit"] = torch.as_tensor(self.mask, dtype=torch.float32).expand(x.shape[0], 1, *x.shape[2:])
        return out


class ValidShareModel(torch.nn.Module):
    """Logit = a window's share of valid cells (last channel), so the probability says where the window lay."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return {"logit": x[:, -1].mean(dim=(1, 2)) * 4.0 - 2.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --- lattice_starts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "bounds", "expected"),
    [
        (0, 10, (0, 10), [0, 3, 6]),  # the last lattice window is flush already
        (0, 11, (0, 11), [0, 3, 6, 7]),  # one more, flush with the end
        (-1, 11, (-1, 11), [-1, 0, 3, 6, 7]),  # and one flush with the start
        (5, 8, (-1, 11), [3, 6, 7]),  # a chunk gets the map's windows over it
        (0, 3, (0, 3), [0]),  # shorter than a window: one window (padded by the scanner)
        (-10, -7, (-10, -7), [-10]),
        (-10, -4, (-10, -4), [-10, -9, -8]),  # negative global indices: multiples of 3 in between
    ],
)
def test_lattice_starts(start, stop, bounds, expected):
    assert lattice_starts(start, stop, 4, 3, bounds).tolist() == expected


def test_lattice_windows_cover_the_map_stay_inside_and_do_not_depend_on_the_chunk():
    for first in range(-12, 12):
        for end in range(first + 1, first + 30):
            whole = lattice_starts(first, end, 8, 3, (first, end))
            covered = np.zeros(max(end - first, 8), dtype=bool)
            for s in whole:
                covered[s - first : s - first + 8] = True
                assert s % 3 == 0 or s in (first, end - 8)
            assert covered[: end - first].all()
            if end - first >= 8:
                assert whole.min() >= first and whole.max() + 8 <= end
            for cut in range(first + 1, end):  # two chunks: their windows are the map's over each
                left, right = (
                    lattice_starts(first, cut, 8, 3, (first, end)),
                    lattice_starts(cut, end, 8, 3, (first, end)),
                )
                assert sorted(set(left) | set(right)) == whole.tolist()
                assert all(s + 8 > first and s < cut for s in left)


def test_lattice_starts_refuse_zero_stride_and_a_range_outside_the_map():
    with pytest.raises(ValueError, match="positive"):
        lattice_starts(0, 10, 4, 0, (0, 10))
    with pytest.raises(ValueError, match="not inside"):
        lattice_starts(0, 12, 4, 2, (0, 10))


# --- gaussian_weight -------------------------------------------------------------------------------------------


def test_gaussian_weight_shape_peak_and_default_sigma():
    g = gaussian_weight(227)
    assert g.shape == (227, 227) and g[113, 113] == pytest.approx(1.0)
    assert np.allclose(g, g.T) and np.allclose(g, g[::-1, ::-1])
    # sigma = window / 6: three sigmas from the centre at the edge midpoints.
    assert g[113, 0] == pytest.approx(np.exp(-0.5 * (113 / (227 / 6)) ** 2))
    assert np.allclose(gaussian_weight(227, 227 / 6), g)


def test_gaussian_weight_even_window_is_centred_between_cells():
    g = gaussian_weight(4, sigma=1.0)
    assert np.allclose(g, g[::-1, ::-1]) and g[1, 1] == g[2, 2] == g.max()


# --- scan_probability ----------------------------------------------------------------------------------------


def test_constant_model_gives_its_probability_everywhere_with_data():
    velocity = np.random.default_rng(0).normal(size=(40, 50)).astype(np.float32)
    velocity[5, 7] = np.nan
    probability = scan_probability(velocity, ConstantModel(1.5), RECIPE)
    assert probability.dtype == np.float32 and probability.shape == velocity.shape
    assert np.isnan(probability[5, 7])
    assert np.allclose(probability[np.isfinite(velocity)], sigmoid(1.5), atol=1e-6)


def test_blend_matches_the_weighted_average_of_window_probabilities():
    rng = np.random.default_rng(1)
    velocity = rng.normal(size=(24, 24)).astype(np.float32)
    velocity[:10, :10] = np.nan  # windows differ in their valid share, hence in probability and weight
    probability = scan_probability(velocity, ValidShareModel(), RECIPE, stride=4)
    valid = np.isfinite(velocity)
    g = gaussian_weight(16)
    numerator, denominator = np.zeros((24, 24)), np.zeros((24, 24))
    for r in (0, 4, 8):  # the lattice windows inside the map
        for c in (0, 4, 8):
            share = valid[r : r + 16, c : c + 16].mean()
            numerator[r : r + 16, c : c + 16] += g * share * sigmoid(share * 4 - 2)
            denominator[r : r + 16, c : c + 16] += g * share
    expected = np.where(valid, numerator / denominator, np.nan)
    assert np.allclose(probability, expected, equal_nan=True, atol=1e-6)
    # Off the lattice's phase (origin 2): windows at global 4, 8 and flush ones at global 2 and 10.
    shifted = scan_probability(velocity, ValidShareModel(), RECIPE, stride=4, origin=(2, 2))
    numerator, denominator = np.zeros((24, 24)), np.zeros((24, 24))
    for r in (0, 2, 6, 8):
        for c in (0, 2, 6, 8):
            share = valid[r : r + 16, c : c + 16].mean()
            numerator[r : r + 16, c : c + 16] += g * share * sigmoid(share * 4 - 2)
            denominator[r : r + 16, c : c + 16] += g * share
    assert np.allclose(shifted, np.where(valid, numerator / denominator, np.nan), equal_nan=True, atol=1e-6)


def test_mostly_empty_windows_are_skipped_and_leave_nan():
    velocity = np.full((16, 64), np.nan, dtype=np.float32)
    velocity[:, :16] = 1.0  # one full window at the left; further right, windows hold under half data
    velocity[0, 60] = 2.0  # a lone cell far from the data: no window there is half valid
    probability = scan_probability(velocity, ConstantModel(0.0), RECIPE, stride=4)
    assert np.allclose(probability[:, :16], 0.5)
    assert np.isnan(probability[0, 60])
    # With no minimum every window with any data counts, and the lone cell gets a value.
    everything = scan_probability(velocity, ConstantModel(0.0), RECIPE, stride=4, min_valid=0.0)
    assert np.allclose(everything[np.isfinite(velocity)], 0.5)


def test_valid_mask_restricts_output_and_window_shares():
    velocity = np.ones((32, 32), dtype=np.float32)  # e.g. a gap-filled map: finite everywhere
    observed = np.zeros((32, 32), dtype=bool)
    observed[:, :12] = True
    probability = scan_probability(velocity, ConstantModel(2.0), RECIPE, stride=4, valid=observed)
    assert np.isnan(probability[:, 12:]).all()
    assert np.allclose(probability[:, :12], sigmoid(2.0))
    # Shares count the observed cells: with all 32 columns observed more windows are read, but none with a share
    # under the minimum; with only 4 columns observed no window reaches half and nothing is read.
    few = np.zeros((32, 32), dtype=bool)
    few[:, :4] = True
    assert np.isnan(scan_probability(velocity, ConstantModel(2.0), RECIPE, stride=4, valid=few)).all()


def test_map_smaller_than_a_window_is_padded():
    velocity = np.ones((10, 12), dtype=np.float32)  # 120 of 256 cells after padding: under half
    assert np.isnan(scan_probability(velocity, ConstantModel(2.0), RECIPE)).all()
    probability = scan_probability(velocity, ValidShareModel(), RECIPE, min_valid=0.4)
    assert probability.shape == (10, 12)
    assert np.allclose(probability, sigmoid(120 / 256 * 4 - 2))


def test_localise_blends_the_per_pixel_map():
    mask = np.full((16, 16), -5.0)
    mask[4:12, 4:12] = 5.0
    velocity = np.zeros((16, 16), dtype=np.float32)
    model = ConstantModel(-5.0, mask=mask)
    window_only = scan_probability(velocity, model, RECIPE)
    assert np.allclose(window_only, sigmoid(-5.0))  # without localise the mask is not used
    # min_valid 1: only the window flush with the map is read, so the blend is that window's map itself
    localised = scan_probability(velocity, model, {**RECIPE, "localise": True}, min_valid=1.0)
    assert np.allclose(localised, sigmoid(mask), atol=1e-6)
    gated = scan_probability(velocity, model, {**RECIPE, "localise": True}, threshold_logit=0.0)
    assert np.all(gated == 0.0)  # the window logit is under the gate: the window contributes 0


def test_product_blends_per_pixel_times_window_probability():
    mask = np.full((16, 16), -5.0)
    mask[4:12, 4:12] = 5.0
    velocity = np.zeros((16, 16), dtype=np.float32)
    model = ConstantModel(1.0, mask=mask)
    product = scan_probability(velocity, model, {**RECIPE, "localise": "product"}, min_valid=1.0)
    assert np.allclose(product, sigmoid(mask) * sigmoid(1.0), atol=1e-6)
    pixel = scan_probability(velocity, model, {**RECIPE, "localise": "pixel"}, min_valid=1.0)
    assert np.allclose(pixel, sigmoid(mask), atol=1e-6)


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "window"), (False, "window"), (True, "pixel"), ("product", "product")]
)
def test_localise_mode_reads_old_and_new_cards(value, mode):
    recipe = dict(RECIPE) if value is None else {**RECIPE, "localise": value}
    assert localise_mode(recipe) == mode


def test_unknown_localise_mode_is_refused():
    with pytest.raises(ValueError, match="unknown localise mode"):
        scan_probability(np.zeros((16, 16), np.float32), ConstantModel(), {**RECIPE, "localise": "sideways"})


def test_batch_size_does_not_change_the_map_and_progress_is_reported():
    rng = np.random.default_rng(2)
    velocity = rng.normal(size=(40, 40)).astype(np.float32)
    velocity[rng.random((40, 40)) < 0.3] = np.nan
    model = ValidShareModel()
    reports = []
    one = scan_probability(velocity, model, RECIPE, batch=1, progress=lambda done, total: reports.append(done))
    assert set(model.calls) == {1} and reports == list(range(1, len(reports) + 1))
    many = scan_probability(velocity, model, RECIPE, batch=7)
    assert np.array_equal(one, many, equal_nan=True)


def test_a_real_network_scans_deterministically_whatever_the_batch():
    recipe = {**DEFAULT_RECIPE, "window": 32}
    model = build_model("compact", input_channels(recipe), width=8, fcn=True).eval()
    rng = np.random.default_rng(3)
    velocity = rng.normal(scale=3.0, size=(48, 56)).astype(np.float32)
    velocity[rng.random(velocity.shape) < 0.2] = np.nan
    first = scan_probability(velocity, model, recipe, batch=32)
    again = scan_probability(velocity, model, recipe, batch=32)
    assert np.array_equal(first, again, equal_nan=True)
    assert np.allclose(scan_probability(velocity, model, recipe, batch=2), first, atol=1e-5, equal_nan=True)
    finite = np.isfinite(first)
    assert np.array_equal(finite, np.isfinite(velocity)) and ((first[finite] >= 0) & (first[finite] <= 1)).all()
    localised = scan_probability(velocity, model, {**recipe, "localise": True})
    assert np.array_equal(np.isfinite(localised), finite) and not np.allclose(localised[finite], first[finite])


def test_a_map_scanned_in_chunks_equals_the_map_scanned_whole():
    recipe = {**DEFAULT_RECIPE, "window": 32, "localise": "product"}
    model = build_model("compact", input_channels(recipe), width=8, fcn=True).eval()
    rng = np.random.default_rng(4)
    velocity = rng.normal(scale=3.0, size=(120, 110)).astype(np.float32)
    velocity[rng.random(velocity.shape) < 0.3] = np.nan
    velocity[:, 90:] = np.nan  # a coast
    origin = (-1234, 567)  # anywhere on the global lattice
    whole = scan_probability(velocity, model, recipe, origin=origin)
    # Each chunk scanned from its block with window - 1 cells of context, as defoscan.scan_store does.
    chunked = np.full(velocity.shape, np.nan, dtype=np.float32)
    bounds = (origin[0], origin[0] + 120, origin[1], origin[1] + 110)
    for i in range(5):
        for j in range(5):
            block, core, target, block_origin = chunk_window(velocity.shape, origin, i, j, 25, 31)
            values = velocity[block]
            chunked[target] = scan_probability(
                values, model, recipe, origin=block_origin, core=core, bounds=bounds, valid=np.isfinite(values)
            )
    assert np.array_equal(np.isfinite(whole), np.isfinite(chunked)) and np.isfinite(whole).sum() > 5000
    assert np.nanmax(np.abs(whole - chunked)) < 1e-5
    # The same cells cut out of a larger map, with their global origin, give the same values: placement is global.
    part = scan_probability(velocity[10:110, 5:100], model, recipe, origin=(origin[0] + 10, origin[1] + 5))
    inner = whole[10:110, 5:100][32:-32, 32:-32]  # cells whose windows all lie inside the part
    assert np.isfinite(inner).sum() > 500
    assert np.nanmax(np.abs(part[32:-32, 32:-32] - inner)) < 1e-5


def test_core_must_lie_in_the_block():
    with pytest.raises(ValueError, match="core"):
        scan_probability(np.zeros((20, 20), np.float32), ConstantModel(), RECIPE, core=(0, 30, 0, 20))


def test_refuses_mismatched_valid():
    with pytest.raises(ValueError, match="valid has shape"):
        scan_probability(np.zeros((20, 20)), ConstantModel(), RECIPE, valid=np.ones((10, 10), bool))


def test_the_recipes_min_valid_decides_which_sparse_windows_are_read():
    velocity = np.full((16, 16), np.nan, dtype=np.float32)
    velocity[:4, :8] = 1.0  # 32 of 256 cells: 12.5 % of the one window
    sparse = recipe_with(window=16, min_valid=0.1)
    assert np.isfinite(scan_probability(velocity, ConstantModel(0.0), sparse)).sum() == 32
    assert np.isnan(scan_probability(velocity, ConstantModel(0.0), RECIPE)).all()  # 50 %: not read
    without = {k: v for k, v in sparse.items() if k != "min_valid"}  # an older card: the authors' 50 %
    assert np.isnan(scan_probability(velocity, ConstantModel(0.0), without)).all()
