"""Regions from the shipped model's probability map on synthetic scenes, for several hysteresis lower cut-offs.

    .venv/bin/python benchmarks/regions_hysteresis.py --scenes SCENES_DIR [--model M.safetensors] [--json OUT.json]

Every scene (a synthetic dataset of maps larger than a window, ``defoscan synth --shape 256``) is scanned as
``detect`` scans a map (gap-filled first for a model trained on filled windows) and turned into regions by
:func:`defoscan.cnn_regions.probability_regions` at the card's cut-off, with the lower cut-off at each of
``--ratios`` times it. Per ratio, over all scenes: IoU of the region cells against the truth mask (cells with
data), the share of positive scenes with a region on their truth (found), the share of negative scenes with any
region (raised), and regions per found scene (fragments). Choose the ratio on validation scenes, report on test.
"""

import argparse
import json

import numpy as np
import torch

from defoscan.cnn_regions import probability_regions
from defoscan.model import load_model
from defoscan.model.data import load_windows
from defoscan.pipeline import bundled_model_path
from defoscan.scan import scan_probability


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--ratios", default="1,0.8,0.6,0.5,0.4,0.3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, card = load_model(args.model or bundled_model_path())
    recipe = card["input"]
    scenes = load_windows(args.scenes)
    filled = load_windows(args.scenes, fill=True, workers=args.threads) if recipe.get("fill") else scenes
    maps = [
        scan_probability(filled.velocity[i], model, recipe, valid=np.isfinite(scenes.velocity[i]))
        for i in range(len(scenes))
    ]
    cut = float(card["threshold"])
    results = {}
    for ratio in (float(r) for r in args.ratios.split(",")):
        inter = union = 0
        found, raised, fragments = [], [], []
        for i, probability in enumerate(maps):
            velocity, count, truth = scenes.velocity[i], scenes.count[i], scenes.mask[i]
            labels, regions = probability_regions(
                probability, velocity, count, scenes.cell_size, cut, low_threshold=ratio * cut
            )
            seen = np.isfinite(velocity)
            flagged = (labels > 0) & seen
            inter += int((flagged & truth).sum())
            union += int((flagged | (truth & seen)).sum())
            if scenes.label[i]:
                hit = bool((flagged & truth).any())
                found.append(hit)
                if hit:
                    fragments.append(len(regions))
            else:
                raised.append(len(regions) > 0)
        results[ratio] = {
            "low_threshold": ratio * cut,
            "iou": inter / max(union, 1),
            "found": float(np.mean(found)),
            "raised": float(np.mean(raised)),
            "regions_per_found_scene": float(np.mean(fragments)) if fragments else float("nan"),
        }
        print(ratio, results[ratio], flush=True)
    lines = [
        f"| lower cut-off (x {cut:.3f}) | IoU | positive scenes found (%) | negative scenes raised (%) | "
        "regions per found scene |",
        "|---|---|---|---|---|",
    ]
    for ratio, r in results.items():
        lines.append(
            f"| {ratio:g} ({r['low_threshold']:.3f}) | {r['iou']:.3f} | {100 * r['found']:.0f} | "
            f"{100 * r['raised']:.0f} | {r['regions_per_found_scene']:.2f} |"
        )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"scenes": args.scenes, "cut": cut, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
