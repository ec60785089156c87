"""One synthetic training sample: deformation on real-looking sparsity and noise, with its labels.

A sample is what gridding gives for a patch of a real map, and the truth behind it:

1. **Conditions** (:func:`draw_conditions`): the atmosphere (stable-covariance field, :mod:`.noise`), the point
   noise, the planar ramp, the spike rate and sizes, and the coverage. Drawn from wide default ranges, or around
   the profile fitted to a real map (:mod:`.profile`), which is the paper's enhancement.
2. **Coverage** (:mod:`.coverage`): a real mask, augmented, or the clustered model of towns, villages, roads and
   rural scatter; with the points behind each observed cell.
3. **Deformation** (:mod:`.sources`): for a positive sample one to three sources of kinds drawn at random,
   evaluated as east/north/up rates on a finer grid (narrow troughs and small quarries would vanish between cell
   centres) and averaged to cells, then projected on the line of sight of a Sentinel-1 geometry
   (:mod:`.geometry`).
4. **The map**: LOS deformation + atmosphere + ramp + point noise ``sigma / sqrt(count)`` + spikes on observed
   cells, NaN elsewhere.
5. **Labels**: the class (deformation present and seen), the kinds, the pixel mask (cells where the LOS
   deformation reaches :data:`LABEL_THRESHOLD` and one source reaches :data:`LABEL_FRACTION` of its own peak),
   and every parameter drawn, so a sample can be inspected or re-made.

Half of the negatives are *hard*: stronger and shorter-range atmosphere, steeper ramps and more spikes, the
things a detector trained on clean data mistakes for deformation.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from defoscan.synth import broad, geometry, noise, sources
from defoscan.synth import coverage as coverage_model

LABEL_THRESHOLD = 2.0  # mm/yr of LOS deformation: below, a cell is not labelled as deforming ...
LABEL_FRACTION = 0.2  # ... nor below this share of its source's peak (a 50 mm/yr bowl's 2 mm/yr rim is far out)
MIN_SEEN = 3  # observed cells inside the deformation mask for a sample to count as positive
SUPERSAMPLE_CELL = 25.0  # metres: sources are evaluated on cells at most this big, then averaged
MAX_PLACEMENTS = 5  # tries to place the sources of a positive sample where they are seen

DEFAULT_RANGES = {
    "point_noise": (1.0, 4.0),  # mm/yr, one point's velocity noise (EGMS mean_velocity_std is 0.5-3)
    "ramp_gradient": (0.0, 0.3),  # mm/yr per km: residual orbit/reference ramp after calibration
    "spike_rate": (0.0, 0.02),  # share of observed cells
    "spike_scale": (5.0, 20.0),  # mm/yr, smallest spike
}
HARD = {
    "sigma": (3.0, 8.0),  # mm/yr: strong residual atmosphere
    "length": (1000.0, 5000.0),  # m: blobs the size of deformation
    "ramp_gradient": (0.3, 1.0),
    "spike_rate": (0.02, 0.05),
}


@dataclass
class Sample:
    """A synthetic gridded map and its labels.

    Attributes
    ----------
    velocity : numpy.ndarray of float32
        LOS velocity as gridding gives it, mm/yr, NaN where no data.
    count : numpy.ndarray of int32
        Points per cell (0 where no data).
    deformation : numpy.ndarray of float32
        The LOS deformation alone, everywhere (the truth), mm/yr.
    mask : numpy.ndarray of bool
        Deforming cells: ``|deformation| >= LABEL_THRESHOLD`` where some source reaches ``LABEL_FRACTION`` of
        its peak.
    spikes : numpy.ndarray of bool
        Cells carrying a spike.
    label : int
        1 when deformation is present and seen by at least :data:`MIN_SEEN` observed cells (in the ``broad`` mode:
        where it is detectable, :func:`defoscan.synth.broad.seen_cells`), else 0.
    info : dict
        Everything drawn, JSON-serialisable: ``kinds``, ``sources`` (kind and parameters), ``geometry``,
        ``conditions``, ``coverage``, ``hard``, ``cell_size``, ``shape``.
    """

    velocity: np.ndarray
    count: np.ndarray
    deformation: np.ndarray
    mask: np.ndarray
    spikes: np.ndarray
    label: int
    info: dict = field(default_factory=dict)


def _uniform(rng, bounds):
    return float(rng.uniform(*bounds))


def draw_conditions(rng, *, hard=False, profile=None):
    """Noise, ramp, spikes and coverage for one sample.

    Parameters
    ----------
    rng : numpy.random.Generator
    hard : bool
        A hard negative: atmosphere, ramp and spikes from :data:`HARD`.
    profile : dict, optional
        A profile fitted to a real map (:func:`defoscan.synth.profile.fit_profile`): the conditions are drawn
        around it (:func:`defoscan.synth.profile.draw_conditions`) instead of from the default ranges.

    Returns
    -------
    dict
        ``atmosphere`` (``sigma``, ``length``, ``alpha``), ``point_noise``, ``ramp_gradient``, ``spike_rate``,
        ``spike_scale``, ``spike_tail``, ``coverage`` (share of cells, or None: drawn with the mask) and
        ``coverage_params`` (keyword arguments of the clustered model, or None: a real mask or the model with
        drawn parameters).
    """
    if profile is not None:
        from defoscan.synth.profile import draw_conditions as around_profile

        return around_profile(profile, rng, hard=hard)
    atmosphere = noise.draw_noise_parameters(rng)
    conditions = {
        "atmosphere": atmosphere,
        "point_noise": _uniform(rng, DEFAULT_RANGES["point_noise"]),
        "ramp_gradient": _uniform(rng, DEFAULT_RANGES["ramp_gradient"]),
        "spike_rate": _uniform(rng, DEFAULT_RANGES["spike_rate"]),
        "spike_scale": _uniform(rng, DEFAULT_RANGES["spike_scale"]),
        "spike_tail": 2.0,
        "coverage": None,
        "coverage_params": None,
    }
    if hard:
        atmosphere["sigma"] = float(np.exp(rng.uniform(*np.log(HARD["sigma"]))))
        atmosphere["length"] = float(np.exp(rng.uniform(*np.log(HARD["length"]))))
        conditions["ramp_gradient"] = _uniform(rng, HARD["ramp_gradient"])
        conditions["spike_rate"] = _uniform(rng, HARD["spike_rate"])
    return conditions


def cell_centres(shape, cell_size, factor=1):
    """Easting and northing of the cell centres of a north-up grid with its top-left corner at (0, 0), metres.

    With ``factor > 1`` the centres of the ``factor x factor`` sub-cells, shape ``(rows * factor, cols *
    factor)``.
    """
    step = cell_size / factor
    x = (np.arange(shape[1] * factor) + 0.5) * step
    y = -(np.arange(shape[0] * factor) + 0.5) * step
    return np.meshgrid(x, y)


def block_mean(a, factor):
    """Mean over ``factor x factor`` blocks (the cells of a supersampled field)."""
    if factor == 1:
        return a
    rows, cols = a.shape[0] // factor, a.shape[1] // factor
    return a.reshape(rows, factor, cols, factor).mean(axis=(1, 3))


def deformation_field(kinds_params, shape, cell_size, look, built_up):
    """LOS deformation of sources on the grid (cell means of a supersampled evaluation) and its label mask.

    Parameters
    ----------
    kinds_params : list of (str, dict) or (str, dict, dict)
        Each source's kind and parameters (:func:`defoscan.synth.sources.draw_source`), optionally with a
        similarity ``{"scale": s, "peak": p}``: the source is evaluated at ``(x / s, y / s)`` (``s`` times larger)
        and its LOS scaled so that its largest ``|LOS|`` on the grid is ``p`` mm/yr
        (:func:`defoscan.synth.broad.draw_source`).
    shape : tuple of int
    cell_size : float
    look : dict
        ``incidence_deg``, ``heading_deg``, ``looking`` (:func:`defoscan.synth.geometry.draw_geometry`).
    built_up : numpy.ndarray of bool
        Where buildings stand (the coverage), for compaction; shape ``shape``.

    Returns
    -------
    deformation : numpy.ndarray of float64
        mm/yr.
    mask : numpy.ndarray of bool
        ``|deformation| >= LABEL_THRESHOLD`` where some source reaches ``LABEL_FRACTION`` of its own peak.
    """
    total = np.zeros(shape)
    core = np.zeros(shape, dtype=bool)
    for kind, params, *similarity in kinds_params:
        similar = similarity[0] if similarity else {}
        scale = similar.get("scale", 1.0)
        # sub-cells of at most SUPERSAMPLE_CELL in the source's own frame: a stretched source needs fewer
        factor = max(1, int(np.ceil(cell_size / (SUPERSAMPLE_CELL * scale))))
        x, y = cell_centres(shape, cell_size, factor)
        fine_built = np.repeat(np.repeat(built_up, factor, axis=0), factor, axis=1) if factor > 1 else built_up
        east, north, up = sources.evaluate_source(kind, params, x / scale, y / scale, built_up=fine_built)
        los = block_mean(
            geometry.project_to_los(
                east, north, up, look["incidence_deg"], look["heading_deg"], looking=look.get("looking", "right")
            ),
            factor,
        )
        peak = np.abs(los).max()
        if "peak" in similar and peak > 0:
            los, peak = los * (similar["peak"] / peak), similar["peak"]
        core |= np.abs(los) >= LABEL_FRACTION * peak
        total += los
    return total, core & (np.abs(total) >= LABEL_THRESHOLD)


@dataclass(frozen=True)
class ConditionMode:
    """How a sample's conditions, sources and class are drawn (an entry of :data:`CONDITION_MODES`).

    Attributes
    ----------
    conditions : callable
        ``(rng, hard, cell_size, profile) -> dict`` (:func:`draw_conditions`).
    source : callable
        ``(rng, kind, shape, cell_size) -> (kind, params)`` or ``(kind, params, similarity)``
        (:func:`deformation_field`).
    seen : callable
        ``(deformation, mask, observed, noise_field) -> (cells, extra info)``: the observed cells that make a
        positive (at least :data:`MIN_SEEN`).
    """

    conditions: Callable
    source: Callable
    seen: Callable


def _default_source(rng, kind, shape, cell_size):
    return sources.draw_source(kind, rng, _inner_extent(shape, cell_size))[::-1]


def _seen_observed(deformation, mask, observed, noise_field):
    return int((observed & mask).sum()), {}


def _broad_conditions(rng, hard, cell_size, profile):
    if profile is not None:
        raise ValueError("the broad conditions are not drawn around a profile")
    return broad.draw_conditions(rng, hard=hard, cell_size=cell_size)


CONDITION_MODES = {
    # wide default ranges, or around a fitted profile (the shipped model's data)
    "default": ConditionMode(
        lambda rng, hard, cell_size, profile: draw_conditions(rng, hard=hard, profile=profile),
        _default_source,
        _seen_observed,
    ),
    # issue 18: wider noise, coverage, sizes (scaled with the cell) and rates; positives only where detectable
    "broad": ConditionMode(_broad_conditions, broad.draw_source, broad.seen_cells),
}


def draw_sample(
    rng,
    *,
    shape=(128, 128),
    cell_size=50.0,
    positive=None,
    hard=None,
    profile=None,
    kinds=None,
    conditions="default",
):
    """Draw one synthetic sample.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        Cells, ``(rows, columns)``.
    cell_size : float
        Metres.
    positive : bool, optional
        Whether to place deformation; even odds when not given.
    hard : bool, optional
        For a negative: a hard one (:data:`HARD`); even odds when not given. Ignored for positives.
    profile : dict, optional
        Draw the conditions around this fitted profile (:mod:`defoscan.synth.profile`).
    kinds : sequence of str, optional
        Kinds of source to choose from; all of :data:`defoscan.synth.sources.KINDS` by default.
    conditions : str
        A key of :data:`CONDITION_MODES`: ``default`` or ``broad`` (:mod:`defoscan.synth.broad`).

    Returns
    -------
    Sample
    """
    if conditions not in CONDITION_MODES:
        raise ValueError(f"conditions must be one of {', '.join(CONDITION_MODES)}, got {conditions!r}")
    mode = CONDITION_MODES[conditions]
    if positive is None:
        positive = bool(rng.random() < 0.5)
    hard = (bool(rng.random() < 0.5) if hard is None else bool(hard)) and not positive
    drawn = mode.conditions(rng, hard, cell_size, profile)
    observed, count, coverage_info = _draw_coverage(rng, shape, cell_size, drawn)
    look = geometry.draw_geometry(rng)

    chosen, deformation, mask = [], np.zeros(shape), np.zeros(shape, dtype=bool)
    if positive:
        kinds = tuple(kinds or sources.KINDS)
        n = int(rng.choice([1, 1, 1, 2, 2, 3]))
        for _ in range(MAX_PLACEMENTS):  # place again when nothing of it is seen (all of it in a data gap)
            chosen = [mode.source(rng, str(rng.choice(kinds)), shape, cell_size) for _ in range(n)]
            deformation, mask = deformation_field(chosen, shape, cell_size, look, observed)
            if (observed & mask).sum() >= MIN_SEEN:
                break

    atmosphere = noise.correlated_field(shape, rng, cell_size=cell_size, **drawn["atmosphere"])
    ramp = noise.planar_ramp(shape, rng, max_gradient=drawn["ramp_gradient"], cell_size=cell_size)
    point_noise = noise.white_noise(shape, rng, noise.cell_sigma(drawn["point_noise"], count))
    spike_values, spike_mask = noise.spikes(
        observed,
        rng,
        rate=drawn["spike_rate"],
        amplitude_scale=drawn["spike_scale"],
        tail=drawn["spike_tail"],
    )
    signal = deformation + atmosphere + ramp + point_noise + spike_values
    velocity = np.where(observed, signal, np.nan).astype(np.float32)
    seen, extra = mode.seen(deformation, mask, observed, atmosphere + point_noise)
    info = {
        "label": int(positive and seen >= MIN_SEEN),
        "kinds": sorted({source[0] for source in chosen}),
        "sources": [_source_record(*source) for source in chosen],
        "geometry": look,
        "conditions": drawn,
        "coverage": coverage_info,
        "hard": hard,
        "cell_size": float(cell_size),
        "shape": [int(s) for s in shape],
        "seen_cells": seen,
        "peak_deformation": float(np.abs(deformation).max()) if chosen else 0.0,
        **extra,
    }
    if conditions != "default":
        info["conditions_mode"] = conditions
    return Sample(
        velocity=velocity,
        count=np.where(observed, count, 0).astype(np.int32),
        deformation=deformation.astype(np.float32),
        mask=mask,
        spikes=spike_mask,
        label=info["label"],
        info=info,
    )


def _source_record(kind, params, similarity=None):
    """A source as the sample's info holds it: kind, parameters and (``broad``) its similarity."""
    return {"kind": kind, "params": params, **(similarity or {})}


def _inner_extent(shape, cell_size, margin=0.1):
    """``(west, east, south, north)`` of the grid of :func:`cell_centres`, shrunk by ``margin`` on each side."""
    width, height = shape[1] * cell_size, shape[0] * cell_size
    return (margin * width, (1 - margin) * width, -(1 - margin) * height, -margin * height)


def _draw_coverage(rng, shape, cell_size, conditions):
    if conditions.get("coverage_params") is not None:
        mask, count = coverage_model.clustered_coverage(
            shape, rng, coverage=conditions["coverage"], cell_size=cell_size, **conditions["coverage_params"]
        )
        info = {"source": "model", "coverage": conditions["coverage"], "params": conditions["coverage_params"]}
        return mask, count, info
    mask, count, info = coverage_model.draw_coverage(rng, shape, cell_size, coverage=conditions.get("coverage"))
    return mask, count, info
