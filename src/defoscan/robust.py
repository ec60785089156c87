"""Robust statistics shared by the stages: noise scales that signals and outliers do not inflate."""

import numpy as np

MAD_TO_SIGMA = 1.4826  # the MAD of a Gaussian is 0.6745 sigma


def robust_sigma(values):
    """``1.4826 * MAD`` of the finite values: the standard deviation for Gaussian noise, robust to signals.

    Parameters
    ----------
    values : numpy.ndarray

    Returns
    -------
    float
        NaN when there are no finite values.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.nan
    return MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))
