"""Despiking benchmark: spikes removed and genuine signal kept, on synthetic maps with a known truth.

Two cases, each generated deterministically from its seed and cached under ``--out``:

- **points**: 1 million points over 40 x 40 km (quick: 250,000 over 20 x 20 km), clustered as a persistent
  scatterer map is (two thirds in towns of 0.4-2 km spread, the rest scattered over half of the land, in patches);
- **grid**: a 2048 x 2048 raster of 50 m cells (quick: 1024 x 1024), data on about half the cells, in patches
  with speckle, as a decorrelated InSAR raster has.

Velocity = a smooth correlated background (5 km and 1 km scales, 2.5 and 1 mm/yr) + localised signals + white
noise whose sigma varies smoothly over the map between 1 and 2 mm/yr + spikes. Signals are 100 m, 200 m, 500 m,
1 km and 3 km across, half flat-bottomed quarries (a disc), half Gaussian bowls (sigma = size / 4), amplitude
log-uniform in 5-100 mm/yr, 70 % subsidence; their footprint is the disc of that diameter. Spikes hit 1 % of the
points (cells with data), offset log-uniform in 10-100 mm/yr, either sign.

Measured: the share of spikes removed (by offset), the share of genuine signal points/cells removed (per signal
size), the share of background points/cells removed, and the time of :func:`defoscan.despike.despike_points` on
the points and :func:`defoscan.despike.despike_grid` on the grid, each in a fresh process. Baselines in the same
run: global clipping (``|v - median| > k * 1.4826 MAD`` over the whole map, same ``k``), and the local test
without the support rule (every candidate removed), which shows what that rule buys.

``python benchmarks/bench_despike.py --tune`` sweeps the parameters on separate seeds (``TUNING_SEEDS``); that
is how the defaults were chosen (docs/DESPIKE.md).
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from process_stats import cpu_seconds, peak_mib

NAME = "despike"
POINTS_SEED, GRID_SEED = 20250101, 20250102  # reported; never used for tuning
TUNING_SEEDS = (1, 2, 3)
GENERATOR_VERSION = 2  # bump when the generated content changes, so cached inputs are rebuilt
SIZES = (100, 200, 500, 1000, 3000)  # signal diameters, metres
SIGNALS_PER_KM2 = (0.04, 0.04, 0.025, 0.015, 0.004)  # per size, before overlap rejection
SPIKE_RATE = 0.01
SPIKE_GOAL, SIGNAL_GOAL, BACKGROUND_LIMIT = 0.95, 0.01, 0.0001  # the goals; tuning rule
NOISE_VALUES = (2.0, 3.0)  # SUPPORT_NOISE values tried
DEFAULTS_LABEL = "despike (defaults)"
WELL_SEEN = 3  # values in a signal's footprint for it to count as seen
SPIKE_BINS = ((10, 20), (20, 50), (50, 100))
K = 4.0  # the global clip uses despike's default k, so the rows compare like with like
NO_SUPPORT_RULE = 10**6  # min_support no neighbourhood can give: every candidate is removed
FULL = {"points": 1_000_000, "extent": 40_000.0, "grid": 2048}
QUICK = {"points": 250_000, "extent": 20_000.0, "grid": 1024}
CELL = 50.0


# --- synthetic maps -------------------------------------------------------------------------------------------


def smooth_field(shape, rng, scale):
    """Unit-variance Gaussian random field with a Gaussian correlation of ``scale`` cells (FFT, periodic)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    taper = np.exp(-2.0 * (np.pi * scale) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * taper, s=shape)
    return field / max(field.std(), 1e-12)


def background_layers(shape, rng, cell):
    """Smooth background (mm/yr) and noise sigma (mm/yr) on a grid of ``cell`` metres."""
    background = 2.5 * smooth_field(shape, rng, 5000.0 / cell) + 1.0 * smooth_field(shape, rng, 1000.0 / cell)
    sigma = 1.5 + 0.5 * np.tanh(smooth_field(shape, rng, 10_000.0 / cell))
    return background, sigma


def draw_signals(rng, extent):
    """Signal centres, diameters, shapes and amplitudes over a square of ``extent`` metres, none overlapping."""
    area_km2 = (extent / 1000.0) ** 2
    centres, sizes = [], []
    for size, density in sorted(zip(SIZES, SIGNALS_PER_KM2, strict=True), reverse=True):  # large ones first
        for _ in range(int(round(density * area_km2))):
            for _attempt in range(50):
                c = rng.uniform(size, extent - size, 2)
                if all(np.hypot(*(c - o)) > (size + s) / 2 + 200.0 for o, s in zip(centres, sizes, strict=True)):
                    centres.append(c)
                    sizes.append(size)
                    break
    n = len(sizes)
    amplitude = np.exp(rng.uniform(np.log(5.0), np.log(100.0), n)) * np.where(rng.random(n) < 0.7, -1.0, 1.0)
    quarry = np.arange(n) % 2 == 0
    return np.array(centres).reshape(-1, 2), np.array(sizes, dtype=float), quarry, amplitude


def signal_value(distance, size, quarry, amplitude):
    """Velocity of one signal at ``distance`` metres from its centre."""
    if quarry:
        return np.where(distance < size / 2, amplitude, 0.0)
    return amplitude * np.exp(-0.5 * (distance / (size / 4)) ** 2)


def add_spikes(rng, n):
    """Indices are chosen by the caller; offsets log-uniform in 10-100 mm/yr, either sign."""
    return np.exp(rng.uniform(np.log(10.0), np.log(100.0), n)) * rng.choice([-1.0, 1.0], n)


def make_points_case(seed, n_points, extent):
    """Clustered points with background, signals, noise and spikes, and the truth."""
    rng = np.random.default_rng(seed)
    shape = (int(extent // 100), int(extent // 100))  # background layers at 100 m
    background, sigma = background_layers(shape, rng, 100.0)
    n_towns = max(4, int(round((extent / 1000.0) ** 2 / 25.0)))
    towns = rng.uniform(0, extent, (n_towns, 2))
    spread = rng.uniform(400.0, 2000.0, n_towns)
    n_town = int(n_points * 2 / 3)
    xy = np.empty((0, 2))
    while len(xy) < n_town:  # rejection: keep points inside the square
        pick = rng.choice(n_towns, n_town, p=spread**2 / (spread**2).sum())
        more = towns[pick] + spread[pick, None] * rng.standard_normal((n_town, 2))
        xy = np.vstack([xy, more[((more >= 0) & (more < extent)).all(axis=1)]])
    xy = xy[:n_town]
    patches = smooth_field(shape, rng, 2000.0 / 100.0) > 0.0  # rural scatterers on half of the land, in patches
    rural = np.empty((0, 2))
    while len(rural) < n_points - n_town:
        more = rng.uniform(0, extent, (n_points, 2))
        rural = np.vstack([rural, more[patches[(more[:, 1] // 100).astype(int), (more[:, 0] // 100).astype(int)]]])
    xy = np.vstack([xy, rural[: n_points - n_town]])
    at = [xy[:, 1] / 100.0 - 0.5, xy[:, 0] / 100.0 - 0.5]
    v = ndimage.map_coordinates(background, at, order=1, mode="nearest")
    v += ndimage.map_coordinates(sigma, at, order=1, mode="nearest") * rng.standard_normal(n_points)
    size = np.zeros(n_points, dtype=np.int32)
    signal = np.full(n_points, -1, dtype=np.int32)
    centres, sizes, quarry, amplitude = draw_signals(rng, extent)
    tree = cKDTree(xy)
    for i, (c, s, q, a) in enumerate(zip(centres, sizes, quarry, amplitude, strict=True)):
        near = np.array(tree.query_ball_point(c, 2.5 * s / 2), dtype=np.int64)
        if near.size:
            d = np.hypot(*(xy[near] - c).T)
            v[near] += signal_value(d, s, q, a)
            size[near[d < s / 2]] = int(s)
            signal[near[d < s / 2]] = i
    spike = np.zeros(n_points, dtype=bool)
    spike[rng.choice(n_points, int(round(SPIKE_RATE * n_points)), replace=False)] = True
    offset = np.zeros(n_points)
    offset[spike] = add_spikes(rng, int(spike.sum()))
    v += offset
    return {
        "x": xy[:, 0],
        "y": xy[:, 1],
        "v": v.astype(np.float32),
        "spike": spike,
        "size": size,
        "signal": signal,
        "offset": offset,
    }


def make_grid_case(seed, n):
    """An ``n`` x ``n`` raster of 50 m cells, with the truth."""
    rng = np.random.default_rng(seed)
    shape = (n, n)
    background, sigma = background_layers(shape, rng, CELL)
    score = smooth_field(shape, rng, 1500.0 / CELL) + 0.5 * rng.standard_normal(shape)
    valid = score > np.quantile(score, 0.5)
    v = background + sigma * rng.standard_normal(shape)
    size = np.zeros(shape, dtype=np.int32)
    signal = np.full(shape, -1, dtype=np.int32)
    extent = n * CELL
    centres, sizes, quarry, amplitude = draw_signals(rng, extent)
    for i, (c, s, q, a) in enumerate(zip(centres, sizes, quarry, amplitude, strict=True)):
        reach = int(np.ceil(2.5 * s / 2 / CELL))
        col, row = int(c[0] // CELL), int((extent - c[1]) // CELL)
        r0, r1, c0, c1 = max(row - reach, 0), min(row + reach + 1, n), max(col - reach, 0), min(col + reach + 1, n)
        cy = extent - (np.arange(r0, r1) + 0.5) * CELL
        cx = (np.arange(c0, c1) + 0.5) * CELL
        d = np.hypot(cx[None, :] - c[0], cy[:, None] - c[1])
        v[r0:r1, c0:c1] += signal_value(d, s, q, a)
        size[r0:r1, c0:c1][d < s / 2] = int(s)
        signal[r0:r1, c0:c1][d < s / 2] = i
    flat = np.flatnonzero(valid)
    spike = np.zeros(shape, dtype=bool)
    spike.ravel()[rng.choice(flat, int(round(SPIKE_RATE * flat.size)), replace=False)] = True
    offset = np.zeros(shape)
    offset[spike] = add_spikes(rng, int(spike.sum()))
    v += offset
    v[~valid] = np.nan
    return {"v": v.astype(np.float32), "spike": spike, "size": size, "signal": signal, "offset": offset, "valid": valid}


def as_points(case):
    from defoscan.points import make_points

    return make_points(case["x"], case["y"], case["v"], crs="EPSG:3035")


def as_grid(case):
    from affine import Affine

    from defoscan.raster import make_raster

    n = case["v"].shape[0]
    return make_raster(case["v"], Affine(CELL, 0, 0, 0, -CELL, n * CELL), "EPSG:3035")


# --- methods ----------------------------------------------------------------------------------------------------


def global_clip(values, k=K):
    """The naive baseline: values more than ``k`` robust sigmas from the map's median."""
    finite = values[np.isfinite(values)]
    median = np.median(finite)
    sigma = 1.4826 * np.median(np.abs(finite - median))
    return np.abs(values - median) > k * sigma  # False where NaN


def removed_mask(kind, method, case, **params):
    """Boolean mask of what ``method`` removes from a case (``kind``: points or grid)."""
    from defoscan.despike import despike_grid, despike_points

    if method == "clip":
        return global_clip(case["v"])
    if kind == "points":
        return despike_points(as_points(case), **params)[1].values
    return despike_grid(as_grid(case), **params)[1].values


# --- metrics ----------------------------------------------------------------------------------------------------


def quality(removed, case):
    """Spikes removed, signal and background wrongly removed, as fractions with their counts.

    Signal figures come twice per size: over all its values, and over the signals seen by at least
    ``WELL_SEEN`` values (not counting spikes): one or two values cannot be told from a spike by any local test.
    """
    spike, size, signal = case["spike"], case["size"], case["signal"]
    valid = case.get("valid", np.ones(spike.shape, dtype=bool))
    removed = removed & valid
    magnitude = np.abs(case["offset"])
    out = {"spikes": int(spike.sum()), "spikes_removed": float(removed[spike].mean())}
    for lo, hi in SPIKE_BINS:
        sel = spike & (magnitude >= lo) & (magnitude < hi if hi < 100 else magnitude <= hi)
        out[f"spikes_removed_{lo}_{hi}"] = float(removed[sel].mean()) if sel.any() else float("nan")
    clean = valid & ~spike
    seen = np.bincount(signal[clean & (signal >= 0)], minlength=signal.max() + 1)
    well_seen = (signal >= 0) & (seen[np.maximum(signal, 0)] >= WELL_SEEN)
    for s in SIZES:
        for suffix, sel in (("", clean & (size == s)), ("_seen", clean & (size == s) & well_seen)):
            out[f"signal_{s}{suffix}_n"] = int(sel.sum())
            out[f"signal_{s}{suffix}_removed"] = float(removed[sel].mean()) if sel.any() else float("nan")
    sel = clean & (size == 0)
    out["background_n"] = int(sel.sum())
    out["background_removed"] = float(removed[sel].mean())
    return out


# --- the benchmark ----------------------------------------------------------------------------------------------


def cached_case(kind, out_dir, quick, seed=None):
    """Generate (or reuse) a case's ``.npz`` under ``out_dir``; returns its path."""
    dims = QUICK if quick else FULL
    seed = seed if seed is not None else (POINTS_SEED if kind == "points" else GRID_SEED)
    params = {"kind": kind, "seed": seed, "version": GENERATOR_VERSION, **dims}
    path = os.path.join(out_dir, f"despike_{kind}_{seed}_{'quick' if quick else 'full'}.npz")
    stamp = path + ".json"
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp) as handle:
            if json.load(handle) == params:
                return path
    if kind == "points":
        case = make_points_case(seed, dims["points"], dims["extent"])
    else:
        case = make_grid_case(seed, dims["grid"])
    np.savez(path + ".part.npz", **case)
    os.replace(path + ".part.npz", path)
    with open(stamp, "w") as handle:
        json.dump(params, handle)
    return path


def load_case(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def run(ctx):
    """Generate (or reuse) both cases, measure quality and time, print and return the results."""
    results = {}
    for kind in ("points", "grid"):
        started = time.perf_counter()
        path = cached_case(kind, ctx.out_dir, ctx.quick)
        case = load_case(path)
        n = case["v"].size
        print(f"{kind}: {path} ({n:,} values), ready in {time.perf_counter() - started:.1f} s")
        rows = {}
        for label, method, params in (
            (DEFAULTS_LABEL, "despike", {}),
            ("local test, no support rule", "despike", {"min_support": NO_SUPPORT_RULE}),
            (f"global clip, k = {K:g}", "clip", {}),
        ):
            rows[label] = quality(removed_mask(kind, method, case, **params), case)
            print(f"  {label}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in rows[label].items()))
        timing = {"despike": [], "clip": []}
        for i in range(ctx.repeats):  # interleaved, so a busy spell hits both sides alike
            for side in timing:
                timing[side].append(_child(kind, side, path))
                print(f"  run {i + 1}/{ctx.repeats} {side:8s} {timing[side][-1]}")
        results[kind] = {
            "n": n,
            "path": os.path.basename(path),
            "quality": rows,
            "time_s": {s: statistics.median(r["time_s"] for r in t) for s, t in timing.items()},
            "cpu_s": {s: statistics.median(r["cpu_s"] for r in t) for s, t in timing.items()},
            "peak_mib": {s: max(r["peak_mib"] for r in t) for s, t in timing.items()},
            "load_mib": {s: max(r["load_mib"] for r in t) for s, t in timing.items()},
        }
    markdown = _markdown(results, ctx)
    print()
    print(markdown)
    return {"summary": results, "markdown": markdown}


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _pct(value):
    return "-" if not np.isfinite(value) else f"{100 * value:.1f}" if value >= 0.1 else f"{100 * value:.2f}"


def _markdown(results, ctx):
    dims = QUICK if ctx.quick else FULL
    lines = [
        f"Points: {results['points']['n']:,} over {dims['extent'] / 1000:g} x {dims['extent'] / 1000:g} km "
        f"(seed {POINTS_SEED}); grid: {dims['grid']} x {dims['grid']} cells of {CELL:g} m, about half with data "
        f"(seed {GRID_SEED}). Spikes on {SPIKE_RATE:.0%} of the values, offsets 10-100 mm/yr. Figures are the "
        "percentage of the values of each kind that a method removes (signal: values inside a signal's footprint; "
        f"*seen*: only signals with at least {WELL_SEEN} values, not counting spikes). Goals: spikes removed "
        f">= {SPIKE_GOAL:.0%}, signal removed <= {SIGNAL_GOAL:.0%} per size.",
        "",
    ]
    for kind in ("points", "grid"):
        r = results[kind]
        q = r["quality"]
        head = ["method", "spikes removed", *(f"{a}-{b} mm/yr" for a, b in SPIKE_BINS)]
        head += [f"signal {s:g} m" for s in SIZES] + ["background"]
        lines += [f"**{kind}**", "", "| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
        first = next(iter(q.values()))
        counts = [f"{first['spikes']:,}", "", "", ""]
        counts += [f"{first[f'signal_{s}_n']:,} ({first[f'signal_{s}_seen_n']:,} seen)" for s in SIZES]
        lines.append("| *values* | " + " | ".join(counts + [f"{first['background_n']:,}"]) + " |")
        for label, m in q.items():
            cells = [_pct(m["spikes_removed"])] + [_pct(m[f"spikes_removed_{a}_{b}"]) for a, b in SPIKE_BINS]
            cells += [_pct(m[f"signal_{s}_removed"]) for s in SIZES] + [_pct(m["background_removed"])]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
            if label == DEFAULTS_LABEL:
                seen = [_pct(m[f"signal_{s}_seen_removed"]) for s in SIZES]
                lines.append("| ... signals seen | " + " | ".join(["", "", "", "", *seen, ""]) + " |")
        t, c, p, base = r["time_s"], r["cpu_s"], r["peak_mib"], r["load_mib"]
        lines += [
            "",
            f"Time ({kind}, {r['n']:,} {'points' if kind == 'points' else 'cells'}, median of {ctx.repeats}, "
            f"fresh process each): despike {t['despike']:.2f} s (CPU {c['despike']:.2f} s, peak RSS "
            f"{p['despike']:.0f} MiB, {base['despike']:.0f} MiB with the input loaded), global clip "
            f"{t['clip']:.2f} s.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _child(kind, side, path):
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", kind, side, path],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {side} run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(kind, side, path):
    """One timed run in this (fresh) process; prints a JSON line."""
    from defoscan.despike import despike_grid, despike_points

    case = load_case(path)
    data = as_points(case) if kind == "points" else as_grid(case)
    load_mib = peak_mib()
    cpu0, t0 = cpu_seconds()[0], time.perf_counter()
    if side == "clip":
        removed = int(global_clip(data["velocity"].values).sum())
    elif kind == "points":
        removed = int(despike_points(data)[1].sum())
    else:
        removed = int(despike_grid(data)[1].sum())
    result = {"time_s": time.perf_counter() - t0, "cpu_s": cpu_seconds()[0] - cpu0, "removed": removed}
    result.update(peak_mib=peak_mib(), load_mib=load_mib)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


# --- tuning (separate seeds) ------------------------------------------------------------------------------------


def tune(out_dir):
    """Sweep the parameters on the tuning seeds (quick-size cases), print every setting and the ones chosen.

    The rule, per kind: the settings that meet both goals of the issue for signals of 200 m and more (spikes
    removed >= 95 %, well-seen signal removed <= 1 % per size) and remove at most 0.01 % of the background rank
    by the share of spikes removed minus the share of well-seen 100 m signal removed (a missed spike and a lost
    value of a small signal weigh the same); settings meeting only the signal goals come after, by spikes removed.
    ``SUPPORT_NOISE`` is one constant for points and grids: the value whose best settings meet both goals on both
    kinds, with the higher summed score, is kept.
    """
    import itertools

    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for kind in ("points", "grid"):
        cases = [load_case(cached_case(kind, out_dir, True, seed)) for seed in TUNING_SEEDS]
        print(f"\n{kind}: seeds {TUNING_SEEDS}; % spikes removed | % signal removed per size (well seen) | background")
        axes = {"k": (3.5, 4.0, 5.0), "support": (0.25, 0.5), "min_support": (1, 2, 3), "noise": NOISE_VALUES}
        if kind == "points":
            axes.update(min_neighbours=(3, 4), neighbours=(16,), radius=(150.0,))
        else:
            axes.update(min_neighbours=(3, 4), window=(3, 5, 7))
        rows = [_evaluate(kind, cases, dict(zip(axes, v, strict=True))) for v in itertools.product(*axes.values())]
        if kind == "points":  # second stage: the neighbourhood, around the best of the first for each noise value
            for noise in NOISE_VALUES:
                best = _rank([r for r in rows if r["params"]["noise"] == noise])[0]["params"]
                for neighbours, radius in itertools.product((8, 16, 32), (100.0, 250.0)):
                    rows.append(_evaluate(kind, cases, {**best, "neighbours": neighbours, "radius": radius}))
        results[kind] = rows
    verdicts = []
    for noise in NOISE_VALUES:
        best = {kind: _rank([r for r in rows if r["params"]["noise"] == noise])[0] for kind, rows in results.items()}
        meets = all(_meets_goals(r) for r in best.values())
        verdicts.append((meets, sum(_score(r) for r in best.values()), noise, best))
        print(f"\nSUPPORT_NOISE = {noise:g}: both goals met on both kinds: {meets}")
        for kind, r in best.items():
            print(f"  {kind}: {r['params']}  score {100 * _score(r):.2f}")
    meets, _, noise, best = max(verdicts, key=lambda v: (v[0], v[1]))
    print(f"\nchosen: SUPPORT_NOISE = {noise:g}")
    for kind, r in best.items():
        print(f"  {kind}: {r['params']}")
    return best


def _evaluate(kind, cases, params):
    import defoscan.despike

    params = dict(params)
    noise = params.pop("noise")
    default, defoscan.despike.SUPPORT_NOISE = defoscan.despike.SUPPORT_NOISE, noise  # a module constant
    try:
        rows = [quality(removed_mask(kind, "despike", case, **params), case) for case in cases]
    finally:
        defoscan.despike.SUPPORT_NOISE = default
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    params["noise"] = noise
    print(
        f"  {params}: {100 * mean['spikes_removed']:.1f} | "
        + " ".join(
            f"{100 * mean[f'signal_{s}_removed']:.2f} ({100 * mean[f'signal_{s}_seen_removed']:.2f})" for s in SIZES
        )
        + f" | {100 * mean['background_removed']:.3f}",
        flush=True,
    )
    return {"params": params, **mean}


def _keeps_signal(r):
    large = all(r[f"signal_{s}_seen_removed"] <= SIGNAL_GOAL for s in SIZES if s >= 200)
    return large and r["background_removed"] <= BACKGROUND_LIMIT


def _meets_goals(r):
    return _keeps_signal(r) and r["spikes_removed"] >= SPIKE_GOAL


def _score(r):
    return r["spikes_removed"] - r["signal_100_seen_removed"]


def _rank(results):
    """Results by the rule of :func:`tune`, best first (those keeping no signal goal left out)."""
    both = sorted((r for r in results if _meets_goals(r)), key=lambda r: -_score(r))
    rest = sorted((r for r in results if _keeps_signal(r) and not _meets_goals(r)), key=lambda r: -r["spikes_removed"])
    return both + rest


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _measure(*sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "--tune":
        tune(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "bench-output"))
    else:
        sys.exit("run through benchmarks/run.py, or with --tune [OUT_DIR]")
