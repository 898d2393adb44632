"""ONNX export of text classifiers: the default AWD-LSTM classifier and the transformer
classifier take padded token ids whose batch size and length both vary; onnxruntime gives the
outputs of the model in eval mode on real Rotten Tomatoes snippets of other sizes and lengths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember_text import TextData
from ember_text.datasets import load_rotten_tomatoes
from ember_text.ulmfit import text_classifier

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def snippets():
    texts, labels, _ = load_rotten_tomatoes()
    # max_len=16 keeps tracing the LSTMs quick; snippets still vary in length below it
    data = TextData.from_texts(texts[:300], labels[:300], valid_pct=0.2, seed=0, bs=32,
                               max_len=16)
    items = list(texts[300:340])
    shortest = sorted(items, key=len)[:4]
    return data, [["A delight."], shortest, items[:12]]  # three sizes, three lengths


def assert_onnx_matches(path, learn: ember.Learner, batches) -> None:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["tokens"]
    model = learn.model.eval()
    shapes = set()
    for items in batches:
        (tokens,) = learn.data.encode(items)
        shapes.add(tuple(tokens.shape))
        (got,) = session.run(None, {"tokens": tokens.numpy()})
        with torch.no_grad():
            expected = model(tokens).numpy()
        assert got.shape == expected.shape == (len(items), 2)
        assert np.abs(got - expected).max() <= 1e-4
    assert len({length for _, length in shapes}) == len(batches)  # lengths differ too


def test_default_awd_lstm_classifier_exports(snippets, tmp_path):
    data, batches = snippets
    ember.seed(0)
    learn = ember.learner(data, quiet=True, path=tmp_path, device="cpu")
    assert learn.model.ember_config["name"] == "awd_lstm_classifier"
    learn.fit_one_cycle(1, 3e-3)
    path = learn.export_onnx(tmp_path / "awd.onnx")
    assert_onnx_matches(path, learn, batches)


def test_transformer_classifier_exports(snippets, tmp_path):
    data, batches = snippets
    ember.seed(0)
    model = text_classifier(data, arch="transformer", d_model=32, n_heads=2, n_layers=1)
    learn = ember.learner(data, model=model, quiet=True, path=tmp_path, device="cpu")
    learn.fit_one_cycle(1, 3e-3)
    path = learn.export_onnx(tmp_path / "transformer.onnx")
    assert_onnx_matches(path, learn, batches)


def test_unpadded_transformer_batches_give_the_same_outputs_as_padded(snippets):
    """The exported graph always masks padding; in eager mode a batch without padding skips
    the mask only for causal encoders, and the outputs do not change."""
    data, _ = snippets
    torch.manual_seed(0)
    for causal in (False, True):
        model = text_classifier(data, arch="transformer", d_model=16, n_heads=2, n_layers=1,
                                causal=causal).eval()
        ids = torch.randint(2, len(data.vocab), (1, 6))
        padded = torch.cat([ids, torch.ones(1, 3, dtype=torch.long)], dim=1)
        with torch.no_grad():
            assert torch.allclose(model(ids), model(padded), atol=1e-5)


def _length_varies(path, learn: ember.Learner) -> None:
    """The graph at ``path`` takes token ids of any length, and gives the model's outputs."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", "time"]
    model = learn.model.eval()
    for length in (1, 3, 11):
        tokens = torch.randint(2, len(learn.data.vocab), (2, length))
        (got,) = session.run(None, {"tokens": tokens.numpy()})
        if hasattr(model, "reset"):
            model.reset()  # a language model starts each text from a zero state, as the graph
        with torch.no_grad():
            assert np.abs(got - model(tokens).numpy()).max() <= 1e-4


def test_a_second_lstm_export_in_one_process_still_takes_any_length(tmp_path):
    # torch's exporter left the LSTM operator's cached kernel in place, so from the second
    # export of an LSTM in a process the graph was fixed to the example's length: tokens of
    # shape ['batch', 7], and onnxruntime refused any other length
    texts = ["a great film, loved it", "terrible and dull", "wonderful acting",
             "boring plot, bad"] * 10
    data = TextData.from_texts(texts, ["pos", "neg"] * 20, bs=8, max_len=8)
    for name in ("first", "second"):
        ember.seed(0)
        model = text_classifier(data, emb_size=8, hidden_size=16, n_layers=1)
        learn = ember.learner(data, model=model, quiet=True, path=tmp_path, device="cpu")
        _length_varies(learn.export_onnx(tmp_path / f"{name}.onnx", check=False), learn)


def test_a_language_model_is_checked_from_its_state_at_export_for_each_batch(tmp_path):
    # the check ran the model on its two batches in turn, and a language model carried its
    # recurrent state from the first into the second (here both of 3 rows), while the graph
    # starts every batch from zero: a correct export failed "ONNX parity check failed"
    from ember_text.data import LanguageModelData
    from ember_text.ulmfit import language_model

    ember.seed(0)
    data = LanguageModelData.from_texts(["one two three four five six"] * 40, bs=4, bptt=8,
                                        min_freq=1)
    sizes = [tuple(data.example_inputs(n, index=index)[0].shape)
             for n, index in ((3, 0), (1_000_000, 1))]
    assert sizes[0][0] == sizes[1][0] == 3  # the case: one batch size for both
    learn = ember.learner(data, model=language_model(data, emb_size=8, hidden_size=16,
                                                     n_layers=1), quiet=True, device="cpu")
    _length_varies(learn.export_onnx(tmp_path / "lm.onnx"), learn)
