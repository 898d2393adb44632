"""The text plugin's metrics."""

from __future__ import annotations

import math

import torch

from ember_text import Perplexity


def test_perplexity_counts_real_tokens_and_is_nan_on_none():
    # padding (-100, as get_preds pads a shorter last chunk) was counted as a token, which
    # lowered the perplexity; a pass with no token read 1.0, a perfect score
    metric = Perplexity()
    logits = torch.zeros(1, 4, 5)  # uniform over 5 tokens: perplexity 5 on every real token
    metric.update(logits, torch.tensor([[1, 2, -100, -100]]))
    assert math.isclose(metric.compute(), 5.0, rel_tol=1e-6)
    metric.reset()
    metric.update(logits, torch.full((1, 4), -100))
    assert math.isnan(metric.compute())
