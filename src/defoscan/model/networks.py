"""Network architectures: a compact CNN for CPU inference (default) and an AlexNet-style net faithful to the paper.

Both take channels-first window images from the over-wrapping stage, shape ``(N, C, H, W)`` (e.g. ``C = 7``: three
wrap intervals x (cos, sin) + validity), and return a dict: ``"logit"`` of shape ``(N,)``, the window's deformation
logit, and for ``CompactNet(fcn=True)`` also ``"mask_logit"`` of shape ``(N, 1, H, W)``, a per-pixel logit map at
input resolution, so that window classification with blended probability maps (the authors' method) and fully
convolutional localisation can both be measured.

Initialisation draws only from a ``torch.Generator`` seeded with the ``seed`` option: the same seed gives the same
weights, whatever the global torch random state.
"""

import torch
from torch import nn
from torch.nn import functional as F


def _initialise(model, seed):
    """Kaiming-normal convolutions, small-normal linear layers, identity norms; all from one seeded generator."""
    generator = torch.Generator().manual_seed(int(seed))
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01, generator=generator)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class _SepConv(nn.Sequential):
    """3x3 convolution block: depthwise 3x3 then pointwise 1x1 (``separable``), or one dense 3x3; batch-normalised.

    BatchNorm rather than GroupNorm: at inference it is a per-channel affine map (foldable into the convolution), so
    a pixel's output depends only on its receptive field; GroupNorm would mix statistics of the whole window.
    """

    def __init__(self, c_in, c_out, *, stride=1, dilation=1, separable=True):
        if separable:
            layers = [
                nn.Conv2d(c_in, c_in, 3, stride, padding=dilation, dilation=dilation, groups=c_in, bias=False),
                nn.BatchNorm2d(c_in),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_in, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            ]
        else:
            layers = [nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False)]
            layers.append(nn.BatchNorm2d(c_out))
        super().__init__(*layers)
        self.rf_layers = [(3, stride, dilation)]  # (kernel, stride, dilation); the 1x1 adds nothing


class _Residual(nn.Module):
    """Two separable convolutions with an identity shortcut: ``relu(x + f(x))``."""

    def __init__(self, channels, dilations=(1, 1), separable=True):
        super().__init__()
        self.first = _SepConv(channels, channels, dilation=dilations[0], separable=separable)
        self.second = _SepConv(channels, channels, dilation=dilations[1], separable=separable)
        # The shortcut sees a single pixel, so the convolution path bounds the receptive field.
        self.rf_layers = self.first.rf_layers + self.second.rf_layers

    def forward(self, x):
        return F.relu(x + self.second(F.relu(self.first(x))))


class _Down(nn.Module):
    """Halve the resolution with a strided separable convolution and change the channel count."""

    def __init__(self, c_in, c_out, separable=True):
        super().__init__()
        self.conv = _SepConv(c_in, c_out, stride=2, separable=separable)
        self.rf_layers = self.conv.rf_layers

    def forward(self, x):
        return F.relu(self.conv(x))


class _Stem(nn.Sequential):
    """Full-resolution 3x3 convolution: the per-pixel features that the decoder's last skip connection uses."""

    def __init__(self, c_in, c_out):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
        self.rf_layers = [(3, 1, 1)]


class CompactNet(nn.Module):
    """Small residual, depthwise-separable CNN for CPU inference on windows of about 128 x 128 cells.

    Encoder: a full-resolution stem, then four stages at 1/2, 1/4, 1/8 and 1/16 resolution (channels ``width``,
    ``2 width``, ``4 width``, ``4 width``); the last stage uses dilations 1, 2, 4 so that its receptive field is
    345 x 345 input cells (see :func:`receptive_field`): every cell of the 1/16 feature map sees the whole of a
    128-cell window wherever it lies in it, so signals from one cell (100 m at 100 m cells) up to the window size
    are in view of each bottleneck position. Heads: global average pooling then a linear layer (window logit) and,
    with ``fcn=True``, a light top-down decoder (1x1 lateral projections to ``width`` channels, nearest upsampling
    and addition, one separable convolution per scale) ending in a per-pixel logit at input resolution.

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    width : int
        Channels of the first stage; the parameter count grows about as ``width**2``.
    fcn : bool
        Also return the per-pixel ``"mask_logit"``.
    seed : int
        Seed of the weight initialisation.

    Notes
    -----
    With ``width=32`` and 7 input channels: 170,402 parameters with ``fcn=True`` (152,673 without). Input height and
    width must be multiples of 16 for the decoder's skip connections to align.
    """

    def __init__(self, in_channels, *, width=32, fcn=True, separable=True, seed=0):
        super().__init__()
        self.config = {
            "arch": "compact",
            "in_channels": int(in_channels),
            "options": {"width": int(width), "fcn": bool(fcn), "separable": bool(separable), "seed": int(seed)},
        }
        sep = bool(separable)
        w = int(width)
        c1, c2, c3, c4 = w, 2 * w, 4 * w, 4 * w
        stem = max(w // 2, 8)
        self.encoder = nn.ModuleList(
            [
                _Stem(in_channels, stem),  # 1/1
                nn.Sequential(_Down(stem, c1, sep), _Residual(c1, separable=sep)),  # 1/2
                nn.Sequential(_Down(c1, c2, sep), _Residual(c2, separable=sep)),  # 1/4
                nn.Sequential(_Down(c2, c3, sep), _Residual(c3, separable=sep)),  # 1/8
                nn.Sequential(
                    _Down(c3, c4, sep), _Residual(c4, (1, 2), separable=sep), _Residual(c4, (4, 1), separable=sep)
                ),  # 1/16
            ]
        )
        self.classifier = nn.Linear(c4, 1)
        self.fcn = bool(fcn)
        if self.fcn:
            self.lateral = nn.ModuleList([nn.Conv2d(c, w, 1) for c in (stem, c1, c2, c3, c4)])
            self.smooth = nn.ModuleList([_SepConv(w, w, separable=sep) for _ in range(4)])
            self.mask_head = nn.Conv2d(w, 1, 1)
        _initialise(self, seed)
        # Channels-last: oneDNN's CPU convolutions run several times faster on it (docs/MODEL.md, measured).
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        x = x.contiguous(memory_format=torch.channels_last)
        features = []
        for stage in self.encoder:
            x = stage(x)
            features.append(x)
        out = {"logit": self.classifier(x.mean(dim=(2, 3))).squeeze(1)}
        if self.fcn:
            y = self.lateral[-1](features[-1])
            for level in range(len(features) - 2, -1, -1):  # coarse to fine
                y = F.interpolate(y, scale_factor=2, mode="nearest") + self.lateral[level](features[level])
                y = F.relu(self.smooth[level](y))
            out["mask_logit"] = self.mask_head(y)
        return out


class AlexNetStyle(nn.Module):
    """AlexNet's layout with torchvision's layer names and shapes, ending in one logit (the paper's network).

    ``features``: conv 11x11/4 (64) - pool - conv 5x5 (192) - pool - conv 3x3 (384, 256, 256) - pool; adaptive
    average pooling to 6 x 6; ``classifier``: dropout, 9216 -> 4096, dropout, 4096 -> 4096, 4096 -> ``num_classes``.
    The paper's windows are 227 x 227; thanks to the adaptive pooling any size of at least 63 works. The layer names
    (``features.0`` ... ``classifier.6``) match torchvision's, so ImageNet weights load by name
    (:func:`defoscan.model.weights.load_imagenet_alexnet`).

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    num_classes : int
        Outputs of the last layer; with 1, ``"logit"`` has shape ``(N,)``, else ``(N, num_classes)``.
    seed : int
        Seed of the weight initialisation.
    """

    def __init__(self, in_channels, *, num_classes=1, seed=0):
        super().__init__()
        self.config = {
            "arch": "alexnet",
            "in_channels": int(in_channels),
            "options": {"num_classes": int(num_classes), "seed": int(seed)},
        }
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        _initialise(self, seed)

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        logit = self.classifier(x)
        return {"logit": logit.squeeze(1) if logit.shape[1] == 1 else logit}


_REGISTRY = {"compact": CompactNet, "alexnet": AlexNetStyle}


def for_inference(model):
    """A copy of a model for inference, each convolution and the batch norm after it folded into one convolution.

    In evaluation mode a batch norm is a per-channel affine map, so folding it into the convolution before it
    changes the outputs only by floating-point rounding and saves a pass over every feature map (about 1.15x on
    the compact net on this CPU). The original model is left as it is (training and saving use it).

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        In evaluation mode, channels-last.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            for k in range(len(module) - 1):
                if isinstance(module[k], nn.Conv2d) and isinstance(module[k + 1], nn.BatchNorm2d):
                    module[k] = fuse_conv_bn_eval(module[k], module[k + 1])
                    module[k + 1] = nn.Identity()
    return folded.to(memory_format=torch.channels_last)


def build_model(name, in_channels, **options):
    """Build a network by its registry name.

    Parameters
    ----------
    name : str
        ``"compact"`` (:class:`CompactNet`) or ``"alexnet"`` (:class:`AlexNetStyle`).
    in_channels : int
        Number of input channels.
    **options
        Keyword options of the class (``width``, ``fcn``, ``num_classes``, ``seed``).

    Returns
    -------
    torch.nn.Module
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](in_channels, **options)


def receptive_field(model):
    """Receptive field, in input cells, of one cell of ``CompactNet``'s deepest feature map (before pooling).

    ``r = 1 + sum((k - 1) * d * j)`` over the convolution path, where ``j`` is the product of the strides before
    the layer (the spacing, in input cells, of that layer's input). Residual shortcuts see one cell, so the
    convolution path is the widest.

    Parameters
    ----------
    model : CompactNet

    Returns
    -------
    int
    """
    size, jump = 1, 1
    layers = [m for m in model.encoder.modules() if isinstance(m, _SepConv | _Stem)]  # in forward order
    for kernel, stride, dilation in (spec for layer in layers for spec in layer.rf_layers):
        size += (kernel - 1) * dilation * jump
        jump *= stride
    return size
