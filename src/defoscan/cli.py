"""The ``defoscan`` command line (contract: docs/DESIGN-NOTES.md, "Command line contract").

Every failure is one line on stderr, never a traceback, and exit status 2: bad input (:class:`InputError`,
``defoscan: error: FILE: problem``) and bad options alike (``defoscan: error: --cell-size: must be > 0, got -50``),
the latter checked as the command line is read, before any work. Warnings are one line each on stderr
(``defoscan: warning: ...``), terminal or not; ``-q`` silences them, ``-v`` adds the stage messages
(:func:`defoscan.log.configure_cli_logging`). Progress bars are drawn on a terminal only.
"""

import contextlib
import functools
import inspect
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup

from defoscan import __version__
from defoscan.errors import InputError, disk_full
from defoscan.io import ReadOptions
from defoscan.io.units import UNIT_CHOICES
from defoscan.log import configure_cli_logging, logger

try:  # typer 0.2x carries its own click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer, on click itself
    from click import exceptions as click_errors

console = Console()  # results: stdout
progress = Console(stderr=True)  # progress bars: stderr, and only on a terminal, so errors stay one line

# Exit status of a detect run that wrote its outputs but whose detector left more than a tenth of the cells with
# data unscanned (the CNN's windows find too few cells with data: a map gridded far coarser than the model's cells,
# or too sparse or small for its windows): "no detection" is no result there. With --cell-size the user chose the
# cells, and the run exits 0 (the warning is in run.json and the report).
EXIT_NOT_SCANNED = 3
DEMO_DATASETS = ("kirishima", "ustica")  # real datasets of defoscan.real_data, read from --data
MIN_CHUNK = 64  # cells a side; the pipeline refuses smaller chunks too (defoscan.pipeline.MIN_CHUNK)
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "space": " ", "comma": ",", "semicolon": ";", "pipe": "|"}
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
INTERRUPTED = 130  # exit status of a command stopped by SIGINT: 128 + 2, as the shell reports it


# --- help: -h, and metavars that read as words ----------------------------------------------------------------


class _Flagged:
    """``-h``/``--help`` shown as a flag (typer would show its type, ``<bool>``)."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: ``INPUT...``, not ``{INPUT...}...`` and ``<list[Path]>``."""

    def display_type_rich(self, ctx):
        return None

    def _usage_display_name(self):
        return self.metavar if self.required else f"[{self.metavar}]"


class _Command(_Flagged, TyperCommand):
    """A command whose help shows words (``INPUT...``, ``--cell-size M``), never typer's ``<float>``.

    Parameters without a metavar of their own get their name in capitals (flags none), so that options added
    later read as words too.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.help:  # the docstring's paragraphs, each rewrapped to the terminal (typer keeps their line breaks)
            paragraphs = inspect.cleandoc(self.help).split("\n\n")
            self.help = "\n\n".join(" ".join(p.split()) for p in paragraphs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                if param.metavar is None:
                    param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
                param.__class__ = _Argument
            elif param.metavar is None:
                flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
                param.metavar = "" if flag else param.name.upper()


class _Group(_Flagged, TyperGroup):
    pass


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    help="Find ground deformation in sparse satellite InSAR velocity maps.",
)

Verbose = typer.Option(
    0,
    "-v",
    "--verbose",
    count=True,
    metavar="",
    show_default=False,
    help="Also write the stage messages and the Python warnings of the libraries on stderr, terminal or not "
    "(-vv: debug messages too).",
)
Quiet = typer.Option(False, "-q", "--quiet", metavar="", help="Write errors only: no warnings, no stage messages.")


def _logging_options(verbose, quiet):
    if verbose and quiet:
        raise InputError(None, "-q (errors only) and -v (more messages) do not go together")
    configure_cli_logging(-1 if quiet else verbose, terminal=progress.is_terminal)


def _command(name=None):
    """``app.command`` with ``-h``, readable metavars and the ``-v``/``-q`` options added to the function's own."""

    def register(function):
        @functools.wraps(function)
        def run(*args, verbose=0, quiet=False, **kwargs):
            if verbose or quiet:  # else what main() (or the group's -v/-q) set stays
                _logging_options(verbose, quiet)
            try:
                return function(*args, **kwargs)
            except InputError:
                raise
            except KeyboardInterrupt:  # typer would exit 130 without a word
                _ignore_further_interrupts()
                raise _Interrupted(_interrupted(kwargs.get("out"))) from None
            except Exception as error:
                if not disk_full(error):
                    raise
                raise _no_space(kwargs.get("out") or kwargs.get("run_dir")) from None

        signature = inspect.signature(function)
        extra = [
            inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=Verbose, annotation=int),
            inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=Quiet, annotation=bool),
        ]
        run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
        run.__annotations__ = {**function.__annotations__, "verbose": int, "quiet": bool}
        return app.command(name, cls=_Command, context_settings=HELP_OPTIONS)(run)

    return register


class _Interrupted(Exception):
    """A command stopped by SIGINT, with the line to say."""


def _ignore_further_interrupts():
    """SIGINT ignored from now on (main thread only): the command is stopping already.

    A second SIGINT (a key held, a terminal's repeat, a supervisor's retry) would otherwise raise another
    KeyboardInterrupt while the exit unwinds (atexit handlers, the thread pool's joins), and the process would die
    by the signal (status -2) instead of saying its one line and exiting 130. An in-process caller of
    :func:`main` that goes on afterwards restores its own handler.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted(out):
    """The line of a command stopped by SIGINT (Ctrl-C): what to do when a chunked run's work was kept."""
    from defoscan.pipeline import work_directory

    if out is not None and os.path.isdir(work_directory(out)):
        return "interrupted; rerun the same command to resume"
    return "interrupted"


def _no_space(out):
    """The one line of a command that filled the file system of ``out``: how much is free now, how to go on.

    The writers have removed what they left half-written (temporary files, the staging directory) by then; a
    chunked run's work directory is kept, so that the same command resumes once space is freed.
    """
    from defoscan.pipeline import work_directory

    target = os.path.abspath(out if out is not None else os.curdir)
    existing = target
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    free = shutil.disk_usage(existing).free
    work = work_directory(target)
    if os.path.isdir(work):
        then = f"free some space and run the same command again: it resumes from {work}"
    else:
        then = "nothing was left half-written; free some space and run the command again"
    return InputError(None, f"no space left on device writing {target} ({_megabytes(free)} free there now; {then})")


def _megabytes(size):
    return f"{size / 1e6:.1f} MB"


# --- option checks: each a typer callback, so a bad value stops the command line before any work -----------------


def _shown(value):
    if isinstance(value, tuple | list):
        return " ".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def _check(test, wanted):
    """A callback refusing a value (given, not None) for which ``test`` is false: ``must be WANTED, got VALUE``."""

    def callback(value):
        if value is not None and not test(value):
            raise typer.BadParameter(f"must be {wanted}, got {_shown(value)}")
        return value

    return callback


_positive = _check(lambda v: v > 0, "positive")
_fraction = _check(lambda v: 0 <= v <= 1, "in [0, 1]")
_probability = _check(lambda v: 0 < v <= 1, "in (0, 1]")
_count = _check(lambda v: v >= 0, ">= 0")


def _at_least(low):
    return _check(lambda v: v >= low, f">= {low}")


def _crs(value):
    """An EPSG code (``27700``), ``EPSG:27700``, WKT or PROJ string, checked with pyproj; digits become ``EPSG:N``."""
    if value is None:
        return None
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    text = f"EPSG:{value.strip()}" if value.strip().isdigit() else value.strip()
    try:
        CRS.from_user_input(text)
    except CRSError:
        raise typer.BadParameter(f"must be a CRS (an EPSG code such as 27700, WKT or PROJ), got {value!r}") from None
    return text


def _units(value):
    from defoscan.io.units import mm_per_year

    if value is not None:
        try:
            mm_per_year(value)
        except InputError:
            raise typer.BadParameter(f"must be one of {', '.join(UNIT_CHOICES)}, got {value!r}") from None
    return value


def _detector(value):
    from defoscan.detectors import DETECTORS

    if value not in DETECTORS:
        raise typer.BadParameter(f"must be one of {', '.join(DETECTORS)}, got {value!r}")
    return value


def _delimiter(value):
    if value is None:
        return None
    value = DELIMITER_NAMES.get(value.lower(), value)
    if len(value) != 1:
        raise typer.BadParameter(f"must be one character (or tab, space, comma, semicolon, pipe), got {value!r}")
    return value


def _decimal(value):
    if value is not None and value not in (".", ","):
        raise typer.BadParameter(f'must be "." or ",", got {value!r}')
    return value


def _bbox(value):
    if value is None:
        return None
    west, east, south, north = value
    if not (west < east and south < north):
        raise typer.BadParameter(f"must be W E S N with W < E and S < N, got {_shown(tuple(value))}")
    return tuple(value)


def _existing_file(value):
    if value is not None and not value.is_file():
        raise typer.BadParameter(f"no such file: {value}")
    return value


# --- options shared by the commands that read velocity maps ------------------------------------------------------

Inputs = typer.Argument(
    ...,
    metavar="INPUT...",
    help="Points table (CSV/TSV/Parquet, EGMS zip, Shapefile/GeoPackage) or velocity raster "
    "(GeoTIFF, MintPy HDF5); several files of one area may be given.",
    show_default=False,
)
CellSize = typer.Option(
    None,
    "--cell-size",
    metavar="M",
    callback=_positive,
    help="Grid cell size in metres (default: from the point density).",
    show_default=False,
)
Crs = typer.Option(
    None,
    "--crs",
    metavar="EPSG",
    callback=_crs,
    help="CRS of easting/northing columns or of a raster without one, e.g. 27700; not used for longitude/latitude "
    "columns or a raster that has a CRS.",
    show_default=False,
)
Units = typer.Option(
    None,
    "--units",
    metavar="UNIT",
    callback=_units,
    help=f"Velocity unit of the input, one of {', '.join(UNIT_CHOICES)} (default: what the file declares, else mm/yr).",
    show_default=False,
)
Lon = typer.Option(None, "--lon", metavar="COL", help="Name of the longitude column.", show_default=False)
Lat = typer.Option(None, "--lat", metavar="COL", help="Name of the latitude column.", show_default=False)
X = typer.Option(None, "--x", metavar="COL", help="Name of the easting column (needs --crs).", show_default=False)
Y = typer.Option(None, "--y", metavar="COL", help="Name of the northing column (needs --crs).", show_default=False)
Velocity = typer.Option(None, "--velocity", metavar="COL", help="Name of the velocity column.", show_default=False)
Delimiter = typer.Option(
    None,
    "--delimiter",
    metavar="CHAR",
    callback=_delimiter,
    help="Field delimiter of a text table: a character, or tab, space, comma, semicolon (default: detected).",
    show_default=False,
)
Decimal = typer.Option(
    None,
    "--decimal",
    metavar="CHAR",
    callback=_decimal,
    help='Decimal mark of a text table, "." or "," (default: detected).',
    show_default=False,
)
MinCoherence = typer.Option(
    None,
    "--min-coherence",
    metavar="C",
    callback=_fraction,
    help="Drop points (or raster cells) of temporal coherence below C, 0 to 1: a table's coherence column (EGMS "
    "temporal_coherence), MintPy's temporalCoherence.h5 beside velocity.h5.",
    show_default=False,
)
Bbox = typer.Option(
    None,
    "--bbox",
    metavar="W E S N",
    callback=_bbox,
    help="Area of interest: west, east, south, north bounds, in longitude/latitude degrees (or see --bbox-crs); "
    "points and cells outside it are dropped.",
    show_default=False,
)
BboxCrs = typer.Option(
    None,
    "--bbox-crs",
    metavar="EPSG",
    callback=_crs,
    help="CRS of the --bbox bounds, e.g. the working CRS's code (default: 4326, longitude/latitude).",
    show_default=False,
)

Nodata = typer.Option(
    None,
    "--nodata",
    metavar="V",
    callback=_check(lambda v: abs(v) < float("inf"), "a finite number"),
    help="Velocity value (as the file writes it) that marks no data, besides the file's own nodata (default: "
    "-9999, -32768 and other common fill values are read as no data, with a warning, in files declaring none).",
    show_default=False,
)
Layer = typer.Option(
    None,
    "--layer",
    metavar="NAME",
    help="Layer of a vector file holding several, e.g. a GeoPackage (default: its only layer of points).",
    show_default=False,
)


READ_OPTIONS = {  # parameter: (annotation, option) -- every command that reads inputs takes these
    "crs": (str, Crs),
    "units": (str, Units),
    "lon": (str, Lon),
    "lat": (str, Lat),
    "x": (str, X),
    "y": (str, Y),
    "velocity": (str, Velocity),
    "delimiter": (str, Delimiter),
    "decimal": (str, Decimal),
    "min_coherence": (float, MinCoherence),
    "bbox": (tuple[float, float, float, float], Bbox),
    "bbox_crs": (str, BboxCrs),
    "nodata": (float, Nodata),
    "layer": (str, Layer),
}


def _reads_inputs(function):
    """A command that reads inputs: the options of :data:`READ_OPTIONS` added to its own, given to it as one
    :class:`defoscan.io.ReadOptions` (its ``options`` parameter)."""
    signature = inspect.signature(function)
    own = [p for p in signature.parameters.values() if p.name != "options"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
        for name, (annotation, option) in READ_OPTIONS.items()
    ]

    @functools.wraps(function)
    def run(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in READ_OPTIONS}
        return function(*args, options=_read_options(**values), **kwargs)

    run.__signature__ = signature.replace(parameters=[*own, *added])
    annotations = {k: v for k, v in function.__annotations__.items() if k != "options"}
    run.__annotations__ = {**annotations, **{name: annotation for name, (annotation, _) in READ_OPTIONS.items()}}
    return run


def _read_options(
    crs, units, lon, lat, x, y, velocity, delimiter, decimal, min_coherence, bbox, bbox_crs, nodata, layer
):
    columns = {k: v for k, v in {"lon": lon, "lat": lat, "x": x, "y": y, "velocity": velocity}.items() if v}
    if bbox_crs is not None and bbox is None:
        raise InputError(None, "--bbox-crs is the CRS of --bbox; give --bbox W E S N with it")
    if bbox is not None and bbox_crs is None:
        west, east, south, north = bbox
        if not (-180 <= west and east <= 180 and -90 <= south and north <= 90):
            raise InputError(
                None,
                f"--bbox {_shown(bbox)} is not in longitude/latitude degrees; give --bbox-crs EPSG for bounds in "
                "another CRS",
            )
    return ReadOptions(
        columns=columns,
        crs=crs,
        units=units,
        delimiter=delimiter,
        decimal=decimal,
        min_coherence=min_coherence,
        bbox=bbox,
        **({"bbox_crs": bbox_crs} if bbox_crs else {}),
        nodata=nodata,
        layer=layer,
    )


@_command()
@_reads_inputs
def detect(
    inputs: list[Path] = Inputs,
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Output directory.", show_default=False),
    cell_size: float = CellSize,
    options: ReadOptions = None,  # the read options, declared once (_reads_inputs)
    mask: Path = typer.Option(
        None,
        "--mask",
        metavar="FILE",
        callback=_existing_file,
        help="Polygons (GeoJSON, GeoPackage, Shapefile) of areas to leave out of the detection, e.g. water.",
        show_default=False,
    ),
    model: Path = typer.Option(
        None,
        "--model",
        metavar="FILE",
        help="CNN weights file (.safetensors), its .json card beside it (default: the bundled model).",
        show_default=False,
    ),
    detector: str = typer.Option(
        "cnn",
        "--detector",
        metavar="NAME",
        callback=_detector,
        help="cnn (scan with the model), or a baseline: threshold (noise-unit thresholding), gistar (Getis-Ord Gi* "
        "hotspots) or ada (active deformation areas, after ADAfinder).",
    ),
    probability_threshold: float = typer.Option(
        None,
        "--probability-threshold",
        metavar="P",
        callback=_probability,
        help="Probability a cell needs to join a detection, in (0, 1], cnn detector (default: the model card's, "
        "else 0.5).",
        show_default=False,
    ),
    threshold: float = typer.Option(
        3.0,
        "--threshold",
        metavar="K",
        callback=_positive,
        help="Detection threshold in noise units, threshold detector.",
    ),
    chunk: int = typer.Option(
        None,
        "--chunk",
        metavar="N",
        callback=_at_least(MIN_CHUNK),
        help="Run chunk by chunk in map chunks of N cells a side, in a work directory beside OUT (memory bounded, "
        "resumable; default 1024 when --workers or --scheduler is given).",
        show_default=False,
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        metavar="N",
        callback=_at_least(1),
        help="Run the chunks on a local dask cluster of N worker processes.",
        show_default=False,
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        metavar="ADDRESS",
        help="Run the chunks on a running dask.distributed cluster (ADDRESS, e.g. tcp://host:8786); its workers "
        "must see the output directory's parent at the same path.",
        show_default=False,
    ),
    wait: bool = typer.Option(
        False,
        "--wait",
        metavar="",
        help="When another run is writing OUT, wait for it to end and then run (default: refuse, exit status 2).",
    ),
    fresh: bool = typer.Option(
        False,
        "--fresh",
        metavar="",
        help="Start a chunked run afresh, discarding the work an interrupted run kept beside OUT (by default the "
        "same command resumes it, unless an input's size, time or sampled content changed).",
    ),
):
    """Detect deformation and write detections, grids, overview, report and run record into OUT.

    Exit status: 0 when done; 2 on bad input or options (one line on stderr, nothing written); 3 when done but the
    detector left more than a tenth of the cells with data unscanned (a map too coarse, sparse or small for the
    model's windows; the warning says why): no detection there does not mean no deformation. With --cell-size the
    choice of cells is the user's, and the exit status is 0.
    """
    from defoscan.pipeline import detect as run_detect
    from defoscan.threshold import ThresholdParameters

    chunked = chunk is not None or workers is not None or scheduler is not None
    with _ChunkProgress() if chunked else contextlib.nullcontext() as bar:
        result = run_detect(
            [str(p) for p in inputs],
            str(out),
            options=options,
            cell_size=cell_size,
            parameters=ThresholdParameters(k=threshold),
            detector=detector,
            model=None if model is None else str(model),
            probability_threshold=probability_threshold,
            mask=None if mask is None else str(mask),
            chunk=chunk,
            workers=workers,
            scheduler=scheduler,
            log=_log if bar is None else bar.log,
            progress=None if bar is None else bar.update,
            wait=wait,
            fresh=fresh,
        )
    _print_summary(result, out)
    if result.record.get("scan_incomplete") and cell_size is None:
        return EXIT_NOT_SCANNED
    return 0


@_command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", metavar="DIR", help="Output directory."),
    dataset: str = typer.Option(
        "synthetic",
        "--dataset",
        metavar="NAME",
        help="synthetic (a seeded scene made here, scored against its truth), or a real dataset: "
        f"{', '.join(DEMO_DATASETS)} (needs --data).",
    ),
    data: Path = typer.Option(
        None,
        "--data",
        metavar="DIR",
        help="With a real dataset: the real-data folder (numbered subfolders) or the dataset's own folder "
        "(default: $DEFOSCAN_REAL_DATA).",
        show_default=False,
    ),
):
    """Run detect with the bundled model on a synthetic scene with known signals (default), or on real data."""
    from defoscan.demo import run_real_demo, run_synthetic_demo

    if dataset == "synthetic":
        if data is not None:
            raise InputError(data, "--data goes with a real dataset (--dataset kirishima or ustica)")
        result, scores = run_synthetic_demo(out, log=_log)
        _print_summary(result, out)
        console.print(f"truth: {scores['found']} of {scores['truths']} signal(s) found, F1 {scores['f1']:.2f}")
        return
    if dataset not in DEMO_DATASETS:
        raise InputError(None, f"unknown demo dataset {dataset!r}; choose from synthetic, {', '.join(DEMO_DATASETS)}")
    result = run_real_demo(out, dataset, data, log=_log)
    _print_summary(result, out)


@_command()
def report(
    run_dir: Path = typer.Argument(
        ..., metavar="RUN_DIR", help="Output directory of a finished detect or demo run.", show_default=False
    ),
    top: int = typer.Option(
        50,
        "--top",
        metavar="N",
        callback=_count,
        help="Detections given a card (highest scores); the rest are in the table.",
    ),
):
    """Rebuild report.html of a finished run from its files (run.json, detections, rasters, overview.png)."""
    from defoscan.report import write_report_from_run

    path = write_report_from_run(str(run_dir), top=top)
    console.print(f"report: {path}  (open it in a browser)", soft_wrap=True)


@_command()
@_reads_inputs
def grid(
    inputs: list[Path] = Inputs,
    out: Path = typer.Option(
        ..., "--out", metavar="FILE", help="Output GeoTIFF (Cloud-Optimised).", show_default=False
    ),
    cell_size: float = CellSize,
    options: ReadOptions = None,  # the read options, declared once (_reads_inputs)
):
    """Grid the inputs: a COG with a velocity (median, mm/yr) and a count band per track."""
    from defoscan.io import read_inputs
    from defoscan.outputs import check_output_file, write_cog
    from defoscan.tracks import grid_inputs

    check_output_file(out)
    _log("reading")
    datasets = read_inputs(
        [str(p) for p in inputs],
        options,
    )
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


@_command()
@_reads_inputs
def fill(
    inputs: list[Path] = Inputs,
    out: Path = typer.Option(
        ..., "--out", metavar="FILE", help="Output GeoTIFF (Cloud-Optimised).", show_default=False
    ),
    method: str = typer.Option(
        "completion", "--method", metavar="NAME", help="completion (default), nearest, linear, knn or softimpute."
    ),
    cell_size: float = CellSize,
    max_distance: float = typer.Option(
        1000.0,
        "--max-distance",
        metavar="M",
        callback=_positive,
        help="Metres: cells farther than this from any data stay empty.",
    ),
    options: ReadOptions = None,  # the read options, declared once (_reads_inputs)
):
    """Grid the inputs and fill the gaps: a COG with velocity_filled and velocity bands (a pair per track)."""
    import numpy as np

    from defoscan.fill import METHODS, fill_grid
    from defoscan.io import read_inputs
    from defoscan.outputs import check_output_file, write_cog
    from defoscan.tracks import grid_inputs

    if method not in METHODS:
        raise InputError(None, f"unknown fill method {method!r}; choose from {', '.join(METHODS)}")
    check_output_file(out)
    _log("reading")
    datasets = read_inputs(
        [str(p) for p in inputs],
        options,
    )
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


@_command()
@_reads_inputs
def synth(
    inputs: list[Path] = typer.Argument(
        None,
        metavar="INPUT...",
        help="With --fit: real velocity maps to fit a profile to (read as detect reads them).",
        show_default=False,
    ),
    out: Path = typer.Option(
        ..., "--out", metavar="DIR", help="Dataset directory; with --fit the profile JSON file.", show_default=False
    ),
    n: int = typer.Option(None, "--n", metavar="N", help="Samples to generate.", show_default=False),
    seed: int = typer.Option(
        None, "--seed", metavar="N", help="Seed: the same seed and options give the same files.", show_default=False
    ),
    profile: Path = typer.Option(
        None,
        "--profile",
        metavar="FILE",
        help="Profile JSON from --fit: draw noise, coverage and spikes around a real map.",
        show_default=False,
    ),
    conditions: str = typer.Option(
        "default",
        "--conditions",
        metavar="MODE",
        help="How noise, coverage and signals are drawn: default (the generic ranges, or around --profile) or "
        "broad (wide noise, coverage 3-90 %, signal sizes scaled with the cell, 1-500 mm/yr; docs/MODEL.md).",
    ),
    shape: str = typer.Option("128", "--shape", metavar="SHAPE", help="Cells per sample: N (square) or ROWSxCOLS."),
    cell_size: float = typer.Option(
        None,
        "--cell-size",
        metavar="M",
        callback=_positive,
        help="Metres (default: the profile's, else 50; with --fit: from the point density).",
        show_default=False,
    ),
    workers: int = typer.Option(
        2,
        "--workers",
        metavar="N",
        callback=_at_least(1),
        help="Processes generating shards (the files do not depend on it).",
    ),
    shard_size: int = typer.Option(256, "--shard-size", metavar="N", help="Samples per shard file."),
    positive_fraction: float = typer.Option(
        0.5, "--positive-fraction", metavar="F", help="Share of samples with deformation."
    ),
    hard_fraction: float = typer.Option(
        0.5, "--hard-fraction", metavar="F", help="Share of the negatives that are hard."
    ),
    fit: bool = typer.Option(
        False, "--fit", metavar="", help="Fit a profile to the INPUTS (one per track) and write it to OUT."
    ),
    scenes: bool = typer.Option(
        False,
        "--scenes",
        metavar="",
        help="Write N evaluation scenes instead (--shape cells a side, 800 suggested): points CSVs with truth "
        "polygons; --positive-fraction of them with signals of every kind, the rest signal-free.",
    ),
    per_kind: int = typer.Option(
        1,
        "--per-kind",
        metavar="N",
        callback=_at_least(1),
        help="With --scenes: signals of each kind in a scene with signals.",
    ),
    options: ReadOptions = None,  # the read options, declared once (_reads_inputs)
):
    """Generate a synthetic training set into OUT, or with --fit, fit a profile of real maps for it.

    A dataset: shard-NNNNN.npz (arrays), labels-NNNNN.jsonl (one line per sample) and manifest.json (written
    last); a rerun with the same options resumes an interrupted one. A profile: one JSON object, or a list of
    them when the inputs hold several tracks.
    """
    import time

    from defoscan.outputs import check_output_file

    if fit:
        if not inputs:
            raise InputError(None, "--fit needs the real maps: defoscan synth --fit INPUT [INPUT ...] --out FILE.json")
        if n is not None or profile is not None:
            raise InputError(None, "--n and --profile make a dataset; they do not go with --fit")
        check_output_file(out)
        _synth_fit(
            inputs,
            out,
            cell_size,
            options,
        )
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
            conditions=conditions,
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


@_command()
def evaluate(
    detections: Path = typer.Argument(
        ...,
        metavar="DETECTIONS",
        help="Detections (GeoJSON or GeoPackage), e.g. DIR/detections.geojson of a detect run.",
        show_default=False,
    ),
    truth: Path = typer.Argument(
        ...,
        metavar="TRUTH",
        help="Truth polygons (GeoJSON or GeoPackage); per-type and per-band recall from their kind and peak_velocity "
        "(mm/yr) attributes.",
        show_default=False,
    ),
    area_km2: float = typer.Option(
        None,
        "--area-km2",
        metavar="KM2",
        callback=_positive,
        help="Area examined, for false alarms per 1000 km² (default: the cells with data in the run.json beside "
        "DETECTIONS).",
        show_default=False,
    ),
    probability: Path = typer.Option(
        None,
        "--probability",
        metavar="FILE",
        help="Probability map for cell-level ROC AUC and average precision (default: probability.tif beside "
        "DETECTIONS, if there).",
        show_default=False,
    ),
    out: Path = typer.Option(
        None, "--out", metavar="FILE", help="Also write the scores as JSON to this file.", show_default=False
    ),
):
    """Score detections against truth polygons: recall (per type, per velocity band), precision, F1, false alarms."""
    from defoscan.evaluate import evaluate_files
    from defoscan.outputs import check_output_file, write_json

    if out is not None:
        check_output_file(out)
    result = evaluate_files(
        str(detections),
        str(truth),
        area_km2=area_km2,
        probability_path=None if probability is None else str(probability),
    )
    _print_scores(result)
    if out is not None:
        write_json(str(out), result)


@_command("evaluate-scenes")
def evaluate_scenes(
    scenes: Path = typer.Argument(
        ..., metavar="SCENES", help="Scene directory written by defoscan synth --scenes.", show_default=False
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        metavar="DIR",
        help="Work directory: each run's detections and scores (kept: a rerun resumes), results.json.",
        show_default=False,
    ),
    rows: str = typer.Option(
        None,
        "--rows",
        metavar="NAMES",
        help="Comma-separated row names to run (default: all); see docs/EVALUATION.md.",
        show_default=False,
    ),
    models: Path = typer.Option(
        Path("benchmarks/models"), "--models", metavar="DIR", help="Directory of the model ablations' weights."
    ),
    real: bool = typer.Option(
        True, "--real/--no-real", metavar="", help="Also run the real-data checks (Kirishima, Ustica)."
    ),
    real_data: Path = typer.Option(
        None,
        "--real-data",
        metavar="DIR",
        help="Folder of the real maps (numbered subfolders) (default: $DEFOSCAN_REAL_DATA, else ../shared/data/real).",
        show_default=False,
    ),
    table: Path = typer.Option(
        None,
        "--table",
        metavar="FILE",
        help="Markdown file to put the results table in (between <!-- results:begin/end --> markers).",
        show_default=False,
    ),
):
    """Run the detector, the baselines and the ablations on a scene suite and pool their scores into one table."""
    from defoscan.benchmark.suite import ROWS, results_table, run_suite, scene_names, write_table
    from defoscan.outputs import check_output_file, check_writable_dir, write_json

    if not scenes.is_dir() or not scene_names(str(scenes)):
        raise InputError(scenes, "no scenes here (defoscan synth --scenes --out DIR writes them)")
    chosen = ROWS
    if rows:
        wanted = [name.strip() for name in rows.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {row.name for row in ROWS})
        if unknown:
            raise InputError(None, f"unknown rows {', '.join(unknown)}; choose from {', '.join(r.name for r in ROWS)}")
        chosen = [row for row in ROWS if row.name in wanted]
    if real_data is not None and not real_data.is_dir():
        raise InputError(real_data, "no such real-data folder")
    check_writable_dir(str(out))
    if table is not None:
        check_output_file(table, "--table")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress,
        disable=not progress.is_terminal,
    ) as bar:
        task = bar.add_task("runs", total=None)

        def update(done, total, description):
            bar.update(task, completed=done, total=total, description=description)

        suite = run_suite(
            str(scenes),
            str(out),
            rows=chosen,
            models_dir=str(models),
            real=real,
            real_data=real_data,
            progress=update,
        )
    write_json(os.path.join(str(out), "results.json"), suite)
    text = results_table(suite)
    console.print(text)
    if table is not None:
        write_table(str(table), text)
        console.print(f"table written into {table}")


@_command()
def train(
    datasets: list[Path] = typer.Argument(
        ...,
        metavar="DATASET...",
        help="Training set(s) written by defoscan synth (one window size and cell size).",
        show_default=False,
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        metavar="FILE",
        help="Model file NAME.safetensors (card NAME.json beside it).",
        show_default=False,
    ),
    val: list[Path] = typer.Option(
        None,
        "--val",
        metavar="DIR",
        help="Validation set; repeat for several, e.g. one per cell size (default: every tenth sample of the "
        "training sets).",
        show_default=False,
    ),
    arch: str = typer.Option(
        "compact", "--arch", metavar="NAME", help="compact (default, CPU) or alexnet (the paper's)."
    ),
    width: int = typer.Option(
        16, "--width", metavar="N", callback=_at_least(1), help="Compact net: channels of its first stage."
    ),
    separable: bool = typer.Option(
        False, "--separable", metavar="", help="Compact net: depthwise-separable convolutions."
    ),
    fcn: bool = typer.Option(False, "--fcn", metavar="", help="Compact net: train the per-pixel head too."),
    mode: str = typer.Option(
        "single",
        "--mode",
        metavar="NAME",
        help="Input: single (fringes at 27.7 mm/yr), enhanced (2, 6.3, 20 mm/yr), raw (velocity).",
    ),
    fill: bool = typer.Option(
        False, "--fill", metavar="", help="Gap-fill windows with the matrix completion first (cached)."
    ),
    epochs: int = typer.Option(12, "--epochs", metavar="N", callback=_at_least(1), help="Most epochs."),
    batch: int = typer.Option(32, "--batch", metavar="N", callback=_at_least(1), help="Windows per step."),
    lr: float = typer.Option(2e-3, "--lr", metavar="RATE", callback=_positive, help="Peak learning rate."),
    patience: int = typer.Option(
        3,
        "--patience",
        metavar="N",
        callback=_at_least(1),
        help="Epochs without a better validation AUC before stopping.",
    ),
    seed: int = typer.Option(
        0, "--seed", metavar="N", help="Seed: same data, options, seed and threads give the same model."
    ),
    threads: int = typer.Option(2, "--threads", metavar="N", callback=_at_least(1), help="torch threads."),
    max_train: int = typer.Option(
        None,
        "--max-train",
        metavar="N",
        callback=_at_least(1),
        help="Use only N training samples (the first N/k of each of k datasets).",
        show_default=False,
    ),
    max_val: int = typer.Option(
        None,
        "--max-val",
        metavar="N",
        callback=_at_least(1),
        help="Use only the first N validation samples.",
        show_default=False,
    ),
    quick: bool = typer.Option(
        False, "--quick", metavar="", help="A tiny model in about a minute (tests, smoke runs)."
    ),
    imagenet: Path = typer.Option(
        None,
        "--imagenet",
        metavar="FILE",
        help="AlexNet: start from a torchvision-format ImageNet AlexNet state dict file.",
        show_default=False,
    ),
    init: Path = typer.Option(
        None,
        "--init",
        metavar="MODEL",
        help="Start from the weights of a defoscan model file (fine-tuning): same network and input recipe.",
        show_default=False,
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
    from defoscan.outputs import check_output_file
    from defoscan.wrap import MODES

    if arch not in ("compact", "alexnet"):
        raise InputError(None, f"--arch must be compact or alexnet, got {arch!r}")
    if mode not in MODES:
        raise InputError(None, f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if imagenet is not None and arch != "alexnet":
        raise InputError(imagenet, "--imagenet weights are for --arch alexnet")
    if imagenet is not None and not imagenet.is_file():
        raise InputError(imagenet, "no such file")
    if init is not None and not init.is_file():
        raise InputError(init, "no such file")
    if not str(out).endswith(".safetensors"):
        raise InputError(out, "the model file name must end in .safetensors")
    check_output_file(out)
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
        init=str(init) if init else None,
    )
    if quick:
        config = TrainConfig(**{**config.__dict__, **QUICK})
    # --max-train N over several datasets: the first N / k samples of each, so that all of them are drawn on
    # (and a gap-filled prefix already cached is reused).
    limit = -(-config.max_train // len(datasets)) if val and config.max_train else None
    _log("loading" + (" and gap-filling (cached after the first run)" if fill else ""))
    try:
        windows = concat_windows(load_windows(d, limit=limit, fill=fill, workers=threads) for d in datasets)
    except ValueError as err:
        raise InputError(datasets[-1], str(err)) from None
    if not val:
        held_out = windows.index % 10 == 0
        train_windows, val_windows = windows.subset(~held_out), windows.subset(held_out)
    else:
        train_windows = windows
        val_limit = -(-config.max_val // len(val)) if config.max_val else None  # each set drawn on alike
        try:
            val_windows = concat_windows(load_windows(d, limit=val_limit, fill=fill, workers=threads) for d in val)
        except ValueError as err:
            raise InputError(val[-1], str(err)) from None
    if val_windows.velocity.shape[1:] != train_windows.velocity.shape[1:]:
        raise InputError(val[0], "validation windows differ in shape from the training windows")
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
        except ValueError as err:  # weights that do not fit (the message names the file and key)
            raise InputError(init or imagenet or out, str(err)) from None
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


SCENES_STAMP = "scenes.json"  # written last by synth --scenes: what made the scenes (the options and the code)


def _synth_scenes(out, n, seed, shape, cell_size, profiles, positive_fraction, per_kind=1):
    """Write ``n`` scenes (:mod:`defoscan.synth.scene`): the first ``positive_fraction`` with signals.

    Skipped when ``out`` holds the scenes of the same options made by the same package source (its
    :data:`SCENES_STAMP`); otherwise its old scenes are removed first, so that a benchmark never keeps scenes of an
    earlier generator.
    """
    import glob
    import json

    import numpy as np

    from defoscan.fingerprint import source_digest
    from defoscan.outputs import check_writable_dir, write_json
    from defoscan.synth.scene import make_scene, write_scene

    check_writable_dir(out)
    made_by = {
        "n": n,
        "seed": seed,
        "shape": list(shape),
        "cell_size": cell_size,
        "profiles": profiles,
        "positive_fraction": positive_fraction,
        "per_kind": per_kind,
        "source": source_digest(),
    }
    stamp = os.path.join(str(out), SCENES_STAMP)
    if os.path.exists(stamp):
        with open(stamp) as handle:
            if json.load(handle) == json.loads(json.dumps(made_by)):
                console.print(f"{out}: the {n} scenes of these options and this code are there already")
                return
        os.remove(stamp)
    for old in glob.glob(os.path.join(str(out), "scene-*")):
        os.remove(old)
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
    write_json(stamp, made_by)


def _synth_fit(inputs, out, cell_size, options):
    """``synth --fit``: one profile per track of the gridded inputs, written to ``out`` (a list if several)."""
    import json

    from defoscan.io import read_inputs
    from defoscan.outputs import atomic_path
    from defoscan.synth.profile import fit_profile, save_profile
    from defoscan.tracks import grid_inputs

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
def _main(
    version: bool = typer.Option(False, "--version", metavar="", help="Print the version and exit."),
    verbose: int = Verbose,
    quiet: bool = Quiet,
):
    if version:
        typer.echo(f"defoscan {__version__}")
        raise typer.Exit()
    if verbose or quiet:  # defoscan -v CMD ...: as CMD -v
        _logging_options(verbose, quiet)


def _log(message):
    """The ``log`` callback of detect and the chunked runner: a stage message, at INFO (warnings go by ``warn``)."""
    logger.info(message)


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
        _log(stage)  # the bar, while live, prints it above itself

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
        "mean* mm/yr",  # relative to the local background (docs/SCAN.md); narrow, so 80 columns hold the table
        "peak* mm/yr",
    ]
    by_sign = {s: int((frame["sign"] == s).sum()) for s in ("subsidence", "uplift")}
    grid = result["grid"]
    with_data = sum(t["cells_with_data"] for t in result["tracks"]) * grid["cell_size_m"] ** 2 / 1e6
    coverage = ", ".join(f"{t['coverage']:.0%}" for t in result["tracks"])
    scanned = [t["scanned"]["share"] for t in result["tracks"] if t.get("scanned")]
    scanned = f", scanned {', '.join(f'{s:.0%}' for s in scanned)}" if scanned else ""
    title = f"{len(frame)} detection(s): {by_sign['subsidence']} subsidence, {by_sign['uplift']} uplift"
    if result.get("scan_incomplete"):
        title += " (not a clean result: the detector could not scan all of the map)"
    table = Table(
        title=title,
        caption=f"* against the surrounding ground (as mapped: detections.geojson)\n{with_data:,.1f} km² with data "
        f"(coverage {coverage}{scanned}), run time {result['timings']['total_s']:.1f} s",
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
    """Entry point of the ``defoscan`` script: exit status 0, or 2 and one line on stderr for any failure.

    Bad options (click's usage errors and the option checks) become ``defoscan: error: --OPTION: problem (see
    'defoscan CMD -h')``, :class:`InputError` from any stage ``defoscan: error: FILE: problem``. SIGINT (Ctrl-C)
    exits 130 with ``defoscan: interrupted`` (``...; rerun the same command to resume`` where a chunked run kept
    its work).
    """
    configure_cli_logging(0, terminal=progress.is_terminal)
    try:
        status = app(args=argv, prog_name="defoscan", standalone_mode=False)
    except getattr(click_errors, "NoArgsIsHelpError", ()) as err:  # plain ``defoscan``: the help
        err.show()
        sys.exit(2)
    except click_errors.UsageError as err:
        print(f"defoscan: error: {_usage_problem(err, argv)}", file=sys.stderr)
        sys.exit(2)
    except InputError as err:
        print(f"defoscan: error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:  # typer 0.2x's own click has no Abort of its own: typer's is the one raised
        print("defoscan: error: aborted", file=sys.stderr)
        sys.exit(1)
    except _Interrupted as interruption:
        print(f"defoscan: {interruption}", file=sys.stderr)
        sys.exit(INTERRUPTED)
    if status == INTERRUPTED:  # SIGINT outside a command (typer returns 130 and says nothing)
        _ignore_further_interrupts()
        print("defoscan: interrupted", file=sys.stderr)
    sys.exit(status if isinstance(status, int) else 0)


def _usage_problem(err, argv=None):
    """Click's usage error as one line: the option first, then the problem, then where the help is."""
    param = getattr(err, "param", None)
    if param is None or isinstance(err, click_errors.MissingParameter):
        problem = err.format_message()
    else:
        names = [o for o in getattr(param, "opts", ()) if o.startswith("--")] or [param.metavar or param.name]
        problem = f"{names[0]}: {err.message}"
    if err.ctx is not None:
        command = err.ctx.command_path
    else:  # an error of the option parser: the command named on the command line, if any
        names = typer.main.get_command(app).commands
        given = [a for a in (sys.argv[1:] if argv is None else argv) if a in names][:1]
        command = " ".join(["defoscan", *given])
    return " ".join(f"{problem} (see '{command} -h')".split())
