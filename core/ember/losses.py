"""Losses that take model outputs of any shape and targets as the data gives them, plus the
choice of loss from the kind of target.

Example:
    >>> import torch
    >>> loss = loss_for("regression")
    >>> float(loss(torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 2.0])))
    0.0
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["BCEWithLogitsFlat", "CrossEntropyFlat", "MSEFlat", "loss_for"]

#: the integer dtypes F.cross_entropy takes as class indices; other integers and bool are cast
_CLASS_INDEX_DTYPES = (torch.long, torch.uint8)


class CrossEntropyFlat(nn.Module):
    """Cross-entropy over the last dimension; ``(N, C)`` or sequences ``(N, T, C)`` against
    integer targets ``(N,)`` or ``(N, T)``. Targets equal to ``ignore_index`` count for nothing.

    Example:
        >>> import torch
        >>> CrossEntropyFlat()(torch.zeros(2, 3, 5), torch.zeros(2, 3, dtype=torch.long)).shape
        torch.Size([])
    """

    def __init__(self, weight: Tensor | None = None, label_smoothing: float = 0.0,
                 ignore_index: int = -100) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.ndim != 2 or target.ndim != 1:  # sequences: flatten time into the batch
            pred, target = pred.reshape(-1, pred.shape[-1]), target.reshape(-1)
        if target.dtype not in _CLASS_INDEX_DTYPES and not target.is_floating_point():
            # int32 labels (numpy's on Windows, pandas' int32 columns) and bool ones are class
            # indices too, but F.cross_entropy takes only int64 or uint8 and failed on them
            target = target.long()
        # the buffer read directly, not through nn.Module's slow attribute fallback: this runs
        # every batch
        return F.cross_entropy(pred, target, weight=self._buffers["weight"],
                               ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)


class BCEWithLogitsFlat(nn.Module):
    """Binary cross-entropy on logits for multi-label targets (multi-hot floats).

    Example:
        >>> import torch
        >>> round(float(BCEWithLogitsFlat()(torch.zeros(1, 2), torch.ones(1, 2))), 4)
        0.6931
    """

    def __init__(self, pos_weight: Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            pred, target.reshape(pred.shape).to(pred.dtype), pos_weight=self.pos_weight)


class MSEFlat(nn.Module):
    """Mean squared error after flattening both sides, so ``(N, 1)`` outputs meet ``(N,)``
    targets without silent broadcasting.

    With ``weight`` (one number per target, for ``(N, k)`` outputs of ``k`` targets) each
    target's squared error is multiplied by its weight before the mean. :func:`loss_for`
    gives several targets ``1 / variance`` each (the squared error of the standardised
    targets), so a target counted in thousands does not drown one counted in units; without
    ``weight`` every target is in its own units, as for a single one.

    Example:
        >>> import torch
        >>> float(MSEFlat()(torch.tensor([[3.0]]), torch.tensor([1.0])))
        4.0
        >>> float(MSEFlat(weight=[1.0, 0.01])(torch.tensor([[3.0, 30.0]]),
        ...                                   torch.tensor([[1.0, 10.0]])))
        4.0
    """

    def __init__(self, weight: Sequence[float] | Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else
                             torch.as_tensor(weight, dtype=torch.float32).reshape(-1))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        # the buffer read directly, not through nn.Module's slow attribute fallback: this runs
        # every batch
        weight = self._buffers["weight"]
        if weight is None:
            return F.mse_loss(pred.reshape(-1), target.reshape(-1).to(pred.dtype))
        pred = pred.reshape(-1, len(weight))
        error = (pred - target.reshape(pred.shape).to(pred.dtype)) ** 2
        return (error * weight.to(error.dtype)).mean()


def loss_for(target_kind: str, target_std: Sequence[float] | None = None) -> nn.Module:
    """The default loss for a kind of target.

    ``target_std`` is the spread of each regression target over the training set
    (:attr:`ember.Data.target_std`). With two or more targets the squared error of each is
    weighed by ``1 / std**2``, the mean squared error of the standardised targets, so each
    target counts equally whatever its units; with one target (or none given) the loss is
    the plain :class:`MSEFlat` in the target's own units.

    Example:
        >>> type(loss_for("single_label")).__name__
        'CrossEntropyFlat'
        >>> loss_for("regression", target_std=[8.0, 0.5]).weight.tolist()
        [0.015625, 4.0]
    """
    losses: dict[str, type[nn.Module]] = {
        "single_label": CrossEntropyFlat,
        "sequence": CrossEntropyFlat,
        "multi_label": BCEWithLogitsFlat,
        "regression": MSEFlat,
    }
    if target_kind not in losses:
        raise ValueError(f"no default loss for target kind {target_kind!r}; pass loss_func=")
    if target_kind == "regression" and target_std is not None and len(target_std) >= 2:
        # a spread of 0 (a constant target) counts as 1, as in ember.target_scale
        return MSEFlat(weight=[1.0 / float(std) ** 2 if std > 0 else 1.0 for std in target_std])
    return losses[target_kind]()


def loss_name(loss_func: object) -> str:
    """How messages name a loss: a module by its class, a plain function (or a
    ``functools.partial`` of one) by its own name.

    Example:
        >>> from torch.nn import functional as F
        >>> loss_name(MSEFlat()), loss_name(F.cross_entropy)
        ('MSEFlat', 'cross_entropy')
    """
    if isinstance(loss_func, nn.Module):
        return type(loss_func).__name__
    return getattr(_function(loss_func), "__name__", None) or type(loss_func).__name__


def ignored_target(loss_func: object) -> int:
    """The target value ``loss_func`` skips: its ``ignore_index`` (a module's attribute, or a
    ``functools.partial``'s keyword), torch's -100 otherwise.

    Example:
        >>> from functools import partial
        >>> from torch.nn import functional as F
        >>> ignored_target(CrossEntropyFlat(ignore_index=0)), ignored_target(
        ...     partial(F.cross_entropy, ignore_index=3)), ignored_target(F.cross_entropy)
        (0, 3, -100)
    """
    ignored = getattr(loss_func, "ignore_index", None)
    if ignored is None:
        ignored = getattr(loss_func, "keywords", {}).get("ignore_index", -100)
    return ignored


def _function(loss_func: object) -> object:
    """The function a ``functools.partial`` wraps, or ``loss_func`` itself."""
    return getattr(loss_func, "func", loss_func)


def classification_losses() -> tuple[type, ...]:
    """Loss classes that expect integer class targets (used by the input checks)."""
    return (CrossEntropyFlat, nn.CrossEntropyLoss, nn.NLLLoss)


def regression_losses() -> tuple[type, ...]:
    """Loss classes that expect float targets of the output's size."""
    return (MSEFlat, nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, BCEWithLogitsFlat,
            nn.BCEWithLogitsLoss, nn.BCELoss)


def loss_family(loss_func: object) -> str | None:
    """``"classification"`` for a loss that takes class indices, ``"regression"`` for one that
    takes float targets of the output's size, ``None`` when Ember cannot tell: a loss module
    by its class, torch's functional losses (or a ``functools.partial`` of one) by identity.
    The input checks use it.

    Example:
        >>> from torch.nn import functional as F
        >>> loss_family(CrossEntropyFlat()), loss_family(F.mse_loss), loss_family(print)
        ('classification', 'regression', None)
    """
    if isinstance(loss_func, classification_losses()):
        return "classification"
    if isinstance(loss_func, regression_losses()):
        return "regression"
    function = _function(loss_func)
    if function in (F.cross_entropy, F.nll_loss):
        return "classification"
    if function in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss,
                    F.binary_cross_entropy_with_logits, F.binary_cross_entropy):
        return "regression"
    return None

