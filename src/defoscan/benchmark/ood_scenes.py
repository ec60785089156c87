"""Out-of-distribution scenes (issue 18): maps made under conditions the training profiles were not fitted to.

The training data is fitted to Kirishima and Ustica at 50 m (128-cell windows, signals of 2-100 mm/yr no larger
than a window). These scenes are written in the format of :mod:`defoscan.synth.scene` (and by its
:func:`~defoscan.synth.scene.write_scene`), so :mod:`defoscan.benchmark.suite` scores them unchanged, but each draws
one regime per factor of :data:`REGIMES`, recorded in ``info["regime"]`` so results can be broken down:

- ``spacing``: cell size and point spacing, 25, 50, 100 or 200 m; one point per observed cell at a random place in
  it. Scenes are 20-40 km a side, at most :data:`MAX_SIDE` cells and about :data:`MAX_POINTS` points.
- ``coverage``: dense city (70-90 % of cells), sparse rural (3-10 %), linear infrastructure only (roads and
  railways), coast (half the map sea), clustered towns with empty gaps.
- ``atmosphere``: a power-law field (beta 2.5-3.7, 1-3 mm/yr, with a ramp of up to 5 mm/yr across the map) or a
  strong one (stable covariance, 5-10 mm/yr, 5-20 km long, plus a ramp); every scene also has per-point noise of
  1-6 mm/yr and spikes on 0.5-3 % of the points.
- ``regional``: none, a tilt or a 50-km-scale field of 5-20 mm/yr across the map: real ground motion (tectonics,
  a regional aquifer) that is **not** a truth: a detector should not report it.
- ``signals``: none (signal-free, hard atmosphere: for the false-alarm rate), large bowls (8-30 km across, -20 to
  -300 mm/yr), nested (a broad slow bowl with one or two fast cores), overlapping bowls, small fast pits
  (50-300 m across, 20-100 mm/yr) and slow bowls (2-5 mm/yr peak).

Signals are Mogi sources and quarry pits of :mod:`defoscan.synth.sources` (kinds ``mogi`` and ``quarry``), vertical
only, seen in the line of sight as ``up * cos(incidence)``. Each point's velocity is the deformation **at the
point** (not a cell mean: a 50 m pit at 200 m spacing is seen at full speed by the points inside it, or not at all)
plus the atmosphere and regional field of its cell, its own noise and spikes.

Truth: a signal deforms where its LOS rate reaches ``max(LABEL_THRESHOLD, LABEL_FRACTION * |peak|)`` (2 mm/yr and
20 % of its peak, the training labels' rule), evaluated on a grid of :data:`TRUTH_CELL` metres at most (finer than
the coarse spacings, so a small pit keeps its shape). **Signals whose deforming areas touch are one truth** (a
4-connected area of the union of their masks): a nested core lies inside its broad bowl, and
:func:`defoscan.evaluate.score` gives each detection to the truth it overlaps most, so a core as a second truth
could never be found (any detection over it overlaps the broad area at least as much), and a detection of the
whole complex would leave one of them missed. A truth takes the kind of its largest member and the signed peak of
the summed deformation inside it. A truth that fewer than :data:`MIN_POINTS` points observe cannot be found: it
is dropped and its members recorded in ``info["not_placed"]``.
"""

import numpy as np
import shapely
import shapely.affinity
import shapely.geometry
from affine import Affine
from scipy import ndimage

from defoscan.benchmark import truth_fields
from defoscan.synth import coverage as coverage_model
from defoscan.synth import geometry, noise, sources
from defoscan.synth.dataset import deformation_polygons
from defoscan.synth.sample import LABEL_FRACTION, LABEL_THRESHOLD
from defoscan.synth.scene import SCENE_CRS, SCENE_ORIGIN, truth_signs_held, write_scene

MAX_SIDE = 600  # cells a side at most: one detect run stays around a minute on 2 cores
MAX_POINTS = 250_000  # points at most (dense coverage shrinks the scene)
SIDE_KM = (20.0, 40.0)  # scene side before the caps
TRUTH_CELL = 25.0  # metres: the truth grid's cell at most
MIN_POINTS = 3  # points a truth needs to be findable
MAX_TRIES = 10  # placements tried per small pit
SIGNAL_FREE_SHARE = 0.25  # of the scenes of a suite
POISSON = 0.25
# Truth radius over depth of a Mogi bowl cut at LABEL_FRACTION of its peak: (d^2 / (r^2 + d^2))^1.5 = fraction.
MOGI_RADIUS_PER_DEPTH = float(np.sqrt(LABEL_FRACTION ** (-2.0 / 3.0) - 1.0))


def _uniform(rng, low, high):
    return float(rng.uniform(low, high))


def _log_uniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


# --- coverage: (rng, shape, cell_size) -> observed cells, and the parameters drawn ---------------------------------


def _city(rng, shape, cell_size):
    share = _uniform(rng, 0.7, 0.9)
    mask = truth_fields.clustered_mask(shape, share, rng, scale=1000.0 / cell_size, speckle=0.6)
    return mask, {"share": share}


def _rural(rng, shape, cell_size):
    share = _uniform(rng, 0.03, 0.10)
    mask, _ = coverage_model.clustered_coverage(
        shape, rng, coverage=share, cell_size=cell_size, settlements=0.01, rural=0.05, roads=0.05, voids=0.3
    )
    return mask, {"share": share}


def _linear(rng, shape, cell_size):
    mask = coverage_model._road_network(np.empty((0, 2)), shape, rng, cell_size)
    for _ in range(int(rng.integers(1, 4))):  # a few more lines: a map of a railway and motorway corridors
        mask |= coverage_model._road_network(np.empty((0, 2)), shape, rng, cell_size)
    return mask, {"lines": "through-roads and railways only"}


def _coast(rng, shape, cell_size):
    rows, cols = shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y, x = np.mgrid[0:rows, 0:cols]
    along = np.cos(angle) * x + np.sin(angle) * y
    wiggle = truth_fields.smooth_background(shape, rng, amplitude=0.1 * max(shape), beta=3.5, ramp=0.0)
    score = along + wiggle
    land = score >= np.median(score)  # half the map is sea
    share = _uniform(rng, 0.3, 0.6)
    mask, _ = coverage_model.clustered_coverage(shape, rng, coverage=share, cell_size=cell_size, voids=0.0)
    return mask & land, {"land_share": share}


def _towns(rng, shape, cell_size):
    share = _uniform(rng, 0.1, 0.25)
    scale = _uniform(rng, 1500.0, 3000.0)
    mask = truth_fields.clustered_mask(shape, share, rng, scale=scale / cell_size, speckle=0.2)
    return mask, {"share": share, "cluster_scale_m": scale}


# --- atmosphere: (rng, shape, cell_size) -> field, parameters ------------------------------------------------------


def _power_law(rng, shape, cell_size):
    params = {
        "amplitude": _uniform(rng, 1.0, 3.0),
        "beta": _uniform(rng, 2.5, 3.7),
        "outer_scale": 50_000.0 / cell_size,
        "ramp": _uniform(rng, 0.0, 5.0),
    }
    return truth_fields.smooth_background(shape, rng, **params), params


def _strong(rng, shape, cell_size):
    params = {"sigma": _uniform(rng, 5.0, 10.0), "length": _log_uniform(rng, 5000.0, 20_000.0), "alpha": 1.8}
    field = noise.correlated_field(shape, rng, cell_size=cell_size, **params)
    gradient = _uniform(rng, 0.0, 0.3)
    field += noise.planar_ramp(shape, rng, max_gradient=gradient, cell_size=cell_size)
    return field, {**params, "ramp_gradient": gradient}


# --- regional motion, not a truth: (rng, shape, cell_size) -> field, parameters ------------------------------------


def _no_regional(rng, shape, cell_size):
    return np.zeros(shape), {}


def _tilt(rng, shape, cell_size):
    across = _uniform(rng, 5.0, 20.0)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    plane = np.cos(angle) * x + np.sin(angle) * y
    plane = across * (plane - plane.mean()) / max(np.ptp(plane), 1e-12)
    return plane, {"across": across, "angle": float(angle)}


def _long_wave(rng, shape, cell_size):
    across = _uniform(rng, 5.0, 20.0)
    field = truth_fields.smooth_background(shape, rng, beta=4.0, outer_scale=50_000.0 / cell_size, ramp=0.0)
    return across * field / max(np.ptp(field), 1e-12), {"across": across, "scale_m": 50_000.0}


# --- signals: (rng, extent) -> [(kind, params)], with extent (west, east, south, north) in metres -----------------


def mogi_params(x0, y0, los_peak, diameter, incidence_deg):
    """A Mogi source whose LOS bowl has peak ``los_peak`` and whose truth area is ``diameter`` metres across.

    Parameters
    ----------
    x0, y0 : float
        Centre, metres.
    los_peak : float
        Signed LOS rate at the centre, mm/yr (negative: subsidence).
    diameter : float
        Metres across the area above :data:`~defoscan.synth.sample.LABEL_FRACTION` of the peak.
    incidence_deg : float

    Returns
    -------
    dict
        Keyword arguments of :func:`defoscan.synth.sources.mogi`.
    """
    depth = 0.5 * diameter / MOGI_RADIUS_PER_DEPTH
    up_peak = los_peak / np.cos(np.deg2rad(incidence_deg))
    volume_rate = up_peak / 1000.0 * np.pi * depth**2 / (1.0 - POISSON)
    return {"x0": float(x0), "y0": float(y0), "depth": float(depth), "volume_rate": float(volume_rate)}


def _centre(rng, extent):
    west, east, south, north = extent
    return rng.uniform(west, east), rng.uniform(south, north)


def _large(rng, extent, incidence):
    side = (extent[1] - extent[0]) / 0.8
    diameter = _uniform(rng, 8e3, max(8e3, min(30e3, 0.8 * side)))  # edges inside the scene: the bowl has a rim
    return [("mogi", mogi_params(*_centre(rng, extent), -_log_uniform(rng, 20.0, 300.0), diameter, incidence))]


def _nested(rng, extent, incidence):
    x0, y0 = _centre(rng, extent)
    diameter = _uniform(rng, 4e3, 12e3)
    members = [("mogi", mogi_params(x0, y0, -_uniform(rng, 5.0, 15.0), diameter, incidence))]
    for _ in range(int(rng.integers(1, 3))):  # fast cores inside the broad bowl's inner half
        distance, angle = rng.uniform(0.0, 0.25 * diameter), rng.uniform(0.0, 2.0 * np.pi)
        core = (x0 + distance * np.cos(angle), y0 + distance * np.sin(angle))
        members.append(
            ("mogi", mogi_params(*core, -_uniform(rng, 20.0, 80.0), _uniform(rng, 400.0, 1500.0), incidence))
        )
    return members


def _overlapping(rng, extent, incidence):
    x0, y0 = _centre(rng, extent)
    sign = -1.0 if rng.random() < 0.8 else 1.0
    members = []
    for _ in range(int(rng.integers(2, 4))):
        diameter = _uniform(rng, 1.5e3, 6e3)
        distance, angle = rng.uniform(0.3, 0.5) * diameter, rng.uniform(0.0, 2.0 * np.pi)
        centre = (x0 + distance * np.cos(angle), y0 + distance * np.sin(angle))
        members.append(("mogi", mogi_params(*centre, sign * _log_uniform(rng, 10.0, 80.0), diameter, incidence)))
    return members


def _small(rng, extent, incidence):
    members = []
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = _centre(rng, extent)
        radius = _log_uniform(rng, 25.0, 150.0)
        params = {
            "x0": float(x0),
            "y0": float(y0),
            "rate": _log_uniform(rng, 20.0, 100.0) / np.cos(np.deg2rad(incidence)),
            "radius": radius,
            "ratio": _uniform(rng, 0.5, 1.0),
            "azimuth_deg": _uniform(rng, 0.0, 180.0),
            "squareness": _uniform(rng, 2.0, 4.0),
            "taper": float(min(10.0, 0.3 * radius)),
        }
        members.append(("quarry", params))
    return members


def _slow(rng, extent, incidence):
    return [
        (
            "mogi",
            mogi_params(
                *_centre(rng, extent),
                rng.choice([-1.0, 1.0]) * _uniform(rng, 2.5, 5.0),
                _uniform(rng, 1e3, 6e3),
                incidence,
            ),
        )
        for _ in range(int(rng.integers(2, 5)))
    ]


def _none(rng, extent, incidence):
    return []


REGIMES = {
    "spacing": {"25m": 25.0, "50m": 50.0, "100m": 100.0, "200m": 200.0},
    "coverage": {"city": _city, "rural": _rural, "linear": _linear, "coast": _coast, "towns": _towns},
    "atmosphere": {"power-law": _power_law, "strong": _strong},
    "regional": {"none": _no_regional, "tilt": _tilt, "long-wave": _long_wave},
    "signals": {
        "none": _none,
        "large": _large,
        "nested": _nested,
        "overlapping": _overlapping,
        "small": _small,
        "slow": _slow,
    },
}
HARD_ATMOSPHERE = "strong"  # signal-free scenes get it unless told otherwise: hard negatives


def draw_regime(rng, regime=None):
    """One regime name per factor of :data:`REGIMES`: those of ``regime``, the others drawn uniformly.

    Signal-free scenes are drawn with probability :data:`SIGNAL_FREE_SHARE`, the signal regimes share the rest;
    a signal-free scene has the :data:`HARD_ATMOSPHERE` unless ``regime`` names its atmosphere.
    """
    chosen = {}
    for factor, options in REGIMES.items():
        names = list(options)
        if factor == "signals":
            weights = [SIGNAL_FREE_SHARE] + [(1.0 - SIGNAL_FREE_SHARE) / (len(names) - 1)] * (len(names) - 1)
        else:
            weights = [1.0 / len(names)] * len(names)
        drawn = str(rng.choice(names, p=weights))
        chosen[factor] = (regime or {}).get(factor, drawn)
    if chosen["signals"] == "none" and "atmosphere" not in (regime or {}):
        chosen["atmosphere"] = HARD_ATMOSPHERE
    for factor, name in chosen.items():
        if name not in REGIMES[factor]:
            raise ValueError(f"{factor} regime must be one of {list(REGIMES[factor])}, got {name!r}")
    return chosen


def scene_shape(side_m, cell_size, share):
    """Cells a side of a square scene of ``side_m`` metres, capped at :data:`MAX_SIDE` and :data:`MAX_POINTS`."""
    side = min(int(round(side_m / cell_size)), MAX_SIDE, int(np.sqrt(MAX_POINTS / max(share, 1e-3))))
    return side, side


def make_ood_scene(seed, *, regime=None):
    """Draw one out-of-distribution scene (module notes).

    Parameters
    ----------
    seed : int
    regime : dict, optional
        ``{factor: regime name}`` for some factors of :data:`REGIMES`; the others are drawn.

    Returns
    -------
    points : dict
        ``x``, ``y`` (metres, :data:`~defoscan.synth.scene.SCENE_CRS`) and ``velocity`` (mm/yr), float64 arrays.
    truths : list of dict
        ``geometry`` (shapely, metres), ``kind``, ``peak_velocity`` (signed LOS, mm/yr), ``sign``.
    info : dict
        ``regime``, ``cell_size``, ``shape``, the parameters drawn, ``signals`` (the members of the truths, each
        with its ``truth`` number), ``not_placed`` and the ``coverage_share``.
    """
    rng = np.random.default_rng(seed)
    chosen = draw_regime(rng, regime)
    cell_size = REGIMES["spacing"][chosen["spacing"]]
    expected_share = {"city": 0.9, "rural": 0.1, "linear": 0.05, "coast": 0.3, "towns": 0.25}[chosen["coverage"]]
    shape = scene_shape(_uniform(rng, *SIDE_KM) * 1000.0, cell_size, expected_share)
    observed, coverage_params = REGIMES["coverage"][chosen["coverage"]](rng, shape, cell_size)
    atmosphere, atmosphere_params = REGIMES["atmosphere"][chosen["atmosphere"]](rng, shape, cell_size)
    regional, regional_params = REGIMES["regional"][chosen["regional"]](rng, shape, cell_size)
    look = geometry.draw_geometry(rng)
    rows, cols = np.nonzero(observed)
    px = (cols + rng.random(rows.size)) * cell_size  # scene frame: x east from the left edge, y north from the top
    py = -(rows + rng.random(rows.size)) * cell_size

    factor = max(1, int(round(cell_size / TRUTH_CELL)))
    fine = (shape[0] * factor, shape[1] * factor)
    fine_cell = cell_size / factor
    fine_counts = np.zeros(fine, dtype=np.int32)
    np.add.at(fine_counts, ((-py / fine_cell).astype(int), (px / fine_cell).astype(int)), 1)
    fx = (np.arange(fine[1]) + 0.5) * fine_cell
    fy = -(np.arange(fine[0]) + 0.5) * fine_cell
    extent = (
        0.1 * shape[1] * cell_size,
        0.9 * shape[1] * cell_size,
        -0.9 * shape[0] * cell_size,
        -0.1 * shape[0] * cell_size,
    )

    members, missed = [], []
    for kind, params in REGIMES["signals"][chosen["signals"]](rng, extent, look["incidence_deg"]):
        for _ in range(MAX_TRIES if kind == "quarry" else 1):
            if kind == "quarry" and rows.size:  # pits are dug among the buildings that carry the points
                k = rng.integers(rows.size)
                params = {**params, "x0": float(px[k]), "y0": float(py[k])}
            los, mask = _signal(kind, params, fx, fy, look)
            if fine_counts[mask].sum() >= MIN_POINTS:
                break
        members.append({"kind": kind, "params": params, "los": los, "mask": mask})

    truths, placed = _truths(members, fine_counts, fine_cell, missed)
    velocity = atmosphere[rows, cols] + regional[rows, cols]
    for member in members:
        velocity += _los(member["kind"], member["params"], px, py, look)
    point_noise = _uniform(rng, 1.0, 6.0)
    velocity += rng.normal(0.0, point_noise, rows.size)
    spike_share = _uniform(rng, 0.005, 0.03)
    velocity, _ = truth_fields.add_spikes(
        velocity, np.ones(rows.size, dtype=bool), rng, fraction=spike_share, amplitude=(10.0, 50.0)
    )
    points = {"x": SCENE_ORIGIN[0] + px, "y": SCENE_ORIGIN[1] + py, "velocity": velocity}
    info = {
        "seed": int(seed),
        "regime": chosen,
        "shape": [int(s) for s in shape],
        "cell_size": float(cell_size),
        "crs": SCENE_CRS,
        "origin": list(SCENE_ORIGIN),
        "coverage": coverage_params,
        "coverage_share": float(observed.mean()),
        "points": int(rows.size),
        "atmosphere": atmosphere_params,
        "regional": regional_params,
        "point_noise": point_noise,
        "spike_share": spike_share,
        "geometry": look,
        "truth_rule": {"rate": LABEL_THRESHOLD, "fraction": LABEL_FRACTION, "min_points": MIN_POINTS},
        "signals": placed,
        "not_placed": missed,
    }
    return points, truths, info


def _los(kind, params, x, y, look):
    """A source's LOS rate at ``x, y``: its vertical motion seen at the incidence (module notes)."""
    _, _, up = sources.evaluate_source(kind, params, x, y)
    return up * np.cos(np.deg2rad(look["incidence_deg"]))


def _signal(kind, params, fx, fy, look):
    """A source's LOS rate on the truth grid and its deforming area.

    A pit is still beyond its outline and taper: it is evaluated in its box only (a small pit on a large grid).
    """
    columns, rows = slice(None), slice(None)
    if kind == "quarry":
        reach = params["radius"] + params["taper"] + 2.0 * (fx[1] - fx[0])
        columns = slice(*np.searchsorted(fx, [params["x0"] - reach, params["x0"] + reach]))
        rows = slice(*np.searchsorted(-fy, [-params["y0"] - reach, -params["y0"] + reach]))
    los = np.zeros((fy.size, fx.size))
    x, y = np.meshgrid(fx[columns], fy[rows])
    los[rows, columns] = _los(kind, params, x, y, look)
    peak = np.abs(los).max()
    return los, np.abs(los) >= max(LABEL_THRESHOLD, LABEL_FRACTION * peak)


def _truths(members, fine_counts, fine_cell, missed):
    """Truth polygons: one per 4-connected area of the members' masks seen by :data:`MIN_POINTS` points."""
    union = np.zeros(fine_counts.shape, dtype=bool)
    total = np.zeros(fine_counts.shape)
    for member in members:
        union |= member["mask"]
        total += member["los"]
    labels, n = ndimage.label(union)
    shift = Affine.translation(*SCENE_ORIGIN)
    truths, placed = [], []
    for number in range(1, n + 1):
        area = labels == number
        group = [m for m in members if (m["mask"] & area).any()]
        if fine_counts[area].sum() < MIN_POINTS:
            missed += [{"kind": m["kind"], "params": m["params"]} for m in group]
            continue
        peak = float(total[area][np.argmax(np.abs(total[area]))])
        parts = [
            shapely.geometry.shape(f["geometry"])
            for f in deformation_polygons(np.full(area.shape, peak), area, fine_cell)
        ]
        polygon = shapely.affinity.affine_transform(
            shapely.union_all(parts), [shift.a, shift.b, shift.d, shift.e, shift.c, shift.f]
        )
        largest = max(group, key=lambda m: m["mask"].sum())
        sign = "subsidence" if peak < 0 else "uplift"
        signs = truth_signs_held(total[area])
        truth = {"geometry": polygon, "kind": largest["kind"], "peak_velocity": peak, "sign": sign, "signs": signs}
        truths.append(truth)
        placed += [{"kind": m["kind"], "params": m["params"], "truth": len(truths)} for m in group]
    return truths, placed


def write_ood_suite(out_dir, n, seed):
    """Write ``n`` scenes (``scene-000`` ...) into ``out_dir``, the regimes balanced over the scenes.

    Each factor's regimes are dealt in turn in a seeded random order, so every regime appears about equally often
    (the signal-free ones in :data:`SIGNAL_FREE_SHARE` of the scenes, with the hard atmosphere); scene ``i`` is
    made from seed
    ``seed * 1000 + i``.

    Returns
    -------
    list of str
        The scene names.
    """
    rng = np.random.default_rng(seed)
    dealt = {}
    for factor, options in REGIMES.items():
        names = list(options)
        if factor == "signals":
            free = int(round(SIGNAL_FREE_SHARE * n))
            others = names[1:]
            order = ["none"] * free + [others[i % len(others)] for i in range(n - free)]
        else:
            order = [names[i % len(names)] for i in range(n)]
        dealt[factor] = list(rng.permutation(order))
    written = []
    for i in range(n):
        name = f"scene-{i:03d}"
        regime = {factor: str(dealt[factor][i]) for factor in REGIMES}
        if regime["signals"] == "none":
            del regime["atmosphere"]  # the hard one (draw_regime)
        points, truths, info = make_ood_scene(seed * 1000 + i, regime=regime)
        write_scene(out_dir, name, points, truths, info)
        written.append(name)
    return written
