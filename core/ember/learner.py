"""The Learner: data + model + loss + optimiser + metrics + callbacks, and one training loop.

Every phase runs through :meth:`Learner._with_events`, which fires ``before_X`` and ``after_X``
and catches ``CancelXException``; everything else (recording, progress, schedules, precision,
guards) is a callback. Read :meth:`Learner._do_one_batch` and the methods above it to see the
whole loop.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> import ember
    >>> ember.seed(0)
    >>> x = torch.randn(256, 2); y = (x[:, 0] > 0).long()
    >>> data = ember.Data.from_loaders(
    ...     DataLoader(TensorDataset(x[:192], y[:192]), batch_size=32, shuffle=True),
    ...     DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64))
    >>> learn = ember.Learner(data, torch.nn.Linear(2, 2), quiet=True)
    >>> learn.fit_one_cycle(3, 0.1)
    >>> learn.validate()["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
import random
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as torch_module
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present
from torch.optim import optimizer as torch_optimizer

from ember.callbacks.base import EVENTS, Callback
from ember.callbacks.recorder import ProgressPrinter, Recorder
from ember.callbacks.schedule import CosineSchedule, LRFinder, OneCycle
from ember.callbacks.tracking import Checkpoint, EarlyStopping, SaveBest
from ember.callbacks.training import MixedPrecision, NanGuard, PreciseBatchNorm
from ember.checks import (
    Finding,
    Guard,
    check_first_batch,
    check_metrics,
    check_setup,
    doctor,
    first_forward,
    first_loss,
)
from ember.data import (
    Data,
    check_batch,
    check_batch_like_training,
    check_items,
    n_batches,
    require_batches,
    unlabelled_test_error,
    worker_seeds,
)
from ember.distributed import (
    Distributed,
    RowShard,
    ShardSampler,
    SharedOrderSampler,
    interleave,
    load_optimizer_state,
    loader_settings,
    optimizer_state,
    shard_batches,
    shard_loader,
    unshard_loader,
    unshard_rows,
    write_on_rank_zero,
)
from ember.errors import (
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidateException,
    DataError,
    TrainingError,
)
from ember.losses import loss_for, loss_name
from ember.metrics import Metric, default_metrics
from ember.model import (
    _check_bn_policy,
    apply_bn_policy,
    evaluating,
    freeze_to,
    frozen_bn_modules,
    split_groups,
)
from ember.utils import (
    atomic_write,
    cpu_copy,
    default_device,
    env_flag,
    is_whole,
    map_tensors,
    new_figure,
    to_device,
    warn,
)

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

__all__ = ["CHECKPOINT_VERSION", "LRFindResult", "Learner", "learner"]

CHECKPOINT_VERSION = 1
LR = float | slice | Sequence[float]


#: before/after-cancel/after event names of each phase that :meth:`Learner._with_events` runs
_PHASE_EVENTS = {phase: (f"before_{phase}", f"after_cancel_{phase}", f"after_{phase}")
                 for phase in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}
#: what runs inside each phase, between its before_ and after_ events: phases, and events of
#: its own (the batch fires after_pred and after_loss)
_PHASE_INSIDE = {"fit": ("epoch",), "epoch": ("train", "validate"), "train": ("batch",),
                 "validate": ("batch",), "batch": ("after_pred", "after_loss", "backward", "step"),
                 "backward": (), "step": ()}
#: the phase each cancel exception cancels, and what that skips (for error messages)
_CANCELS: dict[type[Exception], tuple[str, str]] = {
    CancelFitException: ("fit", "ends the fit"),
    CancelEpochException: ("epoch", "skips the rest of an epoch"),
    CancelTrainException: ("train", "skips the rest of an epoch's training"),
    CancelValidateException: ("validate", "skips the rest of a validation pass"),
    CancelBatchException: ("batch", "skips the rest of a batch"),
    CancelBackwardException: ("backward", "skips a batch's backward pass"),
    CancelStepException: ("step", "skips a batch's optimiser step"),
}


def _handled_in(phase: str) -> tuple[str, ...]:
    # the events in which the phase's cancel exception is caught: before_<phase> and every
    # event that fires inside the phase (its after_cancel_ and after_ events are outside)
    events = [_PHASE_EVENTS[phase][0]]
    for part in _PHASE_INSIDE[phase]:
        if part in _PHASE_EVENTS:
            events += [*_handled_in(part), *_PHASE_EVENTS[part][1:]]
        else:
            events.append(part)
    return tuple(dict.fromkeys(events))


def adamw(params: Any, lr: float) -> torch.optim.Optimizer:
    """Ember's default optimiser: AdamW with betas (0.9, 0.99) and eps 1e-5."""
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), eps=1e-5)


#: where the training loop stands: restored after a probe (``Learner.trial``)
_LOOP_COUNTERS = ("epoch", "n_epoch", "start_epoch", "train_iter", "planned_steps",
                  "epoch_complete")


class LRFindResult(float):
    """The learning rate :meth:`Learner.lr_find` suggests (use it as a float), with the curve.

    The rule: smooth the loss (exponential moving average), find the learning rate where the
    smoothed loss is lowest, and suggest a tenth of it — the largest rate that is still safely
    on the falling side of the curve. If the loss never falls, ``1e-3`` is returned with a
    warning.

    Example:
        >>> result = LRFindResult.from_curve([1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        ...                                  [1.0, 0.8, 0.5, 0.4, 3.0])
        >>> round(float(result), 6), round(result.minimum, 6)
        (0.01, 0.1)
    """

    lrs: list[float]
    losses: list[float]
    minimum: float
    steepest: float

    @classmethod
    def from_curve(cls, lrs: Sequence[float], losses: Sequence[float]) -> LRFindResult:
        """Apply the suggestion rule to a recorded curve."""
        import numpy as np

        if len(lrs) < 2:
            raise TrainingError("lr_find recorded fewer than 2 points; give more training data")
        losses_array = np.asarray(losses, dtype=float)
        finite = np.where(np.isfinite(losses_array), losses_array, np.inf)
        best = int(np.argmin(finite))
        log_lrs = np.log10(np.asarray(lrs, dtype=float))
        slopes = np.gradient(np.where(np.isfinite(finite), finite, finite[best]), log_lrs)
        steepest = float(lrs[int(np.argmin(slopes[: best + 1]))]) if best > 0 else float(lrs[0])
        fell = finite[best] < finite[0] * 0.98 and best > len(lrs) // 10
        if fell:
            value = float(lrs[best]) / 10
        else:
            warn(
                "lr_find: the loss never fell clearly during the sweep, so there is no good "
                "learning rate to read off the curve; using the safe fallback 1e-3. Check that "
                "the targets fit the loss and that the model can learn (learn.doctor() if "
                "available), or sweep more steps with lr_find(num_it=300).")
            value = 1e-3
        result = cls(value)
        result.lrs, result.losses = list(map(float, lrs)), list(map(float, losses))
        result.minimum, result.steepest = float(lrs[best]), steepest
        return result

    def plot(self, skip_end: int = 5, ax: Any = None) -> Any:
        """Plot loss against learning rate (log scale) with the suggestion marked; returns the
        figure (:func:`ember.utils.new_figure`), or draws into ``ax``, a matplotlib ``Axes``
        of yours, and returns its figure.

        Example:
            >>> # learn.lr_find().plot().savefig("lr_find.png")
            >>> # figure, axis = plt.subplots(); learn.lr_find().plot(ax=axis); plt.show()
        """
        figure, axis = new_figure(ax=ax)
        end = len(self.lrs) - skip_end if len(self.lrs) > skip_end + 2 else len(self.lrs)
        axis.plot(self.lrs[:end], self.losses[:end])
        axis.axvline(float(self), color="red", linestyle="--", label=f"suggested {float(self):.2e}")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("loss (smoothed)")
        axis.legend()
        return figure


class Learner:
    """Trains ``model`` on ``data``.

    Args:
        data: an :class:`ember.Data`.
        model: any ``nn.Module``; its parameter groups (body → head) come from ``splitter``,
            a ``param_groups()`` method, or ``body``/``head`` attributes.
        loss_func: defaults to the loss for ``data.target_kind`` (:func:`ember.loss_for`;
            several regression targets are weighed by ``1 / data.target_std**2`` each).
        opt_func: ``opt_func(param_groups, lr=...)`` → optimiser; AdamW by default.
        lr: default learning rate for :meth:`fit` and :meth:`fit_one_cycle`, in any form
            :meth:`lr_for_groups` takes (a float, a slice, one rate per group); a negative,
            non-finite or miscounted one is refused here.
        metrics: metric instances, classes or registered names; defaults per target kind.
        cbs: extra callbacks, kept for every fit; one of the class of a default (``NanGuard``,
            ``Guard``, ``ProgressPrinter``, ``MixedPrecision``) replaces that default, and a
            ``Recorder`` records beside ``learn.recorder`` (one given to a single fit's
            ``cbs=`` stands in for those of its class during that fit).
        splitter: ``splitter(model)`` → list of parameter lists, body first.
        wd: weight decay (never applied to biases and normalisation weights), a finite
            number, 0 or more; setting ``learn.wd`` later changes the optimiser's (see
            :attr:`wd`).
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a device name.
        precision: ``None`` (float32), ``"bf16"`` or ``"fp16"`` mixed precision.
        bn_policy: BatchNorm handling in frozen groups, ``"train"`` or ``"freeze"``
            (see :mod:`ember.model`); any other value is refused here, and when set later.
        path: folder for checkpoints and exports given by bare names.
        quiet: no progress output (also ``EMBER_QUIET=1``; ``0``/``false``/``off`` keep it).
        nan_guard: stop on NaN/inf loss and restore the last good weights (with ``"fp16"``,
            after more than 16 overflowed batches in a row: see :class:`NanGuard`).
        checks: warn about likely mistakes at the start of each fit (see :mod:`ember.checks`).
        sync_bn: under ``torchrun``, synchronise BatchNorm statistics across ranks.
        channels_last: keep convolutional models and image batches in channels-last memory
            format (faster convolutions with mixed precision on recent GPUs).
        compile: run the forward pass through ``torch.compile``: ``True`` with torch's
            defaults (the inductor backend), or a dict of ``torch.compile``'s keyword
            arguments, e.g. ``{"backend": "aot_eager"}`` (no kernels to build: quick to
            start, for tests and debugging) or ``{"mode": "max-autotune"}``. ``learn.model``
            stays the plain model: checkpoints, exports and ``ember.load`` never see the
            compiled wrapper.

    Under ``torchrun`` the Learner joins the process group, wraps the model in
    DistributedDataParallel and shards ``data``'s loaders across ranks (see
    :mod:`ember.distributed`); the script does not change.

    Example:
        >>> # learn = ember.Learner(data, model, metrics=["accuracy"])
    """

    def __init__(
        self,
        data: Data,
        model: nn.Module,
        loss_func: Callable[[Tensor, Tensor], Tensor] | None = None,
        opt_func: Callable[..., torch.optim.Optimizer] = adamw,
        lr: float = 1e-3,
        metrics: Iterable[Metric | type | str] | Metric | str | None = None,
        cbs: Iterable[Callback] | Callback | None = None,
        *,
        splitter: Callable[[nn.Module], Sequence[Sequence[nn.Parameter]]] | None = None,
        wd: float = 0.01,
        device: str | torch.device | None = "auto",
        precision: str | None = None,
        bn_policy: str = "train",
        path: str | Path = ".",
        quiet: bool | None = None,
        nan_guard: bool = True,
        checks: bool = True,
        sync_bn: bool = False,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
    ) -> None:
        if not isinstance(data, Data):
            raise _not_data_error(data, "ember.Learner")
        if not isinstance(model, nn.Module):
            raise TrainingError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        # an unknown policy was refused only when a fit started, after the model had moved
        self.bn_policy, self.path = bn_policy, Path(path)
        # which run this learner's checkpoints belong to: a Checkpoint overwrites a file of
        # its own run only; loading a full checkpoint (a resume) carries its run on
        self._run_id, self._resumed_from = secrets.token_hex(8), None
        self.data, self.device = data, default_device(device)
        if not isinstance(compile, (bool, dict)):
            raise TrainingError(
                f"compile must be True, False or a dict of torch.compile's keyword arguments "
                f"(e.g. {{'backend': 'aot_eager'}}), got {compile!r}")
        self.channels_last, self.compile = channels_last, compile
        memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=memory_format)
        self.loss_func = (loss_func if loss_func is not None
                          else loss_for(data.target_kind, target_std=data.target_std))
        if isinstance(self.loss_func, nn.Module):
            self.loss_func.to(self.device)
        if not callable(opt_func):  # opt_func="adam" was "'str' object is not callable" at fit
            raise TrainingError(
                f"opt_func must be a callable opt_func(param_groups, lr=...) that builds a torch "
                f"optimiser, e.g. torch.optim.SGD or functools.partial(torch.optim.SGD, "
                f"momentum=0.9); got {opt_func!r}")
        self.opt: torch.optim.Optimizer | None = None
        #: ids of the parameters weight decay applies to (set by create_opt), see wd
        self._decaying: set[int] = set()
        self.opt_func, self.lr, self.wd, self.splitter = opt_func, lr, wd, splitter
        self.metrics = _resolve_metrics(metrics, data)
        self.step_fn: Callable[[], Any] | None = None
        self.distributed = Distributed.from_environment()
        self.forward_model: nn.Module = self.model
        if self.distributed is not None:
            self._shard_data()
            if sync_bn:
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.forward_model = self.distributed.wrap(self.model, self.device)
        self.forward_model = self._compiled(self.forward_model)
        self.n_frozen, self.epoch, self.n_epoch, self.train_iter = 0, 0, 0, 0
        self.training, self.diverged, self._checked = False, False, False
        # elements in the first training batch checked ((x, y): 2), which the first batch of
        # each evaluation pass must match; None until a training batch was checked
        self._train_batch_length: int | None = None
        self.iter, self.n_iter = 0, 0
        self._running = 0  # top-level phases (_run) running: a validation inside a fit is 2
        self.lr_suggestion: LRFindResult | None = None
        self.planned_lr: list[float] = []
        #: alternative models :meth:`fit_auto` may race (set by :func:`learner` from defaults)
        self.candidates: dict[str, Callable[[], nn.Module]] = {}
        #: set by a callback that runs the fit on a clock (``ember.auto.TimeBudget``): the share
        #: of the time spent, which :meth:`progress` then reports instead of the share of steps
        self.clock: Callable[[], float] | None = None
        #: training steps the current fit plans (``n_epoch`` epochs of the training loader), set
        #: at the start of each fit; :meth:`progress` and step-based schedules divide by it
        self.planned_steps = 1
        #: True while a fit that resumed from a checkpoint runs (``resume=``): callbacks whose
        #: ``load_state_dict`` restored their state keep it in ``before_fit`` instead of
        #: starting afresh
        self.resumed = False
        #: False while an epoch runs (and after one that was cut short): a checkpoint saved
        #: then says so, and resuming from it warns that the rest of that epoch is skipped.
        #: A fit ended in ``before_epoch`` (early stopping, Ctrl-C) leaves ``epoch`` and this
        #: at the last epoch run: the one it would have begun never did
        self.epoch_complete = True
        #: training epochs begun over the learner's life, every fit's together (``epoch``
        #: restarts at 0 with each fit); one cancelled in ``before_epoch`` is not. Each epoch's
        #: samplers get ``set_epoch`` with the count before it, so under torchrun (a
        #: ``DistributedSampler`` shuffles with ``seed + epoch``) the second fit draws a new
        #: order, as one process does; checkpoints keep it
        self.epochs_run = 0
        #: the split an evaluation pass reads: "valid" during a fit and for ``validate()``,
        #: "test" or "train" for ``validate("test")`` / ``get_preds("train")``…, ``None`` for
        #: a loader given as it is. The recorder names a pass's scores after it
        self.split: str | None = "valid"
        #: False while an evaluation pass reads a test set without labels (see
        #: :attr:`ember.Data.test_labelled`): its batches are inputs only, ``yb`` and ``loss``
        #: are ``None``, and ``after_loss`` fires with them so
        self.labelled = True
        self.cbs: list[Callback] = []
        self._own_cbs: list[Callback] = []  # attached by a running call for itself (_attached)
        self.recorder = Recorder()
        if quiet is None:
            quiet = env_flag("EMBER_QUIET")
        defaults: list[Callback] = [self.recorder]
        if not quiet:
            defaults.append(ProgressPrinter())
        if nan_guard:
            defaults.append(NanGuard())
        if checks:
            defaults.append(Guard())
        if precision is not None:
            defaults.append(MixedPrecision(precision))
        given = [_callback_of(cb) for cb in _as_list(cbs)]
        # one of the user's of a default's class is that default configured their way: both
        # ran (NanGuard(max_skipped=100) beside the default's 16 still stopped at 16, two
        # MixedPrecision scaled the loss twice). The recorder stays, as in a fit's cbs=
        kept, _ = _split_replaced(defaults, given, keep=[self.recorder])
        self.add_cbs([*kept, *given])
        self._groups = split_groups(self.model, splitter)
        self._frozen_bn: list[nn.Module] = []
        #: ids of the parameters a freeze of the learner's set requires_grad=False on (those
        #: the user froze stay frozen, see _apply_freeze)
        self._frozen_by_learner: set[int] = set()
        self.lr_for_groups(lr)  # a bad default rate is refused now, not when a fit starts

    @property
    def loss_func(self) -> Callable[[Tensor, Tensor], Tensor]:
        """The loss: a module or a plain function of ``(pred, target)``. A callback may replace
        it at any point of a fit; the next batch uses the new one.

        Example:
            >>> # learn.loss_func = ember.losses.CrossEntropyFlat(label_smoothing=0.1)
        """
        return self._loss_func

    @loss_func.setter
    def loss_func(self, value: Callable[[Tensor, Tensor], Tensor]) -> None:
        # both failed only in the first batch: a class as "Boolean value of Tensor with more
        # than one value is ambiguous" (its constructor was given the outputs), a name as
        # "'str' object is not callable"
        if isinstance(value, type) and issubclass(value, nn.Module):
            raise TrainingError(f"loss_func is the class {value.__name__}; give an instance, "
                                f"e.g. loss_func={value.__name__}()")
        if not callable(value):
            raise TrainingError(
                f"loss_func must be a callable loss(pred, target) returning one number, such as "
                f"ember.losses.CrossEntropyFlat() or torch.nn.functional.mse_loss; got "
                f"{value!r}")
        self._loss_func, self._loss_call = value, _direct_call(value)
        if isinstance(value, nn.Module):
            trainable = sum(1 for p in value.parameters() if p.requires_grad)
            if trainable:
                warn(f"the loss {type(value).__name__} has {trainable} trainable "
                     f"parameter{'s' if trainable > 1 else ''}, which the optimiser never "
                     f"updates (it trains the model's parameters) and checkpoints do not save; "
                     f"move them into the model (a forward that returns what the loss needs), "
                     f"or fix them with loss.requires_grad_(False)")

    @property
    def wd(self) -> float:
        """Weight decay of the weights (never of biases and normalisation weights). Setting
        it refuses anything but a finite number, 0 or more, and changes the optimiser already
        built at once (its groups of weights; a checkpoint loaded later keeps this rate, not
        its own), so the next step decays at the new rate. An optimiser built with ``wd=0``
        holds biases and normalisation weights with the weights (one group per split): there
        a non-zero rate warns and takes effect when a new optimiser is built
        (``fit(..., reset_opt=True)``).

        Example:
            >>> # learn.fit_one_cycle(3); learn.wd = 0.1; learn.fit_one_cycle(3)
        """
        return self._wd

    @wd.setter
    def wd(self, value: float) -> None:
        # wd=-0.01 was torch's "Invalid weight_decay value" when a fit began; NaN trained
        # every weight to NaN
        if isinstance(value, bool) or not (isinstance(value, numbers.Real)
                                           and math.isfinite(value) and value >= 0):
            raise TrainingError(f"wd={value!r}: the weight decay must be a finite number, 0 "
                                f"or more (0: none), e.g. wd=0.01")
        self._wd = float(value)
        if self.opt is not None:
            self._apply_wd(self.opt)

    def _apply_wd(self, opt: torch.optim.Optimizer) -> None:
        """Give ``opt``'s groups of decaying parameters (those :meth:`create_opt` decays)
        the rate :attr:`wd`; the groups of biases and normalisation weights keep 0. A group
        that mixes both (``wd=0`` built one per split) cannot take a non-zero rate: a
        warning says the next optimiser built will."""
        mixed = False
        for group in opt.param_groups:
            decaying = [id(p) in self._decaying for p in group["params"]]
            if decaying and all(decaying):
                group["weight_decay"] = self._wd
            elif any(decaying):
                mixed = True
        if mixed and self._wd:
            warn(f"learn.wd = {self._wd:g} does not reach this optimiser: it was built with "
                 f"wd=0, which keeps biases and normalisation weights in one group with the "
                 f"weights (decaying one would decay all). The next optimiser built decays "
                 f"the weights at {self._wd:g}: fit(..., reset_opt=True), which starts its "
                 f"state (momentum) afresh")

    @property
    def bn_policy(self) -> str:
        """BatchNorm handling in frozen groups: ``"train"`` or ``"freeze"`` (see
        :mod:`ember.model`). Setting it refuses any other value at once; in groups frozen
        already it decides at once whether their BatchNorm weights train, and the next fit
        sets the layers' mode.

        Example:
            >>> # learn.bn_policy = "freeze"; learn.fine_tune(3)
        """
        return self._bn_policy

    @bn_policy.setter
    def bn_policy(self, value: str) -> None:
        _check_bn_policy(value)
        self._bn_policy = value
        if self.__dict__.get("n_frozen"):
            # the frozen groups' BatchNorm weights kept the old policy's requires_grad: "freeze"
            # set after freeze() still trained them, "train" trained them not (and warned)
            self._apply_freeze()

    # ---------------------------------------------------------------- callbacks
    def add_cbs(self, cbs: Iterable[Callback] | Callback | None) -> list[Callback]:
        """Attach callbacks (kept for every later fit); a callback class, or the name a plugin
        registered it under (``ember_callbacks``), is attached as a new instance. Returns the
        instances attached, to detach them with :meth:`remove_cbs`.

        Example:
            >>> # learn.add_cbs([ember.GradientClip(1.0), "NanGuard"])
        """
        added = [_callback_of(cb) for cb in _as_list(cbs)]
        for cb in added:
            _check_event_names(cb)
            cb.learn = self
            self.cbs.append(cb)
        self.cbs.sort(key=lambda cb: cb.order)
        self._events = {e: [getattr(cb, e) for cb in self.cbs if hasattr(cb, e)] for e in EVENTS}
        # the per-batch path skips the backward/step event machinery when nothing listens
        self._bare_update = not any(self._events[e] for phase in ("backward", "step")
                                    for e in _PHASE_EVENTS[phase])
        return added

    def remove_cbs(self, cbs: Iterable[Callback] | Callback | None) -> None:
        """Detach callbacks.

        Example:
            >>> # learn.remove_cbs(learn.callback("progress_printer"))
        """
        for cb in _as_list(cbs):
            if cb in self.cbs:
                self.cbs.remove(cb)
        self.add_cbs(None)

    def callback(self, name: str) -> Callback:
        """The attached callback called ``name`` (snake case of its class name).

        Example:
            >>> # learn.callback("recorder") is learn.recorder
        """
        for cb in self.cbs:
            if cb.name == name:
                return cb
        raise KeyError(f"no callback named {name!r}; attached: {[cb.name for cb in self.cbs]}")

    def show_callbacks(self) -> str:
        """The callbacks in the order they run, one per line (also printed).

        Example:
            >>> # learn.show_callbacks()   # prints the order; the same text is returned
        """
        text = "\n".join(f"{cb.order:>5}  {type(cb).__name__}" for cb in self.cbs)
        print(text)
        return text

    @contextmanager
    def _without(self, *types: type) -> Iterator[None]:
        with self._detached([cb for cb in self.cbs if isinstance(cb, types)]):
            yield

    @contextmanager
    def _detached(self, cbs: list[Callback]) -> Iterator[None]:
        """Detach the attached callbacks ``cbs`` for the block, then put each back where it
        was in :attr:`cbs`, however the block ends (an error, Ctrl-C, a cancel)."""
        places = sorted(((self.cbs.index(cb), cb) for cb in cbs if cb in self.cbs),
                        key=lambda place: place[0])
        self.remove_cbs(cbs)
        try:
            yield
        finally:
            for index, cb in places:
                if cb not in self.cbs:
                    self.cbs.insert(index, cb)
            self.add_cbs(None)  # keeps the named order; rebuilds the event table

    @contextmanager
    def _attached(self, cbs: list[Callback]) -> Iterator[None]:
        """Attach the callbacks a call adds for itself (a fit's schedule, ``lr_find``'s finder,
        ``fit_auto``'s saver) for the block. The user's ``cbs=`` given to a fit inside the block
        stand in for attached callbacks of their class, never for these."""
        added = self.add_cbs(cbs)
        self._own_cbs.extend(added)
        try:
            yield
        finally:
            self.remove_cbs(added)
            self._own_cbs = [cb for cb in self._own_cbs if all(cb is not a for a in added)]

    def __call__(self, event: str) -> None:
        for method in self._events[event]:
            method()

    def _with_events(self, function: Callable[[], None], name: str, cancel: type[Exception],
                     final: Callable[[], None] | None = None) -> None:
        # the per-batch path runs this several times per batch: event names are looked up
        # once (_PHASE_EVENTS) and callbacks with nothing to do for an event are never called
        before, after_cancel, after = _PHASE_EVENTS[name]
        events = self._events
        try:
            for method in events[before]:
                method()
            function()
        except cancel:
            for method in events[after_cancel]:
                method()
        for method in events[after]:
            method()
        if final is not None:
            final()

    def _run(self, function: Callable[[], None], name: str, cancel: type[Exception]) -> None:
        # a top-level phase (a fit, a validation pass): an error or an interrupt (Ctrl-C) that
        # ends it also fires after_cancel_<name> before it propagates, so callbacks release
        # what they hold mid-batch (autocast) and the learner stays usable
        self._running += 1
        try:
            self._with_events(function, name, cancel)
        except BaseException as error:
            for method in self._events[_PHASE_EVENTS[name][1]]:
                method()
            if isinstance(error, (RuntimeError, IndexError, ValueError)):
                self._explain_batch_error(error)
            if self._running == 1 and isinstance(error, tuple(_CANCELS)):
                raise self._misplaced_cancel(error, name) from error
            raise
        finally:
            self._running -= 1

    def _misplaced_cancel(self, error: BaseException, top: str) -> TrainingError:
        # a cancel exception that escaped every phase: raised in an event whose phase does not
        # catch it. Called by _run once, so the loop pays nothing: the traceback tells which
        # callback method a loop of the Learner's (its local ``method``) was calling
        kind = next(kind for kind in _CANCELS if isinstance(error, kind))
        phase, purpose = _CANCELS[kind]
        called = None
        frame_tb = error.__traceback__
        while frame_tb is not None and frame_tb.tb_next is not None:
            method = frame_tb.tb_frame.f_locals.get("method")
            function = getattr(method, "__func__", None)
            if getattr(function, "__code__", None) is frame_tb.tb_next.tb_frame.f_code:
                called = method  # the innermost call wins
            frame_tb = frame_tb.tb_next
        if called is None:
            where = "outside any callback event (in the model, loss or data)"
        else:
            event = next((event for event, methods in self._events.items()
                          if any(m is called for m in methods)), called.__func__.__name__)
            where = f"in {event} by callback {type(called.__self__).__name__}"
        outside = (" (learn.validate and learn.get_preds run outside fit, where only "
                   "CancelValidateException and CancelBatchException are caught)"
                   if top != "fit" and phase not in ("validate", "batch") else "")
        return TrainingError(
            f"{type(error).__name__} raised {where} is not caught there: it {purpose}, so "
            f"raise it only in {', '.join(_handled_in(phase))}{outside}. To skip something "
            f"else, raise the Cancel…Exception of that phase (the rule: "
            f"help(ember.callbacks.base))")

    # ------------------------------------------------------------ the loop
    def _do_fit(self) -> None:
        for epoch in range(self.start_epoch, self.n_epoch):
            stood, begun = (self.epoch, self.epoch_complete), self.epochs_run
            self.epoch, self.epoch_complete = epoch, False
            try:
                self._with_events(self._do_epoch, "epoch", CancelEpochException)
            except BaseException:
                # ended in before_epoch (early stopping, Ctrl-C): this epoch never began, and
                # the learner stands where the last one left it, so a checkpoint saved now
                # resumes after that epoch (it said "during epoch …", and skipped one)
                if self.epochs_run == begun:
                    self.epoch, self.epoch_complete = stood
                raise

    def _shard_data(self) -> None:
        assert self.distributed is not None
        rank, world = self.distributed.rank, self.distributed.world_size
        data = self.data
        if data.train_dl is not None:
            data.train_dl = shard_loader(data.train_dl, rank, world, train=True)
        if data.valid_dl is not None:
            data.valid_dl = shard_loader(data.valid_dl, rank, world, train=False)
        if data.test_dl is not None:
            data.test_dl = shard_loader(data.test_dl, rank, world, train=False)

    def _do_epoch(self) -> None:
        # counted once before_epoch has let it begin: an epoch cancelled there (a fit that
        # stops before it) is not, and the learner's next fit reads the order it would have
        self.epochs_run += 1
        for loader in (self.data.train_dl, self.data.valid_dl):
            # a sampler, or a batch sampler of the user's own, that reshuffles per epoch
            for sampler in (loader.sampler, loader.batch_sampler) if loader is not None else ():
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(self.epochs_run - 1)
        self._with_events(self._do_train, "train", CancelTrainException)
        if self.data.valid_dl is not None:
            self._with_events(self._do_validate, "validate", CancelValidateException)
        self.epoch_complete = True  # before after_epoch, where Checkpoint saves

    def _do_train(self) -> None:
        self.model.train()
        apply_bn_policy(self._frozen_bn, self.bn_policy)
        self.training, self.dl = True, self.data.train_dl
        self._forward, self._loss_call = self.forward_model, _direct_call(self.loss_func)
        self.n_iter = len(self.dl)
        for index, batch in enumerate(self.dl):
            self.iter = index
            try:
                self._one_batch(batch)
            finally:
                # a batch counts however it ends: one that a cancel of its epoch, training
                # pass or fit cut short (in after_batch too, as a short-epoch callback does)
                # was recorded and may have stepped, and the next epoch's first batch took its
                # number again: a repeated iteration in the recorder, a schedule step twice
                self.train_iter += 1

    def _do_validate(self, dl: DataLoader | None = None) -> None:
        self.model.eval()
        if self.distributed is not None:  # every rank evaluates the model rank 0 saves
            self.distributed.broadcast_buffers(self.model)
        self.training, self.dl = False, dl if dl is not None else self.data.valid_dl
        self._forward, self._loss_call = self.model, _direct_call(self.loss_func)
        self.n_iter = n_batches(self.dl) or 0  # 0: unknown (an iterable dataset, no __len__)
        with torch.no_grad():
            for index, batch in enumerate(self.dl):
                self.iter = index
                if index == 0 and self.labelled and self._train_batch_length is not None:
                    check_batch_like_training(batch, self._loader_name(self.dl),
                                              self._train_batch_length)
                self._one_batch(batch)

    def _loader_name(self, dl: DataLoader) -> str:
        """The data's name for ``dl`` (``valid_dl``, ``test_dl``, ``train_dl``), for errors."""
        data = self.data
        for name, loader in (("valid_dl", data.valid_dl), ("test_dl", data.test_dl),
                             ("train_dl", data.train_dl)):
            if dl is loader:
                return name
        return "the loader"

    def _explain_batch_error(self, error: Exception) -> None:
        # torch's own error for a bad batch after the first (a label out of range in a later
        # training batch or in validation: "Target 3 is out of bounds") becomes the check's
        # message, naming the batch; any other error goes on unchanged. Called by _run, once
        # per failed phase, so the batch loop pays nothing for it
        pred, target = getattr(self, "pred", None), getattr(self, "yb", None)
        if isinstance(error, TrainingError) or not (
                isinstance(pred, Tensor) and isinstance(target, Tensor)
                and pred.shape[:1] == target.shape[:1]):
            return
        try:
            check_first_batch(self, pred, target)
        except TrainingError as explained:
            phase = "training" if self.training else "validation"
            raise TrainingError(f"{phase} batch {self.iter + 1}: {explained}") from error

    def _model_inputs(self, inputs: Sequence[Any]) -> tuple[Any, ...]:
        """A batch's inputs as the model takes them: on the learner's device, image batches
        in channels-last memory with ``channels_last`` (what each training and validation
        batch gets, and PreciseBatchNorm's pass)."""
        xb = tuple(inputs)
        for x in xb:  # most batches are tensors already on the device: nothing to move
            if not (isinstance(x, Tensor) and x.device == self.device):
                xb = to_device(xb, self.device)
                break
        if self.channels_last:
            xb = tuple(x.contiguous(memory_format=torch.channels_last)
                       if isinstance(x, Tensor) and x.ndim == 4 else x for x in xb)
        return xb

    def _one_batch(self, batch: Sequence[Any]) -> None:
        if not self.labelled:  # a test set without labels: inputs only
            inputs, target = (list(batch) if isinstance(batch, (tuple, list)) else [batch]), None
        else:
            if not self._checked:  # a dict or a bare tensor would unpack into keys or rows
                check_batch(batch,
                            f"the {'training' if self.training else 'validation'} loader")
                if self.training:  # what each evaluation pass's first batch must match
                    self._train_batch_length = len(batch)
            *inputs, target = batch
        device = self.device
        self.xb = self._model_inputs(inputs)
        self.yb = target if target is None or (
            isinstance(target, Tensor) and target.device == device) else (
            to_device(target, device))
        events = self._events  # _with_events(self._do_one_batch, "batch", ...), inlined
        try:
            for method in events["before_batch"]:
                method()
            self._do_one_batch()
        except CancelBatchException:
            for method in events["after_cancel_batch"]:
                method()
        for method in events["after_batch"]:
            method()

    def _do_one_batch(self) -> None:
        # the hottest path of all: events are read from the precomputed lists directly
        events = self._events
        if self.yb is None:  # inputs only (a test set without labels): no loss to compute
            self.pred = (self._forward(*self.xb) if self._checked
                         else first_forward(_uncompiled(self._forward), self.xb))
            for method in events["after_pred"]:
                method()
            self.loss_grad = self.loss = None
            for method in events["after_loss"]:
                method()
            return
        if not self._checked:
            self._first_batch()
        else:
            self.pred = self._forward(*self.xb)
            for method in events["after_pred"]:
                method()
            self.loss_grad = self._loss_call(self.pred, self.yb)
        self.loss = self.loss_grad.detach()
        for method in events["after_loss"]:
            method()
        if not self.training:
            return
        if self._bare_update:  # no callback on backward or step: no events to fire
            self.loss_grad.backward()
            self._do_step()
            return
        self._with_events(self._do_backward, "backward", CancelBackwardException)
        self._with_events(self._do_step, "step", CancelStepException)

    def _do_backward(self) -> None:
        self.loss_grad.backward()

    def _do_step(self) -> None:
        opt = self.opt
        assert opt is not None
        if self.step_fn is None and _unannotated_update(opt):
            return
        (self.step_fn or opt.step)()
        opt.zero_grad(set_to_none=True)

    # ------------------------------------------------------------ checks
    def _first_batch(self) -> None:
        # eagerly, also with compile=: a mistake in the data is then torch's plain error (as
        # first_forward words it), not a compiler trace; compiling starts with the next batch
        self.pred = first_forward(_uncompiled(self._forward), self.xb)
        self("after_pred")
        check_first_batch(self, self.pred, self.yb)
        self.loss_grad = first_loss(self, self.pred, self.yb)
        if self.training:  # a validation's first batch meets the metrics in the recorder
            check_metrics(self, self.pred, self.yb)
        self._checked = True

    def doctor(self, sample: int = 2000, verbose: bool = True) -> list[Finding]:
        """Check data, model, loss and settings for the mistakes practitioners keep making and
        return the findings, each with what it means and how to fix it (also printed).

        Example:
            >>> # for finding in learn.doctor(): print(finding)
        """
        return doctor(self, sample=sample, verbose=verbose)

    def set_model(self, model: nn.Module) -> None:
        """Swap in another model for the same data (optimiser, groups and checks are reset).

        Example:
            >>> # learn.set_model(ember.create_model("mlp", n_in=8, n_out=3, hidden=[400]))
        """
        self.model = model.to(self.device)
        self.forward_model = self.model
        if self.distributed is not None:
            self.forward_model = self.distributed.wrap(self.model, self.device)
        self.forward_model = self._compiled(self.forward_model)
        self.opt, self._checked, self.n_frozen = None, False, 0
        self._groups = split_groups(self.model, self.splitter)
        self._frozen_bn, self._frozen_by_learner = [], set()

    def _compiled(self, model: nn.Module) -> nn.Module:
        """``model`` through ``torch.compile`` as ``compile=`` asks (itself when it is off)."""
        if self.compile is False:
            return model
        return torch.compile(model, **({} if self.compile is True else self.compile))

    def fit_auto(self, minutes: float | None = None, epochs: int | None = None,
                 verbose: bool = True, cbs: Iterable[Callback] | None = None) -> dict[str, Any]:
        """Train with no hyper-parameter to choose: the learning rate from ``lr_find``, the
        schedule fitted to ``minutes`` (or ``epochs``; with neither, 5 epochs), a race between
        the candidate models the plugin registered when the budget allows, best weights kept;
        returns the report of what was chosen and why (see :mod:`ember.auto`). ``cbs`` run in
        the final training, standing in for attached callbacks of their class (see
        :meth:`fit`).

        Example:
            >>> # learn.fit_auto(minutes=10)
        """
        from ember.auto import fit_auto

        return fit_auto(self, minutes=minutes, epochs=epochs, candidates=self.candidates,
                        verbose=verbose, cbs=cbs)

    # ------------------------------------------------------------ optimiser & groups
    def create_opt(self) -> torch.optim.Optimizer:
        """Build the optimiser: one group per parameter split (biases and norms without decay).

        Example:
            >>> # learn.create_opt().param_groups[0]["split"] == 0
        """
        self._groups = split_groups(self.model, self.splitter)
        norm_ids = {id(p) for m in self.model.modules()
                    if isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm))
                    for p in m.parameters()}
        # each group starts at its own rate from ``self.lr`` (a slice or a list of rates too:
        # the optimiser was given the list itself and failed with a raw TypeError)
        rates = self.lr_for_groups(None)
        groups = []
        self._decaying = {id(p) for params in self._groups for p in params
                          if p.ndim > 1 and id(p) not in norm_ids}
        for index, params in enumerate(self._groups):
            if not self.wd:  # one optimiser group per split: fewer fused-kernel launches
                groups.append({"params": params, "weight_decay": 0.0, "split": index,
                               "lr": rates[index]})
                continue
            decay = [p for p in params if id(p) in self._decaying]
            no_decay = [p for p in params if id(p) not in self._decaying]
            for chosen, wd in ((decay, self.wd), (no_decay, 0.0)):
                if chosen:
                    groups.append({"params": chosen, "weight_decay": wd, "split": index,
                                   "lr": rates[index]})
        opt = self.opt_func(groups, lr=rates[-1])
        # what the learner uses of it (duck-typed: an optimiser need not subclass torch's);
        # a function that returned None failed later, on .param_groups
        if not (hasattr(opt, "param_groups") and callable(getattr(opt, "step", None))):
            raise TrainingError(
                f"opt_func {_callable_name(self.opt_func)} returned {type(opt).__name__}, not "
                f"a torch optimiser; opt_func(param_groups, lr=...) must build one, e.g. "
                f"torch.optim.SGD or functools.partial(torch.optim.SGD, momentum=0.9)")
        self.opt = opt
        self._apply_freeze()
        return self.opt

    def lr_for_groups(self, lr: LR | None) -> list[float]:
        """Learning rate per parameter group: a float is used for all; ``slice(low, high)``
        spreads geometrically from body to head; ``slice(high)`` gives the head ``high`` and the
        rest ``high / 10``; a list, a tuple, a 1-D numpy array or a 1-D tensor gives one rate per
        group, body first (a 0-d array or tensor, or a numpy float, is one float). A reversed
        slice (``slice(high, low)``, the body faster than the head) is refused as a typo: list
        the rates to mean it.

        Example:
            >>> # learn.lr_for_groups(slice(1e-5, 1e-3)) -> [1e-05, 0.0001, 0.001] for 3 groups
            >>> # learn.lr_for_groups(np.array([1e-5, 1e-3])) -> [1e-05, 0.001] for 2 groups
        """
        n = len(self._groups)
        lr = self.lr if lr is None else lr
        ndim = getattr(lr, "ndim", None)
        if isinstance(ndim, int) and ndim >= 1 and hasattr(lr, "tolist"):  # array or tensor
            # a numpy array of rates was refused as "must be a number": only lists counted
            if ndim > 1:
                raise TrainingError(
                    f"the learning rates form an array of shape {tuple(lr.shape)}; give one "
                    f"rate per parameter group in a 1-D array or a list ({n} here), body first")
            lr = lr.tolist()
        if isinstance(lr, slice):
            stop = _learning_rate(lr.stop, "slice's stop (the head's learning rate)")
            if lr.start is None:
                return [stop / 10] * (n - 1) + [stop]
            start = _learning_rate(lr.start, "slice's start (the body's learning rate)")
            if start == 0:  # a geometric spread cannot start at 0
                raise TrainingError(
                    f"slice({lr.start}, {lr.stop}) starts at learning rate 0, and the rates "
                    f"are spread geometrically from start to stop; give the body a small "
                    f"positive rate (slice({stop / 100:g}, {stop:g})), or list one rate per "
                    f"group to freeze one at 0")
            if start > stop:  # almost always a typo: it trains the body faster than the head
                raise TrainingError(
                    f"slice({start:g}, {stop:g}) gives the body (the first groups) a "
                    f"higher learning rate than the head; the rates go from the slice's start "
                    f"(body) to its stop (head), so write slice({stop:g}, {start:g}). To give "
                    f"the groups deliberately decreasing rates, list one rate per group "
                    f"({n} here), body first")
            if n == 1:
                return [stop]
            ratio = (stop / start) ** (1 / (n - 1))
            return [start * ratio**i for i in range(n)]
        if isinstance(lr, (list, tuple)):
            if len(lr) != n:
                raise TrainingError(f"{len(lr)} learning rates given for {n} parameter groups")
            return [_learning_rate(v, f"learning rate {i} of {n}") for i, v in enumerate(lr)]
        return [_learning_rate(lr, "learning rate")] * n

    def freeze_to(self, n: int) -> None:
        """Freeze parameter groups before ``n`` (negative counts from the head; below ``-len``
        unfreezes everything). ``n`` at or past the last group, which would train nothing, is
        refused with a :class:`TrainingError`. Parameters you froze yourself
        (``requires_grad=False``: a layer frozen by hand, ``nn.Embedding.from_pretrained``'s
        default) stay frozen whatever ``n``; set ``requires_grad=True`` to train them.

        Example:
            >>> # learn.freeze_to(-2)  # train the last two groups
        """
        n_groups = len(self._groups)
        if n >= n_groups:
            raise TrainingError(
                f"freeze_to({n}) would leave no parameter group to train: this model has "
                f"{n_groups} group(s), so give at most {n_groups - 1} (or count from the head: "
                f"-1 trains the head only, as learn.freeze() does)")
        self.n_frozen = n if n >= 0 else max(n_groups + n, 0)
        self._apply_freeze()

    def freeze(self) -> None:
        """Train only the head (the last parameter group).

        Example:
            >>> # learn.freeze(); learn.fit_one_cycle(1)
        """
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter group (but the parameters you froze yourself, see
        :meth:`freeze_to`).

        Example:
            >>> # learn.unfreeze(); learn.fit_one_cycle(3, slice(1e-5, 1e-3))
        """
        self.freeze_to(0)

    def frozen_bn_modules(self) -> list[nn.Module]:
        """The BatchNorm layers in frozen parameter groups (handled by ``bn_policy``).

        Example:
            >>> # learn.freeze(); len(learn.frozen_bn_modules())
        """
        return list(self._frozen_bn)

    def _apply_freeze(self) -> None:
        # parameters frozen by the user (requires_grad=False that no freeze of the learner's
        # set: a layer frozen by hand, nn.Embedding.from_pretrained's default) stay frozen:
        # the first fit's optimiser unfroze them, and trained them, without a word
        params = [p for group in self._groups for p in group]
        kept = {id(p) for p in params
                if not p.requires_grad and id(p) not in self._frozen_by_learner}
        freeze_to(self.model, self._groups, self.n_frozen, self.bn_policy)
        for param in params:
            if id(param) in kept:
                param.requires_grad_(False)
        self._frozen_by_learner = {id(p) for p in params
                                   if not p.requires_grad and id(p) not in kept}
        self._frozen_bn = frozen_bn_modules(self.model, self._groups, self.n_frozen)
        if self.distributed is not None:  # DDP fixes the trained parameters when it wraps
            self.forward_model = self._compiled(
                self.distributed.wrap(self.model, self.device))

    # ------------------------------------------------------------ fitting
    def fit(self, n_epoch: int, lr: LR | None = None, *, cbs: Iterable[Callback] | None = None,
            resume: str | Path | None = None, reset_opt: bool = False) -> None:
        """Train for ``n_epoch`` epochs at a constant learning rate.

        ``cbs`` run for this fit only; each stands in for the attached callbacks of its
        class (``cbs=[GradientClip(5.0)]`` clips at 5 alone), which are back in their
        places afterwards, however the fit ends.

        ``resume`` continues an interrupted run from a checkpoint written by
        :class:`ember.Checkpoint` (same arguments, same result as an uninterrupted run).

        Example:
            >>> # learn.fit(3, 1e-3)
        """
        lrs = self._prepare_opt(lr, reset_opt)
        for group in self.opt.param_groups:  # type: ignore[union-attr]
            group["lr"] = lrs[group["split"]]
        self._fit(n_epoch, _as_list(cbs), resume)

    def fit_one_cycle(self, n_epoch: int, lr_max: LR | None = None, *, pct_start: float = 0.25,
                      div: float = 25.0, div_final: float = 1e5,
                      cbs: Iterable[Callback] | None = None, resume: str | Path | None = None,
                      reset_opt: bool = False) -> None:
        """Train with the one-cycle policy (warm-up to ``lr_max``, then cosine annealing):
        ``pct_start`` of the steps warm up from ``lr_max / div``, the rest anneal toward
        ``lr_max / div_final`` (:class:`ember.OneCycle` says where the first and last steps
        fall, as fastai has it). ``cbs`` run for this fit only, standing in for attached
        callbacks of their class (see :meth:`fit`); the one-cycle schedule is the fit's own and
        replaces nothing.

        Example:
            >>> # learn.fit_one_cycle(5, 3e-3)
        """
        schedule = OneCycle(self._prepare_opt(lr_max, reset_opt), pct_start, div, div_final)
        with self._attached([schedule]):
            self._fit(n_epoch, _as_list(cbs), resume)

    def fit_cosine(self, n_epoch: int, lr: LR | None = None, *, warmup_pct: float = 0.05,
                   cbs: Iterable[Callback] | None = None, resume: str | Path | None = None,
                   reset_opt: bool = False) -> None:
        """Train with linear warm-up then cosine decay to zero. ``cbs`` run for this fit only,
        standing in for attached callbacks of their class (see :meth:`fit`).

        Example:
            >>> # learn.fit_cosine(10, 1e-3)
        """
        schedule = CosineSchedule(self._prepare_opt(lr, reset_opt), warmup_pct)
        with self._attached([schedule]):
            self._fit(n_epoch, _as_list(cbs), resume)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1,
                  lr_mult: float = 100.0, *, cbs: Iterable[Callback] | None = None) -> None:
        """Fine-tune a model with a pretrained body: train the head alone for ``freeze_epochs``,
        then everything for ``epochs`` with discriminative learning rates (the body's lowest
        ``base_lr / 2 / lr_mult``, the head's ``base_lr / 2``). ``cbs`` run in both stages,
        standing in for attached callbacks of their class (see :meth:`fit`).

        Example:
            >>> # learn.fine_tune(3)
        """
        # both counts checked before the frozen stage trains anything
        epochs = _epoch_count(epochs, "epochs")
        freeze_epochs = _epoch_count(freeze_epochs, "freeze_epochs")
        _learning_rate(base_lr, "base_lr")
        if _learning_rate(lr_mult, "lr_mult (the head's rate over the body's)") < 1:
            raise TrainingError(
                f"fine_tune(lr_mult={lr_mult!r}) would train the body faster than the head "
                f"(body base_lr / lr_mult, head base_lr); give lr_mult 1 or more (1 trains "
                f"every group at one rate)")
        if len(self._groups) > 1 and freeze_epochs > 0:
            self.freeze()
            self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, cbs=cbs)
        base_lr /= 2
        self.unfreeze()
        self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=0.3, div=5.0,
                           cbs=cbs)

    @contextmanager
    def trial(self, keep_steps: bool = False) -> Iterator[None]:
        """Run a probe (a sweep, a timing, a short race) and then put the learner back: the
        model's weights, the optimiser's state, the recorder's history and the random number
        generators are restored on leaving the block, also when it raises. The generators are
        those a checkpoint saves (torch's, CUDA's once CUDA is in use, MPS's when the learner
        trains on MPS, NumPy's and Python's global ones, and every ``torch.Generator``, NumPy
        ``Generator`` or ``RandomState`` that a module of the model holds as an attribute,
        such as a seq2seq model's teacher-forcing coins) and the data loaders' own (their
        ``generator=`` and their samplers'), so the shuffles, dropout masks, coins and
        augmentation the probe drew are drawn again by the training that follows (the count of
        epochs run that samplers' ``set_epoch`` reads is put back too):
        ``ember.seed(0); learn.lr_find(); learn.fit_one_cycle(1)`` trains exactly as
        ``ember.seed(0); learn.fit_one_cycle(1)``. A generator held elsewhere (in a callback,
        a loss function, a container the module keeps) is not found and not restored.

        With ``keep_steps`` the weights and optimiser keep what the probe trained and only the
        recorder's history is restored (a probe that is the start of the training that
        follows, such as ``fit_auto``'s timing batches): the random generators are left where
        the probe's steps took them too, as after any training step kept, so the training that
        follows does not draw the same shuffle and dropout masks again. The loop's counters
        (``epoch``, ``train_iter``, …) are restored in both cases, so a checkpoint saved
        afterwards records the last real fit, not the probe.

        A loader with persistent worker processes keeps its workers, and their own generators
        (augmentation that runs in the workers) are not put back.

        Example:
            >>> # with learn.trial(): learn.fit(1)   # weights and random streams unchanged
        """
        recorder_state = copy.deepcopy(self.recorder.state_dict())
        counters = {name: getattr(self, name) for name in _LOOP_COUNTERS if hasattr(self, name)}
        if not keep_steps:
            model_state = cpu_copy(self.model.state_dict())  # no second copy on an accelerator
            opt_state = cpu_copy(optimizer_state(self.opt)) if self.opt is not None else None
            if self.device.type == "cuda":  # so the CUDA generators' seeded state is saved
                torch.cuda.init()           # even when the probe is the first to use CUDA
            rng_state = _get_rng_state(self.model, self.device, self._loader_generators())
            # the epochs a sampler's set_epoch is told: a sweep's epochs moved a
            # DistributedSampler (seed + epoch) on to another shuffle for the fit after it
            epochs_run = self.epochs_run
        try:
            yield
        finally:
            self.recorder.load_state_dict(recorder_state)
            for name, value in counters.items():
                setattr(self, name, value)
            if not keep_steps:
                _set_rng_state(rng_state, self.model, self._loader_generators())
                self.epochs_run = epochs_run
                self.model.load_state_dict(model_state)
                self.opt = None
                if opt_state is not None:
                    load_optimizer_state(self.create_opt(), opt_state)

    def _loader_generators(self) -> list[Any]:
        """The generators of the data's loaders other than the global ones: each loader's
        ``generator`` (its workers' seeds) and those its samplers hold."""
        found: list[Any] = []
        for loader in (self.data.train_dl, self.data.valid_dl, self.data.test_dl):
            if loader is None:
                continue
            for rng in [getattr(loader, "generator", None),
                        *_own_generators(getattr(loader, "sampler", None)),
                        *_own_generators(getattr(loader, "batch_sampler", None))]:
                if rng is not None and all(rng is not other for other in found):
                    found.append(rng)
        return found

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                plot: bool = False) -> LRFindResult:
        """Sweep learning rates on a copy of the current state, then restore it; returns the
        suggested learning rate (a float carrying ``lrs``, ``losses`` and ``plot()``). The
        state restored includes the random generators (see :meth:`trial`), so a fit after the
        sweep trains as it would have without it.

        The sweep runs without the progress printer, the guards, the callbacks that track
        validation results or write checkpoints (early stopping, save-best, checkpoints) and
        PreciseBatchNorm: it has no validation, and its weights are thrown away.

        Example:
            >>> # lr = learn.lr_find(); learn.fit_one_cycle(3, lr)
        """
        check_setup(self)  # before the training loader's length is read
        finder = LRFinder(start_lr, end_lr, num_it)
        n_epoch = math.ceil(num_it / max(1, len(self.data.train_dl or [])))
        with self.trial():
            self._prepare_opt(start_lr, reset_opt=True)
            with self._without(ProgressPrinter, NanGuard, Guard, EarlyStopping, SaveBest,
                               Checkpoint, PreciseBatchNorm), self._attached([finder]):
                self._fit(n_epoch, [], None)
        result = LRFindResult.from_curve(finder.lrs, finder.losses)
        self.lr_suggestion = result
        if plot:
            result.plot()
        return result

    def _prepare_opt(self, lr: LR | None, reset_opt: bool) -> list[float]:
        if self.opt is None or reset_opt:
            self.create_opt()
        self.planned_lr = self.lr_for_groups(lr)
        return self.planned_lr

    def progress(self) -> float:
        """Share of the current fit's training done, in [0, 1]: the steps taken over the
        steps planned (``n_epoch`` epochs), or, when the fit runs on a clock (``fit_auto``'s
        time budget), the share of the time spent. Schedules (one-cycle, teacher forcing) read
        it, so they end with the fit however it is measured.

        Example:
            >>> # learn.fit_one_cycle(4); learn.progress()   # 1.0 once the fit has run
        """
        if self.clock is not None:
            return self.clock()
        return min(self.train_iter / self.planned_steps, 1.0)

    def _fit(self, n_epoch: int, cbs: list[Any], resume: str | Path | None) -> None:
        """Run one fit with the user's ``cbs`` for it: each stands in for the attached
        callbacks of its class (not those a call attached for itself, see :meth:`_attached`),
        which are back in their places after the fit however it ends."""
        n_epoch = _epoch_count(n_epoch, "n_epoch")
        check_setup(self)
        given = [_callback_of(cb) for cb in cbs]  # a class or registered name becomes one
        # the Learner's own recorder stays: learn.recorder is what the progress table, early
        # stopping and fit_auto read, so a Recorder given to a fit records beside it
        _, replaced = _split_replaced(self.cbs, given, keep=[self.recorder, *self._own_cbs])
        with self._detached(replaced):
            self.add_cbs(given)  # they go after the fit
            try:
                self.n_epoch, self.start_epoch, self.train_iter = n_epoch, 0, 0
                # read every batch by progress(): a loader's len() is too slow for the hot path
                self.planned_steps = max(1, n_epoch * len(self.data.train_dl or []))
                self.diverged, self.resumed = False, resume is not None
                self._resumed_from = None
                if resume is not None:
                    self._resumed_from = self._resolve(resume, ".pt")
                    checkpoint = self._load_file(self._resumed_from, True, True, resuming=True)
                    self.start_epoch = checkpoint["epoch"] + 1
                    if not checkpoint.get("epoch_complete", True):
                        warn(
                            f"checkpoint {resume} was saved during epoch {self.start_epoch} (after "
                            f"training step {checkpoint['train_iter']}), not at its end: the fit "
                            f"resumes at epoch {self.start_epoch + 1}, and the rest of epoch "
                            f"{self.start_epoch} is not trained. The Checkpoint callback saves at "
                            f"the end of each epoch")
                    self.train_iter = checkpoint["train_iter"]
                    _set_rng_state(_own_rng_state(checkpoint, self.distributed), self.model,
                                   self._loader_generators())
                # gradients left by a fit that ended inside an accumulation group (stopped by
                # NanGuard, lr_find's sweep, an interrupt) must not join this fit's first step
                self.model.zero_grad(set_to_none=True)
                self._run(self._do_fit, "fit", CancelFitException)
            except Exception as error:
                if self.distributed is not None:
                    self.distributed.report_failure(error)
                raise
            finally:
                self.remove_cbs(given)
                self.training = False
                self.clock = None  # a clock (TimeBudget) lasts one fit

    # ------------------------------------------------------------ evaluation
    def validate(self, dl: DataLoader | str | None = None) -> dict[str, float]:
        """Loss and metrics over a whole loader (validation by default, or ``"test"``).

        The scores are named after the split they are on, so a test score is never read as a
        validation one: the validation set's (and a loader given as it is) are
        ``valid_loss`` and the metrics' own names, as in ``learn.recorder.values`` and what
        early stopping or save-best monitor; another split's carry its name in front,
        ``test_loss``, ``test_accuracy`` (``train_loss``, ``train_accuracy`` for
        ``"train"``). Only a validation pass becomes ``learn.recorder.last_validation``.

        A test set without labels (:attr:`ember.Data.test_labelled`) has nothing to score: it
        is a :class:`DataError`; ``learn.get_preds("test")`` predicts its items.

        Example:
            >>> # learn.validate()        -> {'valid_loss': 0.31, 'accuracy': 0.89}
            >>> # learn.validate("test")  -> {'test_loss': 0.35, 'test_accuracy': 0.87}
        """
        loader = self.loader(dl)
        if self._unlabelled(dl):
            given = not isinstance(dl, str) and dl is not self.data.test_dl  # a user's own
            what, argument = ("the loader given", "loader") if given else ("the test set",
                                                                           '"test"')
            raise unlabelled_test_error(
                "validate needs labels to score", f"use learn.get_preds({argument}) for its "
                f"predictions, or learn.predict_batch(items) for decoded ones", what=what)
        self.recorder.last_evaluation = {}  # a cancelled pass scores nothing
        with self._reading(dl, labelled=True):
            self._run(partial(self._do_validate, loader), "validate", CancelValidateException)
        return dict(self.recorder.last_evaluation)

    def _unlabelled(self, dl: DataLoader | str | None) -> bool:
        # the data's test set without labels, named ("test") or given as its loader, or a
        # loader of the user's own whose batches hold the inputs only (Data.loader_labelled)
        data = self.data
        if isinstance(dl, str) or dl is None:
            return dl == "test" and not data.test_labelled
        if dl is data.test_dl:
            return not data.test_labelled
        return dl is not data.train_dl and dl is not data.valid_dl and not data.loader_labelled(dl)

    @contextmanager
    def _reading(self, dl: DataLoader | str | None, labelled: bool | None = None
                 ) -> Iterator[None]:
        # an evaluation pass outside the fit's own validation: the recorder names its scores
        # after the split, and a loader without labels is read as inputs only (``labelled``
        # when the caller has asked already)
        saved = self.split, self.labelled
        self.split = _split_name(dl)
        self.labelled = not self._unlabelled(dl) if labelled is None else labelled
        try:
            yield
        finally:
            self.split, self.labelled = saved

    def get_preds(self, dl: DataLoader | str | None = None, activation: bool = True
                  ) -> tuple[Any, Any]:
        """Predictions and targets over a whole loader, on the CPU, one row per item in
        dataset order: a loader whose sampler reads the items in another fixed order (text's
        validation and test loaders, longest first, for less padding) has its rows put back in
        the order of its dataset, so row ``i`` is item ``i``. A loader whose order is not fixed
        (a random sampler of the user's own), or that reads only some items, keeps its own.

        With ``activation`` the outputs pass through the target kind's activation (softmax,
        sigmoid); the outputs of a model with several (a tuple or dict of tensors) come back
        raw, part by part, as do the parts of a target in parts. A regression model's
        predictions, with or without ``activation``, have the targets' shape
        (:meth:`ember.Data.shaped_like_targets`): ``(N,)`` beside targets ``(N,)`` although
        the model gives ``(N, 1)``, ``(N, k)`` for ``k`` targets. Batches whose items differ
        in length from one batch to the next (a language model's last, shorter chunk;
        sequence targets padded per batch) are padded to the longest: predictions with NaN
        (no prediction there), integer targets with -100 (what the losses ignore), float
        targets with NaN.

        Under ``torchrun`` every rank gets every item's predictions, the same as one process
        gives: the ranks share out the batches of the whole loader (every ``world_size``-th
        batch, made exactly as one process makes it) and gather them, so a confusion matrix
        or a submission needs no gathering of its own. A loader given as it is that is no
        rank's share (no ``DistributedSampler``, not sharded by Ember) is read whole by every
        rank. Example:
            >>> # probs, targets = learn.get_preds()
            >>> # (probs.argmax(1) == targets).float().mean()  # accuracy over every item
            >>> # predictions, targets = learn.get_preds()  # a regression: both (N,)
            >>> # (predictions - targets).abs().mean()  # mean absolute error

        A test set without labels (:attr:`ember.Data.test_labelled`) gives its predictions
        (in the shape a labelled one's would have) and ``None`` for the targets:
            >>> # probs, targets = learn.get_preds("test")   # targets is None
        """
        loader = self.loader(dl)
        distributed = self.distributed
        whole = unshard_loader(loader) if distributed is not None else None
        by_rows = isinstance(loader.dataset, RowShard)  # a stream: each rank its own rows
        if distributed is not None and whole is not None:
            ordered = _in_order(whole)  # the whole loader as one process reads it
            order = _item_order(ordered)
            if by_rows:  # every batch, each rank its rows, in rank 0's order of the batches
                loader = shard_loader(ordered, distributed.rank, distributed.world_size,
                                      train=False)
                loader.sampler.share_order()  # type: ignore[attr-defined]
            else:
                loader = shard_batches(ordered, distributed.rank, distributed.world_size)
        else:
            order = _item_order(loader)
        gather = _Gather()
        with self._without(ProgressPrinter):
            self.add_cbs([gather])
            try:
                with self._reading(dl):
                    labelled = self.labelled
                    self._run(partial(self._do_validate, loader), "validate",
                              CancelValidateException)
            finally:
                self.remove_cbs([gather])
        preds, targets = gather.preds, gather.targets
        if distributed is not None and whole is not None:  # one exchange for both
            shares = distributed.all_gather_tensors(preds + targets)
            half = (lambda share: len(share) // 2) if labelled else len
            unshard = unshard_rows if by_rows else interleave
            preds = unshard([share[:half(share)] for share in shares])
            targets = unshard([share[half(share):] for share in shares])
        preds = _join(preds)
        targets = _join(targets) if labelled else None  # a test set without labels
        if order is not None and len(order) == _n_rows(preds) and (
                targets is None or len(order) == _n_rows(targets)):
            rows = torch.empty_like(order)
            rows[order] = torch.arange(len(order))  # row of each item, item by item
            preds, targets = (map_tensors(value, lambda x: x[rows]) if value is not None
                              else None for value in (preds, targets))
        if activation and isinstance(preds, Tensor):
            preds = self.data.activation(preds)
        return self.data.shaped_like_targets(preds, targets), targets

    def predict(self, item: Any, **options: Any) -> Any:
        """Decoded prediction for one raw item (a label, a float, a string…). Options go to
        the data's ``predict_batch``: ``probs=True`` gives a classifier's
        :class:`~ember.Prediction`, the label with every class's probability; generation
        takes its own (``n_words=``, ``beam=``…).

        Example:
            >>> # learn.predict(image_path) -> 'sneaker'
            >>> # learn.predict(image_path, probs=True)
            >>> #   -> Prediction(value='sneaker', probabilities={'t-shirt': 0.01, …})
        """
        return self.data.predict_one(self.model, item, device=self.device, **options)

    def predict_batch(self, items: Sequence[Any], **options: Any) -> list[Any]:
        """Decoded predictions for raw items, processed in batches; the options are those of
        :meth:`predict` (``probs=True``: one :class:`~ember.Prediction` per item).

        Example:
            >>> # learn.predict_batch(["great film", "dull"]) -> ['fresh', 'rotten']
            >>> # learn.predict_batch(["great film"], probs=True)[0].probabilities
            >>> #   -> {'fresh': 0.93, 'rotten': 0.07}
        """
        check_items(items, options)
        return self.data.predict_batch(self.model, items, device=self.device, **options)

    def feature_importance(self, **options: Any) -> Any:
        """How much each input matters to the validation metric, where the data kind defines
        it (permutation importance for tables); see ``Data.feature_importance``.

        Example:
            >>> # learn.feature_importance()  -> a table of columns by importance
        """
        return self.data.feature_importance(self, **options)

    def show_results(self, n: int = 9, split: str = "valid") -> Any:
        """Show ``n`` items with their targets and predictions (a figure where the domain
        plugin draws one).

        Example:
            >>> # learn.show_results(6)
        """
        if self._unlabelled(split):
            raise unlabelled_test_error(
                "there are no targets to show beside the predictions", "use "
                "learn.show_results(split=\"valid\"), or learn.predict_batch(items) for the "
                "test items' predictions")
        batch = self.data.one_batch(split)
        inputs = to_device(tuple(batch[:-1]), self.device)
        with evaluating(self.model):  # as predict does: the model's mode is restored after
            outputs = self.model(*inputs)
        return self.data.show_results(batch, self.data.decode(outputs), n)

    def loader(self, dl: DataLoader | str | None = None, in_order: bool = False
               ) -> DataLoader:
        """The loader that ``validate``, ``get_preds`` and the plugins' evaluation helpers
        read: ``"train"``, ``"valid"`` (also for ``None``) or ``"test"`` from the data, or a
        given DataLoader as it is; one that is missing or holds no batch is a
        :class:`DataError`. A named loader that shuffles or drops its last batch (the
        training loader) is read through a loader of the same items, batch size and collation
        that reads every item once in dataset order, so predictions line up with the items;
        with ``in_order`` a given loader is read that way too (for helpers that read a loader
        several times, or look its items up again by index, such as test-time augmentation).

        Example:
            >>> # learn.loader("test") is learn.data.test_dl
            >>> # learn.loader(my_shuffling_loader, in_order=True)  # a fixed order
        """
        if dl is not None and not isinstance(dl, str):
            loader, name = (_in_order(dl) if in_order else dl), "given"
        else:
            name = dl or "valid"
            loader = _in_order(self.data.loader(name))
        shard = next((sampler for sampler in (loader.sampler, loader.batch_sampler)
                      if isinstance(sampler, ShardSampler | SharedOrderSampler)), None)
        # under torchrun a rank's share is empty when there are fewer items (or rows) than
        # ranks: it still joins the others' reduction, so only a loader empty on every rank
        # is an error
        if shard is None or len(shard.base) == 0:
            require_batches(loader, f"the {name} loader")
        return loader

    # ------------------------------------------------------------ saving
    def _resolve(self, path: str | Path, suffix: str) -> Path:
        path = Path(path).expanduser()  # "~/models/m.ember" is in the home folder, as in a shell
        if path.suffix == "" and len(path.parts) == 1:
            path = self.path / "models" / f"{path.name}{suffix}"
        return path

    def save(self, path: str | Path, with_opt: bool = True) -> Path:
        """Write a checkpoint atomically: weights, and with ``with_opt`` the optimiser,
        callback (schedule, recorder) and RNG states needed to resume exactly (the global
        generators, those the model's modules hold and the loaders' own ``generator=``,
        see :meth:`trial`).

        Under torchrun every rank calls it and rank 0 writes; the checkpoint holds every
        rank's RNG states, and a fit resumed from it (``resume=``) under as many ranks gives
        each rank its own, so ranks seeded apart (their own dropout masks or augmentations)
        go on as the uninterrupted run would. Resumed under another number of ranks, or in
        one process, every rank starts from rank 0's states (as it does from a checkpoint
        one process wrote, or an older ember that kept rank 0's alone).

        A bare name goes to ``<learn.path>/models/<name>.pt``. Example:
            >>> # learn.save("stage1")
        """
        file = self._resolve(path, ".pt")
        # every rank takes part: a ZeroRedundancyOptimizer gathers its shards on rank 0
        opt_state = (optimizer_state(self.opt, everywhere=False)
                     if with_opt and self.opt is not None else None)
        rng_states = None
        if with_opt and self.opt is not None:
            rng_state = _get_rng_state(self.model, self.device, self._loader_generators())
            # each rank's own: ranks seeded apart draw apart, and a resume must go on so
            rng_states = (self.distributed.all_gather_object(rng_state)
                          if self.distributed is not None else [rng_state])

        def write() -> Path:
            state: dict[str, Any] = {
                "format": "ember-checkpoint",
                "version": CHECKPOINT_VERSION,
                # a model the user compiled is saved under its own names, not the wrapper's
                # (_orig_mod.*), so the file loads into the plain model too
                "model": _uncompiled(self.model).state_dict(),
                "epoch": self.epoch,
                "epoch_complete": self.epoch_complete,
                "train_iter": self.train_iter,
                "epochs_run": self.epochs_run,
                "n_frozen": self.n_frozen,
                "run": self._run_id,
                "model_class": type(_uncompiled(self.model)).__name__,
            }
            if with_opt and self.opt is not None:
                state["opt"] = opt_state
                states = {key: cb.state_dict() for key, cb in _state_keys(self.cbs).items()}
                state["callbacks"] = {key: value for key, value in states.items() if value}
                assert rng_states is not None
                state["rng"] = rng_states[0]  # what a one-process resume (or older ember) reads
                if len(rng_states) > 1:
                    state["rng_ranks"] = rng_states
            return atomic_write(file, lambda tmp: torch.save(state, tmp))

        # rank 0 writes; the others wait for it, so no rank reads the file before it is complete
        return write_on_rank_zero(self.distributed, write, file)

    def load(self, path: str | Path, with_opt: bool = True, strict: bool = True
             ) -> dict[str, Any]:
        """Load a checkpoint written by :meth:`save` (never runs code from the file).

        Example:
            >>> # learn.load("stage1")
        """
        return self._load_file(self._resolve(path, ".pt"), with_opt, strict)

    def _load_file(self, file: Path, with_opt: bool, strict: bool, resuming: bool = False
                   ) -> dict[str, Any]:
        from ember.export import read_checkpoint

        state = read_checkpoint(file, self.device)
        if resuming and not {"opt", "rng"} <= set(state):
            # a weights-only file resumed with a KeyError ('rng') after loading the weights
            raise TrainingError(
                f"checkpoint {file} holds weights only (saved with with_opt=False, as SaveBest "
                f"or learn.save(..., with_opt=False) write them), so a fit cannot resume from "
                f"it: resume from the file the Checkpoint callback writes, or start a new fit "
                f"from these weights with learn.load({str(file)!r}) and no resume")
        model = _uncompiled(self.model)
        # a checkpoint an older ember wrote from a model the user compiled holds the
        # wrapper's names
        consume_prefix_in_state_dict_if_present(state["model"], "_orig_mod.")
        try:
            model.load_state_dict(state["model"], strict=strict)
        except RuntimeError as error:
            # torch's first line says only "Error(s) in loading state_dict for <class>:";
            # the names and shapes that differ are what tell which layer changed
            differences = _state_differences(model.state_dict(), state["model"], strict)
            saved = state.get("model_class")
            raise TrainingError(
                f"checkpoint {file} does not fit this model"
                f"{f' (it was saved from a {saved})' if saved else ''}: "
                f"{differences or str(error).splitlines()[0]}. Build the same architecture as "
                f"when it was saved (or load(..., strict=False) to take the weights whose "
                f"names match, when every shape fits)"
            ) from None
        self.epoch, self.train_iter = state.get("epoch", 0), state.get("train_iter", 0)
        # a checkpoint written before the count was kept: its fit's samplers were told the
        # fit's own epoch, so the next one's order is that of epoch ``epoch + 1``
        self.epochs_run = state.get("epochs_run", self.epoch + 1)
        self.freeze_to(state.get("n_frozen", 0))
        if with_opt and "opt" in state:
            try:
                opt = self.create_opt()
                load_optimizer_state(opt, state["opt"])
                self._apply_wd(opt)  # the groups loaded hold the checkpoint's rate
            except (ValueError, KeyError, RuntimeError) as error:
                raise TrainingError(
                    f"the optimiser state in checkpoint {file} does not fit this learner's "
                    f"optimiser ({str(error).splitlines()[0]}): it was saved with another "
                    f"opt_func, splitter or weight decay (wd=0 makes one group per split). "
                    f"Build the learner as it was, or load(..., with_opt=False) to take the "
                    f"weights only"
                ) from None
            names = _state_keys(self.cbs)
            for name, cb_state in state.get("callbacks", {}).items():
                if name in names:
                    names[name].load_state_dict(cb_state)
            # the full state of that run: its Checkpoint file is this learner's to go on writing
            self._run_id = state.get("run", self._run_id)
        return state

    def export(self, path: str | Path = "model.ember") -> Path:
        """Write a self-describing, pickle-free model file for :func:`ember.load`.

        Example:
            >>> # learn.export("fashion.ember"); ember.load("fashion.ember").predict(image)
        """
        from ember.export import export_learner

        return export_learner(self, self._resolve(path, ".ember"))

    def export_onnx(self, path: str | Path = "model.onnx", check: bool = True) -> Path:
        """Export the model to ONNX (dynamic batch size, and whatever else the data declares
        varying: :meth:`ember.Data.input_specs`) and check it against onnxruntime on real
        validation inputs at two batch sizes; needs ``pip install ember[onnx]``. Under
        ``torchrun`` rank 0 writes the file and every rank returns once it is complete, as
        :meth:`export` does.

        Example:
            >>> # learn.export_onnx("model.onnx")
        """
        from ember.export import export_onnx

        return export_onnx(self, self._resolve(path, ".onnx"), check=check)

    def __repr__(self) -> str:
        return (f"Learner({type(self.model).__name__}, {self.data!r}, "
                f"loss={loss_name(self.loss_func)}, device={self.device})")


def _in_order(loader: DataLoader) -> DataLoader:
    """``loader`` itself when it reads every item once in order, or in a fixed order of its
    own that :func:`_item_order` can put back (a validation sampler that sorts by length), or
    is one rank's share; otherwise (a loader that drops its last batch, or whose sampler draws
    a new order each reading: a random sampler, text's length-bucketing training sampler, a
    weighted sampler) a loader of the same items, batch size and collation that reads every
    item once in dataset order; the items of a ``SubsetRandomSampler`` are its indices, not
    the whole dataset (one dataset split into training and validation by two of them). A
    loader whose sampler yields whole batches (a language model's stream) is its plugin's to
    order, and kept."""
    from torch.utils.data import (
        DataLoader,
        DistributedSampler,
        IterableDataset,
        SequentialSampler,
        SubsetRandomSampler,
    )

    if loader.batch_size is None or isinstance(loader.dataset, IterableDataset):
        return loader  # an iterable dataset gives its items in its own order: no indices
    sampler = loader.sampler
    try:
        bound = len(loader.dataset) + 1  # type: ignore[arg-type]
    except TypeError:
        return loader
    if not loader.drop_last and (
            isinstance(sampler, (SequentialSampler, ShardSampler, DistributedSampler))
            or _fixed_order(lambda: list(itertools.islice(sampler, bound)), sampler) is not None):
        return loader
    # a subset's own indices in dataset order; None: every item, in order (shuffle=False)
    items = (sorted(int(index) for index in sampler.indices)
             if isinstance(sampler, SubsetRandomSampler) else None)
    # its workers seeded from a generator of its own: neither the global one nor the sampler's
    settings = {**loader_settings(loader), "generator": worker_seeds()}
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False,
                      sampler=items, drop_last=False, **settings)


def _fixed_order(read: Callable[[], list[Any]], sampler: Any) -> list[Any] | None:
    """What ``read`` gives when two readings of ``sampler`` agree, else None (also for a
    sampler that cannot be read without a dataset). The readings run on a forked torch
    generator, and the states of Python's and NumPy's global generators and of the sampler's
    own (``generator=``, also those of a sampler it wraps) are put back after them, so reading
    a shuffling sampler draws nothing from the training shuffle's random streams."""
    import numpy as np

    states = [(rng, rng.get_state()) for rng in _own_generators(sampler)]
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            first = read()
            return first if first == read() else None
    except TypeError:  # no length, or indices that are not numbers
        return None
    finally:
        for rng, state in states:
            rng.set_state(state)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _own_generators(sampler: Any) -> list[Any]:
    """The torch generators and NumPy ``RandomState`` objects held by ``sampler`` and by the
    samplers it wraps (its ``sampler``, ``batch_sampler``): what it may draw from other than
    the global generators."""
    import numpy as np

    found: list[Any] = []
    seen: set[int] = set()
    while sampler is not None and id(sampler) not in seen:
        seen.add(id(sampler))
        values = list(getattr(sampler, "__dict__", {}).values())
        found += [value for value in values
                  if isinstance(value, (torch.Generator, np.random.RandomState))]
        inner = getattr(sampler, "sampler", None)
        sampler = inner if inner is not None else getattr(sampler, "batch_sampler", None)
    return found


def _item_order(loader: DataLoader) -> Tensor | None:
    """The dataset index of each item in the order ``loader`` reads them, when that is a fixed
    order other than the dataset's own and covers every item once (a sampler that sorts by
    length); None for a loader already in dataset order, one whose order changes from one
    reading to the next, one that reads only some items, or one whose dataset makes its own
    batches or is iterable (its sampler never ends). A sampler is read at most one index past
    the dataset's length, so one that never ends is not read forever."""
    from torch.utils.data import IterableDataset, RandomSampler, SequentialSampler

    if isinstance(loader.dataset, IterableDataset):
        return None  # no indices: the dataset's own iterator gives the items
    if loader.batch_size is not None:
        sampler = loader.sampler
        if isinstance(sampler, (SequentialSampler, RandomSampler)):
            return None
        indices = lambda: iter(sampler)  # noqa: E731
    elif loader.batch_sampler is not None:
        indices = lambda: itertools.chain.from_iterable(loader.batch_sampler)  # noqa: E731
    else:
        return None  # the dataset yields whole batches (a language model's stream)
    try:
        size = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:  # no length
        return None
    first = _fixed_order(lambda: list(itertools.islice(indices(), size + 1)),
                         loader.sampler if loader.batch_size is not None
                         else loader.batch_sampler)
    try:
        if first is None or sorted(first) != list(range(size)):
            return None  # not fixed, or not every item once
    except TypeError:  # indices that are not numbers
        return None
    if first == list(range(size)):
        return None
    return torch.tensor(first)


class _Gather(Callback):
    order = 90

    def __init__(self) -> None:
        self.preds: list[Tensor] = []
        self.targets: list[Tensor] = []

    def after_loss(self) -> None:
        if not self.learn.training:
            self.preds.append(map_tensors(self.learn.pred, lambda x: x.detach().float().cpu()))
            if self.learn.yb is not None:  # None: a test set without labels
                self.targets.append(map_tensors(self.learn.yb, lambda x: x.detach().cpu()))


def _split_name(dl: DataLoader | str | None) -> str | None:
    """The split a loader argument of ``validate`` / ``get_preds`` names ("valid" for
    ``None``); ``None`` for a loader given as it is."""
    if dl is None:
        return "valid"
    return dl if isinstance(dl, str) else None


def _join(parts: list[Any]) -> Any:
    """:func:`_concat` for batches of tensors, or part by part for batches that are tuples,
    lists or dicts of them (the structure of the first batch)."""
    first = parts[0]
    if isinstance(first, dict):
        return {key: _join([part[key] for part in parts]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_join([part[index] for part in parts])
                           for index in range(len(first)))
    return _concat(parts)


def _n_rows(value: Any) -> int | None:
    """The number of items (first dimension) of a joined tensor or of the first tensor of a
    structure of them."""
    if isinstance(value, Tensor):
        return len(value)
    parts = value.values() if isinstance(value, dict) else value
    return next((rows for rows in map(_n_rows, parts) if rows is not None), None) \
        if isinstance(value, (dict, tuple, list)) else None


def _uncompiled(model: Callable[..., Any]) -> Callable[..., Any]:
    """The module ``torch.compile`` wrapped (``compile=``), or ``model`` itself."""
    return getattr(model, "_orig_mod", model)


#: torch's hooks on every module; while any is set, modules are called through ``__call__``
_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks",
                 "_global_backward_pre_hooks", "_global_backward_hooks")


def _direct_call(function: Callable[..., Any]) -> Callable[..., Any]:
    """What the batch loop calls for ``function`` (the loss): a module's ``forward`` itself
    while it has no hooks (its own or torch's global ones), is not compiled and no trace runs,
    which is exactly what ``Module.__call__`` would run then, minus two Python frames and eight
    hook checks per batch; ``function`` itself otherwise. Resolved when the loss is set and at
    the start of every training and validation pass, so a hook added to the loss takes effect
    from the next pass."""
    if (isinstance(function, nn.Module)
            and type(function).__call__ is nn.Module.__call__
            and getattr(function, "_compiled_call_impl", None) is None
            and not (function._forward_pre_hooks or function._forward_hooks
                     or function._backward_pre_hooks or function._backward_hooks)
            and not any(getattr(torch_module, name, True) for name in _GLOBAL_HOOKS)
            and not torch._C._get_tracing_state()):
        return function.forward
    return function


#: torch's step hooks on every optimiser; while any is set, ``step`` runs through its wrapper.
#: ``None`` if this torch keeps them elsewhere: then the wrapper always runs
_GLOBAL_STEP_HOOKS = tuple(getattr(torch_optimizer, name, None)
                           for name in ("_global_optimizer_pre_hooks",
                                        "_global_optimizer_post_hooks"))
#: the code of torch's profiling wrapper around an optimiser class's ``step``: a class whose
#: ``step`` runs this code has torch's wrapper itself there, not a function someone put over it
#: (``functools.wraps`` copies the wrapper's ``hooked`` mark onto any function that wraps it) or
#: a mock; ``None`` if this torch has no such wrapper: then ``step`` is always called as usual
_profile_hook_step = getattr(torch.optim.Optimizer, "profile_hook_step", None)
_PROFILED_STEP_CODE = (getattr(_profile_hook_step(lambda: None), "__code__", None)
                       if callable(_profile_hook_step) else None)
#: whether a profiler runs (any kind: torch.profiler, emit_nvtx, ...); if this torch has no
#: such check, the wrappers always run
_profiler_enabled: Callable[[], bool] = getattr(
    getattr(torch._C, "_autograd", None), "_profiler_enabled", lambda: True)


def _unannotated_update(opt: torch.optim.Optimizer) -> bool:
    """Step ``opt`` and set its gradients to ``None`` without torch's profiler wrappers around
    ``step`` and ``zero_grad``, and return True, when the wrappers would add nothing but their
    annotation: the class's ``step`` is torch's wrapper itself (not a function wrapped over it,
    nor a mock), no profiler runs, no step hook is set (the optimiser's own or torch's global
    ones), and neither method is replaced on the instance (an LR scheduler wraps ``step``
    there) or ``zero_grad`` on the class. Each wrapper opens a ``record_function`` even with no
    profiler running, about 12 µs per call on a CPU: a few per cent of a small model's batch.
    Returns False, having done nothing, otherwise; the caller then calls both as usual.
    Checked on every batch (well under a microsecond), so a profiler or a hook that a callback
    starts mid-fit takes effect from the next batch."""
    cls = type(opt)
    step = getattr(cls, "step", None)  # None: a duck-typed optimiser keeps step on the instance
    if (_PROFILED_STEP_CODE is not None  # torch's profiling wrapper itself, set on the class
            and getattr(step, "__code__", None) is _PROFILED_STEP_CODE
            and cls.zero_grad is torch.optim.Optimizer.zero_grad
            and "step" not in opt.__dict__ and "zero_grad" not in opt.__dict__
            and not (getattr(opt, "_optimizer_step_pre_hooks", True)
                     or getattr(opt, "_optimizer_step_post_hooks", True))
            and all(hooks is not None and not hooks for hooks in _GLOBAL_STEP_HOOKS)
            and not _profiler_enabled()):
        step.__wrapped__(opt)
        for group in opt.param_groups:
            for param in group["params"]:
                param.grad = None
        return True
    return False


def _concat(parts: list[Tensor]) -> Tensor:
    """Join batches along the first dimension, padding every other dimension to the largest
    batch's: NaN for floating point, -100 (the ignored target) for integers."""
    shape = [max(sizes) for sizes in zip(*(part.shape[1:] for part in parts))]
    if all(list(part.shape[1:]) == shape for part in parts):
        return torch.cat(parts)
    fill = math.nan if parts[0].is_floating_point() else -100
    joined = parts[0].new_full((sum(len(part) for part in parts), *shape), fill)
    start = 0
    for part in parts:
        region = (slice(start, start + len(part)), *(slice(0, size) for size in part.shape[1:]))
        joined[region] = part
        start += len(part)
    return joined


def _callback_of(cb: Any) -> Callback:
    """A callback instance for what ``cbs`` holds: an instance, a class, or a registered name."""
    if isinstance(cb, str):
        from ember.plugins import get_registry

        classes = get_registry().callbacks
        if cb not in classes:
            raise TrainingError(f"no callback named {cb!r}; registered: {sorted(classes)} (see "
                                f"`ember plugins -v`), or pass a Callback instance")
        cb = classes[cb]
    if isinstance(cb, type) and issubclass(cb, Callback):
        return cb()
    if not isinstance(cb, Callback):  # it was "'object' object has no attribute 'learn'"
        what = getattr(cb, "__name__", None) or repr(cb)
        raise TrainingError(
            f"callback {what} ({type(cb).__name__}) is not an ember.Callback: give an instance "
            f"of a Callback subclass (methods named after events, such as after_epoch), its "
            f"class, or a registered name such as 'GradientClip'")
    return cb


def _split_replaced(existing: Iterable[Callback], given: Sequence[Callback],
                    keep: Sequence[Callback] = ()) -> tuple[list[Callback], list[Callback]]:
    """``existing`` split into the callbacks that stay and those that ``given`` replaces: a
    callback given replaces those of its class (the user's own, configured their way), but
    never one of ``keep`` (compared by identity). The one rule for the learner's defaults,
    a plugin's defaults and the callbacks attached when a fit gets its own ``cbs=``.

    Example:
        >>> from ember.callbacks.training import GradientClip
        >>> old, new = GradientClip(1.0), GradientClip(5.0)
        >>> _split_replaced([old], [new]) == ([], [old])
        True
    """
    kinds = {type(cb) for cb in given}
    kept: list[Callback] = []
    replaced: list[Callback] = []
    for cb in existing:
        taken = type(cb) in kinds and all(cb is not own for own in keep)
        (replaced if taken else kept).append(cb)
    return kept, replaced


def _state_keys(cbs: Iterable[Callback]) -> dict[str, Callback]:
    """The callbacks ``cbs`` under the keys a checkpoint keeps their states by: each one's
    ``name``, and for a second callback of one name (two SaveBest on two metrics, a Recorder
    beside the learner's) ``name-2``, ``name-3``… in their order (the state of one replaced
    the other's, and a resumed fit gave it to the last alone).

    Example:
        >>> from ember.callbacks.tracking import SaveBest
        >>> list(_state_keys([SaveBest("accuracy"), SaveBest("valid_loss")]))
        ['save_best', 'save_best-2']
    """
    keys: dict[str, Callback] = {}
    seen: dict[str, int] = {}
    for cb in cbs:
        seen[cb.name] = count = seen.get(cb.name, 0) + 1
        keys[cb.name if count == 1 else f"{cb.name}-{count}"] = cb
    return keys


def _resolve_metrics(metrics: Any, data: Data) -> list[Metric]:
    if metrics is None:
        return default_metrics(data.target_kind, data.n_out)
    resolved: list[Metric] = []
    for metric in _as_list(metrics):
        if isinstance(metric, str):
            from ember.plugins import get_registry

            factories = get_registry().metrics
            if metric not in factories:
                raise TrainingError(f"no metric named {metric!r}; known: {sorted(factories)}")
            metric = factories[metric]()
        elif isinstance(metric, type):
            metric = metric()
        if not isinstance(metric, Metric):
            what = (f"metric {getattr(metric, '__name__', type(metric).__name__)} is a function"
                    if callable(metric) else f"metric {metric!r} is a {type(metric).__name__}")
            raise TrainingError(
                f"{what}, not an ember.Metric: subclass ember.Metric with a `name`, "
                f"update(preds, targets) adding up each batch and compute() returning one "
                f"number over the whole validation set (a metric averaged over batches would "
                f"be wrong for F1, AUC…), or give a registered name such as 'accuracy'")
        missing = [method for method in ("update", "compute")
                   if getattr(type(metric), method) is getattr(Metric, method)]
        if missing:
            raise TrainingError(
                f"metric {type(metric).__name__} does not define {' or '.join(missing)}: an "
                f"ember.Metric gets reset(), then update(preds, targets) for each batch (the "
                f"model's raw outputs and the batch's targets), then compute() for the value "
                f"(see ember.Metric's docstring)")
        resolved.append(metric)
    _check_metric_names(resolved)
    return resolved


def _check_event_names(cb: Callback) -> None:
    """Warn of a callback method named like an event that is none (``before_loss``, a
    misspelt ``after_epcoh``): no event would ever call it."""
    odd = sorted(name for name in dir(type(cb)) if name.startswith(("before_", "after_"))
                 and name not in EVENTS and callable(getattr(type(cb), name, None)))
    if odd:
        warn(f"{type(cb).__name__} defines {', '.join(odd)}, which no event calls, so it "
             f"never runs. The events are {', '.join(EVENTS)}; the moment before the forward "
             f"pass is before_batch, before the loss after_pred")


#: the recorder's own columns, which no metric may be named after
_RECORDER_COLUMNS = ("epoch", "train_loss", "skipped", "valid_loss", "time")


def _check_metric_names(metrics: list[Metric]) -> None:
    """Each metric is one column of ``learn.recorder.values``, keyed by its ``name``: two
    metrics of one name would share a column (one's values lost), and a metric named after a
    column of the recorder's own would replace it (``valid_loss``, which early stopping
    watches) or break the progress table (``epoch``)."""
    seen: set[str] = set()
    for metric in metrics:
        if metric.name in _RECORDER_COLUMNS:
            raise TrainingError(
                f"metric {metric!r} is named {metric.name!r}, a column the recorder writes "
                f"itself ({', '.join(_RECORDER_COLUMNS)}); give it another name (set its "
                f"`name` attribute)")
        if metric.name in seen:
            same = [m for m in metrics if m.name == metric.name]
            raise TrainingError(
                f"two metrics are named {metric.name!r} ({same}); each metric is one column "
                f"of learn.recorder.values, so give one of them another name (set its "
                f"`name` attribute)")
        seen.add(metric.name)


def _state_differences(model_state: dict[str, Any], saved: dict[str, Any], strict: bool,
                       shown: int = 5, source: str = "checkpoint") -> str:
    """How a checkpoint's weights differ from the model's: the shapes that differ, and with
    ``strict`` the names found on one side only (``shown`` of each, then a count). ``source``
    names where ``saved`` comes from (an exported file, for :func:`ember.load`)."""
    def listed(names: list[str]) -> str:
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return ", ".join(names[:shown]) + more

    parts = []
    resized = [f"{name}: {tuple(saved[name].shape)} in the {source}, "
               f"{tuple(value.shape)} in the model" for name, value in model_state.items()
               if name in saved and hasattr(saved[name], "shape")
               and tuple(saved[name].shape) != tuple(value.shape)]
    if resized:
        parts.append(f"shapes differ for {listed(resized)}")
    if strict:
        missing = [name for name in model_state if name not in saved]
        unexpected = [name for name in saved if name not in model_state]
        if missing:
            parts.append(f"missing from the {source}: {listed(missing)}")
        if unexpected:
            parts.append(f"not in the model: {listed(unexpected)}")
    return "; ".join(parts)


def _epoch_count(value: Any, name: str) -> int:
    """``value`` as a number of epochs: a whole number, 0 or more (0 trains nothing)."""
    if not is_whole(value):
        raise TrainingError(
            f"{name}={value!r} is not a whole number of epochs; give an int, 0 or more (to "
            f"train on part of an epoch, cancel with a callback or use fit_auto(minutes=...))")
    return int(value)


def _learning_rate(value: Any, name: str) -> float:
    """``value`` as one learning rate: a finite number, 0 or more."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise TrainingError(
            f"the {name} must be a number, got {value!r}; give a float, slice(low, high) or "
            f"one float per parameter group") from None
    if not math.isfinite(rate) or rate < 0:
        raise TrainingError(
            f"the {name} is {rate}: a learning rate must be finite and not negative (a "
            f"negative one climbs the loss); learn.lr_find() suggests one")
    return rate


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, Callback, Metric, type)):
        return [value]
    return list(value)


def _get_rng_state(model: nn.Module | None = None, device: torch.device | None = None,
                   loaders: Sequence[Any] = ()) -> dict[str, Any]:
    """The states of the global random generators (torch's, CUDA's once CUDA is initialised,
    MPS's when ``device`` is MPS, NumPy's, Python's), of those ``model``'s modules hold
    (:func:`_model_generators`) and of the loaders' own (``loaders``, from
    :meth:`Learner._loader_generators`), in a form a weights-only checkpoint holds."""
    import numpy as np

    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.asarray(numpy_state[1], dtype=np.int64)),
        "numpy_pos": [int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
    }
    if torch.cuda.is_initialized():  # reading them would start CUDA for a run without it
        state["cuda"] = torch.cuda.get_rng_state_all()
    # MPS only when the learner trains on it (untested here: no MPS on the CI machines)
    if device is not None and device.type == "mps" and torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    if model is not None:
        state["model"] = {name: _generator_state(rng)
                          for name, rng in _model_generators(model).items()}
    if loaders:
        state["loaders"] = [_generator_state(rng) for rng in loaders]
    return state


def _own_rng_state(checkpoint: dict[str, Any], distributed: Distributed | None
                   ) -> dict[str, Any] | None:
    """The RNG states this process resumes ``checkpoint`` from: its rank's own when the
    checkpoint holds every rank's (``rng_ranks``) from a run of as many ranks, else the one
    state (rank 0's, or a single process's) on every rank, see :meth:`Learner.save`."""
    ranks = checkpoint.get("rng_ranks")
    if distributed is not None and ranks and len(ranks) == distributed.world_size:
        return ranks[distributed.rank]
    return checkpoint["rng"]


def _set_rng_state(state: dict[str, Any] | None, model: nn.Module | None = None,
                   loaders: Sequence[Any] = ()) -> None:
    """Put back what :func:`_get_rng_state` read; a generator saved under a name that
    ``model`` no longer holds is skipped, and the loaders' own are put back in order when
    ``loaders`` holds as many (else a warning says they start afresh)."""
    import numpy as np

    if not state:
        return
    torch.set_rng_state(state["torch"].cpu())
    pos, has_gauss, gauss = state["numpy_pos"]
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), pos, has_gauss,
                         gauss))
    internal, version, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"].cpu())
    if model is not None and state.get("model"):
        held = _model_generators(model)
        for name, saved in state["model"].items():
            if name in held:
                _set_generator_state(held[name], saved)
    saved_loaders = state.get("loaders", [])
    if len(saved_loaders) == len(loaders):
        for rng, saved in zip(loaders, saved_loaders):
            _set_generator_state(rng, saved)
    elif saved_loaders or loaders:
        warn(f"the saved random state holds {len(saved_loaders)} generator(s) of the data "
             f"loaders' own (a DataLoader's or sampler's generator=), and these loaders hold "
             f"{len(loaders)}: their shuffles start from their own seeds, so the order of the "
             f"batches differs from the interrupted run's")


def _model_generators(model: nn.Module) -> dict[str, Any]:
    """The random generators ``model``'s modules hold as attributes (a ``torch.Generator``, a
    NumPy ``Generator`` or ``RandomState``), by ``<module path>.<attribute>``, each once:
    what the model may draw from besides the global generators (a seq2seq model's
    teacher-forcing coins). A wrapper (DistributedDataParallel, ``torch.compile``) holds the
    module it wraps as a submodule, so its generators are found too."""
    import numpy as np

    kinds = (torch.Generator, np.random.Generator, np.random.RandomState)
    found: dict[str, Any] = {}
    for path, module in model.named_modules():
        for attribute, value in vars(module).items():
            if isinstance(value, kinds) and all(value is not rng for rng in found.values()):
                found[f"{path}.{attribute}" if path else attribute] = value
    return found


def _generator_state(rng: Any) -> Any:
    """The state of one of :func:`_model_generators`' generators: a byte tensor for torch's,
    NumPy's state dict with its arrays as lists of ints (a weights-only checkpoint holds no
    NumPy arrays) for NumPy's."""
    import numpy as np

    if isinstance(rng, torch.Generator):
        return rng.get_state()
    state = (rng.bit_generator.state if isinstance(rng, np.random.Generator)
             else rng.get_state(legacy=False))

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value.tolist() if isinstance(value, np.ndarray) else value

    return plain(state)


def _set_generator_state(rng: Any, state: Any) -> None:
    """Put back a state :func:`_generator_state` read (NumPy takes its lists as arrays)."""
    import numpy as np

    if isinstance(rng, torch.Generator):
        rng.set_state(state.cpu())
    elif isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)


def _not_data_error(data: Any, caller: str) -> DataError:
    """The error for a first argument of ``caller`` that is not an :class:`ember.Data`: what
    was given, and which constructor makes a ``Data`` of it."""
    from torch.utils.data import DataLoader, Dataset

    module = type(data).__module__
    given = "None" if data is None else (
        type(data).__qualname__ if module == "builtins" else f"{module}.{type(data).__qualname__}")
    if isinstance(getattr(data, "data", None), Data):  # a Learner, a loaded Predictor
        fix = (f"pass its data: {caller}(learn.data, ...), or for an exported model "
               f"ember.Learner(predictor.data, predictor.model) to train it further")
    elif isinstance(data, DataLoader):
        fix = ("wrap the training and validation loaders: "
               "ember.Data.from_loaders(train_dl, valid_dl)")
    elif type(data).__name__ == "DataFrame":
        fix = ("for a table use the tabular plugin: ember_tabular.TabularData.from_df(df, "
               "target=\"column\") (pip install ember-tabular)")
    elif isinstance(data, Dataset):
        fix = ("wrap the training and validation datasets in loaders: ember.Data.from_loaders("
               "DataLoader(train_ds, batch_size=64, shuffle=True), "
               "DataLoader(valid_ds, batch_size=64))")
    elif isinstance(data, Tensor) or type(data).__name__ == "ndarray":
        fix = ("put inputs and targets in a dataset and loaders: ember.Data.from_loaders("
               "DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True), "
               "DataLoader(TensorDataset(x_valid, y_valid), batch_size=64))")
    else:
        fix = ("build one with ember.Data.from_loaders(train_dl, valid_dl), or a domain "
               "plugin's constructor (ImageData.from_folder, TextData.from_df, "
               "TabularData.from_df; see `ember plugins`)")
    return DataError(f"{caller} needs an ember.Data as its first argument (data), got "
                     f"{given}; {fix}")


def _why_no_defaults(data: Data) -> str:
    """Why no plugin answered ``ember_defaults`` for ``data``, naming the plugin to fix: the
    one that registers the data's kind (it raised in the hook, or gave no defaults), else one
    that raised in the hook. Another plugin that raised is named too, as a second problem."""
    from ember.plugins import get_registry, plugin_infos

    what = f"{type(data).__name__} ({data.kind} data)"
    prefix = "ember_defaults raised "
    raised = {info.name: info.reason.removeprefix(prefix) for info in plugin_infos()
              if info.status == "broken" and info.reason.startswith(prefix)}
    owner = get_registry().owner.get(("ember_data_kinds", data.kind))
    if owner in raised:
        culprit = owner
    elif owner is not None and owner != "builtin":
        others = "".join(f"; plugin {name!r} also raised in ember_defaults ({reason})"
                         for name, reason in raised.items())
        return (f"plugin {owner!r} registers {data.kind} data but gave no defaults for {what}; "
                f"implement ember_defaults in that plugin to return ember.Defaults for it (see "
                f"docs/plugins.md), or pass model= yourself{others}")
    elif raised:
        culprit = next(iter(raised))
    else:
        why = ""
        if type(data) is Data and data.train_dl is not None:  # core's own: the mlp
            shapes = ", ".join(str(tuple(x.shape)) if isinstance(x, Tensor)
                               else type(x).__name__ for x in data.one_batch()[:-1])
            why = (f" (its batches hold inputs of shape {shapes}; core's default, the mlp, "
                   f"takes one float input of shape (batch, features))")
        if type(data) is not Data and data.kind not in get_registry().data_kinds:
            # a plugin's class whose plugin is not loaded: in a fresh process (a notebook, a
            # plugin in development) one that is not installed must be registered again
            why = (f" (no loaded plugin registers its kind {data.kind!r}; a plugin that is not "
                   f"installed loads with ember.register_plugin(module, name=...), once per "
                   f"process)")
            # the installed plugin of the data's package, not loaded: that is the reason (it
            # was "install the plugin" for a vision plugin installed but blocked or broken)
            package = type(data).__module__.split(".")[0]
            for info in plugin_infos():
                if info.status != "ok" and info.module.split(".")[0] == package:
                    return (f"plugin {info.name!r} ({info.package}), which {what} comes from, "
                            f"is {info.status} ({info.reason}), so no plugin gives defaults for "
                            f"it: load that plugin (see `ember plugins`), or pass model= "
                            f"yourself")
            if env_flag("EMBER_DISABLE_PLUGIN_AUTOLOAD"):
                why += " (EMBER_DISABLE_PLUGIN_AUTOLOAD is set: no installed plugin loads)"
        return (f"no installed plugin has defaults for {what}{why}; pass model= yourself, or "
                f"install the plugin for this domain (see `ember plugins`)")
    return (f"plugin {culprit!r} raised in ember_defaults ({raised[culprit]}) and is listed "
            f"as broken, so nothing gave defaults for {what}; fix the hook, or pass model= "
            f"yourself")


def learner(data: Data, default_cbs: bool = True, **overrides: Any) -> Learner:
    """Build a :class:`Learner` with the defaults the installed plugins register for ``data``.

    Any :class:`Learner` argument (``model``, ``loss_func``, ``metrics``, ``lr``, …) overrides
    the default (``None`` for ``model``, ``loss_func``, ``metrics``, ``cbs`` or ``splitter``
    keeps it); ``cbs`` are added to the plugin's default callbacks, and one of the same class
    as a default replaces it (``cbs=[GradientClip(5.0)]`` clips at 5, not also at the
    default's 1; pass ``default_cbs=False`` to drop all the defaults). With ``model=`` the
    plugin's candidate models are left out (``learn.candidates`` is empty), so
    :meth:`Learner.fit_auto` trains the given model instead of racing others in its place.
    ``data`` that is not an :class:`ember.Data` (``None``, a ``DataLoader``, a tensor, a
    DataFrame) is an :class:`ember.DataError` naming the constructor that makes one of it.

    Example:
        >>> # learn = ember.learner(ImageData.from_folder("pets")); learn.fine_tune(3)
    """
    from ember.plugins import call_first

    if not isinstance(data, Data):  # None had no .kind deep inside the plugin hooks
        raise _not_data_error(data, "ember.learner")
    # None is "the default" here as it is to Learner: metrics=None gave the core's defaults for
    # the target kind in place of the plugin's (a seq2seq model lost its BLEU, a segmentation
    # its Dice), and model=None was refused as no module
    for name in ("model", "loss_func", "metrics", "cbs", "splitter"):
        if name in overrides and overrides[name] is None:
            del overrides[name]
    defaults = call_first("ember_defaults", data=data)
    if defaults is None and "model" in overrides:
        return Learner(data, **overrides)
    if defaults is None:
        raise TrainingError(_why_no_defaults(data))
    own_model = "model" in overrides
    if own_model:  # the user's model, with the plugin's other defaults
        model = overrides.pop("model")
    elif callable(defaults.model) and not isinstance(defaults.model, nn.Module):
        model = defaults.model()
    else:
        model = defaults.model
    arguments: dict[str, Any] = {"model": model, "loss_func": defaults.loss_func,
                                 "metrics": defaults.metrics or None, "cbs": defaults.cbs,
                                 "splitter": defaults.splitter}
    if defaults.lr is not None:
        arguments["lr"] = defaults.lr
    extra_cbs = [_callback_of(cb) for cb in _as_list(overrides.pop("cbs", None))]
    arguments.update(overrides)
    # a default the user gave again, configured their way, is theirs: two schedules of one
    # kind would both run, and learn.callback(name) would find the default's. A default named
    # (cbs=["ResetState"]) or given as a class is compared as the instance it becomes
    kept = (_split_replaced(map(_callback_of, _as_list(defaults.cbs)), extra_cbs)[0]
            if default_cbs else [])
    arguments["cbs"] = kept + extra_cbs
    learn = Learner(data, **arguments)
    # the plugin's candidates stand in for its default model only: fit_auto's race builds
    # them anew, so racing them would throw the user's own model away
    learn.candidates = {} if own_model else dict(defaults.candidates)
    return learn


def _callable_name(function: Any) -> str:
    """A callable's name for a message: its ``__name__``, or the wrapped function's for a
    ``functools.partial``, or its repr.

    Example:
        >>> _callable_name(torch.optim.SGD)
        'SGD'
    """
    inner = getattr(function, "func", function)
    return getattr(inner, "__name__", repr(function))
