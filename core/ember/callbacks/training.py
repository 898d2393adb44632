"""Callbacks that change how a step is taken: mixed precision, gradient accumulation,
gradient clipping, the NaN/inf guard, and BatchNorm statistics recomputed from the trained
weights.

Example:
    >>> GradientClip(1.0).max_norm
    1.0
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ember.callbacks.base import Callback, Order, _positive
from ember.distributed import load_optimizer_state, optimizer_state
from ember.errors import CancelFitException, CancelStepException, EmberWarning
from ember.utils import cpu_copy, is_whole, warn

if TYPE_CHECKING:
    from ember.learner import Learner

__all__ = ["DivergenceWarning", "GradientAccumulation", "GradientClip", "MixedPrecision",
           "NanGuard", "PreciseBatchNorm", "loss_scaled"]


class DivergenceWarning(EmberWarning):
    """Training stopped because the loss became NaN or infinite."""


class MixedPrecision(Callback):
    """Autocast the forward pass and loss to ``bfloat16`` or ``float16``; for ``float16`` scale
    the loss with a ``GradScaler`` so small gradients survive. Chosen by
    ``Learner(precision="bf16" | "fp16")``. Meant for CUDA; it also runs on CPU.

    Example:
        >>> MixedPrecision("bf16").dtype
        torch.bfloat16
    """

    order = Order.PRECISION

    def __init__(self, precision: str = "bf16") -> None:
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
        if precision not in dtypes:
            # 'bfloat16', torch.bfloat16, '16' or 'fp32' were refused without saying what
            # each choice means, nor that float32 is precision=None
            raise ValueError(
                f"precision={precision!r} is not one of Ember's: give 'bf16' (bfloat16 "
                f"autocast), 'fp16' (float16 autocast with loss scaling) or None (float32, "
                f"no mixed precision)")
        self.precision, self.dtype = precision, dtypes[precision]
        self.autocast: torch.autocast | None = None  # entered in before_batch, left after the loss
        self._unscaled = False  # the scaler unscaled this step's gradients (fp16)
        # optimiser steps of this epoch the loss scaler skipped (fp16): counted, and told on
        # the device (see skipped)
        self._skipped = 0
        self._skip_flags: list[torch.Tensor] = []
        self._loaded_scaler: dict[str, Any] | None = None  # from a checkpoint, for the next fit
        # the learner's step_fn when this fit's before_fit ran, put back by after_fit; None
        # when before_fit did not run (a callback ordered before this one cancelled the fit)
        self._saved_step: tuple[Any] | None = None

    def before_fit(self) -> None:
        self.device_type = self.learn.device.type
        enabled = self.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=enabled)
        self._unscaled = False
        if self._loaded_scaler:  # a resumed fit goes on with the loss scale it had reached
            self.scaler.load_state_dict(self._loaded_scaler)
        self._loaded_scaler = None
        self._saved_step = (self.learn.step_fn,)

    def before_validate(self) -> None:
        # validate() and get_preds() also run outside any fit (before the first one)
        self.device_type = self.learn.device.type

    def before_batch(self) -> None:
        self.autocast = torch.autocast(self.device_type, dtype=self.dtype)
        self.autocast.__enter__()

    def after_loss(self) -> None:
        self.autocast.__exit__(None, None, None)  # type: ignore[union-attr]
        self.autocast = None

    def _leave_autocast(self) -> None:
        if self.autocast is not None:
            self.autocast.__exit__(None, None, None)
            self.autocast = None

    def _after_cancel(self) -> None:
        # A cancel raised inside the forward pass, or an error or interrupt there (the Learner
        # fires after_cancel_fit for those), arrives with autocast still on. Left on, it would
        # run everything after it in low precision, and its weight cache, never cleared, would
        # feed the next fit stale weights. One raised in before_step after the unscale (a
        # batch, training pass or epoch cancelled there) leaves unscaled gradients behind.
        self._leave_autocast()
        self._rescale_kept_gradients()

    after_cancel_batch = after_cancel_train = after_cancel_validate = _after_cancel
    after_cancel_epoch = _after_cancel

    def after_cancel_fit(self) -> None:
        # an error or Ctrl-C ends the fit without after_fit: the step goes back here too (left
        # as this callback's, later fits stepped through it, even once it was removed)
        self._after_cancel()
        self.after_fit()

    def before_backward(self) -> None:
        if self.scaler.is_enabled():
            self.learn.loss_grad = self.scaler.scale(self.learn.loss_grad)

    def before_step(self) -> None:
        if self.scaler.is_enabled():
            self.learn.step_fn = self._scaled_step
            # no gradient at all (every backward since the last step was cancelled): nothing
            # to unscale, and the scaler, with no inf check to go by, must not step or update
            if any(parameter.grad is not None for group in self.learn.opt.param_groups
                   for parameter in group["params"]):
                self.scaler.unscale_(self.learn.opt)  # so clipping sees true gradients
                self._unscaled = True

    def before_epoch(self) -> None:
        self._skipped, self._skip_flags = 0, []

    @property
    def skipped(self) -> int:
        """The optimiser steps of this epoch (so far) that the loss scaler skipped for an
        overflow, in the loss or in the gradients alone."""
        if self._skip_flags:  # one host read for all the steps told by the loss scale
            self._skipped += int(torch.stack(self._skip_flags).sum())
            self._skip_flags = []
        return self._skipped

    def _scale_tensor(self) -> torch.Tensor:
        """The scaler's loss scale as a tensor on its device: no host read where torch gives
        it so (a private accessor, so otherwise read as a float)."""
        read = getattr(self.scaler, "_get_scale_async", None)
        scale = read() if read is not None else None
        return scale.clone() if scale is not None else torch.tensor(self.scaler.get_scale())

    def _scaled_step(self) -> None:
        opt = self.learn.opt
        if not self._unscaled:  # no gradients: the optimiser steps as it does in float32
            opt.step()
            return
        # The scaler skips the step when the gradients overflowed, whether the loss did or
        # not. For most optimisers it reads its inf check to the host for that, and a
        # post-step hook, called only when the optimiser steps, says whether it did. An
        # optimiser without hooks (not a torch one), or one that skips by itself (a fused
        # one: the scaler hands it the inf check on the device and calls its step, overflow
        # or not, with no host read), is told by the loss scale, which the scaler lowers on
        # a skip and only then: compared on the device, read once when the count is asked.
        taken: list[bool] = []
        register = (None if getattr(opt, "_step_supports_amp_scaling", False)
                    else getattr(opt, "register_step_post_hook", None))
        handle = register(lambda *_: taken.append(True)) if register is not None else None
        before = self._scale_tensor() if handle is None else None
        try:
            self.scaler.step(opt)
        finally:
            if handle is not None:
                handle.remove()
        self.scaler.update()
        self._unscaled = False
        if before is None:
            self._skipped += not taken
        else:
            self._skip_flags.append(self._scale_tensor() < before)

    def after_cancel_step(self) -> None:
        self._rescale_kept_gradients()

    def _rescale_kept_gradients(self) -> None:
        # the step was cancelled after the unscale (a later callback raised in before_step):
        # the gradients stay for the next step (as any cancelled step's do), so they go back
        # to the scaled units the next backward adds to, and the scaler forgets the unscale,
        # keeping its scale (without this, the next step's unscale_ failed: "already been
        # called ... since the last update()"). An overflow in them is found, and the step
        # skipped, at the next step.
        if not self._unscaled:
            return
        self._unscaled = False
        scale = self.scaler.get_scale()
        self.scaler.update(scale)
        for group in self.learn.opt.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter.grad.mul_(scale)

    def after_fit(self) -> None:
        if self._saved_step is not None:
            self.learn.step_fn, = self._saved_step
            self._saved_step = None

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if hasattr(self, "scaler") else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._loaded_scaler = state.get("scaler")


def _loss_scaling(learn: Learner) -> MixedPrecision | None:
    """The callback that scales this fit's loss (float16 mixed precision), or None."""
    return next((cb for cb in learn.cbs if isinstance(cb, MixedPrecision)
                 and hasattr(cb, "scaler") and cb.scaler.is_enabled()), None)


def skipped_steps(learn: Learner) -> int | None:
    """The optimiser steps of the current (or last) epoch that the float16 loss scaler skipped
    for an overflow, in the loss or only in the gradients; ``None`` when the fit scales no
    loss.

    Example:
        >>> # learn.fit(1)  # precision="fp16"
        >>> # skipped_steps(learn)  -> 0
    """
    scaling = _loss_scaling(learn)
    return scaling.skipped if scaling is not None else None


def loss_scaled(learn: Learner) -> bool:
    """Whether this fit scales its loss (float16 mixed precision): then a batch whose loss is
    not finite is an overflow whose step the loss scaler skips, and training goes on.

    Example:
        >>> # loss_scaled(ember.Learner(data, model, precision="fp16"))  # True during a fit
    """
    return _loss_scaling(learn) is not None


class GradientAccumulation(Callback):
    """Accumulate gradients over ``n_steps`` batches (a whole number, 1 or more) before each
    optimiser step (an effective batch ``n_steps`` times larger at the same memory).

    Groups start afresh every epoch; when the number of batches is not a multiple of
    ``n_steps``, the last group of the epoch is shorter and steps on its own, with its loss
    averaged over its own batches (as one larger batch of that size would be). A group that a
    cancel of its epoch or training pass cuts short takes no step: its gradients are dropped
    when the next epoch's training begins.

    Under ``torchrun`` the batches that only accumulate run in DistributedDataParallel's
    ``no_sync``: the ranks' gradients are reduced once per group, by its last batch (the
    sum of the group's gradients, the same as reducing each batch's), not after every batch.
    This holds with ``compile=`` too (with torch.compile's default handling of DDP, which
    runs DDP's own bookkeeping eagerly around the compiled module).

    Example:
        >>> GradientAccumulation(4).n_steps
        4
    """

    order = Order.ACCUMULATE

    def __init__(self, n_steps: int = 2) -> None:
        if not is_whole(n_steps, 1):
            # 2.5 stepped every 5 batches with the loss divided by 2.5, without a word
            raise ValueError(
                f"GradientAccumulation(n_steps={n_steps!r}): give a whole number of batches "
                f"to accumulate before each step, 1 or more (1 steps after every batch)")
        self.n_steps = n_steps
        # under torchrun: the DDP model whose reduction the group's first batches skip
        # (None otherwise, and then no batch does any work for it), the training loader's
        # length, and the open ``no_sync`` context while a batch that only accumulates runs
        self._ddp: DistributedDataParallel | None = None
        self._n_batches = 0
        self._unsynced: AbstractContextManager[None] | None = None

    def before_train(self) -> None:
        from ember.learner import _uncompiled  # (ember.learner imports this module)

        # a group cut short by a cancel of the last epoch or training pass (a short-epoch
        # callback) never stepped: its gradients joined this epoch's first group, which then
        # summed more batches than n_steps, each divided by n_steps
        self.learn.model.zero_grad(set_to_none=True)

        # with compile=, the DDP model under torch.compile's wrapper: dynamo breaks its graph
        # at DDP's calls into the reducer, which run eagerly and read no_sync's flag on every
        # call (no recompiling), and the reduction hooks fire in the eager autograd engine
        model = _uncompiled(self.learn.forward_model)
        self._ddp = (model if isinstance(model, DistributedDataParallel) and self.n_steps > 1
                     else None)
        if self._ddp is not None:
            self._n_batches = len(self.learn.data.train_dl or [])
            self._sync_before(0)

    def _sync_before(self, index: int) -> None:
        # DDP reads whether to reduce in the forward pass (and, with compiled autograd, in
        # the backward), so the state is set between one batch's step and the next forward
        assert self._ddp is not None
        last = (index + 1) % self.n_steps == 0 or index + 1 >= self._n_batches
        if last and self._unsynced is not None:
            self._release()
        elif not last and self._unsynced is None:
            self._unsynced = self._ddp.no_sync()
            self._unsynced.__enter__()

    def _release(self) -> None:
        if self._unsynced is not None:
            self._unsynced, unsynced = None, self._unsynced
            unsynced.__exit__(None, None, None)

    def after_cancel_batch(self) -> None:  # a skipped batch: the next one decides afresh
        if self._ddp is not None and self.learn.training:
            self._sync_before(self.learn.iter + 1)

    def after_cancel_backward(self) -> None:
        self.after_cancel_batch()

    def after_cancel_step(self) -> None:
        # also a step cancelled by a callback ordered before this one, whose before_step then
        # never ran: the group's last batch would have run in no_sync, and each rank stepped
        # on its own gradients
        self.after_cancel_batch()

    def after_train(self) -> None:  # validation, and any later fit, reduce as DDP does
        self._release()
        self._ddp = None

    def after_cancel_fit(self) -> None:  # an error or Ctrl-C in the middle of a group
        self.after_train()

    def before_backward(self) -> None:
        # the size of this batch's group: n_steps, or fewer for the last group of the epoch
        start = self.learn.iter - self.learn.iter % self.n_steps
        size = min(self.n_steps, self.learn.n_iter - start)
        self.learn.loss_grad = self.learn.loss_grad / size

    def before_step(self) -> None:
        position = self.learn.iter + 1
        if self._ddp is not None:
            self._sync_before(position)
        if position % self.n_steps and position != self.learn.n_iter:
            raise CancelStepException


class GradientClip(Callback):
    """Clip the global gradient norm to ``max_norm`` (a number above 0) before every optimiser
    step.

    Example:
        >>> GradientClip(0.5).order > MixedPrecision().order
        True
    """

    order = Order.CLIP

    def __init__(self, max_norm: float = 1.0) -> None:
        if not _positive(max_norm):
            # torch scales the gradients by max_norm / norm: 0 zeroes every step, and a
            # negative norm turns the gradient round, so the fit climbs the loss
            raise ValueError(
                f"GradientClip(max_norm={max_norm!r}): the largest gradient norm must be a "
                f"number above 0 (1.0 is a common choice; a smaller one clips harder)")
        self.max_norm = max_norm

    def before_step(self) -> None:
        torch.nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.max_norm)


class NanGuard(Callback):
    """Stop training when the loss turns NaN or infinite, restore the weights from the start
    of the epoch (the last good ones), and say why. On by default.

    The guard keeps each training batch's loss (a reference, no copy) and checks them together
    every ``interval`` batches and at the end of each training pass: one read instead of one
    per batch, which on an accelerator means no batch waits for the device. A NaN is still
    caught in the epoch it appears, so the restored weights are the same as with a check per
    batch; at most ``interval - 1`` batches run on after it. ``interval=1`` checks every batch.
    The good weights are kept on the CPU, so the guard costs no accelerator memory.

    With ``float16`` mixed precision a non-finite loss is an overflow the loss scaler
    handles: it skips that step (the weights stay as they were) and lowers its scale, and
    training goes on. The guard stops only when the loss stays non-finite for more than
    ``max_skipped`` batches in a row, which a lower scale cannot cure (16 halvings take the
    starting scale, 65536, to 1); the epoch's ``train_loss`` then averages the batches whose
    steps were taken. Without loss scaling (float32, ``bfloat16``) the first non-finite loss
    stops the fit.

    Example:
        >>> NanGuard().order, NanGuard(interval=16).interval, NanGuard().max_skipped
        (20, 16, 16)
        >>> # ember.Learner(data, model, nan_guard=False, cbs=[NanGuard(interval=1)])
    """

    order = Order.GUARD

    def __init__(self, interval: int = 32, max_skipped: int = 16) -> None:
        if not is_whole(interval, 1):
            raise ValueError(
                f"NanGuard(interval={interval!r}): give a whole number of batches between "
                f"checks, 1 or more (1 checks every batch)")
        if not is_whole(max_skipped, 0):
            raise ValueError(
                f"NanGuard(max_skipped={max_skipped!r}): give a whole number of batches in a "
                f"row the fp16 loss scaler may skip, 0 or more")
        self.interval, self.max_skipped = interval, max_skipped

    def before_fit(self) -> None:
        self._skipped = 0  # batches in a row whose loss the fp16 loss scaler skipped

    def before_epoch(self) -> None:
        self.good_state = cpu_copy(self.learn.model.state_dict())
        self.good_opt = cpu_copy(optimizer_state(self.learn.opt))
        # (batch, loss) of the batches since the last check; a cancelled batch has no loss
        self._losses: list[tuple[int, torch.Tensor]] = []

    def after_loss(self) -> None:
        learn = self.learn
        if learn.training:
            losses = self._losses
            losses.append((learn.iter, learn.loss))
            if len(losses) >= self.interval:
                self._check()

    def after_train(self) -> None:
        self._check()

    def _check(self) -> None:
        batches, self._losses = self._losses, []
        if not batches:
            return
        finite = torch.isfinite(torch.stack(list(map(itemgetter(1), batches))).float())
        if bool(finite.all()):
            self._skipped = 0
            return
        if not loss_scaled(self.learn):
            batch, loss = batches[int(torch.nonzero(~finite)[0, 0])]
            self._stop(f"loss became {float(loss)} at epoch {self.learn.epoch + 1}, batch "
                       f"{batch + 1}")
        for (batch, loss), ok in zip(batches, finite.tolist()):
            self._skipped = 0 if ok else self._skipped + 1
            if self._skipped > self.max_skipped:
                self._stop(
                    f"loss was {float(loss)} for {self._skipped} batches in a row, up to epoch "
                    f"{self.learn.epoch + 1}, batch {batch + 1}, although the fp16 loss scaler "
                    f"skipped their steps and lowered its scale", fp16=True)

    def _stop(self, what: str, fp16: bool = False) -> None:
        self.learn.model.load_state_dict(self.good_state)
        load_optimizer_state(self.learn.opt, self.good_opt)
        advice = ("The model overflows float16: train with precision='bf16' or in float32, "
                  "lower the learning rate, or check the data for NaN/inf values."
                  if fp16 else
                  "Lower the learning rate (try learn.lr_find()), add GradientClip, or check "
                  "the data for NaN/inf values.")
        warn(f"{what}: training stopped and the weights from the start of this epoch were "
             f"restored. {advice}", DivergenceWarning)
        self.learn.diverged = True
        raise CancelFitException


#: the training items :class:`PreciseBatchNorm` reads by default (Wu & Johnson and pycls use
#: 8,192 samples: the statistics hardly change with more)
PRECISE_BN_ITEMS = 8192
#: the seed of :class:`PreciseBatchNorm`'s own generator: every recompute reads the same items
PRECISE_BN_SEED = 0
#: the share of their starting values the moving averages may still carry before
#: ``PreciseBatchNorm(only_when_stale=True)`` recomputes them ((1 - momentum) ** steps)
STALE_SHARE = 0.01


class PreciseBatchNorm(Callback):
    """Recompute the BatchNorm layers' statistics from the trained weights, so that validation
    and inference normalise with the statistics of the final model. Part of the vision
    plugin's defaults (``ember.learner`` on image and segmentation data) with
    ``only_when_stale=True``: it recomputes only after a fit too short for the moving averages
    to forget their start (:meth:`stale`). Elsewhere add it with
    ``cbs=[ember.PreciseBatchNorm()]`` (which always recomputes). A model without BatchNorm
    layers costs nothing.

    During training BatchNorm keeps a moving average of each batch's statistics, taken with
    the weights of that step. When the weights still change fast at the end of a fit (a short
    fit, one-cycle's large steps), that average lags behind the model and validation suffers.
    This callback puts the model in evaluation mode with only its BatchNorm layers in training
    mode (dropout off, as at inference), resets their statistics and averages them, weighted
    by items, over ``n_items`` training items drawn at random from the whole training set
    (all of them when it holds fewer), read in a random order, batched and collated as the
    ``"train"`` loader that ``get_preds`` reads (no augmentation). The draw uses a generator of
    the callback's own with a fixed seed, so every recompute reads the same items and the
    global random generators are never drawn from: ``ember.seed(0)`` and a fit train the
    same with it as without it. A random order matters even for the whole set: batches of a
    dataset sorted by class (a folder of class folders) would each hold one class, and their
    variances miss the spread between classes. A loader whose items cannot be drawn by index
    (an iterable dataset, a batch sampler of its own, a dataset of whole batches) is read in
    its own order up to ``n_items`` items. A last batch of one item is left out (BatchNorm
    takes no statistics of one value). Layers that a frozen group keeps with
    ``bn_policy="freeze"`` keep their statistics.
    (Wu & Johnson, 2021, "Rethinking 'Batch' in BatchNorm", call this precise BatchNorm.)

    When: before the validation of the fit's last epoch, so the last row of the progress
    table scores the final model; before every epoch's validation (``every_epoch``) when
    something picks weights or stops by the validation of each epoch (an
    :class:`~ember.EarlyStopping` or :class:`~ember.SaveBest` is attached, ``fit_auto``'s
    race and best-weights saver, a fit on ``fit_auto``'s clock), so the epochs are compared
    with precise statistics, and the weights SaveBest keeps carry them. At the end of the
    fit, when the statistics are no longer those of the last recompute (the fit ended inside
    an epoch, ``NanGuard`` put back an epoch's first weights, a fit stopped early without
    ``every_epoch``, a SaveBest restored an earlier epoch with ``every_epoch=False``), they
    are recomputed for the final weights (its ``after_fit`` runs after SaveBest's restore,
    ``Order.STATISTICS``). A stopper of your own that ends fits early: pass
    ``every_epoch=True``, so the last validation recorded is that of the final model.

    Under ``torchrun`` each rank reads its own share of the sample (about
    ``n_items / world_size`` items, ranks' shares apart), then the ranks take the average of
    their statistics weighted by the items each read, so every rank ends with the same
    statistics over the whole sample at a ``world_size``-th of the cost (without it,
    DistributedDataParallel would hand rank 0's to the others at the next forward).

    Measured with the default vision model (``bench/precise_bn.py``, recomputing always,
    same seeds with and without it): on 600 images of the bundled Fashion-MNIST sample after
    ``fit_one_cycle(2)`` (18 batches) validation accuracy 0.18, 0.31, 0.12 without it and
    0.66, 0.73, 0.67 with it; after longer fits no gain: the quick-start's 1,000 images and
    8 epochs 0.837, 0.827, 0.807 without, 0.827, 0.827, 0.807 with; 10,000 images, 3 epochs,
    four seeds: 0.0017 lower with it on average (0.0006 lower when the pass reads the
    training augmentation); 60,000 images, 2 epochs: 0.8978 without, 0.8961 with. Hence
    ``only_when_stale`` for the vision default. It costs one forward pass over at most
    ``n_items`` training items per recompute.

    To switch the vision default off: ``learn.remove_cbs(learn.callback("precise_batch_norm"))``
    (``ember.learner(data, default_cbs=False)`` drops every default, augmentation too); to
    configure it, pass your own, which replaces it: ``ember.learner(data,
    cbs=[ember.PreciseBatchNorm(n_items=2048)])``.

    Args:
        n_batches: read at most this many batches of the drawn items (``None``: all of them).
        every_epoch: recompute before every epoch's validation (``True``), before the last
            epoch's only (``False``), or ``None`` (the default): every epoch when an
            EarlyStopping or SaveBest is attached or the fit runs on a clock (``fit_auto``),
            else the last epoch only.
        n_items: read at most this many training items, drawn at random from the whole
            training set (a whole number, 2 or more; ``None``: every item).
        only_when_stale: recompute only while the moving averages still carry more than
            ``STALE_SHARE`` (1 %) of their starting values (:meth:`stale`): after fewer than
            about 44 training batches at BatchNorm's momentum of 0.1, or never trained. The
            vision defaults use it; a longer fit then costs nothing.

    Example:
        >>> PreciseBatchNorm(n_items=2048).n_items
        2048
        >>> PreciseBatchNorm().n_items == PRECISE_BN_ITEMS
        True
        >>> # learn.fit_one_cycle(5, cbs=[PreciseBatchNorm(every_epoch=True)])
    """

    order = Order.STATISTICS

    def __init__(self, n_batches: int | None = None, every_epoch: bool | None = None, *,
                 n_items: int | None = PRECISE_BN_ITEMS, only_when_stale: bool = False) -> None:
        if n_batches is not None and not is_whole(n_batches, 1):
            raise ValueError(f"PreciseBatchNorm(n_batches={n_batches!r}): give a whole number "
                             f"of batches, 1 or more, or None for every batch of the items drawn")
        if n_items is not None and not is_whole(n_items, 2):
            raise ValueError(f"PreciseBatchNorm(n_items={n_items!r}): give a whole number of "
                             f"training items, 2 or more (BatchNorm takes no statistics of one), "
                             f"or None for the whole training set")
        if every_epoch is not None and not isinstance(every_epoch, bool):
            raise ValueError(f"PreciseBatchNorm(every_epoch={every_epoch!r}): give True, False "
                             f"or None (every epoch when something monitors the validation)")
        self.n_batches, self.every_epoch, self.n_items = n_batches, every_epoch, n_items
        self.only_when_stale = only_when_stale
        #: the statistics each recompute of this fit left (and those it started with), as
        #: :meth:`_fingerprint` gives them
        self._left: list[torch.Tensor] = []

    def before_fit(self) -> None:
        self._left = [self._fingerprint(self._layers())]

    def after_train(self) -> None:
        if (self._each_epoch() or self.learn.epoch >= self.learn.n_epoch - 1) and self._wanted():
            self.recompute()

    def after_fit(self) -> None:
        # training moved the moving averages since the last recompute, or SaveBest loaded
        # statistics no recompute left (an epoch recomputed before is precise already)
        current = self._fingerprint(self._layers())
        if not any(torch.equal(current, left) for left in self._left) and self._wanted():
            self.recompute()

    def _wanted(self) -> bool:
        """Whether a recompute due now runs: always, or with ``only_when_stale`` only while
        the moving averages are stale."""
        return not self.only_when_stale or self.stale()

    def stale(self) -> bool:
        """Whether a BatchNorm layer's moving averages still carry more than ``STALE_SHARE``
        (1 %) of their starting values: ``(1 - momentum) ** steps`` for a layer that has
        averaged ``steps`` training batches (``num_batches_tracked``), or a layer that has
        averaged none. After a short fit they are still close to where they started (zero
        means and unit variances for a new model) whatever the weights became; after about
        44 batches at PyTorch's momentum of 0.1 the start weighs less than 1 %, and in the
        annealed end of a one-cycle fit the averages follow weights that barely move.

        Example:
            >>> # PreciseBatchNorm().attached_to(learn).stale()  # True for an untrained model
        """
        for layer in self._layers():
            steps = int(layer.num_batches_tracked)  # type: ignore[arg-type]
            if steps == 0 or (layer.momentum is not None
                              and (1 - layer.momentum) ** steps > STALE_SHARE):
                return True
        return False

    @staticmethod
    def _fingerprint(layers: list[torch.nn.Module]) -> torch.Tensor:
        """The sums of each layer's running mean and variance, on the CPU: what tells one set
        of statistics from another (training moves them at every step)."""
        if not layers:
            return torch.zeros(0, dtype=torch.float64)
        return torch.stack([buffer.detach().double().sum() for layer in layers
                            for buffer in (layer.running_mean, layer.running_var)]).cpu()

    def _each_epoch(self) -> bool:
        """Whether this fit recomputes before every epoch's validation."""
        from ember.callbacks.base import OPEN_ENDED
        from ember.callbacks.tracking import EarlyStopping, SaveBest

        if self.every_epoch is not None:
            return self.every_epoch
        learn = self.learn
        return (learn.clock is not None or learn.n_epoch >= OPEN_ENDED
                or any(isinstance(cb, EarlyStopping | SaveBest) for cb in learn.cbs))

    def _layers(self) -> list[torch.nn.Module]:
        """The BatchNorm layers whose statistics are recomputed: those that keep running
        statistics, except the frozen groups' under ``bn_policy="freeze"``."""
        learn = self.learn
        # frozen groups' layers keep their statistics under bn_policy="freeze" (and train
        # them, so they are recomputed too, under "train")
        frozen = ({id(module) for module in learn.frozen_bn_modules()}
                  if learn.bn_policy == "freeze" else set())
        return [module for module in learn.model.modules()
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
                and module.track_running_stats and id(module) not in frozen]

    def recompute(self) -> None:
        """Recompute the statistics now (also usable outside a fit, after ``learn.load``).

        Example:
            >>> # PreciseBatchNorm().attached_to(learn).recompute(); learn.validate()
        """
        from ember.learner import _n_rows

        learn = self.learn
        layers = self._layers()
        if not layers:
            return
        loader, limit = self._reading()
        modes = {module: module.training for module in learn.model.modules()}
        momenta = [layer.momentum for layer in layers]
        kept = [{name: buffer.clone() for name, buffer in layer.named_buffers()}
                for layer in layers]
        learn.model.eval()
        for layer in layers:
            layer.reset_running_stats()
            layer.train()
        read, batches = 0, 0
        try:
            with torch.no_grad():
                for batch in loader:
                    if (self.n_batches is not None and batches >= self.n_batches) or (
                            limit is not None and read >= limit):
                        break
                    inputs = learn._model_inputs(batch[:-1])
                    rows = _n_rows(inputs)
                    if rows == 1:  # BatchNorm takes no statistics of one value
                        continue
                    # the running statistics become the average weighted by items: each
                    # batch's share of the items read so far
                    read, batches = read + (rows or 1), batches + 1
                    for layer in layers:
                        layer.momentum = (rows or 1) / read
                    learn.model(*inputs)
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
            for module, training in modes.items():
                module.train(training)
        if learn.distributed is not None:  # every rank read its own share: their average
            total = learn.distributed.all_sum(torch.tensor(float(read), device=learn.device))
            for layer in layers:
                for buffer in (layer.running_mean, layer.running_var):
                    if buffer is not None and total > 0:
                        buffer.copy_(learn.distributed.all_sum(buffer * read) / total)
            read = int(total)
        if read == 0:  # nothing to average (no batch of two items or more): as they were
            for layer, buffers in zip(layers, kept):
                for name, buffer in layer.named_buffers():
                    buffer.copy_(buffers[name])
        self._left.append(self._fingerprint(layers))

    def _reading(self) -> tuple[Any, int | None]:
        """The loader :meth:`recompute` reads, and the items after which it stops (``None``:
        the whole loader). The training items are drawn from the indices the in-order
        ``"train"`` loader reads, into a loader with its batch size, collation and workers;
        one whose items cannot be drawn by index is read itself, up to this rank's share of
        ``n_items``."""
        import itertools

        from torch.utils.data import DataLoader, DistributedSampler, IterableDataset

        from ember.data import worker_seeds
        from ember.distributed import ShardSampler, loader_settings
        from ember.learner import _fixed_order

        learn = self.learn
        base = learn.loader("train", in_order=True)
        distributed = learn.distributed
        world, rank = ((distributed.world_size, distributed.rank) if distributed is not None
                       else (1, 0))
        sampler = base.sampler
        # under torchrun a loader may be this rank's share already: it draws its part of the
        # sample from it; one that reads every item on every rank is split after the draw
        shared = isinstance(sampler, ShardSampler | DistributedSampler)
        share_cap = None if self.n_items is None else -(-self.n_items // world)
        if base.batch_size is None or isinstance(base.dataset, IterableDataset):
            return base, share_cap
        try:
            bound = len(base.dataset) + 1  # type: ignore[arg-type]
        except TypeError:
            return base, share_cap
        indices = _fixed_order(lambda: list(itertools.islice(sampler, bound)), sampler)
        if indices is None or len(indices) >= bound:  # an order that changes, or never ends
            return base, share_cap
        cap = share_cap if shared else self.n_items
        order = torch.randperm(len(indices),
                               generator=torch.Generator().manual_seed(PRECISE_BN_SEED))
        chosen = [indices[position] for position in order[:cap].tolist()]
        if world > 1 and not shared:  # the same draw on every rank: each reads its part
            chosen = chosen[:len(chosen) - len(chosen) % world][rank::world]
        if len(chosen) % base.batch_size == 1 and len(chosen) > 1:
            chosen.pop()  # a last batch of one item: BatchNorm takes no statistics of it
        settings = {**loader_settings(base), "generator": worker_seeds()}
        return DataLoader(base.dataset, batch_size=base.batch_size, sampler=chosen,
                          drop_last=False, **settings), None

    def attached_to(self, learn: Learner) -> PreciseBatchNorm:
        """This callback with ``learn`` set, to call :meth:`recompute` outside a fit.

        Example:
            >>> # PreciseBatchNorm().attached_to(learn).recompute()
        """
        self.learn = learn
        return self
