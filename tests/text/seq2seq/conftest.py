"""Shared fixtures for the seq2seq tests: one small model trained once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import ember
from ember_text.seq2seq import Seq2SeqData, load_sample


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """RNN steps are small; on a shared 2-core machine one thread is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained() -> ember.Learner:
    """French words (word tokens) → digits (characters), trained for 10 epochs (about 25 s) on the
    bundled sample."""
    torch.set_num_threads(1)
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers"), valid_pct=0.1, seed=0, bs=64,
                                  level="word", tgt_level="char")
    learn = ember.learner(data, quiet=True)  # the plugin's defaults, sized to the data
    learn.initial_loss = learn.validate()["valid_loss"]  # type: ignore[attr-defined]
    learn.fit_one_cycle(10, 1e-2)
    return learn
