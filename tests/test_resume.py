"""Every domain's default learner (``ember.learner(data)`` with its default callbacks:
augmentation and PreciseBatchNorm for images, carried hidden state for language models)
resumes exactly: a fit interrupted after an epoch and resumed from its checkpoint in a new
learner, built the same way in another random state, ends with the uninterrupted run's
weights and progress table. (Seq2seq's teacher-forcing coins: tests/text/seq2seq.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import ember

from .core.helpers import InterruptAfter

N_EPOCHS, INTERRUPT_AFTER = 3, 1


def _images() -> Callable[[], ember.Learner]:
    from ember_vision import ImageData
    from ember_vision.datasets import fashion_mnist

    (images, labels), _ = fashion_mnist(sample=True)
    # 64 training images in batches of 16: 4 steps an epoch, so PreciseBatchNorm finds the
    # moving averages stale and recomputes them
    return lambda: ember.learner(ImageData.from_arrays(images[:80], labels[:80], bs=16),
                                 quiet=True)


def _reviews(language_model: bool) -> Callable[[], ember.Learner]:
    from ember_text.data import LanguageModelData, TextData
    from ember_text.datasets import load_rotten_tomatoes

    texts, labels, _ = load_rotten_tomatoes()
    if language_model:
        return lambda: ember.learner(LanguageModelData.from_texts(texts[:100], bs=8, bptt=16),
                                     quiet=True)
    return lambda: ember.learner(TextData.from_texts(texts[:160], labels[:160], bs=32),
                                 quiet=True)


def _diamonds() -> Callable[[], ember.Learner]:
    from ember_tabular import TabularData, load_sample

    rows = load_sample("diamonds").iloc[:300]
    return lambda: ember.learner(TabularData.from_df(rows, "price", log_target=True,
                                                     verbose=False), quiet=True)


DOMAINS = {"images": _images, "images_save_best": _images,
           "text_classifier": lambda: _reviews(False), "language_model": lambda: _reviews(True),
           "tabular": _diamonds}


def _rows(learn: ember.Learner) -> list[dict[str, float]]:
    return [{name: value for name, value in row.items() if name != "time"}
            for row in learn.recorder.values]


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_a_default_learner_resumed_from_its_checkpoint_ends_as_the_uninterrupted_fit(
        domain: str, tmp_path: Path) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: faster, and the same on every machine
    try:
        make = DOMAINS[domain]()
        # SaveBest makes PreciseBatchNorm recompute before every epoch's validation, so the
        # checkpoint of the interrupted epoch holds recomputed statistics
        extra = [ember.SaveBest()] if domain == "images_save_best" else []
        ember.seed(0)
        whole = make()
        whole.fit_one_cycle(N_EPOCHS, 1e-2, cbs=extra)
        ember.seed(0)
        interrupted = make()
        checkpoint = tmp_path / "checkpoint.pt"
        interrupted.fit_one_cycle(N_EPOCHS, 1e-2, cbs=[*extra, ember.Checkpoint(checkpoint),
                                                       InterruptAfter(INTERRUPT_AFTER)])
        ember.seed(123)  # another random state: the checkpoint must restore everything
        resumed = make()
        resumed.fit_one_cycle(N_EPOCHS, 1e-2, cbs=extra, resume=checkpoint)
    finally:
        torch.set_num_threads(previous)
    names = {type(cb).__name__ for cb in resumed.cbs}
    if domain.startswith("images"):
        assert {"BatchAugment", "PreciseBatchNorm"} <= names
        if not extra:  # the fit that stopped early recomputed after its checkpoint was written
            saved = torch.load(checkpoint, weights_only=True)["model"]
            stopped = interrupted.model.state_dict()
            assert any(not torch.equal(stopped[name], saved[name])
                       for name in saved if name.endswith("running_mean"))
    if domain == "language_model":
        assert "ResetState" in names
    assert [row["epoch"] for row in resumed.recorder.values] == list(range(N_EPOCHS))
    assert _rows(resumed) == _rows(whole)
    expected = whole.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), (domain, name)
