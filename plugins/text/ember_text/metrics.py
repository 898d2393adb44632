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

__all__ = ["Perplexity"]


class Perplexity(ember.Metric):
    """``exp`` of the mean next-token cross-entropy over all tokens (lower is better).

    Example:
        >>> # learn = ember.learner(lm_data, metrics=[Perplexity()])
    """

    name = "perplexity"
    sum_states = ("total", "count")
    higher_is_better = False

    def update(self, preds: Tensor, targets: Tensor) -> None:
        loss = F.cross_entropy(preds.reshape(-1, preds.shape[-1]).float(), targets.reshape(-1),
                               reduction="sum")
        self._add("total", loss)
        self._add("count", targets.numel())

    def compute(self) -> float:
        mean = float(self.total / self.count.clamp(min=1))
        return math.exp(min(mean, 50.0))
