"""Errors and warnings that Ember raises for mistakes a user can fix.

Every error names the item at fault and says what to do. Catch :class:`EmberError` to handle any
of them; filter :class:`EmberWarning` (or a subclass) with the :mod:`warnings` module.

Example:
    >>> import ember
    >>> try:
    ...     raise ember.DataError("label 'x' at row 3 is not a number; convert it first")
    ... except ember.EmberError as error:
    ...     print(error)
    label 'x' at row 3 is not a number; convert it first
"""

from __future__ import annotations

__all__ = [
    "CancelBackwardException",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelStepException",
    "CancelTrainException",
    "CancelValidateException",
    "DataError",
    "EmberError",
    "EmberWarning",
    "ExportError",
    "PluginError",
    "TrainingError",
]


class EmberError(Exception):
    """Base class of every error Ember raises on purpose."""


class DataError(EmberError, ValueError):
    """The data given to Ember cannot be used as it is (the message says why and how to fix it)."""


class TrainingError(EmberError, RuntimeError):
    """Training cannot start or go on: model, loss and targets do not fit together."""


class ExportError(EmberError, ValueError):
    """An exported model file cannot be written or read."""


class PluginError(EmberError, RuntimeError):
    """A plugin is missing, broken or incompatible."""


class EmberWarning(UserWarning):
    """Base class of every warning Ember emits; filter it with :mod:`warnings`."""


class CancelFitException(Exception):
    """Raise in a callback to end ``fit`` cleanly (``after_cancel_fit`` then ``after_fit`` run);
    caught in any event from ``before_fit`` to ``after_epoch``.

    ``after_cancel_fit`` also runs when an error or an interrupt (Ctrl-C) ends a fit, just
    before it propagates (``after_fit`` does not), so a callback can release what it holds.
    """


class CancelEpochException(Exception):
    """Raise in a callback to skip the rest of the current epoch (in ``before_epoch`` up to
    ``after_validate``; not in ``after_epoch``)."""


class CancelTrainException(Exception):
    """Raise in a callback to skip the rest of the training phase of this epoch (in
    ``before_train`` or a training batch's events)."""


class CancelValidateException(Exception):
    """Raise in a callback to skip the validation phase of this epoch (in ``before_validate``
    or a validation batch's events)."""


class CancelBatchException(Exception):
    """Raise in a callback to skip the rest of the current batch (in ``before_batch`` up to
    ``after_step``; not in ``after_batch``)."""


class CancelBackwardException(Exception):
    """Raise in ``before_backward`` (only there) to skip the backward pass of this batch."""


class CancelStepException(Exception):
    """Raise in ``before_step`` (only there) to skip the optimiser step (for example to
    accumulate gradients)."""
