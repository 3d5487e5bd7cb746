"""Classification metrics from confusion matrices, for one set of predictions or many resamples at once.

Conventions (scikit-learn's, so results can be checked against it): a class's precision is 0 when
nothing was predicted as it, its recall 0 when it has no examples, F1 = 2 TP / (2 TP + FP + FN);
macro averages run over the classes present among the labels or the predictions; micro precision,
recall and F1 all equal the accuracy (one label per example).
"""

from __future__ import annotations

import numpy as np


def confusion(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [..., true class, predicted class] for label/prediction arrays of shape [..., examples]."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    batch = labels.shape[:-1]
    flat_batch = np.arange(int(np.prod(batch, dtype=np.int64))).reshape(*batch, 1) if batch else 0
    cell = (flat_batch * n_classes + labels) * n_classes + preds
    counts = np.bincount(cell.ravel(), minlength=max(1, int(np.prod(batch, dtype=np.int64))) * n_classes ** 2)
    return counts.reshape(*batch, n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, per-class precision/recall/f1/support, their macro averages, and the micro ones."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support = cm.sum(-1).astype(float)
    predicted = cm.sum(-2).astype(float)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    present = (support + predicted) > 0
    n_present = present.sum(-1)
    accuracy = _ratio(tp.sum(-1), support.sum(-1))
    return {
        "accuracy": accuracy,
        "precision": (precision * present).sum(-1) / n_present,
        "recall": (recall * present).sum(-1) / n_present,
        "f1": (f1 * present).sum(-1) / n_present,
        "micro_precision": accuracy, "micro_recall": accuracy, "micro_f1": accuracy,
        "class_precision": precision, "class_recall": recall, "class_f1": f1, "class_support": support,
    }


def classification_metrics(labels, preds, n_classes: int) -> dict[str, np.ndarray]:
    return from_confusion(confusion(labels, preds, n_classes))
