"""TeacherForcing: schedules, recording, and 0 at validation and inference."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import itertools

import pytest

import ember
from ember_text.seq2seq import SCHEDULES, Seq2SeqData, TeacherForcing, load_sample
from ember_text.seq2seq.callbacks import schedule_value


@pytest.mark.parametrize("schedule", SCHEDULES)
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
    middle = {s: schedule_value(s, 0.25) for s in SCHEDULES}
    assert middle["linear"] == pytest.approx(0.75)
    assert middle["cosine"] == pytest.approx(0.8535533905932737)
    assert middle["exponential"] < middle["linear"] < middle["cosine"] < middle["inverse_sigmoid"]


def test_default_is_scheduled_sampling_decaying_late() -> None:
    """The default (see its docstring): inverse sigmoid, per sample, 1.0 → 0.5, the truth
    while the model learns, its own predictions in the annealing phase."""
    default = TeacherForcing()
    assert (default.schedule, default.start, default.floor, default.mode) == (
        "inverse_sigmoid", 1.0, 0.5, "sample")
    ratios = [default.ratio_at(p / 100) for p in range(101)]
    assert ratios[0] == 1.0 and ratios[-1] == pytest.approx(0.5)
    assert all(a >= b for a, b in itertools.pairwise(ratios))
    assert min(ratios[:41]) >= 0.98  # first 40% (warm-up, high learning rates): the truth
    assert ratios[60] > 0.9 and 0.7 < ratios[75] < 0.75  # decays in the annealing phase
    assert max(ratios[90:]) < 0.56  # the last 10%: close to the floor
    assert "inverse_sigmoid" in repr(default) and "midpoint=0.75" in repr(default)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="schedule must be one of"):
        TeacherForcing("sawtooth")
    with pytest.raises(ValueError, match="probability"):
        TeacherForcing(floor=1.5)
    with pytest.raises(ValueError, match="mode"):
        TeacherForcing(mode="token")


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
    figure = forcing.plot()
    assert len(figure.axes) == 2  # ratio and, on a twin axis, the loss


def test_callback_needs_a_model_with_a_ratio() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    data = ember.Data.from_loaders(DataLoader(TensorDataset(x, y), batch_size=8),
                                   DataLoader(TensorDataset(x, y), batch_size=8))
    learn = ember.Learner(data, torch.nn.Linear(3, 2), quiet=True, cbs=[TeacherForcing()])
    with pytest.raises(ember.TrainingError, match="teacher_forcing_ratio"):
        learn.fit(1)
