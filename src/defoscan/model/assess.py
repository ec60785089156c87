"""How well a network separates windows with deformation from windows without, on a held-out synthetic set.

One cut-off is set on all the negatives (easy and hard) so that 1 % of them score above it; recall is then reported
for all positives, per deformation kind (a window counts for every kind it holds) and per velocity band of its peak
LOS speed (:data:`VELOCITY_BANDS`) and per size band of its deformation mask (:data:`SIZE_BANDS`), with the false
positive rate of hard and easy negatives apart.
"""

import time

import numpy as np

from defoscan.metrics import recall_at_fpr, roc_auc, threshold_at_fpr

VELOCITY_BANDS = ((2.0, 5.0), (5.0, 10.0), (10.0, 30.0), (30.0, np.inf))  # mm/yr, peak |LOS deformation|
# metres: equivalent diameter 2 sqrt(area / pi) of a window's deformation mask (clipped by the window, so the
# largest band holds every signal that fills much of a 6.4 km window, the 10 km domes among them)
SIZE_BANDS = ((0.0, 300.0), (300.0, 1000.0), (1000.0, 3000.0), (3000.0, np.inf))
FPR = 0.01


def band_name(band, unit=""):
    """``"2-5"``, ..., ``">30"``, with an optional unit appended."""
    low, high = band
    return (f">{low:g}" if np.isinf(high) else f"{low:g}-{high:g}") + (f" {unit}" if unit else "")


def window_scores(scores, windows, *, fpr=FPR):
    """Scores of a network on a :class:`~defoscan.model.data.WindowSet`.

    Parameters
    ----------
    scores : numpy.ndarray
        One score per window (logits), higher = deformation.
    windows : defoscan.model.data.WindowSet
    fpr : float
        False positive rate the cut-off is set at.

    Returns
    -------
    dict
        ``n_positive``, ``n_negative``, ``auc``, ``recall`` (at ``fpr``), ``cutoff``, ``fpr_hard``, ``fpr_easy``,
        ``by_kind``, ``by_band`` and ``by_size`` (each ``{name: {"n", "recall", "auc"}}``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = windows.label.astype(bool)
    cutoff = threshold_at_fpr(scores, labels, fpr)
    hard = np.array([bool(info["hard"]) for info in windows.info])
    negatives = ~labels
    result = {
        "n_positive": int(labels.sum()),
        "n_negative": int(negatives.sum()),
        "auc": roc_auc(scores, labels),
        "recall": recall_at_fpr(scores, labels, fpr),
        "cutoff": cutoff,
        "fpr_hard": float(np.mean(scores[negatives & hard] > cutoff)) if (negatives & hard).any() else float("nan"),
        "fpr_easy": float(np.mean(scores[negatives & ~hard] > cutoff)) if (negatives & ~hard).any() else float("nan"),
    }
    kinds = sorted({kind for info, label in zip(windows.info, labels, strict=True) if label for kind in info["kinds"]})
    result["by_kind"] = {
        kind: _group(scores, labels, np.array([kind in info["kinds"] for info in windows.info]), cutoff)
        for kind in kinds
    }
    peak = np.array([info["peak"] for info in windows.info])
    result["by_band"] = {
        band_name(band): _group(scores, labels, (peak >= band[0]) & (peak < band[1]), cutoff) for band in VELOCITY_BANDS
    }
    diameter = 2.0 * np.sqrt(windows.mask.sum(axis=(1, 2)) * windows.window_cell_sizes() ** 2 / np.pi)
    result["by_size"] = {
        band_name(band, "m"): _group(scores, labels, (diameter >= band[0]) & (diameter < band[1]), cutoff)
        for band in SIZE_BANDS
    }
    return result


def _group(scores, labels, members, cutoff):
    """Recall at the common cut-off and AUC against all negatives, of the positives in ``members``."""
    chosen = labels & members
    if not chosen.any():
        return {"n": 0, "recall": float("nan"), "auc": float("nan")}
    keep = chosen | ~labels
    return {
        "n": int(chosen.sum()),
        "recall": float(np.mean(scores[chosen] > cutoff)),
        "auc": roc_auc(scores[keep], labels[keep]),
    }


def timed_logits(model, windows, recipe, *, batch=64):
    """Window logits and the seconds they took (inputs made and network run).

    Returns
    -------
    logits : numpy.ndarray
    seconds : float
    """
    from defoscan.model.train import predict_logits

    start = time.perf_counter()
    logits = predict_logits(model, windows, recipe, batch=batch)
    return logits, time.perf_counter() - start
