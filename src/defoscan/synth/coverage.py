"""Coverage: where a sparse velocity map has data, and how many points stand behind each cell.

Persistent scatterers cluster: dense in towns and along roads and railways, a thin rural scatter, almost nothing on
fields, forest and water. A gridded map keeps data on 2 % (rural) to 70 % (urban) of its cells. Two sources of
such masks:

- :func:`real_masks`: masks of real maps bundled with the package (``data/coverage/real_masks.npz``, made by
  ``benchmarks/make_coverage_masks.py``; sources in ``data/coverage/PROVENANCE.md``), varied by
  :func:`augment_mask` (crop, reflection tiling, rotation, flips).
- :func:`clustered_coverage`: a clustered point process. Towns and villages (Gaussian density bumps), roads
  joining them (thin wiggly polylines) and a rural scatter, modulated by a multi-scale land-use field (blocks,
  parks, fields), cut by empty terrain (large smooth blobs: water, forest) and speckled by a per-cell gamma
  factor (the holes inside towns). A cell has data when its first point "arrives": with ``E`` a unit exponential and
  ``rate`` the cell's intensity, the cell's arrival time is ``E / rate``, and the mask is the ``coverage`` share
  of cells that arrive first. This is a Poisson point process run until the requested share of cells holds a
  point, so the coverage is hit to one cell, and a cell's count is one plus the points that arrive after its
  first one, up to that stopping time: mask and counts come from one process.

:func:`draw_coverage` picks between the two; :func:`coverage_statistics` summarises a mask (to compare real and
synthetic maps) and :func:`fit_clustered_coverage` finds model parameters that reproduce a real mask.
Parameters are in metres; the model works in cells inside (radii, lengths divided by ``cell_size``).
"""

from functools import lru_cache
from importlib.resources import files

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree

COVERAGE_RANGE = (0.02, 0.7)  # rural .. urban share of cells with data
HISTOGRAM_BINS = 12  # cluster sizes 1, 2-3, 4-7, ..., >= 2048 cells
_ROAD_WIDTH = 20.0  # metres of persistent scatterers along a road or railway (kerbs, fences, embankments)
_TERRAIN_SCALE = 2000.0  # metres: outer scale of the land-use and void fields at scale 1 (forests, lakes, valleys)


@lru_cache(maxsize=1)
def _load_real_masks():
    """``(name, cell_size, mask, mean_count)`` of each bundled mask, read once (masks read-only)."""
    with (files("defoscan") / "data" / "coverage" / "real_masks.npz").open("rb") as handle:
        with np.load(handle, allow_pickle=False) as data:
            entries = []
            for i, (name, cell_size, shape, mean_count) in enumerate(
                zip(data["names"], data["cell_sizes"], data["shapes"], data["mean_counts"], strict=True)
            ):
                size = int(shape[0] * shape[1])
                mask = np.unpackbits(data[f"mask_{i}"], count=size).astype(bool).reshape(tuple(shape))
                mask.flags.writeable = False
                entries.append((str(name), float(cell_size), mask, float(mean_count)))
    return tuple(entries)


def real_masks():
    """Coverage masks of real maps bundled with the package.

    Returns
    -------
    list of (str, float, numpy.ndarray of bool)
        ``(name, cell_size, mask)``: source name, cell size in metres, True where the gridded map has data (north
        up). Ustica EGMS L2b (two tracks; 25, 50, 100 m), Kirishima MintPy thinned by temporal coherence (25, 50,
        100 m), Amsterdam DePSI (5 m); see ``data/coverage/PROVENANCE.md``.
    """
    return [(name, cell_size, mask.copy()) for name, cell_size, mask, _ in _load_real_masks()]


def augment_mask(mask, rng, shape, *, max_angle=0.0):
    """A random view of a mask: rotation by a multiple of 90 degrees, flips, a random crop of ``shape``.

    A source smaller than ``shape`` is tiled by reflection (mirror images at its edges), so no seam of empty cells
    appears. Rotations by 90 degrees and flips move cells without changing them; a crop of the whole (square)
    source keeps its exact count of observed cells.

    Parameters
    ----------
    mask : numpy.ndarray of bool
    rng : numpy.random.Generator
    shape : tuple of int
        ``(rows, columns)`` of the result.
    max_angle : float
        Also rotate by an angle uniform in ``[-max_angle, max_angle]`` degrees, nearest-cell resampling (counts
        are then kept only approximately). 0: no arbitrary rotation.

    Returns
    -------
    numpy.ndarray of bool
    """
    return _augment(mask, rng, shape, max_angle)[0]


def _augment(mask, rng, shape, max_angle):
    """:func:`augment_mask`, also returning what was drawn (JSON-serialisable)."""
    k = int(rng.integers(4))
    flip_rows, flip_cols = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    out = np.rot90(np.asarray(mask, dtype=bool), k)
    if flip_rows:
        out = out[::-1]
    if flip_cols:
        out = out[:, ::-1]
    angle = float(rng.uniform(-max_angle, max_angle)) if max_angle > 0 else 0.0
    if angle:
        # Rotate a square window wide enough that its inscribed disc holds the crop, then keep the centre.
        side = int(np.ceil(np.hypot(*shape))) + 2
        window = _window(out, rng, (side, side))
        turned = ndimage.rotate(window.astype(np.uint8), angle, reshape=False, order=0, mode="nearest") > 0
        r0, c0 = (side - shape[0]) // 2, (side - shape[1]) // 2
        out = turned[r0 : r0 + shape[0], c0 : c0 + shape[1]]
    else:
        out = _window(out, rng, shape)
    info = {"rot90": k, "flip_rows": flip_rows, "flip_cols": flip_cols, "angle": angle}
    return np.ascontiguousarray(out), info


def _window(a, rng, shape):
    """A random ``shape`` window of ``a``, tiled by reflection where ``a`` is smaller."""
    pads = []
    for have, want in zip(a.shape, shape, strict=True):
        extra = max(int(want) - have, 0)
        before = int(rng.integers(extra + 1))  # where the source sits among its mirror images
        pads.append((before, extra - before))
    if any(sum(p) for p in pads):
        a = np.pad(a, pads, mode="symmetric")
    r0 = int(rng.integers(a.shape[0] - shape[0] + 1))
    c0 = int(rng.integers(a.shape[1] - shape[1] + 1))
    return a[r0 : r0 + shape[0], c0 : c0 + shape[1]]


def clustered_coverage(
    shape,
    rng,
    *,
    coverage,
    cell_size,
    scale=1.0,
    speckle=1.0,
    voids=0.3,
    landuse=1.0,
    settlements=None,
    town_share=0.6,
    town_radius=(500.0, 3000.0),
    village_radius=(100.0, 400.0),
    roads=0.1,
    rural=0.003,
    max_density=5000.0,
):
    """A clustered coverage mask and its point counts: towns, villages, roads, rural scatter, empty terrain.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    rng : numpy.random.Generator
    coverage : float
        Share of cells with data, in (0, 1]; hit to one cell.
    cell_size : float
        Metres.
    scale : float
        Multiplies the settlement radii and the outer scale of the terrain: the cluster scale.
    speckle : float
        Coefficient of variation of a per-cell factor on the intensity (gamma distributed, mean 1): 0 gives
        solid towns, 1 the speckled look of real maps.
    voids : float
        Share of the map that is empty terrain (water, forest, fields: intensity 1e-6 of elsewhere), the lowest
        cells of a smooth power-law field (``beta`` 4, outer scale 2 km times ``scale``): large blobs with rough
        edges, like a coast. At most ``0.8 * (1 - coverage)``, to leave room for the data.
    landuse : float
        Standard deviation of the log of a random factor on the intensity, a power-law field with equal variance
        in every octave of scale (``beta`` 2) up to 2 km times ``scale``: blocks, parks and fields.
    settlements : float, optional
        Expected share of the map inside towns and villages (within their radius); ``coverage`` clipped to
        [0.02, 0.8] when not given, so that dense maps are urban maps rather than saturated countryside.
    town_share : float
        Share of the settlement area in towns (the rest in villages).
    town_radius, village_radius : (float, float)
        Ranges of the radius, metres, drawn log-uniformly (before ``scale``). The density is a Gaussian bump of
        sigma ``radius / 2``, peak 1 for towns and uniform in [0.3, 1] for villages.
    roads : float
        Intensity on roads and railways (relative to a town centre). Roads are a minimum spanning tree over the
        settlements (nearest-neighbour graph) plus through-roads crossing the map (about one per 5 km of map
        side), each a wiggly polyline about 20 m wide.
    rural : float
        Intensity everywhere (relative to a town centre): the rural scatter.
    max_density : float
        Points per km^2 at which a cell's count saturates (a town has only so many buildings): the points beyond
        the first, ``m``, become ``m / (1 + m / cap)`` with ``cap = max_density * cell area``.

    Returns
    -------
    mask : numpy.ndarray of bool
        True on exactly ``round(coverage * size)`` cells.
    counts : numpy.ndarray of int32
        Points per cell: at least 1 where ``mask``, 0 elsewhere.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    rows, cols = (int(s) for s in shape)
    if settlements is None:
        settlements = float(np.clip(coverage, 0.02, 0.8))
    intensity = np.full((rows, cols), float(rural))
    centres = []
    for share, radius, town in ((town_share, town_radius, True), (1.0 - town_share, village_radius, False)):
        radius = np.asarray(radius, dtype=float) * scale / cell_size  # cells
        lo, hi = np.log(radius)
        # E[pi R^2] for R log-uniform in [a, b] is pi (b^2 - a^2) / (2 ln(b / a)).
        mean_area = np.pi * (radius[1] ** 2 - radius[0] ** 2) / (2.0 * (hi - lo)) if hi > lo else np.pi * radius[0] ** 2
        for _ in range(rng.poisson(settlements * share * rows * cols / mean_area)):
            cy, cx = rng.uniform(0, rows), rng.uniform(0, cols)
            sigma = 0.5 * np.exp(rng.uniform(lo, hi))
            _add_bump(intensity, cy, cx, sigma, 1.0 if town else rng.uniform(0.3, 1.0))
            centres.append((cy, cx))
    if roads > 0:
        intensity[_road_network(np.array(centres).reshape(-1, 2), (rows, cols), rng, cell_size)] += roads
    outer = _TERRAIN_SCALE * scale / cell_size
    if landuse > 0:
        intensity *= np.exp(landuse * _power_law_field((rows, cols), outer, rng, beta=2.0))
    voids = min(voids, 0.8 * (1.0 - coverage))
    if voids > 0:
        terrain = _power_law_field((rows, cols), outer, rng, beta=4.0)
        intensity[terrain < np.quantile(terrain, voids)] *= 1e-6
    if speckle > 0:
        k = 1.0 / speckle**2
        intensity *= rng.gamma(k, 1.0 / k, size=(rows, cols))
    return _first_arrivals(intensity, coverage, rng, cap=max_density * (cell_size / 1000.0) ** 2)


def _add_bump(field, cy, cx, sigma, peak):
    """Add ``peak * exp(-r^2 / (2 sigma^2))`` around (cy, cx), in the box where it exceeds 0.2 % of the peak."""
    half = 3.5 * sigma
    r0, r1 = max(0, int(cy - half)), min(field.shape[0], int(cy + half) + 1)
    c0, c1 = max(0, int(cx - half)), min(field.shape[1], int(cx + half) + 1)
    if r0 >= r1 or c0 >= c1:
        return
    gy = np.exp(-0.5 * ((np.arange(r0, r1) + 0.5 - cy) / sigma) ** 2)
    gx = np.exp(-0.5 * ((np.arange(c0, c1) + 0.5 - cx) / sigma) ** 2)
    field[r0:r1, c0:c1] += peak * np.outer(gy, gx)


def _power_law_field(shape, outer, rng, *, beta):
    """A Gaussian random field of unit variance, spectrum ``(k^2 + 1/outer^2)^(-beta/2)`` (periodic).

    ``beta`` = 2 puts equal variance in every octave of scale from a cell to ``outer`` cells (city blocks and
    parks as well as forests and lakes); ``beta`` = 4 leaves mostly the large scales (smooth blobs).
    """
    rows, cols = shape
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(cols)[None, :]
    power = (kx**2 + ky**2 + (1.0 / max(outer, 1.0)) ** 2) ** (-beta / 2.0)
    power[0, 0] = 0.0
    spectrum = np.sqrt(power) * (rng.standard_normal(power.shape) + 1j * rng.standard_normal(power.shape))
    field = np.fft.irfft2(spectrum, s=shape)
    return field / max(field.std(), 1e-12)


def _road_network(centres, shape, rng, cell_size):
    """Cells on roads: a spanning tree over the settlements (nearest neighbours) plus through-roads."""
    rows, cols = shape
    segments = []
    if len(centres) >= 2:
        # The tree of a nearest-neighbour graph: settlements joined to their neighbours, not all to all.
        k = min(6, len(centres) - 1)
        dist, idx = cKDTree(centres).query(centres, k=k + 1)
        graph = coo_matrix(
            (np.maximum(dist[:, 1:].ravel(), 1e-9), (np.repeat(np.arange(len(centres)), k), idx[:, 1:].ravel())),
            shape=(len(centres), len(centres)),
        )
        tree = minimum_spanning_tree(graph).tocoo()
        segments += [(centres[i], centres[j]) for i, j in zip(tree.row, tree.col, strict=True)]
    # Through-roads and railways: about one per 5 km of map side, at least one on a map without settlements.
    n_through = rng.poisson(max(rows, cols) * cell_size / 5000.0) + (1 if len(centres) == 0 else 0)
    for _ in range(n_through):
        segments.append((_edge_point(shape, rng), _edge_point(shape, rng)))
    road = np.zeros(shape, dtype=bool)
    if segments:
        lines = _wiggle(np.array(segments, dtype=float), rng)
        _draw_segments(road, lines[:, :-1].reshape(-1, 2), lines[:, 1:].reshape(-1, 2))
    width = int(round(_ROAD_WIDTH / cell_size))
    if width > 1:
        road = ndimage.binary_dilation(road, iterations=width // 2)
    return road


def _edge_point(shape, rng):
    """A random point on the map's edge, (row, column)."""
    rows, cols = shape
    side = int(rng.integers(4))
    t = rng.uniform()
    return [(0.0, t * cols), (rows, t * cols), (t * rows, 0.0), (t * rows, cols)][side]


def _wiggle(segments, rng, *, levels=3, roughness=0.15):
    """Polylines from segments ``(n, 2 ends, 2)``, bent by midpoint displacement (``roughness`` x length, halving).

    Returns ``(n, 2**levels + 1, 2)`` vertices, (row, column).
    """
    lines = segments
    amplitude = roughness * np.hypot(*(segments[:, 1] - segments[:, 0]).T)
    for _ in range(levels):
        along = lines[:, 1:] - lines[:, :-1]
        normal = np.stack([-along[..., 1], along[..., 0]], axis=-1)
        normal /= np.maximum(np.hypot(normal[..., 0], normal[..., 1]), 1e-12)[..., None]
        shift = amplitude[:, None] * rng.standard_normal(along.shape[:2])
        mids = 0.5 * (lines[:, 1:] + lines[:, :-1]) + normal * shift[..., None]
        out = np.empty((len(lines), 2 * lines.shape[1] - 1, 2))
        out[:, 0::2], out[:, 1::2] = lines, mids
        lines, amplitude = out, amplitude / 2.0
    return lines


def _draw_segments(image, starts, ends):
    """Mark the cells that straight segments (row, column ends) pass through, sampling each every half cell."""
    n = np.ceil(2.0 * np.hypot(*(ends - starts).T)).astype(np.int64) + 1
    which = np.repeat(np.arange(len(n)), n)
    step = np.arange(which.size) - np.repeat(np.cumsum(n) - n, n)
    t = (step / np.maximum(n[which] - 1, 1))[:, None]
    points = np.floor(starts[which] + t * (ends[which] - starts[which])).astype(np.int64)
    keep = (points[:, 0] >= 0) & (points[:, 0] < image.shape[0]) & (points[:, 1] >= 0)
    keep &= points[:, 1] < image.shape[1]
    image[points[keep, 0], points[keep, 1]] = True


def _first_arrivals(rate, coverage, rng, *, cap=np.inf):
    """The cells whose first point arrives first, and their counts at the time the ``coverage`` share is reached.

    A Poisson process of intensity ``rate`` per cell puts its first point in a cell at ``E / rate`` (``E`` unit
    exponential). Stopping at the time ``t`` of the ``n``-th first arrival leaves ``n`` cells with data, each with
    ``1 + Poisson(m)`` points, ``m = rate * t - E`` the expected number arriving after its first one (saturated:
    ``m / (1 + m / cap)``).
    """
    exposure = rng.standard_exponential(rate.shape)
    arrival = (exposure / rate).ravel()
    n = int(round(coverage * arrival.size))
    mask = np.zeros(arrival.size, dtype=bool)
    counts = np.zeros(arrival.size, dtype=np.int32)
    if n:
        first = np.argpartition(arrival, n - 1)[:n]
        t = arrival[first].max()
        mask[first] = True
        later = np.maximum(rate.ravel()[first] * t - exposure.ravel()[first], 0.0)
        counts[first] = 1 + rng.poisson(later / (1.0 + later / cap))
    return mask.reshape(rate.shape), counts.reshape(rate.shape)


def _retarget(mask, coverage, rng, *, sigma=2.0):
    """Thin or grow a mask to ``coverage`` (to one cell), keeping its structure.

    Observed cells come first, then the rest; within each group cells arrive as in :func:`_first_arrivals` with
    the squared local density of observed cells (Gaussian, ``sigma`` cells) as intensity, times a unit-mean gamma
    speckle. Thinning drops isolated cells first and keeps the dense ones, speckled (squared: thinned clusters stay
    clusters rather than a uniform scatter); growing fills cells next to the observed ones.
    """
    density = ndimage.gaussian_filter(mask.astype(np.float64), sigma, mode="reflect") ** 2 + 1e-6
    arrival = rng.standard_exponential(mask.shape) / (density * rng.gamma(1.0, 1.0, size=mask.shape))
    order = np.lexsort((arrival.ravel(), ~mask.ravel()))
    out = np.zeros(mask.size, dtype=bool)
    out[order[: int(round(coverage * mask.size))]] = True
    return out.reshape(mask.shape)


def _density_counts(mask, rng, mean_count, *, sigma=2.0):
    """Points per observed cell averaging about ``mean_count``, more where the neighbours are observed too."""
    density = ndimage.gaussian_filter(mask.astype(np.float64), sigma, mode="reflect")
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    extra = max(mean_count - 1.0, 0.0) * density / max(density[mask].mean(), 1e-12)
    return np.where(mask, 1 + rng.poisson(extra), 0).astype(np.int32)


def draw_coverage(rng, shape, cell_size, *, coverage=None, real_fraction=0.5, max_angle=10.0):
    """A coverage mask and point counts for a training sample: a real mask (augmented) or the clustered model.

    A real mask is eligible when its cell size is within a factor of 2 of ``cell_size`` and it holds at least a
    quarter of the cells of ``shape`` (for 50 m cells, maps up to about 800 x 800; beyond, the model); it is augmented
    (:func:`augment_mask`), then thinned or grown to the coverage (isolated cells go first, dense areas grow), and
    its counts average the source's points per cell. The model's parameters are drawn too: ``scale``
    log-uniform in [0.5, 4], ``voids`` uniform in [0, 0.6], ``speckle`` in [0, 1.5], ``landuse`` in [0.5, 2]: the
    fits to the real maps' coverage masks shipped in the package (``docs/synth-coverage.md``) and smaller scales for
    ordinary countryside.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
    cell_size : float
        Metres.
    coverage : float, optional
        Share of cells with data; log-uniform in [0.02, 0.7] when not given.
    real_fraction : float
        Probability of starting from a real mask (when one is eligible).
    max_angle : float
        Largest arbitrary rotation of a real mask, degrees (on top of multiples of 90).

    Returns
    -------
    mask : numpy.ndarray of bool
    counts : numpy.ndarray of int32
    info : dict
        What was drawn, JSON-serialisable: ``source`` (``real`` or ``model``), ``coverage``, ``cell_size`` and
        either ``name``, ``mask_cell_size``, ``source_coverage`` (of the crop before thinning or growing),
        ``augment`` or ``params`` (keyword arguments of :func:`clustered_coverage`).
    """
    if coverage is None:
        coverage = float(np.exp(rng.uniform(*np.log(COVERAGE_RANGE))))
    use_real = bool(rng.random() < real_fraction)
    info = {"coverage": float(coverage), "cell_size": float(cell_size)}
    # Near the cell size, and big enough that reflection tiling adds at most one mirror image per axis (more looks
    # like a kaleidoscope, not a map).
    eligible = [
        m for m in _load_real_masks() if abs(np.log2(m[1] / cell_size)) <= 1.0 and 4 * m[2].size >= shape[0] * shape[1]
    ]
    if use_real and eligible:
        name, mask_cell, source, mean_count = eligible[int(rng.integers(len(eligible)))]
        view, augment = _augment(source, rng, shape, max_angle)
        mask = _retarget(view, coverage, rng)
        counts = _density_counts(mask, rng, mean_count)
        info.update(
            source="real",
            name=name,
            mask_cell_size=mask_cell,
            source_coverage=float(view.mean()),
            augment=augment,
        )
    else:
        params = {
            "scale": float(np.exp(rng.uniform(np.log(0.5), np.log(4.0)))),
            "voids": float(rng.uniform(0.0, 0.6)),
            "speckle": float(rng.uniform(0.0, 1.5)),
            "landuse": float(rng.uniform(0.5, 2.0)),
        }
        mask, counts = clustered_coverage(shape, rng, coverage=coverage, cell_size=cell_size, **params)
        info.update(source="model", params=params)
    return mask, counts, info


def coverage_statistics(mask, cell_size):
    """Summary statistics of a coverage mask, for comparing real and synthetic maps.

    Parameters
    ----------
    mask : numpy.ndarray of bool
        True where the map has data.
    cell_size : float
        Metres.

    Returns
    -------
    dict
        ``coverage`` (share of cells with data); ``clusters_per_km2`` (8-connected groups of cells with data);
        ``cluster_median_km2``, ``cluster_p90_km2`` (cluster areas); ``cluster_size_histogram`` (share of
        clusters of 1, 2-3, 4-7, ... cells, the last bin open: ``HISTOGRAM_BINS`` values); ``gap_median_m``,
        ``gap_p90_m`` (distance from an empty cell to the nearest cell with data, centre to centre; 0 when no cell
        is empty, None when none has data); ``surrounded_fraction`` (share of cells with data whose 8 neighbours
        all have data, outside the map counting as empty). Plain floats and lists: JSON-serialisable.
    """
    mask = np.asarray(mask, dtype=bool)
    cell_km2 = (cell_size / 1000.0) ** 2
    eight = np.ones((3, 3), dtype=bool)
    labels, n = ndimage.label(mask, structure=eight)
    sizes = np.bincount(labels.ravel())[1:]
    bins = np.minimum(np.floor(np.log2(np.maximum(sizes, 1))).astype(int), HISTOGRAM_BINS - 1)
    histogram = np.bincount(bins, minlength=HISTOGRAM_BINS) / max(n, 1)
    if not mask.any():
        gap_median = gap_p90 = None
    elif mask.all():
        gap_median = gap_p90 = 0.0
    else:
        gaps = ndimage.distance_transform_edt(~mask)[~mask] * cell_size
        gap_median, gap_p90 = (float(v) for v in np.percentile(gaps, [50, 90]))
    observed = int(mask.sum())
    surrounded = int(ndimage.binary_erosion(mask, structure=eight, border_value=0).sum())
    return {
        "coverage": float(mask.mean()),
        "clusters_per_km2": float(n / (mask.size * cell_km2)),
        "cluster_median_km2": float(np.median(sizes) * cell_km2) if n else 0.0,
        "cluster_p90_km2": float(np.percentile(sizes, 90) * cell_km2) if n else 0.0,
        "cluster_size_histogram": [float(h) for h in histogram],
        "gap_median_m": gap_median,
        "gap_p90_m": gap_p90,
        "surrounded_fraction": surrounded / observed if observed else 0.0,
    }


def _features(stats, cell_size, area_km2):
    """What the fit matches: log gap distances, log cluster density, share of surrounded cells."""
    floor = 0.5 * cell_size
    return np.array(
        [
            np.log((stats["gap_median_m"] or 0.0) + floor),
            np.log((stats["gap_p90_m"] or 0.0) + floor),
            np.log(stats["clusters_per_km2"] + 1.0 / area_km2),
            2.0 * stats["surrounded_fraction"],
        ]
    )


FIT_GRID = {
    "scale": tuple(float(v) for v in np.geomspace(0.25, 4.0, 9)),
    "voids": (0.0, 0.15, 0.3, 0.45, 0.6, 0.75),
    "speckle": (0.0, 0.25, 0.5, 1.0, 1.5),
    "landuse": (0.0, 0.5, 1.0, 2.0),
}


def fit_clustered_coverage(mask, cell_size, *, seed=0, draws=8, rounds=2, grid=None):
    """Parameters of :func:`clustered_coverage` that reproduce a mask's statistics approximately.

    The coverage is the mask's own (so the model hits it to the cell on a map of the same shape). ``scale``,
    ``voids``, ``speckle`` and ``landuse`` are searched one at a time over ``grid`` (coordinate descent,
    ``rounds`` passes from the defaults), each candidate scored by how far the :func:`coverage_statistics` of
    ``draws`` model maps (same shape; the same seeds for every candidate, so that chance does not blur the
    comparison) lie from the mask's: squared differences of log gap distances (median, 90th percentile), log
    clusters per km^2, and twice the share of surrounded cells, the statistics averaged over the draws.

    One map's statistics scatter widely from seed to seed (a town more or less), so a candidate is judged on
    several draws: with 2 the search chases the luck of its seeds. The cost is about ``40 * draws`` model maps of
    the mask's shape (8 draws: 2 s for 128 x 128 cells, 8 s for 256 x 256): fit a window of a large map.

    Parameters
    ----------
    mask : numpy.ndarray of bool
    cell_size : float
        Metres.
    seed : int
        First seed of the model maps drawn during the search.
    draws : int
        Model maps per candidate.
    rounds : int
        Passes over the parameters.
    grid : dict, optional
        Candidate values per parameter; ``FIT_GRID`` when not given.

    Returns
    -------
    dict
        ``coverage``, ``scale``, ``voids``, ``speckle``, ``landuse``: keyword arguments of
        :func:`clustered_coverage`, so that ``clustered_coverage(mask.shape, rng, cell_size=cell_size, **params)``
        draws coverage "around" the mask.
    """
    mask = np.asarray(mask, dtype=bool)
    coverage = float(mask.mean())
    if coverage == 0.0:
        raise ValueError("the mask has no cell with data")
    grid = FIT_GRID if grid is None else grid
    area_km2 = mask.size * (cell_size / 1000.0) ** 2
    target = _features(coverage_statistics(mask, cell_size), cell_size, area_km2)

    def loss(params):
        features = [
            _features(coverage_statistics(model, cell_size), cell_size, area_km2)
            for model in _model_masks(mask.shape, cell_size, coverage, params, seed, draws)
        ]
        return float(np.sum((np.mean(features, axis=0) - target) ** 2))

    params = {"scale": 1.0, "voids": 0.3, "speckle": 1.0, "landuse": 1.0}
    best = loss(params)
    for _ in range(rounds):
        for name, values in grid.items():
            for value in values:
                if value == params[name]:
                    continue
                trial = {**params, name: float(value)}
                score = loss(trial)
                if score < best:
                    best, params = score, trial
    return {"coverage": coverage, **params}


def _model_masks(shape, cell_size, coverage, params, seed, draws):
    """Masks of :func:`clustered_coverage` drawn with the seeds ``seed``, ``seed + 1``, ..."""
    for i in range(draws):
        rng = np.random.default_rng(seed + i)
        yield clustered_coverage(shape, rng, coverage=coverage, cell_size=cell_size, **params)[0]
