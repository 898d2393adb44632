"""The example third-party plugin works through public hooks only, with no change to core."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from ember_signal import SignalData, sequential_fashion

import ember
from ember.cli import main

SOURCE = Path(__file__).resolve().parents[2] / "examples" / "ember-signal" / "ember_signal"


def test_learner_picks_up_the_new_domain_and_beats_chance():
    ember.seed(0)
    signals, labels = sequential_fashion(600)
    learn = ember.learner(SignalData.from_arrays(signals, labels, bs=32), quiet=True)
    assert learn.model.ember_config["name"] == "signal_cnn"
    learn.fit_one_cycle(3)
    assert learn.validate()["accuracy"] > 0.45  # ten balanced classes: chance is 0.10


def test_quickstart_lists_and_runs_its_demo(capsys):
    assert main(["quickstart", "signal", "--smoke"]) == 0
    assert "signal/sequential_fashion" in capsys.readouterr().out


def test_bad_signals_get_clear_errors():
    signals, labels = sequential_fashion(20)
    signals[3, 5, 2] = np.nan
    with pytest.raises(ember.DataError, match="signal 3 contains NaN"):
        SignalData.from_arrays(signals, labels)
    with pytest.raises(ember.DataError, match="20 signals but 19 labels"):
        SignalData.from_arrays(sequential_fashion(20)[0], labels[:19])


def test_only_public_core_api_is_imported():
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "ember."):
                assert not any(alias.name.startswith("_") for alias in node.names), path
                assert not any(part.startswith("_") for part in node.module.split(".")), path


def test_signal_model_is_served_over_rest(tmp_path):
    from fastapi.testclient import TestClient

    from ember.serve import create_app

    ember.seed(0)
    signals, labels = sequential_fashion(300)
    learn = ember.learner(SignalData.from_arrays(signals, labels, bs=32), quiet=True,
                          path=tmp_path)
    learn.fit_one_cycle(1)
    predictor = ember.load(learn.export("signals"))
    items = [signal.tolist() for signal in sequential_fashion(310)[0][300:]]
    client = TestClient(create_app(predictor))
    response = client.post("/predict", json={"inputs": items})
    assert response.status_code == 200
    assert response.json()["predictions"] == predictor.predict_batch(items)
    assert client.post("/predict", json={"inputs": [[1.0, 2.0]]}).status_code == 422



@pytest.mark.parametrize(("inputs", "message"), [
    (lambda s: [s[0], s[1][:10]], r"item 1 has shape \(10, 28\), item 0 \(28, 28\)"),
    (lambda s: [s[0], "abc"], r"item 1 is not a signal"),
    (lambda s: [[[1.0, 2.0], [3.0]]], r"item 0 is not a signal"),
    (lambda s: [s[0], {"a": 1}], r"item 1 is not a signal"),
    (lambda s: [5.0], r"item 0 has shape \(\)"),
    (lambda s: [[]], r"item 0 has shape \(0, 1\)"),
])
def test_a_bad_signal_is_a_422_naming_it_not_a_server_error(tmp_path, inputs, message):
    # a batch of two lengths, a string or ragged rows were a ValueError from np.stack or
    # np.asarray: ember serve answered 500 "internal error" to the client's own mistake
    from fastapi.testclient import TestClient

    from ember.serve import create_app

    ember.seed(0)
    signals, labels = sequential_fashion(100)
    learn = ember.learner(SignalData.from_arrays(signals, labels, bs=32), quiet=True,
                          path=tmp_path)
    predictor = ember.load(learn.export("signals"))
    items = [item.tolist() if hasattr(item, "tolist") else item for item in inputs(signals)]
    with pytest.raises(ember.DataError, match=message) as refusal:
        predictor.predict_batch(items)
    response = TestClient(create_app(predictor)).post("/predict", json={"inputs": items})
    assert response.status_code == 422
    assert response.json()["detail"] == str(refusal.value)


@pytest.mark.parametrize(("bad", "message"), [
    (lambda signal: signal[:10], r"item 3 has shape \(10, 28\), item 2 \(28, 28\)"),
    (lambda signal: "abc", r"item 3 is not a signal"),
    (lambda signal: np.where(np.arange(28)[:, None] == 5, np.nan, signal),
     r"item 3 contains NaN or inf"),
])
def test_a_bad_signal_is_named_by_its_position_among_all_items(bad, message):
    # predict_batch encodes in chunks of bs: the fourth signal, refused in the second chunk of
    # two, was "item 1" ("items: signal 1" for NaN), sending the user to the wrong signal
    signals, labels = sequential_fashion(60)
    learn = ember.learner(SignalData.from_arrays(signals, labels, bs=16), quiet=True)
    items = [*signals[:3], bad(signals[3])]
    with pytest.raises(ember.DataError, match=message):
        learn.predict_batch(items, bs=2)


def test_a_class_the_random_split_left_out_of_training_is_named_in_a_warning():
    # the built-in plugins warn (ember.warn_unseen_classes); the example kept it silently
    signals, labels = sequential_fashion(60)
    _, valid_idx = ember.split_indices(60, 0.2, seed=0)
    labels[valid_idx[0]] = "Sock"  # the only one, in validation
    with pytest.warns(ember.EmberWarning, match=r"every signal of class 'Sock' \(1 signal\)"):
        data = SignalData.from_arrays(signals, labels, seed=0)
    assert "Sock" in data.classes
