"""Localisation: how well each model's probability map outlines the deforming cells of scenes larger than a window.

    .venv/bin/python benchmarks/model_localise.py --scenes SCENES_DIR [--json OUT.json] LABEL=MODEL.safetensors ...

SCENES_DIR is a synthetic dataset of maps larger than the models' windows (e.g. ``defoscan synth --shape 256``).
Every scene is scanned as ``detect`` scans a map (:func:`defoscan.scan.scan_probability`: windows a quarter window
apart, Gaussian blending weighted by the valid share; a model trained on gap-filled windows reads the scene
gap-filled, probabilities kept on the observed cells). Over all cells with data of all scenes:

- pixel AUC: deforming cells (the truth mask) against the others, ranked by probability;
- IoU at the model's cut-off: cells at or above it against the truth mask, pooled over the scenes;
- the share of cells of negative scenes at or above the cut-off (false alarms);
- scenes: the share of positive scenes with a cell of their truth at or above the cut-off (found), and of negative
  scenes with any cell at or above it (raised: a false detection).

A model with a per-pixel head is scanned three ways (``localise``: ``window``, ``pixel``, ``product``); the cut-off
of the way its card names is the card's (1 % of validation negatives), the window way's is the card's
``window_threshold`` (or its ``threshold`` for a card without one), and the remaining way has no validated
cut-off (pixel AUC only).
"""

import argparse
import json

import numpy as np
import torch

from defoscan.metrics import roc_auc
from defoscan.model import load_model
from defoscan.model.data import load_windows
from defoscan.scan import localise_mode, scan_probability


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
        shipped_way = localise_mode(card["input"])
        ways = ["window"] + (["pixel", "product"] if card.get("options", {}).get("fcn") else [])
        for way in ways:
            recipe = {**card["input"], "localise": way}
            # The card's cut-off is its own map's (1 % of validation negatives); the window one is kept beside it.
            # Other maps of a per-pixel model have no validated cut-off: their IoU is left out.
            if way == shipped_way:
                cutoff = card["threshold"]
            elif way == "window":
                cutoff = card.get("window_threshold", card["threshold"])
            else:
                cutoff = None
            source = filled if card["input"].get("fill") else None
            results[f"{label}, {way}"] = _score(scenes, model, recipe, cutoff, source)
            print(label, way, results[f"{label}, {way}"], flush=True)
    lines = [
        "| model, map | pixel AUC | cut-off | IoU at cut-off | false-alarm cells in negative scenes (%) | "
        "positive scenes found (%) | negative scenes raising a cell (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if r["cutoff"] is None:
            lines.append(f"| {name} | {r['pixel_auc']:.4f} | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {r['pixel_auc']:.4f} | {r['cutoff']:.3f} | {r['iou']:.3f} | {100 * r['false_alarm']:.2f} | "
            f"{100 * r['scenes_found']:.0f} | {100 * r['scenes_raised']:.0f} |"
        )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"scenes": args.scenes, "n": len(scenes), "results": results}, handle, indent=1)


def _score(scenes, model, recipe, cutoff, filled=None):
    probabilities, truths, negatives, hit, raised = [], [], [], [], []
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
        if cutoff is not None:
            flagged_cells = probability[seen] >= cutoff
            (hit if scenes.label[i] else raised).append(
                bool((flagged_cells & scenes.mask[i][seen]).any()) if scenes.label[i] else bool(flagged_cells.any())
            )
    p, t, n = (np.concatenate(a) for a in (probabilities, truths, negatives))
    result = {"pixel_auc": roc_auc(p, t), "cells": int(p.size), "cutoff": cutoff}
    if cutoff is not None:
        flagged = p >= cutoff
        result.update(
            iou=float((flagged & t).sum() / max((flagged | t).sum(), 1)),
            false_alarm=float(flagged[n].mean()) if n.any() else float("nan"),
            scenes_found=float(np.mean(hit)) if hit else float("nan"),
            scenes_raised=float(np.mean(raised)) if raised else float("nan"),
        )
    return result


if __name__ == "__main__":
    main()
