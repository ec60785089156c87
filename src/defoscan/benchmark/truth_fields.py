"""Synthetic velocity maps with a known truth, for measuring the stages that repair a map (fill, despike).

A map is built from parts, each a plain function of a shape and a ``numpy.random.Generator`` (randomness only
through an explicit seed, so the same seed gives the same map):

- :func:`smooth_background`: what a velocity map holds away from deformation: a planar ramp (orbit, reference)
  plus a power-law Gaussian random field (residual atmosphere, slow regional motion), spectrum
  ``(k^2 + k0^2)^(-beta/2)``: large scales dominate, small scales are weak but present.
- :func:`bowls`: localised deformation: Mogi-like bowls, ``a / (1 + r^2)^1.5`` with ``r`` the elliptical distance
  in units of the bowl radius, mostly subsidence; returns the field and the mask of the deformation areas.
- :func:`clustered_mask`: where the map has data: persistent scatterers cluster in towns and on rock and are rare
  on fields and forest, so the mask is the top ``coverage`` of a score mixing a smooth random field (the
  clusters) and per-cell noise (the speckle inside and around them).
- :func:`point_counts`: points behind each observed cell, denser inside clusters.
- :func:`add_spikes`: isolated outliers (unwrapping errors, a bad scatterer) on observed cells.

:func:`synthetic_map` puts them together as a gridded map would be seen, with the truth kept beside it.
Lengths are in cells, velocities in mm/yr.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def smooth_background(shape, rng, *, amplitude=2.0, beta=3.0, outer_scale=256.0, ramp=2.0):
    """A smooth, spatially correlated background: a planar ramp plus a power-law Gaussian random field.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    rng : numpy.random.Generator
    amplitude : float
        Standard deviation of the random field, mm/yr.
    beta : float
        Spectral exponent: power ``(k^2 + k0^2)^(-beta/2)``; larger is smoother (3 is between a membrane and a
        thin plate; tropospheric delay is about 8/3).
    outer_scale : float
        Cells: ``k0 = 1 / outer_scale``, where the spectrum flattens.
    ramp : float
        Largest change of the planar ramp across the map, mm/yr (direction and size uniform at random).

    Returns
    -------
    numpy.ndarray of float64
    """
    rows, cols = shape
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(cols)[None, :]
    power = (kx**2 + ky**2 + (1.0 / outer_scale) ** 2) ** (-beta / 2.0)
    power[0, 0] = 0.0  # zero mean: the offset is the ramp's business
    spectrum = np.sqrt(power) * (rng.standard_normal(power.shape) + 1j * rng.standard_normal(power.shape))
    field = np.fft.irfft2(spectrum, s=shape)
    field *= amplitude / max(field.std(), 1e-12)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    size = rng.uniform(0.0, ramp)
    y, x = np.mgrid[0:rows, 0:cols]
    along = (np.cos(angle) * x / max(cols - 1, 1) + np.sin(angle) * y / max(rows - 1, 1)) / np.sqrt(2.0)
    return field + size * (along - along.mean())


def bowls(
    shape, rng, *, n=None, radius=(4.0, 40.0), amplitude=(5.0, 50.0), uplift=0.2, threshold=0.2, min_velocity=2.0
):
    """Localised deformation bowls (Mogi-like, elliptical) and the mask of the deformation areas.

    Parameters
    ----------
    shape : tuple of int
    rng : numpy.random.Generator
    n : int, optional
        Number of bowls; one per 256 x 256 cells (at least one) when not given.
    radius : (float, float)
        Range of the bowl radius (half width at about 60% of the peak), cells; drawn log-uniformly.
    amplitude : (float, float)
        Range of the peak speed, mm/yr; drawn log-uniformly.
    uplift : float
        Probability that a bowl rises instead of subsiding.
    threshold : float
        A cell is in a deformation area where a bowl reaches this fraction of its peak ...
    min_velocity : float
        ... and at least this speed, mm/yr.

    Returns
    -------
    field : numpy.ndarray of float64
        Sum of the bowls, mm/yr (negative = subsidence).
    mask : numpy.ndarray of bool
        Deformation areas.
    """
    rows, cols = shape
    if n is None:
        n = max(1, round(rows * cols / 256**2))
    field = np.zeros(shape)
    mask = np.zeros(shape, dtype=bool)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    for _ in range(n):
        cy, cx = rng.uniform(0, rows), rng.uniform(0, cols)
        r = np.exp(rng.uniform(*np.log(radius)))
        peak = np.exp(rng.uniform(*np.log(amplitude))) * (1.0 if rng.random() < uplift else -1.0)
        ratio, angle = rng.uniform(0.5, 1.0), rng.uniform(0.0, np.pi)
        # Work only inside the box where the bowl is above 1% of its peak (r^2 < 21.5 there).
        half = int(np.ceil(4.7 * r / ratio))
        box = np.s_[max(0, int(cy) - half) : int(cy) + half + 1, max(0, int(cx) - half) : int(cx) + half + 1]
        dy, dx = y[box] - cy, x[box] - cx
        u = (np.cos(angle) * dx + np.sin(angle) * dy) / r
        v = (-np.sin(angle) * dx + np.cos(angle) * dy) / (r * ratio)
        shape_ = (1.0 + u**2 + v**2) ** -1.5
        field[box] += peak * shape_
        mask[box] |= (shape_ >= threshold) & (abs(peak) * shape_ >= min_velocity)
    return field, mask


def clustered_mask(shape, coverage, rng, *, scale=24.0, speckle=0.6):
    """Where a sparse map has data: clustered like persistent scatterers, with ``coverage`` of the cells.

    Parameters
    ----------
    shape : tuple of int
    coverage : float
        Fraction of cells observed, in (0, 1].
    rng : numpy.random.Generator
    scale : float
        Correlation length of the clusters, cells.
    speckle : float
        Weight of the per-cell noise against the cluster field (0: solid blobs; large: uniform random cells).

    Returns
    -------
    numpy.ndarray of bool
        True where observed; exactly ``round(coverage * size)`` cells.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    clusters = ndimage.gaussian_filter(rng.standard_normal(shape), scale, mode="wrap")
    clusters /= max(clusters.std(), 1e-12)
    score = clusters + speckle * rng.standard_normal(shape)
    n = int(round(coverage * score.size))
    mask = np.zeros(score.size, dtype=bool)
    if n:
        mask[np.argpartition(score.ravel(), score.size - n)[score.size - n :]] = True
    return mask.reshape(shape)


def point_counts(mask, rng, *, mean=3.0, scale=8.0):
    """Points behind each observed cell: at least one, more where neighbouring cells are observed too.

    Parameters
    ----------
    mask : numpy.ndarray of bool
    rng : numpy.random.Generator
    mean : float
        Mean extra points per cell in a fully observed neighbourhood.
    scale : float
        Cells over which the local density is measured.

    Returns
    -------
    numpy.ndarray of int32
        0 where not observed.
    """
    density = ndimage.gaussian_filter(mask.astype(np.float64), scale)
    counts = 1 + rng.poisson(mean * density)
    return np.where(mask, counts, 0).astype(np.int32)


def add_spikes(velocity, where, rng, *, fraction=0.01, amplitude=(10.0, 40.0)):
    """Isolated outliers on some of the cells in ``where``.

    Parameters
    ----------
    velocity : numpy.ndarray
    where : numpy.ndarray of bool
        Cells that may carry a spike (the observed ones).
    rng : numpy.random.Generator
    fraction : float
        Share of the ``where`` cells given a spike.
    amplitude : (float, float)
        Range of the spike size, mm/yr, uniform, either sign.

    Returns
    -------
    spiked : numpy.ndarray
        A copy of ``velocity`` with the spikes added.
    spikes : numpy.ndarray of bool
        The cells that got one.
    """
    candidates = np.flatnonzero(where)
    chosen = rng.choice(candidates, size=int(round(fraction * candidates.size)), replace=False)
    spikes = np.zeros(velocity.shape, dtype=bool)
    spikes.flat[chosen] = True
    spiked = np.array(velocity, dtype=np.float64, copy=True)
    size = rng.uniform(*amplitude, chosen.size) * rng.choice([-1.0, 1.0], chosen.size)
    spiked.flat[chosen] += size
    return spiked, spikes


@dataclass(frozen=True)
class SyntheticMap:
    """A synthetic gridded map and its truth.

    Attributes
    ----------
    truth : numpy.ndarray
        Noise-free velocity everywhere, mm/yr.
    velocity : numpy.ndarray of float32
        What the gridded map holds: truth + noise (+ spikes) on observed cells, NaN elsewhere.
    count : numpy.ndarray of int32
        Points per cell.
    observed, deformation, spikes : numpy.ndarray of bool
        Observed cells, deformation areas, cells carrying a spike.
    """

    truth: np.ndarray
    velocity: np.ndarray
    count: np.ndarray
    observed: np.ndarray
    deformation: np.ndarray
    spikes: np.ndarray


def synthetic_map(shape, coverage, seed, *, noise=1.5, spike_fraction=0.01, **bowl_options):
    """A sparse synthetic map as gridding would give it: smooth background + bowls, clustered sparsity, spikes.

    Parameters
    ----------
    shape : tuple of int
    coverage : float
        Fraction of cells observed.
    seed : int
    noise : float
        Standard deviation of one point's velocity noise, mm/yr; a cell of ``n`` points has ``noise / sqrt(n)``.
    spike_fraction : float
        Share of observed cells carrying a spike.
    **bowl_options
        Passed to :func:`bowls`.

    Returns
    -------
    SyntheticMap
    """
    rng = np.random.default_rng(seed)
    background = smooth_background(shape, rng)
    deformation_field, deformation = bowls(shape, rng, **bowl_options)
    truth = background + deformation_field
    observed = clustered_mask(shape, coverage, rng)
    count = point_counts(observed, rng)
    noisy = truth + noise * rng.standard_normal(shape) / np.sqrt(np.maximum(count, 1))
    noisy, spikes = add_spikes(noisy, observed, rng, fraction=spike_fraction)
    velocity = np.where(observed, noisy, np.nan).astype(np.float32)
    return SyntheticMap(truth, velocity, count, observed, deformation, spikes)


def blocked_holdout(observed, rng, *, block=16, fraction=0.1, stratum=None):
    """Hide whole blocks of observed cells, for scoring a gap filler on real data (spatially blocked hold-out).

    Hiding single cells scatters the test cells among their neighbours, which any interpolator recovers; hiding
    blocks makes real gaps, like the ones a filler must bridge. Blocks lie on a grid of ``block`` cells with a
    random offset and are drawn in random order until ``fraction`` of the observed cells are hidden. With a
    ``stratum``, the blocks mostly inside it and the others are drawn separately, each to ``fraction``, so a
    small area of interest (a deformation area) gets its share of test cells.

    Parameters
    ----------
    observed : numpy.ndarray of bool
    rng : numpy.random.Generator
    block : int
        Block side, cells.
    fraction : float
        Share of the observed cells to hide.
    stratum : numpy.ndarray of bool, optional

    Returns
    -------
    numpy.ndarray of bool
        The hidden cells (a subset of ``observed``).
    """
    rows, cols = observed.shape
    dy, dx = rng.integers(block), rng.integers(block)
    label = ((np.arange(rows)[:, None] + dy) // block) * (cols // block + 2) + (np.arange(cols)[None, :] + dx) // block
    ids, inverse = np.unique(label, return_inverse=True)
    inverse = inverse.reshape(observed.shape)
    per_block = np.bincount(inverse.ravel(), weights=observed.ravel(), minlength=ids.size)
    centre_in = np.zeros(ids.size, dtype=bool)
    if stratum is not None:
        centre_in = np.bincount(inverse.ravel(), weights=stratum.ravel(), minlength=ids.size) > 0.5 * np.bincount(
            inverse.ravel(), minlength=ids.size
        )
    chosen = np.zeros(ids.size, dtype=bool)
    for part in (centre_in, ~centre_in) if stratum is not None else (np.ones(ids.size, dtype=bool),):
        candidates = np.flatnonzero(part & (per_block > 0))
        order = rng.permutation(candidates)
        wanted = fraction * per_block[candidates].sum()
        taken = np.cumsum(per_block[order])
        if wanted > 0:
            chosen[order[: int(np.searchsorted(taken, wanted)) + 1]] = True
    return observed & chosen[inverse]
