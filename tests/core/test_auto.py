"""fit_auto: the learning-rate rule on recorded real finder curves, and training to a budget."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import pytest
import torch

import ember
from ember.auto import fit_auto, rule_lr

from .helpers import blob_data

CURVES = json.loads((Path(__file__).parent / "fixtures" / "lr_find_curves.json").read_text())


@pytest.fixture
def one_thread():
    """One torch thread for the timing tests: on a busy shared machine two threads contend and
    a tiny model's batch time swings tenfold, which says nothing about fit_auto."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


@pytest.mark.parametrize("name", ["signal_cnn_bs32", "signal_cnn_bs4_noisy"])
def test_fit_auto_keeps_the_default_only_on_the_falling_side(name):
    curve = CURVES[name]
    result = ember.LRFindResult.from_curve(curve["lrs"], curve["losses"])
    suggestion, minimum = float(result), result.minimum
    for default in (minimum / 2, suggestion, minimum / 100):  # below the minimum: kept
        assert rule_lr(result, default)[0] == default
    lr, reason = rule_lr(result, minimum * 2)  # past the minimum: unsafe, replaced
    assert lr == suggestion and "unsafe" in reason
    lr, reason = rule_lr(result, minimum / 1000)  # far below: too slow, raised
    assert lr == suggestion and "times lower" in reason
    assert rule_lr(result, None)[0] == suggestion


def test_fit_auto_falls_back_to_the_default_when_the_loss_never_falls():
    curve = CURVES["signal_cnn_starting_too_high"]
    with pytest.warns(ember.EmberWarning, match="never fell"):
        result = ember.LRFindResult.from_curve(curve["lrs"], curve["losses"])
    lr, reason = rule_lr(result, 3e-3, never_fell=True)
    assert lr == 3e-3 and "never fell" in reason


def test_fit_auto_with_epochs_reports_its_choices():
    ember.seed(0)
    learn = ember.learner(blob_data(), quiet=True)
    report = learn.fit_auto(epochs=2, verbose=False)
    assert report["epochs"] == 2 and report["schedule"] == "one_cycle"
    assert report["lr"] > 0 and report["reasons"]
    assert learn.recorder.auto is report
    assert learn.validate()["accuracy"] > 0.85


def test_fit_auto_trains_data_without_a_validation_loader_and_keeps_the_last_weights(
        one_thread):
    # a final fit on every item (from_loaders(train_dl, None)): fit_auto's best-weights saver
    # monitored a metric no epoch records and stopped the fit after its first epoch
    ember.seed(0)
    whole = blob_data(n=256)
    data = ember.Data.from_loaders(whole.train_dl, None)
    for budget in ({"epochs": 2}, {"minutes": 0.02}):
        learn = ember.learner(data, quiet=True)
        learn.candidates = {width: lambda width=width: ember.create_model(
            "mlp", n_in=8, n_out=3, hidden=[width]) for width in (8, 16)}  # never raced
        report = learn.fit_auto(verbose=False, **budget)
        assert report["best"] == {"accuracy": None, "epoch": None}
        assert "no validation loader" in report["reasons"][0]
        assert len(learn.recorder.values) >= 2 and "valid_loss" not in learn.recorder.values[-1]
        assert learn.validate(whole.valid_dl)["accuracy"] > 0.5


def test_fit_auto_without_minutes_or_epochs_trains_the_documented_default():
    # a docs fix: fit_auto() trained 5 epochs without saying so anywhere a user reads; this
    # pins the number and that every place that documents fit_auto states it
    from ember.auto import DEFAULT_EPOCHS

    ember.seed(0)
    learn = ember.learner(blob_data(n=256), quiet=True)
    report = learn.fit_auto(verbose=False)
    assert report["epochs"] == DEFAULT_EPOCHS == 5 and report["budget_seconds"] is None
    assert "5 epochs (default)" in report["reasons"]
    assert len(learn.recorder.values) == 5
    docs = Path(__file__).parents[2] / "docs" / "auto.md"
    for text in (fit_auto.__doc__, ember.Learner.fit_auto.__doc__, docs.read_text()):
        flat = " ".join(text.split())  # the sentence may wrap
        assert "with neither" in flat.lower() and "5 epochs" in flat


def test_fit_auto_reports_a_negative_best_score_with_its_sign():
    from torch.utils.data import TensorDataset

    ember.seed(0)
    x = torch.randn(256, 4)
    y = x.sum(dim=1) + 100.0  # far from what an untrained model gives: R² well below 0
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:192], y[:192]),
                                               TensorDataset(x[192:], y[192:]), bs=64)
    learn = ember.learner(ember.Data.from_loaders(train_dl, valid_dl), metrics=["r2"],
                          quiet=True)
    report = learn.fit_auto(epochs=1, verbose=False)
    recorded = max(row["r2"] for row in learn.recorder.values)
    assert recorded < 0 and report["best"]["r2"] == pytest.approx(recorded)


def test_fit_auto_follows_the_clock_and_keeps_the_best_weights(one_thread):
    ember.seed(0)
    learn = ember.learner(blob_data(n=2000), quiet=True)
    report = learn.fit_auto(minutes=0.25, verbose=False)
    assert report["schedule"] == "one_cycle (clock)", report
    assert report["best"]["accuracy"] == pytest.approx(learn.validate()["accuracy"])
    assert report["best"]["accuracy"] > 0.85, report
    assert abs(report["seconds"] / 15 - 1) < 0.05, report


def test_timing_probe_keeps_its_steps_at_the_one_cycle_start_rate_or_restores_them():
    from ember.auto import _timed_batches
    from ember.callbacks.schedule import ONE_CYCLE_DIV

    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    history = len(learn.recorder.losses)
    _timed_batches(learn, keep=False)
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    batch_seconds, valid_seconds = _timed_batches(learn, keep=True)
    assert batch_seconds > 0 and valid_seconds > 0
    assert not all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert learn.opt.param_groups[0]["lr"] == pytest.approx(float(learn.lr) / ONE_CYCLE_DIV)
    assert len(learn.recorder.losses) == history  # the probe is not in the run's history


def test_progress_is_the_share_of_steps_or_of_the_clock_for_one_fit():
    from ember.auto import TimeBudget
    from ember.callbacks.base import OPEN_ENDED

    seen: list[float] = []

    class Spy(ember.Callback):
        def after_batch(self) -> None:
            if self.learn.training:
                seen.append(self.learn.progress())

    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.fit(2, 1e-3, cbs=[Spy()])
    n = 2 * len(learn.data.train_dl)
    assert seen == pytest.approx([i / n for i in range(n)])  # steps done over steps planned
    seen.clear()
    learn.fit(OPEN_ENDED, 1e-3, cbs=[Spy(), TimeBudget(2.0)])
    assert seen[-1] > 0.9 and seen == sorted(seen)  # the clock, not a million epochs
    assert learn.clock is None  # a clock lasts one fit


class SlowDown(ember.Callback):
    """From ``after`` seconds into the fit, every training batch sleeps ``train`` seconds and
    every validation batch ``valid`` seconds: a machine that turns slow mid-run."""

    def __init__(self, after: float, train: float, valid: float) -> None:
        self.after, self.train, self.valid = after, train, valid

    def before_fit(self) -> None:
        self.start = time.perf_counter()

    def before_batch(self) -> None:
        if time.perf_counter() - self.start > self.after:
            time.sleep(self.train if self.learn.training else self.valid)


def test_fit_auto_lands_on_its_budget_when_the_machine_slows_mid_run(one_thread):
    # the validation turns ~20x slower after 3 s: a reserve measured at the start would be far
    # too small for the last validation (and the epochs too few to fill the time). A run can
    # end up to one validation early (when an epoch's own validation ends at the usable end,
    # the reserve goes unspent), so a validation is kept under 3 % of the budget here.
    ember.seed(0)
    learn = ember.learner(blob_data(n=2000), quiet=True)
    budget = 15.0
    start = time.perf_counter()
    report = fit_auto(learn, minutes=budget / 60, verbose=False,
                      cbs=[SlowDown(after=3.0, train=0.01, valid=0.05)])
    wall = time.perf_counter() - start
    assert abs(wall / budget - 1) < 0.05, report
    assert report["slowdown"] > 1.5, report  # the last epoch's batches really were slower
    assert learn.opt.param_groups[0]["lr"] < report["lr"] / 100  # the schedule reached its end
    assert report["best"]["accuracy"] > 0.85, report


def test_fit_auto_races_registered_candidates(one_thread):
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.candidates = {
        "narrow": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[4]),
        "wide": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[128]),
    }
    report = learn.fit_auto(minutes=0.3, verbose=False)
    assert {row["model"] for row in report["race"]} == {"narrow", "wide"}
    assert report["model"] in ("narrow", "wide")
    slices = [row["seconds"] for row in report["race"]]
    assert max(slices) - min(slices) < 0.25 * max(slices), report["race"]  # equal slices
    assert abs(report["seconds"] / 18 - 1) < 0.05, report  # race and sweeps inside the budget


class _Blind(torch.nn.Module):
    """A classifier that never sees its inputs: only its bias learns (the class frequencies)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * 0)


@pytest.mark.filterwarnings("ignore:fit_auto. the learning-rate sweep:ember.EmberWarning")
def test_after_a_race_the_lr_suggestion_is_the_winners(one_thread):  # the blind one's never fell
    # it was the finder result of the last candidate swept: the final training's rate was then
    # checked against another model's curve (a false "more than 10x the suggestion" warning)
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.candidates = {"sees": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[32]),
                        "blind": _Blind}  # swept last, loses
    results = {}
    sweep = learn.lr_find

    def recording(*args, **kwargs):
        result = sweep(*args, **kwargs)
        results[id(learn.model)] = result
        return result

    learn.lr_find = recording
    report = learn.fit_auto(minutes=0.3, verbose=False)
    assert report["model"] == "sees", report["reasons"]
    assert learn.lr_suggestion is results[id(learn.model)]


class _DivergesAfter(torch.nn.Module):
    """An MLP whose training outputs turn NaN after ``limit`` training calls: with a limit
    past the race's timing batches (three) and inside its sweep, every batch the race trains
    it on is NaN, however few batches the machine's speed gives a slice."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.body = ember.create_model("mlp", n_in=8, n_out=3, hidden=[16])
        self.limit, self.calls = limit, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.training:
            self.calls += 1
            if self.calls > self.limit:
                return out * float("nan")
        return out


def test_a_candidate_stopped_by_the_nan_guard_loses_the_race(one_thread):
    # it records no validation: its score was the row before it (another run's) or NaN, and
    # NaN kept its place in the ranking, so a diverging first candidate won
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.candidates = {"diverges": lambda: _DivergesAfter(limit=5),
                        "sound": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[16])}
    with pytest.warns(ember.EmberWarning):
        report = learn.fit_auto(minutes=0.2, verbose=False)
    race = {row["model"]: row for row in report["race"]}
    assert math.isnan(race["diverges"]["accuracy"]), report["race"]
    assert report["model"] == "sound" and report["best"]["accuracy"] > 0.8, report


@pytest.mark.parametrize("arguments, message", [
    ({"minutes": 0.1, "epochs": 2}, "not both"), ({"minutes": -1}, "positive"),
    ({"minutes": 0}, "positive"), ({"epochs": 0}, "at least 1"), ({"epochs": -2}, "at least 1"),
    ({"epochs": 1.5}, "whole number")])
def test_fit_auto_refuses_a_budget_it_cannot_keep(arguments, message):
    learn = ember.learner(blob_data(), quiet=True)
    with pytest.raises(ember.TrainingError, match=message):
        learn.fit_auto(verbose=False, **arguments)
    assert learn.recorder.values == []  # refused before any training


def test_warnings_raised_during_the_sweep_reach_the_user_once():
    # the sweep records warnings to find "never fell"; every other one was swallowed
    class WarnOnce(ember.Callback):
        def __init__(self) -> None:
            self.fits = 0

        def before_fit(self) -> None:
            self.fits += 1
            if self.fits == 1:  # the first fit of fit_auto is its learning-rate sweep
                for _ in range(3):
                    warnings.warn("the user's own warning", UserWarning, stacklevel=1)

    ember.seed(0)
    learn = ember.learner(blob_data(), quiet=True, cbs=[WarnOnce()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit_auto(epochs=1, verbose=False)
    assert [str(w.message) for w in caught].count("the user's own warning") == 1


def test_learner_fit_auto_adds_cbs_to_the_final_training():
    class Count(ember.Callback):
        def __init__(self) -> None:
            self.epochs = 0

        def after_epoch(self) -> None:
            self.epochs += 1

    ember.seed(0)
    learn = ember.learner(blob_data(), quiet=True)
    counter = Count()
    learn.fit_auto(epochs=2, verbose=False, cbs=[counter])
    assert counter.epochs == 2  # the two epochs trained, not the sweep


def test_a_model_with_a_pretrained_body_is_not_raced_away(one_thread):
    # the race built every candidate anew, so a budget large enough to race replaced the
    # user's pretrained model by a freshly initialised candidate
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.model.ember_config["pretrained"] = "body.pt"  # as vision_model(pretrained=) records
    given = learn.model
    learn.candidates = {
        "narrow": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[4]),
        "wide": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[128]),
    }
    report = learn.fit_auto(minutes=0.1, verbose=False)
    assert "race" not in report and learn.model is given, report["reasons"]
    assert any("pretrained body" in reason for reason in report["reasons"])


class _Epochs(ember.Callback):
    def __init__(self) -> None:
        self.count = 0

    def after_epoch(self) -> None:
        self.count += 1


@pytest.mark.parametrize(("split", "epochs"), [(True, 1), (True, 3), (False, 2)])
def test_fit_auto_with_epochs_trains_that_many_for_a_pretrained_body(split, epochs):
    # it ran fine_tune(max(1, epochs - 1)): one epoch more than asked for epochs=1 (the head's
    # epoch added), one fewer for a model of one parameter group (no head epoch at all)
    ember.seed(0)
    model = (ember.BodyHead(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU()),
                            torch.nn.Linear(16, 3)) if split
             else torch.nn.Sequential(torch.nn.Linear(8, 3)))  # one parameter group
    model.ember_config = {"pretrained": "body.pt"}
    learn = ember.Learner(blob_data(), model, quiet=True)
    counter = _Epochs()
    report = learn.fit_auto(epochs=epochs, verbose=False, cbs=[counter])
    assert report["schedule"] == "fine_tune" and counter.count == epochs


def test_callbacks_given_to_fit_auto_stand_in_for_attached_ones_but_not_for_its_own_saver():
    ember.seed(0)
    attached = ember.GradientClip(1e-3)
    learn = ember.learner(blob_data(n=256), quiet=True, cbs=[attached])
    before = list(learn.cbs)
    seen = []

    class Look(ember.Callback):
        def before_fit(self):
            seen.append([type(cb).__name__ for cb in self.learn.cbs
                         if isinstance(cb, (ember.GradientClip, ember.SaveBest))])

    mine = ember.GradientClip(10.0)
    report = learn.fit_auto(epochs=1, verbose=False,
                            cbs=[mine, ember.SaveBest("valid_loss"), Look()])
    # the final training: the given clip instead of the attached one, and fit_auto's own
    # saver beside the given SaveBest (the report's best comes from fit_auto's)
    assert seen == [["GradientClip", "SaveBest", "SaveBest"]]
    assert report["best"]["epoch"] is not None
    assert learn.cbs == before


class _CandidatesPlugin:
    """A plugin whose defaults for ``_RacedData`` offer two candidate models."""

    @ember.hookimpl
    def ember_defaults(self, data: ember.Data) -> ember.Defaults | None:
        if not isinstance(data, _RacedData):
            return None
        build = {"narrow": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[4]),
                 "wide": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[128])}
        return ember.Defaults(model=build["narrow"], candidates=build,
                              metrics=[ember.Accuracy()])


class _RacedData(ember.Data):
    pass


def test_a_model_given_to_learner_is_trained_not_raced_away(one_thread):
    # ember.learner(data, model=mine) kept the plugin's candidates, so fit_auto raced them and
    # ended with a plugin model, the user's own thrown away
    source = blob_data(n=1000)
    data = _RacedData.from_loaders(source.train_dl, source.valid_dl)
    ember.register_plugin(_CandidatesPlugin(), name="candidates_plugin")
    try:
        assert set(ember.learner(data, quiet=True).candidates) == {"narrow", "wide"}
        ember.seed(0)
        mine = ember.create_model("mlp", n_in=8, n_out=3, hidden=[32])
        learn = ember.learner(data, model=mine, quiet=True)
        assert learn.candidates == {}
        report = learn.fit_auto(minutes=0.1, verbose=False)
    finally:
        ember.unregister_plugin("candidates_plugin")
    assert "race" not in report and learn.model is mine, report["reasons"]
    assert report["best"]["accuracy"] > 0.8, report


class _InterruptInFit(ember.Callback):
    """Raises KeyboardInterrupt (Ctrl-C) at the first training batch of fit number ``fit``."""

    def __init__(self, fit: int) -> None:
        self.fit, self.fits = fit, 0

    def before_fit(self) -> None:
        self.fits += 1

    def after_batch(self) -> None:
        if self.learn.training and self.fits == self.fit:
            raise KeyboardInterrupt


def test_ctrl_c_during_the_race_keeps_the_best_candidate_so_far_and_says_so(one_thread):
    # the learner was left with whichever candidate was training when Ctrl-C came, and the
    # report said neither which model it was nor how the race had gone
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    built = {}

    def candidate(name: str, hidden: int):
        def build() -> torch.nn.Module:
            built[name] = ember.create_model("mlp", n_in=8, n_out=3, hidden=[hidden])
            return built[name]
        return build

    learn.candidates = {"narrow": candidate("narrow", 16), "wide": candidate("wide", 128)}
    # fits: the timing probe, the two candidates' timings and sweeps, then the race's first
    # run (narrow), its second (wide)
    learn.add_cbs([_InterruptInFit(7)])
    report = learn.fit_auto(minutes=0.3, verbose=False)
    assert report["interrupted"]
    assert [row["model"] for row in report["race"]] == ["narrow"], report
    assert report["model"] == "narrow" and learn.model is built["narrow"], report["reasons"]
    assert any("race interrupted" in reason for reason in report["reasons"])


class _Sleepy(torch.nn.Module):
    """A small MLP that sleeps ``seconds`` in every forward pass: a candidate far slower than
    the learner's own model, the one fit_auto times."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.body = ember.create_model("mlp", n_in=8, n_out=3, hidden=[16])
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return self.body(x)


def _race_spent(report: dict) -> float:
    """Seconds the race planned: its timing, its sweeps and its slices."""
    plan = report["race_plan"]
    return (plan["timing_seconds"] + sum(s["seconds"] for s in plan["sweeps"].values())
            + sum(row["seconds"] for row in report["race"]))


def _no_negative_numbers(report: dict) -> None:
    import re

    assert report["epochs"] >= 0 and report["seconds"] > 0, report
    assert report.get("epochs_run", 0) >= 0, report
    for reason in report["reasons"]:
        assert not re.search(r"(^|[\s(~])-\d", reason), reason


def test_a_candidate_too_slow_for_the_race_is_dropped_not_run_past_the_budget(one_thread):
    # the race planned every candidate's sweep (100 steps) from the learner's model's timing:
    # a candidate 100 times slower spent the race's share and more in its sweep alone, the run
    # overran its budget and the report read "-21 s left hold about -2247 epochs"
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.candidates = {"small": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[16]),
                        "slow": lambda: _Sleepy(0.15)}
    budget = 9.0
    start = time.perf_counter()
    report = learn.fit_auto(minutes=budget / 60, verbose=False)
    wall = time.perf_counter() - start
    assert wall < budget * 1.15, report  # within the budget, with room for a loaded machine
    _no_negative_numbers(report)
    assert "slow" in report["race_plan"]["dropped"], report["race_plan"]
    assert any("slow" in reason and "dropped" in reason for reason in report["reasons"])
    assert report["model"] == "small" and report["best"]["accuracy"] > 0.8, report
    assert _race_spent(report) <= 0.25 * budget * 1.1, report


class _SweepSteps(ember.Callback):
    """Counts the training batches of every learning-rate sweep, by the model swept."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def before_fit(self) -> None:
        from ember.callbacks.schedule import LRFinder

        sweeping = any(isinstance(cb, LRFinder) for cb in self.learn.cbs)
        self.model = type(self.learn.model).__name__ if sweeping else None

    def after_batch(self) -> None:
        if self.model is not None and self.learn.training:
            self.steps[self.model] = self.steps.get(self.model, 0) + 1


def test_a_slow_candidates_sweep_is_sized_to_the_race(one_thread):
    # a candidate ~5 times slower than the learner's model keeps its place in the race, with
    # a sweep shortened to its share of the race instead of the 100 steps sized for the model
    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    learn.candidates = {"small": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[16]),
                        "slower": lambda: _Sleepy(0.008)}
    counter = _SweepSteps()
    learn.add_cbs([counter])
    budget = 12.0
    start = time.perf_counter()
    report = learn.fit_auto(minutes=budget / 60, verbose=False)
    wall = time.perf_counter() - start
    assert wall < budget * 1.15, report
    _no_negative_numbers(report)
    assert counter.steps["_Sleepy"] < 90, counter.steps  # it swept ~100, sized for "small"
    sweeps = report["race_plan"]["sweeps"]
    assert 30 <= sweeps["slower"]["steps"] < min(sweeps["small"]["steps"], 100), sweeps
    assert {row["model"] for row in report["race"]} == {"small", "slower"}, report["race"]
    assert _race_spent(report) <= 0.25 * budget * 1.1, report


def test_fit_auto_on_a_learner_whose_default_rate_is_one_per_group(one_thread):
    # Learner(lr=[...]) is one rate per group; fit_auto's timing probe read it with float()
    # and failed with a raw TypeError
    ember.seed(0)
    learn = ember.learner(blob_data(n=256), quiet=True, lr=[1e-3, 1e-2])
    report = learn.fit_auto(minutes=0.05, verbose=False)
    assert report["lr"] > 0 and learn.validate()["accuracy"] > 0.8


def test_the_users_tracking_callbacks_see_the_final_training_only(one_thread, tmp_path):
    # the timing probe and the race ran with the callbacks attached to the learner: a
    # candidate's slice wrote the user's checkpoint file with its own architecture, and early
    # stopping and save-best ran in every slice (as lr_find's sweep already left them out)
    class Fits(ember.Callback):
        def __init__(self) -> None:
            self.models: list[torch.nn.Module] = []

        def before_fit(self) -> None:
            self.models.append(self.learn.model)

    class CountedCheckpoint(ember.Checkpoint, Fits):
        def __init__(self, path) -> None:
            ember.Checkpoint.__init__(self, path)
            Fits.__init__(self)

        def before_fit(self) -> None:
            Fits.before_fit(self)
            super().before_fit()

    class CountedEarlyStopping(ember.EarlyStopping, Fits):
        def __init__(self) -> None:
            ember.EarlyStopping.__init__(self, patience=50)
            Fits.__init__(self)

        def before_fit(self) -> None:
            Fits.before_fit(self)
            super().before_fit()

    ember.seed(0)
    learn = ember.learner(blob_data(n=1000), quiet=True)
    checkpoint, stopping = CountedCheckpoint(tmp_path / "run.pt"), CountedEarlyStopping()
    learn.add_cbs([checkpoint, stopping])
    learn.candidates = {
        "narrow": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[4]),
        "wide": lambda: ember.create_model("mlp", n_in=8, n_out=3, hidden=[128]),
    }
    report = learn.fit_auto(minutes=0.3, verbose=False)
    assert {row["model"] for row in report["race"]} == {"narrow", "wide"}  # it raced
    for cb in (checkpoint, stopping):
        assert cb.models == [learn.model], report["reasons"]  # one fit: the final training
    assert checkpoint in learn.cbs and stopping in learn.cbs  # attached again after the race
    saved = ember.export.read_checkpoint(tmp_path / "run.pt")
    assert {name: value.shape for name, value in saved["model"].items()} == {
        name: value.shape for name, value in learn.model.state_dict().items()}  # the winner's
