"""ember serve with text models: a request's options reach generation and decoding (a language
model's n_words and temperature, a seq2seq model's max_len and attention); probs is refused
with the reason, and /metadata lists the options each model takes."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

import ember
from ember.serve import create_app
from ember_text.data import LanguageModelData
from ember_text.seq2seq import Seq2SeqData, load_sample
from ember_text.ulmfit import language_model


def test_a_language_models_options_reach_generation(tmp_path) -> None:
    ember.seed(0)
    data = LanguageModelData.from_texts(["one two three four five six"] * 40, bs=4, bptt=8,
                                        min_freq=1)
    learn = ember.learner(data, model=language_model(data, emb_size=8, hidden_size=16,
                                                     n_layers=1), quiet=True)
    predictor = ember.load(learn.export(tmp_path / "lm.ember"))
    client = TestClient(create_app(predictor))
    options = {"n_words": 3, "temperature": 0, "seed": 1}  # JSON's 0 for a float option
    response = client.post("/predict", json={"inputs": ["one two"], "options": options})
    assert response.status_code == 200, response.text
    expected = predictor.predict_batch(["one two"], n_words=3, temperature=0.0, seed=1)
    assert response.json()["predictions"] == expected
    assert expected != predictor.predict_batch(["one two"], n_words=5, temperature=0.0)
    assert client.get("/metadata").json()["options"] == {
        "n_words": 20, "temperature": 1.0, "top_k": None, "seed": None, "no_unk": True}
    refused = client.post("/predict", json={"inputs": ["one"], "options": {"probs": True}})
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(
        "option 'probs' is not available: a language model predicts text")
    bad = client.post("/predict", json={"inputs": ["one"], "options": {"n_words": "many"}})
    assert bad.status_code == 422 and bad.json()["detail"].startswith(
        "option 'n_words' cannot be 'many'")


def test_a_seq2seq_models_options_reach_decoding(tmp_path) -> None:
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:60], bs=16)
    predictor = ember.load(ember.learner(data, quiet=True).export(tmp_path / "numbers.ember"))
    client = TestClient(create_app(predictor))
    options = {"beam": 2, "max_len": 2}
    response = client.post("/predict", json={"inputs": ["deux", "trois"], "options": options})
    assert response.status_code == 200, response.text
    expected = predictor.predict_batch(["deux", "trois"], beam=2, max_len=2)
    assert response.json()["predictions"] == expected and all(len(t) <= 2 for t in expected)
    attention = client.post("/predict", json={"inputs": ["deux"],
                                              "options": {"max_len": 2, "with_attention": True}})
    assert attention.status_code == 200, attention.text
    (translation,) = attention.json()["predictions"]
    reference = predictor.predict("deux", max_len=2, with_attention=True)
    assert translation["text"] == reference.text and translation["tokens"] == reference.tokens
    assert np.allclose(translation["attention"], reference.attention)
    zero = client.post("/predict", json={"inputs": ["deux"], "options": {"beam": 0}})
    assert zero.status_code == 422 and "beam must be at least 1" in zero.json()["detail"]
    unknown = client.post("/predict", json={"inputs": ["deux"], "options": {"n_words": 3}})
    assert unknown.status_code == 422 and unknown.json()["detail"] == (
        "unknown option 'n_words': this seq2seq model takes beam, max_len, length_penalty, "
        "with_attention")
