"""``learn.fit_auto(minutes=10)``: training parameters chosen from the data and a time budget.

What it does, in order (and reports, with the reasons). With ``minutes=`` every stage below
runs inside the budget — the timing, the sweep, the race and every validation — and the run
ends within a few per cent of it even when the machine's speed changes mid-run:

1. **Timing**: a few training batches and as many validation batches are timed (at most 2 %
   of the budget), to size what follows; the validation's time is extrapolated to the loader.
   The training batches run at the rate one-cycle starts from and are kept as the start of
   training (restored instead when the model has a pretrained body, whose recipe starts frozen).
2. **Learning rate** (:func:`rule_lr`): the plugin's default rate, chosen for this kind of data,
   guarded by :meth:`ember.Learner.lr_find`'s curve — kept when it lies on the falling side
   (below the rate of the smoothed loss's minimum, and less than 300 times below it), else the
   finder's suggestion (a tenth of that minimum, :class:`ember.LRFindResult`). Where the loss
   never falls, the default, with a warning. The sweep takes at most 5 % of the budget (30 to
   100 steps); a budget too small for 30 steps keeps the default unguarded.
3. **Race** (only with several candidate models registered by the plugin in
   ``Defaults.candidates``, a budget large enough that a quarter of it gives every candidate
   at least one epoch, and a model without a pretrained body): successive halving — every
   candidate trains for an equal slice, the better half by the validation metric goes on with
   twice the time, until one is left; it continues from its raced weights. Each slice is the
   race time left divided by the runs left, so a slow finder or validation shortens the slices
   after it instead of overrunning. Each candidate is timed first (a few batches) and its sweep
   sized to its share of the race; one too slow for a 30-step sweep or for one batch and one
   validation in a slice is dropped, with the reason. A race that leaves no time for a batch and
   a validation means no final training (said in the report), never a negative plan.
4. **Schedule**: one-cycle (the ``fine_tune`` recipe — head first, then all with discriminative
   rates — when the model has a pretrained body) whose position is the share of the training
   time spent, so the learning rate anneals to its floor exactly as the budget runs out, however
   the speed changes. Training stops early enough to leave time for the last validation; that
   reserve is re-estimated after every validation (1.15 times the last one), and no new epoch starts
   once the training time is spent. With ``epochs=`` instead of ``minutes=``, an ordinary
   one-cycle of that many epochs; with neither, of 5 epochs (``DEFAULT_EPOCHS``; the report's
   reason says "(default)").
5. **Best weights** by the validation metric are kept (:class:`ember.SaveBest`); an interrupt
   (Ctrl-C) ends training early and keeps the best model so far. Without a validation loader
   the last epoch's weights are kept, and no candidates are raced.

Probes that are thrown away — the timing batches that are not kept, every learning-rate sweep,
each race candidate's timing — put the random generators back as they found them
(:meth:`ember.Learner.trial`), so after ``ember.seed(n)`` the training draws the shuffles and
dropout masks it would draw without them; what trains (kept timing batches, the race's rounds,
the final training) draws on from where the last of them left the generators.

Example:
    >>> # report = ember.learner(data).fit_auto(minutes=10); print(report["lr"], report["epochs"])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ember.callbacks.base import OPEN_ENDED, Callback, Order
from ember.callbacks.schedule import ONE_CYCLE_DIV, OneCycle
from ember.callbacks.tracking import Checkpoint, EarlyStopping, SaveBest
from ember.callbacks.training import PreciseBatchNorm
from ember.errors import CancelFitException, CancelTrainException, TrainingError
from ember.utils import check_whole, warn

if TYPE_CHECKING:
    from torch import nn

    from ember.distributed import Distributed
    from ember.learner import Learner, LRFindResult

__all__ = ["TimeBudget", "fit_auto", "rule_lr"]

#: the validation reserve is this multiple of the last validation's time
RESERVE_MARGIN = 1.15
#: share of the budget the race may use, and of a small budget the learning-rate sweep may use
RACE_SHARE, SWEEP_SHARE = 0.25, 0.05
#: the user's callbacks, attached to the learner, that are about *their* training: the timing
#: probe and the race run without them (a candidate's slice wrote the user's checkpoint file
#: with another architecture, early stopping cut a slice short, a save-best restored a
#: slice's weights), as ``lr_find``'s sweep does; the final training has them all
USERS_TRAINING_ONLY = (Checkpoint, EarlyStopping, SaveBest)
#: share of the race (after timing the candidates) their learning-rate sweeps may take together
RACE_SWEEP_SHARE = 0.4
#: the fewest steps a learning-rate sweep is worth reading
MIN_SWEEP = 30
#: the plugin's default rate is kept when it lies within this factor below the finder's minimum
DEFAULT_SPAN = 300.0
#: the epochs of a fit_auto() given neither minutes= nor epochs=
DEFAULT_EPOCHS = 5


class TimeBudget(Callback):
    """Ends training when ``seconds`` have passed since the first fit it joins began, keeping
    ``reserve`` seconds back for the last validation; ``progress()`` is the share of the
    training time (``seconds - reserve``) spent, never decreasing.

    The reserve is re-estimated after every validation (``margin`` times its time), so a machine
    that slows down mid-run still ends on time; no epoch starts once the training time is spent.
    The clock runs on across several fits (the two stages of a fine-tune share one budget).

    Under ``torchrun`` every rank follows rank 0's clock: the share spent is rank 0's, sent to
    the others after every training batch and epoch, so all ranks stop at the same step and
    their schedules read the same position (a rank's own clock stopped it alone, and the
    others waited for it for ever).

    Example:
        >>> budget = TimeBudget(60.0, reserve=2.0)
        >>> 0.0 <= budget.progress() <= 1.0
        True
    """

    order = Order.LAST

    def __init__(self, seconds: float, reserve: float = 0.0, margin: float = RESERVE_MARGIN
                 ) -> None:
        self.seconds, self.reserve, self.margin = seconds, reserve, margin
        self.start: float | None = None
        self.expired = False
        self.position = 0.0
        #: seconds of each validation, and (seconds, batches) of each training phase, measured
        self.valid_times: list[float] = []
        self.train_times: list[tuple[float, int]] = []

    def elapsed(self) -> float:
        """Seconds since the budget's clock started (0 before the first fit)."""
        return 0.0 if self.start is None else time.perf_counter() - self.start

    def progress(self) -> float:
        """Share of the training time (budget less the reserve) spent so far, in [0, 1];
        under ``torchrun``, rank 0's share at the end of the last training batch or epoch."""
        if self._distributed() is None:
            self.position = self._spent()
        return self.position

    def _spent(self) -> float:
        usable = max(self.seconds - self.reserve, 1e-9)
        return max(self.position, min(self.elapsed() / usable, 1.0))

    def _distributed(self) -> Distributed | None:
        learn = getattr(self, "learn", None)
        return None if learn is None else learn.distributed

    def _agree(self) -> float:
        """The share spent, read from this process's clock, or from rank 0's on every rank
        under ``torchrun`` (a collective: called at events every rank reaches)."""
        distributed = self._distributed()
        if distributed is None:
            return self.progress()
        (self.position,) = distributed.rank_zero_values(self._spent())
        return self.position

    def before_fit(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        self.learn.clock = self.progress  # every schedule of this fit follows the clock

    def before_train(self) -> None:
        self._phase_start, self._batches = time.perf_counter(), 0

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        self._batches += 1
        if self._agree() >= 1.0:
            self.expired = True
            raise CancelTrainException

    def after_train(self) -> None:
        self.train_times.append((time.perf_counter() - self._phase_start, self._batches))

    def before_validate(self) -> None:
        self._phase_start = time.perf_counter()

    def after_validate(self) -> None:
        seconds = time.perf_counter() - self._phase_start
        self.valid_times.append(seconds)
        self.reserve = self.margin * seconds

    def after_epoch(self) -> None:
        if self.expired or self._agree() >= 1.0:
            self.expired = True
            raise CancelFitException

    def batch_seconds(self) -> float | None:
        """Seconds per training batch over the last training phase (``None`` before one)."""
        if not self.train_times or not self.train_times[-1][1]:
            return None
        seconds, batches = self.train_times[-1]
        return seconds / batches


def _timed_batches(learn: Learner, budget_seconds: float | None = None, n: int = 8,
                   warmup: int = 2, keep: bool = False) -> tuple[float, float]:
    """Seconds per training batch and per whole validation: ``warmup`` + up to ``n`` training
    batches (fewer once 2 % of ``budget_seconds`` is spent, at least 2 timed), then as many
    validation batches, the validation's time extrapolated from them to the whole loader.

    With ``keep`` the training batches are the start of the training that follows: they run at
    the rate a one-cycle starts from (the learner's rate over ``ONE_CYCLE_DIV``) and their steps
    are kept, so the timing costs the budget only its validation batches. Without it, they run
    at the learner's rate on a copy of the state that is then restored, the random generators
    included (:meth:`ember.Learner.trial`); kept batches leave the generators where they took
    them, as the training steps they are.

    Under ``torchrun`` rank 0 decides when the training batches are enough, the validation runs
    whole (the ranks' shares may differ by a batch, and a rank that left its validation early
    left the others waiting in the metrics' reduction), and every rank returns rank 0's
    figures, so every rank plans the same run."""
    train_times: list[float] = []
    valid_times: list[float] = []
    limit = math.inf if budget_seconds is None else 0.02 * budget_seconds

    class Timer(Callback):
        order = Order.LAST

        def before_fit(self) -> None:
            self.fit_start = time.perf_counter()

        def before_batch(self) -> None:
            self.start = time.perf_counter()

        def after_batch(self) -> None:
            times = train_times if self.learn.training else valid_times
            times.append(time.perf_counter() - self.start)
            enough = len(times) >= n + warmup or (
                len(times) >= warmup + 2 and time.perf_counter() - self.fit_start > limit)
            distributed = self.learn.distributed
            if distributed is not None and not self.learn.training:
                return
            if distributed is not None:
                enough = distributed.rank_zero_values(float(enough))[0] > 0
            if enough and self.learn.training:
                raise CancelTrainException  # on to the validation batches
            if enough:
                raise CancelFitException

    lr = float(learn.lr_suggestion or learn.lr_for_groups(None)[-1])  # the head's default
    # the probe's partial epoch is never in the history; its few steps need no precise
    # BatchNorm statistics (a pass over the training items the budget would pay for)
    with learn.trial(keep_steps=keep), learn._without(PreciseBatchNorm):
        learn.fit(1, lr / ONE_CYCLE_DIV if keep else lr, cbs=[Timer()], reset_opt=True)

    def mean(times: list[float]) -> float:
        measured = times[warmup:] or times
        return sum(measured) / max(len(measured), 1)

    n_valid = len(learn.data.valid_dl) if learn.data.valid_dl is not None else 0
    batch_seconds, valid_seconds = mean(train_times), mean(valid_times) * n_valid
    if learn.distributed is not None:
        batch_seconds, valid_seconds = learn.distributed.rank_zero_values(batch_seconds,
                                                                          valid_seconds)
    return batch_seconds, valid_seconds


def _fit_for(learn: Learner, budget: TimeBudget, lr: Any, cbs: Iterable[Callback],
             **one_cycle: float) -> None:
    """One-cycle whose position follows ``budget``'s clock (``learn.progress()`` while the
    budget runs the fit); ``budget`` ends it."""
    lrs = learn._prepare_opt(lr, reset_opt=True)
    with learn._attached([OneCycle(lrs, **one_cycle), budget]):
        learn._fit(OPEN_ENDED, list(cbs), None)


def _fine_tune_for(learn: Learner, seconds: float, reserve: float, epoch_seconds: float,
                   lr: float, cbs: list[Callback], budgets: list[TimeBudget]) -> None:
    """The ``fine_tune`` recipe on the clock: the head alone for about one epoch (at most a
    fifth of the time), then every group with discriminative rates for the rest. Each stage's
    budget is appended to ``budgets`` as it starts (the report reads them)."""
    head_seconds = min(0.2 * seconds, epoch_seconds) if len(learn._groups) > 1 else 0.0
    start = time.perf_counter()
    if head_seconds > 0:
        learn.freeze()
        budgets.append(TimeBudget(head_seconds, reserve))
        _fit_for(learn, budgets[-1], slice(lr * 2), cbs, pct_start=0.99)
    learn.unfreeze()
    rest = max(seconds - (time.perf_counter() - start), 1e-3)
    budgets.append(TimeBudget(rest, reserve))
    _fit_for(learn, budgets[-1], slice(lr / 100, lr), cbs, pct_start=0.3, div=5.0)


def _has_pretrained_body(model: nn.Module) -> bool:
    """Whether ``model`` was built with pretrained weights: ``pretrained`` beside its
    ``ember_config`` (set by ``vision_model`` and ``text_classifier``, which keep it out of the
    exported config) or inside it (``create_model(arch, pretrained=...)``)."""
    config = getattr(model, "ember_config", None)
    if not isinstance(config, dict):
        return False
    inner = config.get("config")
    return bool(config.get("pretrained") or (isinstance(inner, dict) and inner.get("pretrained")))


def _monitor(learn: Learner) -> str:
    return learn.metrics[0].name if learn.metrics else "valid_loss"


def _recorded(learn: Learner, monitor: str, since: int = 0) -> float:
    """The last epoch's value of ``monitor`` among the rows recorded after the first
    ``since`` (NaN when there is none: a run the NaN guard stopped before its first
    validation records no row, and the row before it is another run's)."""
    values = learn.recorder.values
    return values[-1].get(monitor, math.nan) if len(values) > since else math.nan


def _score(learn: Learner, monitor: str, value: float) -> float:
    """``value`` of ``monitor`` signed so that higher is better, for ranking; NaN ranks below
    every real score (compared as it is, it would keep whatever place it had)."""
    if math.isnan(value):
        return -math.inf
    higher = next((m.higher_is_better for m in learn.metrics if m.name == monitor), False)
    return value if higher else -value


def _race(learn: Learner, candidates: dict[str, Callable[[], nn.Module]], seconds: float,
          valid_seconds: float, report: dict[str, Any], num_it: int = 100
          ) -> tuple[float | None, float, float | None]:
    """Successive halving over ``candidates`` within ``seconds`` (their timing, finder sweeps
    and validations included); leaves the winner (with its raced weights) as ``learn.model``
    and returns the learning rate the finder chose for it (before it trained: a finder run on
    trained weights would read a flat curve), its validation time and its seconds per batch.

    Every candidate is timed first (a few batches), and its sweep is sized to its share of the
    race (at most ``num_it`` steps); one whose ``MIN_SWEEP`` steps, or whose one batch and one
    validation in a slice, would not fit is dropped, with the reason in ``report``. When every
    candidate is dropped the model given is kept and the rate is ``None`` (the caller chooses
    it as without a race)."""
    deadline = time.perf_counter() + seconds
    monitor = _monitor(learn)
    alive = {name: build() for name, build in candidates.items()}
    rates: dict[str, float] = {}
    timings: dict[str, tuple[float, float]] = {}
    valid_times: dict[str, float] = {}
    figures: list[dict[str, Any]] = []
    plan: dict[str, Any] = {"seconds": round(seconds, 2), "timing_seconds": 0.0, "sweeps": {},
                            "dropped": {}}
    given, models, scored = learn.model, dict(alive), {}
    suggestions: dict[str, Any] = {}  # each candidate's finder result (learn.lr_suggestion)
    try:
        _run_race(learn, alive, deadline, num_it, monitor, rates, timings, valid_times, plan,
                  figures, scored, suggestions)
    except KeyboardInterrupt:  # keep the best candidate scored so far, or the model given
        report["race"], report["race_plan"] = figures, plan
        best = max(scored, key=lambda n: scored[n]) if scored else None
        learn.set_model(given if best is None else models[best])
        report["model"] = best
        report["reasons"].append(
            "race interrupted: " + ("no candidate was scored yet, so the model given is kept"
                                    if best is None else f"{best}, the best by {monitor} "
                                    f"so far, is kept"))
        raise
    report["race"], report["race_plan"] = figures, plan
    for name, why in plan["dropped"].items():
        report["reasons"].append(f"{name} dropped from the race: {why}")
    if not alive:
        learn.set_model(given)
        report["model"] = None
        report["reasons"].append("no candidate fits the race's share of the budget "
                                 f"({seconds:.1f} s): training the model given")
        return None, valid_seconds, None
    winner = next(iter(alive))
    learn.set_model(alive[winner])
    # the finder's result of the model trained on, not of the last candidate swept: the
    # checks compare the final training's rate with it
    learn.lr_suggestion = suggestions[winner]
    report["model"] = winner
    raced = len(candidates) - len(plan["dropped"])
    report["reasons"].append(
        f"raced {raced} candidates by {monitor} with successive halving on {seconds:.1f} s: "
        f"{winner} won" if raced > 1 else f"{winner} is the only candidate left in the race, "
        f"so it is trained without racing")
    return rates[winner], valid_times[winner], timings[winner][0]


def _run_race(learn: Learner, alive: dict[str, nn.Module], deadline: float, num_it: int,
              monitor: str, rates: dict[str, float],
              timings: dict[str, tuple[float, float]], valid_times: dict[str, float],
              plan: dict[str, Any], figures: list[dict[str, Any]],
              scored: dict[str, float], suggestions: dict[str, Any]) -> None:
    """The race's timing, sweeps and rounds; narrows ``alive`` to the winner (or to nothing,
    when no candidate fits) in place, records the plan (``timing_seconds``, each sweep's
    ``steps`` and planned ``seconds``, the ``dropped`` with their reasons) in ``plan``, and each
    run's score in ``scored`` (its latest) as it ends, so an interrupt knows the best so far."""
    timing_start = time.perf_counter()
    for name, model in alive.items():  # a few batches each: the candidates' costs differ
        learn.set_model(model)
        timings[name] = _timed_batches(learn, n=2, warmup=1)
        valid_times[name] = timings[name][1]
    plan["timing_seconds"] = round(time.perf_counter() - timing_start, 2)
    left = max(deadline - time.perf_counter(), 0.0)
    # the sweeps may take up to RACE_SWEEP_SHARE of what is left, in equal shares; the rest,
    # at the least, goes to the rounds' slices (a sweep that ends early leaves them more)
    sweep_share = RACE_SWEEP_SHARE * left / max(len(alive), 1)
    smallest_slice = (1 - RACE_SWEEP_SHARE) * left / max(_runs(len(alive)), 1)
    steps: dict[str, int] = {}
    for name, (batch_seconds, _) in timings.items():
        affordable = int(sweep_share / max(batch_seconds, 1e-9))
        one_run = batch_seconds + RESERVE_MARGIN * valid_times[name]
        if affordable < MIN_SWEEP:
            plan["dropped"][name] = (
                f"{batch_seconds * 1000:.0f} ms per batch, so a {MIN_SWEEP}-step sweep "
                f"(~{MIN_SWEEP * batch_seconds:.1f} s) exceeds its share of the race "
                f"({sweep_share:.1f} s)")
        elif one_run > smallest_slice:
            plan["dropped"][name] = (
                f"one batch and one validation take ~{one_run:.1f} s, more than a slice of "
                f"the race (~{smallest_slice:.1f} s)")
        else:
            steps[name] = min(num_it, affordable)
    for name in plan["dropped"]:
        del alive[name]
    for name, model in alive.items():  # every sweep first, so the slices are equal
        learn.set_model(model)
        plan["sweeps"][name] = {"steps": steps[name],
                                "seconds": round(steps[name] * timings[name][0], 2)}
        rates[name] = _choose_lr(learn, steps[name])
        suggestions[name] = learn.lr_suggestion
    runs_left = _runs(len(alive))
    round_index = 0
    while len(alive) > 1:
        scores = {}
        for name, model in alive.items():
            learn.set_model(model)
            slice_seconds = max((deadline - time.perf_counter()) / runs_left, 1e-3)
            budget = TimeBudget(slice_seconds, RESERVE_MARGIN * valid_times[name])
            rows_before = len(learn.recorder.values)
            _fit_for(learn, budget, rates[name], [])
            runs_left -= 1
            if budget.valid_times:
                valid_times[name] = budget.valid_times[-1]
            value = _recorded(learn, monitor, since=rows_before)
            scores[name] = scored[name] = _score(learn, monitor, value)
            figures.append({"round": round_index, "model": name, monitor: value,
                            "seconds": round(slice_seconds, 2),
                            "epochs": round(_epochs_done(budget, learn), 2)})
        keep = max(1, len(alive) // 2)
        ranked = sorted(alive, key=lambda n: scores[n], reverse=True)
        for name in ranked[keep:]:
            del alive[name]
        round_index += 1


def _runs(count: int) -> int:
    """Runs successive halving makes for ``count`` candidates: n, n/2, … down to 2."""
    runs = 0
    while count > 1:
        runs += count
        count = max(1, count // 2)
    return runs


class _NoTimeLeft(Exception):
    """Raised inside ``fit_auto`` when the race left no time for the final training."""


def _epochs_done(budget: TimeBudget, learn: Learner) -> float:
    n_batches = max(len(learn.data.train_dl), 1)
    return sum(batches for _, batches in budget.train_times) / n_batches


def fit_auto(learn: Learner, minutes: float | None = None, epochs: int | None = None,
             candidates: dict[str, Callable[[], nn.Module]] | None = None,
             verbose: bool = True, cbs: Iterable[Callback] | None = None) -> dict[str, Any]:
    """Choose the learning rate, model and schedule for ``learn`` and train within
    ``minutes`` (or for ``epochs``; with neither, for 5 epochs, ``DEFAULT_EPOCHS``); see the
    module documentation. ``cbs`` run in the final training, standing in for attached
    callbacks of their class (the run's own schedule and best-weights saver stay). Returns the
    report, which is also kept as ``learn.recorder.auto``.

    Example:
        >>> # learn.fit_auto(minutes=5)["lr"]
    """
    if minutes is not None and epochs is not None:
        raise TrainingError(f"fit_auto takes minutes= or epochs=, not both (got minutes={minutes!r}"
                            f", epochs={epochs!r}): a time budget plans its own epochs")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int | float)
                                or not minutes > 0):
        raise TrainingError(f"minutes must be a positive number, got {minutes!r}")
    if epochs is not None:
        check_whole(epochs, "epochs", "the epochs to train", error=TrainingError)
    start = time.perf_counter()
    budget_seconds = None if minutes is None else minutes * 60
    report: dict[str, Any] = {"budget_seconds": budget_seconds, "reasons": []}
    monitor = _monitor(learn)
    saver = SaveBest(monitor, reset_on_fit=False)  # the best over every phase of the run
    # without a validation loader (a final fit on every item) nothing picks a best epoch or
    # ranks a race: the saver failed after the first epoch on a monitor never recorded
    validating = learn.data.valid_dl is not None
    savers = [saver] if validating else []
    if not validating:
        report["reasons"].append(
            "no validation loader: the weights of the last epoch are kept (no best epoch to "
            "pick) and no candidate models are raced")
    extra = list(cbs or [])
    pretrained = _has_pretrained_body(learn.model)
    interrupted = False
    budgets: list[TimeBudget] = []  # the final training's (two for the fine_tune recipe)
    try:
        if budget_seconds is None:
            lr = _choose_lr(learn, 100, report)
            planned = epochs or DEFAULT_EPOCHS
            report["epochs"] = planned
            report["reasons"].append(f"{planned} epochs " + ("as asked" if epochs else
                                                              "(default)"))
            if pretrained:  # the head alone for one of the epochs where there is a body
                report["schedule"] = "fine_tune"
                frozen = 1 if len(learn._groups) > 1 and planned > 1 else 0

                def train() -> None:
                    learn.fine_tune(planned - frozen, base_lr=lr * 2, freeze_epochs=frozen,
                                    cbs=extra)
            else:
                report["schedule"] = "one_cycle"

                def train() -> None:
                    learn.fit_one_cycle(planned, lr, cbs=extra, reset_opt=True)
        else:
            with learn._without(*USERS_TRAINING_ONLY):
                batch_seconds, valid_seconds = _timed_batches(learn, budget_seconds,
                                                              keep=not pretrained)
            epoch_seconds = batch_seconds * len(learn.data.train_dl) + valid_seconds
            race_seconds = RACE_SHARE * budget_seconds
            affordable = int(SWEEP_SHARE * budget_seconds / max(batch_seconds, 1e-6))
            lr: float | None = None
            if candidates and len(candidates) > 1 and not pretrained and validating and (
                    race_seconds >= len(candidates) * epoch_seconds):
                with learn._without(*USERS_TRAINING_ONLY):
                    lr, valid_seconds, winner_batch = _race(
                        learn, candidates, race_seconds, valid_seconds, report,
                        num_it=min(100, max(MIN_SWEEP, affordable)))
                if winner_batch is not None:  # the winner's own cost plans the training
                    batch_seconds = winner_batch
                    epoch_seconds = batch_seconds * len(learn.data.train_dl) + valid_seconds
                if lr is not None:
                    report["lr"] = lr
                    report["reasons"].append(f"learning rate {lr:.2e}: the finder's choice for "
                                             f"the winner before the race")
            elif candidates and len(candidates) > 1 and pretrained:
                report["reasons"].append(
                    "no race: the model has a pretrained body, and the candidates would "
                    "start from random weights; fine-tuning the given model")
            elif candidates and len(candidates) > 1 and validating:
                report["reasons"].append(
                    f"no race: a quarter of the budget ({race_seconds:.0f} s) does not give "
                    f"each of the {len(candidates)} candidates one epoch "
                    f"(~{epoch_seconds:.0f} s); training the default model")
            if lr is None:
                left = budget_seconds - (time.perf_counter() - start)
                affordable = int(min(SWEEP_SHARE * budget_seconds, 0.5 * max(left, 0.0))
                                 / max(batch_seconds, 1e-6))
                if affordable >= MIN_SWEEP:
                    lr = _choose_lr(learn, min(100, affordable), report)
                else:
                    report["lr"] = lr = learn.lr_for_groups(None)[-1]  # the head's
                    report["reasons"].append(
                        f"learning rate {lr:.2e}: the plugin's default, since a sweep of "
                        f"{MIN_SWEEP} steps would take more than {SWEEP_SHARE:.0%} of the budget"
                        f" (or half the time left)")
            remaining = budget_seconds - (time.perf_counter() - start)
            final_run = batch_seconds + RESERVE_MARGIN * valid_seconds  # the least a fit costs
            if remaining < final_run:
                report["epochs"] = 0
                report["reasons"].append(
                    f"no final training: {max(remaining, 0.0):.1f} s of the budget are left "
                    f"(the race overran it by {max(-remaining, 0.0):.1f} s), less than one batch "
                    f"and one validation (~{final_run:.1f} s); the model keeps its raced weights")
                raise _NoTimeLeft
            report["epochs"] = max(1, math.ceil(remaining / max(epoch_seconds, 1e-9)))
            report["reasons"].append(
                f"{batch_seconds * 1000:.1f} ms per batch and {valid_seconds:.1f} s per "
                f"validation: about {epoch_seconds:.1f} s per epoch, so the {remaining:.0f} s "
                f"left hold about {remaining / max(epoch_seconds, 1e-9):.1f} epochs; the "
                f"schedule follows the clock and the validation reserve is re-measured every "
                f"epoch")
            if pretrained:
                report["schedule"] = "fine_tune (clock)"

                def train() -> None:
                    _fine_tune_for(learn, remaining, RESERVE_MARGIN * valid_seconds,
                                   epoch_seconds, lr, extra, budgets)
            else:
                report["schedule"] = "one_cycle (clock)"
                budgets.append(TimeBudget(remaining, reserve=RESERVE_MARGIN * valid_seconds))

                def train() -> None:
                    _fit_for(learn, budgets[-1], lr, extra)
        with learn._attached(savers):  # the final training only: not the sweeps nor the race
            train()
    except KeyboardInterrupt:
        interrupted = True
        if saver.best_state is not None:
            learn.model.load_state_dict(saver.best_state)
    except _NoTimeLeft:
        report["schedule"] = "none (no time left)"
    report["interrupted"] = interrupted
    train_times = [phase for budget in budgets for phase in budget.train_times]
    if train_times:
        report["epochs_run"] = round(sum(_epochs_done(budget, learn) for budget in budgets), 2)
        first, last = train_times[0], train_times[-1]
        if first[1] and last[1]:
            report["slowdown"] = round((last[0] / last[1]) / (first[0] / first[1]), 2)
    # the saver keeps the best signed so that higher is better; the report gives it as recorded
    best = saver.sign * saver.best if saver.best_state is not None else None
    report["best"] = {monitor: best,
                      "epoch": saver.best_epoch}
    report["seconds"] = time.perf_counter() - start
    learn.recorder.auto = report
    if verbose:
        print(f"fit_auto: {report.get('schedule', '-')} for {report.get('epochs', '-')} "
              f"epoch(s) at lr {report.get('lr', math.nan):.2e}; best {monitor} "
              f"{report['best'][monitor]} in {report['seconds']:.0f} s")
        for reason in report["reasons"]:
            print(f"  - {reason}")
    return report


def rule_lr(suggestion: LRFindResult, default: float | None, never_fell: bool = False
            ) -> tuple[float, str]:
    """fit_auto's learning rate from a finder curve and the plugin's default rate, with the
    reason.

    The rule: the plugin's default rate (chosen for this kind of data) is kept when the curve
    shows it on the falling side — below the rate of the smoothed loss's minimum and no more
    than ``DEFAULT_SPAN`` below it. A default at or past the minimum is unsafe for this data, and
    one far below it wastes the budget: then the finder's suggestion (a tenth of the minimum's
    rate, :class:`ember.LRFindResult`) replaces it. Without a default, the suggestion; when the
    loss never fell, the default.

    Example:
        >>> from ember import LRFindResult
        >>> curve = LRFindResult.from_curve([1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        ...                                 [1.0, 0.8, 0.5, 0.4, 3.0])
        >>> rule_lr(curve, 3e-3)[0], rule_lr(curve, 1e-6)[0], rule_lr(curve, 0.3)[0]
        (0.003, 0.01, 0.01)
    """
    if never_fell:
        lr = float(default if default is not None else suggestion)
        return lr, f"learning rate {lr:.2e}: the default, since the loss never fell"
    minimum = suggestion.minimum
    if default is not None and minimum / DEFAULT_SPAN <= default < minimum:
        return float(default), (
            f"learning rate {default:.2e}: the plugin's default, on the falling side of the "
            f"finder's curve (its smoothed loss is lowest at {minimum:.2e})")
    lr = float(suggestion)
    why = ("" if default is None else f"; the default {default:.2e} is " + (
        f"more than {DEFAULT_SPAN:.0f} times lower" if default < minimum
        else "at or past the minimum, unsafe here"))
    return lr, (f"learning rate {lr:.2e}: a tenth of {minimum:.2e}, where the smoothed "
                f"finder loss is lowest{why}")


def _choose_lr(learn: Learner, num_it: int, report: dict[str, Any] | None = None) -> float:
    """Sweep ``num_it`` steps and apply :func:`rule_lr` (warning when the loss never fell)."""
    import warnings

    from ember.errors import EmberWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmberWarning)
        suggestion = learn.lr_find(num_it=num_it)
    default = float(learn.lr) if isinstance(learn.lr, (int, float)) else None
    never_fell = any("never fell" in str(w.message) for w in caught)
    shown = set()
    for record in caught:  # the sweep's other warnings (a callback's, the data's) are the user's
        where = (str(record.message), record.category, record.filename, record.lineno)
        if "never fell" not in where[0] and where not in shown:
            shown.add(where)
            warnings.warn_explicit(record.message, record.category, record.filename,
                                   record.lineno)
    lr, reason = rule_lr(suggestion, default, never_fell)
    if never_fell:
        warn(f"fit_auto: the learning-rate sweep's loss never fell clearly, so it trains at "
             f"{lr:.2e} (the plugin's default); check the data and model with learn.doctor()")
    if report is not None:
        report["lr"] = lr
        report["reasons"].append(f"{reason} ({num_it}-step sweep)")
    return lr
