"""The built-in callbacks (``core/ember/callbacks/``) at their edges: precision, gradient
accumulation, early stopping and save-best, also across an interrupted and resumed run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ember

from .helpers import blob_data


def small_model(n_in: int = 8, n_out: int = 3) -> nn.Module:
    return ember.create_model("mlp", n_in=n_in, n_out=n_out, hidden=[32], dropout=0.0)


# ------------------------------------------------------------------------ mixed precision
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_validates_and_predicts_before_any_fit(precision):
    ember.seed(0)
    learn = ember.Learner(blob_data(), small_model(), quiet=True, precision=precision,
                          device="cpu")
    assert 0.0 <= learn.validate()["accuracy"] <= 1.0
    probs, _ = learn.get_preds()
    assert probs.dtype == torch.float32 and probs.shape[1] == 3
    assert not torch.is_autocast_enabled("cpu")
