"""Country benchmark: ``defoscan detect --chunk`` end to end on a UK-sized input, and on a quarter of its area.

The input is the read benchmark's generated CSV (:mod:`bench_read_grid`): ten million points over Great Britain
(towns, a sparse rural background, four subsiding or rising bowls), a grid of about 660,000 km² at the default
100 m cells. The quarter is the points of the south-west quarter of that grid's extent (the densest part: England
and Wales). Each run is ``python -m defoscan detect CSV --out DIR --chunk 1024`` in a fresh process, from the CSV to
the GeoJSON; its wall time, the peak resident memory of its whole process tree (sampled every 0.1 s, workers
included) and the time of each stage (``run.json``) are reported. The issue's goals: under 10 minutes and 4 GiB
for the country; the quarter's peak memory within 1.3x of the country's (memory must not grow with area), its time
within 0.3x.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
from pyproj import Transformer

from bench_read_grid import FULL_POINTS, QUICK_POINTS, generate

NAME = "country"
CHUNK = 1024


def run(ctx):
    """Generate (or reuse) the inputs, run the country and the quarter, print and return the results."""
    n_points = QUICK_POINTS if ctx.quick else FULL_POINTS
    full = os.path.join(ctx.out_dir, f"gb_points_{n_points}.csv")
    generate(full, n_points)
    quarter = os.path.join(ctx.out_dir, f"gb_points_{n_points}_quarter.csv")
    extra = os.environ.get("DEFOSCAN_COUNTRY_ARGS", "").split()  # e.g. "--workers 2"
    results = {}
    for label, path in (("country", full), ("quarter", quarter)):
        if label == "quarter" and not os.path.exists(quarter):
            _write_quarter(full, quarter, results["country"]["grid"])
        results[label] = _detect(path, os.path.join(ctx.out_dir, f"country-{label}"), extra)
        print(f"{label}: " + json.dumps({k: v for k, v in results[label].items() if k != "grid"}))
    markdown = _markdown(results, extra)
    print()
    print(markdown)
    return {"summary": results, "markdown": markdown}


def _detect(path, out, extra):
    """One run in a fresh process: wall time, peak RSS of the process tree, the run record."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "defoscan", "detect", path, "--out", out, "--chunk", str(CHUNK), *extra]
    started = time.perf_counter()
    proc = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"detect failed ({proc.returncode}): {proc.stderr.read().decode()[-3000:]}")
    with open(os.path.join(out, "run.json")) as handle:
        record = json.load(handle)
    return {
        "points": record["points"],
        "grid": record["grid"],
        "area_km2": record["grid"]["width"] * record["grid"]["height"] * record["grid"]["cell_size_m"] ** 2 / 1e6,
        "cells": record["grid"]["width"] * record["grid"]["height"],
        "cells_with_data": sum(t["cells_with_data"] for t in record["tracks"]),
        "detections": record["detections"]["count"],
        "wall_s": round(wall, 1),
        "peak_mib": round(peak / 2**20),
        "timings": record["timings"],
    }


def _write_quarter(full, quarter, grid):
    """The points of the south-west quarter of the country grid's extent, as a CSV of the same layout."""
    west, east, south, north = grid["bounds"]
    to_grid = Transformer.from_crs("EPSG:4326", grid["crs"], always_xy=True)
    schema = pa.schema([("longitude", pa.float64()), ("latitude", pa.float64()), ("velocity", pa.float64())])
    reader = pacsv.open_csv(
        full, convert_options=pacsv.ConvertOptions(column_types=dict(zip(schema.names, schema.types, strict=True)))
    )
    with open(quarter + ".part", "wb") as handle:
        handle.write((",".join(schema.names) + "\n").encode())
        with pacsv.CSVWriter(handle, schema, write_options=pacsv.WriteOptions(include_header=False)) as writer:
            for batch in reader:
                x, y = to_grid.transform(batch.column(0).to_numpy(), batch.column(1).to_numpy())
                keep = (np.asarray(x) < (west + east) / 2) & (np.asarray(y) < (south + north) / 2)
                writer.write_table(pa.Table.from_batches([batch]).filter(pa.array(keep)))
    os.replace(quarter + ".part", quarter)


def _markdown(results, extra):
    country, quarter = results["country"], results["quarter"]
    stages = ("read_s", "despike_grid_s", "fill_s", "scan_s", "detect_s", "write_s", "total_s")
    names = ("read + partition", "despike + grid", "fill", "scan", "regions", "write", "total (in run.json)")
    options = " ".join(["--chunk", str(CHUNK), *extra])
    lines = [
        f"`defoscan detect CSV --out DIR {options}` in a fresh process, end to end (CSV to GeoJSON); peak memory of "
        "the whole process tree (sampled every 0.1 s).",
        "",
        "| input | points | grid (cells) | extent km² | cells with data | detections | wall (s) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in (("country", country), ("quarter", quarter)):
        g = r["grid"]
        lines.append(
            f"| {label} | {r['points']:,} | {g['width']:,} x {g['height']:,} | {r['area_km2']:,.0f} | "
            f"{r['cells_with_data']:,} | {r['detections']} | {r['wall_s']:.1f} | {r['peak_mib']:,} |"
        )
    lines += ["", "| stage (s) | country | quarter |", "|---|---:|---:|"]
    for key, name in zip(stages, names, strict=True):
        lines.append(f"| {name} | {country['timings'].get(key, 0):.1f} | {quarter['timings'].get(key, 0):.1f} |")
    ratio_t = quarter["wall_s"] / country["wall_s"]
    ratio_m = country["peak_mib"] / quarter["peak_mib"]
    lines += [
        "",
        f"Goals: country under 600 s ({country['wall_s']:.0f} s: "
        f"{'met' if country['wall_s'] < 600 else 'not met'}) and "
        f"under 4096 MiB ({country['peak_mib']:,} MiB: {'met' if country['peak_mib'] < 4096 else 'not met'}); "
        f"quarter time within 0.3x of the country's ({ratio_t:.2f}x: {'met' if ratio_t <= 0.3 else 'not met'}); "
        f"country peak within 1.3x of the quarter's ({ratio_m:.2f}x: {'met' if ratio_m <= 1.3 else 'not met'}).",
    ]
    return "\n".join(lines)
