"""Training augmentation of velocity windows: the symmetries of the problem and thinner coverage.

- **Rotations by multiples of 90 degrees and flips** (the eight symmetries of the square): a subsidence bowl is one
  whichever way the map is turned. The LOS direction of the synthetic geometry turns with it, which is harmless: the
  network must not learn one heading.
- **Sign flip**: uplift and subsidence are both deformation (the label counts both), and the synthetic sources are
  not equally often of each sign.
- **Coverage dropout**: blobs of observed cells are removed, as a map with fewer scatterers (rural land, another
  season's decorrelation) would have them. A positive keeps at least :data:`MIN_SEEN` observed cells of its
  deformation mask, so the label stays true.

All draws come from the generator passed in; one generator per epoch makes an epoch's augmentation reproducible.
"""

import numpy as np
from scipy import ndimage

from defoscan.synth.sample import MIN_SEEN

# Share of observed cells removed, drawn uniformly per window: the fitted profiles' sparsest windows (about 25 %
# covered) go down to about 8 %, as windows on coasts, islands and rural land are (docs/MODEL.md).
DROPOUT_RANGE = (0.0, 0.7)
BLOB_CELLS = (2.0, 8.0)  # smoothing length of the dropout field, cells (small = scattered, large = patches)


def dihedral(array, k, flip):
    """Rotate the last two axes by ``k`` quarter turns, then flip left-right if ``flip``.

    Returns
    -------
    numpy.ndarray
        A contiguous copy.
    """
    out = np.rot90(array, k, axes=(-2, -1))
    if flip:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def coverage_dropout(velocity, rng, *, fraction, blob_cells, mask=None):
    """Remove about ``fraction`` of the observed cells, in smooth random blobs.

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D, NaN = no data.
    rng : numpy.random.Generator
    fraction : float
        Share of the observed cells to remove.
    blob_cells : float
        Gaussian smoothing length of the random field whose lowest values are removed, cells.
    mask : numpy.ndarray of bool, optional
        The deformation mask: if the dropout would leave fewer than ``MIN_SEEN`` of its cells observed (while there
        were at least that many), nothing is removed.

    Returns
    -------
    numpy.ndarray
        A copy with the removed cells set to NaN.
    """
    observed = np.isfinite(velocity)
    if fraction <= 0 or observed.sum() < 2:
        return velocity.copy()
    field = ndimage.gaussian_filter(rng.standard_normal(velocity.shape), blob_cells, mode="wrap")
    cut = np.quantile(field[observed], fraction)
    drop = observed & (field < cut)
    if mask is not None:
        seen_before = int((observed & mask).sum())
        if seen_before >= MIN_SEEN and int((observed & ~drop & mask).sum()) < MIN_SEEN:
            return velocity.copy()
    out = velocity.copy()
    out[drop] = np.nan
    return out


def augment_window(velocity, rng, *, mask=None, dropout=True):
    """One random augmentation of a training window (symmetry, sign, coverage dropout).

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D, mm/yr, NaN = no data.
    rng : numpy.random.Generator
    mask : numpy.ndarray of bool, optional
        The deformation mask; transformed alike and returned.
    dropout : bool
        Apply coverage dropout (off for windows cut from an already gap-filled map).

    Returns
    -------
    velocity : numpy.ndarray
    mask : numpy.ndarray or None
    """
    k, flip, sign = int(rng.integers(4)), bool(rng.integers(2)), 1.0 if rng.integers(2) else -1.0
    fraction = float(rng.uniform(*DROPOUT_RANGE))
    blob = float(np.exp(rng.uniform(*np.log(BLOB_CELLS))))
    if dropout:
        velocity = coverage_dropout(velocity, rng, fraction=fraction, blob_cells=blob, mask=mask)
    velocity = sign * dihedral(velocity, k, flip)
    return velocity, (None if mask is None else dihedral(mask, k, flip))
