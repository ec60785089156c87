"""Read + grid benchmark: defoscan's ``read_input`` then ``grid_points`` against a plain ``pyarrow.csv.read_csv``.

The input is a generated CSV of ``longitude, latitude, velocity`` over Great Britain (working CRS EPSG:27700),
with town-like clusters of points over a sparse rural background, as a Sentinel-1 PS/DS map has. Each side runs
in a fresh subprocess so its peak resident memory (VmHWM) is its own; the file is read once, untimed,
first so both sides find it in the page cache. The figure is the ratio of defoscan's read+grid time to the
plain read's time, both medians of ``repeats`` runs.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from process_stats import cpu_seconds, peak_mib

NAME = "read_grid"
SEED = 20240611
FULL_POINTS = 10_000_000
QUICK_POINTS = 1_000_000
GENERATOR_VERSION = 2  # bump when the generated content changes, so a cached file is rebuilt

# Towns of Great Britain: longitude, latitude, relative weight (roughly population), spread in km.
TOWNS = (
    (-0.128, 51.507, 90, 14),  # London
    (-1.898, 52.486, 12, 8),  # Birmingham
    (-2.244, 53.483, 14, 9),  # Manchester
    (-1.549, 53.801, 8, 6),  # Leeds
    (-4.251, 55.864, 10, 7),  # Glasgow
    (-2.983, 53.408, 8, 6),  # Liverpool
    (-1.470, 53.381, 6, 5),  # Sheffield
    (-1.613, 54.978, 7, 6),  # Newcastle
    (-2.588, 51.454, 6, 5),  # Bristol
    (-3.188, 55.953, 5, 5),  # Edinburgh
    (-1.150, 52.954, 6, 5),  # Nottingham
    (-1.131, 52.637, 4, 4),  # Leicester
    (-3.179, 51.481, 4, 4),  # Cardiff
    (-1.519, 52.406, 3, 4),  # Coventry
    (-0.337, 53.745, 3, 3),  # Hull
    (-1.404, 50.909, 4, 4),  # Southampton
    (-1.088, 50.819, 3, 3),  # Portsmouth
    (-4.143, 50.376, 3, 3),  # Plymouth
    (-2.180, 53.003, 3, 4),  # Stoke-on-Trent
    (-2.094, 57.150, 2, 3),  # Aberdeen
    (-2.970, 56.462, 2, 3),  # Dundee
    (-3.944, 51.621, 2, 3),  # Swansea
    (-0.140, 50.823, 3, 3),  # Brighton
    (-1.258, 51.752, 2, 3),  # Oxford
    (0.119, 52.205, 2, 3),  # Cambridge
    (1.297, 52.630, 2, 3),  # Norwich
    (-1.082, 53.960, 2, 3),  # York
    (-3.533, 50.718, 2, 3),  # Exeter
    (-4.224, 57.478, 1, 2),  # Inverness
    (-2.935, 54.893, 1, 2),  # Carlisle
    (-1.235, 54.574, 2, 3),  # Middlesbrough
    (-2.720, 53.763, 2, 3),  # Preston
    (-0.755, 52.041, 2, 3),  # Milton Keynes
    (-0.973, 51.454, 2, 3),  # Reading
    (0.520, 51.380, 2, 4),  # Medway
    (-1.862, 50.720, 2, 3),  # Bournemouth
    (-2.360, 51.381, 1, 2),  # Bath
    (-3.002, 51.588, 1, 2),  # Newport
    (-3.830, 53.280, 1, 2),  # Conwy
)
# Land boxes for the rural background (west, east, south, north; degrees) with their weights: the sea gets none.
LAND = (
    (-5.6, 1.7, 50.2, 52.9, 5),  # southern England and Wales
    (-3.1, 0.1, 52.9, 54.6, 3),  # northern England
    (-5.0, -1.8, 54.6, 57.6, 2),  # southern and central Scotland
    (-5.6, -2.0, 57.0, 58.6, 1),  # Highlands
)
# Deforming spots: longitude, latitude, peak velocity (mm/yr), radius (km).
BOWLS = (
    (-0.128, 51.507, -12.0, 3.0),
    (-1.549, 53.801, -8.0, 2.0),
    (-3.188, 55.953, 5.0, 1.5),
    (-2.244, 53.483, -20.0, 1.0),
)
_TOWN_SHARE = 0.75  # of points in towns; the rest scattered over the land boxes
_CHUNK = 1_000_000


def generate(path, n_points, seed=SEED):
    """Write the benchmark CSV at ``path`` unless a file made with the same parameters is there.

    Returns
    -------
    bool
        True when the file was (re)generated, False when reused.
    """
    params = {"n_points": n_points, "seed": seed, "version": GENERATOR_VERSION}
    stamp = path + ".json"
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp) as handle:
            if json.load(handle) == params:
                return False
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    rng = np.random.default_rng(seed)
    towns = np.array(TOWNS, dtype=np.float64)
    land = np.array(LAND, dtype=np.float64)
    schema = pa.schema([("longitude", pa.float64()), ("latitude", pa.float64()), ("velocity", pa.float64())])
    tmp = path + ".part"
    with open(tmp, "wb") as handle:
        handle.write((",".join(schema.names) + "\n").encode())  # unquoted, as processors write it
        with pacsv.CSVWriter(handle, schema, write_options=pacsv.WriteOptions(include_header=False)) as writer:
            for start in range(0, n_points, _CHUNK):
                lon, lat, vel = _chunk(rng, min(_CHUNK, n_points - start), towns, land)
                writer.write_table(pa.table([lon, lat, vel], schema=schema))
    os.replace(tmp, path)
    with open(stamp, "w") as handle:
        json.dump(params, handle)
    return True


def _chunk(rng, n, towns, land):
    in_town = rng.random(n) < _TOWN_SHARE
    lon, lat = np.empty(n), np.empty(n)
    k = int(in_town.sum())
    town = rng.choice(len(towns), size=k, p=towns[:, 2] / towns[:, 2].sum())
    # Gaussian spread in km around the centre; exponential scale factor so some points reach the suburbs.
    spread = (towns[town, 3] * rng.exponential(0.5, k))[:, None] * rng.standard_normal((k, 2))
    lat[in_town] = towns[town, 1] + spread[:, 1] / 111.2
    lon[in_town] = towns[town, 0] + spread[:, 0] / (111.2 * np.cos(np.radians(towns[town, 1])))
    box = rng.choice(len(land), size=n - k, p=land[:, 4] / land[:, 4].sum())
    lon[~in_town] = rng.uniform(land[box, 0], land[box, 1])
    lat[~in_town] = rng.uniform(land[box, 2], land[box, 3])
    vel = rng.normal(0.0, 1.5, n)
    for blon, blat, peak, radius in BOWLS:
        d2 = ((lon - blon) * 111.2 * np.cos(np.radians(blat))) ** 2 + ((lat - blat) * 111.2) ** 2
        vel += peak * np.exp(-d2 / (2 * radius**2))
    # As a processor writes them: 6 decimals of a degree (about 0.1 m), velocity to 0.01 mm/yr.
    return np.round(lon, 6), np.round(lat, 6), np.round(vel, 2)


def run(ctx):
    """Generate (or reuse) the input, time both sides ``ctx.repeats`` times, print and return the results.

    Parameters
    ----------
    ctx : run.Context
        ``quick``, ``repeats`` and ``out_dir``.

    Returns
    -------
    dict
        ``summary`` (figures) and ``markdown`` (a section for BENCHMARKS.md).
    """
    n_points = QUICK_POINTS if ctx.quick else FULL_POINTS
    path = os.path.join(ctx.out_dir, f"gb_points_{n_points}.csv")
    started = time.perf_counter()
    made = generate(path, n_points)
    size_mb = os.path.getsize(path) / 2**20
    print(
        f"input: {path} ({n_points:,} points, {size_mb:.0f} MiB, seed {SEED}), "
        + (f"generated in {time.perf_counter() - started:.1f} s" if made else "reused")
    )
    _warm_page_cache(path)
    runs = {"baseline": [], "defoscan": [], "projection": []}
    for i in range(ctx.repeats):  # interleaved, so a busy spell on the machine hits both sides alike
        for side in runs:
            result = _child(side, path)
            if result["rows"] != n_points:
                raise RuntimeError(f"{side} read {result['rows']:,} rows of {n_points:,}")
            runs[side].append(result)
            print(f"  run {i + 1}/{ctx.repeats} {side:10s} " + ", ".join(f"{k} {v}" for k, v in result.items()))
    summary = _summarise(runs, n_points)
    markdown = _markdown(summary, n_points, size_mb)
    print()
    print(markdown)
    return {"summary": summary, "markdown": markdown}


def _warm_page_cache(path):
    with open(path, "rb") as handle:
        while handle.read(16 << 20):
            pass


def _child(side, path):
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", side, path],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{side} run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summarise(runs, n_points):
    def med(side, key):
        return statistics.median(r[key] for r in runs[side])

    base = med("baseline", "total_s")
    summary = {
        "points": n_points,
        "repeats": len(runs["baseline"]),
        "baseline_s": base,
        "baseline_cpu_s": med("baseline", "cpu_s"),
        "baseline_sys_s": med("baseline", "sys_s"),
        "baseline_peak_mib": max(r["peak_mib"] for r in runs["baseline"]),
        "baseline_import_mib": med("baseline", "import_mib"),
        "read_s": med("defoscan", "read_s"),
        "grid_s": med("defoscan", "grid_s"),
        "total_s": med("defoscan", "total_s"),
        "cpu_s": med("defoscan", "cpu_s"),
        "sys_s": med("defoscan", "sys_s"),
        "peak_mib": max(r["peak_mib"] for r in runs["defoscan"]),
        "read_peak_mib": max(r["read_peak_mib"] for r in runs["defoscan"]),
        "import_mib": med("defoscan", "import_mib"),
        "cell_size": runs["defoscan"][0]["cell_size"],
        "grid_shape": runs["defoscan"][0]["grid_shape"],
        "occupied_cells": runs["defoscan"][0]["occupied_cells"],
        "runs": {side: [r["total_s"] for r in results] for side, results in runs.items()},
    }
    summary["projection_s"] = med("projection", "total_s")
    summary["projection_cpu_s"] = med("projection", "cpu_s")
    summary["projection_sys_s"] = med("projection", "sys_s")
    summary["ratio"] = summary["total_s"] / base
    summary["best_ratio"] = min(r["total_s"] for r in runs["defoscan"]) / min(r["total_s"] for r in runs["baseline"])
    summary["cpu_ratio"] = summary["cpu_s"] / summary["baseline_cpu_s"]
    summary["read_ratio"] = summary["read_s"] / base
    return summary


def _markdown(s, n_points, size_mb):
    def rate(seconds):
        return f"{n_points / seconds / 1e6:.2f} M" if seconds > 0 else "-"

    rows = [
        (
            "plain `pyarrow.csv.read_csv`",
            s["baseline_s"],
            (s["baseline_cpu_s"], s["baseline_sys_s"]),
            s["baseline_peak_mib"],
            "1.00",
        ),
        ("defoscan `read_input`", s["read_s"], None, s["read_peak_mib"], f"{s['read_ratio']:.2f}"),
        ("defoscan `grid_points`", s["grid_s"], None, None, ""),
        ("defoscan read + grid", s["total_s"], (s["cpu_s"], s["sys_s"]), s["peak_mib"], f"**{s['ratio']:.2f}**"),
        (
            "for reference: PROJ WGS 84 -> EPSG:27700 alone, one thread",
            s["projection_s"],
            (s["projection_cpu_s"], s["projection_sys_s"]),
            None,
            f"{s['projection_s'] / s['baseline_s']:.2f}",
        ),
    ]
    lines = [
        f"Input: {n_points:,} points ({size_mb:.0f} MiB CSV: longitude, latitude, velocity) over Great Britain, "
        f"working CRS EPSG:27700; default cell {s['cell_size']:g} m, grid {s['grid_shape'][0]} x "
        f"{s['grid_shape'][1]} cells, {s['occupied_cells']:,} occupied. Median of {s['repeats']} runs, "
        "each side in a fresh process, page cache warm.",
        "",
        "| step | time (s) | CPU (s) | of which system | points/s | peak RSS (MiB) | time / plain read |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, seconds, cpu, peak, ratio in rows:
        cpu_text = f"{cpu[0]:.2f} | {cpu[1]:.2f}" if cpu is not None else " | "
        peak_text = f"{peak:.0f}" if peak is not None else ""
        lines.append(f"| {name} | {seconds:.2f} | {cpu_text} | {rate(seconds)} | {peak_text} | {ratio} |")
    each = "; ".join(f"{side} " + ", ".join(f"{t:.2f}" for t in times) for side, times in s["runs"].items())
    lines += [
        "",
        f"Every run (s, in order, the sides interleaved): {each}. Best run against best run: "
        f"{s['best_ratio']:.2f}x the plain read; CPU time against CPU time: {s['cpu_ratio']:.2f}x.",
        "",
        f"Peak RSS is the whole process (VmHWM), interpreter and imports included: {s['baseline_import_mib']:.0f}"
        f" MiB after importing pyarrow, {s['import_mib']:.0f} MiB after importing defoscan. The read's peak is"
        " taken just after `read_input`.",
    ]
    return "\n".join(lines)


def _measure(side, path):
    """One measured run in this (fresh) process; prints a JSON line."""
    if side == "defoscan":
        from defoscan.grid import grid_points
        from defoscan.io import read_input
    import_mib = peak_mib()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    if side == "baseline":
        table = pacsv.read_csv(path)
        t1 = time.perf_counter()
        result = {"total_s": t1 - t0, "rows": table.num_rows}
    elif side == "projection":  # the floor under defoscan's read: the coordinate transformation it must do
        from pyproj import Transformer

        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=["longitude", "latitude"]))
        lon, lat = (table.column(name).to_numpy() for name in ("longitude", "latitude"))
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True).transform(lon, lat)
        result = {"total_s": time.perf_counter() - t0, "rows": lon.size}
    else:
        points = read_input(path)
        t1 = time.perf_counter()
        read_peak = peak_mib()
        grid = grid_points(points)
        t2 = time.perf_counter()
        result = {
            "read_s": t1 - t0,
            "grid_s": t2 - t1,
            "total_s": t2 - t0,
            "rows": points.sizes["point"],
            "read_peak_mib": read_peak,
            "cell_size": float(grid.rio.resolution()[0]),
            "grid_shape": [grid.sizes["y"], grid.sizes["x"]],
            "occupied_cells": int((grid["count"].values > 0).sum()),
        }
    cpu1 = cpu_seconds()
    result["cpu_s"], result["sys_s"] = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    result["peak_mib"] = peak_mib()
    result["import_mib"] = import_mib
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _measure(sys.argv[2], sys.argv[3])
    else:
        sys.exit("run through benchmarks/run.py")
