"""QGIS styles of a run's outputs: QML sidecars that QGIS loads as each file's default style.

QGIS opens ``NAME.tif`` (or ``NAME.geojson``) with the style in ``NAME.qml`` beside it. The rasters get a
single-band pseudocolour renderer on their first band (the first track): the velocities a diverging ramp centred on
zero within a robust limit of the run (the overview's colours, :data:`defoscan.figures.VELOCITY_CMAP`), the
probability a sequential ramp from 0 to 1 (the report's), the point counts a sequential ramp. The detections are
outlined by ``sign`` in the report's colours: subsidence red, uplift blue, each lightly filled, numbered by ``id``.
The same detections style is stored in ``detections.gpkg`` (:func:`defoscan.outputs.add_layer_style`).
"""

import os
from xml.sax.saxutils import quoteattr

import matplotlib
import numpy as np

from defoscan.figures import VELOCITY_CMAP
from defoscan.outputs import atomic_path
from defoscan.report_images import PROBABILITY_CMAP
from defoscan.store_outputs import window_shape

QGIS_VERSION = "3.28.0-Firenze"  # the long-term release whose QML the styles follow; later versions read it
COUNT_CMAP = "YlGnBu"  # sequential, light for few points, dark for many
RAMP_STOPS = 11  # colours per ramp: the ColorBrewer classes of RdBu
PERCENTILE = 98.0  # the velocity limit: this percentile of |velocity| (figures.symmetric_limit's)
VELOCITY_STEP = 0.1  # mm/yr: the limit is rounded up to this
VELOCITY_FLOOR = 1.0  # mm/yr: the least limit (a stable map is not drawn in full colour by its noise)
VELOCITY_CAP = 1000.0  # mm/yr: a larger |velocity| counts as this (the histogram's last bin)
COUNT_CAP = 100_000  # points a cell
SIGN_COLOURS = {"subsidence": (178, 24, 43), "uplift": (33, 102, 172)}  # RdBu's ends, as report_assets' legend
OTHER_COLOUR = (90, 90, 90)  # a sign other than these (none is written today)
FILL_ALPHA = 40  # of 255: a light fill, so the velocity under a detection shows through
OUTLINE_MM = 0.6


def upper_percentile(arrays, percentile, step, *, cap, measure=np.abs):
    """The ``percentile`` of the positive finite ``measure(values)`` of ``arrays``, rounded up to ``step``.

    Read window by window (whole chunks of a Zarr array, :func:`defoscan.store_outputs.window_shape`) into a
    histogram of ``step``-wide bins, so that a country's map costs one pass in bounded memory and gives the same
    limit as the same values in memory. Values are taken as float32, as the rasters store them.

    Parameters
    ----------
    arrays : sequence of array-like
        2-D arrays that slice (numpy, Zarr).
    percentile : float
        0 to 100.
    step : float
        Resolution of the answer.
    cap : float
        Larger values count as ``cap``.
    measure : callable
        Applied to each window before the positive finite values are counted (``np.abs`` by default).

    Returns
    -------
    float or None
        None when no value is positive and finite.
    """
    bins = int(np.ceil(cap / step)) + 1
    histogram = np.zeros(bins, dtype=np.int64)
    for values in arrays:
        rows, columns = window_shape(values)
        height, width = values.shape
        for r0 in range(0, height, rows):
            for c0 in range(0, width, columns):
                block = measure(np.asarray(values[r0 : r0 + rows, c0 : c0 + columns], dtype=np.float32))
                block = block[np.isfinite(block) & (block > 0)].astype(np.float64)
                index = np.minimum(np.ceil(block / step), bins - 1).astype(np.int64)
                histogram += np.bincount(index, minlength=bins)
    total = int(histogram.sum())
    if total == 0:
        return None
    k = int(np.searchsorted(np.cumsum(histogram), percentile / 100.0 * total))
    return round(k * step, 6)


def velocity_limit(velocities):
    """The velocity styles' symmetric limit (mm/yr): the 98th percentile of ``|velocity|``, at least 1 mm/yr."""
    limit = upper_percentile(velocities, PERCENTILE, VELOCITY_STEP, cap=VELOCITY_CAP)
    return max(VELOCITY_FLOOR, limit or VELOCITY_FLOOR)


def count_limit(counts):
    """The count style's upper limit: the 98th percentile of the points in cells that have any, at least 2."""
    return max(2, int(upper_percentile(counts, PERCENTILE, 1.0, cap=COUNT_CAP, measure=lambda v: v) or 2))


def ramp_colours(cmap, n=RAMP_STOPS):
    """``n`` colours (r, g, b) evenly along a matplotlib colour map."""
    return [
        tuple(int(c) for c in rgba[:3]) for rgba in matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, n), bytes=True)
    ]


def pseudocolor_qml(cmap, minimum, maximum, unit, precision=1):
    """QML of a single-band pseudocolour renderer on band 1: ``cmap`` interpolated from ``minimum`` to ``maximum``.

    The limits are fixed (``<limits>None</limits>``): QGIS keeps them instead of stretching to each view's
    statistics. Values outside are drawn in the end colours; no-data cells are transparent.
    """
    colours = ramp_colours(cmap)
    values = [round(float(v), 6) + 0.0 for v in np.linspace(minimum, maximum, len(colours))]  # no 1e-16, no -0
    items = "\n".join(
        f'          <item value={quoteattr(_number(v))} color={quoteattr(_hex(c))} alpha="255"'
        f" label={quoteattr(f'{v:.{precision}f} {unit}'.strip())}/>"
        for v, c in zip(values, colours, strict=True)
    )
    stops = ":".join(f"{i / (len(colours) - 1):g};{_rgba(c)}" for i, c in enumerate(colours[1:-1], start=1))
    low, high = _number(minimum), _number(maximum)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="{QGIS_VERSION}" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor=""
                    classificationMin="{low}" classificationMax="{high}">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0"
                         minimumValue="{low}" maximumValue="{high}" labelPrecision="{precision}">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="{_rgba(colours[0])}"/>
              <Option type="QString" name="color2" value="{_rgba(colours[-1])}"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="{stops}"/>
            </Option>
          </colorramp>
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def detections_qml():
    """QML of the detections: categorised on ``sign``, subsidence outlined red, uplift blue, labelled by ``id``."""
    categories = [*SIGN_COLOURS, ""]  # "" is QGIS's category for every other value
    colours = [*SIGN_COLOURS.values(), OTHER_COLOUR]
    rows = "\n".join(
        f'      <category type="string" value={quoteattr(v)} symbol="{i}" label={quoteattr(v or "other")}'
        ' render="true"/>'
        for i, v in enumerate(categories)
    )
    symbols = "\n".join(_fill_symbol(str(i), c) for i, c in enumerate(colours))
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="{QGIS_VERSION}" styleCategories="Symbology|Labeling" labelsEnabled="1">
  <renderer-v2 type="categorizedSymbol" attr="sign" forceraster="0" symbollevels="0" enableorderby="0"
               referencescale="-1">
    <categories>
{rows}
    </categories>
    <symbols>
{symbols}
    </symbols>
    <rotation/>
    <sizescale/>
  </renderer-v2>
  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName="id" isExpression="0" fontSize="8" fontSizeUnit="Point" fontWeight="75"
                  textColor="0,0,0,255" textOpacity="1" namedStyle="Bold">
        <text-buffer bufferDraw="1" bufferSize="0.7" bufferSizeUnits="MM" bufferColor="255,255,255,255"
                     bufferOpacity="0.75"/>
      </text-style>
      <placement placement="1" dist="0" priority="5"/>
      <rendering obstacle="1" scaleVisibility="0"/>
    </settings>
  </labeling>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerGeometryType>2</layerGeometryType>
</qgis>
"""


# The raster styles of a run: file stem -> (colour map, limits from (velocity limit, count limit), unit, precision).
RASTER_STYLES = {
    "velocity": (VELOCITY_CMAP, lambda v, c: (-v, v), "mm/yr", 1),
    "velocity_filled": (VELOCITY_CMAP, lambda v, c: (-v, v), "mm/yr", 1),
    "probability": (PROBABILITY_CMAP, lambda v, c: (0.0, 1.0), "", 1),
    "count": (COUNT_CMAP, lambda v, c: (1, c), "points", 0),
}


def write_styles(directory, velocities, counts):
    """Write the QML sidecars of a run's outputs into ``directory``, each atomically.

    ``velocity.qml``, ``velocity_filled.qml``, ``probability.qml``, ``count.qml`` (:data:`RASTER_STYLES`) and
    ``detections.qml`` (for ``detections.geojson``).

    Parameters
    ----------
    directory : str
    velocities : sequence of array-like
        The gridded velocity of each track (numpy or Zarr arrays): the velocity styles' limit.
    counts : sequence of array-like
        The point count of each track: the count style's limit.

    Returns
    -------
    dict
        File name -> QML text.
    """
    limits = (velocity_limit(velocities), count_limit(counts))
    styles = {
        f"{stem}.qml": pseudocolor_qml(cmap, *span(*limits), unit, precision)
        for stem, (cmap, span, unit, precision) in RASTER_STYLES.items()
    }
    styles["detections.qml"] = detections_qml()
    for name, qml in styles.items():
        with atomic_path(os.path.join(os.fspath(directory), name)) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(qml)
    return styles


def _fill_symbol(name, colour):
    return f"""      <symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option type="QString" name="color" value="{_rgba(colour, FILL_ALPHA)}"/>
            <Option type="QString" name="joinstyle" value="miter"/>
            <Option type="QString" name="outline_color" value="{_rgba(colour)}"/>
            <Option type="QString" name="outline_style" value="solid"/>
            <Option type="QString" name="outline_width" value="{OUTLINE_MM:g}"/>
            <Option type="QString" name="outline_width_unit" value="MM"/>
            <Option type="QString" name="style" value="solid"/>
          </Option>
        </layer>
      </symbol>"""


def _number(value):
    return f"{float(value):.6g}"


def _hex(colour):
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _rgba(colour, alpha=255):
    return ",".join(str(int(c)) for c in (*colour, alpha))
