"""Do synthetic maps drawn around a real map's profile look like it? Figures and a table, per real map.

For each real map bundled in the repository (Kirishima MintPy, 20 m; the two Ustica EGMS L2b tracks, 50 m), the
profile is fitted (:func:`defoscan.synth.profile.fit_profile`, timed), ``--draws`` synthetic negatives of the
real map's shape and cell size are drawn around it (:func:`defoscan.synth.sample.draw_sample`, ``positive=False,
hard=False``), and each is measured with the same ``fit_profile`` (no coverage fit, no calibration), as the real
map was. Amsterdam's DePSI example is left out: its 2,500 points grid into 10 x 29 cells of 10 m (145 with data),
too few for a variogram.

Writes ``docs/figures/synth_realism_<name>.png`` (or under ``--out``): the real map and two synthetic draws on one
colour scale; the real variogram against the synthetic maps' mean and 5-95 % band; coverage statistics, synthetic
over real; velocity histograms about the median. Prints a markdown table per map: real value, synthetic median and
range (min-max), their ratio and the tolerance the tests assert (``tests/test_synth_profile.py``). With ``--doc
docs/synth-profile.md`` the table replaces the block between the ``synth_realism`` markers there.

Run from the repository root: ``.venv/bin/python benchmarks/synth_realism.py [--draws N] [--seed S]``.
"""

import argparse
import io
import os
import platform
import sys
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from defoscan.io import read_inputs  # noqa: E402
from defoscan.real_data import real_data_dir  # noqa: E402
from defoscan.synth.coverage import coverage_statistics  # noqa: E402
from defoscan.synth.profile import fit_profile  # noqa: E402
from defoscan.synth.sample import draw_sample  # noqa: E402
from defoscan.tracks import grid_inputs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = real_data_dir() or ROOT.parent / "shared" / "data" / "real"  # the real maps are never bundled
MAPS = {
    "kirishima": REAL / "01_kirishima_mintpy_alos2" / "velocity.h5",
    "ustica_022": REAL / "03_egms_ustica_italy" / "EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip",
    "ustica_117": REAL / "03_egms_ustica_italy" / "EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip",
    "ustica_l3_u": REAL / "03_egms_ustica_italy" / "EGMS_L3_E45N17_100km_U_2020_2024_1.zip",
}
CELL = {"ustica_l3_u": 100.0}  # the EGMS L3 product is a 100 m grid; the others: gridding's default
DRAWS = {"kirishima": 48, "ustica_022": 96, "ustica_117": 96, "ustica_l3_u": 96}  # small maps measure noisily
# (label, how to read it from a profile, format, tolerance on the ratio of medians as the tests assert it)
QUANTITIES = [
    ("sill (mm/yr)²", lambda p: p["noise"]["measured"]["sill"], "{:.3g}", "±25 %"),
    ("practical range (m)", lambda p: p["noise"]["measured"]["practical_range"], "{:.0f}", "±25 %"),
    ("alpha", lambda p: p["noise"]["measured"]["alpha"], "{:.2f}", ""),
    ("point noise (mm/yr)", lambda p: p["noise"]["measured"]["point_noise"], "{:.2f}", ""),
    ("nugget (mm/yr)", lambda p: p["noise"]["measured"]["nugget"], "{:.2f}", ""),
    ("coverage", lambda p: p["coverage"]["coverage"], "{:.3f}", "±10 %"),
    ("spike rate (%)", lambda p: 100 * p["spikes"]["measured"]["rate"], "{:.3f}", "x/÷ 2"),
    ("velocity IQR (mm/yr)", lambda p: p["velocity"]["iqr"], "{:.2f}", "±30 %"),
]
COVERAGE_KEYS = [
    ("gap median", "gap_median_m"),
    ("gap p90", "gap_p90_m"),
    ("clusters/km²", "clusters_per_km2"),
    ("surrounded", "surrounded_fraction"),
]
MARK_START, MARK_END = "<!-- synth_realism table start -->", "<!-- synth_realism table end -->"


def grid_map(path, cell_size=None):
    """The real map gridded as the pipeline grids it: velocity, count, cell size."""
    (grid,) = grid_inputs(read_inputs([path]), cell_size=cell_size)
    return grid["velocity"].values.astype(np.float64), grid["count"].values, abs(float(grid.rio.resolution()[0]))


def compare(name, path, draws, seed):
    """Fit the real map's profile, draw and measure ``draws`` synthetic maps around it."""
    velocity, count, cell_size = grid_map(path, CELL.get(name))
    start = time.perf_counter()
    profile = fit_profile(velocity, count, cell_size, name=name)
    fit_seconds = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    maps, measured = [], []
    for _ in range(draws):
        sample = draw_sample(
            rng, shape=velocity.shape, cell_size=cell_size, positive=False, hard=False, profile=profile
        )
        maps.append(sample.velocity.astype(np.float64))
        measured.append(fit_profile(sample.velocity, sample.count, cell_size, fit_coverage=False, calibrate=0))
    return {
        "name": name,
        "velocity": velocity,
        "cell_size": cell_size,
        "profile": profile,
        "fit_seconds": fit_seconds,
        "maps": maps,
        "measured": measured,
    }


def table(result):
    """Markdown rows: quantity, real, synthetic median, range, ratio, tolerance."""
    rows = []
    for label, get, fmt, tolerance in QUANTITIES:
        real = get(result["profile"])
        values = np.array([get(p) for p in result["measured"]])
        median = float(np.median(values))
        ratio = f"{median / real:.2f}" if real else "-"
        spread = f"{fmt.format(values.min())}-{fmt.format(values.max())}"
        rows.append(f"| {label} | {fmt.format(real)} | {fmt.format(median)} | {spread} | {ratio} | {tolerance} |")
    return rows


def figure(result, path):
    """Real map and two draws, variograms, coverage statistics and histograms: a 2 x 3 figure."""
    real, maps, cell = result["velocity"], result["maps"], result["cell_size"]
    centre = np.nanmedian(real)
    low, high = np.nanpercentile(real - centre, [2, 98])
    bound = max(abs(low), abs(high))
    fig, axes = plt.subplots(2, 3, figsize=(12.0, 7.2), layout="constrained")
    extent = [0, real.shape[1] * cell / 1000.0, 0, real.shape[0] * cell / 1000.0]
    for ax, values, title in zip(
        axes[0], [real, maps[0], maps[1]], ["real", "synthetic draw 1", "synthetic draw 2"], strict=True
    ):
        image = ax.imshow(
            values - np.nanmedian(values), cmap="RdBu", vmin=-bound, vmax=bound, extent=extent, interpolation="nearest"
        )
        ax.set_title(f"{result['name']}: {title}", fontsize=10)
        ax.set_xlabel("km")
        ax.set_facecolor("0.85")
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="velocity - median (mm/yr)")

    ax = axes[1, 0]
    curve = result["profile"]["noise"]["variogram"]
    lags, gamma = np.array(curve["lags"]), np.array(curve["gamma"])
    synthetic = np.array(
        [
            np.interp(np.log(lags), np.log(p["noise"]["variogram"]["lags"]), p["noise"]["variogram"]["gamma"])
            for p in result["measured"]
        ]
    )
    ax.fill_between(lags, *np.percentile(synthetic, [5, 95], axis=0), color="tab:orange", alpha=0.3, lw=0)
    ax.plot(lags, synthetic.mean(axis=0), color="tab:orange", label="synthetic mean, 5-95 %")
    ax.plot(lags, gamma, "o", ms=3, color="k", label="real")
    ax.set_xscale("log")
    ax.set_xlabel("lag (m)")
    ax.set_ylabel("semivariance (mm/yr)²")
    ax.set_title("variogram (spikes, signals, plane removed)", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    real_stats = result["profile"]["coverage"]["statistics"]
    stats = [coverage_statistics(np.isfinite(m), cell) for m in maps]
    for i, (_, key) in enumerate(COVERAGE_KEYS):
        ratios = np.array([s[key] for s in stats]) / max(real_stats[key], 1e-12)
        q = np.percentile(ratios, [5, 50, 95])
        ax.errorbar(i, q[1], yerr=[[q[1] - q[0]], [q[2] - q[1]]], fmt="o", color="tab:orange", capsize=4)
        ax.text(i, q[2] * 1.05, f"{real_stats[key]:.3g}", ha="center", fontsize=7)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(COVERAGE_KEYS)), [label for label, _ in COVERAGE_KEYS], fontsize=8)
    ax.set_ylabel("synthetic / real (median, 5-95 %)")
    ax.set_title(f"coverage statistics (real {real_stats['coverage']:.2f}; real values above)", fontsize=10)

    ax = axes[1, 2]
    bins = np.linspace(-2.5 * bound, 2.5 * bound, 81)
    pooled = np.concatenate([(m - np.nanmedian(m))[np.isfinite(m)] for m in maps])
    ax.hist(pooled, bins=bins, density=True, histtype="step", color="tab:orange", label="synthetic (all draws)")
    ax.hist((real - centre)[np.isfinite(real)], bins=bins, density=True, histtype="step", color="k", label="real")
    ax.set_yscale("log")
    ax.set_xlabel("velocity - median (mm/yr)")
    ax.set_title("velocity histogram", fontsize=10)
    ax.legend(fontsize=8)
    # A palette PNG: the noisy maps make a full-colour one several times larger (> 500 kB for Kirishima).
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, format="png")
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def write_doc(path, text):
    """Replace the block between the markers in ``path`` with ``text``."""
    doc = Path(path).read_text(encoding="utf-8")
    head, rest = doc.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    temporary = Path(path).with_suffix(".tmp")
    temporary.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}", encoding="utf-8")
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, help="synthetic maps per real map (default: 48 Kirishima, 96 Ustica)")
    parser.add_argument("--seed", type=int, default=2025, help="seed of the synthetic draws")
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures"), help="folder of the figures")
    parser.add_argument("--doc", help="markdown file whose synth_realism block takes the table")
    parser.add_argument("--only", action="append", choices=sorted(MAPS), help="one map (repeatable)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    machine = platform.processor() or platform.machine()
    lines = [
        f"`.venv/bin/python benchmarks/synth_realism.py` (seed {args.seed}; {machine},"
        f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}). Synthetic: negatives drawn around the profile,"
        " measured as the real map; ratio: synthetic median / real; tolerance: what the tests assert.",
        "",
    ]
    for name in args.only or MAPS:
        draws = args.draws or DRAWS[name]
        result = compare(name, MAPS[name], draws, args.seed)
        figure(result, Path(args.out) / f"synth_realism_{name}.png")
        shape = "x".join(str(s) for s in result["velocity"].shape)
        calibration = result["profile"]["calibration"]
        keys = ("practical_range", "amplitude", "rate", "scale")
        total = {key: np.prod([r["factors"][key] for r in calibration["rounds"]]) for key in keys}
        factors = ", ".join(f"{key} x{value:.2f}" for key, value in total.items())
        lines += [
            f"**{name}** ({shape} cells of {result['cell_size']:.0f} m; {draws} synthetic maps; fit_profile"
            f" {result['fit_seconds']:.1f} s; calibration, {len(calibration['rounds'])} round(s) of"
            f" {calibration['draws']} maps: {factors})",
            "",
            "| quantity | real | synthetic median | synthetic range | ratio | tolerance |",
            "|---|---|---|---|---|---|",
            *table(result),
            "",
        ]
        print("\n".join(lines[-(len(QUANTITIES) + 4) :]), file=sys.stderr, flush=True)
    # Prose wrapped at 120 characters (markdown joins the lines); table rows left whole.
    text = "\n".join(line if line.startswith("|") else textwrap.fill(line, 120) for line in lines).rstrip()
    print(text)
    if args.doc:
        write_doc(args.doc, text)


if __name__ == "__main__":
    main()
