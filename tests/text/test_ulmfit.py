"""ULMFiT's transfer (``ember_text/ulmfit.py``) at its edges; the whole route is in
test_plugin.py."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import ember
from ember_text import TextData, load_encoder, save_encoder, text_classifier
from ember_text.datasets import load_rotten_tomatoes
from ember_text.ulmfit import fine_tune_classifier


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


def test_encoder_and_vocab_paths_starting_with_a_tilde_are_in_the_home_folder(
        tmp_path, monkeypatch) -> None:
    # save_encoder(lm, "~/encoder.safetensors") wrote into a new folder named "~" in the
    # working directory, and pretrained= / load_encoder / Vocab read from there
    from ember_text import Vocab

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    texts, labels, _ = load_rotten_tomatoes()
    data = TextData.from_texts(texts[:200], labels[:200], bs=32)
    sizes = {"emb_size": 8, "hidden_size": 16, "n_layers": 1}
    learn = ember.learner(data, model=text_classifier(data, **sizes), quiet=True)
    assert save_encoder(learn, "~/encoder.safetensors") == home / "encoder.safetensors"
    assert (home / "encoder.safetensors").is_file()
    text_classifier(data, pretrained="~/encoder.safetensors", **sizes)
    load_encoder(learn, "~/encoder.safetensors")
    assert data.vocab.save("~/vocab.json") == home / "vocab.json"
    assert Vocab.load("~/vocab.json") == data.vocab
    assert not (work / "~").exists()


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


def _rewrite(path, change_metadata=None, change_tensors=None) -> None:
    """Write ``path`` again with its header or weights changed (a damaged copy)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    tensors = load_file(str(path))
    if change_metadata:
        change_metadata(metadata)
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, str(path), metadata=metadata)


@pytest.fixture
def encoder_file(tmp_path):
    texts, labels, _ = load_rotten_tomatoes()
    data = TextData.from_texts(texts[:200], labels[:200], bs=32)
    learn = ember.learner(data, model=text_classifier(data, emb_size=8, hidden_size=16,
                                                      n_layers=1), quiet=True)
    return learn, data, save_encoder(learn, tmp_path / "encoder.safetensors")


def test_an_encoder_whose_vocab_was_changed_after_saving_is_refused(encoder_file) -> None:
    # a changed vocab entry remapped the embedding rows to the wrong words without a word
    learn, data, path = encoder_file
    assert load_encoder(learn, path) is None  # intact: loads

    def swap_two_tokens(metadata):
        itos = json.loads(metadata["vocab"])
        itos[10], itos[11] = itos[11], itos[10]
        metadata["vocab"] = json.dumps(itos)

    _rewrite(path, change_metadata=swap_two_tokens)
    with pytest.raises(ember.TrainingError, match=r"damaged.*header"):
        load_encoder(learn, path)
    with pytest.raises(ember.TrainingError, match="damaged"):
        text_classifier(data, pretrained=path)


def test_an_encoder_whose_weights_were_changed_after_saving_is_refused(encoder_file) -> None:
    learn, _, path = encoder_file

    def nudge(tensors):
        name = next(iter(tensors))
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] += 1.0

    _rewrite(path, change_tensors=nudge)
    with pytest.raises(ember.TrainingError, match=r"damaged.*weights"):
        load_encoder(learn, path)


def test_an_encoder_saved_before_it_carried_digests_still_loads(encoder_file) -> None:
    learn, _, path = encoder_file

    def drop_digests(metadata):
        for key in [key for key in metadata if key.endswith("sha256")]:
            del metadata[key]

    _rewrite(path, change_metadata=drop_digests)
    load_encoder(learn, path)


@pytest.mark.parametrize("arch", ["awd_lstm", "transformer"])
def test_a_regressor_starts_at_the_scale_of_its_targets_and_exports_it(arch, tmp_path) -> None:
    # review scores of 100-200 were learnt from an output that starts near 0: after three
    # epochs the default model still predicted ~0.1 for every review (r2 about -4)
    ember.seed(0)
    texts = [f"{word} film number {i}" for i in range(40) for word in ("good", "bad")]
    scores = [150.0 + (30.0 if text.startswith("good") else -30.0) + i % 7
              for i, text in enumerate(texts)]
    data = TextData.from_texts(texts, scores, min_freq=1, bs=16)
    model = text_classifier(data, arch=arch)
    learn = ember.learner(data, model=model, quiet=True)
    predictions, targets = learn.get_preds()  # untrained: the head's output is rescaled
    assert abs(float(predictions.mean()) - float(targets.mean())) < float(targets.std())
    loaded = ember.load(learn.export(tmp_path / "scores.ember"))
    assert loaded.predict("good film") == pytest.approx(learn.predict("good film"), rel=1e-5)


@pytest.mark.parametrize("epochs", [-1, 2.5, "4"])
def test_fine_tune_classifier_refuses_epochs_that_are_no_whole_count(epochs) -> None:
    # -1 and 2.5 trained four epochs without a word
    texts = [f"{word} film number {i}" for i in range(20) for word in ("good", "bad")]
    data = TextData.from_texts(texts, [text.split()[0] for text in texts], min_freq=1, bs=16)
    learn = ember.learner(data, model=text_classifier(data), quiet=True)
    with pytest.raises(ember.TrainingError, match=r"epochs=.*whole number of epochs"):
        fine_tune_classifier(learn, epochs=epochs)
    assert learn.epochs_run == 0


def test_fine_tune_classifier_of_no_epochs_trains_nothing() -> None:
    # as learn.fit(0); it trained four epochs
    texts = [f"{word} film number {i}" for i in range(20) for word in ("good", "bad")]
    data = TextData.from_texts(texts, [text.split()[0] for text in texts], min_freq=1, bs=16)
    learn = ember.learner(data, model=text_classifier(data), quiet=True)
    before = [p.detach().clone() for p in learn.model.parameters()]
    fine_tune_classifier(learn, epochs=0)
    assert learn.epochs_run == 0
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))


@pytest.mark.parametrize("factor", [0.5, 0, float("nan"), "2.6"])
def test_fine_tune_classifier_refuses_a_factor_below_one_before_training(factor) -> None:
    # factor=0.5 trained the head's stage, then failed on a reversed slice the user never wrote
    texts = [f"{word} film number {i}" for i in range(20) for word in ("good", "bad")]
    data = TextData.from_texts(texts, [text.split()[0] for text in texts], min_freq=1, bs=16)
    learn = ember.learner(data, model=text_classifier(data), quiet=True)
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ember.TrainingError, match="factor"):
        fine_tune_classifier(learn, epochs=3, factor=factor)
    assert learn.epochs_run == 0
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))


@pytest.mark.parametrize("lr", [slice(1e-4, 1e-2), [1e-3, 1e-3, 1e-3, 1e-2], None])
def test_fine_tune_classifier_takes_one_rate_and_says_so(lr) -> None:
    # a slice (what learn.fit_one_cycle takes) was a TypeError "unsupported operand type(s)
    # for /: 'slice' and 'int'" after the rate check had let it through
    texts = [f"{word} film number {i}" for i in range(20) for word in ("good", "bad")]
    data = TextData.from_texts(texts, [text.split()[0] for text in texts], min_freq=1, bs=16)
    learn = ember.learner(data, model=text_classifier(data), quiet=True)
    with pytest.raises(ember.TrainingError, match=r"lr=.*one learning rate, the head's"):
        fine_tune_classifier(learn, epochs=1, lr=lr)
    assert learn.epochs_run == 0
