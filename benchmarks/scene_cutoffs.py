"""Choose each detector's cut-off on validation scenes (never the test suite of docs/EVALUATION.md).

    .venv/bin/python benchmarks/scene_cutoffs.py --scenes VALIDATION_SCENES --work DIR [--json OUT.json]

VALIDATION_SCENES is a scene suite drawn with another seed than the benchmark's (``make evaluate`` uses seed 7):

    defoscan synth --scenes --n 8 --seed 8 --shape 600 --per-kind 2 --positive-fraction 0.75 \
        --profile evaluation-work/fitted.json --out validation-scenes

Each scene is run once through ``defoscan detect`` (the CNN, all outputs kept); then every detector's regions are
drawn again from that run's gridded (despiked) map and probability map over a range of its cut-off — the CNN's
probability threshold (with its hysteresis ratio), the thresholding detector's k, Gi*'s z, ADA's k — and scored
against the truth as ``defoscan.benchmark.suite`` scores (object matching, pooled over scenes). Printed per detector and
cut-off: F1, precision, recall, false alarms per 1000 km² of the signal-free scenes; the best F1 whose signal-free
false-alarm rate is at most the goal's 1 per 1000 km² is marked.
"""

import argparse
import json
import os

import geopandas as gpd
import numpy as np
import rasterio

from defoscan.ada import AdaParameters, ada_detect
from defoscan.benchmark.suite import GOAL_FALSE_ALARMS, pool, scene_names
from defoscan.cnn_regions import LOW_THRESHOLD_RATIO, probability_regions
from defoscan.evaluate import read_polygons, score
from defoscan.fill.tiling import grid_origin
from defoscan.hotspot import HotspotParameters, gistar_detect
from defoscan.pipeline import detect
from defoscan.regions_store import label_polygons
from defoscan.threshold import ThresholdParameters, threshold_detect

CNN_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.453, 0.5, 0.55, 0.6, 0.7)
THRESHOLD_K = (3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0)
GISTAR_Z = (3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 40.0)
ADA_K = (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)


def scene_maps(scene_dir, name, work):
    """Run the CNN detect on one scene (kept in ``work``) and return its arrays."""
    out = os.path.join(work, name)
    with open(os.path.join(scene_dir, name + ".json")) as handle:
        info = json.load(handle)
    if not os.path.exists(os.path.join(out, "run.json")):
        detect([os.path.join(scene_dir, name + ".csv")], out, cell_size=float(info["cell_size"]))
    with rasterio.open(os.path.join(out, "velocity.tif")) as src:
        velocity = src.read(1).astype(np.float64)
        transform, crs = src.transform, src.crs
    with rasterio.open(os.path.join(out, "count.tif")) as src:
        count = src.read(1).astype(np.float64)
    with rasterio.open(os.path.join(out, "probability.tif")) as src:
        probability = src.read(1).astype(np.float64)
    with open(os.path.join(out, "run.json")) as handle:
        record = json.load(handle)
    area = record["tracks"][0]["cells_with_data"] * record["grid"]["cell_size_m"] ** 2 / 1e6
    truth = read_polygons(os.path.join(scene_dir, name + "-truth.geojson"), "truth")
    return {
        "velocity": velocity,
        "count": count,
        "probability": probability,
        "transform": transform,
        "crs": crs,
        "area": area,
        "truth": truth,
        "signals": bool(info["signals"]),
        "threshold": record["parameters"]["probability_threshold"],
    }


def regions_of(detector, value, maps):
    """Labels and regions of one detector at one cut-off on one scene's maps."""
    cell = abs(maps["transform"].a)
    origin = grid_origin(maps["transform"])
    velocity, count = maps["velocity"], maps["count"]
    if detector == "cnn":
        return probability_regions(
            maps["probability"],
            velocity,
            count,
            cell,
            value,
            low_threshold=LOW_THRESHOLD_RATIO * value,
            min_velocity=ThresholdParameters().min_velocity,  # as detect passes it
            origin=origin,
        )
    if detector == "threshold":
        labels, regions, _ = threshold_detect(velocity, count, cell, ThresholdParameters(k=value), origin=origin)
    elif detector == "gistar":
        labels, regions, _ = gistar_detect(velocity, count, cell, HotspotParameters(z=value), origin=origin)
    else:
        labels, regions, _ = ada_detect(velocity, count, cell, AdaParameters(k=value), origin=origin)
    return labels, regions


def scene_score(detector, value, maps):
    labels, regions = regions_of(detector, value, maps)
    polygons = label_polygons(labels, maps["transform"])
    frame = gpd.GeoDataFrame(
        [{"score": r["score"]} for r in regions],
        geometry=[polygons[r["label"]] for r in regions],
        crs=maps["crs"],
    )
    result = score(frame, maps["truth"], area_km2=maps["area"])
    result.pop("matches")
    result["signals"] = maps["signals"]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    names = scene_names(args.scenes)
    maps = []
    for name in names:
        print(f"detect {name}", flush=True)
        maps.append(scene_maps(args.scenes, name, args.work))
    sweeps = {"cnn": CNN_THRESHOLDS, "threshold": THRESHOLD_K, "gistar": GISTAR_Z, "ada": ADA_K}
    results = {}
    for detector, values in sweeps.items():
        rows = []
        for value in values:
            pooled = pool([scene_score(detector, value, m) for m in maps])
            rows.append({"value": value, **{k: pooled[k] for k in ("f1", "precision", "recall")}})
            rows[-1]["false_alarms_per_1000_km2"] = pooled["false_alarms_per_1000_km2"]
        allowed = [r for r in rows if (r["false_alarms_per_1000_km2"] or 0.0) <= GOAL_FALSE_ALARMS]
        best = max(allowed or rows, key=lambda r: r["f1"] or 0.0)
        print(f"\n{detector} ({len(names)} validation scenes; * best F1 within the false-alarm goal)")
        print("cut-off     F1  precision  recall  FA/1000 km2 signal-free")
        for r in rows:
            mark = "*" if r is best else " "
            fa = r["false_alarms_per_1000_km2"]
            print(
                f"{mark}{r['value']:6.3f}  {r['f1'] or 0:5.3f}  {r['precision'] or 0:9.3f}  {r['recall'] or 0:6.3f}  "
                f"{'-' if fa is None else f'{fa:.2f}'}"
            )
        results[detector] = {"sweep": rows, "best": best}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
