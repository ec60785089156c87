"""Scanning a map with a window model: a probability map blended from overlapping windows.

The authors' scanner (DESIGN.md): square windows a quarter window apart, each window's deformation probability
spread over the window with a Gaussian weight (``sigma = window / 6``) times the window's valid fraction, windows
less than half valid skipped, and the blend ``sum(w p) / sum(w)`` at every cell. A model that also outputs a
per-pixel map (``"mask_logit"``) can blend a per-cell map instead of the window's constant probability, with the
same weights (recipe key ``localise``, :func:`cell_probability`): the per-pixel probability (``"pixel"``), or that
times the window's probability (``"product"``: a cell scores high only where both heads agree).

Everything here is a pure function of the arrays it is given: a tiled runner can call :func:`scan_probability` on
each chunk with a halo of at least one window and keep the chunk's interior.
"""

import numpy as np
import torch

from defoscan.model.inputs import window_input


def window_starts(size, window, stride):
    """First cells of the windows that cover ``0 .. size`` along one axis.

    Windows start every ``stride`` cells; one more window is added flush with the far edge if the last regular one
    stops short of it, so every cell is covered. A map smaller than one window gets a single window at 0 (the
    scanner pads the map with no-data to a whole window).

    Parameters
    ----------
    size : int
        Cells along the axis.
    window : int
        Cells per window side.
    stride : int
        Cells between window starts.

    Returns
    -------
    numpy.ndarray of int
        Increasing start indices; the last is ``max(size - window, 0)``.

    Examples
    --------
    >>> window_starts(10, 4, 3).tolist()
    [0, 3, 6]
    >>> window_starts(11, 4, 3).tolist()
    [0, 3, 6, 7]
    >>> window_starts(3, 4, 3).tolist()
    [0]
    """
    size, window, stride = int(size), int(window), int(stride)
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    last = max(size - window, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return np.asarray(starts, dtype=np.int64)


def gaussian_weight(window, sigma=None):
    """A 2-D Gaussian over a window, peak 1 at the window's centre.

    Parameters
    ----------
    window : int
        Cells per side.
    sigma : float, optional
        Cells; ``window / 6`` by default (the authors' scanner), so the weight falls to about 1 % at the window's
        edge midpoints.

    Returns
    -------
    numpy.ndarray of float64
        ``(window, window)``, symmetric.
    """
    window = int(window)
    sigma = window / 6.0 if sigma is None else float(sigma)
    if window < 1 or not sigma > 0:
        raise ValueError(f"window and sigma must be positive, got {window} and {sigma}")
    offset = np.arange(window) - (window - 1) / 2.0
    profile = np.exp(-0.5 * (offset / sigma) ** 2)
    return np.outer(profile, profile)


LOCALISE_MODES = ("window", "pixel", "product")


def localise_mode(recipe):
    """The recipe's ``localise`` as one of :data:`LOCALISE_MODES` (absent or false: ``window``; true: ``pixel``)."""
    value = recipe.get("localise")
    if value in (None, False):
        return "window"
    if value is True:
        return "pixel"
    if value not in LOCALISE_MODES:
        raise ValueError(f"unknown localise mode {value!r}; choose from {', '.join(LOCALISE_MODES)}")
    return value


def cell_probability(output, mode):
    """What a model's output says of each cell of its windows, for the blend.

    Parameters
    ----------
    output : dict of torch.Tensor
        ``"logit"`` ``(N,)`` and, for ``pixel`` and ``product``, ``"mask_logit"`` ``(N, 1, H, W)``.
    mode : {"window", "pixel", "product"}
        ``window``: the window probability (one value per window); ``pixel``: the per-pixel probability;
        ``product``: per-pixel probability times window probability.

    Returns
    -------
    torch.Tensor
        ``(N,)`` for ``window`` (or when the model has no per-pixel output), else ``(N, H, W)``.
    """
    window = torch.sigmoid(output["logit"].reshape(-1))
    if mode == "window" or "mask_logit" not in output:
        return window
    pixel = torch.sigmoid(output["mask_logit"][:, 0])
    return pixel if mode == "pixel" else pixel * window[:, None, None]


def scan_probability(
    velocity,
    model,
    recipe,
    *,
    stride=None,
    min_valid=None,
    batch=32,
    valid=None,
    threshold_logit=None,
    progress=None,
):
    """Probability of deformation at every cell, blended from a window model's outputs over overlapping windows.

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D map (mm/yr, NaN = no data), the one the model reads: the gridded map, or the gap-filled one for a
        recipe with ``fill``. Windows are turned into channels by :func:`defoscan.model.inputs.window_input`.
    model : torch.nn.Module
        Returns a dict with ``"logit"`` ``(N,)`` and optionally ``"mask_logit"`` ``(N, 1, H, W)``. Put in
        evaluation mode; run on the device of its parameters (CPU if it has none).
    recipe : dict
        The model's input recipe (:data:`defoscan.model.inputs.DEFAULT_RECIPE`): ``window`` gives the window
        size; its ``localise`` (see :func:`cell_probability`) says whether a per-pixel map is blended instead of the
        window probability.
    stride : int, optional
        Cells between windows; ``window // 4`` by default.
    min_valid : float, optional
        Windows with a smaller share of cells with data (in ``valid``) are not scanned; by default the recipe's
        ``min_valid`` (what the model was trained down to), else 0.5 (the authors' rule).
    batch : int
        Windows per forward pass; the result does not depend on it beyond floating-point rounding in the model.
    valid : numpy.ndarray of bool, optional
        Cells with data; ``isfinite(velocity)`` by default. Pass the observed cells when ``velocity`` is gap-filled,
        so that filled cells neither count as data nor receive a probability.
    threshold_logit : float, optional
        A gate: a window whose window logit is below it contributes probability 0 (over the whole window, also
        when localising) instead of its own; None (default) = no gate.
    progress : callable, optional
        Called as ``progress(done, total)`` with windows scanned so far, after each batch.

    Returns
    -------
    numpy.ndarray of float32
        Same shape as ``velocity``, in [0, 1]; NaN where no scanned window covers a cell or the cell has no data.

    Notes
    -----
    Window ``k`` with probability ``p_k`` (a constant, or a per-cell map when localising), valid fraction ``f_k``
    and Gaussian ``g`` (:func:`gaussian_weight`) gives every cell ``x`` it covers ``w_k(x) = g(x - start_k) f_k``;
    the map is ``sum_k w_k p_k / sum_k w_k``. A map smaller than a window is padded with no-data to one window.
    Windows are taken in row-major order and accumulated in float64, so the result is deterministic.

    See also
    --------
    window_starts, gaussian_weight
    """
    velocity = np.asarray(velocity, dtype=np.float32)
    if velocity.ndim != 2:
        raise ValueError(f"velocity must be 2-D, got shape {velocity.shape}")
    valid = np.isfinite(velocity) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != velocity.shape:
        raise ValueError(f"valid has shape {valid.shape}, velocity {velocity.shape}")
    window = int(recipe["window"])
    min_valid = float(recipe.get("min_valid", 0.5)) if min_valid is None else float(min_valid)
    stride = max(window // 4, 1) if stride is None else int(stride)
    height, width = velocity.shape
    rows, cols = max(height, window), max(width, window)
    if (rows, cols) != (height, width):  # smaller than a window: pad with no-data
        padded = np.full((rows, cols), np.nan, dtype=np.float32)
        padded[:height, :width] = velocity
        velocity = padded
        padded_valid = np.zeros((rows, cols), dtype=bool)
        padded_valid[:height, :width] = valid
        valid = padded_valid

    # Valid fraction of every window from a summed-area table.
    table = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    table[1:, 1:] = valid.cumsum(axis=0).cumsum(axis=1)
    windows = []
    for r in window_starts(rows, window, stride):
        for c in window_starts(cols, window, stride):
            inside = table[r + window, c + window] - table[r, c + window] - table[r + window, c] + table[r, c]
            fraction = inside / (window * window)
            if fraction >= min_valid and inside > 0:
                windows.append((int(r), int(c), float(fraction)))

    gaussian = gaussian_weight(window)
    numerator = np.zeros((rows, cols), dtype=np.float64)
    denominator = np.zeros((rows, cols), dtype=np.float64)
    localise = localise_mode(recipe)
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    model.eval()
    total = len(windows)
    with torch.inference_mode():
        for first in range(0, total, max(int(batch), 1)):
            chunk = windows[first : first + max(int(batch), 1)]
            stack = np.stack([velocity[r : r + window, c : c + window] for r, c, _ in chunk])
            inputs = torch.from_numpy(window_input(stack, recipe)).to(device)
            output = model(inputs)
            logit = output["logit"].reshape(-1).double()
            maps = cell_probability(output, localise).double().cpu().numpy()
            logits = logit.cpu().numpy()
            for index, (r, c, fraction) in enumerate(chunk):
                p = maps[index]
                if threshold_logit is not None and logits[index] < threshold_logit:
                    p = 0.0
                weight = gaussian * fraction
                numerator[r : r + window, c : c + window] += weight * p
                denominator[r : r + window, c : c + window] += weight
            if progress is not None:
                progress(first + len(chunk), total)

    probability = np.full((rows, cols), np.nan, dtype=np.float32)
    covered = (denominator > 0) & valid
    probability[covered] = numerator[covered] / denominator[covered]
    return probability[:height, :width]
