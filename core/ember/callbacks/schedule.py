"""Learning-rate schedules: one-cycle, cosine with warm-up, and the learning-rate finder's sweep.

Schedules are pure functions of training progress (``learn.train_iter`` over the planned total),
so a resumed run continues exactly where the interrupted one stopped.

Example:
    >>> round(cosine(1.0, 0.0, 0.5), 3)
    0.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ember.callbacks.base import Callback, Order, _positive
from ember.errors import CancelFitException, CancelValidateException

#: one-cycle starts at its peak rate divided by this (``OneCycle(div=...)``)
ONE_CYCLE_DIV = 25.0

__all__ = ["CosineSchedule", "LRFinder", "OneCycle", "cosine"]


def cosine(start: float, end: float, pos: float) -> float:
    """Cosine interpolation from ``start`` (pos 0) to ``end`` (pos 1).

    Example:
        >>> cosine(2.0, 0.0, 1.0)
        0.0
    """
    return end + (start - end) * (1 + math.cos(math.pi * pos)) / 2


class _Schedule(Callback):
    """Sets each parameter group's learning rate (and Adam beta1, or SGD momentum) every
    training step.

    Progress is :meth:`ember.Learner.progress` (the share of planned steps done, or of a time
    budget spent when the fit runs on a clock), or ``progress()`` when given. The momentum each
    group had when the fit began is put back when it ends, however it ends (completed,
    cancelled, stopped by an error or the NaN guard), so a later fit without a momentum
    schedule trains with the optimiser's own value; a checkpoint keeps it for a resumed run,
    whose optimiser state holds the schedule's value instead (one written before it was kept:
    the value the optimiser was built with).
    """

    order = Order.SCHEDULE

    def __init__(self, lr_max: Sequence[float], progress: Callable[[], float] | None = None
                 ) -> None:
        self.lr_max = list(lr_max)
        self.progress = progress
        self.own_momentum: list[float | None] | None = None

    def before_fit(self) -> None:
        opt = self.learn.opt
        if not self.learn.resumed:
            self.own_momentum = [_momentum(group) for group in opt.param_groups]
        elif self.own_momentum is None:
            # a checkpoint written before own_momentum was kept: the loaded optimiser state
            # holds the schedule's value, the optimiser's own is the one it was built with
            own = _momentum(opt.defaults)
            self.own_momentum = [own if _momentum(group) is not None else None
                                 for group in opt.param_groups]

    def after_cancel_fit(self) -> None:
        self.after_fit()  # an error ends the fit without after_fit

    def after_fit(self) -> None:
        for group, momentum in zip(self.learn.opt.param_groups, self.own_momentum or []):
            if momentum is not None and "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            elif momentum is not None:
                group["momentum"] = momentum

    def _factors(self, pos: float) -> tuple[float, float | None]:  # pragma: no cover
        raise NotImplementedError

    def before_batch(self) -> None:
        if not self.learn.training:
            return
        done = self.progress() if self.progress else self.learn.progress()
        pos = min(max(done, 0.0), 1.0)
        factor, momentum = self._factors(pos)
        for group in self.learn.opt.param_groups:
            group["lr"] = self.lr_max[group["split"]] * factor
            if momentum is not None and "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            elif momentum is not None and "momentum" in group and group["momentum"]:
                group["momentum"] = momentum

    def state_dict(self) -> dict[str, Any]:
        return {"lr_max": self.lr_max, "train_iter": self.learn.train_iter,
                "own_momentum": self.own_momentum}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # a checkpoint from before own_momentum was kept gives None: the resumed fit then
        # puts back the momentum the optimiser was built with (before_fit)
        self.own_momentum = state.get("own_momentum")


def _momentum(group: dict[str, Any]) -> float | None:
    """A parameter group's momentum (Adam's beta1, SGD's momentum), None when it has none."""
    if "betas" in group:
        return float(group["betas"][0])
    momentum = group.get("momentum")
    return float(momentum) if momentum else None


def _share(value: Any, name: str, what: str) -> None:
    """Refuse ``value`` unless it is a share of training, from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        percent = (f" (a percentage? {value!r}% is {value / 100:g})"
                   if isinstance(value, numbers.Real) and 1 < value <= 100 else "")
        raise ValueError(
            f"{name}={value!r} is not a share of training: {what} lasts {name} of the steps, "
            f"so give a number from 0 to 1{percent}")


class OneCycle(_Schedule):
    """Leslie Smith's one-cycle policy: warm up to ``lr_max`` over ``pct_start`` of training
    (momentum falls 0.95 → 0.85), then cosine-anneal to ``lr_max / div_final``.

    Each step's rate and momentum come from the share of the fit's steps done before it
    (fastai's convention): the first step trains at ``lr_max / div``, and the last, at
    ``(n - 1) / n`` of the cycle, just above ``lr_max / div_final``. torch's ``OneCycleLR``
    reaches the final rate at the last step instead; on a short fit the difference shows (the
    last of 12 steps trains at 3 % of the peak; of 1,000 steps, at 0.0014 %).

    Example:
        >>> cb = OneCycle([1e-2], pct_start=0.25)
        >>> cb._factors(0.25)[0], round(cb._factors(1.0)[0], 6)
        (1.0, 1e-05)
    """

    def __init__(self, lr_max: Sequence[float], pct_start: float = 0.25, div: float = ONE_CYCLE_DIV,
                 div_final: float = 1e5, moms: tuple[float, float] = (0.95, 0.85),
                 progress: Callable[[], float] | None = None) -> None:
        super().__init__(lr_max, progress)
        _share(pct_start, "pct_start", "the warm-up")
        for value, name in ((div, "div"), (div_final, "div_final")):
            if not _positive(value):
                raise ValueError(
                    f"one-cycle's {name}={value!r}: the peak learning rate is divided by it, "
                    f"so give a number above 0 (div=25 starts at a 25th of the peak)")
        self.pct_start, self.div, self.div_final, self.moms = pct_start, div, div_final, moms

    def _factors(self, pos: float) -> tuple[float, float | None]:
        high, low = self.moms
        if pos < self.pct_start or self.pct_start >= 1:  # pct_start=1: warm-up only
            phase = pos / self.pct_start
            return cosine(1 / self.div, 1.0, phase), cosine(high, low, phase)
        phase = (pos - self.pct_start) / (1 - self.pct_start)
        return cosine(1.0, 1 / self.div_final, phase), cosine(low, high, phase)


class CosineSchedule(_Schedule):
    """Linear warm-up over ``warmup_pct`` of training, then cosine decay to ``lr_max * final``.

    Example:
        >>> CosineSchedule([1e-3], warmup_pct=0.0)._factors(0.0)[0]
        1.0
    """

    def __init__(self, lr_max: Sequence[float], warmup_pct: float = 0.05, final: float = 0.0
                 ) -> None:
        super().__init__(lr_max)
        _share(warmup_pct, "warmup_pct", "the warm-up")
        if not (_positive(final) or final == 0):
            raise ValueError(f"the cosine schedule's final={final!r}: the last learning rate is "
                             f"lr_max * final, so give a number, 0 or more")
        self.warmup_pct, self.final = warmup_pct, final

    def _factors(self, pos: float) -> tuple[float, float | None]:
        if pos < self.warmup_pct:
            return pos / self.warmup_pct, None
        phase = (pos - self.warmup_pct) / max(1e-12, 1 - self.warmup_pct)
        return cosine(1.0, self.final, phase), None


class LRFinder(Callback):
    """Sweeps the learning rate exponentially from ``start_lr`` to ``end_lr`` over ``num_it``
    steps, records the loss, and stops when the loss explodes. Used by ``Learner.lr_find``.
    Under ``torchrun`` the loss recorded is the mean over the ranks, so every rank reads the
    same curve, stops at the same step and suggests the same rate.

    Example:
        >>> finder = LRFinder(1e-7, 10.0, num_it=100)
        >>> finder.lr_at(0), finder.lr_at(100)
        (1e-07, 10.0)
    """

    order = Order.SCHEDULE

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                 stop_div: float = 4.0) -> None:
        self.start_lr, self.end_lr, self.num_it, self.stop_div = start_lr, end_lr, num_it, stop_div

    def lr_at(self, step: int) -> float:
        """Learning rate at sweep step ``step``."""
        return self.start_lr * (self.end_lr / self.start_lr) ** (step / self.num_it)

    def before_fit(self) -> None:
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.best = math.inf
        self.average = 0.0

    def before_batch(self) -> None:
        lr = self.lr_at(self.learn.train_iter)
        for group in self.learn.opt.param_groups:
            group["lr"] = lr

    def after_loss(self) -> None:
        # on the loss, not after the batch: a batch cancelled before its loss has none (after
        # the batch, the previous loss would be read again); a loss past the limit stops the
        # sweep before its step
        if not self.learn.training:
            return
        step = self.learn.train_iter
        loss = self.learn.loss.detach().float()
        distributed = self.learn.distributed
        if distributed is not None:
            # the loss of the global batch, as one process reads it: each rank's own loss
            # gave each rank its own curve, its own suggestion (so ranks trained at different
            # rates) and its own point to stop the sweep (one rank waited for the others)
            loss = distributed.all_sum(loss) / distributed.world_size
        loss = float(loss)
        self.average = 0.98 * self.average + 0.02 * loss
        smooth = self.average / (1 - 0.98 ** (len(self.losses) + 1))
        self.lrs.append(self.lr_at(step))
        self.losses.append(smooth)
        self.best = min(self.best, smooth)
        if step + 1 >= self.num_it or not math.isfinite(loss) or smooth > self.stop_div * self.best:
            raise CancelFitException

    def before_validate(self) -> None:
        raise CancelValidateException
