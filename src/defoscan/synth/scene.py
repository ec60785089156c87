"""Synthetic scenes for the evaluation (issue 7): a town-sized map of points with several signals, and their truth.

A scene is made like a training sample (:mod:`.sample`) but larger and written as what a processor delivers:

1. the conditions (atmosphere, point noise, ramp, spikes, coverage), drawn from the default ranges or around a
   fitted profile (:mod:`.profile`);
2. the coverage: towns, villages, roads and rural scatter, with the points behind each observed cell;
3. for a scene with signals, ``per_kind`` sources of every kind (:data:`.sources.KINDS`), each placed where at least
   :data:`MIN_SEEN` of its deforming cells, and :data:`MIN_SEEN_FRACTION` of them, are observed — mostly where
   people live, as persistent scatterers are buildings — and clear of the others (its mask grown by
   :data:`SEPARATION` cells meets no other's), so each signal is one truth polygon; a signal-free scene has none;
4. the points: each observed cell's ``count`` points (at most ``max_per_cell``: fitted profiles of raster maps give
   a point per pixel) at random places inside it, with the cell's deformation, atmosphere and ramp, their own noise
   (the drawn ``point_noise``) and spikes at the drawn rate.

Truth: one (multi)polygon per signal, its deforming cells (where its LOS deformation reaches
:data:`.sample.LABEL_THRESHOLD` and :data:`.sample.LABEL_FRACTION` of its peak), with ``kind``, the signed LOS
``peak_velocity`` (mm/yr) and the ``sign`` of that peak. Coordinates are metres in :data:`SCENE_CRS`, the scene's
north-west corner at :data:`SCENE_ORIGIN`. The same seed gives the same scene.
"""

import numpy as np
import shapely
import shapely.affinity
import shapely.geometry
from affine import Affine
from scipy import ndimage

from defoscan.synth import geometry, noise, sources
from defoscan.synth.dataset import deformation_polygons
from defoscan.synth.sample import _draw_coverage, _inner_extent, deformation_field, draw_conditions

SCENE_CRS = "EPSG:32630"  # UTM 30N: the scenes lie in England
SCENE_ORIGIN = (600_000.0, 5_900_000.0)  # easting, northing of the north-west corner
MIN_SEEN = 10  # observed cells a signal's deforming area needs
MIN_SIGN_CELLS = 3  # deforming cells of one sign that make a truth hold motion of that sign (its `signs`)
MIN_SEEN_FRACTION = 0.3  # and this share of it observed: signals lie mostly where people (and scatterers) are
MAX_PER_CELL = 4  # points a cell holds at most: 1,600 per km2 at 50 m, a dense town in EGMS L2b
SEPARATION = 6  # cells between two signals' deforming areas
MAX_TRIES = 40  # placements tried per signal


def truth_signs_held(deformation):
    """The signs of motion of a truth's deforming cells, as its ``signs`` attribute: ``subsidence``, ``uplift`` or both.

    A source's line-of-sight motion can have lobes of both signs (the horizontal part of a Mogi source or a
    landslide); a detection of either lobe has found it (:func:`defoscan.evaluate.compatible_signs`). A sign
    counts with at least :data:`MIN_SIGN_CELLS` cells; with fewer of both, the peak's sign.

    Parameters
    ----------
    deformation : numpy.ndarray
        The LOS deformation of the truth's deforming cells, mm/yr.

    Returns
    -------
    str
        Comma-separated, subsidence first.
    """
    values = np.asarray(deformation, dtype=np.float64).ravel()
    cells_of_sign = (("subsidence", values < 0), ("uplift", values > 0))
    held = [name for name, cells in cells_of_sign if cells.sum() >= MIN_SIGN_CELLS]
    if not held:
        held = ["subsidence" if values[np.argmax(np.abs(values))] < 0 else "uplift"]
    return ",".join(held)


def make_scene(
    seed,
    *,
    shape=(400, 400),
    cell_size=50.0,
    profile=None,
    kinds=sources.KINDS,
    per_kind=1,
    signals=True,
    max_per_cell=MAX_PER_CELL,
):
    """Draw one scene.

    Parameters
    ----------
    seed : int
    shape : tuple of int
        Cells, ``(rows, columns)``.
    cell_size : float
        Metres.
    profile : dict, optional
        Fitted profile to draw the conditions around.
    kinds : sequence of str
    per_kind : int
        Signals of each kind.
    signals : bool
        False for a signal-free scene.
    max_per_cell : int
        Points a cell holds at most.

    Returns
    -------
    points : dict
        ``x``, ``y`` (metres, :data:`SCENE_CRS`) and ``velocity`` (mm/yr), float64 arrays.
    truths : list of dict
        One per signal: ``geometry`` (shapely Polygon or MultiPolygon, metres), ``kind``, ``peak_velocity``, ``sign``.
    info : dict
        The conditions, the geometry and each signal's parameters, and the signals that could not be placed.
    """
    rng = np.random.default_rng(seed)
    conditions = draw_conditions(rng, profile=profile)
    observed, count, coverage = _draw_coverage(rng, shape, cell_size, conditions)
    look = geometry.draw_geometry(rng)
    extent = _inner_extent(shape, cell_size)
    total = np.zeros(shape)
    taken = np.zeros(shape, dtype=bool)
    placed, missed = [], []
    for kind in kinds if signals else ():
        for _ in range(per_kind):
            for _ in range(MAX_TRIES):
                params, _ = sources.draw_source(kind, rng, extent)
                deformation, mask = deformation_field([(kind, params)], shape, cell_size, look, observed)
                grown = ndimage.binary_dilation(mask, iterations=SEPARATION)
                seen = (mask & observed).sum()
                if seen >= max(MIN_SEEN, MIN_SEEN_FRACTION * mask.sum()) and not (grown & taken).any():
                    placed.append((kind, params, deformation, mask))
                    taken |= grown
                    total += deformation
                    break
            else:
                missed.append(kind)
    base = total + noise.correlated_field(shape, rng, cell_size=cell_size, **conditions["atmosphere"])
    base += noise.planar_ramp(shape, rng, max_gradient=conditions["ramp_gradient"], cell_size=cell_size)
    points = _points(rng, base, observed, np.minimum(count, max_per_cell), cell_size, conditions)
    truths = []
    shift = Affine.translation(*SCENE_ORIGIN)
    for kind, _, deformation, mask in placed:
        peak = float(deformation[mask][np.argmax(np.abs(deformation[mask]))])
        parts = [shapely.geometry.shape(f["geometry"]) for f in deformation_polygons(deformation, mask, cell_size)]
        polygon = shapely.affinity.affine_transform(
            shapely.union_all(parts), [shift.a, shift.b, shift.d, shift.e, shift.c, shift.f]
        )
        sign = "subsidence" if peak < 0 else "uplift"
        signs = truth_signs_held(deformation[mask])
        truths.append({"geometry": polygon, "kind": kind, "peak_velocity": peak, "sign": sign, "signs": signs})
    info = {
        "seed": int(seed),
        "shape": [int(s) for s in shape],
        "cell_size": float(cell_size),
        "crs": SCENE_CRS,
        "origin": list(SCENE_ORIGIN),
        "conditions": conditions,
        "coverage": coverage,
        "geometry": look,
        "signals": [{"kind": kind, "params": params} for kind, params, _, _ in placed],
        "not_placed": missed,
    }
    return points, truths, info


def _points(rng, base, observed, count, cell_size, conditions):
    """Each observed cell's points at random inside it: the cell's value, the point's own noise, spikes."""
    rows, cols = np.nonzero(observed)
    per_cell = np.maximum(count[rows, cols], 1)
    rows, cols = np.repeat(rows, per_cell), np.repeat(cols, per_cell)
    n = rows.size
    x = SCENE_ORIGIN[0] + (cols + rng.random(n)) * cell_size
    y = SCENE_ORIGIN[1] - (rows + rng.random(n)) * cell_size
    velocity = base[rows, cols] + rng.normal(0.0, conditions["point_noise"], n)
    spike_values, _ = noise.spikes(
        np.ones(n, dtype=bool),
        rng,
        rate=conditions["spike_rate"],
        amplitude_scale=conditions["spike_scale"],
        tail=conditions["spike_tail"],
    )
    return {"x": x, "y": y, "velocity": velocity + spike_values}


def write_scene(directory, name, points, truths, info):
    """Write a scene as a processor's points table and its truth.

    Writes ``<name>.csv`` (``longitude, latitude, velocity``: 6 decimals of a degree, velocity to 0.01 mm/yr, as
    EGMS-like tables come), ``<name>-truth.geojson`` (EPSG:4326; ``kind``, ``peak_velocity``, ``sign``, and
    ``signs`` where the truths have it) and ``<name>.json`` (``info``), each atomically.

    Returns
    -------
    tuple of str
        The three paths.
    """
    import json
    import os

    import geopandas as gpd
    import pandas as pd
    from pyproj import Transformer

    from defoscan.outputs import atomic_path, write_geojson

    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, name)
    lon, lat = Transformer.from_crs(SCENE_CRS, "EPSG:4326", always_xy=True).transform(points["x"], points["y"])
    table = pd.DataFrame(
        {"longitude": np.round(lon, 6), "latitude": np.round(lat, 6), "velocity": np.round(points["velocity"], 2)}
    )
    with atomic_path(base + ".csv") as temporary:
        table.to_csv(temporary, index=False)
    columns = ["id", "kind", "peak_velocity", "sign"]
    if any("signs" in truth for truth in truths):  # a source with lobes of both signs (truth_signs_held)
        columns.append("signs")
    frame = gpd.GeoDataFrame(
        [{"id": n, **{key: truth.get(key) for key in columns[1:]}} for n, truth in enumerate(truths, start=1)],
        columns=columns,
        geometry=[truth["geometry"] for truth in truths],
        crs=SCENE_CRS,
    )
    write_geojson(base + "-truth.geojson", frame)
    with atomic_path(base + ".json") as temporary, open(temporary, "w") as handle:
        json.dump(info, handle, indent=1, default=float)
    return base + ".csv", base + "-truth.geojson", base + ".json"
