"""Weight files: ImageNet AlexNet weights in (for fine-tuning), and defoscan models out and back (safetensors + card).

A saved model is two files side by side: ``NAME.safetensors`` (the state dict; safetensors holds only tensors, so
loading never runs code, unlike pickle) and ``NAME.json``, the model card: architecture, input channels and options
(enough to rebuild the network), the SHA-256 of the weights file (so a card and weights that do not belong together,
or a damaged file, are caught), versions, and the caller's recipe, data profile and metrics.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import defoscan
from defoscan.atomic import atomic_path
from defoscan.hashing import file_sha256
from defoscan.model.networks import AlexNetStyle, build_model

CARD_FORMAT = "defoscan-model/1"
_RESERVED = (
    "format",
    "arch",
    "in_channels",
    "options",
    "weights_file",
    "weights_sha256",
    "parameters",
    "defoscan_version",
    "torch_version",
)
# torchvision AlexNet layers that carry over; classifier.6 (1000 ImageNet classes) does not.
_IMAGENET_LAYERS = (
    "features.0",
    "features.3",
    "features.6",
    "features.8",
    "features.10",
    "classifier.1",
    "classifier.4",
)


def load_imagenet_alexnet(model, path):
    """Copy torchvision-format ImageNet AlexNet weights into an :class:`AlexNetStyle` network, for fine-tuning.

    The file is a plain dict of tensors written with ``torch.save`` (torchvision's ``alexnet`` state dict); it is
    read with ``weights_only=True``, so no arbitrary object is unpickled. All convolutions and the first two linear
    layers are copied; ``classifier.6`` (1000 ImageNet classes) keeps the model's own initialisation. The first
    convolution's RGB kernels are adapted to the model's ``C`` input channels: averaged over R, G, B, repeated ``C``
    times and scaled by ``3 / C``, so that an input equal in every channel gives the same response as a grey image
    did to the ImageNet net. With ``C = 3`` the kernels are copied unchanged. Nothing is copied unless the whole file
    checks out.

    Parameters
    ----------
    model : AlexNetStyle
        Modified in place.
    path : str or pathlib.Path

    Returns
    -------
    loaded : list of str
        Keys of the model that received the file's weights.
    skipped : list of str
        Keys of the file that were not used.

    Raises
    ------
    ValueError
        When the file cannot be read as a dict of tensors, or a needed key is missing or has the wrong shape.
    """
    if not isinstance(model, AlexNetStyle):
        raise ValueError(f"ImageNet AlexNet weights need an AlexNetStyle model, not {type(model).__name__}")
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise ValueError(f"{path}: not a readable torch state dict ({error})") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a dict of tensors (a torchvision AlexNet state dict)")
    target = model.state_dict()
    in_channels = model.config["in_channels"]
    updates = {}
    for key in (f"{layer}.{kind}" for layer in _IMAGENET_LAYERS for kind in ("weight", "bias")):
        if key not in state:
            raise ValueError(f"{path}: key {key!r} missing (not a torchvision AlexNet state dict?)")
        value = state[key].to(torch.float32)
        expected = tuple(target[key].shape)
        if key == "features.0.weight":
            expected = (expected[0], 3, *expected[2:])
        if tuple(value.shape) != expected:
            raise ValueError(f"{path}: key {key!r} has shape {tuple(value.shape)}, expected {expected}")
        if key == "features.0.weight" and in_channels != 3:
            value = value.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) * (3.0 / in_channels)
        updates[key] = value
    with torch.no_grad():
        for key, value in updates.items():
            target[key].copy_(value)
    skipped = sorted(set(state) - set(updates))
    return list(updates), skipped


def _card_path(path):
    return Path(path).with_suffix(".json")


def _atomic_write(path, write):
    """Call ``write(temporary_path)`` then rename onto ``path``: readers never see a half-written file."""
    with atomic_path(path) as temporary:
        write(temporary)


def save_model(model, path, card):
    """Save a network's weights as safetensors and its model card as JSON beside it (``path.with_suffix(".json")``).

    Parameters
    ----------
    model : CompactNet or AlexNetStyle
        A network built by :func:`defoscan.model.networks.build_model` (it carries its ``config``).
    path : str or pathlib.Path
        Weights file, conventionally ``*.safetensors``; the card gets the same name with ``.json``.
    card : dict
        JSON-serialisable description from the caller, e.g. ``recipe``, ``data_profile``, ``metrics``. Keys that
        :func:`save_model` fills itself (``arch``, ``in_channels``, ``options``, ``weights_sha256``, versions, ...)
        are not allowed.

    Returns
    -------
    dict
        The card as written.
    """
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"{path}: the weights file cannot end in .json (the model card takes that name)")
    clash = sorted(set(card) & set(_RESERVED))
    if clash:
        raise ValueError(f"model card keys {clash} are filled by save_model; remove them")
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    # One key: safetensors writes its metadata map in hash order, so several keys would make the bytes vary by run.
    described = {"arch": model.config["arch"], "in_channels": model.config["in_channels"]}
    metadata = {"defoscan": json.dumps(described, sort_keys=True)}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    full = {
        "format": CARD_FORMAT,
        "arch": model.config["arch"],
        "in_channels": model.config["in_channels"],
        "options": model.config["options"],
        "weights_file": path.name,
        "weights_sha256": file_sha256(path),
        "parameters": sum(p.numel() for p in model.parameters()),
        "defoscan_version": defoscan.__version__,
        "torch_version": torch.__version__,
        **card,
    }
    text = json.dumps(full, indent=2, sort_keys=True) + "\n"
    _atomic_write(_card_path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return full


def load_model(path):
    """Rebuild a network saved by :func:`save_model` and load its weights strictly, in evaluation mode.

    Parameters
    ----------
    path : str or pathlib.Path
        The weights file; its card is ``path.with_suffix(".json")``.

    Returns
    -------
    model : torch.nn.Module
    card : dict

    Raises
    ------
    ValueError
        One message naming the file, when a file is missing, the card is not valid JSON or lacks a field, the weights
        do not match the card's checksum (damaged or swapped file), or the tensors do not fit the architecture.
    """
    path = Path(path)
    card_path = _card_path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model weights file not found")
    if not card_path.is_file():
        raise ValueError(f"{path}: model card {card_path.name} not found beside it")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        arch, in_channels, options = card["arch"], card["in_channels"], card["options"]
        expected_sha = card["weights_sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{card_path}: not a valid defoscan model card ({error!r})") from error
    if file_sha256(path) != expected_sha:
        raise ValueError(f"{path}: weights do not match the checksum in {card_path.name} (damaged or swapped file)")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
    try:
        model = build_model(arch, in_channels, **options)
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()
        raise ValueError(f"{path}: weights do not fit the {arch!r} model of {card_path.name}: {first[-1]}") from error
    model.eval()
    return model, card
