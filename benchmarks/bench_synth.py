"""Synthetic training data benchmark: generation throughput, 1 worker against 2, and the time of a training set.

:func:`defoscan.synth.dataset.write_dataset` (default ranges, no profile, half positives, half of the negatives
hard) writes ``N`` samples of 128 x 128 and of 224 x 224 cells of 50 m into a fresh directory, in shards of
``SHARD`` samples, with one worker (in the calling process: the baseline) and with two (a spawned process pool).
Each run is a fresh process (its peak memory its own, the pool's start-up counted); the directory is emptied
before each, so nothing is resumed. The files of the two sides are compared: the worker count must not change a
byte.

The training set of the model issue is assumed to be **20,000 samples of 128 x 128 cells of 50 m** (10,000
positives, 10,000 negatives): its time is extrapolated from the measured rate, and ``defoscan synth`` is run
end-to-end once (a subprocess: interpreter start, imports, progress and manifest included) on ``CLI_N`` samples
to check the extrapolation against the command users run.
"""

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

from process_stats import cpu_seconds, peak_mib

NAME = "synth"
SEED = 20250201
SHAPES = ((128, 128), (224, 224))
CELL = 50.0
FULL = {"n": {(128, 128): 512, (224, 224): 256}, "shard": 64, "cli_n": 2000}
QUICK = {"n": {(128, 128): 64, (224, 224): 32}, "shard": 16, "cli_n": 200}
TRAINING_SET = 20_000  # samples of 128 x 128: the assumption for the model issue
WORKERS = (1, 2)


def run(ctx):
    """Measure 1 and 2 workers on both sample sizes, then the CLI end-to-end; print and return the results."""
    dims = QUICK if ctx.quick else FULL
    root = os.path.join(ctx.out_dir, "synth")
    repeats = 1 if ctx.quick else ctx.repeats
    results = {"sizes": {}, "seed": SEED, "shard": dims["shard"], "repeats": repeats}
    for shape in SHAPES:
        n = dims["n"][shape]
        runs = {w: [] for w in WORKERS}
        for i in range(repeats):  # interleaved, so a busy spell hits both sides alike
            for workers in WORKERS:
                out = os.path.join(root, f"{shape[0]}x{shape[1]}-w{workers}")
                runs[workers].append(_child(shape, n, workers, dims["shard"], out))
                r = runs[workers][-1]
                print(
                    f"  {shape[0]} x {shape[1]}, run {i + 1}/{repeats}, {workers} worker(s): {r['time_s']:.1f} s, "
                    f"{n / r['time_s']:.1f} samples/s, CPU {r['cpu_s']:.1f} s, load {r['load']:.2f}",
                    flush=True,
                )
        identical = len({r["files_sha256"] for w in WORKERS for r in runs[w]}) == 1
        sizes = {}
        for workers in WORKERS:
            t = statistics.median(r["time_s"] for r in runs[workers])
            sizes[workers] = {
                "time_s": t,
                "rate": n / t,
                "cpu_s": statistics.median(r["cpu_s"] for r in runs[workers]),
                "peak_mib": max(r["peak_mib"] for r in runs[workers]),
                "worker_peak_mib": max(r["worker_peak_mib"] for r in runs[workers]),
                "all_s": [round(r["time_s"], 2) for r in runs[workers]],
                "loads": [round(r["load"], 2) for r in runs[workers]],
            }
        results["sizes"][f"{shape[0]}x{shape[1]}"] = {
            "n": n,
            "workers": sizes,
            "identical": identical,
            "bytes_per_sample": runs[1][-1]["bytes"] / n,
        }
        print(f"  {shape[0]} x {shape[1]}: files identical for 1 and 2 workers: {identical}", flush=True)

    cli_out = os.path.join(root, "cli")
    shutil.rmtree(cli_out, ignore_errors=True)
    command = [
        os.path.join(os.path.dirname(sys.executable), "defoscan"),
        "synth",
        "--n",
        str(dims["cli_n"]),
        "--seed",
        str(SEED),
        "--out",
        cli_out,
        "--workers",
        "2",
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    cli_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"defoscan synth failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    print(f"  CLI: {' '.join(command[1:])}: {cli_s:.1f} s\n  {proc.stdout.strip()}", flush=True)
    disk = sum(os.path.getsize(os.path.join(cli_out, f)) for f in os.listdir(cli_out))
    results["cli"] = {
        "n": dims["cli_n"],
        "time_s": cli_s,
        "rate": dims["cli_n"] / cli_s,
        "bytes": disk,
        "load": os.getloadavg()[0],
        "command": "defoscan " + " ".join(command[1:]).replace(cli_out, "DIR"),
    }
    markdown = _markdown(results, ctx)
    print()
    print(markdown)
    return {"summary": results, "markdown": markdown}


def _markdown(results, ctx):
    lines = [
        f"`write_dataset` with default ranges (seed {SEED}), shards of {results['shard']} samples, each run in a "
        f"fresh process into an empty directory; median of {results['repeats']}. Speed-up: 2 workers against 1 "
        "(the baseline) in the same run. Peak RSS: the calling process (VmHWM), + each pool worker's (ru_maxrss).",
        "",
        "| sample | samples | workers | time (s) | samples/s | CPU (s) | CPU ms/sample | peak RSS (MiB) | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size in results["sizes"].items():
        one = size["workers"][1]
        for workers, r in size["workers"].items():
            peak = f"{r['peak_mib']:.0f}" + (f" + {workers} x {r['worker_peak_mib']:.0f}" if workers > 1 else "")
            lines.append(
                f"| {name.replace('x', ' x ')} at {CELL:g} m | {size['n']:,} | {workers} | {r['time_s']:.1f} | "
                f"{r['rate']:.1f} | {r['cpu_s']:.1f} | {1000 * r['cpu_s'] / size['n']:.0f} | {peak} | "
                f"{one['time_s'] / r['time_s']:.2f} |"
            )
    lines.append("")
    runs = "; ".join(
        f"{name}, {w} worker(s): {', '.join(f'{s:g}' for s in r['all_s'])}"
        for name, size in results["sizes"].items()
        for w, r in size["workers"].items()
    )
    best = "; ".join(
        f"{name.replace('x', ' x ')} {min(size['workers'][1]['all_s']) / min(size['workers'][2]['all_s']):.2f}x"
        for name, size in results["sizes"].items()
    )
    identical = all(size["identical"] for size in results["sizes"].values())
    loads = [x for size in results["sizes"].values() for r in size["workers"].values() for x in r["loads"]]
    kib = {name: size["bytes_per_sample"] / 1024 for name, size in results["sizes"].items()}
    lines += [
        f"Every run (s): {runs}. 1-minute load at the end of the runs: {min(loads):.2f}-{max(loads):.2f} "
        f"(2 usable cores: above about 1, other work takes a core from the pool). Best run against best run, 2 "
        f"workers against 1: {best}. Files of 1 and 2 workers "
        "byte-identical (sha256 of every file, every run): "
        f"{'yes' if identical else '**no**'}. On disk: "
        + ", ".join(f"{k:.0f} KiB per sample of {name.replace('x', ' x ')}" for name, k in kib.items())
        + " (compressed NPZ and labels).",
        "",
    ]
    rate2 = results["sizes"]["128x128"]["workers"][2]["rate"]
    rate1 = results["sizes"]["128x128"]["workers"][1]["rate"]
    cli = results["cli"]
    gib = TRAINING_SET * cli["bytes"] / cli["n"] / 2**30
    lines += [
        f"**Training set** (assumed: {TRAINING_SET:,} samples of 128 x 128 cells of {CELL:g} m, half positive): "
        f"{TRAINING_SET / rate2 / 60:.1f} min with 2 workers, {TRAINING_SET / rate1 / 60:.1f} min with 1, "
        f"extrapolated from the rates above. Measured end-to-end: `{cli['command']}` took {cli['time_s']:.1f} s "
        f"for {cli['n']:,} samples ({cli['rate']:.1f} samples/s, start-up included; load {cli['load']:.2f} at the "
        "end), which extrapolates to "
        f"{TRAINING_SET / cli['rate'] / 60:.1f} min and {gib:.2f} GiB on disk.",
    ]
    if ctx.quick:
        lines += ["", "*--quick: smaller runs; not the figures to record.*"]
    return "\n".join(lines) + "\n"


def _child(shape, n, workers, shard, out):
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", str(shape[0]), str(shape[1]), str(n), str(workers)]
        + [str(shard), out],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{shape} with {workers} worker(s) failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(rows, cols, n, workers, shard, out):
    """One timed run of write_dataset in this (fresh) process; prints a JSON line."""
    from defoscan.synth.dataset import write_dataset

    cpu0, t0 = cpu_seconds()[0], time.perf_counter()
    write_dataset(out, n, seed=SEED, shape=(rows, cols), cell_size=CELL, shard_size=shard, workers=workers)
    elapsed = time.perf_counter() - t0
    digest, size = hashlib.sha256(), 0
    for name in sorted(os.listdir(out)):
        data = open(os.path.join(out, name), "rb").read()
        digest.update(name.encode() + hashlib.sha256(data).digest())
        size += len(data)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, joined by now
    result = {
        "time_s": elapsed,
        "cpu_s": cpu_seconds()[0] - cpu0 + children.ru_utime + children.ru_stime,
        "peak_mib": peak_mib(),
        "worker_peak_mib": children.ru_maxrss / 1024,
        "files_sha256": digest.hexdigest(),
        "bytes": size,
        "load": os.getloadavg()[0],  # other work on the machine takes cores from the pool
    }
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--child":
        _measure(*map(int, sys.argv[2:7]), sys.argv[7])
    else:
        sys.exit("run through benchmarks/run.py")
