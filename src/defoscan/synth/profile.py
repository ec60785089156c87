"""The profile of a real velocity map, and synthetic conditions drawn around it (the paper's enhancement (ii)).

A *profile* is a small JSON-serialisable dict that says what a real gridded map looks like away from deformation,
in the terms the synthetic generator (:mod:`defoscan.synth.sample`) draws from, so that training maps can be made
that look like it:

- **coverage**: :func:`defoscan.synth.coverage.coverage_statistics`, the clustered model's parameters fitted to the
  mask (:func:`defoscan.synth.coverage.fit_clustered_coverage`, plus the ``max_density`` that gives the real map's
  points per cell) and the points per cell with data;
- **spikes**: the project's despiker (:func:`defoscan.despike.despike_grid`) finds them; their sizes
  (``|value - median of the other cells in its window|``) are fitted to the Pareto model of
  :func:`defoscan.synth.noise.spikes`, the minimum where the sizes above it look Pareto (the removals just past
  the despiker's threshold are mostly noise outliers), the tail index by maximum likelihood; the rate is the
  share of observed cells holding a spike above that minimum;
- **noise**: spikes out, localised signals masked (:func:`signal_mask`), the best-fit plane removed (the ramp),
  then the empirical variogram (:func:`defoscan.synth.variogram.empirical_variogram`) and the fit of the noise
  model with point noise that depends on the points per cell (:func:`fit_noise_variogram`);
- **velocity**: quantiles of the map, to compare real and synthetic maps.

The estimates are then *calibrated*: synthetic maps drawn around the profile are measured the same way, and the
practical range, the noise's amplitude and the spikes corrected so that their median measures what the real map
measures (:func:`fit_profile`, Notes). :func:`draw_conditions` draws the conditions of one sample around a profile,
in the form of :func:`defoscan.synth.sample.draw_conditions`; :func:`save_profile` and :func:`load_profile` keep a
profile on disk. Velocities in mm/yr, lengths in metres, grids north-up (row 0 is the north edge). Measured
figures are in ``docs/synth-profile.md``.
"""

import json
import math
import os
import warnings

import numpy as np
import xarray as xr
from scipy import fft, ndimage, optimize

from defoscan.atomic import atomic_path
from defoscan.despike import despike_grid
from defoscan.robust import robust_sigma
from defoscan.synth.coverage import clustered_coverage, coverage_statistics, fit_clustered_coverage
from defoscan.synth.noise import cell_sigma, correlated_field, planar_ramp, practical_range, white_noise
from defoscan.synth.noise import spikes as draw_spikes
from defoscan.synth.sample import draw_sample
from defoscan.synth.variogram import empirical_variogram, median_surface

VERSION = 1
QUANTILES = (1, 5, 25, 50, 75, 95, 99)  # per cent: the velocity histogram's summary
COUNT_QUANTILES = (5, 25, 50, 75, 95)  # per cent: points per cell with data

# Localised signals (signal_mask).
SIGNAL_SCALE = 3000.0  # m: block side of the background median; deformation areas are mostly smaller
SIGNAL_K = 6.0  # robust sigmas of the local departure from the background that seed a signal area ...
SIGNAL_GROW = 2.0  # ... and that it grows through
SIGNAL_MIN_CELLS = 4  # cells beyond SIGNAL_K a seed needs (a lone cell is a sparse cell's noise)
SIGNAL_SMOOTH = 1.5  # cells: Gaussian sigma of the local mean that averages the point noise down
SIGNAL_DILATE = 3  # cells: the mask's last growth (the local mean's blur, and a margin)

# Variogram.
N_BINS = 30  # lag bins of the empirical variogram (its default)
ALPHA_BOUNDS = (0.5, 2.0)  # fitted and drawn alpha: from noise.atmosphere_ranges' rough end to the Gaussian
SMALL_MAP = 128  # cells: maps with a shorter side take the variogram to half the side, not a quarter

# Spikes.
MIN_SPIKES_FOR_TAIL = 10  # fewer removed cells: the tail index is not estimated (DEFAULT_TAIL)
DEFAULT_TAIL = 2.0
TAIL_BOUNDS = (0.5, 10.0)
MAX_MINIMA = 200  # candidate Pareto minima tried, spread over the sorted sizes
DESPIKE_FLOOR = 2.0  # mm/yr: despike_grid's min_residual, the smallest spike it removes

# Coverage.
COVERAGE_WINDOW = 128  # cells: the clustered model is fitted on a window this size at most (cost grows with area)

# Calibration (fit_profile's calibrate).
CALIBRATION_DRAWS = (12, 64)  # synthetic maps measured: at least, at most ...
CALIBRATION_CELLS = 4_000_000  # ... as many as make this many cells (small maps are cheap and noisy: more draws)
CALIBRATION_LIMIT = 4.0  # largest correction factor
AMPLITUDE_TOLERANCE = (0.25, 0.3)  # relative errors of the sill and the IQR that weigh alike in the amplitude
CALIBRATION_ROUNDS = 2  # at most; a second only when the first moved the range or the sill by more than ...
CALIBRATION_SETTLED = 0.1  # ... this
NOISE_MEASURES = ("sigma", "length", "alpha", "nugget", "sill", "practical_range", "point_noise")
SPIKE_MEASURES = ("rate", "scale", "tail")

# Spreads of the conditions drawn around a profile (draw_conditions): standard deviations of the log of a factor
# (log-normal, median 1) for scale parameters, half-widths of a uniform shift for the others.
SPREAD = {
    "sigma": 0.15,  # the atmosphere's standard deviation; its variance varies twice as much (0.3)
    "length": 0.2,
    "alpha": 0.15,  # uniform shift, result kept in ALPHA_BOUNDS
    "point_noise": 0.2,
    "ramp_gradient": 0.3,
    "spike_rate": 0.3,
    "spike_scale": 0.2,
    "spike_tail": 0.2,
    "coverage": 0.1,  # normal shift on the logit scale (see _perturb_share)
    "coverage_scale": 0.2,  # the clustered model's scale, speckle and landuse
    "voids": 0.05,  # uniform shift, result kept in [0, 0.75]
}
# Hard negatives: factors drawn log-uniformly in these ranges on top of the spread, towards what a detector trained
# on clean maps mistakes for deformation: stronger atmosphere in blobs the size of deformation, steeper ramps, more
# spikes.
HARD = {
    "sigma": (1.5, 3.0),
    "length": (1 / 3, 1.0),
    "ramp_gradient": (1.5, 3.0),
    "spike_rate": (1.5, 3.0),
}

_FIELDS = {  # what load_profile checks, part by part
    "coverage": ("coverage", "statistics", "model", "count_mean", "count_harmonic_mean", "count_quantiles"),
    "spikes": ("rate", "scale", "tail", "removed", "removed_rate", "observed", "measured"),
    "noise": (*NOISE_MEASURES, "ramp_gradient", "ramp_azimuth", "masked_fraction", "variogram", "measured"),
    "velocity": ("quantiles", "iqr"),
}


def fit_profile(
    velocity,
    count,
    cell_size,
    *,
    name=None,
    fit_coverage=True,
    calibrate=None,
    mask_signals=True,
    max_lag=None,
    seed=0,
):
    """Fit the profile of a gridded real map: coverage, spikes, noise variogram, ramp, velocity histogram.

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D grid, mm/yr, NaN where there is no data; north-up.
    count : numpy.ndarray
        Points per cell (a cell with data and no count counts as 1).
    cell_size : float
        Cell side, m.
    name : str, optional
        Recorded in the profile.
    fit_coverage : bool
        Fit the clustered coverage model (1-3 s, on a window of at most ``COVERAGE_WINDOW`` cells a side). False
        leaves ``coverage["model"]`` None: synthetic coverage then comes from
        :func:`defoscan.synth.coverage.draw_coverage` at the profile's coverage, and the calibration uses the
        real map's cells.
    calibrate : int, optional
        Synthetic maps drawn to calibrate the profile (see below); by default as many as make 4 million cells,
        12 to 64. 0: no calibration (the profile holds the measurements as they come).
    mask_signals : bool
        Mask localised signals before the variogram (False only to measure what they do to it).
    max_lag : float, optional
        Longest variogram lag, m. By default a quarter of the shorter side, half of it on maps under
        ``SMALL_MAP`` cells a side (where a quarter holds too few lags to reach the sill).
    seed : int
        Seed of the random maps drawn by the coverage fit and the calibration: the same inputs and seed give the
        same profile.

    Returns
    -------
    dict
        ``version``, ``name``, ``shape``, ``cell_size``, ``calibration`` and four parts, all JSON-serialisable:

        - ``coverage``: ``coverage``; ``statistics`` (:func:`~defoscan.synth.coverage.coverage_statistics`);
          ``model`` (keyword arguments of :func:`~defoscan.synth.coverage.clustered_coverage`, ``coverage`` and
          ``max_density`` included, or None); ``count_mean``, ``count_harmonic_mean``, ``count_quantiles``
          (``{"5": ..., "95": ...}``, points per cell with data);
        - ``spikes``: ``rate`` (share of observed cells), ``scale`` (the Pareto minimum, mm/yr), ``tail`` (index),
          ``removed`` (cells the despiker removed, spikes and outliers), ``removed_rate``, ``observed``;
        - ``noise``: ``sigma``, ``length``, ``alpha`` (the atmosphere, keyword arguments of
          :func:`defoscan.synth.noise.correlated_field`), ``point_noise`` (one point's noise, mm/yr),
          ``nugget`` (a cell's white noise averaged over the map, ``point_noise * sqrt(mean(1 / count))``),
          ``sill`` (``sigma^2 + nugget^2``, (mm/yr)^2), ``practical_range`` (m), ``ramp_gradient`` (mm/yr per km)
          and ``ramp_azimuth`` (degrees clockwise from north, the direction of steepest rise) of the best-fit
          plane, ``masked_fraction`` (share of observed cells masked as localised signal), ``variogram``
          (``lags``, ``gamma``, ``counts``, ``noise_weight`` of the empirical variogram fitted);
        - ``velocity``: ``quantiles`` (``{"1": ..., "99": ...}``, mm/yr, of the map's cells with data) and ``iqr``.

        ``spikes`` and ``noise`` hold the generator's parameters, calibrated; their ``measured`` entries hold the
        estimates as measured on the map (``rate``, ``scale``, ``tail``; ``sigma`` ... ``point_noise``), which is
        what to compare with the same measurement on a synthetic map. ``calibration`` (None when not calibrated):
        ``draws`` per round and ``rounds``, each with the synthetic maps' ``median`` measurements and the correction
        ``factors`` applied.

    Notes
    -----
    Calibration: ``calibrate`` negative samples are drawn around the profile as training samples are
    (:func:`defoscan.synth.sample.draw_sample`; on the real map's cells and counts when there is no coverage
    model) and measured as the real map was. The practical range (through ``length``, ``alpha`` kept), the spike
    rate and the spike minimum are multiplied by the real map's measurement over the median of the synthetic ones
    (within ``CALIBRATION_LIMIT``; the minimum not below the despiker's 2 mm/yr floor, under which no spike is
    seen). The Gaussian part's amplitude (``sigma`` and the point noise by one factor) is set so that the median
    sill (which scales as its square) and IQR (as itself) both come as close to the real map's as a Gaussian
    field allows: their least-squares compromise, each log error weighed by its tolerance (25 % and 30 %,
    ``AMPLITUDE_TOLERANCE``); a real map heavier-tailed than Gaussian noise (Ustica's EGMS tracks are) cannot
    match both. One step of indirect inference (Gourieroux, Monfort & Renault 1993, J. Appl. Econometrics 8) with
    the median as the binding function: the median synthetic map then measures about what the real map measures.
    It corrects biases measured in ``docs/synth-profile.md``: removing the plane takes the long wavelengths of a
    small map's atmosphere with it, so its variogram flattens early and under-reads the range (Ustica, 68 x 86
    cells: by about 20 %); a real map can be smoother at the pixel scale than the noise model fitted to its
    variogram (Kirishima's MintPy map is), so its 2-3 mm/yr spikes stand out there but hide in a synthetic map's
    roughness (a quarter of them seen); the Pareto minimum is found above the true one, so a map drawn with it and
    the measured rate shows fewer spikes; a small map's sill reads 10-20 % high or low depending on its shape.
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.ndim != 2:
        raise ValueError(f"velocity must be a 2-D grid, got shape {velocity.shape}")
    observed = np.isfinite(velocity)
    if observed.sum() < 16:
        raise ValueError(f"need at least 16 cells with data to fit a profile, got {int(observed.sum())}")
    count = np.where(observed, np.maximum(np.nan_to_num(np.asarray(count, dtype=np.float64)), 1.0), 0.0)
    cell_size = float(cell_size)
    options = {"max_lag": max_lag, "mask_signals": mask_signals}

    spikes, noise = _measure(velocity, count, cell_size, options)
    spikes["measured"] = {key: spikes[key] for key in SPIKE_MEASURES}
    noise["measured"] = {key: noise[key] for key in NOISE_MEASURES}
    quantiles = _quantiles(velocity[observed], QUANTILES)
    profile = {
        "version": VERSION,
        "name": name,
        "shape": [int(s) for s in velocity.shape],
        "cell_size": cell_size,
        "coverage": _coverage_part(observed, count, cell_size, fit=fit_coverage, seed=seed),
        "spikes": spikes,
        "noise": noise,
        "velocity": {"quantiles": quantiles, "iqr": quantiles["75"] - quantiles["25"]},
        "calibration": None,
    }
    if calibrate is None:
        calibrate = int(np.clip(CALIBRATION_CELLS // velocity.size, *CALIBRATION_DRAWS))
    if calibrate:
        _calibrate(profile, observed, count, int(calibrate), np.random.default_rng(seed), options)
    return profile


def _measure(velocity, count, cell_size, options):
    """The spike and noise parts as measured on a map (before any calibration)."""
    despiked, spikes = _spike_part(velocity, count, cell_size)
    return spikes, _noise_part(despiked, count, cell_size, **options)


def _calibrate(profile, observed, count, draws, rng, options):
    """Correct the range, the noise's amplitude and the spikes by simulation, in place (:func:`fit_profile`, Notes)."""
    noise, spikes = profile["noise"], profile["spikes"]
    real = {
        "practical_range": noise["measured"]["practical_range"],
        "sill": noise["measured"]["sill"],
        "iqr": profile["velocity"]["iqr"],
        "rate": spikes["measured"]["rate"],
        "scale": spikes["measured"]["scale"],
    }
    # Every round draws from the same seed (common random numbers): rounds differ by their parameters, not by luck.
    seed = int(rng.integers(2**63))
    rounds = []
    for _ in range(CALIBRATION_ROUNDS):
        rng = np.random.default_rng(seed)
        simulated = [_calibration_measures(profile, observed, count, rng, options) for _ in range(draws)]
        median = {key: float(np.median([sim[key] for sim in simulated])) for key in real}
        factors = {}
        for key, value in real.items():
            factor = value / median[key] if value > 0 and median[key] > 0 else 1.0
            factors[key] = float(np.clip(factor, 1.0 / CALIBRATION_LIMIT, CALIBRATION_LIMIT))
        # One amplitude for the Gaussian part (sigma and point noise together): the sill scales as its square, the
        # IQR as itself. A map heavier-tailed than Gaussian cannot match both, so the amplitude is their least-
        # squares compromise, each log error in units of its tolerance: the x minimising
        # w_sill (2 x - log f_sill)^2 + w_iqr (x - log f_iqr)^2.
        w_sill, w_iqr = (math.log(1.0 + t) ** -2 for t in AMPLITUDE_TOLERANCE)
        log_amplitude = (2 * w_sill * math.log(factors["sill"]) + w_iqr * math.log(factors["iqr"])) / (
            4 * w_sill + w_iqr
        )
        factors["amplitude"] = float(np.clip(math.exp(log_amplitude), 1.0 / CALIBRATION_LIMIT, CALIBRATION_LIMIT))
        for key in ("sigma", "point_noise", "nugget"):
            noise[key] *= factors["amplitude"]
        noise["sill"] = noise["sigma"] ** 2 + noise["nugget"] ** 2
        noise["practical_range"] *= factors["practical_range"]
        noise["length"] = noise["practical_range"] / 3.0 ** (1.0 / noise["alpha"])
        spikes["rate"] = float(min(spikes["rate"] * factors["rate"], 1.0))
        # Spikes under the despiker's floor are never seen: the minimum goes no lower (nor up to it).
        spikes["scale"] = max(spikes["scale"] * factors["scale"], min(DESPIKE_FLOOR, real["scale"]))
        rounds.append({"median": median, "factors": factors})
        # Another round only where this one moved the variogram much: the range and the amplitude interact (a
        # longer range reads as a smaller sill on a small map once the plane is removed).
        moves = (factors["practical_range"], factors["amplitude"] ** 2)
        if max(abs(math.log(f)) for f in moves) < math.log(1.0 + CALIBRATION_SETTLED):
            break
    profile["calibration"] = {"draws": draws, "rounds": rounds}


def _calibration_measures(profile, observed, count, rng, options):
    """What the calibration compares, measured on one map drawn around ``profile``."""
    velocity, counts = _simulate(profile, observed, count, rng)
    spikes, noise = _measure(velocity, counts, profile["cell_size"], options)
    quartiles = np.percentile(velocity[np.isfinite(velocity)], [25, 75])
    return {
        "practical_range": noise["practical_range"],
        "sill": noise["sill"],
        "iqr": float(quartiles[1] - quartiles[0]),
        "rate": spikes["rate"],
        "scale": spikes["scale"],
    }


def _simulate(profile, observed, count, rng):
    """A negative sample drawn around ``profile``: velocity and counts, float64.

    On the real map's cells and counts when the profile holds no coverage model (coverage drawn from the default
    ranges would be anyone's, not the map's).
    """
    cell_size = profile["cell_size"]
    if profile["coverage"]["model"] is not None:
        shape = observed.shape
        sample = draw_sample(rng, shape=shape, cell_size=cell_size, positive=False, hard=False, profile=profile)
        return sample.velocity.astype(np.float64), sample.count.astype(np.float64)
    conditions = draw_conditions(profile, rng)
    field = correlated_field(observed.shape, rng, cell_size=cell_size, **conditions["atmosphere"])
    field += planar_ramp(observed.shape, rng, max_gradient=conditions["ramp_gradient"], cell_size=cell_size)
    field += white_noise(observed.shape, rng, cell_sigma(conditions["point_noise"], count))
    field += draw_spikes(
        observed,
        rng,
        rate=conditions["spike_rate"],
        amplitude_scale=conditions["spike_scale"],
        tail=conditions["spike_tail"],
    )[0]
    return np.where(observed, field, np.nan), count


def _quantiles(values, percents):
    """``{"p": value}`` for each per cent ``p`` (JSON keys are strings)."""
    return {str(p): float(v) for p, v in zip(percents, np.percentile(values, percents), strict=True)}


# --- coverage -----------------------------------------------------------------------------------------------------


def _coverage_part(observed, count, cell_size, *, fit, seed):
    """Coverage statistics, points per cell and (``fit``) the clustered model with its ``max_density``."""
    counts = count[observed]
    harmonic = float(1.0 / np.mean(1.0 / counts))
    model = None
    if fit:
        window = _coverage_window(observed, COVERAGE_WINDOW)
        model = fit_clustered_coverage(window, cell_size, seed=seed)
        model["max_density"] = _fit_max_density(window.shape, cell_size, model, harmonic, seed)
        model["coverage"] = float(observed.mean())
    return {
        "coverage": float(observed.mean()),
        "statistics": coverage_statistics(observed, cell_size),
        "model": model,
        "count_mean": float(counts.mean()),
        "count_harmonic_mean": harmonic,
        "count_quantiles": _quantiles(counts, COUNT_QUANTILES),
    }


def _coverage_window(observed, side):
    """The ``side`` x ``side`` window (at most) whose coverage is nearest the whole mask's (the first on ties)."""
    rows, cols = observed.shape
    h, w = min(rows, side), min(cols, side)
    if (h, w) == (rows, cols):
        return observed
    target = observed.mean()
    best, box = np.inf, (0, 0)
    for r0 in sorted({*range(0, rows - h + 1, max(1, h // 2)), rows - h}):
        for c0 in sorted({*range(0, cols - w + 1, max(1, w // 2)), cols - w}):
            gap = abs(observed[r0 : r0 + h, c0 : c0 + w].mean() - target)
            if gap < best:
                best, box = gap, (r0, c0)
    return observed[box[0] : box[0] + h, box[1] : box[1] + w]


def _fit_max_density(shape, cell_size, params, harmonic, seed, *, draws=2, steps=12):
    """The ``max_density`` (points per km^2) whose model maps have the real harmonic mean of points per cell.

    The harmonic mean, because a cell's noise variance is ``point_noise^2 / count``: it is what the nugget sees.
    The saturation changes the counts only, and never lowers them as it rises, so the same seeds give the same
    masks for every candidate and a bisection (on the log, from 0.001 to 1000 extra points per cell) finds it.
    """

    def harmonic_mean(density):
        inverse = []
        for i in range(draws):
            rng = np.random.default_rng(seed + i)
            mask, counts = clustered_coverage(shape, rng, cell_size=cell_size, **{**params, "max_density": density})
            inverse.append(np.mean(1.0 / counts[mask]))
        return 1.0 / float(np.mean(inverse))

    cell_km2 = (cell_size / 1000.0) ** 2
    low, high = math.log(1e-3 / cell_km2), math.log(1e3 / cell_km2)
    for _ in range(steps):
        middle = 0.5 * (low + high)
        if harmonic_mean(math.exp(middle)) < harmonic:
            low = middle
        else:
            high = middle
    return float(math.exp(0.5 * (low + high)))


# --- spikes -------------------------------------------------------------------------------------------------------


def _spike_part(velocity, count, cell_size):
    """Despike with the project's despiker; the spike rate and the Pareto fit of the removed cells' sizes."""
    rows, cols = velocity.shape
    grid = xr.Dataset(
        {
            "velocity": (("y", "x"), velocity.astype(np.float32)),
            "count": (("y", "x"), count.astype(np.int32)),
        },
        coords={"y": -(np.arange(rows) + 0.5) * cell_size, "x": (np.arange(cols) + 0.5) * cell_size},
    )
    _, flags = despike_grid(grid)
    removed = flags.values
    observed = int(np.isfinite(velocity).sum())
    sizes = _spike_sizes(velocity, removed, int(flags.attrs["window"]))
    scale, tail, outliers = pareto_fit(sizes, fallback_scale=max(4.0 * (flags.attrs["sigma_mm_yr"] or 0.0), 2.0))
    spikes = {
        "rate": float((removed.sum() - outliers) / observed),
        "scale": scale,
        "tail": tail,
        "removed": int(removed.sum()),
        "removed_rate": float(removed.sum() / observed),
        "observed": observed,
    }
    return np.where(removed, np.nan, velocity), spikes


def _spike_sizes(velocity, removed, window):
    """``|value - median of the other cells with data in its window|`` of each removed cell, mm/yr."""
    half = window // 2
    padded = np.pad(velocity, half, constant_values=np.nan)
    rows, cols = np.nonzero(removed)
    dy, dx = np.divmod(np.arange(window * window), window)
    keep = (dy != half) | (dx != half)
    near = padded[rows[:, None] + dy[keep], cols[:, None] + dx[keep]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a removed cell has neighbours: the despiker judged it
        return np.abs(velocity[rows, cols] - np.nanmedian(near, axis=1))


def pareto_fit(sizes, *, fallback_scale=2.0):
    """Pareto minimum and tail index of spike sizes, the minimum where the sizes above it look Pareto.

    The despiker's removals mix spikes, whose sizes follow the Pareto of :func:`defoscan.synth.noise.spikes`,
    and noise outliers just past its threshold (cells of one point in a map whose other cells average many, where
    the map's 4 sigmas are only 2-3 of their own). The outliers pile up at the low end, so the minimum is neither
    the smallest size nor a fixed low quantile: it is the candidate (one of the sizes, at most ``MAX_MINIMA`` of
    them, each with at least ``MIN_SPIKES_FOR_TAIL`` sizes from it up) whose Pareto fit of the sizes above is
    closest in the Kolmogorov-Smirnov distance (Clauset, Shalizi & Newman 2009, SIAM Review 51(4)). The tail index
    is the maximum likelihood estimate above it, ``(n - 1) / sum(log(x / minimum))`` (Hill 1975; ``n - 1`` makes
    it unbiased), kept in ``TAIL_BOUNDS``.

    Parameters
    ----------
    sizes : numpy.ndarray
        Spike sizes, mm/yr (non-finite and non-positive ones ignored).
    fallback_scale : float
        The minimum when there are no sizes.

    Returns
    -------
    scale : float
        Pareto minimum, mm/yr.
    tail : float
        Tail index; ``DEFAULT_TAIL`` with fewer than ``MIN_SPIKES_FOR_TAIL`` sizes.
    outliers : int
        Sizes below the minimum: outliers, not spikes.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    sizes = np.sort(sizes[np.isfinite(sizes) & (sizes > 0)])
    n = sizes.size
    if n < MIN_SPIKES_FOR_TAIL:
        return (float(sizes[0]) if n else float(fallback_scale)), DEFAULT_TAIL, 0
    last = n - MIN_SPIKES_FOR_TAIL
    best = (np.inf, 0, DEFAULT_TAIL)
    for i in np.unique(np.linspace(0, last, min(MAX_MINIMA, last + 1)).astype(int)):
        logs = np.log(sizes[i:] / sizes[i])
        if logs.sum() <= 0:
            continue
        m = logs.size
        tail = (m - 1) / float(logs.sum())
        model = 1.0 - np.exp(-tail * logs)  # the Pareto's distribution function at each size
        below = np.arange(m) / m  # the empirical one just below and just above each size
        distance = float(max(np.max(np.abs(model - below)), np.max(np.abs(model - below - 1.0 / m))))
        if distance < best[0]:
            best = (distance, int(i), tail)
    _, index, tail = best
    return float(sizes[index]), float(np.clip(tail, *TAIL_BOUNDS)), index


# --- noise --------------------------------------------------------------------------------------------------------


def _noise_part(despiked, count, cell_size, *, max_lag, mask_signals):
    """Localised signals masked, the plane removed, then the variogram fitted with count-dependent point noise."""
    rows, cols = despiked.shape
    kept = np.isfinite(despiked)
    signal = signal_mask(despiked, cell_size) if mask_signals else np.zeros(despiked.shape, dtype=bool)
    clean = np.where(signal, np.nan, despiked)
    plane, gradient, azimuth = _plane(clean, cell_size)
    residual = clean - plane
    if max_lag is None:
        max_lag = (0.25 if min(rows, cols) >= SMALL_MAP else 0.5) * min(rows, cols) * cell_size
    lags, gamma, pairs = empirical_variogram(residual, cell_size, max_lag=max_lag, n_bins=N_BINS)
    good = np.isfinite(residual)
    inverse = np.where(good, 1.0 / np.where(good, count, 1.0), 0.0)
    weights = _pair_means(good, inverse, cell_size, max_lag, N_BINS)
    fit = fit_noise_variogram(lags, gamma, pairs, weights, cell_size=cell_size)
    nugget = fit["point_noise"] * math.sqrt(float(inverse[good].mean()))
    return {
        "sigma": fit["sigma"],
        "length": fit["length"],
        "alpha": fit["alpha"],
        "nugget": nugget,
        "sill": fit["sigma"] ** 2 + nugget**2,
        "practical_range": float(practical_range(fit["length"], fit["alpha"])),
        "point_noise": fit["point_noise"],
        "ramp_gradient": gradient,
        "ramp_azimuth": azimuth,
        "masked_fraction": float((signal & kept).sum() / max(int(kept.sum()), 1)),
        "variogram": {
            "lags": lags.tolist(),
            "gamma": gamma.tolist(),
            "counts": pairs.tolist(),
            "noise_weight": weights.tolist(),
        },
    }


def _plane(values, cell_size):
    """Least-squares plane through the cells with data: the plane, its gradient (mm/yr per km) and azimuth."""
    rows, cols = values.shape
    # Easting and northing in km from the centre; northing falls with the row (north-up).
    x = np.broadcast_to((np.arange(cols) - (cols - 1) / 2.0)[None, :] * cell_size / 1000.0, values.shape)
    y = np.broadcast_to(-(np.arange(rows) - (rows - 1) / 2.0)[:, None] * cell_size / 1000.0, values.shape)
    good = np.isfinite(values)
    design = np.column_stack([np.ones(good.sum()), x[good], y[good]])
    (offset, east, north), *_ = np.linalg.lstsq(design, values[good], rcond=None)
    gradient = float(np.hypot(east, north))
    azimuth = float(np.degrees(np.arctan2(east, north)) % 360.0)
    return offset + east * x + north * y, gradient, azimuth


def _pair_means(mask, a, cell_size, max_lag, n_bins):
    """Mean of ``(a_i + a_j) / 2`` over the pairs of cells of ``mask`` in each bin of :func:`empirical_variogram`.

    The same lags, bins and FFT correlations as :func:`defoscan.synth.variogram.empirical_variogram` (so the
    non-empty bins are the same): the pairs at lag ``h`` are the autocorrelation of the mask, the sum of ``a`` over
    their far ends the cross-correlation of the mask and ``mask * a``; a bin holds ``h`` and ``-h`` alike, so the
    mean of the far ends is the mean of both ends.
    """
    rows, cols = mask.shape
    lag_y = min(int(np.floor(max_lag / cell_size)), rows - 1)
    lag_x = min(int(np.floor(max_lag / cell_size)), cols - 1)
    grid = (fft.next_fast_len(rows + lag_y, real=True), fft.next_fast_len(cols + lag_x, real=True))
    m = mask.astype(np.float64)
    f_m, f_a = fft.rfft2(m, s=grid), fft.rfft2(m * a, s=grid)
    pairs = fft.irfft2(np.conj(f_m) * f_m, s=grid)
    ends = fft.irfft2(np.conj(f_m) * f_a, s=grid)
    iy = np.r_[grid[0] - lag_y : grid[0], 0 : lag_y + 1]
    ix = np.r_[grid[1] - lag_x : grid[1], 0 : lag_x + 1]
    pairs, ends = np.rint(pairs[np.ix_(iy, ix)]), ends[np.ix_(iy, ix)]
    distance = cell_size * np.hypot(np.arange(-lag_y, lag_y + 1)[:, None], np.arange(-lag_x, lag_x + 1)[None, :])
    edges = np.geomspace(cell_size, max(max_lag, cell_size * 1.000001), n_bins + 1)
    edges[0] = 0.999 * cell_size
    keep = (distance > 0) & (distance <= edges[-1]) & (pairs > 0)
    which = np.searchsorted(edges, distance[keep], side="left") - 1
    counts = np.bincount(which, weights=pairs[keep], minlength=n_bins)
    total = np.bincount(which, weights=ends[keep], minlength=n_bins)
    full = counts > 0
    return total[full] / counts[full]


def fit_noise_variogram(lags, gamma, counts, noise_weight, *, cell_size=None):
    """Fit the noise model, with point noise that depends on the points per cell, to an empirical variogram.

    A cell averaging ``c`` points of noise ``point_noise`` has noise ``point_noise / sqrt(c)``, so the white part
    of the variogram at lag ``h`` is ``point_noise^2`` times the mean of ``(1/c_i + 1/c_j) / 2`` over the pairs at
    that lag, ``noise_weight``: not a constant nugget. Points cluster, and the pairs at short lags lie mostly in
    dense clusters, whose cells average many points: a constant nugget fitted there is too small for the map, and
    the white noise of the sparse cells, which enters the longer lags, is read as correlated signal (measured on
    16 maps of known noise, 30 % clustered coverage: the constant nugget 11-12 % low in the median, this fit's
    point noise within 2 %; the atmosphere's variance 3-5 % nearer the truth). The model is

        gamma(h) = sigma^2 (1 - exp(-(h / length)^alpha)) + point_noise^2 * noise_weight(h),

    fitted as :func:`defoscan.synth.variogram.fit_variogram` fits its own (weighted least squares on
    ``sqrt(N_j) (gamma_j / model_j - 1)``, Cressie 1985; three starting ``alpha``), with an analytic Jacobian,
    ``alpha`` in ``ALPHA_BOUNDS`` (below 0.5 the practical range of a small map's fit ran to kilometres beyond the
    map) and the white part at most the shortest lag's semivariance (a gridded MintPy map is smoother at one cell
    than a stable model with a nugget: on Kirishima, unbounded, the nugget's variance came out at three times the
    first lag's semivariance, and synthetic maps were rougher than the real one). With one point per cell
    (``noise_weight`` 1) it is the constant-nugget model.

    Parameters
    ----------
    lags, gamma, counts : numpy.ndarray
        As returned by :func:`defoscan.synth.variogram.empirical_variogram`.
    noise_weight : numpy.ndarray
        Mean of ``(1/c_i + 1/c_j) / 2`` over each bin's pairs.
    cell_size : float, optional
        Cell side, m: the lower bound of ``length`` (the shortest lag when not given).

    Returns
    -------
    dict
        ``sigma`` (mm/yr), ``length`` (m), ``alpha``, ``point_noise`` (mm/yr, one point's noise).
    """
    lags, gamma, counts, noise_weight = (np.asarray(a, dtype=np.float64) for a in (lags, gamma, counts, noise_weight))
    ok = (counts > 0) & np.isfinite(gamma) & (lags > 0) & (noise_weight > 0)
    lags, gamma, counts, noise_weight = lags[ok], gamma[ok], counts[ok], noise_weight[ok]
    if lags.size < 4:
        raise ValueError(f"need at least 4 lag bins with pairs to fit 4 parameters, got {lags.size}")
    weight = np.sqrt(counts)
    scale = max(float(gamma.max()), 1e-12)
    floor = 1e-9 * scale  # keeps the model, the residuals' denominator, away from zero

    def model_of(p):
        sill, length, alpha, white = p
        u = (lags / length) ** alpha
        e = np.exp(-u)
        return np.maximum(sill * (1.0 - e) + white * noise_weight, floor), u, e

    def residuals(p):
        return weight * (gamma / model_of(p)[0] - 1.0)

    def jacobian(p):
        sill, length, alpha, _ = p
        model, u, e = model_of(p)
        d_model = np.column_stack(
            [1.0 - e, -sill * e * u * alpha / length, sill * e * u * np.log(lags / length), noise_weight]
        )
        return (-weight * gamma / model**2)[:, None] * d_model

    shortest = cell_size if cell_size is not None else lags.min()
    lower = [floor, shortest, ALPHA_BOUNDS[0], 0.0]
    upper = [10.0 * scale, 3.0 * lags.max(), ALPHA_BOUNDS[1], max(float(gamma[0]), 2 * floor) / noise_weight[0]]
    # Start: sill from the last third of the bins, white part a tenth of the first bin, length where 63 % is reached.
    sill0 = float(np.median(gamma[-max(1, lags.size // 3) :]))
    white0 = 0.1 * min(float(gamma[0]), sill0)
    reached = np.flatnonzero(gamma >= white0 + 0.63 * (sill0 - white0))
    length0 = float(np.clip(lags[reached[0]] if reached.size else lags.max(), lower[1] * 1.01, upper[1] * 0.99))
    best = None
    for alpha0 in (0.5, 1.0, 1.5):
        start = np.clip([max(sill0 - white0, 2 * floor), length0, alpha0, white0 / noise_weight[0]], lower, upper)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = optimize.least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), x_scale="jac")
        if best is None or fit.cost < best.cost:
            best = fit
    sill, length, alpha, white = best.x
    return {
        "sigma": float(np.sqrt(sill)),
        "length": float(length),
        "alpha": float(alpha),
        "point_noise": float(np.sqrt(white)),
    }


def signal_mask(values, cell_size, *, scale=SIGNAL_SCALE, k=SIGNAL_K, grow=SIGNAL_GROW, smooth=SIGNAL_SMOOTH):
    """Cells of localised signals (deformation), which must not be read as atmosphere: masked before the variogram.

    A local mean (Gaussian, ``smooth`` cells, of the cells with data only) averages the point noise down, so that
    a signal a few cells wide stands out; a background median surface (blocks of ``scale`` metres, at most a third
    of the map's longer side, NaN-aware, interpolated bilinearly) follows the atmosphere's long wavelengths and the
    ramp, not a signal much smaller than a block. Their difference is measured in robust sigmas (``1.4826 * MAD``
    over the map). An area of at least ``SIGNAL_MIN_CELLS`` cells beyond ``k`` sigmas is a signal; it is grown
    through the connected cells beyond ``grow`` sigmas (hysteresis, also across the gaps between the cells with
    data, where the local mean reaches: a bowl's flanks go with its centre even in a sparse area), then by
    ``SIGNAL_DILATE`` cells. Twice: the second pass takes the background without the first pass's signals, which
    pulled its medians.

    Atmosphere alone reached 3.7-6.6 sigmas (8 maps of 256 x 256 cells with ``L`` = 1 km, the highest on lone
    sparse cells), bowls of 40 mm/yr 10-17, Kirishima's crater 19: with ``k`` = 6 little atmosphere is taken, and
    a signal weaker than that stays and adds to the fitted sill what it adds to the map.

    Parameters
    ----------
    values : numpy.ndarray
        2-D grid, mm/yr, NaN where there is no data; spikes already removed (a spike smoothed is a blob).
    cell_size : float
        Cell side, m.
    scale : float
        Block side of the background median, m: larger than the signals to mask.
    k, grow : float
        Seed and growth thresholds, robust sigmas.
    smooth : float
        Gaussian sigma of the local mean, cells.

    Returns
    -------
    numpy.ndarray of bool
        True on the cells with data that belong to a localised signal.
    """
    values = np.asarray(values, dtype=np.float64)
    observed = np.isfinite(values)
    weight = ndimage.gaussian_filter(observed.astype(np.float64), smooth, mode="constant")
    total = ndimage.gaussian_filter(np.where(observed, values, 0.0), smooth, mode="constant")
    local = total / np.maximum(weight, 1e-12)
    reach = weight >= 0.05  # cells with data within about two smoothing sigmas
    scale = min(scale, max(values.shape) * cell_size / 3.0)
    eight = np.ones((3, 3), dtype=bool)
    mask = np.zeros(values.shape, dtype=bool)
    for _ in range(2):
        departure = local - median_surface(np.where(mask, np.nan, values), cell_size, scale)
        sigma = robust_sigma(departure[observed & ~mask])
        if not np.isfinite(sigma) or sigma == 0:
            break
        z = np.where(reach, np.abs(departure) / sigma, 0.0)
        labels, n = ndimage.label(z > grow, structure=eight)
        seeded = np.bincount(labels[z > k], minlength=n + 1) >= SIGNAL_MIN_CELLS
        seeded[0] = False
        mask = seeded[labels]
        if mask.any():
            mask = ndimage.binary_dilation(mask, structure=eight, iterations=SIGNAL_DILATE)
    return mask & observed


# --- drawing around a profile -------------------------------------------------------------------------------------


def draw_conditions(profile, rng, *, hard=False):
    """Conditions of one synthetic sample drawn around a profile: the real map and a neighbourhood of it.

    Scale parameters take a log-normal factor of median 1 (``SPREAD``, the log's standard deviation): 0.15 for
    the atmosphere's sigma (so 0.3 for its variance), 0.2 for its length, the point noise, the spike size and
    tail, 0.3 for the spike rate and the ramp. ``alpha`` is shifted uniformly in [-0.15, 0.15] (kept in
    ``ALPHA_BOUNDS``). The coverage is shifted on the logit scale (standard deviation 0.1: about 10 % for a
    sparse map; for a dense one the empty share varies by as much, and the coverage never reaches 1). The
    clustered model's ``scale``, ``speckle`` and ``landuse`` take a log-normal factor (0.2), ``voids`` a shift in
    [-0.05, 0.05]. The ramp's largest gradient (the gradient drawn is uniform below it) is the profile's, which
    holds the atmosphere's own tilt as well as any orbit ramp. ``hard=True`` then multiplies (log-uniform factors,
    ``HARD``) the atmosphere's sigma by 1.5-3 and its length by 1/3-1 (blobs the size of deformation), the ramp
    and the spike rate by 1.5-3.

    Parameters
    ----------
    profile : dict
        From :func:`fit_profile` or :func:`load_profile`.
    rng : numpy.random.Generator
    hard : bool
        A hard negative's conditions.

    Returns
    -------
    dict
        ``atmosphere`` (``sigma``, ``length``, ``alpha``), ``point_noise``, ``ramp_gradient``, ``spike_rate``,
        ``spike_scale``, ``spike_tail``, ``coverage`` and ``coverage_params`` (keyword arguments of
        :func:`defoscan.synth.coverage.clustered_coverage` but ``coverage``, or None when the profile holds no
        coverage model): the form of :func:`defoscan.synth.sample.draw_conditions`.
    """
    noise, spikes, coverage = profile["noise"], profile["spikes"], profile["coverage"]

    def factor(name):
        return float(np.exp(SPREAD[name] * rng.standard_normal()))

    atmosphere = {
        "sigma": noise["sigma"] * factor("sigma"),
        "length": noise["length"] * factor("length"),
        "alpha": float(np.clip(noise["alpha"] + rng.uniform(-SPREAD["alpha"], SPREAD["alpha"]), *ALPHA_BOUNDS)),
    }
    conditions = {
        "atmosphere": atmosphere,
        "point_noise": noise["point_noise"] * factor("point_noise"),
        "ramp_gradient": noise["ramp_gradient"] * factor("ramp_gradient"),
        "spike_rate": float(min(spikes["rate"] * factor("spike_rate"), 1.0)),
        "spike_scale": spikes["scale"] * factor("spike_scale"),
        "spike_tail": spikes["tail"] * factor("spike_tail"),
        "coverage": _perturb_share(coverage["coverage"], SPREAD["coverage"], rng),
        "coverage_params": None,
    }
    model = coverage.get("model")
    if model is not None:
        params = {key: value for key, value in model.items() if key != "coverage"}
        for key in ("scale", "speckle", "landuse"):
            if key in params:
                params[key] = params[key] * factor("coverage_scale")
        if "voids" in params:
            shift = rng.uniform(-SPREAD["voids"], SPREAD["voids"])
            params["voids"] = float(np.clip(params["voids"] + shift, 0.0, 0.75))
        conditions["coverage_params"] = params
    if hard:

        def push(name):
            return float(np.exp(rng.uniform(*np.log(HARD[name]))))

        atmosphere["sigma"] *= push("sigma")
        atmosphere["length"] *= push("length")
        conditions["ramp_gradient"] *= push("ramp_gradient")
        conditions["spike_rate"] = float(min(conditions["spike_rate"] * push("spike_rate"), 1.0))
    return conditions


def _perturb_share(share, spread, rng):
    """A share in (0, 1) shifted by a normal amount of standard deviation ``spread`` on the logit scale.

    The logit of a small share is about its log, so a sparse map's coverage varies log-normally; near 1 the empty
    share does instead (a dense map's gaps), and the result never reaches 1.
    """
    share = float(np.clip(share, 1e-6, 1 - 1e-6))
    logit = math.log(share / (1.0 - share)) + spread * rng.standard_normal()
    return float(1.0 / (1.0 + math.exp(-logit)))


# --- on disk ------------------------------------------------------------------------------------------------------


def save_profile(profile, path):
    """Write a profile as JSON, atomically (a temporary file in the same directory, then renamed).

    Parameters
    ----------
    profile : dict
        From :func:`fit_profile`.
    path : str or os.PathLike

    Raises
    ------
    ValueError
        If ``profile`` is not a profile (see :func:`load_profile`); nothing is written.
    """
    path = os.fspath(path)
    _validate(profile, path)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as out:
        json.dump(profile, out, indent=1, sort_keys=True, allow_nan=False)
        out.write("\n")


def load_profile(path):
    """Read a profile written by :func:`save_profile`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If the file is not JSON, or not a profile of this version with all its parts and fields, or a noise or
        spike parameter is not a finite number >= 0: the message names the file and what is wrong.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            profile = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a profile: invalid JSON ({error})") from None
    _validate(profile, path)
    return profile


def _validate(profile, path):
    """Raise ValueError unless ``profile`` is a profile of this version with every field."""
    if not isinstance(profile, dict):
        raise ValueError(f"{path}: not a profile: expected a JSON object, got {type(profile).__name__}")
    if profile.get("version") != VERSION:
        raise ValueError(f"{path}: profile version {profile.get('version')!r}; this defoscan reads version {VERSION}")
    for part, fields in _FIELDS.items():
        if not isinstance(profile.get(part), dict):
            raise ValueError(f"{path}: not a profile: no {part!r} part")
        missing = [field for field in fields if field not in profile[part]]
        if missing:
            raise ValueError(f"{path}: not a profile: the {part!r} part lacks {', '.join(missing)}")
    numbers = [("noise", field) for field in ("sigma", "length", "alpha", "point_noise", "ramp_gradient")]
    numbers += [("spikes", field) for field in SPIKE_MEASURES] + [("coverage", "coverage")]
    for part, field in numbers:
        value = profile[part][field]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise ValueError(f"{path}: not a profile: {part}.{field} must be a finite number >= 0, got {value!r}")
    if not 0 < profile["coverage"]["coverage"] <= 1:
        raise ValueError(
            f"{path}: not a profile: coverage.coverage must be in (0, 1], got {profile['coverage']['coverage']}"
        )
