"""``learn.fit_auto(minutes=10)``: training parameters chosen from the data and a time budget.

What it does, in order (and reports, with the reasons):

1. **Learning rate** from :meth:`ember.Learner.lr_find` — the documented rule of
   :class:`ember.LRFindResult` (a tenth of the rate where the smoothed loss is lowest; an
   exponential moving average makes it robust to noisy curves; ``1e-3`` with a warning when the
   loss never falls).
2. **Race** (only with a budget and several candidate models registered by the plugin in
   ``Defaults.candidates``): successive halving on 25 % of the budget — every candidate trains
   for an equal slice, the better half by the validation metric goes on with twice the time,
   until one is left; it continues from its raced weights.
3. **Schedule**: one-cycle (``fine_tune`` when the model has a pretrained body) whose position
   is the share of the time budget spent, so the learning rate anneals to its floor exactly as
   the budget runs out; the last epoch is cut short, leaving time for its validation. With
   ``epochs=`` instead of ``minutes=``, an ordinary one-cycle of that many epochs.
4. **Best weights** by the validation metric are kept (:class:`ember.SaveBest`); an interrupt
   (Ctrl-C) ends training early and keeps the best model so far.

Example:
    >>> # report = ember.learner(data).fit_auto(minutes=10); print(report["lr"], report["epochs"])
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ember.callbacks.base import Callback, Order
from ember.callbacks.schedule import OneCycle
from ember.callbacks.tracking import SaveBest
from ember.errors import CancelFitException, CancelTrainException

if TYPE_CHECKING:
    from torch import nn

    from ember.learner import Learner

__all__ = ["TimeBudget", "fit_auto"]


class TimeBudget(Callback):
    """Ends training when ``seconds`` have passed, keeping ``reserve`` seconds for the last
    validation; ``progress()`` is the share of the budget spent.

    Example:
        >>> budget = TimeBudget(60.0)
        >>> 0.0 <= budget.progress() <= 1.0
        True
    """

    order = Order.LAST

    def __init__(self, seconds: float, reserve: float = 0.0) -> None:
        self.seconds, self.reserve = seconds, reserve
        self.start = time.perf_counter()
        self.expired = False

    def before_fit(self) -> None:
        self.start = time.perf_counter()

    def progress(self) -> float:
        """Share of the training time (budget less the reserve) spent so far."""
        usable = max(self.seconds - self.reserve, 1e-9)
        return min((time.perf_counter() - self.start) / usable, 1.0)

    def after_batch(self) -> None:
        if self.learn.training and self.progress() >= 1.0:
            self.expired = True
            raise CancelTrainException

    def after_epoch(self) -> None:
        if self.expired:
            raise CancelFitException


def _timed_batches(learn: Learner, n: int = 8, warmup: int = 2) -> float:
    """Seconds per training batch, measured on a copy of the state that is then restored."""
    times: list[float] = []

    class Timer(Callback):
        order = Order.LAST

        def before_batch(self) -> None:
            self.start = time.perf_counter()

        def after_batch(self) -> None:
            if self.learn.training:
                times.append(time.perf_counter() - self.start)
                if len(times) >= n + warmup:
                    raise CancelFitException

        def before_validate(self) -> None:
            raise CancelFitException

    model_state = copy.deepcopy(learn.model.state_dict())
    recorder_state = copy.deepcopy(learn.recorder.state_dict())
    try:
        learn.fit(1, float(learn.lr_suggestion or learn.lr), cbs=[Timer()], reset_opt=True)
    finally:
        learn.model.load_state_dict(model_state)
        learn.recorder.load_state_dict(recorder_state)
        learn.opt = None
    measured = times[warmup:] or times
    return sum(measured) / max(len(measured), 1)


def _valid_seconds(learn: Learner) -> float:
    start = time.perf_counter()
    learn.validate()
    return time.perf_counter() - start


def _fit_for(learn: Learner, budget: TimeBudget, lr: float, cbs: list[Callback]) -> None:
    """One-cycle whose position follows the clock; ``budget`` ends it."""
    lrs = learn._prepare_opt(lr, reset_opt=True)
    learn._fit(10_000, [OneCycle(lrs, progress=budget.progress), budget, *cbs], None)


def _monitor(learn: Learner) -> str:
    return learn.metrics[0].name if learn.metrics else "valid_loss"


def _score(learn: Learner, monitor: str) -> float:
    value = learn.recorder.values[-1].get(monitor, math.nan) if learn.recorder.values else math.nan
    higher = next((m.higher_is_better for m in learn.metrics if m.name == monitor), False)
    return value if higher else -value


def _race(learn: Learner, candidates: dict[str, Callable[[], nn.Module]], seconds: float,
          report: dict[str, Any]) -> float:
    """Successive halving over ``candidates``; leaves the winner (with its raced weights) as
    ``learn.model`` and returns the learning rate the finder chose for it (before it trained:
    a finder run on trained weights would read a flat curve)."""
    monitor = _monitor(learn)
    alive = {name: build() for name, build in candidates.items()}
    rates: dict[str, float] = {}
    rounds = max(1, math.ceil(math.log2(len(alive))))
    slice_seconds = seconds / rounds
    figures: list[dict[str, Any]] = []
    for round_index in range(rounds):
        scores = {}
        for name, model in alive.items():
            learn.set_model(model)
            if name not in rates:
                rates[name] = float(learn.lr_find())
            lr = rates[name]
            _fit_for(learn, TimeBudget(slice_seconds / len(alive)), lr, [])
            scores[name] = _score(learn, monitor)
            figures.append({"round": round_index, "model": name, monitor: abs(scores[name]),
                            "seconds": round(slice_seconds / len(alive), 1)})
        keep = max(1, len(alive) // 2)
        ranked = sorted(alive, key=lambda n: scores[n], reverse=True)
        alive = {name: alive[name] for name in ranked[:keep]}
        if len(alive) == 1:
            break
    winner = next(iter(alive))
    learn.set_model(alive[winner])
    report["race"] = figures
    report["model"] = winner
    report["reasons"].append(f"raced {len(candidates)} candidates by {monitor} with successive "
                             f"halving on {seconds:.0f} s: {winner} won")
    return rates[winner]


def fit_auto(learn: Learner, minutes: float | None = None, epochs: int | None = None,
             candidates: dict[str, Callable[[], nn.Module]] | None = None,
             verbose: bool = True) -> dict[str, Any]:
    """Choose the learning rate, model and schedule for ``learn`` and train within
    ``minutes`` (or for ``epochs``); see the module documentation. Returns the report, which is
    also kept as ``learn.recorder.auto``.

    Example:
        >>> # learn.fit_auto(minutes=5)["lr"]
    """
    start = time.perf_counter()
    report: dict[str, Any] = {"budget_seconds": None if minutes is None else minutes * 60,
                              "reasons": []}
    monitor = _monitor(learn)
    if minutes is not None and candidates and len(candidates) > 1:
        lr = _race(learn, candidates, 0.25 * minutes * 60, report)
        report["reasons"].append(f"learning rate {lr:.2e}: the finder's choice for the winner "
                                 f"before the race")
    else:
        suggestion = learn.lr_find()
        lr = float(suggestion)
        report["reasons"].append(
            f"learning rate {lr:.2e}: a tenth of {suggestion.minimum:.2e}, where the smoothed "
            f"finder loss is lowest")
    report["lr"] = lr
    pretrained = bool(getattr(learn.model, "ember_config", {}).get("config", {}).get(
        "pretrained"))
    saver = SaveBest(monitor)
    cbs: list[Callback] = [saver]
    if minutes is not None:
        valid_seconds = _valid_seconds(learn)
        batch_seconds = _timed_batches(learn)
        epoch_seconds = batch_seconds * len(learn.data.train_dl) + valid_seconds
        remaining = minutes * 60 - (time.perf_counter() - start)
        planned = max(1, math.ceil(remaining / max(epoch_seconds, 1e-9)))
        budget: TimeBudget | None = TimeBudget(remaining, reserve=valid_seconds * 1.1)
        report["epochs"] = planned
        report["reasons"].append(
            f"{batch_seconds * 1000:.1f} ms per batch and {valid_seconds:.1f} s per validation: "
            f"about {epoch_seconds:.1f} s per epoch, so {remaining:.0f} s hold about "
            f"{remaining / epoch_seconds:.1f} epochs; the one-cycle schedule follows the clock")
    else:
        planned = epochs or 5
        report["epochs"] = planned
        report["reasons"].append(f"{planned} epochs " + ("as asked" if epochs else "(default)"))
        budget = None
    interrupted = False
    try:
        if pretrained:
            report["schedule"] = "fine_tune"
            learn.fine_tune(max(1, planned - 1), base_lr=lr * 2,
                            cbs=[*cbs, budget] if budget else cbs)
        elif budget is not None:
            report["schedule"] = "one_cycle (clock)"
            _fit_for(learn, budget, lr, cbs)
        else:
            report["schedule"] = "one_cycle"
            learn.fit_one_cycle(planned, lr, cbs=cbs, reset_opt=True)
    except KeyboardInterrupt:
        interrupted = True
        if saver.best_state is not None:
            learn.model.load_state_dict(saver.best_state)
    report["interrupted"] = interrupted
    report["best"] = {monitor: abs(saver.best) if saver.best_state is not None else None,
                      "epoch": getattr(saver, "best_epoch", None)}
    report["seconds"] = time.perf_counter() - start
    learn.recorder.auto = report
    if verbose:
        print(f"fit_auto: {report['schedule']} for {report['epochs']} epoch(s) at lr {lr:.2e}; "
              f"best {monitor} {report['best'][monitor]} in {report['seconds']:.0f} s")
        for reason in report["reasons"]:
            print(f"  - {reason}")
    return report
