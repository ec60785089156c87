"""Experiment (issue 18): fine-tune the shipped model on real city fields (training cities) + fitted windows.

    .venv/bin/python benchmarks/city_finetune.py OUT.safetensors 5e-4 4 WORK

WORK holds ``city-train.npz`` and ``city-val.npz`` (benchmarks/city_windows.py) and the fitted datasets ``fit-train``
(``defoscan synth --n 2400 --seed 43 --profile fitted.json``) and ``fit-val`` (``--n 800 --seed 44``). The result lost
on validation (docs/MODEL.md, "Fine-tuned on real city fields"); kept to reproduce it.
"""

import json
import os
import sys

import numpy as np

from defoscan.model.data import WindowSet, concat_windows, filled_windows, load_windows
from defoscan.model.inputs import recipe_with
from defoscan.model.train import TrainConfig, train

SHIPPED = os.path.join(
    os.path.dirname(__file__), "..", "src", "defoscan", "data", "model", "defoscan-compact.safetensors"
)


def city_set(path, cache_dir):
    arrays = np.load(path)
    meta = json.load(open(path + ".json"))
    n = len(arrays["label"])
    ws = WindowSet(
        arrays["velocity"],
        arrays["count"],
        arrays["mask"],
        arrays["label"].astype(np.int8),
        np.arange(n, dtype=np.int64),
        meta["info"],
        50.0,
        meta["fingerprint"],
    )
    os.makedirs(cache_dir, exist_ok=True)
    ws.velocity = filled_windows(cache_dir, ws, workers=2)
    ws.filled = True
    return ws


if __name__ == "__main__":
    out, lr, epochs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    base = sys.argv[4]
    train_sets = [city_set(f"{base}/city-train.npz", f"{base}/city-train-cache")]
    val_sets = [city_set(f"{base}/city-val.npz", f"{base}/city-val-cache")]
    train_sets.append(load_windows(f"{base}/fit-train", fill=True, workers=2))
    val_sets.append(load_windows(f"{base}/fit-val", fill=True, workers=2))
    tr, va = concat_windows(train_sets), concat_windows(val_sets)
    print("train", len(tr.label), int(tr.label.sum()), "val", len(va.label), int(va.label.sum()), flush=True)
    config = TrainConfig(
        fcn=True,
        width=16,
        lr=lr,
        epochs=epochs,
        patience=epochs,
        init=SHIPPED,
        recipe=recipe_with(mode="single"),
        threads=2,
    )
    card = train(tr, va, out, config, log=print)
    print(json.dumps(card["metrics"]["history"]), card["threshold"])
