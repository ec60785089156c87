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
    threshold: float = typer.Option(3.0, "--threshold", help="Detection threshold in noise units."),
):
    """Detect deformation and write detections, grids, overview, report and run record into OUT."""
    from defoscan.detect import detect as run_detect
    from defoscan.threshold import ThresholdParameters

    options = _read_options(crs, units, lon, lat, x, y, velocity)
    result = run_detect(
        [str(p) for p in inputs],
        str(out),
        options=options,
        cell_size=cell_size,
        parameters=ThresholdParameters(k=threshold),
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
    """Run detect on real data bundled with the package (Kirishima volcano, Japan, by default)."""
    from defoscan.detect import detect as run_detect

    if dataset not in DEMO_DATASETS:
        raise InputError(None, f"unknown demo dataset {dataset!r}; choose from {', '.join(DEMO_DATASETS)}")
    data = files("defoscan") / "data"
    inputs = [str(data / name) for name in DEMO_DATASETS[dataset]]
    result = run_detect(inputs, str(out), log=_log)
    _print_summary(result, out)


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


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        typer.echo(f"defoscan {__version__}")
        raise typer.Exit()


def _log(stage):
    if progress.is_terminal:
        progress.print(f"[dim]defoscan:[/dim] {stage} ...")


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
        "mean mm/yr",
        "peak mm/yr",
    ]
    table = Table(title=f"{len(frame)} detection(s)")
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
            f"{row['mean_velocity']:.1f}",
            f"{row['peak_velocity']:.1f}",
        ]
        table.add_row(*cells)
    console.print(table)
    if len(frame) > 15:
        console.print(f"... and {len(frame) - 15} more in detections.geojson")
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
