"""Detection scores of windows: ROC AUC, and the cut-off and recall at a fixed false positive rate."""

import numpy as np
from scipy.stats import rankdata


def _split(scores, labels):
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.size} vs {labels.size}")
    return scores[labels], scores[~labels]


def roc_auc(scores, labels):
    """Area under the ROC curve: the chance that a random positive scores above a random negative (ties half).

    Computed from ranks (the Mann-Whitney U statistic), exact with ties.

    Parameters
    ----------
    scores : array_like
        Higher = more likely positive.
    labels : array_like of bool or 0/1

    Returns
    -------
    float
        NaN when either class is empty.
    """
    positives, negatives = _split(scores, labels)
    if positives.size == 0 or negatives.size == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([positives, negatives]))
    u = ranks[: positives.size].sum() - positives.size * (positives.size + 1) / 2.0
    return float(u / (positives.size * negatives.size))


def threshold_at_fpr(scores, labels, fpr=0.01):
    """The lowest cut-off at which at most ``fpr`` of the negatives score strictly above it.

    Parameters
    ----------
    scores, labels : array_like
    fpr : float
        Largest false positive rate allowed, in [0, 1].

    Returns
    -------
    float
        A score is called positive when it is ``> threshold``.
    """
    _, negatives = _split(scores, labels)
    if negatives.size == 0:
        raise ValueError("no negatives to set a false positive rate on")
    allowed = int(np.floor(fpr * negatives.size + 1e-9))  # negatives that may lie above the cut-off
    ordered = np.sort(negatives)[::-1]
    return float(ordered[allowed]) if allowed < ordered.size else float(-np.inf)


def recall_at_fpr(scores, labels, fpr=0.01):
    """Share of positives above the cut-off of :func:`threshold_at_fpr`.

    Returns
    -------
    float
    """
    positives, _ = _split(scores, labels)
    if positives.size == 0:
        return float("nan")
    return float(np.mean(positives > threshold_at_fpr(scores, labels, fpr)))


def average_precision(scores, labels):
    """Area under the precision-recall curve, as the mean precision at each positive's rank (ties as one step).

    Parameters
    ----------
    scores, labels : array_like

    Returns
    -------
    float
        NaN when there are no positives.
    """
    positives, negatives = _split(scores, labels)
    if positives.size == 0:
        return float("nan")
    scores = np.concatenate([positives, negatives])
    truth = np.concatenate([np.ones(positives.size, bool), np.zeros(negatives.size, bool)])
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order]
    # Precision and recall at every distinct cut-off (a tie group enters at once).
    last = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    hits = np.cumsum(truth)[last]
    precision = hits / (last + 1)
    recall = hits / positives.size
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
