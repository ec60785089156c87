"""Scanning a map with a window model: a probability map blended from overlapping windows.

The authors' scanner (docs/SCAN.md): square windows a quarter window apart, each window's deformation probability
spread over the window with a Gaussian weight (``sigma = window / 6``) times the window's valid fraction, windows
less than half valid skipped, and the blend ``sum(w p) / sum(w)`` at every cell. Windows lie on one global lattice:
they start at whole multiples of the stride in the grid's global cell index (grids have their edges on whole
multiples of the cell size), inside the map, with one more window flush with each edge of the map
(:func:`lattice_starts`). So where a map is cut into chunks never changes a cell's probability.

A model that also outputs a per-pixel map (``"mask_logit"``) can blend a per-cell map instead of the window's
constant probability, with the same weights (recipe key ``localise``, :func:`cell_probability`): the per-pixel
probability (``"pixel"``), or that times the window's probability (``"product"``: a cell scores high only where both
heads agree).

Everything here is a pure function of the arrays it is given: :func:`scan_probability` scans a block's ``core``
given the block's global ``origin`` and the map's ``bounds``, so a map scanned whole and scanned chunk by chunk,
each chunk read with ``window - 1`` cells of context (:func:`defoscan.scan_store.scan_chunk`), give the same map.
"""

import numpy as np
import torch

from defoscan.model.inputs import window_input


def lattice_starts(start, stop, window, stride, bounds):
    """Global first cells of the windows over ``[start, stop)`` along one axis, for a map spanning ``bounds``.

    The windows are those of the global lattice — starting at whole multiples of ``stride`` of the global cell
    index — that lie wholly inside the map, plus one flush with each end of the map where the lattice leaves a
    strip uncovered; a map shorter than a window gets one window at its start (the scanner pads it with no-data).
    Windows never reach beyond the map, where a straight edge of no-data would be a pattern the network never saw
    in training. Of these, the ones holding a cell of ``[start, stop)`` are returned. They depend on the map and
    the lattice only, not on the range asked for: a chunk of a map gets the whole map's windows over it.

    Parameters
    ----------
    start, stop : int
        Global indices of the range (a chunk's core), ``stop`` excluded.
    window : int
        Cells per window side.
    stride : int
        Cells between window starts.
    bounds : tuple of int
        ``(first, end)``: global indices of the map's first cell and one past its last.

    Returns
    -------
    numpy.ndarray of int
        Increasing global start indices.

    Examples
    --------
    >>> lattice_starts(0, 10, 4, 3, (0, 10)).tolist()
    [0, 3, 6]
    >>> lattice_starts(0, 11, 4, 3, (-1, 11)).tolist()
    [-1, 0, 3, 6, 7]
    >>> lattice_starts(5, 8, 4, 3, (-1, 11)).tolist()
    [3, 6, 7]
    >>> lattice_starts(0, 3, 4, 3, (0, 3)).tolist()
    [0]
    """
    start, stop, window, stride = int(start), int(stop), int(window), int(stride)
    first, end = (int(v) for v in bounds)
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    if not first <= start <= stop <= end:
        raise ValueError(f"range [{start}, {stop}) is not inside the map's [{first}, {end})")
    if end - first <= window:
        starts = [first]
    else:
        last = end - window
        inner = range(-(-first // stride) * stride, last + 1, stride)  # multiples of stride in [first, last]
        starts = sorted({first, last, *inner})
    return np.asarray([s for s in starts if s < stop and s + window > start], dtype=np.int64)


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
    origin=(0, 0),
    core=None,
    bounds=None,
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
    origin : tuple of int
        Global ``(row, column)`` index of ``velocity[0, 0]`` (:func:`defoscan.fill.tiling.grid_origin` of a grid's
        transform); windows start at whole multiples of ``stride`` of it. ``(0, 0)``: the array's corner.
    core : tuple of int, optional
        ``(row0, row1, col0, col1)``: the part of ``velocity`` to return, the rest being context. All of it by
        default. The result is exact for the core when the block holds ``window - 1`` cells of context on each
        side of it (or the map ends there).
    bounds : tuple of int, optional
        ``(row0, row1, col0, col1)``: global indices of the whole map's extent (ends excluded), of which the block
        is a part; the block itself by default. Windows stay inside it (:func:`lattice_starts`).
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
        The core's shape (``velocity``'s by default), in [0, 1]; NaN where no scanned window covers a cell or the
        cell has no data.

    Notes
    -----
    Window ``k`` with probability ``p_k`` (a constant, or a per-cell map when localising), valid fraction ``f_k``
    (cells outside the map count as no data) and Gaussian ``g`` (:func:`gaussian_weight`) gives every cell ``x``
    it covers ``w_k(x) = g(x - start_k) f_k``; the map is ``sum_k w_k p_k / sum_k w_k``. The windows are the
    map's windows (:func:`lattice_starts`) that overlap the core, taken in row-major order and accumulated in
    float64, so the result is deterministic.

    See also
    --------
    lattice_starts, gaussian_weight, defoscan.scan_store.scan_chunk
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
    row0, row1, col0, col1 = (0, height, 0, width) if core is None else (int(v) for v in core)
    if not (0 <= row0 < row1 <= height and 0 <= col0 < col1 <= width):
        raise ValueError(f"core {core} is not inside the block of shape {velocity.shape}")
    if bounds is None:
        bounds = (origin[0], origin[0] + height, origin[1], origin[1] + width)
    # Pad by a window of no-data on every side, so that every window overlapping the core is a plain slice.
    rows, cols = height + 2 * window, width + 2 * window
    padded = np.full((rows, cols), np.nan, dtype=np.float32)
    padded[window:-window, window:-window] = velocity
    padded_valid = np.zeros((rows, cols), dtype=bool)
    padded_valid[window:-window, window:-window] = valid
    velocity, valid = padded, padded_valid
    # Block-local starts of the lattice windows over the core, shifted into the padded array.
    row_starts = lattice_starts(origin[0] + row0, origin[0] + row1, window, stride, bounds[:2]) - origin[0] + window
    col_starts = lattice_starts(origin[1] + col0, origin[1] + col1, window, stride, bounds[2:]) - origin[1] + window

    # Valid fraction of every window from a summed-area table.
    table = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    table[1:, 1:] = valid.cumsum(axis=0).cumsum(axis=1)
    windows = []
    for r in row_starts:
        for c in col_starts:
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
    return probability[window + row0 : window + row1, window + col0 : window + col1]
