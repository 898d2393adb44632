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


def test_an_encoder_read_in_the_other_direction_is_refused(tmp_path) -> None:
    # ULMFiT trains a forward and a backward encoder; giving the backward one to the forward
    # classifier reads every text the wrong way round, a mix-up that trains silently and badly
    texts, labels, _ = load_rotten_tomatoes()
    forward = TextData.from_texts(texts[:200], labels[:200], bs=32)
    backward = TextData.from_texts(texts[:200], labels[:200], bs=32, backwards=True)
    sizes = {"emb_size": 8, "hidden_size": 16, "n_layers": 1}
    backward_learn = ember.learner(backward, model=text_classifier(backward, **sizes),
                                   quiet=True)
    encoder = save_encoder(backward_learn, tmp_path / "backward.safetensors")
    with pytest.raises(ember.TrainingError, match=r"backward.*forward.*backwards=True"):
        text_classifier(forward, pretrained=encoder)
    forward_learn = ember.learner(forward, model=text_classifier(forward, **sizes), quiet=True)
    with pytest.raises(ember.TrainingError, match="backward"):
        load_encoder(forward_learn, encoder)
    text_classifier(backward, pretrained=encoder)          # the matching direction still loads
    bare = save_encoder(backward_learn.model, tmp_path / "bare.safetensors",
                        vocab=backward.vocab)              # direction unknown: not checked
    text_classifier(forward, pretrained=bare)
