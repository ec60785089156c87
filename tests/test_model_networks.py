"""Tests of defoscan.model.networks: shapes, sizes, receptive field, seeded initialisation."""

import pytest
import torch

from defoscan.model.networks import AlexNetStyle, CompactNet, build_model, for_inference, receptive_field


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_compact_shapes_fcn():
    model = CompactNet(7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 7, 128, 128, generator=torch.Generator().manual_seed(0)))
    assert set(out) == {"logit", "mask_logit"}
    assert out["logit"].shape == (2,)
    assert out["mask_logit"].shape == (2, 1, 128, 128)
    assert torch.isfinite(out["mask_logit"]).all()


def test_compact_shapes_without_fcn_and_other_size():
    model = CompactNet(7, fcn=False).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 7, 64, 96))
    assert set(out) == {"logit"}
    assert out["logit"].shape == (2,)


def test_compact_parameter_budget():
    # Counts stated in CompactNet's docstring and docs/MODEL.md; the budget is 300k.
    assert _count(CompactNet(7)) == 170_402
    assert _count(CompactNet(7, fcn=False)) == 152_673
    assert _count(CompactNet(7)) < 300_000


def test_alexnet_shapes_and_names():
    model = AlexNetStyle(7).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 7, 227, 227))["logit"].shape == (2,)
        assert model(torch.zeros(2, 7, 128, 128))["logit"].shape == (2,)
        assert model(torch.zeros(1, 7, 63, 63))["logit"].shape == (1,)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 7, 62, 62))  # below AlexNet's minimum size
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {
        "features.0.weight": (64, 7, 11, 11),
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
        "classifier.6.weight": (1, 4096),
        "classifier.6.bias": (1,),
    }
    assert AlexNetStyle(3, num_classes=4).eval()(torch.zeros(2, 3, 100, 100))["logit"].shape == (2, 4)


def test_receptive_field_analytic():
    # Hand-computed: stem 3; then per stage down(+2j) + residual(+2j*sum(dilations)) with j = 2, 4, 8, 16.
    expected = 3 + (2 * 1 + 2 * 2 * 2) + (2 * 2 + 2 * 4 * 2) + (2 * 4 + 2 * 8 * 2) + (2 * 8 + 2 * 16 * (1 + 2 + 4 + 1))
    assert expected == 345
    assert receptive_field(CompactNet(7)) == 345
    assert receptive_field(CompactNet(3, width=8)) == 345  # width does not change the geometry


def test_receptive_field_matches_gradient_extent():
    """With positive weights and identity norms every path is live: the gradient's support is the receptive field."""
    model = CompactNet(2, width=8).double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.fill_(1.0 / fan_in)
    size = 512
    x = torch.ones(1, 2, size, size, dtype=torch.float64, requires_grad=True)
    y = x
    for stage in model.encoder:
        y = stage(y)
    assert y.shape[-1] == size // 16
    centre = size // 32
    y[0, 0, centre, centre].backward()
    support = x.grad[0].abs().sum(dim=0) > 0
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    extent = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    assert rows.min() > 0 and rows.max() < size - 1  # not clipped by the input edge
    assert extent == (receptive_field(model), receptive_field(model))
    # The field covers a whole 128-cell window around any bottleneck cell of that window.
    assert receptive_field(model) >= 2 * 128 + 16


def test_seeded_initialisation_is_deterministic():
    torch.manual_seed(123)
    a = CompactNet(7, seed=5).state_dict()
    torch.manual_seed(999)  # the global generator must not matter
    b = CompactNet(7, seed=5).state_dict()
    c = CompactNet(7, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["encoder.0.0.weight"], c["encoder.0.0.weight"])
    x = torch.ones(1, 3, 70, 70)
    assert torch.equal(AlexNetStyle(3, seed=1).eval()(x)["logit"], AlexNetStyle(3, seed=1).eval()(x)["logit"])


def test_build_model_registry():
    model = build_model("compact", 5, width=8, fcn=False)
    assert isinstance(model, CompactNet)
    options = {"width": 8, "fcn": False, "separable": True, "seed": 0}
    assert model.config == {"arch": "compact", "in_channels": 5, "options": options}
    dense = build_model("compact", 5, width=8, fcn=False, separable=False)
    assert dense.config["options"]["separable"] is False
    assert receptive_field(dense) == receptive_field(model) == 345  # same layout, dense 3x3 kernels
    assert dense(torch.zeros(2, 5, 32, 32))["logit"].shape == (2,)
    assert isinstance(build_model("alexnet", 7), AlexNetStyle)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet", 7)


def test_for_inference_folds_every_batch_norm_and_keeps_the_outputs():
    model = build_model("compact", 3, width=16, fcn=True, separable=False, seed=2)
    model.train()
    with torch.no_grad():  # batch statistics that are not the identity, as after training
        for _ in range(3):
            model(torch.randn(8, 3, 64, 64) * 2.0 + 0.5)
    model.eval()
    folded = for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        a, b = model(x), folded(x)
    assert torch.allclose(a["logit"], b["logit"], atol=1e-4)
    assert torch.allclose(a["mask_logit"], b["mask_logit"], atol=1e-4)
