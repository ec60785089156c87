"""The report's card images: small windows of a run's rasters around one detection, coloured and PNG-encoded.

Each card shows four panels of the same window: the gridded velocity, the gap-filled velocity, the over-wrapped
phase the network reads, and the probability. Only the window is read from the Cloud-Optimised GeoTIFFs (a
windowed, boundless read; large windows decimated through the files' overviews), so a country-scale run costs no
more memory than a town. Images are coloured here with matplotlib's colour maps and encoded by Pillow, without a
matplotlib figure per card: a figure costs about 0.3 s, a panel here a few milliseconds, and the colour bars are
drawn by the page itself (:func:`colorbar_stops`).
"""

import io
from dataclasses import dataclass, field

import matplotlib
import numpy as np
import rasterio.errors
import rasterio.features
import rasterio.windows
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling
from scipy import ndimage

from defoscan.errors import InputError
from defoscan.figures import VELOCITY_CMAP, symmetric_limit
from defoscan.wrap import ENHANCED_INTERVALS, FRINGE_BAND, SENTINEL1_HALF_WAVELENGTH_MM, fringe_counts, wrap_phase

PHASE_CMAP = "twilight"  # cyclic: -pi and +pi look the same, as the phase does
PROBABILITY_CMAP = "viridis"
NO_DATA_RGB = (217, 217, 217)  # grey, as in the overview: distinct from zero velocity (white)
COLOUR_STEPS = 253  # palette entries of a colour map; with no-data grey, white and black: 256
PANEL_PIXELS = 176  # thumbnails are enlarged (nearest, whole factors) to about this many pixels a side
MAX_CELLS = 240  # windows with more cells a side are read decimated (averaged), from the files' overviews
MIN_CELLS = 32  # the smallest window: a 2 x 2-cell detection still shows its surroundings
MARGIN = 0.5  # context around a detection, as a share of its larger side (at least 8 cells)


@dataclass
class Panel:
    """One thumbnail and its colour bar.

    Attributes
    ----------
    title : str
    png : bytes
    cmap : str
        Matplotlib colour map of the bar.
    ticks : list of (float, str)
        Positions along the bar (0..1) and their labels.
    unit : str
    """

    title: str
    png: bytes
    cmap: str
    ticks: list = field(default_factory=list)
    unit: str = ""


def detection_window(bounds, transform, *, margin=MARGIN, min_cells=MIN_CELLS):
    """The raster window around a detection's bounds, with a margin, square-ish, possibly beyond the raster.

    Parameters
    ----------
    bounds : tuple of float
        ``(minx, miny, maxx, maxy)`` in the raster's CRS.
    transform : affine.Affine
        The raster's (north up).
    margin : float
        Context on each side, as a share of the detection's larger side; at least 8 cells.
    min_cells : int
        Smallest window side, cells.

    Returns
    -------
    rasterio.windows.Window
        Whole cells; may start before the raster or end past it (read it boundless).
    """
    cell = abs(transform.a)
    minx, miny, maxx, maxy = bounds
    col0, row0 = (minx - transform.c) / cell, (transform.f - maxy) / cell
    cols, rows = (maxx - minx) / cell, (maxy - miny) / cell
    side = max(cols, rows)
    pad = max(8.0, margin * side)
    size = max(float(min_cells), side + 2 * pad)
    centre_col, centre_row = col0 + cols / 2, row0 + rows / 2
    half = np.ceil(size / 2)
    return rasterio.windows.Window(
        int(np.floor(centre_col - half)), int(np.floor(centre_row - half)), int(2 * half), int(2 * half)
    )


def read_window(src, band, window, shape):
    """One band's values in ``window`` at ``shape``, NaN beyond the raster and where it has no data.

    Parameters
    ----------
    src : rasterio.DatasetReader
    band : int
    window : rasterio.windows.Window
    shape : tuple of int
        Rows and columns read; smaller than the window: averaged (through the file's overviews).

    Returns
    -------
    numpy.ndarray of float64

    Raises
    ------
    InputError
        Naming the file, when its blocks cannot be read (a truncated or damaged file).
    """
    try:
        values = src.read(
            band, window=window, out_shape=shape, boundless=True, fill_value=np.nan, resampling=Resampling.average
        ).astype(np.float64)
    except rasterio.errors.RasterioError as error:
        raise unreadable_raster(src.name, error) from None
    if src.nodata is not None and np.isfinite(src.nodata):
        values[values == src.nodata] = np.nan
    return values


def unreadable_raster(path, error):
    """The :class:`InputError` of a raster GDAL cannot open or read, with GDAL's first reason (the innermost)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    reason = " ".join(str(error).split()) or type(error).__name__
    return InputError(path, f"cannot read the raster, truncated or damaged ({reason}); run detect again to rewrite it")


def window_shape(window, max_cells=MAX_CELLS):
    """Rows and columns to read a window at: whole, or decimated by a whole factor to at most ``max_cells``."""
    factor = max(1, -(-max(int(window.height), int(window.width)) // int(max_cells)))
    return -(-int(window.height) // factor), -(-int(window.width) // factor)


def footprint(geometry, window, transform, shape):
    """Cells of the window (at ``shape``) inside the detection's geometry."""
    window_transform = rasterio.windows.transform(window, transform)
    scale = (window.width / shape[1], window.height / shape[0])
    return rasterio.features.rasterize(
        [geometry], out_shape=shape, transform=window_transform @ Affine.scale(*scale), dtype="uint8"
    ).astype(bool)


def wrap_interval(recipe, peak_velocity):
    """The interval, mm/yr per fringe, of the over-wrapped panel, and whether it is the model's own input.

    Parameters
    ----------
    recipe : dict or None
        The model's input recipe (``run.json``'s ``parameters.model.input``); None for runs without a model.
    peak_velocity : float
        The detection's peak velocity, mm/yr: of several intervals (``enhanced``), the one showing it with a
        number of fringes nearest the middle of :data:`defoscan.wrap.FRINGE_BAND`.

    Returns
    -------
    (float, bool)
        Interval; True where the network reads this wrapping, False where it is for display only (a baseline
        detector, or a model reading the unwrapped velocity): the radar's own 27.7 mm/yr.
    """
    mode = (recipe or {}).get("mode")
    intervals = (recipe or {}).get("intervals")
    if mode == "single":
        return float(intervals[0]) if intervals else SENTINEL1_HALF_WAVELENGTH_MM, True
    if mode == "enhanced":
        intervals = [float(i) for i in (intervals or ENHANCED_INTERVALS)]
        counts = fringe_counts(max(abs(float(peak_velocity)), 1e-6), intervals)
        target = np.sqrt(FRINGE_BAND[0] * FRINGE_BAND[1])
        return intervals[int(np.argmin(np.abs(np.log(counts / target))))], True
    return SENTINEL1_HALF_WAVELENGTH_MM, False


def velocity_limit(*arrays):
    """Colour limit shared by a card's velocity panels, centred on zero (mm/yr)."""
    finite = [a[np.isfinite(a)] for a in arrays]
    return symmetric_limit(np.concatenate(finite) if finite else np.array([]))


def colour_png(values, cmap, vmin, vmax, outline=None, *, pixels=PANEL_PIXELS):
    """Values coloured by ``cmap`` within ``[vmin, vmax]``, enlarged, the outline drawn, as PNG bytes.

    Parameters
    ----------
    values : numpy.ndarray
        2-D; NaN is drawn grey (no data).
    cmap : str
    vmin, vmax : float
    outline : numpy.ndarray of bool, optional
        Cells of the detection, same shape: its edge is drawn black, with a white line outside it so that it shows
        on every colour.
    pixels : int
        About how many pixels a side the image is enlarged to (whole factors, each cell a square).

    Returns
    -------
    bytes
    """
    scaled = (np.asarray(values, dtype=np.float64) - vmin) / (vmax - vmin)
    # A palette image: the colour map's 253 steps, then grey, white and black; a quarter of the bytes of RGB.
    index = np.round(np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0) * (COLOUR_STEPS - 1)).astype(np.uint8)
    index[~np.isfinite(scaled)] = COLOUR_STEPS
    factor = max(1, int(pixels) // max(index.shape))
    index = np.repeat(np.repeat(index, factor, axis=0), factor, axis=1)
    if outline is not None and outline.any():
        inside = np.repeat(np.repeat(outline, factor, axis=0), factor, axis=1)
        edge = inside & ~ndimage.binary_erosion(inside, border_value=1)
        halo = ndimage.binary_dilation(inside) & ~inside
        index[halo] = COLOUR_STEPS + 1
        index[edge] = COLOUR_STEPS + 2
    palette = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, COLOUR_STEPS), bytes=True)[:, :3]
    palette = np.vstack([palette, [NO_DATA_RGB, (255, 255, 255), (0, 0, 0)]]).astype(np.uint8)
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes())
    image.putpalette(palette.ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def colorbar_stops(cmap, n=11):
    """CSS colours along a colour map, for the page's colour bars (a ``linear-gradient``)."""
    colours = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, n), bytes=True)
    return ", ".join(f"rgb({r},{g},{b}) {100 * i / (n - 1):g}%" for i, (r, g, b, _) in enumerate(colours))


def card_panels(sources, bands, geometry, peak_velocity, recipe, *, detector="cnn"):
    """The four panels of one detection's card.

    Parameters
    ----------
    sources : dict
        Open rasterio datasets ``velocity``, ``velocity_filled``, ``probability`` (a missing one: None).
    bands : dict
        Band index of the detection's track in each source.
    geometry : shapely geometry
        The detection, in the rasters' CRS.
    peak_velocity : float
        mm/yr, for the choice of wrapping interval (:func:`wrap_interval`).
    recipe : dict or None
        The model's input recipe: which map is wrapped (``fill``) and at which interval.
    detector : str
        For the last panel's title: baseline detectors write their footprint, not a probability.

    Returns
    -------
    list of Panel
    """
    velocity_src = sources["velocity"]
    window = detection_window(geometry.bounds, velocity_src.transform)
    shape = window_shape(window)
    outline = footprint(geometry, window, velocity_src.transform, shape)
    maps = {
        name: read_window(src, bands[name], window, shape) if src is not None else np.full(shape, np.nan)
        for name, src in sources.items()
    }
    limit = velocity_limit(maps["velocity"], maps["velocity_filled"])
    velocity_ticks = [(0.0, f"{-limit:.3g}"), (0.5, "0"), (1.0, f"{limit:.3g}")]
    panels = [
        Panel(
            "gridded velocity",
            colour_png(maps["velocity"], VELOCITY_CMAP, -limit, limit, outline),
            VELOCITY_CMAP,
            velocity_ticks,
            "mm/yr",
        ),
        Panel(
            "gap-filled velocity",
            colour_png(maps["velocity_filled"], VELOCITY_CMAP, -limit, limit, outline),
            VELOCITY_CMAP,
            velocity_ticks,
            "mm/yr",
        ),
    ]
    interval, model_input = wrap_interval(recipe, peak_velocity)
    wrapped = maps["velocity_filled"] if (recipe or {}).get("fill") else maps["velocity"]
    if np.isfinite(wrapped).any():  # the window's own reference removed, as the network's input is made
        wrapped = wrapped - np.nanmedian(wrapped)
    phase = wrap_phase(wrapped, interval)
    panels.append(
        Panel(
            f"over-wrapped, one fringe = {interval:.3g} mm/yr" + ("" if model_input else " (display)"),
            colour_png(phase, PHASE_CMAP, -np.pi, np.pi, outline),
            PHASE_CMAP,
            [(0.0, "−π"), (0.5, "0"), (1.0, "π")],
            "rad",
        )
    )
    probability_title = "probability" if detector == "cnn" else f"{detector} footprint (1 = detected)"
    panels.append(
        Panel(
            probability_title,
            colour_png(maps["probability"], PROBABILITY_CMAP, 0.0, 1.0, outline),
            PROBABILITY_CMAP,
            [(0.0, "0"), (0.5, "0.5"), (1.0, "1")],
            "probability" if detector == "cnn" else "",
        )
    )
    return panels
