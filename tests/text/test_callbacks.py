"""Callbacks: a language model's carried state does not leak from one pass into another."""

from __future__ import annotations

import torch

import ember
from ember_text import LanguageModelData
from ember_text.datasets import load_rotten_tomatoes


def test_a_pass_after_validation_starts_from_a_fresh_state() -> None:
    # validate() and get_preds() left the state of the end of the validation stream in the
    # model, and the next forward pass with as many rows (show_results, a user's own call)
    # continued from it: the logits for the stream's first tokens depended on its last ones
    torch.manual_seed(0)
    texts, _, _ = load_rotten_tomatoes()
    data = LanguageModelData.from_texts(texts[:200], valid_pct=0.3, seed=0, bs=8, bptt=10)
    learn = ember.learner(data, quiet=True, device="cpu")
    learn.fit(1, 3e-3)
    xb, _ = data.one_batch("valid")
    learn.model.eval()
    learn.model.reset()
    fresh = learn.model(xb).detach()
    for evaluate in (learn.validate, learn.get_preds):
        evaluate()
        learn.model.eval()
        assert torch.allclose(learn.model(xb), fresh, atol=1e-6)
