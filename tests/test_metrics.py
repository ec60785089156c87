import numpy as np
import pytest

from defoscan.metrics import recall_at_fpr, roc_auc, threshold_at_fpr


def _pairwise_auc(scores, labels):
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


def test_auc_of_separated_reversed_and_tied_scores():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_auc_equals_the_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, 300).astype(float)  # many ties
    labels = rng.random(300) < 0.4
    assert roc_auc(scores + labels * 3, labels) == pytest.approx(_pairwise_auc(scores + labels * 3, labels))


def test_threshold_lets_the_allowed_share_of_negatives_through():
    negatives = np.arange(100.0)
    scores = np.concatenate([negatives, [50.5, 98.5, 200.0]])
    labels = np.r_[np.zeros(100, bool), np.ones(3, bool)]
    cut = threshold_at_fpr(scores, labels, 0.01)
    assert cut == 98.0  # only 99 lies above: 1 % of 100
    assert (negatives > cut).mean() <= 0.01
    assert recall_at_fpr(scores, labels, 0.01) == pytest.approx(2 / 3)
    assert threshold_at_fpr(scores, labels, 0.0) == 99.0


def test_average_precision_known_cases():
    from defoscan.metrics import average_precision

    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == pytest.approx(0.5)  # one tie group
    assert average_precision([0.1, 0.9], [1, 0]) == pytest.approx(0.5)
    assert average_precision([3, 2, 1], [1, 1, 0]) == 1.0
    assert np.isnan(average_precision([1, 2], [0, 0]))
