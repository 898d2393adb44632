"""TeacherForcing: schedules, recording, and 0 at validation and inference."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import itertools

import pytest

import ember
from ember_text.seq2seq import SCHEDULES, Seq2SeqData, Seq2SeqRNN, TeacherForcing, load_sample
from ember_text.seq2seq.callbacks import schedule_value

from ...core.helpers import InterruptAfter

TIME_SCHEDULES = [s for s in SCHEDULES if s != "adaptive"]


@pytest.mark.parametrize("schedule", TIME_SCHEDULES)
def test_every_schedule_starts_at_start_and_ends_at_floor(schedule: str) -> None:
    values = [schedule_value(schedule, p / 10, start=0.9, floor=0.2, rate=8.0)
              for p in range(11)]
    assert values[0] == pytest.approx(0.9)
    if schedule == "constant":
        assert set(values) == {0.9}
        return
    assert all(a >= b for a, b in itertools.pairwise(values))  # never rises
    assert values[-1] == pytest.approx(0.2, abs=1e-3 if schedule == "exponential" else 1e-9)


def test_schedule_shapes_differ_in_the_middle() -> None:
    middle = {s: schedule_value(s, 0.25) for s in TIME_SCHEDULES}
    assert middle["linear"] == pytest.approx(0.75)
    assert middle["cosine"] == pytest.approx(0.8535533905932737)
    assert middle["exponential"] < middle["linear"] < middle["cosine"] < middle["inverse_sigmoid"]


def test_default_is_scheduled_sampling_decaying_early_to_a_quarter() -> None:
    """The default (see its docstring): inverse sigmoid, per sample, 1.0 → 0.25, the truth
    through the warm-up, then mostly its own predictions from half-way on."""
    default = TeacherForcing()
    assert (default.schedule, default.start, default.floor, default.mode) == (
        "inverse_sigmoid", 1.0, 0.25, "sample")
    ratios = [default.ratio_at(p / 100) for p in range(101)]
    assert ratios[0] == 1.0 and ratios[-1] == pytest.approx(0.25)
    assert all(a >= b for a, b in itertools.pairwise(ratios))
    assert min(ratios[:6]) >= 0.98  # the first 5% (warm-up): the truth
    assert 0.6 < ratios[25] < 0.65 and 0.3 < ratios[40] < 0.35  # the decay
    assert max(ratios[50:]) < 0.27  # from half-way: near the floor
    assert "inverse_sigmoid" in repr(default) and "midpoint=0.25" in repr(default)


def test_adaptive_ratio_follows_accuracy_not_time() -> None:
    """Start while the model is poor, the floor once it is accurate, linear in between; the
    progress of the fit does not matter."""
    def ratio(accuracy: float, progress: float = 0.5) -> float:
        return schedule_value("adaptive", progress, start=1.0, floor=0.5, accuracy=accuracy,
                              accuracy_low=0.8, accuracy_high=0.9)

    assert ratio(0.0) == ratio(0.5) == ratio(0.8) == 1.0
    assert ratio(0.85) == pytest.approx(0.75)
    assert ratio(0.9) == ratio(0.99) == ratio(1.0) == 0.5
    assert ratio(0.3, progress=0.0) == ratio(0.3, progress=1.0) == 1.0
    assert ratio(0.95, progress=0.0) == ratio(0.95, progress=1.0) == 0.5
    values = [ratio(a / 100) for a in range(101)]
    assert all(a >= b for a, b in itertools.pairwise(values))  # never rises with accuracy
    callback = TeacherForcing("adaptive", floor=0.25, accuracy_low=0.5, accuracy_high=0.7)
    assert callback.ratio_at(0.9, accuracy=0.2) == 1.0
    assert callback.ratio_at(0.0, accuracy=0.8) == 0.25


def test_adaptive_accuracy_is_the_running_token_accuracy_of_the_trained_batch() -> None:
    """The accuracy comes from the logits of the batch already computed: argmax == target on
    non-pad tokens, a bias-corrected moving average (the first batch's own accuracy)."""
    import types

    import torch

    callback = TeacherForcing("adaptive", smoothing=0.5)
    callback.sweeping, callback.measured = False, 0
    targets = torch.tensor([[5, 6, 2, 0], [7, 2, 0, 0]])  # 5 real tokens, 3 pads
    logits = torch.zeros(2, 4, 9)
    for row, column, token in [(0, 0, 5), (0, 1, 6), (0, 2, 3), (1, 0, 7), (1, 1, 4),
                               (0, 3, 0), (1, 2, 0), (1, 3, 0)]:
        logits[row, column, token] = 1.0  # right on 3 of 5 real tokens; pads "right" too
    callback.learn = types.SimpleNamespace(training=True, yb=targets, pred=logits)
    callback.after_loss()
    assert callback.accuracy == pytest.approx(3 / 5)  # pads never count
    logits[0, 2] = 0.0
    logits[0, 2, 2] = 1.0
    logits[1, 1] = 0.0
    logits[1, 1, 2] = 1.0  # now all 5 right
    callback.after_loss()
    assert callback.accuracy == pytest.approx(0.6 + (1.0 - 0.6) * 0.5 / 0.75)
    callback.learn.training = False  # validation batches are never measured
    callback.after_loss()
    assert callback.measured == 2


def test_adaptive_accuracy_skips_the_padding_of_real_seq2seq_targets() -> None:
    """Seq2SeqData pads targets with -100 (what the loss skips): a batch predicted perfectly
    reads accuracy 1.0, not the share of real tokens (about 0.89 on the bundled sample, below
    the default accuracy_low of 0.9, so the adaptive schedule never decayed)."""
    import types

    import torch

    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:200], bs=16, level="word",
                                  tgt_level="char")
    targets = next(target for *_, target in data.train_dl if bool((target == -100).any()))
    logits = torch.nn.functional.one_hot(targets.clamp(min=0), len(data.tgt_vocab)).float()
    callback = TeacherForcing("adaptive")
    callback.sweeping, callback.measured = False, 0
    callback.learn = types.SimpleNamespace(training=True, yb=targets, pred=logits)
    callback.after_loss()
    assert callback.accuracy == pytest.approx(1.0)
    assert callback.ratio_at(0.5) == callback.floor  # perfectly accurate: the floor
    wrong = logits.clone()
    first_real = (targets[0] >= 0).nonzero()[0, 0]
    wrong[0, first_real] = torch.nn.functional.one_hot(
        (targets[0, first_real] + 1) % len(data.tgt_vocab), len(data.tgt_vocab)).float()
    callback.measured = 0
    callback.learn.pred = wrong
    callback.after_loss()
    assert callback.accuracy == pytest.approx(1 - 1 / int((targets >= 0).sum()))


def adaptive_fit(seed: int) -> tuple[TeacherForcing, list[float]]:
    ember.seed(seed)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:400], bs=16, level="word",
                                  tgt_level="char")
    learn = ember.learner(data, quiet=True)
    learn.remove_cbs(learn.callback("teacher_forcing"))
    forcing, spy = TeacherForcing("adaptive", floor=0.3, accuracy_low=0.35,
                                  accuracy_high=0.5, smoothing=0.8), RatioSpy()
    learn.add_cbs([forcing])
    learn.fit_one_cycle(3, 1e-2, cbs=[spy])
    assert spy.valid and set(spy.valid) == {0.0}  # 0 at validation
    assert learn.model.teacher_forcing_ratio == 0.0  # and after the fit, for inference
    assert forcing.ratios == spy.train  # recorded per training batch, as applied
    return forcing, spy.train


def test_adaptive_callback_high_while_poor_floor_once_accurate_deterministic() -> None:
    forcing, _ = adaptive_fit(seed=0)
    n = len(forcing.ratios)
    assert len(forcing.accuracies) == len(forcing.iters) == n
    for ratio, accuracy in zip(forcing.ratios, forcing.accuracies):
        assert ratio == pytest.approx(forcing.ratio_at(0.0, accuracy=accuracy))
    poor = [r for r, a in zip(forcing.ratios, forcing.accuracies) if a <= 0.35]
    accurate = [r for r, a in zip(forcing.ratios, forcing.accuracies) if a >= 0.5]
    assert forcing.ratios[0] == 1.0 and len(poor) >= 5 and set(poor) == {1.0}
    assert len(accurate) >= 5 and set(accurate) == {0.3}  # reached the floor
    again, _ = adaptive_fit(seed=0)  # the same seed: the same accuracies, the same ratios
    assert again.ratios == forcing.ratios and again.accuracies == forcing.accuracies


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="schedule must be one of"):
        TeacherForcing("sawtooth")
    with pytest.raises(ValueError, match="accuracy_low"):
        TeacherForcing("adaptive", accuracy_low=0.9, accuracy_high=0.8)
    with pytest.raises(ValueError, match="smoothing"):
        TeacherForcing("adaptive", smoothing=1.0)
    with pytest.raises(ValueError, match="probability"):
        TeacherForcing(floor=1.5)
    with pytest.raises(ValueError, match="mode"):
        TeacherForcing(mode="token")


def test_schedule_shapes_that_cannot_decay_are_refused_when_the_callback_is_made() -> None:
    """A zero steepness (0/0), a curve flat over the fit, or a negative rate (ratios grow past
    1) used to fail at the fit's first batch with ZeroDivisionError, or give ratios of 3.96."""
    with pytest.raises(ValueError, match="non-zero steepness"):
        TeacherForcing(steepness=0)
    with pytest.raises(ValueError, match="flat over the whole fit"):
        TeacherForcing(steepness=1000, midpoint=5.0)
    with pytest.raises(ValueError, match="rate must be a finite number, 0 or more"):
        TeacherForcing("exponential", rate=-2)
    with pytest.raises(ValueError, match="rate"):
        schedule_value("exponential", 0.5, rate=-2)
    TeacherForcing("linear", rate=-2)  # a shape the schedule does not use is not read


def test_a_very_steep_inverse_sigmoid_is_a_step_not_an_overflow() -> None:
    """steepness=1000 used to raise OverflowError (math range error) at every batch."""
    forcing = TeacherForcing(steepness=1000, midpoint=0.25, floor=0.25)
    ratios = [forcing.ratio_at(p / 10) for p in range(11)]
    assert ratios[:3] == [1.0, 1.0, 1.0] and ratios[3:] == [0.25] * 8
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:96], bs=16)
    learn = ember.learner(data, cbs=[forcing], quiet=True)
    learn.fit(1, 1e-3)
    assert forcing.ratios[0] == 1.0 and forcing.ratios[-1] == 0.25


class RatioSpy(ember.Callback):
    """Notes the model's ratio at every batch, by phase."""

    order = ember.Order.DEFAULT

    def __init__(self) -> None:
        self.train: list[float] = []
        self.valid: list[float] = []

    def before_batch(self) -> None:
        ratio = self.learn.model.teacher_forcing_ratio
        (self.train if self.learn.training else self.valid).append(ratio)


def test_callback_decays_records_and_is_zero_at_validation() -> None:
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:160], bs=16, level="word",
                                  tgt_level="char")
    learn = ember.learner(data, quiet=True)
    default = learn.callback("teacher_forcing")  # the default for seq2seq data
    learn.remove_cbs(default)
    forcing, spy = TeacherForcing("linear", start=1.0, floor=0.25, mode="sample"), RatioSpy()
    learn.add_cbs([forcing])
    learn.lr_find(num_it=5)  # a sweep records nothing
    assert forcing.ratios == [] and learn.model.teacher_forcing_ratio == 0.0
    learn.fit(2, 1e-3, cbs=[spy])
    n_batches = 2 * len(data.train_dl)
    assert forcing.ratios == spy.train and len(forcing.ratios) == n_batches
    assert forcing.iters == learn.recorder.iters  # plotted on the loss's x axis
    assert forcing.ratios[0] == 1.0 and forcing.ratios[-1] == pytest.approx(0.25)
    assert all(a > b for a, b in zip(forcing.ratios, forcing.ratios[1:]))
    assert spy.valid and set(spy.valid) == {0.0}
    assert learn.model.teacher_forcing_ratio == 0.0  # after the fit: inference
    assert learn.model.teacher_forcing_mode == "sample"
    import matplotlib.pyplot as plt

    figure = forcing.plot()
    assert len(figure.axes) == 2  # ratio and, on a twin axis, the loss
    plt.close(figure)


def test_callback_needs_a_model_with_a_ratio() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    data = ember.Data.from_loaders(DataLoader(TensorDataset(x, y), batch_size=8),
                                   DataLoader(TensorDataset(x, y), batch_size=8))
    learn = ember.Learner(data, torch.nn.Linear(3, 2), quiet=True, cbs=[TeacherForcing()])
    with pytest.raises(ember.TrainingError, match="teacher_forcing_ratio"):
        learn.fit(1)


def test_schedule_follows_the_clock_when_the_fit_runs_on_a_time_budget() -> None:
    """fit_auto trains an open-ended fit that a TimeBudget ends: the ratio must follow the share
    of the time spent (the fit's planned steps, a million epochs, would keep it at the start)."""
    from ember.auto import TimeBudget
    from ember.callbacks.base import OPEN_ENDED

    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:160], bs=16, level="word",
                                  tgt_level="char")
    learn = ember.learner(data, quiet=True)
    learn.remove_cbs(learn.callback("teacher_forcing"))
    forcing = TeacherForcing("linear", start=1.0, floor=0.25)
    learn.add_cbs([forcing])
    learn.fit(OPEN_ENDED, 1e-3, cbs=[TimeBudget(3.0)])
    assert forcing.ratios[0] == pytest.approx(1.0, abs=0.05)
    assert all(a >= b for a, b in itertools.pairwise(forcing.ratios))
    assert forcing.ratios[-1] < 0.35  # near the floor when the budget ran out
    assert learn.clock is None and learn.model.teacher_forcing_ratio == 0.0


def test_a_resumed_fit_draws_the_same_coins_and_keeps_the_running_accuracy(tmp_path) -> None:
    import torch

    pairs = load_sample("fr_numbers")[:150]

    def learner(seed: int) -> ember.Learner:
        ember.seed(seed)
        return ember.learner(Seq2SeqData.from_pairs(pairs, bs=32, seed=0), quiet=True)

    whole = learner(0)
    whole.fit_one_cycle(3, 1e-2)
    learn = learner(0)
    learn.fit_one_cycle(3, 1e-2, cbs=[ember.Checkpoint(tmp_path / "ckpt.pt"), InterruptAfter()])
    resumed = learner(123)  # another process state: the checkpoint restores everything
    resumed.fit_one_cycle(3, 1e-2, resume=tmp_path / "ckpt.pt")
    first, second = whole.callback("teacher_forcing"), resumed.callback("teacher_forcing")
    assert min(first.ratios) < 0.5  # the coins decided most steps
    assert first.accuracies == pytest.approx(second.accuracies, abs=1e-6)
    rows = [[{name: value for name, value in row.items() if name != "time"}
             for row in learner.recorder.values] for learner in (whole, resumed)]
    assert rows[0] == rows[1] and len(rows[0]) == 3  # the progress table too
    expected = whole.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def _tiny_learner(seed: int = 0) -> ember.Learner:
    """A seq2seq learner small enough to train in a blink, drawing coins at every step."""
    ember.seed(seed)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:24], bs=8, seed=0, level="word",
                                  tgt_level="char")
    model = Seq2SeqRNN(len(data.src_vocab), len(data.tgt_vocab), emb_size=4, hidden_size=4,
                       max_len=data.default_max_len())
    return ember.learner(data, model=model, quiet=True,
                         cbs=[TeacherForcing("constant", start=0.5)])


def test_lr_find_before_a_fit_leaves_the_fits_coins_alone() -> None:
    # the sweep draws coins from the model's own generator; the fit after it must draw the
    # ones it would have drawn without the sweep
    import torch

    plain = _tiny_learner()
    plain.fit(1, 1e-2)
    swept = _tiny_learner()
    with pytest.warns(ember.EmberWarning, match="never fell"):  # 3 steps: no curve to read
        swept.lr_find(num_it=3)
    swept.fit(1, 1e-2)
    for name, value in plain.model.state_dict().items():
        assert torch.equal(value, swept.model.state_dict()[name]), name


def test_a_checkpoint_that_kept_the_coins_in_the_callback_still_resumes_them(tmp_path) -> None:
    # checkpoints written before ember saved the model's own generators kept the coin
    # generator's state in the TeacherForcing callback's state
    import torch

    whole = _tiny_learner()
    whole.fit(2, 1e-2)
    _tiny_learner().fit(2, 1e-2, cbs=[ember.Checkpoint(tmp_path / "ckpt.pt"), InterruptAfter()])
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    coins = state["rng"].pop("model")["teacher_forcing_generator"]
    state["callbacks"]["teacher_forcing"]["coins"] = coins
    torch.save(state, tmp_path / "old.pt")
    resumed = _tiny_learner(seed=123)
    resumed.fit(2, 1e-2, resume=tmp_path / "old.pt")
    assert torch.equal(resumed.model.teacher_forcing_generator.get_state(),
                       whole.model.teacher_forcing_generator.get_state())
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


class _StopMidEpoch(ember.Callback):
    order = ember.Order.LAST

    def after_batch(self) -> None:
        if self.learn.training and self.learn.iter == 2:
            raise KeyboardInterrupt  # Ctrl-C mid-epoch: after_cancel_fit, not after_fit


def test_an_interrupted_fit_leaves_the_ratio_at_zero_for_inference() -> None:
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:200], bs=16, level="word",
                                  tgt_level="char")
    learn = ember.learner(data, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        learn.fit(1, 1e-3, cbs=[_StopMidEpoch()])
    assert learn.callback("teacher_forcing").ratios[-1] > 0  # it was training with forcing
    assert learn.model.teacher_forcing_ratio == 0.0


def test_a_teacher_forcing_given_to_learner_replaces_the_default() -> None:
    # before, ember.learner(data, cbs=[TeacherForcing(...)]) attached it beside the default
    # one: the model trained on the user's ratios, but learn.callback("teacher_forcing") and
    # its plot() were the default's schedule, and both recorded a ratio per batch
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:100], bs=32)
    mine = TeacherForcing("constant", start=0.5)
    learn = ember.learner(data, quiet=True, cbs=[mine, ember.GradientClip(5.0)])
    assert [cb for cb in learn.cbs if isinstance(cb, TeacherForcing)] == [mine]
    clips = [cb for cb in learn.cbs if isinstance(cb, ember.GradientClip)]
    assert len(clips) == 1 and clips[0].max_norm == 5.0  # not also clipped at the default 1.0
    learn.fit(1)
    assert learn.callback("teacher_forcing") is mine
    assert mine.ratios == [0.5] * len(learn.data.train_dl)
    # a callback given by its registered name replaces the default of its class the same way
    by_name = ember.learner(data, quiet=True, cbs=["TeacherForcing"])
    assert len([cb for cb in by_name.cbs if isinstance(cb, TeacherForcing)]) == 1


def test_a_teacher_forcing_given_to_one_fit_replaces_the_default_for_that_fit() -> None:
    # before, learn.fit(1, cbs=[TeacherForcing(...)]) ran beside the default schedule: both set
    # the model's ratio every batch, and the default (ordered first or last) decided it
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:100], bs=32)
    learn = ember.learner(data, quiet=True)
    default = learn.callback("teacher_forcing")
    mine = TeacherForcing("constant", start=0.5)
    learn.fit(1, cbs=[mine])
    assert mine.ratios == [0.5] * len(learn.data.train_dl)
    assert default.ratios == []
    assert learn.callback("teacher_forcing") is default


@pytest.mark.parametrize("schedule", [s for s in SCHEDULES if s != "constant"])
def test_a_floor_above_start_is_refused_as_a_schedule_that_would_rise(schedule: str) -> None:
    # TeacherForcing("linear", 0.1) (start 0.1, the default floor 0.25) rose from 0.1 to 0.25
    # over the fit without a word, in a callback that decays the ratio to a floor
    with pytest.raises(ValueError, match=rf"floor \(0.25\) is above start \(0.1\): the "
                                         rf"{schedule} schedule .* would rise"):
        TeacherForcing(schedule, 0.1)
    assert TeacherForcing(schedule, start=0.25, floor=0.25).ratio_at(1.0) == 0.25
    assert TeacherForcing("constant", start=0.0).ratio_at(0.5) == 0.0  # floor is not read
