"""fit_auto: the learning-rate rule on recorded real finder curves, and training to a budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ember

from .helpers import blob_data

CURVES = json.loads((Path(__file__).parent / "fixtures" / "lr_find_curves.json").read_text())


@pytest.mark.parametrize("name", ["signal_cnn_bs32", "signal_cnn_bs4_noisy"])
def test_rule_picks_a_rate_on_the_falling_side_of_real_curves(name):
    curve = CURVES[name]
    result = ember.LRFindResult.from_curve(curve["lrs"], curve["losses"])
    losses = dict(zip(curve["lrs"], curve["losses"]))
    start_loss = curve["losses"][0]
    chosen = min(curve["lrs"], key=lambda lr: abs(lr - float(result)))
    assert 1e-5 < float(result) < result.minimum  # below the minimum, never past it
    assert losses[chosen] < start_loss  # the loss is already falling there


def test_rule_falls_back_safely_when_the_loss_never_falls():
    curve = CURVES["signal_cnn_starting_too_high"]
    with pytest.warns(ember.EmberWarning, match="never fell"):
        result = ember.LRFindResult.from_curve(curve["lrs"], curve["losses"])
    assert float(result) == 1e-3


def test_fit_auto_with_epochs_reports_its_choices():
    ember.seed(0)
    learn = ember.learner(blob_data(), quiet=True)
    report = learn.fit_auto(epochs=2, verbose=False)
    assert report["epochs"] == 2 and report["schedule"] == "one_cycle"
    assert report["lr"] > 0 and report["reasons"]
    assert learn.recorder.auto is report
    assert learn.validate()["accuracy"] > 0.85


def test_fit_auto_follows_the_clock_and_keeps_the_best_weights():
    ember.seed(0)
    learn = ember.learner(blob_data(n=2000), quiet=True)
    report = learn.fit_auto(minutes=0.2, verbose=False)
    assert report["schedule"] == "one_cycle (clock)"
    assert report["best"]["accuracy"] == pytest.approx(learn.validate()["accuracy"])
    assert report["best"]["accuracy"] > 0.85


def test_fit_auto_races_registered_candidates():
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.candidates = {
        "narrow": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[4]),
        "wide": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[128]),
    }
    report = learn.fit_auto(minutes=0.3, verbose=False)
    assert {row["model"] for row in report["race"]} == {"narrow", "wide"}
    assert report["model"] in ("narrow", "wide")
