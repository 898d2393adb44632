"""Dynamic teacher forcing: a callback that sets the model's teacher-forcing ratio on a schedule.

Teacher forcing feeds the decoder the true previous token while training; it learns fast but the
model never practises recovering from its own mistakes ("exposure bias"). Scheduled sampling
(Bengio et al., 2015) starts at a high ratio and decays it, so the model is weaned onto its own
predictions. The ratio at training progress ``p`` (0 at the first step, 1 at the last) is::

    constant         start
    linear           floor + (start - floor) * (1 - p)
    cosine           floor + (start - floor) * (1 + cos(pi * p)) / 2
    exponential      floor + (start - floor) * exp(-rate * p)
    inverse_sigmoid  floor + (start - floor) * s(p),
                     s(p) = 1 / (1 + exp(steepness * (p - midpoint))), rescaled so s(0)=1, s(1)=0

(inverse sigmoid is Bengio's ``k / (k + exp(i / k))`` written in terms of progress).

The ``adaptive`` schedule reads no clock: it follows the model's running training token accuracy
``a`` (a moving average of argmax == target over the non-pad tokens of each trained batch)::

    adaptive         floor + (start - floor) * clip((accuracy_high - a)
                                                    / (accuracy_high - accuracy_low), 0, 1)

Example:
    >>> round(schedule_value("linear", 0.5, start=1.0, floor=0.2), 6)
    0.6
    >>> schedule_value("constant", 0.9, start=0.5)
    0.5
"""

from __future__ import annotations

import math
from typing import Any

import torch

import ember
from ember.callbacks import LRFinder
from ember.utils import new_figure
from ember_text.seq2seq.data import IGNORE_INDEX
from ember_text.seq2seq.models import PAD

__all__ = ["SCHEDULES", "TeacherForcing", "schedule_value"]

SCHEDULES = ("constant", "linear", "cosine", "exponential", "inverse_sigmoid", "adaptive")


def schedule_value(schedule: str, progress: float, start: float = 1.0, floor: float = 0.0,
                   rate: float = 5.0, steepness: float = 10.0, midpoint: float = 0.5, *,
                   accuracy: float = 0.0, accuracy_low: float = 0.9,
                   accuracy_high: float = 0.97) -> float:
    """The teacher-forcing ratio of ``schedule`` at ``progress`` (0 … 1) of training; the
    ``adaptive`` schedule ignores ``progress`` and reads ``accuracy`` (the model's running
    training token accuracy): ``start`` up to ``accuracy_low``, ``floor`` from
    ``accuracy_high``, linear in between.

    Example:
        >>> round(schedule_value("cosine", 1.0, start=1.0, floor=0.25), 6)
        0.25
        >>> round(schedule_value("adaptive", 0.0, floor=0.5, accuracy=0.935), 6)
        0.75
    """
    p = min(max(progress, 0.0), 1.0)
    if schedule == "exponential" and not (math.isfinite(rate) and rate >= 0.0):
        raise ValueError(f"rate must be a finite number, 0 or more (the exponential decay's "
                         f"speed; a negative rate grows the ratio past start), got {rate}")
    if schedule == "constant":
        return start
    if schedule == "adaptive":
        if not accuracy_low < accuracy_high:
            raise ValueError(f"accuracy_low ({accuracy_low}) must be below accuracy_high "
                             f"({accuracy_high})")
        fraction = min(max((accuracy_high - accuracy) / (accuracy_high - accuracy_low), 0.0),
                       1.0)
        return floor + (start - floor) * fraction
    if schedule == "linear":
        fraction = 1.0 - p
    elif schedule == "cosine":
        fraction = (1.0 + math.cos(math.pi * p)) / 2.0
    elif schedule == "exponential":
        fraction = math.exp(-rate * p)
    elif schedule == "inverse_sigmoid":
        fraction = _inverse_sigmoid_fraction(p, steepness, midpoint)
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return floor + (start - floor) * fraction


def _inverse_sigmoid_fraction(progress: float, steepness: float, midpoint: float) -> float:
    """``s(progress)`` of the inverse sigmoid, rescaled so that ``s(0)=1`` and ``s(1)=0``;
    computed without overflow for a steep curve (a step at ``midpoint``)."""
    if not (math.isfinite(steepness) and steepness != 0.0 and math.isfinite(midpoint)):
        raise ValueError(f"the inverse_sigmoid schedule needs a finite, non-zero steepness and "
                         f"a finite midpoint, got steepness={steepness}, midpoint={midpoint} "
                         f"(for a straight decay use schedule='linear')")

    def falling(x: float) -> float:  # 1 / (1 + exp(steepness * (x - midpoint)))
        z = steepness * (x - midpoint)
        # past z = 700 exp(z) nears float's limit (overflow at 709.8); exp(-z) is the same
        # value there to full precision
        return math.exp(-z) if z > 700.0 else 1.0 / (1.0 + math.exp(z))

    span = falling(0.0) - falling(1.0)
    if span == 0.0:
        raise ValueError(f"the inverse_sigmoid schedule with steepness={steepness} and "
                         f"midpoint={midpoint} is flat over the whole fit (its decay lies outside "
                         f"progress 0 to 1); put midpoint between 0 and 1 or lower the steepness")
    return (falling(progress) - falling(1.0)) / span


class TeacherForcing(ember.Callback):
    """Sets ``learn.model.teacher_forcing_ratio`` before every training batch from a schedule
    over the whole fit, and to 0 for validation (and after the fit, for inference).

    The default is scheduled sampling (Bengio et al., 2015, "Scheduled Sampling for Sequence
    Prediction with Recurrent Neural Networks") with an *early* decay to a low floor: inverse
    sigmoid from 1.0 to 0.25, ``midpoint=0.25``, ``steepness=15``, one coin per sequence and
    step. The ratio is 0.98 for the first 5% of the fit (the warm-up, while every prediction is
    wrong), 0.63 at a quarter, 0.32 at 40%, and it stays near 0.25 from half-way on. So for most
    of the fit the decoder practises on its own predictions, which works as input noise
    against over-fitting. A quarter of the tokens still train on true prefixes, which greedy
    decoding's exact match depends on.

    Measured (``bench/seq2seq.py --task tf``, French words → digits, the same 24 seeds for
    every schedule; the figures and commands are in the plugin's README):

    - Trained models (2,000 pairs, 12 epochs): exact match 0.930 for this default, 0.929 for
      constant 0.5, 0.925 for constant 1.0. The former late decay (1.0 → 0.5, midpoint 0.75)
      got 0.924, and the early decay to 0.5 got 0.922.
    - Four epochs on 4,000 pairs, a fit that ends while the model still learns fast: 0.543 for
      this default, 0.544 for constant 0.5, 0.548 for constant 1.0. Character BLEU is 0.772,
      0.772 and 0.771.

    The paired differences vary by 0.02 to 0.05 from seed to seed, so the short-fit gaps
    (0.001 to 0.005) are well inside the noise.

    Args:
        schedule: one of :data:`SCHEDULES` (see the module docstring for the formulas).
        start: the ratio at the start of training.
        floor: the ratio the decay ends at, at most ``start`` (``constant`` does not read
            it; ``exponential`` only approaches it: it ends ``exp(-rate)`` of the way from
            ``floor`` to ``start``, 0.7 % with the default rate).
        rate: speed of the ``exponential`` decay (0 or more).
        steepness, midpoint: shape of the ``inverse_sigmoid`` decay (a finite, non-zero
            steepness; a very steep one is a step down at ``midpoint``).
        mode: ``"step"`` — one coin per decoding step, shared by the batch; ``"sample"`` — one
            coin per decoding step and per sequence (written to
            ``learn.model.teacher_forcing_mode``).
        accuracy_low, accuracy_high: the ``adaptive`` schedule keeps ``start`` while the
            running training token accuracy is at most ``accuracy_low``, reaches ``floor`` at
            ``accuracy_high``, and is linear in between.
        smoothing: weight of the past in the running accuracy (an exponential moving average,
            bias-corrected so the first batches count fully; 0.9 ≈ the last 10 batches).

    The ``adaptive`` schedule: the right moment to wean the model onto its own predictions is
    when they are mostly right — feeding back wrong predictions only gives a learning model
    noisy inputs — and that moment depends on how far the model has learned, not on the
    fraction of the fit that has passed (a short fit may end before it, a long one passes it
    early). So the ratio is driven by the model's own training token accuracy, measured for
    free from the logits of each trained batch (argmax == target on non-pad tokens; no extra
    forward pass) and read at the next batch. The accuracy is measured on the batch as
    trained, with its sampled inputs: if the model copes badly with its own predictions the
    accuracy drops and the ratio rises again, a feedback that keeps it from being weaned too
    fast. Every fit measures afresh (from 0, so it starts at ``start``); a learning-rate sweep
    trains at ``start`` and measures nothing. It is not the default: with one-cycle the model
    passes 0.9 training token accuracy only after about 60% of a fit, so an accuracy trigger
    acts as a late decay. In the measurements, the gain from sampling came early, while the
    model was still poor (the README has the figures).

    Writes only ``learn.model.teacher_forcing_ratio`` and ``teacher_forcing_mode`` (the
    model's documented knobs), and, when a fit resumes from a checkpoint written before ember
    saved the model's own generators, the state of ``teacher_forcing_generator`` saved with
    this callback. Records the ratio of every training batch in ``ratios`` and the running
    training token accuracy it read in ``accuracies`` (with ``iters``, aligned with
    ``learn.recorder.iters``); :meth:`plot` draws both beside the loss.

    Example:
        >>> cb = TeacherForcing("inverse_sigmoid", floor=0.2)
        >>> round(cb.ratio_at(0.0), 3), round(cb.ratio_at(1.0), 3)
        (1.0, 0.2)
    """

    order = ember.Order.SCHEDULE

    def __init__(self, schedule: str = "inverse_sigmoid", start: float = 1.0, floor: float = 0.25,
                 rate: float = 5.0, steepness: float = 15.0, midpoint: float = 0.25,
                 mode: str = "sample", accuracy_low: float = 0.9, accuracy_high: float = 0.97,
                 smoothing: float = 0.9) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if mode not in ("step", "sample"):
            raise ValueError(f"mode must be 'step' or 'sample', got {mode!r}")
        for name, value in (("start", start), ("floor", floor)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if schedule != "constant" and floor > start:  # (constant reads no floor)
            raise ValueError(
                f"floor ({floor}) is above start ({start}): the {schedule} schedule decays the "
                f"ratio from start to floor, so it would rise; give a floor at most start (e.g. "
                f"TeacherForcing({schedule!r}, start={start}, floor=0.0)), or "
                f"schedule='constant' for a fixed ratio")
        if not 0.0 <= accuracy_low < accuracy_high <= 1.0:
            raise ValueError(f"need 0 <= accuracy_low < accuracy_high <= 1, got "
                             f"accuracy_low={accuracy_low}, accuracy_high={accuracy_high}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        # the schedule's own shape (rate, steepness, midpoint) is checked here, not at the
        # fit's first batch
        schedule_value(schedule, 0.0, start, floor, rate, steepness, midpoint,
                       accuracy_low=accuracy_low, accuracy_high=accuracy_high)
        self.schedule, self.start, self.floor, self.mode = schedule, start, floor, mode
        self.rate, self.steepness, self.midpoint = rate, steepness, midpoint
        self.accuracy_low, self.accuracy_high, self.smoothing = (accuracy_low, accuracy_high,
                                                                 smoothing)
        # running (bias-corrected EMA) training token accuracy: a tensor on the model's device
        # once measured, read (a host sync) only by the adaptive schedule and by ``accuracy``
        self._running: float | torch.Tensor = 0.0
        self.measured = 0  # training batches measured in this fit
        self.ratios: list[float] = []
        self._accuracies: list[float | torch.Tensor] = []
        self.iters: list[int] = []

    @property
    def accuracy(self) -> float:
        """The running training token accuracy (a bias-corrected moving average)."""
        return float(self._running)

    @accuracy.setter
    def accuracy(self, value: float) -> None:
        self._running = float(value)

    @property
    def accuracies(self) -> list[float]:
        """The running accuracy read at each training batch (aligned with ``iters``)."""
        self._settle()
        return self._accuracies  # type: ignore[return-value]

    def _settle(self) -> None:
        """Turn the accuracies recorded as device tensors into floats: one host sync for all
        of them (at every epoch's end, and whenever they are read)."""
        pending = [i for i, value in enumerate(self._accuracies) if torch.is_tensor(value)]
        if pending:
            values = torch.stack([self._accuracies[i] for i in pending]).tolist()
            for i, value in zip(pending, values):
                self._accuracies[i] = value

    def after_epoch(self) -> None:
        self._settle()  # a long fit does not pile up a tensor per batch

    def ratio_at(self, progress: float, accuracy: float | None = None) -> float:
        """The scheduled ratio at ``progress`` (0 … 1); the ``adaptive`` schedule reads
        ``accuracy`` instead (by default the running training token accuracy).

        Example:
            >>> TeacherForcing("constant", start=0.5).ratio_at(0.3)
            0.5
            >>> TeacherForcing("adaptive").ratio_at(0.3, accuracy=0.99)
            0.25
        """
        return schedule_value(self.schedule, progress, self.start, self.floor, self.rate,
                              self.steepness, self.midpoint,
                              accuracy=accuracy if accuracy is not None else (
                                  self.accuracy if self.schedule == "adaptive" else 0.0),
                              accuracy_low=self.accuracy_low, accuracy_high=self.accuracy_high)

    def _check_model(self) -> None:
        if not hasattr(self.learn.model, "teacher_forcing_ratio"):
            raise ember.TrainingError(
                f"TeacherForcing needs a model with a teacher_forcing_ratio attribute; "
                f"{type(self.learn.model).__name__} has none. Remove the callback or give the "
                f"model that attribute (see ember_text.seq2seq.Seq2SeqRNN)")

    def before_fit(self) -> None:
        self._check_model()
        self.learn.model.teacher_forcing_mode = self.mode
        # a learning-rate sweep trains at the starting ratio and records nothing (lr_find
        # restores the recorder afterwards, and these records stay aligned with it)
        self.sweeping = any(isinstance(cb, LRFinder) for cb in self.learn.cbs)
        # every fit measures afresh (the weights may have changed), except one resumed from a
        # checkpoint, whose running accuracy load_state_dict restored
        if not self.sweeping and not self.learn.resumed:
            self.accuracy, self.measured = 0.0, 0

    def before_batch(self) -> None:
        if not self.learn.training:
            self.learn.model.teacher_forcing_ratio = 0.0
            return
        if self.sweeping:
            self.learn.model.teacher_forcing_ratio = self.ratio_at(0.0, accuracy=0.0)
            return
        # on a clock (fit_auto) the share of the time spent; else the share of steps, counted
        # so that the last batch of the fit reaches the end of the schedule
        progress = (self.learn.progress() if self.learn.clock is not None
                    else self.learn.train_iter / max(1, self.learn.planned_steps - 1))
        ratio = self.ratio_at(progress)
        self.learn.model.teacher_forcing_ratio = ratio
        self.ratios.append(ratio)
        self._accuracies.append(self._running)  # no host sync: converted when read
        self.iters.append(self.learn.train_iter)

    def after_loss(self) -> None:
        """Update the running token accuracy from the logits of the batch just trained (the
        forward pass already done: no extra computation beyond an argmax), on the device, so
        the training loop never waits for it."""
        if not self.learn.training or self.sweeping:
            return
        targets = self.learn.yb
        # Seq2SeqData pads its targets with IGNORE_INDEX (-100, what the loss skips); a target
        # padded with the pad id (0) is padding too. Neither is a token to predict
        real = (targets != IGNORE_INDEX) & (targets != PAD)
        n_real = real.sum()
        correct = ((self.learn.pred.detach().argmax(dim=-1) == targets) & real).sum()
        # bias-corrected exponential moving average: the mean of the batches so far at first
        self.measured += 1
        weight = (1.0 - self.smoothing) / (1.0 - self.smoothing ** self.measured)
        running = torch.as_tensor(self._running, dtype=torch.float32, device=n_real.device)
        updated = running + weight * (correct / n_real.clamp(min=1) - running)
        self._running = torch.where(n_real > 0, updated, running)  # an all-pad batch: unchanged

    def before_validate(self) -> None:
        self.learn.model.teacher_forcing_ratio = 0.0

    def after_fit(self) -> None:
        self.learn.model.teacher_forcing_ratio = 0.0

    # a fit ended by an error, the NaN guard or Ctrl-C leaves the model ready for inference too
    after_cancel_fit = after_fit

    def plot(self, with_loss: bool = True, ax: Any = None) -> Any:
        """Plot the teacher-forcing ratio per training batch and the running training token
        accuracy it read (dashed), beside the training loss; returns the figure
        (:func:`ember.utils.new_figure`), or draws into ``ax``, a matplotlib
        ``Axes`` of yours, and returns its figure.

        Example:
            >>> # learn.callback("teacher_forcing").plot().savefig("teacher_forcing.png")
        """
        figure, axis = new_figure(ax=ax)
        axis.plot(self.iters, self.ratios, color="tab:orange", label="teacher forcing")
        axis.plot(self.iters, self.accuracies, color="tab:green", linestyle="--",
                  label="running training token accuracy")
        axis.legend(loc="lower left")
        axis.set_xlabel("iteration")
        axis.set_ylabel("teacher-forcing ratio")
        axis.set_ylim(-0.05, 1.05)
        if with_loss and getattr(self, "learn", None) is not None and self.learn.recorder.losses:
            loss_axis = axis.twinx()
            loss_axis.plot(self.learn.recorder.iters, self.learn.recorder.losses,
                           color="tab:blue", alpha=0.7, label="train loss")
            loss_axis.set_ylabel("loss")
        axis.set_title(f"teacher forcing: {self.schedule}")
        return figure

    def state_dict(self) -> dict[str, Any]:
        """The records and the running accuracy, so that a fit resumed from a checkpoint goes
        on as one never interrupted (the model's coin generator is saved by the checkpoint
        itself, with the other random generators the model holds).

        Example:
            >>> sorted(TeacherForcing().state_dict())[:3]
            ['accuracies', 'accuracy', 'iters']
        """
        return {"ratios": self.ratios, "accuracies": list(self.accuracies), "iters": self.iters,
                "accuracy": self.accuracy, "measured": self.measured}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (``learn.load`` of a checkpoint calls it).

        Example:
            >>> TeacherForcing().load_state_dict({"ratios": [1.0], "iters": [0]})
        """
        self.ratios, self.iters = list(state["ratios"]), list(state["iters"])
        self._accuracies = list(state.get("accuracies", []))
        self.accuracy = float(state.get("accuracy", 0.0))
        self.measured = int(state.get("measured", 0))
        # a checkpoint from before ember saved the model's own generators kept the coins here
        model = getattr(getattr(self, "learn", None), "model", None)
        generator = getattr(model, "teacher_forcing_generator", None)
        if "coins" in state and isinstance(generator, torch.Generator):
            generator.set_state(state["coins"].cpu())

    def __repr__(self) -> str:
        shape = {"exponential": f", rate={self.rate}",
                 "inverse_sigmoid": f", steepness={self.steepness}, midpoint={self.midpoint}",
                 "adaptive": f", accuracy_low={self.accuracy_low}, "
                             f"accuracy_high={self.accuracy_high}, smoothing={self.smoothing}"}
        return (f"TeacherForcing({self.schedule!r}, start={self.start}, floor={self.floor}"
                f"{shape.get(self.schedule, '')}, mode={self.mode!r})")
