"""Tests of defoscan.model.weights: ImageNet AlexNet loading, safetensors + card round trip, clear errors."""

import json
import os

import pytest
import torch

from defoscan.model.networks import AlexNetStyle, CompactNet
from defoscan.model.weights import load_imagenet_alexnet, load_model, save_model

TORCHVISION_ALEXNET = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """A torchvision-format AlexNet state dict of random tensors, written once (about 240 MB)."""
    generator = torch.Generator().manual_seed(42)
    state = {key: torch.randn(shape, generator=generator) for key, shape in TORCHVISION_ALEXNET.items()}
    path = tmp_path_factory.mktemp("imagenet") / "alexnet-owt.pth"
    torch.save(state, path)
    return path, state


def test_imagenet_loading_adapts_first_conv(imagenet_file):
    path, state = imagenet_file
    model = AlexNetStyle(7)
    head_before = model.classifier[6].weight.detach().clone()
    loaded, skipped = load_imagenet_alexnet(model, path)
    assert skipped == ["classifier.6.bias", "classifier.6.weight"]
    assert sorted(loaded) == sorted(k for k in TORCHVISION_ALEXNET if not k.startswith("classifier.6"))
    params = model.state_dict()
    for key in loaded:
        if key != "features.0.weight":
            assert torch.equal(params[key], state[key]), key
    rgb = state["features.0.weight"]
    adapted = params["features.0.weight"]
    assert adapted.shape == (64, 7, 11, 11)
    expected_channel = rgb.mean(dim=1) * 3 / 7
    for channel in range(7):
        torch.testing.assert_close(adapted[:, channel], expected_channel)
    # A grey input (equal in all channels) gets the same response as from the ImageNet RGB kernels.
    torch.testing.assert_close(adapted.sum(dim=1), rgb.sum(dim=1), rtol=1e-5, atol=1e-5)
    assert torch.equal(model.classifier[6].weight, head_before)  # the 1-logit head keeps its initialisation


def test_imagenet_loading_three_channels_is_exact_copy(imagenet_file):
    path, state = imagenet_file
    model = AlexNetStyle(3)
    load_imagenet_alexnet(model, path)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])


def _partial_state(**overrides):
    state = {"features.0.weight": torch.zeros(64, 3, 11, 11), "features.0.bias": torch.zeros(64)}
    state.update(overrides)
    return state


def test_imagenet_wrong_shape_names_file_and_key(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save(_partial_state(**{"features.3.weight": torch.zeros(192, 64, 3, 3)}), path)
    model = AlexNetStyle(7)
    before = model.features[0].weight.detach().clone()
    with pytest.raises(ValueError, match=r"bad\.pth.*'features\.3\.weight'.*\(192, 64, 3, 3\)"):
        load_imagenet_alexnet(model, path)
    assert torch.equal(model.features[0].weight, before)  # nothing copied from a rejected file


def test_imagenet_missing_key_and_unreadable_files(tmp_path):
    model = AlexNetStyle(7)
    missing = tmp_path / "missing.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, missing)
    with pytest.raises(ValueError, match=r"missing\.pth.*'features\.0\.bias' missing"):
        load_imagenet_alexnet(model, missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match=r"garbage\.pth"):
        load_imagenet_alexnet(model, garbage)
    pickled = tmp_path / "object.pth"
    torch.save({"features.0.weight": _Arbitrary()}, pickled)  # weights_only refuses arbitrary objects
    with pytest.raises(ValueError, match=r"object\.pth"):
        load_imagenet_alexnet(model, pickled)
    with pytest.raises(ValueError, match="AlexNetStyle"):
        load_imagenet_alexnet(CompactNet(7), missing)


class _Arbitrary:
    pass


def _trained_compact(fcn=True):
    """A compact net whose BatchNorm running statistics have moved off their defaults."""
    model = CompactNet(7, width=8, fcn=fcn, seed=3)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 7, 32, 32, generator=torch.Generator().manual_seed(1)) * 3 + 1)
    return model.eval()


@pytest.mark.parametrize("fcn", [True, False])
def test_save_load_round_trip(tmp_path, fcn):
    model = _trained_compact(fcn)
    path = tmp_path / "net.safetensors"
    card = {"recipe": {"epochs": 3}, "data_profile": {"cell_m": 100}, "metrics": {"auc": 0.91}}
    written = save_model(model, path, card)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]  # no temporaries left
    loaded, read = load_model(path)
    assert read == written == json.loads((tmp_path / "net.json").read_text())
    assert read["arch"] == "compact" and read["in_channels"] == 7
    assert read["options"] == {"width": 8, "fcn": fcn, "separable": True, "seed": 3}
    assert read["metrics"] == {"auc": 0.91} and read["recipe"] == {"epochs": 3}
    assert read["parameters"] == sum(p.numel() for p in model.parameters())
    assert not loaded.training
    x = torch.randn(2, 7, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_saved_bytes_are_deterministic(tmp_path):
    save_model(CompactNet(7, width=8, seed=1), tmp_path / "a.safetensors", {})
    save_model(CompactNet(7, width=8, seed=1), tmp_path / "b.safetensors", {})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_truncated_weights_file(tmp_path):
    path = tmp_path / "net.safetensors"
    save_model(_trained_compact(), path, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"net\.safetensors.*damaged or swapped"):
        load_model(path)


def _rewrite_card(path, **changes):
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card.update(changes)
    card_path.write_text(json.dumps(card))


def test_corrupt_file_with_matching_checksum(tmp_path):
    """Even when the card's checksum is made to fit, an unreadable safetensors file is a clear error."""
    import hashlib

    path = tmp_path / "net.safetensors"
    save_model(_trained_compact(), path, {})
    path.write_bytes(b"\xff" * 64)
    _rewrite_card(path, weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match=r"net\.safetensors: not a readable safetensors file"):
        load_model(path)


def test_mismatched_card(tmp_path):
    path = tmp_path / "net.safetensors"
    save_model(_trained_compact(), path, {})
    _rewrite_card(path, in_channels=5)
    with pytest.raises(ValueError, match=r"net\.safetensors: weights do not fit the 'compact' model of net\.json"):
        load_model(path)
    _rewrite_card(path, in_channels=7, options={"width": 16, "fcn": True, "seed": 3})
    with pytest.raises(ValueError, match=r"do not fit"):
        load_model(path)
    _rewrite_card(path, options={"width": 8, "fcn": False, "seed": 3})  # weights hold decoder keys: strict fails
    with pytest.raises(ValueError, match=r"do not fit"):
        load_model(path)


def test_card_from_another_model_and_missing_files(tmp_path):
    first, second = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    save_model(CompactNet(7, width=8, seed=1), first, {})
    save_model(CompactNet(7, width=8, seed=2), second, {})
    second.with_suffix(".json").replace(first.with_suffix(".json"))
    with pytest.raises(ValueError, match=r"one\.safetensors.*checksum"):
        load_model(first)
    with pytest.raises(ValueError, match=r"two\.safetensors: model card two\.json not found"):
        load_model(second)
    with pytest.raises(ValueError, match=r"nothing\.safetensors: model weights file not found"):
        load_model(tmp_path / "nothing.safetensors")
    first.with_suffix(".json").write_text("{not json")
    with pytest.raises(ValueError, match=r"one\.json: not a valid defoscan model card"):
        load_model(first)


def test_save_rejects_reserved_card_keys_and_json_name(tmp_path):
    with pytest.raises(ValueError, match="arch"):
        save_model(CompactNet(7, width=8), tmp_path / "n.safetensors", {"arch": "other"})
    with pytest.raises(ValueError, match=r"\.json"):
        save_model(CompactNet(7, width=8), tmp_path / "n.json", {})
    assert list(tmp_path.iterdir()) == []


def test_saved_files_are_readable_by_others_as_the_umask_allows(tmp_path):
    import stat

    from defoscan.model import build_model, save_model

    path = tmp_path / "m.safetensors"
    save_model(build_model("compact", 3, width=8, fcn=False), path, {})
    for name in ("m.safetensors", "m.json"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == 0o666 & ~_current_umask(), oct(mode)


def _current_umask():
    current = os.umask(0)
    os.umask(current)
    return current
