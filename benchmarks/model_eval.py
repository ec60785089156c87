"""Score trained networks on a held-out synthetic test set: AUC, recall at 1 % FPR, per kind and velocity band.

    .venv/bin/python benchmarks/model_eval.py --test TEST_DIR [--limit N] --json OUT.json LABEL=MODEL.safetensors ...

Each model is scored on the same windows (gap-filled first when its card says it was trained on filled windows).
Prints one table per model (kinds, bands) and one comparison table of all of them, as Markdown, for docs/MODEL.md.
"""

import argparse
import json
import math
import os
import platform
import sys

import torch

from defoscan.model import load_model
from defoscan.model.assess import timed_logits, window_scores
from defoscan.model.data import load_windows
from defoscan.model.train import map_peaks
from defoscan.scan import localise_mode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", required=True, help="test dataset directory (defoscan synth)")
    parser.add_argument("--limit", type=int, default=None, help="first N windows only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL", help="model files, each with a label")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    windows = {}
    results = {}
    for item in args.models:
        label, _, path = item.rpartition("=")
        label = label or os.path.basename(path)
        model, card = load_model(path)
        recipe = card["input"]
        filled = bool(recipe.get("fill"))
        if filled not in windows:
            windows[filled] = load_windows(args.test, limit=args.limit, fill=filled, workers=args.threads)
        logits, seconds = timed_logits(model, windows[filled], recipe)
        scores = window_scores(logits, windows[filled])
        train = card.get("recipe", {}).get("train", {})
        scores.update(
            model=os.path.abspath(path),
            arch=card["arch"],
            options=card.get("options"),
            parameters=card.get("parameters"),
            recipe=recipe,
            train_n=card.get("data_profile", {}).get("train", {}).get("n"),
            train_fingerprint=card.get("data_profile", {}).get("train", {}).get("fingerprint"),
            epochs=len(card.get("metrics", {}).get("history", [])),
            train_seconds=card.get("metrics", {}).get("train_seconds"),
            val_auc=card.get("metrics", {}).get("val_auc"),
            ms_per_window=1e3 * seconds / len(windows[filled]),
            fcn=train.get("fcn"),
        )
        results[label] = scores
        print(per_model_markdown(label, scores), flush=True)
        if localise_mode(recipe) != "window":  # what detect cuts: the cell map; a window scores its peak cell
            peaks = map_peaks(model, windows[filled], recipe)
            name = f"{label}, {localise_mode(recipe)} map peak"
            results[name] = {**scores, **window_scores(peaks, windows[filled])}
            print(per_model_markdown(name, results[name]), flush=True)
    print(comparison_markdown(results))
    if args.json:
        document = {
            "command": " ".join(sys.argv),
            "test": os.path.abspath(args.test),
            "limit": args.limit,
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, default=float)


def _pct(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def per_model_markdown(label, scores):
    """Recall at 1 % FPR (and AUC) per kind and per velocity band, for one model."""
    lines = [
        f"### {label}: AUC {scores['auc']:.4f}, recall at 1 % FPR {_pct(scores['recall'])} % "
        f"({scores['n_positive']} positive, {scores['n_negative']} negative windows; FPR of hard negatives "
        f"{_pct(scores['fpr_hard'])} %, easy {_pct(scores['fpr_easy'])} %)",
        "",
        "| group | windows | recall at 1 % FPR (%) | AUC |",
        "|---|---|---|---|",
    ]
    groups_of = (("kind", scores["by_kind"]), ("peak speed, mm/yr", scores["by_band"]), ("size", scores["by_size"]))
    for title, groups in groups_of:
        for name, group in groups.items():
            auc = "-" if math.isnan(group["auc"]) else f"{group['auc']:.4f}"
            lines.append(f"| {title}: {name} | {group['n']} | {_pct(group['recall'])} | {auc} |")
    return "\n".join(lines) + "\n"


def comparison_markdown(results):
    """One row per model: AUC, recall at 1 % FPR, FPR of hard negatives, training size and time, inference."""
    lines = [
        "| model | AUC | recall at 1 % FPR (%) | recall 2-5 mm/yr (%) | hard-negative FPR (%) | train windows x "
        "epochs | train min | ms/window |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, s in results.items():
        slow = s["by_band"].get("2-5", {}).get("recall")
        minutes = "-" if s["train_seconds"] is None else f"{s['train_seconds'] / 60:.1f}"
        lines.append(
            f"| {label} | {s['auc']:.4f} | {_pct(s['recall'])} | {_pct(slow)} | {_pct(s['fpr_hard'])} | "
            f"{s['train_n']} x {s['epochs']} | {minutes} | {s['ms_per_window']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
