"""``model.class_weights: auto``: per-label loss weights from the train split's label frequencies.

A label's weight is the inverse square root of its share of the loss positions, scaled so that the
average weight over those positions is 1 (the loss keeps its scale, so the learning rate that suits
the unweighted loss still suits it). The square root rather than the plain inverse ("balanced"):
on CoNLL-2003 the plain inverse makes ``I-MISC`` weigh about 300 times ``O``, which buys recall
of rare types with a large loss of precision; the square root keeps that ratio near 17. Labels
that never occur at a loss position are never a target there, and keep weight 1.
"""

from __future__ import annotations

from typing import List

import numpy as np


def frequency_class_weights(labels: np.ndarray, loss_mask: np.ndarray, num_classes: int) -> List[float]:
    """One weight per label id, from the labels at the positions ``loss_mask`` selects."""
    counted = np.asarray(labels)[np.asarray(loss_mask) != 0]
    counts = np.bincount(counted.astype(np.int64), minlength=num_classes)[:num_classes].astype(np.float64)
    if counts.sum() == 0:
        return [1.0] * num_classes
    share = counts / counts.sum()
    present = share > 0
    weights = np.ones(num_classes)
    weights[present] = share[present] ** -0.5
    weights[present] /= float((share[present] * weights[present]).sum())
    return [float(weight) for weight in weights]
