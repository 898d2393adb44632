"""The recorder (losses, metrics, learning rates) and the progress printer.

Example:
    >>> Recorder().order > ProgressPrinter().order
    False
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from typing import Any

import torch

from ember.callbacks.base import OPEN_ENDED, Callback, Order
from ember.callbacks.training import skipped_steps
from ember.errors import TrainingError
from ember.utils import new_figure

__all__ = ["ProgressPrinter", "Recorder"]


def _one_number(metric: Any) -> float:
    """``metric.compute()`` as a float: each metric is one column of the recorder's rows, which
    early stopping compares and the progress table prints, so a tensor or NumPy number of one
    element is read as its value and anything else (a dict, a vector) is refused by name."""
    value = metric.compute()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):  # NumPy's too
        return float(value)
    if (isinstance(value, torch.Tensor) and value.numel() == 1) or (
            hasattr(value, "shape") and getattr(value, "size", None) == 1):  # a NumPy array
        return float(value)
    shape = getattr(value, "shape", None)
    described = (f"a {type(value).__name__} of shape {tuple(shape)}" if shape is not None
                 else f"a {type(value).__name__}")
    raise TrainingError(
        f"metric {metric.name!r} ({type(metric).__name__}).compute() returned {described}, "
        f"but a metric is one number (one column of learn.recorder.values): return a float, "
        f"and make one metric per number (a subclass per key or class, each with its own "
        f"`name`)")


class Recorder(Callback):
    """Records training losses (every batch), learning rates, and per-epoch validation metrics.

    Losses stay on the device until the epoch ends, so recording costs no synchronisation.
    With float16 mixed precision an epoch's ``train_loss`` leaves out the batches whose loss
    overflowed (the loss scaler skipped their steps), and its row's ``skipped`` says how
    many optimiser steps the scaler skipped, for an overflow in the loss or in the gradients
    alone (a column of the progress table, blank for an epoch with none); a fit without
    loss scaling has no ``skipped``. ``losses`` still holds those batches, as inf or
    NaN, for plotting. Without loss scaling a non-finite loss makes ``train_loss`` NaN.
    After training, ``learn.recorder.values`` is a list of one dict per epoch and
    ``learn.recorder.plot_loss()`` draws the curves.

    Each evaluation pass is summarised in ``last_evaluation``, its scores named after the
    split it read (``learn.split``): ``valid_loss`` and the metrics' own names for the
    validation set (and a loader given as it is), the split's name in front for another one
    (``test_loss``, ``test_accuracy``). ``last_validation`` holds the last validation pass
    only: a ``validate("test")`` after a fit leaves it, and the per-epoch rows, as they were.
    A pass that scored no batch (cancelled before its first, in whatever order) has no scores:
    its epoch's row holds no ``valid_loss`` and no metrics, and the monitors pass over it.

    Example:
        >>> # learn.fit(2); learn.recorder.values[-1]["valid_loss"]
        >>> # learn.fit(2)  # precision="fp16"; [row["skipped"] for row in learn.recorder.values]
        >>> # learn.validate("test"); learn.recorder.last_evaluation   # {'test_loss': …}
    """

    order = Order.RECORDER

    def __init__(self) -> None:
        self.values: list[dict[str, float]] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.iters: list[int] = []
        self.epoch_start: float | None = None
        self._epoch_losses: list[float] = []
        #: the report of the last ``fit_auto`` (choices and reasons), if any
        self.auto: dict[str, Any] | None = None
        #: the scores of the last validation pass not yet in an epoch's row: ``validate()``'s,
        #: or during a fit the current epoch's (emptied once the epoch's row takes them)
        self.last_validation: dict[str, float] = {}
        #: the scores of the last evaluation pass of any split, named after it
        self.last_evaluation: dict[str, float] = {}

    def before_epoch(self) -> None:
        self.epoch_start = time.perf_counter()
        # the epoch's row takes this epoch's validation only, not one run before the fit
        self.last_validation = {}
        # (iteration, loss, learning rate) of each training batch that computed a loss
        self._batches: list[tuple[int, torch.Tensor, float]] = []
        self._epoch_losses: list[float] = []

    def after_loss(self) -> None:
        learn = self.learn
        if learn.training:
            # recorded here, not after the batch: a batch cancelled before its loss (a callback
            # that skips batches) has none, and recording there took the previous batch's
            self._batches.append((learn.train_iter, learn.loss, learn.opt.param_groups[-1]["lr"]))
            return
        loss, yb = learn.loss, learn.yb
        if loss is None:  # a test set without labels: nothing to score
            return
        if isinstance(yb, torch.Tensor):
            size = len(yb) if yb.ndim else 1
        else:  # a target in parts (a dict, a tuple): its items, not its number of parts
            from ember.learner import _n_rows

            size = _n_rows(yb) or 1
        if self._valid_count:  # the sum is on the loss's device from the first batch on
            self._valid_loss.add_(loss, alpha=size)  # one operation per batch, no host sync
        else:
            self._valid_loss = loss.to(torch.float64) * size
        self._valid_count += size
        for metric in learn.metrics:
            try:
                metric.update(learn.pred, yb)
            except (TrainingError, torch.OutOfMemoryError):
                raise
            except Exception as error:  # the training check left outputs in parts to here
                from ember.checks import metric_error

                raise metric_error(learn, metric, error, f"validation batch {learn.iter + 1}"
                                   ) from error

    def after_cancel_fit(self) -> None:
        # a fit stopped mid-epoch (the NaN guard, an error, Ctrl-C) keeps the losses it
        # trained, so plot_loss shows what led up to the stop
        if getattr(self, "_batches", None):
            self.after_train()

    # an epoch cancelled mid-training (CancelEpochException) skips after_train: its batches
    # were trained, so their losses are kept and make its row's train_loss
    after_cancel_epoch = after_cancel_fit

    def after_train(self) -> None:
        if self._batches:
            iters, losses, lrs = zip(*self._batches)
            self._batches = []
            self._epoch_losses = torch.stack(losses).float().cpu().tolist()
            self.losses.extend(self._epoch_losses)
            self.lrs.extend(lrs)
            self.iters.extend(iters)

    def before_validate(self) -> None:
        self._valid_loss = torch.zeros((), dtype=torch.float64)
        self._valid_count = 0
        for metric in self.learn.metrics:
            metric.reset()

    def after_validate(self) -> None:
        if getattr(self, "_valid_loss", None) is not None:
            split = self.learn.split
            if not self.learn.labelled or not self._scored_any():
                # a test set without labels, or a pass cancelled before it scored a batch
                # (in before_validate by a callback ordered after this one): no scores, as
                # when the pass is cancelled before this callback begins it; the epoch's row
                # read NaN, which early stopping counted against its patience
                self._valid_loss = None
                return
            self.last_evaluation = self.summarise_validation(split)
            if split in ("valid", None):
                self.last_validation = self.last_evaluation
            self._valid_loss = None

    def _scored_any(self) -> bool:
        """Whether the evaluation pass that just ended scored a batch (on any rank)."""
        count = self._valid_count
        distributed = self.learn.distributed
        if distributed is not None:  # every rank calls this: one scoring makes a pass
            count = int(distributed.all_sum(torch.tensor(float(count))))
        return count > 0

    def summarise_validation(self, split: str | None = "valid") -> dict[str, float]:
        """Reduce the loss and metrics of the evaluation pass that just ended (all ranks),
        named after ``split``: ``valid_loss`` and the metrics' names for "valid" (and
        ``None``, a loader given as it is), ``<split>_loss`` and ``<split>_<metric>``
        otherwise.

        It reads the pass's running sums, so it is called during the pass (in the
        ``after_validate`` of the recorder, or of a callback ordered before it); after the
        pass, the scores are in :attr:`last_evaluation` (or :attr:`last_validation`).

        Example:
            >>> # in a callback: def after_validate(self):
            >>> #     scores = self.learn.recorder.summarise_validation("test")
        """
        if getattr(self, "_valid_loss", None) is None:
            raise TrainingError(
                "summarise_validation reads an evaluation pass while it runs (in an "
                "after_validate ordered before the recorder's); no pass is running now: read "
                "learn.recorder.last_evaluation for the last pass's scores, or call "
                "learn.validate() for new ones")
        total = self._valid_loss.clone()
        count = torch.tensor(float(self._valid_count), dtype=torch.float64)
        distributed = self.learn.distributed
        if distributed is not None:
            total, count = distributed.all_sum(total), distributed.all_sum(count)
        prefix = "" if split in ("valid", None) else f"{split}_"
        loss = float(total / count) if float(count) else math.nan
        result = {f"{prefix or 'valid_'}loss": loss}
        for metric in self.learn.metrics:
            metric.synchronise()
            result[prefix + metric.name] = _one_number(metric)
        return result

    def after_epoch(self) -> None:
        # an epoch cancelled before the recorder's before_epoch ran (a callback ordered before
        # it raising CancelEpochException) trained nothing: its row has no train loss and no
        # time, rather than the previous epoch's
        losses, start = self._epoch_losses, self.epoch_start
        self._epoch_losses, self.epoch_start = [], None
        skipped = skipped_steps(self.learn)
        if skipped is not None:
            # float16: a non-finite loss is an overflow whose step the loss scaler skipped;
            # the epoch's train loss is that of the steps taken (all of them kept in .losses)
            losses = [loss for loss in losses if math.isfinite(loss)]
        train_loss = math.fsum(losses) / len(losses) if losses else math.nan
        row: dict[str, Any] = {"epoch": self.learn.epoch, "train_loss": train_loss}
        if skipped is not None:
            row["skipped"] = skipped  # next to the train loss it qualifies
        row.update(getattr(self, "last_validation", {}))
        row["time"] = time.perf_counter() - start if start is not None else 0.0
        self.values.append(row)
        self.last_validation = {}

    @property
    def metric_names(self) -> list[str]:
        """Column names of :attr:`values`."""
        return list(self.values[-1]) if self.values else []

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, ax: Any = None) -> Any:
        """Plot the training loss per batch and the validation loss per epoch; returns the
        figure (:func:`ember.utils.new_figure`), or draws into ``ax``, a matplotlib ``Axes``
        of yours, and returns its figure.

        Example:
            >>> # learn.recorder.plot_loss().savefig("loss.png")
            >>> # figure, axis = plt.subplots(); learn.recorder.plot_loss(ax=axis); plt.show()
        """
        figure, axis = new_figure(ax=ax)
        axis.plot(self.iters[skip_start:], self.losses[skip_start:], label="train")
        if with_valid and self.values:
            per_epoch = len(self.iters) / max(1, len(self.values))
            points = [(per_epoch * (i + 1), v["valid_loss"]) for i, v in enumerate(self.values)
                      if "valid_loss" in v]
            if points:
                axis.plot(*zip(*points), marker="o", label="valid")
        axis.set_xlabel("iteration")
        axis.set_ylabel("loss")
        axis.legend()
        return figure

    def state_dict(self) -> dict[str, Any]:
        return {"values": self.values, "losses": self.losses, "lrs": self.lrs, "iters": self.iters}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values, self.losses = list(state["values"]), list(state["losses"])
        self.lrs, self.iters = list(state["lrs"]), list(state["iters"])


class ProgressPrinter(Callback):
    """Prints one table row per epoch (and a live batch counter on a terminal).

    ``Learner(quiet=True)`` or the environment variable ``EMBER_QUIET=1`` removes it.

    Example:
        >>> ProgressPrinter(stream=sys.stdout).order == Order.PROGRESS
        True
    """

    order = Order.PROGRESS

    def __init__(self, stream: Any = None, min_interval: float = 0.5) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self.live, self.enabled, self.last_print = False, True, 0.0  # until a fit starts

    def before_fit(self) -> None:
        self.out = self.stream or sys.stdout
        self.live = hasattr(self.out, "isatty") and self.out.isatty()
        self.header_done = False
        self.enabled = self.learn.distributed is None or self.learn.distributed.rank == 0

    def before_epoch(self) -> None:
        self.last_print = time.perf_counter()

    def after_batch(self) -> None:
        if not (self.live and self.enabled):
            return
        now = time.perf_counter()
        if now - self.last_print >= self.min_interval:
            self.last_print = now
            phase = "train" if self.learn.training else "valid"
            total = "" if self.learn.n_epoch >= OPEN_ENDED else f"/{self.learn.n_epoch}"
            of = f"/{self.learn.n_iter}" if self.learn.n_iter else ""  # 0: length unknown
            self.out.write(f"\r  epoch {self.learn.epoch + 1}{total} "
                           f"{phase} {self.learn.iter + 1}{of}")
            self.out.flush()

    def after_epoch(self) -> None:
        if not self.enabled or not self.learn.recorder.values:
            return
        row = self.learn.recorder.values[-1]
        names = list(row)
        if self.live:
            self.out.write("\r" + " " * 60 + "\r")
        widths = [max(10, len(name)) for name in names]
        if not self.header_done:
            self.out.write("  ".join(f"{n:>{w}}" for n, w in zip(names, widths)) + "\n")
            self.header_done = True
        cells = []
        for name, width in zip(names, widths):
            value = row[name]
            if name == "epoch":
                cells.append(f"{value:>{width}d}")
            elif name == "time":
                cells.append(f"{value:>{width - 1}.1f}s")
            elif name == "skipped":  # shown only for an epoch that skipped batches
                cells.append(f"{value or '':>{width}}")
            else:
                cells.append(f"{value:>{width}.4f}")
        self.out.write("  ".join(cells) + "\n")
        self.out.flush()
