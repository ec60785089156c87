"""Training a network on a synthetic dataset: augmentation, validation per epoch, early stopping, checkpoints.

:func:`train` is what ``defoscan train`` runs. One epoch visits every training window once in an order drawn from
the epoch's own generator (``SeedSequence([seed, epoch])``), which also draws the augmentation; the torch generator
(dropout) is seeded per epoch too. So an epoch's result depends only on the weights it starts from, the seed and the
epoch number, and a run resumed from a checkpoint ends with the same weights as one never interrupted (same thread
count; float sums in torch's CPU kernels are ordered by thread).

After every epoch the validation windows are scored (no augmentation): loss, ROC AUC and recall at 1 % false
positive rate. The weights of the best epoch by AUC are kept; training stops after ``patience`` epochs without a
better AUC. A checkpoint directory beside the output (``MODEL.checkpoint/``) holds the last epoch's weights and
optimiser state (safetensors) and the history (JSON); it is removed once the model is written.

The learning rate follows a cosine from ``lr`` down to ``lr / 50`` over all the planned steps, after a linear warm-up
over the first 5 % of them.
"""

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from defoscan import __version__
from defoscan.fingerprint import digest
from defoscan.metrics import recall_at_fpr, roc_auc, threshold_at_fpr
from defoscan.model.augment import augment_window
from defoscan.model.domain import training_domain
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels, window_input
from defoscan.model.networks import build_model
from defoscan.model.weights import load_imagenet_alexnet, load_model, save_model
from defoscan.outputs import atomic_path

CHECKPOINT_FORMAT = "defoscan-checkpoint/1"


@dataclass
class TrainConfig:
    """Everything that decides a training run (all of it goes into the model card).

    Parameters
    ----------
    arch : str
        ``compact`` or ``alexnet`` (:func:`defoscan.model.build_model`).
    width : int
        Channels of the compact net's first stage.
    separable : bool
        Compact net with depthwise-separable convolutions (dense 3x3 by default: faster to train on CPU).
    fcn : bool
        Train the compact net's per-pixel head too (loss on the deformation mask, weighted by ``mask_weight``).
    recipe : dict
        Input recipe (:mod:`defoscan.model.inputs`); ``window``, ``cell_size`` (the smallest) and, for windows of
        several cell sizes, ``cell_sizes`` (all of them) are set from the dataset.
    epochs : int
        Most epochs.
    batch : int
    lr : float
        Peak learning rate (AdamW).
    weight_decay : float
    patience : int
        Epochs without a better validation AUC before stopping.
    seed : int
    threads : int
        torch intra-op threads.
    max_train, max_val : int or None
        Use only the first so many samples.
    dropout : bool
        Coverage dropout augmentation (not for gap-filled windows, whose gaps are already filled).
    mask_weight : float
    imagenet : str or None
        AlexNet only: a torchvision-format ImageNet AlexNet state dict file to start from (the paper fine-tuned
        ImageNet weights; :func:`defoscan.model.load_imagenet_alexnet`).
    init : str or None
        A defoscan model file to start from (fine-tuning): its network and input recipe must be this
        configuration's (:func:`initial_weights`).
    """

    arch: str = "compact"
    width: int = 16
    separable: bool = False
    fcn: bool = False
    recipe: dict = field(default_factory=lambda: dict(DEFAULT_RECIPE))
    epochs: int = 12
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 3
    seed: int = 0
    threads: int = 2
    max_train: int | None = None
    max_val: int | None = None
    dropout: bool = True
    mask_weight: float = 1.0
    imagenet: str | None = None
    init: str | None = None

    def model_options(self):
        """Keyword options of the network class."""
        if self.arch == "compact":
            return {"width": self.width, "fcn": self.fcn, "separable": self.separable, "seed": self.seed}
        return {"seed": self.seed}


QUICK = {"width": 8, "epochs": 2, "max_train": 512, "max_val": 256, "patience": 2}  # --quick: about a minute


def train(train_windows, val_windows, out, config, *, progress=None, log=None):
    """Train a network and write it (safetensors + JSON card) to ``out``.

    Parameters
    ----------
    train_windows, val_windows : defoscan.model.data.WindowSet
    out : str
        ``NAME.safetensors``; the card goes to ``NAME.json``, the checkpoint to ``NAME.checkpoint/``.
    config : TrainConfig
    progress : callable, optional
        ``progress(epoch, done, total)`` after every batch.
    log : callable, optional
        Called with one line per epoch.

    Returns
    -------
    dict
        The model card.
    """
    log = log or (lambda line: None)
    if config.max_train:
        train_windows = train_windows.subset(np.arange(min(config.max_train, len(train_windows))))
    sizes = train_windows.cell_sizes
    recipe = {**config.recipe, "window": int(train_windows.velocity.shape[-1]), "cell_size": sizes[0]}
    if len(sizes) > 1:  # trained across scales: the scanner may grid at any size in range (grid.model_cell_size)
        recipe["cell_sizes"] = sizes
    recipe["fill"] = bool(train_windows.filled)  # the scanner reads the gap-filled map only for a model trained so
    # A per-pixel head gives the measured better map (docs/MODEL.md): the scanner blends per-pixel times window
    # probability instead of the window probability alone.
    recipe["localise"] = "product" if config.fcn and config.arch == "compact" else "window"
    if val_windows.velocity.shape[1:] != train_windows.velocity.shape[1:]:
        raise ValueError("training and validation windows differ in shape")
    config = TrainConfig(**{**asdict(config), "recipe": recipe})
    if config.max_val:
        val_windows = val_windows.subset(np.arange(min(config.max_val, len(val_windows))))
    torch.set_num_threads(config.threads)
    model = build_model(config.arch, input_channels(recipe), **config.model_options())
    if config.imagenet:
        loaded, _ = load_imagenet_alexnet(model, config.imagenet)  # ValueError names the file and the problem
        log(f"started from ImageNet weights in {config.imagenet} ({len(loaded)} tensors)")
    if config.init:
        initial_weights(model, config.init, recipe)
        log(f"started from the weights of {config.init}")
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    fingerprint = _fingerprint(config, train_windows, val_windows)
    checkpoint = os.fspath(out).removesuffix(".safetensors") + ".checkpoint"
    state = _resume(checkpoint, fingerprint, model, optimiser, log)
    steps_per_epoch = math.ceil(len(train_windows) / config.batch)
    started = time.perf_counter() - state["elapsed_s"]
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["since_best"] >= config.patience:
            break
        loss = _train_epoch(model, optimiser, train_windows, config, epoch, steps_per_epoch, progress)
        metrics = evaluate_model(model, val_windows, recipe, batch=config.batch)
        metrics = {"epoch": epoch, "train_loss": loss, **{k: v for k, v in metrics.items() if k != "scores"}}
        metrics["elapsed_s"] = round(time.perf_counter() - started, 1)
        state["history"].append(metrics)
        auc = metrics["auc"] if math.isfinite(metrics["auc"]) else 0.0  # one class only: AUC undefined
        if auc > state["best_auc"]:
            state.update(best_auc=auc, best_epoch=epoch, since_best=0)
            state["best_threshold"] = metrics["threshold"]
            _save_tensors(model.state_dict(), os.path.join(checkpoint, "best.safetensors"))
        else:
            state["since_best"] += 1
        state.update(epoch=epoch, elapsed_s=metrics["elapsed_s"])
        _save_checkpoint(checkpoint, fingerprint, model, optimiser, state)
        log(
            f"epoch {epoch}/{config.epochs}: train loss {loss:.4f}, val loss {metrics['loss']:.4f}, "
            f"AUC {metrics['auc']:.4f}, recall@1%FPR {metrics['recall_at_1pct_fpr']:.3f}, "
            f"{metrics['elapsed_s']:.0f} s"
        )
    model.load_state_dict(load_file(os.path.join(checkpoint, "best.safetensors")))
    model.eval()
    threshold = state["best_threshold"]
    if recipe["localise"] != "window":
        threshold = pixel_threshold(model, val_windows, recipe, batch=config.batch)
    card = {
        "input": recipe,
        "threshold": threshold,
        "window_threshold": state["best_threshold"],
        "recipe": {"train": asdict(config), "software": {"defoscan": __version__, "torch": torch.__version__}},
        "data_profile": {
            "train": {"fingerprint": train_windows.fingerprint, "n": len(train_windows)},
            "val": {"fingerprint": val_windows.fingerprint, "n": len(val_windows)},
            "cell_size": sizes[0],
            "cell_sizes": sizes,
            "filled": train_windows.filled,
        },
        "applies_to": training_domain(train_windows),
        "metrics": {
            "best_epoch": state["best_epoch"],
            "val_auc": state["best_auc"],
            "history": state["history"],
            "train_seconds": state["elapsed_s"],
        },
    }
    save_model(model, out, card)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return card


def initial_weights(model, path, recipe):
    """Load the weights of the model file ``path`` into ``model`` (fine-tuning).

    Parameters
    ----------
    model : torch.nn.Module
        Built for this training run.
    path : str
        A model file of :func:`defoscan.model.save_model`.
    recipe : dict
        This run's input recipe: the file's must read its windows the same way (input mode, representation,
        window, cell size, filling), or its weights would be read on other inputs.

    Raises
    ------
    ValueError
        One message naming the file: not a model, another network, or another input recipe.
    """
    source, card = load_model(path)
    theirs = card.get("input") or {}
    same = ("mode", "representation", "scale", "intervals", "window", "cell_size", "fill")
    differing = [key for key in same if theirs.get(key) != recipe.get(key)]
    if differing:
        raise ValueError(f"{path}: its input recipe differs from this training's ({', '.join(differing)})")
    try:
        model.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"{path}: its network is not this training's ({first})") from None


def learning_rate(step, total, peak):
    """Linear warm-up over 5 % of the steps, then a cosine down to ``peak / 50``."""
    warm = max(1, int(0.05 * total))
    if step < warm:
        return peak * (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * t)))


def batch_inputs(velocity, recipe):
    """Network input tensor of a stack of windows."""
    return torch.from_numpy(window_input(velocity, recipe))


def _train_epoch(model, optimiser, windows, config, epoch, steps_per_epoch, progress):
    model.train()
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, epoch]))
    torch.manual_seed(config.seed * 100_003 + epoch)
    order = rng.permutation(len(windows))
    total_steps = steps_per_epoch * config.epochs
    running, seen = 0.0, 0
    for b in range(steps_per_epoch):
        which = np.sort(order[b * config.batch : (b + 1) * config.batch])
        velocity, masks = [], []
        for i in which:
            v, m = augment_window(
                windows.velocity[i], rng, mask=windows.mask[i], dropout=config.dropout and not windows.filled
            )
            velocity.append(v)
            masks.append(m)
        x = batch_inputs(np.stack(velocity), config.recipe)
        y = torch.from_numpy(windows.label[which].astype(np.float32))
        for group in optimiser.param_groups:
            group["lr"] = learning_rate((epoch - 1) * steps_per_epoch + b, total_steps, config.lr)
        out = model(x)
        loss = F.binary_cross_entropy_with_logits(out["logit"], y)
        if config.fcn and "mask_logit" in out:
            target = torch.from_numpy(np.stack(masks)[:, None].astype(np.float32))
            loss = loss + config.mask_weight * F.binary_cross_entropy_with_logits(out["mask_logit"], target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        running += float(loss.detach()) * len(which)
        seen += len(which)
        if progress:
            progress(epoch, b + 1, steps_per_epoch)
    return running / max(seen, 1)


def predict_logits(model, windows, recipe, *, batch=64):
    """Window logits of a :class:`~defoscan.model.data.WindowSet` (no augmentation).

    Returns
    -------
    numpy.ndarray of float32
    """
    model.eval()
    logits = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch):
            x = batch_inputs(windows.velocity[start : start + batch], recipe)
            logits.append(model(x)["logit"].float().numpy())
    return np.concatenate(logits) if logits else np.zeros(0, np.float32)


def evaluate_model(model, windows, recipe, *, batch=64):
    """Validation metrics of a model on windows: loss, AUC, recall and cut-off at 1 % false positive rate.

    Returns
    -------
    dict
        ``loss``, ``auc``, ``recall_at_1pct_fpr``, ``threshold`` (a probability) and ``scores`` (the logits).
    """
    logits = predict_logits(model, windows, recipe, batch=batch)
    labels = windows.label.astype(bool)
    loss = float(
        F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels.astype(np.float32)))
    )
    cut = threshold_at_fpr(logits, labels, 0.01)
    return {
        "loss": round(loss, 5),
        "auc": round(roc_auc(logits, labels), 5),
        "recall_at_1pct_fpr": round(recall_at_fpr(logits, labels, 0.01), 5),
        "threshold": float(1.0 / (1.0 + math.exp(-cut))) if math.isfinite(cut) else 0.0,
        "scores": logits,
    }


def map_peaks(model, windows, recipe, *, batch=64):
    """Largest value of the cell map a localising recipe blends, per window, over its cells with data.

    The map is :func:`defoscan.scan.cell_probability` in the recipe's ``localise`` mode (the per-pixel probability,
    or that times the window's); a window raises a region when its peak passes the cut-off.

    Returns
    -------
    numpy.ndarray of float64
        Probabilities; 0 for a window without data.
    """
    from defoscan.scan import cell_probability, localise_mode

    mode = localise_mode(recipe)
    model.eval()
    peaks = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch):
            stop = start + batch
            cells = cell_probability(model(batch_inputs(windows.velocity[start:stop], recipe)), mode)
            cells = cells.double().numpy()
            if cells.ndim == 1:  # a window map: one value per window
                cells = np.broadcast_to(cells[:, None, None], windows.count[start:stop].shape)
            observed = windows.count[start:stop] > 0
            peaks.append(np.where(observed, cells, 0.0).reshape(len(cells), -1).max(axis=1))
    return np.concatenate(peaks) if peaks else np.zeros(0)


def pixel_threshold(model, windows, recipe, *, fpr=0.01, batch=64):
    """Cut-off of a localising model's cell map: 1 % of the negative windows have a cell with data above it.

    The map a localising model gives (:func:`map_peaks`, blended over windows by the scanner) is cut at this value
    to form regions, so a negative window that would raise a region is a false positive at the window level, the
    same rate as the window cut-off's.

    Parameters
    ----------
    model : torch.nn.Module
        Returns ``"logit"`` and ``"mask_logit"`` ``(N, 1, H, W)``.
    windows : defoscan.model.data.WindowSet
        Validation windows; cells with data are those with points (``count > 0``).
    recipe : dict
    fpr : float
        Share of negative windows allowed a cell over the cut-off.
    batch : int

    Returns
    -------
    float
        A probability; 0.5 when there are no negative windows.
    """
    negatives = windows.subset(windows.label == 0)
    if len(negatives) == 0:
        return 0.5
    return float(np.quantile(map_peaks(model, negatives, recipe, batch=batch), 1.0 - fpr))


def _fingerprint(config, train_windows, val_windows):
    document = {
        "config": asdict(config),
        "train": [train_windows.fingerprint, len(train_windows), train_windows.filled],
        "val": [val_windows.fingerprint, len(val_windows), val_windows.filled],
        "defoscan": __version__,
    }
    return digest(document)


def _fresh_state():
    return {
        "epoch": 0,
        "history": [],
        "best_auc": -1.0,
        "best_epoch": 0,
        "best_threshold": 0.5,
        "since_best": 0,
        "elapsed_s": 0.0,
    }


def _resume(checkpoint, fingerprint, model, optimiser, log):
    """Load the checkpoint if it belongs to this run; start afresh (removing a foreign one) otherwise."""
    state_path = os.path.join(checkpoint, "state.json")
    if not os.path.exists(state_path):
        shutil.rmtree(checkpoint, ignore_errors=True)
        os.makedirs(checkpoint)
        return _fresh_state()
    try:
        with open(state_path, encoding="utf-8") as handle:
            saved = json.load(handle)
        if saved.get("format") != CHECKPOINT_FORMAT or saved.get("fingerprint") != fingerprint:
            raise ValueError("another run's checkpoint")
        tensors = load_file(os.path.join(checkpoint, "last.safetensors"))
    except (OSError, ValueError) as err:
        log(f"checkpoint in {checkpoint} not used ({err}); starting afresh")
        shutil.rmtree(checkpoint, ignore_errors=True)
        os.makedirs(checkpoint)
        return _fresh_state()
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optimiser.load_state_dict(_optimiser_state(tensors, saved["param_groups"]))
    log(f"resuming from {checkpoint} after epoch {saved['state']['epoch']}")
    return saved["state"]


def _save_tensors(tensors, path):
    with atomic_path(path) as temporary:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, temporary)


def _save_checkpoint(checkpoint, fingerprint, model, optimiser, state):
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimiser.state_dict()
    for index, entries in opt["state"].items():
        for name, value in entries.items():
            tensors[f"optimiser.{index}.{name}"] = torch.as_tensor(value)
    _save_tensors(tensors, os.path.join(checkpoint, "last.safetensors"))
    document = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "param_groups": opt["param_groups"]}
    document["state"] = state
    with atomic_path(os.path.join(checkpoint, "state.json")) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)


def _optimiser_state(tensors, param_groups):
    state = {}
    for key, value in tensors.items():
        if key.startswith("optimiser."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": param_groups}
