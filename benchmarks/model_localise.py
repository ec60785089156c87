"""Localisation: how well each model's probability map outlines the deforming cells of scenes larger than a window.

    .venv/bin/python benchmarks/model_localise.py --scenes SCENES_DIR [--json OUT.json] LABEL=MODEL.safetensors ...

SCENES_DIR is a synthetic dataset of maps larger than the models' windows (e.g. ``defoscan synth --shape 256``).
Every scene is scanned as ``detect`` scans a map (:func:`defoscan.scan.scan_probability`: windows a quarter window
apart, Gaussian blending weighted by the valid share; a model trained on gap-filled windows reads the scene
gap-filled, probabilities kept on the observed cells). A model with a per-pixel head is scanned twice: blending its
window probability (``window``) and blending its per-pixel map (``pixel``). Over all cells with data of all scenes:

- pixel AUC: deforming cells (the truth mask) against the others, ranked by probability;
- IoU at the model's cut-off: cells at or above it against the truth mask, pooled over the scenes;
- and the share of cells of negative scenes at or above the cut-off (false alarms).
"""

import argparse
import json

import numpy as np
import torch

from defoscan.metrics import roc_auc
from defoscan.model import load_model
from defoscan.model.data import load_windows
from defoscan.scan import scan_probability


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    scenes = load_windows(args.scenes)
    filled = None
    results = {}
    for item in args.models:
        label, _, path = item.rpartition("=")
        model, card = load_model(path)
        if card["input"].get("fill") and filled is None:  # gap-filled scenes, as detect fills a map
            filled = load_windows(args.scenes, fill=True, workers=args.threads)
        ways = ["window"] + (["pixel"] if card.get("options", {}).get("fcn") else [])
        for way in ways:
            recipe = {**card["input"], "localise": way == "pixel"}
            # The card's cut-off is the per-pixel one for a localising model; the window one is kept beside it.
            pixel_card = bool(card["input"].get("localise"))
            cutoff = card["threshold"] if way == "pixel" or not pixel_card else card["window_threshold"]
            source = filled if card["input"].get("fill") else None
            results[f"{label}, {way}"] = _score(scenes, model, recipe, cutoff, source)
            print(label, way, results[f"{label}, {way}"], flush=True)
    lines = [
        "| model, map | pixel AUC | IoU at cut-off | false-alarm cells in negative scenes (%) |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['pixel_auc']:.4f} | {r['iou']:.3f} | {100 * r['false_alarm']:.2f} |")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"scenes": args.scenes, "n": len(scenes), "results": results}, handle, indent=1)


def _score(scenes, model, recipe, cutoff, filled=None):
    probabilities, truths, negatives = [], [], []
    for i in range(len(scenes)):
        velocity = scenes.velocity[i]
        if filled is None:
            probability = scan_probability(velocity, model, recipe)
        else:
            probability = scan_probability(filled.velocity[i], model, recipe, valid=np.isfinite(velocity))
        seen = np.isfinite(probability)
        probabilities.append(probability[seen])
        truths.append(scenes.mask[i][seen])
        negatives.append(np.full(seen.sum(), scenes.label[i] == 0))
    p, t, n = (np.concatenate(a) for a in (probabilities, truths, negatives))
    flagged = p >= cutoff
    return {
        "pixel_auc": roc_auc(p, t),
        "iou": float((flagged & t).sum() / max((flagged | t).sum(), 1)),
        "false_alarm": float(flagged[n].mean()) if n.any() else float("nan"),
        "cells": int(p.size),
    }


if __name__ == "__main__":
    main()
