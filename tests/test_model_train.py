import json
import os

import numpy as np
import pytest
import torch

from defoscan.hashing import file_sha256
from defoscan.model import load_model
from defoscan.model.data import WindowSet, load_windows
from defoscan.model.inputs import recipe_with
from defoscan.model.train import TrainConfig, learning_rate, pixel_threshold, train

TINY = {"width": 8, "epochs": 2, "batch": 8, "threads": 1, "patience": 5}


@pytest.fixture(scope="module")
def split(tiny_dataset):
    windows = load_windows(tiny_dataset)
    held = windows.index % 4 == 0
    return windows.subset(~held), windows.subset(held)


def test_training_writes_a_model_and_card_and_removes_its_checkpoint(split, tmp_path):
    out = tmp_path / "m.safetensors"
    card = train(*split, str(out), TrainConfig(**TINY))
    model, loaded = load_model(out)
    assert loaded["input"]["window"] == 32 and loaded["input"]["cell_size"] == 50.0
    assert loaded["input"]["mode"] == "single" and loaded["input"]["fill"] is False
    assert [h["epoch"] for h in loaded["metrics"]["history"]] == [1, 2]
    assert {"loss", "auc", "recall_at_1pct_fpr", "train_loss"} <= set(loaded["metrics"]["history"][0])
    assert 0.0 <= loaded["threshold"] <= 1.0 and loaded["threshold"] == loaded["window_threshold"]
    assert loaded["input"]["localise"] == "window"
    assert loaded["recipe"]["train"]["seed"] == 0 and card["metrics"] == loaded["metrics"]
    # Where it applies: measured on the windows it was trained on (defoscan.model.domain).
    applies = loaded["applies_to"]
    assert applies["data"] == "synthetic" and applies["windows"] == len(split[0].label)
    assert applies["positives"] == int((split[0].label == 1).sum()) and applies["cell_sizes_m"] == [50.0]
    assert not os.path.exists(tmp_path / "m.checkpoint")


def test_a_model_trained_across_cell_sizes_lists_them_in_its_recipe(split, tmp_path):
    from defoscan.model.data import concat_windows

    train_windows, val_windows = split
    coarse = train_windows.subset(np.arange(8))
    coarse.cell_size = 100.0
    coarse.info = [{**info, "cell_size": 100.0} for info in coarse.info]
    out = tmp_path / "m.safetensors"
    card = train(concat_windows([train_windows, coarse]), val_windows, str(out), TrainConfig(**{**TINY, "epochs": 1}))
    assert card["input"]["cell_size"] == 50.0 and card["input"]["cell_sizes"] == [50.0, 100.0]
    assert card["data_profile"]["cell_sizes"] == [50.0, 100.0] and card["input"]["fill"] is False


def test_same_seed_same_weights_and_a_resumed_run_ends_the_same(split, tmp_path):
    first = tmp_path / "a.safetensors"
    train(*split, str(first), TrainConfig(**TINY))
    second = tmp_path / "b.safetensors"

    class Stop(Exception):
        pass

    def interrupt(epoch, done, total):
        if epoch == 2 and done == 2:
            raise Stop

    with pytest.raises(Stop):
        train(*split, str(second), TrainConfig(**TINY), progress=interrupt)
    state = json.loads((tmp_path / "b.checkpoint" / "state.json").read_text())
    assert state["state"]["epoch"] == 1
    lines = []
    train(*split, str(second), TrainConfig(**TINY), log=lines.append)
    assert any("resuming" in line for line in lines)
    assert file_sha256(first) == file_sha256(second)
    third = tmp_path / "c.safetensors"
    train(*split, str(third), TrainConfig(**{**TINY, "seed": 1}))
    assert file_sha256(first) != file_sha256(third)


def test_a_checkpoint_of_other_options_is_not_used(split, tmp_path):
    out = tmp_path / "m.safetensors"

    def interrupt(epoch, done, total):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(*split, str(out), TrainConfig(**TINY), progress=interrupt)
    lines = []
    train(*split, str(out), TrainConfig(**{**TINY, "lr": 1e-3}), log=lines.append)
    assert any("not used" in line for line in lines)
    assert not any("resuming" in line for line in lines)


def test_fcn_and_alexnet_train_too(split, tmp_path):
    card = train(*split, str(tmp_path / "f.safetensors"), TrainConfig(**{**TINY, "fcn": True, "epochs": 1}))
    assert card["recipe"]["train"]["fcn"] is True
    assert card["input"]["localise"] == "product"  # the scanner blends per-pixel x window probability
    assert 0.0 < card["threshold"] < 1.0 and 0.0 <= card["window_threshold"] <= 1.0
    # AlexNet needs windows of 63 cells or more: the 32-cell windows tiled 2 x 2
    small = [split[0].subset(np.arange(8)), split[1].subset(np.arange(4))]
    for windows in small:
        windows.velocity = np.tile(windows.velocity, (1, 2, 2))
        windows.mask = np.tile(windows.mask, (1, 2, 2))
    card = train(*small, str(tmp_path / "x.safetensors"), TrainConfig(**{**TINY, "arch": "alexnet", "epochs": 1}))
    assert load_model(tmp_path / "x.safetensors")[1]["arch"] == "alexnet"


class _PeakModel(torch.nn.Module):
    """Per-pixel logits with a known peak per window (taken in order) and a larger one on a cell without data."""

    def __init__(self, peaks):
        super().__init__()
        self.peaks = list(peaks)

    def forward(self, x):
        n, _, rows, cols = x.shape
        mask = torch.full((n, 1, rows, cols), -10.0)
        for k in range(n):
            mask[k, 0, 3, 3] = self.peaks.pop(0)
            mask[k, 0, 0, 0] = 50.0  # no data there: must not count
        return {"logit": torch.zeros(n), "mask_logit": mask}


def test_the_pixel_cut_off_lets_one_percent_of_negative_windows_through():
    n = 300
    count = np.ones((n, 8, 8), np.uint16)
    count[:, 0, 0] = 0
    label = np.zeros(n, np.int8)
    label[::3] = 1  # positives are not looked at: only negatives' peaks are drawn
    negatives = int((label == 0).sum())
    peaks = np.linspace(-5.0, 5.0, negatives)
    windows = WindowSet(
        np.zeros((n, 8, 8), np.float32), count, np.zeros((n, 8, 8), bool), label, np.arange(n), [{}] * n, 50.0, "x"
    )
    pixel = {**recipe_with(window=8), "localise": "pixel"}
    cut = pixel_threshold(_PeakModel(peaks), windows, pixel, batch=16)
    logit = np.log(cut / (1 - cut))
    assert logit == pytest.approx(np.quantile(peaks, 0.99), abs=1e-4)
    assert (peaks > logit).sum() == 2  # 1 % of 200 negative windows
    # product: every window's probability is 1/2 (logit 0), so the cut halves
    product = {**pixel, "localise": "product"}
    assert pixel_threshold(_PeakModel(peaks), windows, product, batch=16) == pytest.approx(cut / 2, abs=1e-6)


def test_learning_rate_warms_up_then_decays():
    rates = [learning_rate(s, 1000, 1e-3) for s in range(1000)]
    assert rates[0] < rates[49] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[50:], rates[51:], strict=False))
    assert rates[-1] == pytest.approx(2e-5, rel=0.01)


def test_alexnet_fine_tuning_starts_from_imagenet_weights(split, tmp_path):
    import torch

    from defoscan.model import build_model

    # torchvision's AlexNet layout: three input channels, 1000 classes
    shapes = {k: v.shape for k, v in build_model("alexnet", 3, num_classes=1000).state_dict().items()}
    generator = torch.Generator().manual_seed(7)
    state = {key: torch.randn(shape, generator=generator) * 0.01 for key, shape in shapes.items()}
    weights = tmp_path / "alexnet-imagenet.pth"
    torch.save(state, weights)
    small = [split[0].subset(np.arange(8)), split[1].subset(np.arange(4))]
    for windows in small:
        windows.velocity = np.tile(windows.velocity, (1, 2, 2))
        windows.mask = np.tile(windows.mask, (1, 2, 2))
    lines = []
    config = TrainConfig(**{**TINY, "arch": "alexnet", "epochs": 1, "imagenet": str(weights)})
    train(*small, str(tmp_path / "x.safetensors"), config, log=lines.append)
    assert any("ImageNet" in line for line in lines)
    model, _ = load_model(tmp_path / "x.safetensors")
    # one AdamW step moves a weight by at most about the learning rate: the ImageNet values are still there
    np.testing.assert_allclose(model.state_dict()["features.3.weight"], state["features.3.weight"], atol=5e-3)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, bad)
    with pytest.raises(ValueError, match="bad.pth"):
        train(*small, str(tmp_path / "y.safetensors"), TrainConfig(**{**config.__dict__, "imagenet": str(bad)}))
    assert not (tmp_path / "y.checkpoint").exists()


def test_fine_tuning_starts_from_a_model_of_the_same_network_and_recipe(split, tmp_path):
    first = tmp_path / "first.safetensors"
    train(*split, str(first), TrainConfig(**{**TINY, "epochs": 1}))
    source, _ = load_model(first)
    lines = []
    tuned = tmp_path / "tuned.safetensors"
    config = TrainConfig(**{**TINY, "epochs": 1, "lr": 1e-9, "init": str(first)})
    train(*split, str(tuned), config, log=lines.append)
    assert any("started from the weights of" in line for line in lines)
    model, card = load_model(tuned)
    assert card["recipe"]["train"]["init"] == str(first)
    # at a learning rate of 1e-9 one epoch leaves the first model's weights (BatchNorm's running statistics move)
    for key, value in source.state_dict().items():
        if "running" not in key and "num_batches" not in key:
            np.testing.assert_allclose(model.state_dict()[key], value, atol=1e-6)
    fresh = tmp_path / "fresh.safetensors"
    train(*split, str(fresh), TrainConfig(**{**TINY, "epochs": 1, "lr": 1e-9, "seed": 3}))
    far = load_model(fresh)[0].state_dict()
    first_conv = next(key for key, value in far.items() if value.dim() == 4)
    assert not torch.allclose(far[first_conv], source.state_dict()[first_conv])  # the check above could fail
    other_recipe = TrainConfig(**{**config.__dict__, "recipe": recipe_with(mode="raw")})
    with pytest.raises(ValueError, match="first.safetensors: its input recipe differs"):
        train(*split, str(tmp_path / "x.safetensors"), other_recipe)
    wider = TrainConfig(**{**config.__dict__, "width": 16})
    with pytest.raises(ValueError, match="first.safetensors: its network is not this training's"):
        train(*split, str(tmp_path / "y.safetensors"), wider)


def easy_windows(n, seed):
    """Windows a working trainer must learn: half hold a -20 mm/yr Gaussian bowl of 4 cells, all 1 mm/yr noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:32, 0:32]
    velocity = rng.normal(0.0, 1.0, (n, 32, 32)).astype(np.float32)
    label = (np.arange(n) % 2).astype(np.int8)
    mask = np.zeros((n, 32, 32), dtype=bool)
    for i in np.flatnonzero(label):
        r, c = rng.integers(8, 24, 2)
        bowl = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 4.0**2))
        velocity[i] -= (20.0 * bowl).astype(np.float32)
        mask[i] = bowl > 0.1
    info = [{"kinds": ["mogi"] if lab else [], "hard": False, "peak": 20.0 * lab, "cell_size": 50.0} for lab in label]
    count = np.ones((n, 32, 32), dtype=np.uint16)
    return WindowSet(velocity, count, mask, label, np.arange(n), info, 50.0, f"easy-{seed}")


def test_training_learns_an_easy_task(tmp_path, one_torch_thread):
    # A broken trainer (no gradient step, labels shuffled, a frozen net) stays at AUC 0.5 and its loss does not fall.
    card = train(
        easy_windows(192, 1), easy_windows(64, 2), str(tmp_path / "m.safetensors"), TrainConfig(**{**TINY, "epochs": 4})
    )
    history = card["metrics"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert max(h["auc"] for h in history) > 0.9
