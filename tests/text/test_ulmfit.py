"""ULMFiT's transfer (``ember_text/ulmfit.py``) at its edges; the whole route is in
test_plugin.py."""

from __future__ import annotations

import warnings

import pytest

import ember
from ember_text import TextData, load_encoder, save_encoder, text_classifier
from ember_text.datasets import load_rotten_tomatoes


def test_an_encoder_saved_without_its_vocab_warns_when_read_in_vocab_order(tmp_path) -> None:
    texts, labels, _ = load_rotten_tomatoes()
    data = TextData.from_texts(texts[:200], labels[:200], bs=32)

    def model():
        return text_classifier(data, emb_size=8, hidden_size=16, n_layers=1)

    trained = model()
    bare = save_encoder(trained, tmp_path / "bare.safetensors")  # a bare model: no vocab known
    learn = ember.learner(data, model=model(), quiet=True)
    with pytest.warns(ember.EmberWarning, match="saved without its vocab"):
        load_encoder(learn, bare)
    known = save_encoder(trained, tmp_path / "known.safetensors", vocab=data.vocab)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ember.EmberWarning)
        load_encoder(learn, known)
