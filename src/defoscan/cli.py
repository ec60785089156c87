"""The ``defoscan`` command line (contract in DESIGN.md).

Bad input ends with one line on stderr naming the file and the problem and exit status 2, never a traceback.
"""

import os
import sys
from importlib.resources import files
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from defoscan import __version__
from defoscan.errors import InputError
from defoscan.io import ReadOptions
from defoscan.io.units import UNIT_CHOICES

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Find ground deformation in sparse satellite InSAR velocity maps.",
)
console = Console()  # results: stdout
progress = Console(stderr=True)  # stage messages: stderr, and only on a terminal, so errors stay one line

DEMO_DATASETS = {
    "kirishima": ("kirishima/velocity.h5",),
    "ustica": ("ustica/EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip", "ustica/EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip"),
}

Inputs = typer.Argument(
    ...,
    help="Points table (CSV/TSV/Parquet, EGMS zip, Shapefile/GeoPackage) or velocity raster "
    "(GeoTIFF, MintPy HDF5); several files of one area may be given.",
    show_default=False,
)
CellSize = typer.Option(None, "--cell-size", help="Grid cell size in metres [default: from point density].")
Crs = typer.Option(None, "--crs", help="CRS of easting/northing columns or of a raster without one, e.g. 27700.")
Units = typer.Option(
    None,
    "--units",
    help=f"Velocity unit of the input, one of {', '.join(UNIT_CHOICES)} [default: what the file declares, else mm/yr].",
)
Lon = typer.Option(None, "--lon", help="Name of the longitude column.")
Lat = typer.Option(None, "--lat", help="Name of the latitude column.")
X = typer.Option(None, "--x", help="Name of the easting column (needs --crs).")
Y = typer.Option(None, "--y", help="Name of the northing column (needs --crs).")
Velocity = typer.Option(None, "--velocity", help="Name of the velocity column.")


def _read_options(crs, units, lon, lat, x, y, velocity):
    columns = {k: v for k, v in {"lon": lon, "lat": lat, "x": x, "y": y, "velocity": velocity}.items() if v}
    if crs is not None and crs.strip().isdigit():
        crs = f"EPSG:{crs.strip()}"
    return ReadOptions(columns=columns, crs=crs, units=units)


@app.command()
def detect(
    inputs: list[Path] = Inputs,
    out: Path = typer.Option(..., "--out", help="Output directory.", show_default=False),
    cell_size: float = CellSize,
    crs: str = Crs,
    units: str = Units,
    lon: str = Lon,
    lat: str = Lat,
    x: str = X,
    y: str = Y,
    velocity: str = Velocity,
    model: Path = typer.Option(
        None,
        "--model",
        help="CNN weights file (.safetensors), its .json card beside it (default: the bundled model).",
        show_default=False,
    ),
    detector: str = typer.Option(
        "cnn",
        "--detector",
        help="cnn (scan with the model), or a baseline: threshold (noise-unit thresholding), gistar (Getis-Ord Gi* "
        "hotspots) or ada (active deformation areas, after ADAfinder).",
    ),
    probability_threshold: float = typer.Option(
        None,
        "--probability-threshold",
        help="Probability a cell needs to join a detection, cnn detector (default: the model card's, else 0.5).",
        show_default=False,
    ),
    threshold: float = typer.Option(3.0, "--threshold", help="Detection threshold in noise units, threshold detector."),
    chunk: int = typer.Option(
        None,
        "--chunk",
        help="Run chunk by chunk in map chunks of this many cells a side (memory bounded, resumable; default 1024 "
        "when --workers or --scheduler is given). Point tables, cnn detector.",
        show_default=False,
    ),
    workers: int = typer.Option(
        None, "--workers", help="Run the chunks on a local dask cluster of N worker processes.", show_default=False
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        help="Run the chunks on a running dask.distributed cluster (ADDRESS, e.g. tcp://host:8786); its workers "
        "must see the output directory's parent at the same path.",
        show_default=False,
    ),
):
    """Detect deformation and write detections, grids, overview, report and run record into OUT."""
    from defoscan.detect import detect as run_detect
    from defoscan.threshold import ThresholdParameters

    options = _read_options(crs, units, lon, lat, x, y, velocity)
    if chunk is not None or workers is not None or scheduler is not None:
        from defoscan.runner import DEFAULT_CHUNK, detect_chunked

        if detector != "cnn":
            raise InputError(None, "chunked runs (--chunk, --workers, --scheduler) use the cnn detector")
        with _ChunkProgress() as bar:
            result = detect_chunked(
                [str(p) for p in inputs],
                str(out),
                options=options,
                cell_size=cell_size,
                parameters=ThresholdParameters(k=threshold),
                model=None if model is None else str(model),
                probability_threshold=probability_threshold,
                chunk=DEFAULT_CHUNK if chunk is None else chunk,
                workers=workers,
                scheduler=scheduler,
                log=bar.log,
                progress=bar.update,
            )
        _print_summary(result, out)
        return
    result = run_detect(
        [str(p) for p in inputs],
        str(out),
        options=options,
        cell_size=cell_size,
        parameters=ThresholdParameters(k=threshold),
        detector=detector,
        model=None if model is None else str(model),
        probability_threshold=probability_threshold,
        log=_log,
    )
    _print_summary(result, out)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Output directory."),
    dataset: str = typer.Option(
        "kirishima", "--dataset", help="Bundled data: kirishima (real volcanic signals) or ustica (stable control)."
    ),
):
    """Run detect with the bundled model on the real data bundled with it (Kirishima volcano, Japan, by default)."""
    from defoscan.detect import detect as run_detect

    if dataset not in DEMO_DATASETS:
        raise InputError(None, f"unknown demo dataset {dataset!r}; choose from {', '.join(DEMO_DATASETS)}")
    data = files("defoscan") / "data"
    inputs = [str(data / name) for name in DEMO_DATASETS[dataset]]
    result = run_detect(inputs, str(out), log=_log)
    _print_summary(result, out)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Output directory of a finished detect or demo run.", show_default=False),
    top: int = typer.Option(50, "--top", help="Detections given a card (highest scores); the rest are in the table."),
):
    """Rebuild report.html of a finished run from its files (run.json, detections, rasters, overview.png)."""
    from defoscan.report import write_report_from_run

    path = write_report_from_run(str(run_dir), top=top)
    console.print(f"report: {path}  (open it in a browser)", soft_wrap=True)


@app.command()
def grid(
    inputs: list[Path] = Inputs,
    out: Path = typer.Option(..., "--out", help="Output GeoTIFF (Cloud-Optimised).", show_default=False),
    cell_size: float = CellSize,
    crs: str = Crs,
    units: str = Units,
    lon: str = Lon,
    lat: str = Lat,
    x: str = X,
    y: str = Y,
    velocity: str = Velocity,
):
    """Grid the inputs: a COG with a velocity (median, mm/yr) and a count band per track."""
    from defoscan.grid import grid_inputs
    from defoscan.io import read_inputs
    from defoscan.outputs import check_writable_dir, write_cog

    check_writable_dir(os.path.dirname(os.path.abspath(out)))
    _log("reading")
    datasets = read_inputs([str(p) for p in inputs], _read_options(crs, units, lon, lat, x, y, velocity))
    _log("gridding")
    grids = grid_inputs(datasets, cell_size=cell_size)
    bands = []
    for g in grids:
        track = g.attrs.get("track") or "all"
        bands += [(f"velocity {track}", g["velocity"].values), (f"count {track}", g["count"].values)]
    write_cog(
        str(out),
        bands,
        grids[0].rio.transform(recalc=True),
        grids[0].rio.crs.to_wkt(),
        tags={"units": "mm/yr", "software": f"defoscan {__version__}"},
    )
    first = grids[0]
    console.print(
        f"wrote {out}: {first.sizes['x']} x {first.sizes['y']} cells of "
        f"{abs(first.rio.resolution()[0]):g} m, {len(grids)} track(s)"
    )


@app.command()
def fill(
    inputs: list[Path] = Inputs,
    out: Path = typer.Option(..., "--out", help="Output GeoTIFF (Cloud-Optimised).", show_default=False),
    method: str = typer.Option(
        "completion", "--method", help="completion (default), nearest, linear, knn or softimpute."
    ),
    cell_size: float = CellSize,
    max_distance: float = typer.Option(
        1000.0, "--max-distance", help="Metres: cells farther than this from any data stay empty."
    ),
    crs: str = Crs,
    units: str = Units,
    lon: str = Lon,
    lat: str = Lat,
    x: str = X,
    y: str = Y,
    velocity: str = Velocity,
):
    """Grid the inputs and fill the gaps: a COG with velocity_filled and velocity bands (a pair per track)."""
    import numpy as np

    from defoscan.fill import METHODS, fill_grid
    from defoscan.grid import grid_inputs
    from defoscan.io import read_inputs
    from defoscan.outputs import check_writable_dir, write_cog

    if method not in METHODS:
        raise InputError(None, f"unknown fill method {method!r}; choose from {', '.join(METHODS)}")
    if not max_distance > 0:
        raise InputError(None, f"--max-distance must be positive, got {max_distance:g}")
    check_writable_dir(os.path.dirname(os.path.abspath(out)))
    _log("reading")
    datasets = read_inputs([str(p) for p in inputs], _read_options(crs, units, lon, lat, x, y, velocity))
    _log("gridding")
    grids = grid_inputs(datasets, cell_size=cell_size)
    _log(f"filling ({method})")
    bands, filled_cells = [], 0
    for g in grids:
        filled = fill_grid(g, method=method, max_distance=max_distance)
        suffix = f" {g.attrs.get('track') or 'all'}" if len(grids) > 1 else ""
        bands += [
            (f"velocity_filled{suffix}", filled["velocity_filled"].values),
            (f"velocity{suffix}", g["velocity"].values),
        ]
        filled_cells += int(np.isfinite(filled["velocity_filled"].values).sum())
    write_cog(
        str(out),
        bands,
        grids[0].rio.transform(recalc=True),
        grids[0].rio.crs.to_wkt(),
        tags={
            "units": "mm/yr",
            "fill_method": method,
            "fill_max_distance_m": str(max_distance),
            "software": f"defoscan {__version__}",
        },
    )
    observed = sum(int(np.isfinite(g["velocity"].values).sum()) for g in grids)
    console.print(f"wrote {out}: {filled_cells:,} cells with a value ({observed:,} observed), method {method}")


@app.command()
def synth(
    inputs: list[Path] = typer.Argument(
        None, help="With --fit: real velocity maps to fit a profile to (read as detect reads them).", show_default=False
    ),
    out: Path = typer.Option(
        ..., "--out", help="Dataset directory; with --fit the profile JSON file.", show_default=False
    ),
    n: int = typer.Option(None, "--n", help="Samples to generate.", show_default=False),
    seed: int = typer.Option(None, "--seed", help="Seed: the same seed and options give the same files."),
    profile: Path = typer.Option(
        None, "--profile", help="Profile JSON from --fit: draw noise, coverage and spikes around a real map."
    ),
    shape: str = typer.Option("128", "--shape", help="Cells per sample: N (square) or ROWSxCOLS."),
    cell_size: float = typer.Option(
        None, "--cell-size", help="Metres [default: the profile's, else 50; with --fit: from point density]."
    ),
    workers: int = typer.Option(2, "--workers", help="Processes generating shards (the files do not depend on it)."),
    shard_size: int = typer.Option(256, "--shard-size", help="Samples per shard file."),
    positive_fraction: float = typer.Option(0.5, "--positive-fraction", help="Share of samples with deformation."),
    hard_fraction: float = typer.Option(0.5, "--hard-fraction", help="Share of the negatives that are hard."),
    fit: bool = typer.Option(False, "--fit", help="Fit a profile to the INPUTS (one per track) and write it to OUT."),
    scenes: bool = typer.Option(
        False,
        "--scenes",
        help="Write N evaluation scenes instead (--shape cells a side, 800 suggested): points CSVs with truth "
        "polygons; --positive-fraction of them with signals of every kind, the rest signal-free.",
    ),
    per_kind: int = typer.Option(1, "--per-kind", help="With --scenes: signals of each kind in a scene with signals."),
    crs: str = Crs,
    units: str = Units,
    lon: str = Lon,
    lat: str = Lat,
    x: str = X,
    y: str = Y,
    velocity: str = Velocity,
):
    """Generate a synthetic training set into OUT, or with --fit, fit a profile of real maps for it.

    A dataset: shard-NNNNN.npz (arrays), labels-NNNNN.jsonl (one line per sample) and manifest.json (written
    last); a rerun with the same options resumes an interrupted one. A profile: one JSON object, or a list of
    them when the inputs hold several tracks.
    """
    import time

    from defoscan.outputs import check_writable_dir

    if fit:
        if not inputs:
            raise InputError(None, "--fit needs the real maps: defoscan synth --fit INPUT [INPUT ...] --out FILE.json")
        if n is not None or profile is not None:
            raise InputError(None, "--n and --profile make a dataset; they do not go with --fit")
        if out.is_dir():
            raise InputError(out, "is a directory; --fit writes a profile JSON file")
        check_writable_dir(os.path.dirname(os.path.abspath(out)))
        _synth_fit(inputs, out, cell_size, _read_options(crs, units, lon, lat, x, y, velocity))
        return
    from defoscan.synth.dataset import load_profiles, write_dataset

    if inputs:
        raise InputError(inputs[0], "input maps are read only with --fit; a dataset is made from --profile")
    if n is None or seed is None:
        raise InputError(None, "a dataset needs --n (samples) and --seed: defoscan synth --n N --seed S --out DIR")
    rows, _, cols = shape.lower().strip().partition("x")
    if not (rows.strip().isdigit() and (cols.strip().isdigit() or not cols)):
        raise InputError(None, f"--shape must be N or ROWSxCOLS, got {shape!r}")
    shape_cells = (int(rows), int(cols or rows))
    profiles = load_profiles(profile) if profile is not None else None
    if cell_size is None:
        sizes = {p.get("cell_size") for p in profiles or []}
        cell_size = float(sizes.pop()) if len(sizes) == 1 and None not in sizes else 50.0
    if scenes:
        if per_kind < 1:
            raise InputError(None, f"--per-kind must be at least 1, got {per_kind}")
        _synth_scenes(out, n, seed, shape_cells, cell_size, profiles, positive_fraction, per_kind)
        return
    start = time.perf_counter()
    bar, update = _synth_progress()
    with bar:
        manifest = write_dataset(
            out,
            n,
            seed=seed,
            shape=shape_cells,
            cell_size=cell_size,
            profile=profile,
            shard_size=shard_size,
            workers=workers,
            positive_fraction=positive_fraction,
            hard_fraction=hard_fraction,
            progress=update,
        )
    elapsed = time.perf_counter() - start
    classes = manifest["classes"]
    console.print(
        f"wrote {n:,} samples of {shape_cells[0]} x {shape_cells[1]} cells of {cell_size:g} m to {out}: "
        f"{classes['positive']:,} positive, {classes['negative']:,} negative ({classes['hard_negative']:,} hard), "
        f"{len(manifest['shards'])} shard(s), {elapsed:.1f} s ({n / elapsed:.1f} samples/s)",
        soft_wrap=True,
    )


@app.command()
def evaluate(
    detections: Path = typer.Argument(
        ..., help="Detections (GeoJSON or GeoPackage), e.g. DIR/detections.geojson of a detect run.", show_default=False
    ),
    truth: Path = typer.Argument(
        ...,
        help="Truth polygons (GeoJSON or GeoPackage); per-type and per-band recall from their kind and peak_velocity "
        "(mm/yr) attributes.",
        show_default=False,
    ),
    area_km2: float = typer.Option(
        None,
        "--area-km2",
        help="Area examined, for false alarms per 1000 km² (default: the cells with data in the run.json beside "
        "DETECTIONS).",
        show_default=False,
    ),
    probability: Path = typer.Option(
        None,
        "--probability",
        help="Probability map for cell-level ROC AUC and average precision (default: probability.tif beside "
        "DETECTIONS, if there).",
        show_default=False,
    ),
    out: Path = typer.Option(None, "--out", help="Also write the scores as JSON to this file.", show_default=False),
):
    """Score detections against truth polygons: recall (per type, per velocity band), precision, F1, false alarms."""
    from defoscan.evaluate import evaluate_files
    from defoscan.outputs import check_writable_dir, write_json

    if area_km2 is not None and not area_km2 > 0:
        raise InputError(None, f"--area-km2 must be positive, got {area_km2}")
    if out is not None:
        check_writable_dir(os.path.dirname(os.path.abspath(out)))
    result = evaluate_files(
        str(detections),
        str(truth),
        area_km2=area_km2,
        probability_path=None if probability is None else str(probability),
    )
    _print_scores(result)
    if out is not None:
        write_json(str(out), result)


@app.command("evaluate-scenes")
def evaluate_scenes(
    scenes: Path = typer.Argument(..., help="Scene directory written by defoscan synth --scenes.", show_default=False),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Work directory: each run's detections and scores (kept: a rerun resumes), results.json.",
        show_default=False,
    ),
    rows: str = typer.Option(
        None, "--rows", help="Comma-separated row names to run [default: all]; see docs/EVALUATION.md."
    ),
    models: Path = typer.Option(
        Path("benchmarks/models"), "--models", help="Directory of the model ablations' weights."
    ),
    real: bool = typer.Option(True, "--real/--no-real", help="Also run the real-data checks (Kirishima, Ustica)."),
    table: Path = typer.Option(
        None,
        "--table",
        help="Markdown file to put the results table in (between <!-- results:begin/end --> markers).",
        show_default=False,
    ),
):
    """Run the detector, the baselines and the ablations on a scene suite and pool their scores into one table."""
    from defoscan.outputs import check_writable_dir, write_json
    from defoscan.suite import ROWS, results_table, run_suite, scene_names, write_table

    if not scenes.is_dir() or not scene_names(str(scenes)):
        raise InputError(scenes, "no scenes here (defoscan synth --scenes --out DIR writes them)")
    chosen = ROWS
    if rows:
        wanted = [name.strip() for name in rows.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {row.name for row in ROWS})
        if unknown:
            raise InputError(None, f"unknown rows {', '.join(unknown)}; choose from {', '.join(r.name for r in ROWS)}")
        chosen = [row for row in ROWS if row.name in wanted]
    check_writable_dir(str(out))
    if table is not None:
        check_writable_dir(os.path.dirname(os.path.abspath(table)))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("runs", total=None)

        def progress(done, total, description):
            bar.update(task, completed=done, total=total, description=description)

        suite = run_suite(str(scenes), str(out), rows=chosen, models_dir=str(models), real=real, progress=progress)
    write_json(os.path.join(str(out), "results.json"), suite)
    text = results_table(suite)
    console.print(text)
    if table is not None:
        write_table(str(table), text)
        console.print(f"table written into {table}")


@app.command()
def train(
    datasets: list[Path] = typer.Argument(
        ..., help="Training set(s) written by defoscan synth (one window size and cell size).", show_default=False
    ),
    out: Path = typer.Option(
        ..., "--out", help="Model file NAME.safetensors (card NAME.json beside it).", show_default=False
    ),
    val: Path = typer.Option(None, "--val", help="Validation set (default: every tenth sample of the training sets)."),
    arch: str = typer.Option("compact", "--arch", help="compact (default, CPU) or alexnet (the paper's)."),
    width: int = typer.Option(16, "--width", help="Compact net: channels of its first stage."),
    separable: bool = typer.Option(False, "--separable", help="Compact net: depthwise-separable convolutions."),
    fcn: bool = typer.Option(False, "--fcn", help="Compact net: train the per-pixel head too."),
    mode: str = typer.Option(
        "single", "--mode", help="Input: single (fringes at 27.7 mm/yr), enhanced (2, 6.3, 20 mm/yr), raw (velocity)."
    ),
    fill: bool = typer.Option(False, "--fill", help="Gap-fill windows with the matrix completion first (cached)."),
    epochs: int = typer.Option(12, "--epochs", help="Most epochs."),
    batch: int = typer.Option(32, "--batch", help="Windows per step."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate."),
    patience: int = typer.Option(3, "--patience", help="Epochs without a better validation AUC before stopping."),
    seed: int = typer.Option(0, "--seed", help="Seed: same data, options, seed and threads give the same model."),
    threads: int = typer.Option(2, "--threads", help="torch threads."),
    max_train: int = typer.Option(
        None, "--max-train", help="Use only N training samples (the first N/k of each of k datasets)."
    ),
    max_val: int = typer.Option(None, "--max-val", help="Use only the first N validation samples."),
    quick: bool = typer.Option(False, "--quick", help="A tiny model in about a minute (tests, smoke runs)."),
    imagenet: Path = typer.Option(
        None, "--imagenet", help="AlexNet: start from a torchvision-format ImageNet AlexNet state dict file."
    ),
):
    """Train a network on a synthetic dataset and write it (safetensors weights + JSON model card) to OUT.

    Shows a progress bar and one line of validation metrics per epoch, keeps the best epoch, stops early, and
    resumes from OUT.checkpoint/ when run again with the same options after an interruption.
    """
    from defoscan.model.data import concat_windows, load_windows
    from defoscan.model.inputs import recipe_with
    from defoscan.model.train import QUICK, TrainConfig
    from defoscan.model.train import train as run_train
    from defoscan.outputs import check_writable_dir
    from defoscan.wrap import MODES

    if arch not in ("compact", "alexnet"):
        raise InputError(None, f"--arch must be compact or alexnet, got {arch!r}")
    if mode not in MODES:
        raise InputError(None, f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if min(epochs, batch, patience, threads, width) < 1 or not lr > 0:
        raise InputError(None, "--epochs, --batch, --patience, --threads and --width must be >= 1, --lr > 0")
    if imagenet is not None and arch != "alexnet":
        raise InputError(imagenet, "--imagenet weights are for --arch alexnet")
    if imagenet is not None and not imagenet.is_file():
        raise InputError(imagenet, "no such file")
    if not str(out).endswith(".safetensors"):
        raise InputError(out, "the model file name must end in .safetensors")
    if out.is_dir():
        raise InputError(out, "is a directory; --out names the model file")
    check_writable_dir(os.path.dirname(os.path.abspath(out)))
    config = TrainConfig(
        arch=arch,
        width=width,
        separable=separable,
        fcn=fcn,
        recipe=recipe_with(mode=mode),
        epochs=epochs,
        batch=batch,
        lr=lr,
        patience=patience,
        seed=seed,
        threads=threads,
        max_train=max_train,
        max_val=max_val,
        imagenet=str(imagenet) if imagenet else None,
    )
    if quick:
        config = TrainConfig(**{**config.__dict__, **QUICK})
    # --max-train N over several datasets: the first N / k samples of each, so that all of them are drawn on
    # (and a gap-filled prefix already cached is reused).
    limit = -(-config.max_train // len(datasets)) if val is not None and config.max_train else None
    _log("loading" + (" and gap-filling (cached after the first run)" if fill else ""))
    try:
        windows = concat_windows(load_windows(d, limit=limit, fill=fill, workers=threads) for d in datasets)
    except ValueError as err:
        raise InputError(datasets[-1], str(err)) from None
    if val is None:
        held_out = windows.index % 10 == 0
        train_windows, val_windows = windows.subset(~held_out), windows.subset(held_out)
    else:
        train_windows = windows
        val_windows = load_windows(val, limit=config.max_val, fill=fill, workers=threads)
    if val_windows.velocity.shape[1:] != train_windows.velocity.shape[1:]:
        raise InputError(val, "validation windows differ in shape from the training windows")
    bar, update = _train_progress()
    with bar:
        try:
            card = run_train(
                train_windows,
                val_windows,
                str(out),
                config,
                progress=update,
                log=lambda line: console.print(line, soft_wrap=True),
            )
        except ValueError as err:  # ImageNet weights that do not fit (the message names the file and key)
            raise InputError(imagenet or out, str(err)) from None
    metrics = card["metrics"]
    console.print(
        f"wrote {out}: {card['recipe']['train']['arch']} net, best epoch {metrics['best_epoch']}, "
        f"validation AUC {metrics['val_auc']:.4f}, {metrics['train_seconds']:.0f} s",
        soft_wrap=True,
    )


def _train_progress():
    """A rich progress bar of the batches of an epoch on stderr (only on a terminal), and its update callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=progress,
        disable=not progress.is_terminal,
    )
    tasks = {}

    def update(epoch, done, total):
        if epoch not in tasks:
            tasks[epoch] = bar.add_task("train", total=total, epoch=epoch)
        bar.update(tasks[epoch], completed=done)

    return bar, update


def _synth_scenes(out, n, seed, shape, cell_size, profiles, positive_fraction, per_kind=1):
    """Write ``n`` scenes (:mod:`defoscan.synth.scene`): the first ``positive_fraction`` with signals."""
    import numpy as np

    from defoscan.outputs import check_writable_dir
    from defoscan.synth.scene import make_scene, write_scene

    check_writable_dir(out)
    with_signals = int(round(n * positive_fraction))
    for index in range(n):
        scene_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        profile = profiles[index % len(profiles)] if profiles else None
        points, truths, info = make_scene(
            scene_seed,
            shape=shape,
            cell_size=cell_size,
            profile=profile,
            signals=index < with_signals,
            per_kind=per_kind,
        )
        write_scene(str(out), f"scene-{index:03d}", points, truths, info)
        console.print(f"scene-{index:03d}: {points['x'].size:,} points, {len(truths)} truth polygon(s)")


def _synth_fit(inputs, out, cell_size, options):
    """``synth --fit``: one profile per track of the gridded inputs, written to ``out`` (a list if several)."""
    import json

    from defoscan.grid import grid_inputs
    from defoscan.io import read_inputs
    from defoscan.outputs import atomic_path
    from defoscan.synth.profile import fit_profile, save_profile

    _log("reading")
    datasets = read_inputs([str(p) for p in inputs], options)
    _log("gridding")
    grids = grid_inputs(datasets, cell_size=cell_size)
    _log("fitting")
    profiles = []
    for g in grids:
        track = g.attrs.get("track")
        stem = Path((g.attrs.get("sources") or [inputs[0]])[0]).stem  # this track's own file
        name = f"{stem} {track}" if track else stem
        size = abs(float(g.rio.resolution()[0]))
        try:
            profiles.append(fit_profile(g["velocity"].values, g["count"].values, size, name=name))
        except ValueError as err:  # too few cells with data, a map that cannot be fitted
            raise InputError(inputs[0], f"cannot fit a profile ({err})") from None
    if len(profiles) == 1:
        save_profile(profiles[0], out)
    else:
        with atomic_path(out) as temporary, open(temporary, "w", encoding="utf-8") as handle:
            json.dump(profiles, handle, indent=1, sort_keys=True, allow_nan=False, default=_plain_json)
            handle.write("\n")
    names = ", ".join(str(p.get("name")) for p in profiles)
    console.print(f"wrote {out}: {len(profiles)} profile(s) ({names})", soft_wrap=True)


def _plain_json(value):
    import numpy as np

    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _synth_progress():
    """A rich progress bar with samples/s on stderr (only on a terminal), and its ``update(done, total)``."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=progress,
        disable=not progress.is_terminal,
    )
    state = {}

    def update(done, total):
        now = time.perf_counter()
        if not state:  # samples kept from an interrupted run do not count in the rate
            state.update(task=bar.add_task("synth", total=total, completed=done, rate=""), done=done, time=now)
        made, seconds = done - state["done"], now - state["time"]
        bar.update(state["task"], completed=done, rate=f"{made / seconds:.1f} samples/s" if made and seconds else "")

    return bar, update


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        typer.echo(f"defoscan {__version__}")
        raise typer.Exit()


def _log(stage):
    if progress.is_terminal:
        progress.print(f"[dim]defoscan:[/dim] {stage} ...")


class _ChunkProgress:
    """A progress bar per chunk stage on the terminal (chunks done, chunks a second, time left); else silent."""

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[dim]defoscan:[/dim] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("chunks"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=progress,
            disable=not progress.is_terminal,
        )
        self._tasks = {}
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def log(self, stage):
        if progress.is_terminal:
            self._bar.console.print(f"[dim]defoscan:[/dim] {stage} ...")

    def update(self, stage, done, total):
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total, completed=done, rate="")
        task = self._tasks[stage]
        self._bar.update(task, completed=done)
        speed = self._bar.tasks[task].speed
        self._bar.update(task, rate=f"{speed:.2f} chunks/s" if speed else "")


def _print_scores(result):
    def share(value):
        return "-" if value is None else f"{100 * value:.1f} %"

    table = Table(title=f"{result['detections']} detection(s) against {result['truths']} truth polygon(s)")
    table.add_column("score")
    table.add_column("value", justify="right")
    rate = result["false_alarms_per_1000_km2"]
    rows = [
        ("recall", f"{share(result['recall'])} ({result['found']} of {result['truths']})"),
        ("precision", share(result["precision"])),
        ("F1", "-" if result["f1"] is None else f"{result['f1']:.3f}"),
        ("false alarms", str(result["false_alarms"])),
        ("false alarms per 1000 km²", "- (no area: --area-km2)" if rate is None else f"{rate:.2f}"),
    ]
    rows += [
        (f"recall, {kind}", share(r["recall"]) + f" of {r['truths']}") for kind, r in result["recall_by_kind"].items()
    ]
    rows += [
        (f"recall, |peak| {band} mm/yr", share(r["recall"]) + f" of {r['truths']}")
        for band, r in result["recall_by_band"].items()
    ]
    cells = result.get("cells")
    if cells is not None:
        for name in ("roc_auc", "average_precision"):
            value = cells[name]
            label = "ROC AUC" if name == "roc_auc" else "average precision"
            rows.append((f"cells: {label}", "-" if value is None else f"{value:.3f}"))
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _print_summary(result, out):
    frame = result["detections"]
    several_tracks = frame["track"].nunique() > 1
    columns = [
        "#",
        "score",
        "sign",
        *(["track"] if several_tracks else []),
        "area km²",
        "points",
        "mean vs surroundings mm/yr",  # relative to the local background: docs/SCAN.md
        "peak vs surroundings mm/yr",
    ]
    by_sign = {s: int((frame["sign"] == s).sum()) for s in ("subsidence", "uplift")}
    grid = result["grid"]
    with_data = sum(t["cells_with_data"] for t in result["tracks"]) * grid["cell_size_m"] ** 2 / 1e6
    coverage = ", ".join(f"{t['coverage']:.0%}" for t in result["tracks"])
    table = Table(
        title=f"{len(frame)} detection(s): {by_sign['subsidence']} subsidence, {by_sign['uplift']} uplift",
        caption=f"{with_data:,.1f} km² with data (coverage {coverage}), run time {result['timings']['total_s']:.1f} s",
    )
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for _, row in frame.head(15).iterrows():
        cells = [
            str(row["id"]),
            f"{row['score']:.2f}",
            row["sign"],
            *([row["track"]] if several_tracks else []),
            f"{row['area_km2']:.3f}",
            str(row["n_points"]),
            f"{row['mean_relative']:.1f}",
            f"{row['peak_relative']:.1f}",
        ]
        table.add_row(*cells)
    console.print(table)
    if len(frame) > 15:
        console.print(f"... and {len(frame) - 15} more in report.html and detections.geojson")
    console.print(f"report: {Path(out) / 'report.html'}  (open it in a browser)", soft_wrap=True)


def main(argv=None):
    """Entry point of the ``defoscan`` script: exit status 2 and one line for bad input.

    Usage errors are click's (status 2, with the usage line); :class:`InputError` from any stage becomes
    ``defoscan: error: FILE: problem`` on stderr and status 2.
    """
    try:
        app(args=argv, prog_name="defoscan")  # standalone: exits itself on success and on usage errors
    except InputError as err:
        print(f"defoscan: error: {err}", file=sys.stderr)
        sys.exit(2)
