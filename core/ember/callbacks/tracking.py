"""Callbacks that watch a validation metric: early stopping, save-best, and per-epoch
checkpoints for resuming.

Example:
    >>> EarlyStopping(monitor="valid_loss", patience=2).patience
    2
"""

from __future__ import annotations

import math
import numbers
import sys
from pathlib import Path
from typing import Any

from ember.callbacks.base import Callback, Order
from ember.distributed import rank_zero_object
from ember.errors import CancelFitException, ExportError, TrainingError
from ember.utils import cpu_copy, is_whole, warn

__all__ = ["Checkpoint", "EarlyStopping", "SaveBest"]

#: how a monitored value improves: "min" (lower is better), "max", or "auto" (a loss is lower,
#: a metric says which with ``higher_is_better``)
_MODES = ("auto", "min", "max")


class _Monitor(Callback):
    order = Order.TRACKING

    def __init__(self, monitor: str = "valid_loss", mode: str = "auto", min_delta: float = 0.0,
                 reset_on_fit: bool = True) -> None:
        if mode not in _MODES:
            # any other word was read as "min": mode="maximize" stopped a rising accuracy
            raise ValueError(
                f"{type(self).__name__}(mode={mode!r}) is not a mode; give one of "
                f"{', '.join(map(repr, _MODES))} ('max' for a value that should rise, "
                f"like accuracy; 'auto' reads it from the metric)")
        if (isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real)
                or not math.isfinite(min_delta) or min_delta < 0):
            # a negative one counted a worse epoch as an improvement (and made it the best),
            # so a slowly worsening run never stopped; a string failed after the first epoch
            raise ValueError(
                f"{type(self).__name__}(min_delta={min_delta!r}): give the smallest change "
                f"that counts as an improvement, a finite number 0 or more, whatever the "
                f"mode (with 'min' the value must fall by it, with 'max' rise by it)")
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.reset_on_fit = reset_on_fit

    def before_fit(self) -> None:
        if self.mode == "auto":
            lower = self.monitor.endswith("loss")
            for metric in self.learn.metrics:
                if metric.name == self.monitor:
                    lower = not metric.higher_is_better
            self.sign = -1.0 if lower else 1.0
        else:
            self.sign = 1.0 if self.mode == "max" else -1.0
        self._said_nan = False
        # each fit starts afresh, except a resumed one, which goes on from its checkpoint
        if not hasattr(self, "best") or (self.reset_on_fit and not self.learn.resumed):
            self.reset()

    def reset(self) -> None:
        """Forget the best value seen (each fit calls it, unless ``reset_on_fit=False``).

        Example:
            >>> stopper = EarlyStopping()
            >>> stopper.reset(); stopper.best
            -inf
        """
        self.best = -math.inf

    def skipped_validation(self) -> bool:
        """Whether the last recorded epoch had no validation although the data has a
        validation set (a callback cancelled it, e.g. to validate every other epoch): such an
        epoch has no value to monitor, and counts neither as an improvement nor against
        early stopping's patience.

        Example:
            >>> # stopper = EarlyStopping("accuracy"); learn.fit(5, cbs=[stopper])
            >>> # stopper.skipped_validation()  # a fit's own callbacks leave with it
        """
        row = self.learn.recorder.values[-1]
        return (self.monitor not in row and "valid_loss" not in row
                and self.learn.data.valid_dl is not None)

    def improved(self) -> bool:
        """Whether the last recorded epoch beat the best by more than ``min_delta`` (and if
        so, it becomes the best); a NaN value never does.

        Example:
            >>> # stopper = EarlyStopping("r2"); learn.fit(5, cbs=[stopper]); stopper.best
        """
        row = self.learn.recorder.values[-1]
        if self.monitor not in row:
            if self.skipped_validation():
                return False
            raise TrainingError(
                f"{type(self).__name__} monitors {self.monitor!r}, but the recorded values are "
                f"{sorted(row)}; choose one of them"
            )
        value = self.sign * row[self.monitor]
        if math.isnan(value):
            # NaN compares false with everything: it never improves, and is said once a fit
            if not getattr(self, "_said_nan", False):
                self._said_nan = True
                warn(
                    f"{type(self).__name__}: {self.monitor} is NaN at epoch "
                    f"{self.learn.epoch + 1}; an epoch whose {self.monitor} is NaN does not "
                    f"count as an improvement (early stopping counts it against its patience, "
                    f"save-best keeps the weights it had). Check the metric on this validation "
                    f"set (one class only? no items?) or monitor another value")
            return False
        if value > self.best + self.min_delta:
            self.best = value
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` (0 or more, in the direction
    of ``mode``) for ``patience`` epochs (a whole number; ``patience=0`` stops at the first
    epoch without improvement, like ``patience=1``).
    An epoch whose ``monitor`` is NaN is one without improvement (with a warning, once a fit).
    ``mode`` is ``"min"``, ``"max"`` or ``"auto"`` (a loss falls; a metric says which way).

    The fit ends before the next epoch would start, so every callback still sees the last
    epoch (its progress row, its checkpoint, a save-best on another metric). The model keeps
    the weights of the last epoch trained (as Keras's and fastai's do by default): add a
    :class:`SaveBest` on the same ``monitor`` to end with the best epoch's.

    Each fit starts afresh: the best value from an earlier fit (of a callback passed to the
    Learner, which stays for every fit) is forgotten. With ``reset_on_fit=False`` a later fit
    must beat the earlier fits' best, e.g. across ``fine_tune``'s frozen and unfrozen phases.

    Example:
        >>> # learn.fit(50, cbs=EarlyStopping("accuracy", patience=3))
    """

    def __init__(self, monitor: str = "valid_loss", patience: int = 3, mode: str = "auto",
                 min_delta: float = 0.0, reset_on_fit: bool = True) -> None:
        super().__init__(monitor, mode, min_delta, reset_on_fit)
        if not is_whole(patience, 0):
            # a negative patience was taken as 1 without a word, and a float one as its ceiling
            raise ValueError(
                f"EarlyStopping(patience={patience!r}): give a whole number of epochs without "
                f"improvement to wait for, 0 or more (0 stops at the first such epoch, like 1)")
        self.patience, self.wait = patience, 0

    def before_fit(self) -> None:
        super().before_fit()
        if not self.learn.resumed:  # a resumed fit goes on counting from its checkpoint
            self.wait = 0

    def before_epoch(self) -> None:
        # patience=0 (Keras's default) stops at the first epoch without improvement, as 1
        # does; it must not stop a fit before its first epoch, when nothing was measured yet
        if self.wait >= max(self.patience, 1):
            raise CancelFitException

    def after_epoch(self) -> None:
        if not self.skipped_validation():
            self.wait = 0 if self.improved() else self.wait + 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.wait = int(state.get("wait", 0))


class SaveBest(_Monitor):
    """Keep the weights of the best epoch by ``monitor`` and restore them when fit ends.
    With ``path`` the best weights are also written as a checkpoint. An epoch whose
    ``monitor`` is NaN is never the best (with a warning, once a fit).

    Each fit starts afresh and ends with its own best epoch's weights; with
    ``reset_on_fit=False`` it keeps the best over all fits so far (and may restore weights from
    an earlier fit).

    Example:
        >>> # learn.fit(10, cbs=SaveBest("accuracy"))  # the model ends with its best weights
    """

    def __init__(self, monitor: str = "valid_loss", mode: str = "auto", path: str | None = None,
                 restore: bool = True, reset_on_fit: bool = True) -> None:
        super().__init__(monitor, mode, reset_on_fit=reset_on_fit)
        self.path, self.restore = path, restore
        self.best_state: dict[str, Any] | None = None
        #: the epoch (of its fit) whose weights ``best_state`` holds; None before one improved
        self.best_epoch: int | None = None

    def reset(self) -> None:
        """Forget the best value and weights seen.

        Example:
            >>> keeper = SaveBest()
            >>> keeper.reset(); keeper.best_state is None and keeper.best_epoch is None
            True
        """
        super().reset()
        # best_epoch too: it was unset before the first improvement, and a fit without one
        # still named the epoch an earlier fit had kept
        self.best_state, self.best_epoch = None, None

    def after_epoch(self) -> None:
        if self.improved():
            self.best_epoch = self.learn.epoch
            self.best_state = cpu_copy(self.learn.model.state_dict())  # no GPU memory
            if self.path is not None:
                self.learn.save(self.path, with_opt=False)

    def after_fit(self) -> None:
        if self.restore and self.best_state is not None:
            self.learn.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """The best value and its epoch, and (with ``restore``) the best weights so far, so a
        fit resumed from a checkpoint still ends with them."""
        state = {**super().state_dict(), "best_epoch": self.best_epoch}
        if self.restore and self.best_state is not None:
            state["best_state"] = self.best_state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        # with restore=False the weights are not kept, their epoch is (it was lost)
        epoch = state.get("best_epoch")
        self.best_epoch = None if epoch is None else int(epoch)
        # none kept: none from an earlier fit of this callback is restored in its place
        self.best_state = cpu_copy(state["best_state"]) if "best_state" in state else None


class Checkpoint(Callback):
    """Write a full checkpoint (weights, optimiser, schedule, RNG states) after every
    ``every`` epochs (a whole number, 1 or more) and after the fit's last epoch, atomically, so
    an interrupted run resumes with ``learn.fit…(…, resume=path)``.

    The fit's last epoch is the last one it completed, however the fit ends: when a callback
    ends it early with ``CancelFitException`` (:class:`EarlyStopping` before the next epoch,
    ``fit_auto``'s clock in ``after_epoch``, maybe before this callback's ``after_epoch``
    ran), that epoch is written when it was not yet (as complete: a resume goes on with the
    epoch after it), before any ``after_fit`` (:class:`SaveBest` restoring its best weights)
    changes the model. A fit ended inside an epoch (the NaN guard, ``lr_find``'s sweep, a
    cancel in a batch) or by an error or Ctrl-C writes nothing more: the file keeps the last
    end of an epoch written.

    ``path`` is read as :meth:`ember.Learner.save` reads it: a bare name (the default,
    ``"checkpoint"``) is ``<learn.path>/models/<name>.pt``, so learners given their own
    ``path=`` keep their own checkpoints, and ``resume="checkpoint"`` finds it (the default
    used to be ``checkpoint.pt`` in the working folder: resume such a file with
    ``resume="checkpoint.pt"``; a fit with the default says so when it finds one).

    A checkpoint is never overwritten by another run: when the file already holds one that
    this learner did not write or resume from (another learner, or an earlier run of the
    script), or a file that is not an Ember checkpoint, this fit writes the next free
    versioned name beside it (``checkpoint-v1.pt``, ``checkpoint-v2.pt``, …; ``file`` is the
    one it writes) and warns with both names, so both runs stay resumable. ``overwrite=True``
    replaces the file instead.

    Example:
        >>> Checkpoint("run.pt").path
        PosixPath('run.pt')
    """

    order = Order.LAST

    def __init__(self, path: str | Path = "checkpoint", every: int = 1,
                 overwrite: bool = False) -> None:
        if not is_whole(every, 1):
            # every=0 divided by zero at the end of the first epoch, after it had trained
            raise ValueError(
                f"Checkpoint(every={every!r}): the checkpoint is written every `every` epochs "
                f"(and after the last), so give a whole number of epochs, 1 or more (1 writes "
                f"one after each epoch)")
        self.path, self.every, self.overwrite = Path(path), every, overwrite
        self.file: Path | None = None  # the file this fit writes (set before it starts)
        # learn.epochs_run when this fit last wrote the file (or began), so a fit that ends
        # early writes its last epoch once; None outside a fit whose before_fit ran. A
        # counter every rank shares: under torchrun all ranks decide alike (the save is
        # collective)
        self._written: int | None = None

    def before_fit(self) -> None:
        learn = self.learn
        self._written = learn.epochs_run
        self.file = file = learn._resolve(self.path, ".pt")
        resumed_from = learn._resumed_from
        if self.path == Path("checkpoint") and resumed_from is None and not file.exists() \
                and Path("checkpoint.pt").is_file():
            warn(f"Checkpoint() writes {file} (the learner's models folder, as learn.save "
                 f"does); checkpoint.pt in the working folder is from the old default and is "
                 f"left as it is: resume it with resume='checkpoint.pt'")
        if not self.overwrite and not _same_file(resumed_from, file):
            # rank 0 writes the file with its run, so it decides, and every rank writes alike
            decision = None
            if getattr(learn.distributed, "rank", 0) == 0:
                taken = self._taken(file)
                decision = None if taken is None else (taken, self._own_version(file))
            if learn.distributed is not None:
                decision = rank_zero_object(decision)
            if decision is not None:
                taken, self.file = decision
                if not _same_file(resumed_from, self.file):
                    warn(f"Checkpoint: {file} already holds {taken}, which this learner did not "
                         f"write or resume from, so it is kept and this run writes {self.file} "
                         f"(resume it with resume={str(self.file)!r}, the other with "
                         f"resume={str(file)!r}); Checkpoint(..., overwrite=True) replaces "
                         f"the file instead")
        if resumed_from is not None and not _same_file(resumed_from, self.file):
            warn(f"this fit resumed from {resumed_from}, but its Checkpoint writes {self.file}: "
                 f"to resume after another interruption, use resume={str(self.file)!r}")

    def _own_version(self, file: Path) -> Path:
        """The first of ``<stem>-v1<suffix>``, ``<stem>-v2<suffix>``, … beside ``file`` that
        is free or this learner's own (a later fit of the same learner continues in it)."""
        version = 1
        while True:
            candidate = file.with_name(f"{file.stem}-v{version}{file.suffix}")
            if self._taken(candidate) is None:
                return candidate
            version += 1

    def _taken(self, file: Path) -> str | None:
        """What ``file`` holds that this fit must not overwrite (another run's checkpoint, a
        file that is not an Ember checkpoint), or None when it may (no file yet, or a
        checkpoint this learner wrote or resumed from)."""
        if not file.exists():
            return None
        state = _peek(file)
        if state is None:
            return "a file that is not an Ember checkpoint"
        if state.get("run") == self.learn._run_id:  # its own
            return None
        model = state.get("model_class")
        return (f"the checkpoint of another run ({f'a {model}, ' if model else ''}"
                f"after epoch {state.get('epoch', 0)})")

    def after_epoch(self) -> None:
        if (self.learn.epoch + 1) % self.every == 0 or self.learn.epoch + 1 == self.learn.n_epoch:
            self._save()

    def after_cancel_fit(self) -> None:
        # also fired by an error or Ctrl-C on its way out (the Learner's _run), when nothing
        # is written: a rank alone would wait in the collective save for ever
        ended_early = isinstance(sys.exc_info()[1], CancelFitException)
        if ended_early and self.learn.epoch_complete and self._written not in (
                None, self.learn.epochs_run):
            self._save()
        self._written = None

    def after_fit(self) -> None:
        self._written = None

    def _save(self) -> None:
        self.learn.save(self.file or self.path, with_opt=True)
        self._written = self.learn.epochs_run


def _same_file(path: Path | None, other: Path) -> bool:
    """Whether ``path`` (None: no file) names the file ``other`` does."""
    return path is not None and path.resolve() == other.resolve()


def _peek(file: Path) -> dict[str, Any] | None:
    """The contents of the Ember checkpoint ``file`` (memory-mapped: the weights are not
    read), or None when it is not one."""
    from ember.export import read_checkpoint  # here: it loads safetensors, import ember not

    try:
        return read_checkpoint(file, mmap=True)
    except ExportError:
        return None
