"""Metrics of the text plugin.

Example:
    >>> import torch
    >>> metric = Perplexity()
    >>> metric.update(torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long))
    >>> round(metric.compute(), 3)
    4.0
"""

from __future__ import annotations

import math

from torch import Tensor
from torch.nn import functional as F

import ember
from ember.metrics import IGNORE_INDEX

__all__ = ["Perplexity"]


class Perplexity(ember.Metric):
    """``exp`` of the mean next-token cross-entropy over all tokens (lower is better);
    padding (``-100``, as ``get_preds`` pads) is not a token.

    Example:
        >>> # learn = ember.learner(lm_data, metrics=[Perplexity()])
    """

    name = "perplexity"
    sum_states = ("total", "count")
    higher_is_better = False

    def update(self, preds: Tensor, targets: Tensor) -> None:
        targets = targets.reshape(-1)
        loss = F.cross_entropy(preds.reshape(-1, preds.shape[-1]).float(), targets,
                               reduction="sum", ignore_index=IGNORE_INDEX)
        self._add("total", loss)
        self._add("count", (targets != IGNORE_INDEX).sum())  # padding is not a token

    def compute(self) -> float:
        mean = self.share(self.total, self.count)  # NaN when no token was measured
        return math.exp(min(mean, 50.0))
