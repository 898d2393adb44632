"""Callbacks: small objects that react to the Learner's events.

A callback defines methods named after events (``before_fit``, ``after_batch``, …). The Learner
calls them in order of their ``order`` attribute (named constants in :class:`Order`, never magic
numbers); ``learn.show_callbacks()`` prints the order. A callback may read any Learner attribute
but writes only documented state: ``learn.xb``, ``learn.yb``, ``learn.pred``, ``learn.loss``,
``learn.loss_grad``, ``learn.step_fn`` and parameter-group hyper-parameters of ``learn.opt``.
Raise one of the ``Cancel…Exception`` classes to skip a batch, a step, an epoch or the fit.
Each is caught by its own phase, so it may be raised in ``before_X`` and in any event that fires
inside phase X, never in ``after_X`` or ``after_cancel_X`` (the phase is over by then):

- ``CancelStepException``: ``before_step`` only; ``CancelBackwardException``: ``before_backward``
  only;
- ``CancelBatchException``: ``before_batch`` to ``after_step`` (``after_pred``, ``after_loss``,
  the backward and step events), not ``after_batch``;
- ``CancelTrainException`` / ``CancelValidateException``: ``before_train`` / ``before_validate``
  and the batch events of that phase;
- ``CancelEpochException``: ``before_epoch`` to ``after_validate``, not ``after_epoch``;
- ``CancelFitException``: ``before_fit`` to ``after_epoch``, not ``after_fit``.

A batch cancelled after its backward pass, like a cancelled step, keeps its gradients: they
join the next step's (as in fastai's loop; gradient accumulation rests on it). To drop them,
call ``self.learn.opt.zero_grad()`` before raising. A cancel that cuts an epoch short still
counts the batch it was raised in (``learn.train_iter``), so schedules go on from the next step.

One raised anywhere else ends the fit with a :class:`~ember.TrainingError` that names it, the
event and the callback. ``learn.validate()`` and ``learn.get_preds()`` run outside any fit:
there only ``CancelValidateException`` and ``CancelBatchException`` are caught.
When an error or an interrupt (Ctrl-C) ends a fit or a validation pass, ``after_cancel_fit`` or
``after_cancel_validate`` runs before it propagates, so a callback can release what it holds.

Example:
    >>> import ember
    >>> class PrintEpochs(ember.Callback):
    ...     order = ember.Order.DEFAULT
    ...     def after_epoch(self):
    ...         print("finished epoch", self.learn.epoch)
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.learner import Learner

__all__ = ["EVENTS", "OPEN_ENDED", "Callback", "Order"]

#: ``n_epoch`` of a fit that runs until a callback ends it (``fit_auto``'s clock); progress
#: then shows no total
OPEN_ENDED = 1_000_000

#: Every event the Learner fires, in the order they first occur.
EVENTS = (
    "before_fit", "before_epoch", "before_train", "before_batch", "after_pred", "after_loss",
    "before_backward", "after_backward", "before_step", "after_step", "after_cancel_batch",
    "after_batch", "after_cancel_train", "after_train", "before_validate", "after_cancel_validate",
    "after_validate", "after_cancel_epoch", "after_epoch", "after_cancel_fit", "after_fit",
    "after_cancel_backward", "after_cancel_step",
)


def _positive(value: Any) -> bool:
    """Whether ``value`` is a real number above 0 (infinity too: a rate divided by it is 0, a
    clipping norm of it clips nothing): the check for a callback's scale or norm."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0


class Order:
    """Named positions of callbacks in the event order (lower runs first).

    Example:
        >>> Order.PRECISION < Order.DEFAULT < Order.RECORDER < Order.PROGRESS
        True
        >>> Order.ACCUMULATE < Order.PRECISION < Order.CLIP
        True
        >>> Order.TRACKING < Order.STATISTICS < Order.PROGRESS
        True
    """

    FIRST = -100
    #: before PRECISION: accumulation cancels a step before fp16 unscales the gradients
    ACCUMULATE = -60
    PRECISION = -50
    SCHEDULE = -40
    CLIP = -20
    DEFAULT = 0
    GUARD = 20
    RECORDER = 50
    TRACKING = 60
    #: after TRACKING: PreciseBatchNorm's ``after_fit`` sees the weights SaveBest restores
    STATISTICS = 70
    PROGRESS = 80
    LAST = 100


class Callback:
    """Base class of callbacks; ``self.learn`` is the Learner it is attached to.

    Override ``state_dict`` / ``load_state_dict`` for state that a checkpoint must keep
    (a checkpoint stores the state of every callback that has a ``name``).

    Example:
        >>> Callback().name
        'callback'
    """

    order: int = Order.DEFAULT
    learn: Learner

    @property
    def name(self) -> str:
        """Snake-case name of the callback class (``GradientClip`` → ``gradient_clip``)."""
        text = type(self).__name__
        out = [text[0].lower()]
        for char in text[1:]:
            out.append(f"_{char.lower()}" if char.isupper() else char)
        return "".join(out)

    def state_dict(self) -> dict[str, Any]:
        """State to keep in a checkpoint; empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"
