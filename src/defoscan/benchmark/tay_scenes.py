"""Scenes whose deformation is real: the Tay et al. (2022) city maps observed as sparse EGMS-like points (issue 18).

The synthetic scenes of :mod:`defoscan.synth.scene` come from the generator that made the training data; these do
not. Each city's map (four disjoint tiles of one vertical velocity map, m/yr, EPSG:4326, 3 arcsec, masked to the
city; ``../shared/data/real/10_tay_city_velocity``) is merged and projected to the city's UTM zone at
:data:`CELL_SIZE` (:func:`city_field`).

**Truth** = the areas of the field beyond a stated rate against stable ground (:func:`relative_field`,
:func:`truth_regions`):

- *stable ground level*: the mode of the lightly smoothed field over the city (histogram of
  :data:`LEVEL_BIN` mm/yr bins, smoothed). Not the median: in a sinking city a large share of the map subsides
  (Chittagong's median is -11.8 mm/yr, its mode -2.2), and the median is dragged towards it; the most common value
  is the ground that does not move.
- *light smoothing*: a NaN-aware Gaussian of :data:`SMOOTHING` pixels, so that a single noisy pixel does not make or
  split a region.
- *rate*: :data:`RATE` mm/yr of relative vertical velocity, subsidence or uplift. On the training and validation
  cities the maps' pixel noise (robust standard deviation about the smoothed field) is 0.2-0.8 mm/yr and their
  robust spread about the stable level (1.4826 x the median absolute relative velocity) 0.7-5.4 mm/yr (Chittagong,
  most of which sinks, 14.4); both are recorded per scene. 10 mm/yr lies well beyond both, so a truth is deformation,
  not the map's own noise or its slow regional motion.
- *regions*: each connected area (4-connected, as the polygons are drawn) beyond the rate with the same sign is one
  truth, whatever cores it holds, if it covers at least :data:`MIN_AREA_KM2` km² (60 pixels of 90 m) inside the
  scene's tile; kind ``compaction`` for subsidence (urban subsidence), ``uplift`` for uplift; ``peak_velocity`` is
  the signed extreme of the smoothed relative field in it; ``sign`` its sign.

**Scenes** (:func:`city_scenes`): tiles of at most :data:`TILE_SIZE` m (the synthetic scenes' 20 km, so false-alarm
rates compare; a smaller city is one tile), seeded among those with at least :data:`MIN_DATA` of their pixels in the
city. In each, the relative field (the map itself, not the truth mask) is observed at points: the project's coverage
model (``sample.draw_conditions`` at its default ranges, ``sample._draw_coverage``: towns, villages, roads) on a grid
of :data:`POINT_CELL` m cells, intersected with the city's mask; each observed cell's points (at most
``scene.MAX_PER_CELL``) at random places in it, the field interpolated bilinearly to them; plus correlated
atmosphere, a planar ramp, per-point noise and spikes (the drawn conditions) and a reference offset uniform in
``±`` :data:`REFERENCE_OFFSET` mm/yr (a map is relative to some reference). A truth needs ``scene.MIN_SEEN``
observed cells to be kept (an unseen area cannot be detected; the dropped ones are recorded); a tile whose truths
all go unseen is observed again, up to :data:`OBSERVE_TRIES` coverages, and skipped if they stay unseen (it is neither
a scene with signals nor a stable one). A tile without truth is signal-free even where small areas (under the minimum
area) pass the rate: by the truth rule they are not deformation, as in the tiles with truths; the largest such area
is recorded (``largest_beyond_km2``) so a stricter reader can leave those scenes out.

Scenes are laid in the synthetic scenes' frame (:data:`defoscan.synth.scene.SCENE_CRS`, north-west corner at
``SCENE_ORIGIN``) so :func:`defoscan.synth.scene.write_scene` writes them; the tile's true place is in the info. The
same seed gives the same scenes.
"""

import json
import os
import warnings
from importlib import resources

import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
import shapely
import shapely.geometry
from affine import Affine
from scipy import ndimage

from defoscan.synth import noise
from defoscan.synth.sample import _draw_coverage, draw_conditions
from defoscan.synth.scene import MAX_PER_CELL, MIN_SEEN, SCENE_CRS, SCENE_ORIGIN

TILES = ("0to25pp", "25to50pp", "50to100pp", "gt100pp")  # the four disjoint parts of one city's map
CELL_SIZE = 90.0  # m: the maps' 3 arcsec
RATE = 10.0  # mm/yr of relative vertical velocity beyond which the ground deforms (module notes)
MIN_AREA_KM2 = 0.5  # smallest truth region
SMOOTHING = 1.0  # pixels, Gaussian sigma: drops single noisy pixels
LEVEL_BIN = 0.5  # mm/yr: histogram bins of the stable level
TILE_SIZE = 20_000.0  # m: largest tile side
MIN_DATA = 0.3  # share of a tile's pixels in the city
POINT_CELL = 50.0  # m: cells of the coverage model, the points' spacing
REFERENCE_OFFSET = 5.0  # mm/yr: largest reference offset
OBSERVE_TRIES = 5  # coverages drawn for a tile whose truths go unseen
KIND_OF_SIGN = {-1: ("compaction", "subsidence"), 1: ("uplift", "uplift")}  # sign -> (kind, sign name)


def merged_city(data_dir, city):
    """A city's four tiles as one map, in mm/yr.

    Returns
    -------
    velocity : numpy.ndarray of float32
        NaN outside the city.
    transform : affine.Affine
    crs : rasterio.crs.CRS
    """
    parts = []
    for tile in TILES:
        with rasterio.open(os.path.join(data_dir, f"{city}_{tile}.tif")) as source:
            parts.append(source.read(1).astype(np.float64))
            transform, crs = source.transform, source.crs
    stack = np.stack(parts)
    # Disjoint but for the odd pixel at a band's edge (one in Dalian), where the tiles hold the same value.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: outside the city
        low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
    if np.nanmax(high - low) > 1e-9:
        raise ValueError(f"{city}: the tiles disagree where they overlap")
    velocity = high * 1000.0
    return velocity.astype(np.float32), transform, crs


def utm_crs(longitude, latitude):
    """The UTM zone of a place (WGS 84), as a rasterio CRS."""
    zone = int((longitude + 180.0) // 6.0) + 1
    return rasterio.crs.CRS.from_epsg((32600 if latitude >= 0 else 32700) + zone)


def city_field(data_dir, city, *, cell_size=CELL_SIZE):
    """A city's map in mm/yr on a metric grid: its UTM zone, ``cell_size`` m cells, bilinear.

    Parameters
    ----------
    data_dir : str or os.PathLike
        The ``10_tay_city_velocity`` folder.
    city : str
    cell_size : float
        Metres.

    Returns
    -------
    velocity : numpy.ndarray of float32
        Vertical velocity, mm/yr, negative = subsidence, relative to the map's reference; NaN outside the city.
    transform : affine.Affine
    crs : rasterio.crs.CRS
    """
    velocity, transform, crs = merged_city(data_dir, city)
    rows, cols = velocity.shape
    west, north = transform * (0, 0)
    east, south = transform * (cols, rows)
    target = utm_crs((west + east) / 2, (south + north) / 2)
    out_transform, width, height = rasterio.warp.calculate_default_transform(
        crs, target, cols, rows, west, south, east, north, resolution=cell_size
    )
    projected = np.full((height, width), np.nan, dtype=np.float32)
    rasterio.warp.reproject(
        velocity,
        projected,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=out_transform,
        dst_crs=target,
        dst_nodata=np.nan,
        resampling=rasterio.warp.Resampling.bilinear,
    )
    return projected, out_transform, target


def smooth_within(field, sigma=SMOOTHING):
    """NaN-aware Gaussian smoothing (normalised convolution): NaN stays NaN, the edge is not pulled to zero."""
    valid = np.isfinite(field)
    total = ndimage.gaussian_filter(np.where(valid, field, 0.0).astype(np.float64), sigma)
    weight = ndimage.gaussian_filter(valid.astype(np.float64), sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, total / weight, np.nan)


def stable_level(smoothed, *, bin_width=LEVEL_BIN):
    """The mode of a field's values: the centre of the fullest bin of a lightly smoothed histogram, mm/yr."""
    values = smoothed[np.isfinite(smoothed)]
    low, high = np.percentile(values, [0.5, 99.5])
    edges = np.arange(low, high + bin_width, bin_width)
    if edges.size < 3:
        return float(np.median(values))
    counts, edges = np.histogram(values, bins=edges)
    counts = ndimage.gaussian_filter1d(counts.astype(np.float64), 2.0)  # 1 mm/yr: a ragged histogram has no mode
    best = int(np.argmax(counts))
    return float((edges[best] + edges[best + 1]) / 2)


def relative_field(velocity):
    """A map against its stable ground, with the figures that justify the truth's rate.

    Returns
    -------
    relative : numpy.ndarray of float64
        ``velocity - level``, mm/yr.
    smoothed : numpy.ndarray of float64
        The same, lightly smoothed (:data:`SMOOTHING`).
    stats : dict
        ``level`` (mm/yr), ``pixel_noise`` (robust standard deviation of the pixels about their smoothed field) and
        ``spread`` (1.4826 x the median absolute smoothed relative velocity), mm/yr.
    """
    smoothed = smooth_within(velocity)
    level = stable_level(smoothed)
    residual = (velocity - smoothed)[np.isfinite(velocity)]
    relative_smoothed = smoothed - level
    stats = {
        "level": level,
        "pixel_noise": float(1.4826 * np.median(np.abs(residual - np.median(residual)))),
        "spread": float(1.4826 * np.nanmedian(np.abs(relative_smoothed))),
    }
    return velocity - level, relative_smoothed, stats


def truth_regions(smoothed, cell_size, *, rate=RATE, min_area_km2=MIN_AREA_KM2):
    """Connected areas of a smoothed relative field beyond ``rate``, each at least ``min_area_km2`` (module notes).

    Parameters
    ----------
    smoothed : numpy.ndarray
        Smoothed relative velocity, mm/yr, NaN outside the data.
    cell_size : float
        Metres.
    rate, min_area_km2 : float

    Returns
    -------
    labels : numpy.ndarray of int32
        Region number per pixel (0: none).
    regions : list of dict
        One per region, numbered from 1 in ``labels``: ``kind``, ``sign``, ``peak_velocity`` (signed, mm/yr),
        ``area_km2``.
    """
    labels = np.zeros(smoothed.shape, dtype=np.int32)
    regions = []
    min_pixels = min_area_km2 * 1e6 / cell_size**2
    with np.errstate(invalid="ignore"):
        beyond_of_sign = {-1: smoothed <= -rate, 1: smoothed >= rate}
    for direction, beyond in beyond_of_sign.items():
        parts, count = ndimage.label(beyond)
        for number in range(1, count + 1):
            inside = parts == number
            if inside.sum() < min_pixels:
                continue
            kind, sign = KIND_OF_SIGN[direction]
            peak = float(direction * np.max(direction * smoothed[inside]))
            regions.append(
                {"kind": kind, "sign": sign, "peak_velocity": peak, "area_km2": inside.sum() * cell_size**2 / 1e6}
            )
            labels[inside] = len(regions)
    return labels, regions


def region_polygons(labels, transform):
    """Each region of ``labels`` (1, 2, ...) as one shapely (Multi)Polygon in ``transform``'s coordinates."""
    pieces = {}
    for shape, value in rasterio.features.shapes(labels, mask=labels > 0, transform=transform):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(shape))
    return [shapely.union_all(pieces[number]) for number in sorted(pieces)]


def choose_tiles(valid, rng, *, tile_pixels, count, min_data=MIN_DATA):
    """Up to ``count`` disjoint tiles of a city's grid with data, seeded.

    The grid is cut into ``tile_pixels`` squares from a random offset; those with at least ``min_data`` of their
    pixels valid are candidates, ``count`` of them drawn at random. A map no larger than a tile is one tile.

    Returns
    -------
    list of tuple of int
        ``(row0, row1, col0, col1)``.
    """
    rows, cols = valid.shape
    if rows <= tile_pixels and cols <= tile_pixels:
        return [(0, rows, 0, cols)]
    # A random offset within the slack that whole tiles leave, so the cut does not always start at the corner.
    offsets = [int(rng.integers(0, n % tile_pixels + 1)) if n > tile_pixels else 0 for n in (rows, cols)]
    candidates = []
    for row0 in range(offsets[0], max(rows - tile_pixels, 0) + 1, tile_pixels):
        for col0 in range(offsets[1], max(cols - tile_pixels, 0) + 1, tile_pixels):
            window = (row0, min(row0 + tile_pixels, rows), col0, min(col0 + tile_pixels, cols))
            if valid[window[0] : window[1], window[2] : window[3]].mean() >= min_data:
                candidates.append(window)
    order = rng.permutation(len(candidates))[:count]
    return [candidates[i] for i in sorted(order)]


def observe(relative, valid, rng, *, cell_size=CELL_SIZE, point_cell=POINT_CELL):
    """EGMS-like points observing a tile's relative field, with the drawn noise (module notes).

    Parameters
    ----------
    relative : numpy.ndarray
        The tile's relative velocity, mm/yr (NaN outside the city).
    valid : numpy.ndarray of bool
        The tile's city mask.
    rng : numpy.random.Generator
    cell_size, point_cell : float
        The field's pixels and the coverage model's cells, metres.

    Returns
    -------
    points : dict
        ``x``, ``y`` (metres east and south of the tile's north-west corner, y negative) and ``velocity`` (mm/yr).
    observed : numpy.ndarray of bool
        The coverage cells with points, shape ``(height // point_cell, width // point_cell)``.
    conditions : dict
        What was drawn: :func:`defoscan.synth.sample.draw_conditions`'s, the coverage, ``reference_offset``.
    """
    shape = tuple(int(n * cell_size // point_cell) for n in relative.shape)
    conditions = draw_conditions(rng)
    covered, count, coverage = _draw_coverage(rng, shape, point_cell, conditions)
    centre_rows = _field_index((np.arange(shape[0]) + 0.5) * point_cell, relative.shape, cell_size, 0)
    centre_cols = _field_index((np.arange(shape[1]) + 0.5) * point_cell, relative.shape, cell_size, 1)
    observed = covered & valid[np.ix_(centre_rows, centre_cols)]
    rows, cols = np.nonzero(observed)
    per_cell = np.clip(count[rows, cols], 1, MAX_PER_CELL)
    rows, cols = np.repeat(rows, per_cell), np.repeat(cols, per_cell)
    east = (cols + rng.random(rows.size)) * point_cell  # metres from the tile's west and north edges
    south = (rows + rng.random(rows.size)) * point_cell
    inside = valid[_field_index(south, relative.shape, cell_size, 0), _field_index(east, relative.shape, cell_size, 1)]
    rows, cols, east, south = rows[inside], cols[inside], east[inside], south[inside]
    # Bilinear on the field with its holes weighted out, so a point by the city's edge takes only the city's pixels.
    where = np.stack([south / cell_size - 0.5, east / cell_size - 0.5])
    total = ndimage.map_coordinates(np.where(valid, relative, 0.0), where, order=1, mode="nearest")
    weight = ndimage.map_coordinates(valid.astype(np.float64), where, order=1, mode="nearest")
    velocity = total / np.maximum(weight, 1e-9)
    atmosphere = noise.correlated_field(shape, rng, cell_size=point_cell, **conditions["atmosphere"])
    ramp = noise.planar_ramp(shape, rng, max_gradient=conditions["ramp_gradient"], cell_size=point_cell)
    offset = float(rng.uniform(-REFERENCE_OFFSET, REFERENCE_OFFSET))
    velocity = velocity + atmosphere[rows, cols] + ramp[rows, cols] + offset
    velocity += rng.normal(0.0, conditions["point_noise"], velocity.size)
    spike_values, _ = noise.spikes(
        np.ones(velocity.size, dtype=bool),
        rng,
        rate=conditions["spike_rate"],
        amplitude_scale=conditions["spike_scale"],
        tail=conditions["spike_tail"],
    )
    conditions = {**conditions, "coverage": coverage, "reference_offset": offset}
    observed = np.zeros(shape, dtype=bool)
    observed[rows, cols] = True
    return {"x": east, "y": -south, "velocity": velocity + spike_values}, observed, conditions


def _field_index(distance, shape, cell_size, axis=0):
    """The field's pixel (along ``axis``) holding each distance from the tile's north or west edge."""
    return np.clip((np.asarray(distance) // cell_size).astype(np.int64), 0, shape[axis] - 1)


def _largest_area_km2(mask, cell_size):
    parts, count = ndimage.label(mask)
    return float(np.bincount(parts.ravel())[1:].max() * cell_size**2 / 1e6) if count else 0.0


def tile_scene(relative, smoothed, window, transform, rng, *, cell_size=CELL_SIZE):
    """One tile of a city as a scene: its points (in the scene frame), truths and what was drawn.

    Parameters
    ----------
    relative, smoothed : numpy.ndarray
        The city's relative field and its smoothed version (:func:`relative_field`), mm/yr.
    window : tuple of int
        ``(row0, row1, col0, col1)``.
    transform : affine.Affine
        The city grid's.
    rng : numpy.random.Generator
    cell_size : float

    Returns
    -------
    points : dict
        ``x``, ``y`` in :data:`defoscan.synth.scene.SCENE_CRS`, ``velocity``.
    truths : list of dict
        ``geometry``, ``kind``, ``peak_velocity``, ``sign``, ``area_km2``.
    details : dict
        ``conditions``, ``window`` bounds, ``beyond_rate_pixels`` (any size), ``unseen`` (truths dropped) and
        ``observed_cells``.
    """
    row0, row1, col0, col1 = window
    tile, tile_smoothed = relative[row0:row1, col0:col1], smoothed[row0:row1, col0:col1]
    valid = np.isfinite(tile)
    labels, regions = truth_regions(tile_smoothed, cell_size)
    points, observed, conditions = observe(tile, valid, rng, cell_size=cell_size)
    frame = Affine(cell_size, 0.0, SCENE_ORIGIN[0], 0.0, -cell_size, SCENE_ORIGIN[1])
    truths, unseen = [], []
    seen_rows, seen_cols = np.nonzero(observed)
    cells = shapely.points(
        SCENE_ORIGIN[0] + (seen_cols + 0.5) * POINT_CELL, SCENE_ORIGIN[1] - (seen_rows + 0.5) * POINT_CELL
    )
    for region, polygon in zip(regions, region_polygons(labels, frame), strict=True):
        seen = int(np.count_nonzero(shapely.contains(polygon, cells)))
        (truths if seen >= MIN_SEEN else unseen).append({"geometry": polygon, **region, "seen_cells": seen})
    west, north = transform * (col0, row0)
    east, south = transform * (col1, row1)
    with np.errstate(invalid="ignore"):
        beyond = np.abs(tile_smoothed) >= RATE
    details = {
        "conditions": conditions,
        "window": {
            "rows": [int(row0), int(row1)],
            "cols": [int(col0), int(col1)],
            "bounds": [west, south, east, north],
        },
        "beyond_rate_pixels": int(beyond.sum()),
        "largest_beyond_km2": _largest_area_km2(beyond, cell_size),
        "unseen": [{k: v for k, v in t.items() if k != "geometry"} for t in unseen],
        "observed_cells": int(observed.sum()),
        "shape": [int(n) for n in observed.shape],
    }
    scene_points = {
        "x": SCENE_ORIGIN[0] + points["x"],
        "y": SCENE_ORIGIN[1] + points["y"],
        "velocity": points["velocity"],
    }
    return scene_points, truths, details


def city_scenes(data_dir, city, *, split, seed, per_city=1, tile_size=TILE_SIZE):
    """A city's scenes: up to ``per_city`` tiles, each observed as points with its truth (module notes).

    Parameters
    ----------
    data_dir : str or os.PathLike
        The ``10_tay_city_velocity`` folder.
    city, split : str
        ``split`` is recorded only.
    seed : int or sequence of int
        Of :func:`numpy.random.default_rng`.
    per_city : int
    tile_size : float
        Largest tile side, metres.

    Returns
    -------
    scenes : list of (dict, list of dict, dict)
        ``(points, truths, info)`` as :func:`defoscan.synth.scene.write_scene` takes them; ``info`` holds ``city``,
        ``split``, ``tile`` (the window, its bounds and CRS), ``truth_rule``, ``conditions``, ``signals`` (the number
        of truths), ``cell_size`` (the points' spacing), ``crs``, ``origin``, ``shape`` and ``seed``.
    skipped : list of dict
        Tiles neither signal-free nor with a seen truth, and why.
    """
    rng = np.random.default_rng(seed)
    velocity, transform, crs = city_field(data_dir, city)
    relative, smoothed, stats = relative_field(velocity)
    rule = {"rate": RATE, "min_area_km2": MIN_AREA_KM2, "smoothing_pixels": SMOOTHING, "field_cell_size": CELL_SIZE}
    rule.update(stats)
    windows = choose_tiles(np.isfinite(velocity), rng, tile_pixels=int(tile_size // CELL_SIZE), count=per_city)
    scenes, skipped = [], []
    for window in windows:
        for _ in range(OBSERVE_TRIES):  # a coverage that sees none of the tile's truths is drawn again
            points, truths, details = tile_scene(relative, smoothed, window, transform, rng)
            if truths or not details["unseen"]:
                break
        if not truths and details["unseen"]:
            skipped.append({"city": city, "window": details["window"], "why": "its truths unseen by every coverage"})
            continue
        info = {
            "city": city,
            "split": split,
            "seed": np.atleast_1d(seed).tolist(),
            "tile": {**details["window"], "crs": crs.to_string()},
            "truth_rule": rule,
            "conditions": details["conditions"],
            "signals": len(truths),
            "truths": [{k: v for k, v in t.items() if k != "geometry"} for t in truths],
            "unseen_truths": details["unseen"],
            "cell_size": POINT_CELL,
            "crs": SCENE_CRS,
            "origin": list(SCENE_ORIGIN),
            "shape": details["shape"],
            "observed_cells": details["observed_cells"],
            "largest_beyond_km2": details["largest_beyond_km2"],
        }
        scenes.append((points, truths, info))
    return scenes, skipped


def split_cities(split):
    """The cities of ``split`` (``test``, ``validation`` or ``training``) as the committed split file lists them.

    The 31 cities were split once, by city, seeded (``defoscan/data/benchmarks/tay_split.json`` says how): choices
    are made on the training and validation cities, figures reported on the test cities.
    """
    text = resources.files("defoscan").joinpath("data", "benchmarks", "tay_split.json").read_text()
    return json.loads(text)[split]


def write_tay_suite(data_dir, split, out_dir, *, seed, per_city=1, report=None):
    """Write the scenes of one split's cities into ``out_dir`` as ``scene-NNN`` (:func:`city_scenes` per city).

    Parameters
    ----------
    data_dir : str or os.PathLike
        The ``10_tay_city_velocity`` folder.
    split : str
    out_dir : str
    seed : int
        One seed per city is drawn from it and the city's place in the split, so a city's scenes do not depend on
        the others'.
    per_city : int
    report : callable, optional
        Called with one line of text per scene and per skipped tile.

    Returns
    -------
    int
        Scenes written.
    """
    from defoscan.synth.scene import write_scene

    number = 0
    for index, city in enumerate(split_cities(split)):
        scenes, skipped = city_scenes(data_dir, city, split=split, seed=[seed, index], per_city=per_city)
        for points, truths, info in scenes:
            number += 1
            write_scene(out_dir, f"scene-{number:03d}", points, truths, info)
            if report:
                areas = ", ".join(f"{t['kind']} {t['peak_velocity']:.0f} mm/yr {t['area_km2']:.1f} km2" for t in truths)
                report(f"scene-{number:03d} {city:16s} {len(points['x']):7d} points  {len(truths)} truths  {areas}")
        for skip in skipped if report else ():
            report(f"skipped  {city:16s} tile {skip['window']['rows']} {skip['window']['cols']}: {skip['why']}")
    return number
