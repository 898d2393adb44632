"""Metrics computed over a whole validation set, not averaged over batches.

Every metric accumulates sums (or, for ROC AUC, the predictions) batch by batch on the device
where the batches are, so a metric costs no host synchronisation until :meth:`Metric.compute`.
Sum states are reduced across processes in distributed runs (``all_reduce``); ROC AUC gathers.

These are written here rather than taken from torchmetrics: they are a few lines each, add no
import time, and their exact definitions are tested against scikit-learn-style reference values.

Example:
    >>> import torch
    >>> metric = Accuracy()
    >>> metric.update(torch.tensor([[2.0, 0.1], [0.2, 1.0]]), torch.tensor([0, 0]))
    >>> metric.compute()
    0.5
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ember.errors import TrainingError
from ember.utils import is_whole

__all__ = [
    "MAE",
    "R2",
    "RMSE",
    "Accuracy",
    "AccuracyMulti",
    "Dice",
    "ErrorRate",
    "FBeta",
    "Metric",
    "RocAuc",
    "TopKAccuracy",
]


class Metric:
    """Base class: ``reset`` → ``update(preds, targets)`` per batch → ``compute()``.

    ``preds`` are the model's raw outputs (logits), ``targets`` the batch targets. Subclasses
    list their accumulators in ``sum_states`` (added up across processes) or ``cat_states``
    (gathered).

    Example:
        >>> metric = RMSE()
        >>> metric.name
        'rmse'
    """

    name = "metric"
    sum_states: tuple[str, ...] = ()
    cat_states: tuple[str, ...] = ()
    #: True when larger is better (used by early stopping and save-best).
    higher_is_better = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Clear the accumulators before a new pass over the data."""
        for state in self.sum_states:
            setattr(self, state, torch.zeros((), dtype=torch.float64))
        for state in self.cat_states:
            setattr(self, state, [])

    def update(self, preds: Tensor, targets: Tensor) -> None:  # pragma: no cover - abstract
        """Add one batch."""
        raise NotImplementedError

    def compute(self) -> float:  # pragma: no cover - abstract
        """Return the metric over everything added since ``reset``: one number (a float; a
        one-element tensor is read as its value), since each metric is one column of
        ``learn.recorder.values``. A dict or a vector is refused with a ``TrainingError``."""
        raise NotImplementedError

    @staticmethod
    def share(numerator: Tensor | float, count: Tensor | float) -> float:
        """``numerator / count``, or NaN when nothing was counted: a pass that measured no
        item (a validation cancelled before its first batch, targets that are all padding)
        has no score, and 0 would read as the worst accuracy or the best error.

        Example:
            >>> Metric.share(torch.tensor(3.0), torch.tensor(4.0)), Metric.share(0.0, 0.0)
            (0.75, nan)
        """
        return float(numerator / count) if float(count) else float("nan")

    def _add(self, state: str, value: Tensor | float) -> None:
        """Add ``value`` to the accumulator ``state``: a tensor (kept on its device, so no host
        synchronisation) or a plain number such as a count, which needs no tensor at all.

        Example:
            >>> import torch
            >>> metric = Accuracy()
            >>> metric._add("count", 3)
            >>> metric._add("count", torch.tensor(2))
            >>> float(metric.count)
            5.0
        """
        current = getattr(self, state)
        if isinstance(value, Tensor):
            if value.requires_grad:
                value = value.detach()
            if current.device != value.device or current.shape != value.shape:
                # the first batch on an accelerator, or a state that is a vector: out of place
                setattr(self, state, current.to(value.device) + value.to(torch.float64))
                return
        current.add_(value)  # in place: one operation per batch instead of three

    def synchronise(self) -> None:
        """Reduce the accumulators across processes (a no-op outside distributed runs)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        from ember.distributed import _backend_device

        device = _backend_device()  # NCCL reduces GPU tensors only; a count stays on the CPU
        for state in self.sum_states:
            current = getattr(self, state)
            value = current.detach().clone().to(device)
            dist.all_reduce(value)
            setattr(self, state, value.to(current.device))
        for state in self.cat_states:
            local = torch.cat(getattr(self, state)) if getattr(self, state) else torch.empty(0)
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, local.cpu())
            setattr(self, state, [g for g in gathered if g.numel()])

    @staticmethod
    def _first_measured(local: Any) -> Any:
        """The first rank's ``local`` that is not ``None`` (``None`` when every rank's is), the
        same on every rank: how a rank that measured nothing learns the shape of the others'
        state before :meth:`synchronise` reduces it. Every rank must call it (it gathers from
        all of them); ``local`` is whatever a rank has measured, ``None`` for nothing.

        Example:
            >>> # in a subclass's synchronise, under torchrun:
            >>> # size = self._first_measured(None if self.counts is None else self.counts.numel())
        """
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, local)
        return next((value for value in gathered if value is not None), None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: the target value that single-label metrics skip, as the losses do (torch's default; also
#: what ``Learner.get_preds`` pads integer targets with)
IGNORE_INDEX = -100


def _add_hits(metric: Any, hit: Tensor, targets: Tensor) -> None:
    """Add one batch's ``hit`` (per item) to ``metric``'s ``correct`` and ``count``, leaving
    out items whose target is the metric's ``ignore_index`` (a mask, not an index: no host
    synchronisation)."""
    if metric.ignore_index is None:
        metric._add("correct", hit.sum())
        metric._add("count", hit.numel())
        return
    kept = targets != metric.ignore_index
    metric._add("correct", (hit & kept).sum())
    metric._add("count", kept.sum())


def _check_class_scores(metric: Metric, preds: Tensor, targets: Tensor) -> None:
    """Refuse, with a :class:`~ember.TrainingError` naming the metric and the shapes, what a
    single-label metric cannot score: one score per item, whose top class is always 0 (a
    regression's targets scored 0.0 silently), or fewer or more labels than predicted items
    (torch's own size error). Reads the shapes only (no host synchronisation).

    Example:
        >>> import torch
        >>> _check_class_scores(Accuracy(), torch.zeros(3, 2), torch.zeros(3))
        >>> _check_class_scores(Accuracy(), torch.zeros(3, 1), torch.zeros(3))
        Traceback (most recent call last):
        ...
        ember.errors.TrainingError: accuracy: predictions of shape (3, 1) hold one score per ...
    """
    if preds.ndim < 2 or preds.shape[-1] < 2:
        raise TrainingError(
            f"{metric.name}: predictions of shape {tuple(preds.shape)} hold one score per item, "
            f"whose top class is always 0; {metric.name} scores one column per class "
            f"(single-label). For regression targets use 'rmse', 'mae' or 'r2'; for one logit "
            f"per item use 'accuracy_multi'")
    if preds[..., 0].numel() != targets.numel():
        raise TrainingError(
            f"{metric.name}: predictions of shape {tuple(preds.shape)} score "
            f"{preds[..., 0].numel()} items but the targets of shape {tuple(targets.shape)} hold "
            f"{targets.numel()} labels; {metric.name} takes one class index per item "
            f"(single-label): for multi-hot targets use 'accuracy_multi' or FBeta(multi_label="
            f"True)")


def _labels(metric: Metric, preds: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    _check_class_scores(metric, preds, targets)
    return preds.argmax(dim=-1).reshape(-1), targets.reshape(-1)


class Accuracy(Metric):
    """Share of items whose top class is the target (single-label; a sequence's positions are
    items). Targets equal to ``ignore_index`` (padding) count for nothing, as in the loss.

    Example:
        >>> import torch
        >>> metric = Accuracy()
        >>> metric.update(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, -100]))
        >>> metric.compute()
        1.0
    """

    name = "accuracy"
    sum_states = ("correct", "count")

    def __init__(self, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index
        super().__init__()

    def update(self, preds: Tensor, targets: Tensor) -> None:
        predicted, targets = _labels(self, preds, targets)
        _add_hits(self, predicted == targets, targets)

    def compute(self) -> float:
        return self.share(self.correct, self.count)


class ErrorRate(Accuracy):
    """``1 - accuracy``.

    Example:
        >>> import torch
        >>> metric = ErrorRate()
        >>> metric.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
        >>> metric.compute()
        1.0
    """

    name = "error_rate"
    higher_is_better = False

    def compute(self) -> float:
        return 1.0 - super().compute()


class TopKAccuracy(Metric):
    """Share of items whose target is among the ``k`` highest-scored classes; targets equal
    to ``ignore_index`` (padding) count for nothing. ``k`` is a whole number of at least 1,
    and the model must score more than ``k`` classes: with ``k`` classes or fewer every target
    is among the top ``k`` and the score is 1.0 whatever the model does, so the first batch
    refuses it with a :class:`~ember.TrainingError` naming ``k`` and the class count.

    Example:
        >>> import torch
        >>> metric = TopKAccuracy(k=2)
        >>> metric.update(torch.tensor([[0.5, 0.3, 0.2]]), torch.tensor([1]))
        >>> metric.compute()
        1.0
    """

    sum_states = ("correct", "count")

    def __init__(self, k: int = 5, ignore_index: int | None = IGNORE_INDEX) -> None:
        if not is_whole(k, least=1):  # k=0 scored 0.0 always; 2.5 failed inside torch.topk
            raise ValueError(f"TopKAccuracy(k={k!r}): k must be a whole number of at least 1 "
                             f"(and under the number of classes), e.g. TopKAccuracy(k=5)")
        self.k, self.name, self.ignore_index = int(k), f"top_{k}_accuracy", ignore_index
        super().__init__()

    def update(self, preds: Tensor, targets: Tensor) -> None:
        _check_class_scores(self, preds, targets)
        n_classes, k = preds.shape[-1], self.k
        if n_classes <= k:  # the shape only: no host synchronisation
            raise TrainingError(
                f"{self.name}: k={k} but the model scores only {n_classes} classes, so every "
                f"target is among the top {k} and {self.name} is always 1.0; give a k under "
                f"{n_classes} (TopKAccuracy(k={max(1, n_classes - 1)})), or drop the metric")
        # one row per item, or per position of a sequence (N, T, C), as Accuracy counts them
        top = preds.topk(k, dim=-1).indices.reshape(-1, k)
        targets = targets.reshape(-1)
        _add_hits(self, (top == targets[:, None]).any(dim=-1), targets)

    def compute(self) -> float:
        return self.share(self.correct, self.count)


class AccuracyMulti(Metric):
    """Multi-label accuracy: share of (item, class) decisions right at ``threshold``.

    Example:
        >>> import torch
        >>> metric = AccuracyMulti()
        >>> metric.update(torch.tensor([[3.0, -3.0]]), torch.tensor([[1.0, 1.0]]))
        >>> metric.compute()
        0.5
    """

    name = "accuracy_multi"
    sum_states = ("correct", "count")

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        super().__init__()

    def update(self, preds: Tensor, targets: Tensor) -> None:
        # in float32: a bf16 sigmoid rounds every logit in (0, 0.0078) to 0.5, a "no"
        _check_values_per_item(self, preds, targets)  # single-label targets: torch's error
        decided = preds.float().sigmoid() > self.threshold
        self._add("correct", (decided == targets.bool()).sum())
        self._add("count", targets.numel())

    def compute(self) -> float:
        return self.share(self.correct, self.count)


class FBeta(Metric):
    """F-beta score. ``average="macro"`` averages per-class scores (single-label: over the
    classes among the targets or predictions, as scikit-learn does; multi-label: over every
    label column); ``"binary"`` scores class ``pos_label`` only. Works for single-label
    logits, or multi-label with ``multi_label=True``. Single-label targets equal to
    ``ignore_index`` (padding) count for nothing.

    Example:
        >>> import torch
        >>> metric = FBeta(beta=1.0, average="binary")
        >>> logits = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
        >>> metric.update(logits, torch.tensor([1, 0, 1]))
        >>> round(metric.compute(), 4)
        0.5
    """

    sum_states = ("true_positive", "false_positive", "false_negative")

    def __init__(self, beta: float = 1.0, average: str = "macro", pos_label: int = 1,
                 multi_label: bool = False, threshold: float = 0.5,
                 ignore_index: int | None = IGNORE_INDEX) -> None:
        if average not in ("macro", "binary", "micro"):
            raise ValueError(f"average must be 'macro', 'micro' or 'binary', got {average!r}")
        if isinstance(beta, bool) or not (isinstance(beta, (int, float)) and beta >= 0
                                          and math.isfinite(beta)):
            raise ValueError(f"FBeta(beta={beta!r}): beta must be a finite number, 0 or more "
                             f"(1: F1; 2 weighs recall twice as much as precision)")
        if not is_whole(pos_label):
            raise ValueError(f"FBeta(pos_label={pos_label!r}): pos_label must be a class index, "
                             f"a whole number of 0 or more (the class scored by "
                             f"average='binary')")
        self.beta, self.average, self.pos_label = beta, average, pos_label
        self.multi_label, self.threshold = multi_label, threshold
        self.ignore_index = ignore_index
        self.name = "f1" if beta == 1 else f"f{beta:g}"
        if average != "macro":
            self.name += f"_{average}"
        super().__init__()

    def reset(self) -> None:
        for state in self.sum_states:
            setattr(self, state, None)

    def update(self, preds: Tensor, targets: Tensor) -> None:
        n_classes = preds.shape[-1]
        if self.average == "binary" and self.pos_label >= n_classes:  # compute's IndexError
            raise TrainingError(
                f"{self.name}: pos_label={self.pos_label} but the model scores {n_classes} "
                f"classes (0 … {n_classes - 1}); give the index of the positive class")
        if self.multi_label:
            _check_values_per_item(self, preds, targets)  # class indices: torch's size error
            predicted = preds.float().sigmoid() > self.threshold  # float32, as AccuracyMulti
            actual = targets.bool()
        else:
            predicted_index, target_index = _labels(self, preds, targets)
            target_index = target_index.long()
            predicted = torch.nn.functional.one_hot(predicted_index, n_classes).bool()
            if self.ignore_index is not None:  # an ignored item is neither predicted nor actual
                kept = (target_index != self.ignore_index)[:, None]
                target_index = target_index.masked_fill(~kept[:, 0], 0)
                predicted = predicted & kept
            actual = torch.nn.functional.one_hot(target_index, n_classes).bool()
            if self.ignore_index is not None:
                actual = actual & kept
        for state, value in (
            ("true_positive", (predicted & actual).sum(0)),
            ("false_positive", (predicted & ~actual).sum(0)),
            ("false_negative", (~predicted & actual).sum(0)),
        ):
            current = getattr(self, state)
            value = value.to(torch.float64)
            setattr(self, state, value if current is None else current + value)

    def compute(self) -> float:
        if self.true_positive is None:
            return float("nan")
        tp, fp, fn = self.true_positive, self.false_positive, self.false_negative
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        beta2 = self.beta**2
        denominator = (1 + beta2) * tp + beta2 * fn + fp
        score = torch.where(denominator > 0, (1 + beta2) * tp / denominator.clamp(min=1e-12),
                            torch.zeros_like(tp))
        if self.average == "binary":
            return float(score[self.pos_label])
        if self.average == "macro" and not self.multi_label:
            # scikit-learn's classes: those among the targets or the predictions; a class the
            # model can output but this data never shows nor gets does not count as a 0
            present = (tp + fp + fn) > 0
            return float(score[present].mean()) if bool(present.any()) else float("nan")
        return float(score.mean())

    def synchronise(self) -> None:
        """Add up the counts of every rank. Every rank takes part, also one that measured no
        batch (a validation set smaller than the ranks): it adds zeros of the others' size,
        where skipping the reduction left the others waiting for it for ever."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        size = self._first_measured(
            None if self.true_positive is None else self.true_positive.numel())
        if size is None:
            return  # no rank measured a batch
        if self.true_positive is None:
            for state in self.sum_states:
                setattr(self, state, torch.zeros(size, dtype=torch.float64))
        super().synchronise()


def _binary_auc(scores: Tensor, positive: Tensor) -> float:
    """Area under the ROC curve by the rank statistic (ties get their average rank); NaN
    when a score is NaN (a ranking with NaN in it means nothing) or one class is absent."""
    if bool(scores.isnan().any()):
        return float("nan")
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = scores.argsort()
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    unique, inverse, counts = torch.unique(sorted_scores, return_inverse=True, return_counts=True)
    if len(unique) < len(scores):  # average the ranks of tied scores
        rank_sums = torch.zeros(len(unique), dtype=torch.float64).index_add_(
            0, inverse, torch.arange(1, len(scores) + 1, dtype=torch.float64))
        ranks[order] = (rank_sums / counts)[inverse]
    positive_rank_sum = ranks[positive.bool()].sum()
    return float((positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class Dice(FBeta):
    """Mean Dice coefficient over classes, for segmentation (per-pixel logits (..., C) and
    integer targets (...)): per class ``2·|P∩T| / (|P| + |T|)``, averaged over the classes
    present in the predictions or the targets (a class absent from both is left out rather
    than counted as 0 or 1). ``include_background=False`` leaves class 0 out; pixels whose
    target is ``ignore_index`` (void) count for nothing.

    Example:
        >>> import torch
        >>> metric = Dice()
        >>> logits = torch.tensor([[[4.0, 0.0], [0.0, 4.0], [0.0, 4.0]]])  # pixels: 0, 1, 1
        >>> metric.update(logits, torch.tensor([[0, 1, 0]]))
        >>> round(metric.compute(), 4)
        0.6667
    """

    name = "dice"

    def __init__(self, include_background: bool = True,
                 ignore_index: int | None = IGNORE_INDEX) -> None:
        super().__init__(beta=1.0, average="macro", ignore_index=ignore_index)
        self.include_background = include_background
        self.name = "dice"

    def compute(self) -> float:
        if self.true_positive is None:
            return float("nan")
        tp, fp, fn = self.true_positive, self.false_positive, self.false_negative
        if not self.include_background:
            tp, fp, fn = tp[1:], fp[1:], fn[1:]
        denominator = 2 * tp + fp + fn
        present = denominator > 0
        if not present.any():
            return float("nan")
        return float((2 * tp[present] / denominator[present]).mean())


class RocAuc(Metric):
    """Area under the ROC curve. Binary (two logits, or one) or one-vs-rest macro average.

    One-vs-rest (three or more classes) averages over the classes present in the targets: a
    class that never occurs (or, one-vs-rest, is all there is) has no AUC and is left out, where
    scikit-learn's ``roc_auc_score`` refuses the whole set. With one class only (binary), or
    with no item, the AUC is undefined and ``compute`` returns NaN, never 0.5.

    Targets equal to ``ignore_index`` (padding, void) count for nothing, as in
    :class:`Accuracy`: such an item is neither a positive nor a negative (multi-label: it is
    left out of that label's AUC only). ``ignore_index=None`` counts every target.

    Example:
        >>> import torch
        >>> metric = RocAuc()
        >>> logits = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.0, 1.0]])
        >>> metric.update(logits, torch.tensor([0, 1, 1, -100]))
        >>> metric.compute()
        1.0
    """

    name = "roc_auc"
    cat_states = ("scores", "targets")

    def __init__(self, multi_label: bool = False,
                 ignore_index: int | None = IGNORE_INDEX) -> None:
        self.multi_label, self.ignore_index = multi_label, ignore_index
        super().__init__()

    def _kept(self, targets: Tensor) -> Tensor:
        """Which of ``targets`` count: all but those equal to ``ignore_index``."""
        if self.ignore_index is None:
            return torch.ones(targets.shape, dtype=torch.bool)
        return targets != self.ignore_index

    def update(self, preds: Tensor, targets: Tensor) -> None:
        scores, targets = preds.detach().float().cpu(), targets.detach().cpu()
        self._check(scores, targets)
        self.scores.append(scores)
        self.targets.append(targets)

    def _check(self, scores: Tensor, targets: Tensor) -> None:
        """Refuse, with a :class:`~ember.TrainingError` naming the shapes or a value and what
        to use, targets this AUC cannot rank against ``scores``: of another shape (compute's
        IndexError after the whole pass), or values that are no class labels (a regression's
        targets scored a number of no meaning). On the CPU copies ``update`` keeps anyway."""
        one_score = scores.ndim == 1 or (scores.ndim == 2 and scores.shape[-1] == 1)
        if self.multi_label and scores.shape != targets.shape:
            raise TrainingError(
                f"{self.name}: multi_label=True scores one column per label against multi-hot "
                f"targets of the same shape, but the predictions have shape "
                f"{tuple(scores.shape)} and the targets {tuple(targets.shape)}; for one class "
                f"index per item use RocAuc()")
        if not self.multi_label and (scores.ndim > 2 or (
                scores.shape[0] if scores.ndim else 1) != targets.numel()):
            raise TrainingError(
                f"{self.name}: predictions of shape {tuple(scores.shape)} score "
                f"{scores.shape[0] if scores.ndim else 1} items but the targets of shape "
                f"{tuple(targets.shape)} hold {targets.numel()} labels; RocAuc() takes one "
                f"class index per item (and one row of scores per item: no sequences); for "
                f"multi-hot targets use RocAuc(multi_label=True)")
        if not targets.is_floating_point():
            return
        values = targets[self._kept(targets)]
        if self.multi_label or one_score:
            bad = values[(values != 0) & (values != 1)]
            wanted = "labels 0 or 1"
        else:
            bad = values[values != values.round()]
            wanted = "whole class indices"
        if bad.numel():
            raise TrainingError(
                f"{self.name}: a target is {bad[0].item():g}, but the area under the ROC curve "
                f"ranks scores against {wanted}; for regression targets use 'rmse', 'mae' or "
                f"'r2'")

    def compute(self) -> float:
        if not self.scores:
            return float("nan")
        scores, targets = torch.cat(self.scores), torch.cat(self.targets)
        if self.multi_label:
            kept = self._kept(targets)  # per (item, label)
            values = [_binary_auc(scores[kept[:, c], c], targets[kept[:, c], c])
                      for c in range(scores.shape[1])]
        else:
            targets = targets.reshape(-1)
            kept = self._kept(targets)  # one target per item: its row of scores goes with it
            scores, targets = scores[kept], targets[kept]
            if scores.ndim == 1 or scores.shape[-1] == 1:
                return _binary_auc(scores.reshape(-1), targets)
            if scores.shape[-1] == 2:
                return _binary_auc(scores[:, 1] - scores[:, 0], targets == 1)
            # log-probabilities in float64 rank items as the probabilities do, without float32
            # softmax's saturation at 1.0 that tied every confident item (margin over ~17)
            log_probabilities = scores.to(torch.float64).log_softmax(-1)
            values = [_binary_auc(log_probabilities[:, c], targets == c)
                      for c in range(scores.shape[-1])]
        values = [v for v in values if v == v]
        return sum(values) / len(values) if values else float("nan")


def _check_values_per_item(metric: Metric, preds: Tensor, targets: Tensor) -> None:
    """Refuse, with a :class:`~ember.TrainingError` naming both shapes, predictions that do not
    hold as many values per item as the targets: ``(N, 1)`` meets ``(N,)``, but ``(1, 2)``
    against ``(1,)`` broadcast to a silent wrong number, and ``(4, 2)`` against ``(4,)`` was
    torch's own size error. Reads the shapes only (no host synchronisation).

    Example:
        >>> import torch
        >>> _check_values_per_item(RMSE(), torch.zeros(3, 1), torch.zeros(3))
        >>> _check_values_per_item(RMSE(), torch.zeros(1, 2), torch.zeros(1))
        Traceback (most recent call last):
        ...
        ember.errors.TrainingError: rmse: predictions of shape (1, 2) and targets of shape (1,) ...
    """
    same_items = not (preds.ndim and targets.ndim) or preds.shape[0] == targets.shape[0]
    if preds.numel() != targets.numel() or not same_items:
        raise TrainingError(
            f"{metric.name}: predictions of shape {tuple(preds.shape)} and targets of shape "
            f"{tuple(targets.shape)} do not hold the same number of values per item; give the "
            f"model one output per target value (n_out), or targets of the predictions' shape")


def _flat(metric: Metric, preds: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    _check_values_per_item(metric, preds, targets)
    return preds.reshape(-1).to(torch.float64), targets.reshape(-1).to(torch.float64)


class RMSE(Metric):
    """Root mean squared error. Predictions hold as many values per item as the targets
    (``(N, 1)`` or ``(N,)`` for one target); any other shape is a :class:`~ember.TrainingError`.

    Example:
        >>> import torch
        >>> metric = RMSE()
        >>> metric.update(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0, 1.0]))
        >>> round(metric.compute(), 4)
        1.4142
    """

    name = "rmse"
    sum_states = ("squared_error", "count")
    higher_is_better = False

    def update(self, preds: Tensor, targets: Tensor) -> None:
        preds, targets = _flat(self, preds, targets)
        self._add("squared_error", ((preds - targets) ** 2).sum())
        self._add("count", targets.numel())

    def compute(self) -> float:
        return math.sqrt(self.share(self.squared_error, self.count))


class MAE(Metric):
    """Mean absolute error. Predictions hold as many values per item as the targets (see
    :class:`RMSE`).

    Example:
        >>> import torch
        >>> metric = MAE()
        >>> metric.update(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0, 1.0]))
        >>> metric.compute()
        1.0
    """

    name = "mae"
    sum_states = ("absolute_error", "count")
    higher_is_better = False

    def update(self, preds: Tensor, targets: Tensor) -> None:
        preds, targets = _flat(self, preds, targets)
        self._add("absolute_error", (preds - targets).abs().sum())
        self._add("count", targets.numel())

    def compute(self) -> float:
        return self.share(self.absolute_error, self.count)


#: R2 takes the targets as constant when their sum of squares about the mean is below this
#: share of their sum of squares: what is left there is the running sums' rounding, not spread
CONSTANT_TARGETS = 1e-12


class R2(Metric):
    """Coefficient of determination, ``1 - SS_res / SS_tot``.

    Targets that are all equal (a validation set of one value) have no spread to explain, and
    the ratio is undefined (0/0 or x/0). As scikit-learn's ``r2_score`` does by default
    (``force_finite=True``), R² is then 1.0 when the predictions are exact and 0.0 otherwise,
    so a monitored R² never turns NaN or -inf. Targets whose spread is within rounding of their
    size (``CONSTANT_TARGETS``) count as equal. NaN only when no item was added.

    With several targets per item (a multi-output regression's ``(N, k)``), R² is taken per
    target and averaged, as ``r2_score``'s default ``multioutput="uniform_average"``: pooled
    together, the targets' different means would count as variance the model explains.

    The sums are taken about a shift (each target's first value), not about 0: ``Σy² - (Σy)²/n``
    about 0 cancels away the spread of targets far from 0 (values near 10⁶ that vary by 1
    scored R² = 0.0, taken for constant, where the true value was 0.75).

    Example:
        >>> import torch
        >>> metric = R2()
        >>> metric.update(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([1.0, 2.0, 3.0]))
        >>> metric.compute()
        1.0
        >>> metric.reset()
        >>> metric.update(torch.tensor([[1.5], [2.5]]), torch.tensor([2.0, 2.0]))
        >>> metric.compute()  # constant targets, predictions not exact
        0.0
    """

    name = "r2"
    #: ``total`` and ``total_squared`` are the sums of ``y - shift`` and its square
    sum_states = ("residual", "total", "total_squared", "count")

    def reset(self) -> None:
        super().reset()
        self.shift: Tensor | None = None  # per target: its first value, set by the first batch

    def update(self, preds: Tensor, targets: Tensor) -> None:
        # one column per target: (N,) or (N, 1) is one, (N, k) is k; the sums are per column
        _check_values_per_item(self, preds, targets)
        columns = targets.reshape(targets.shape[0] if targets.ndim else 1, -1).to(torch.float64)
        preds = preds.reshape(columns.shape).to(torch.float64)
        if not columns.shape[0]:
            return
        if self.shift is None:
            self.shift = columns[0].detach().clone()  # constant targets then sum exact zeros
        centred = columns - self.shift
        self._add("residual", ((columns - preds) ** 2).sum(0))
        self._add("total", centred.sum(0))
        self._add("total_squared", (centred**2).sum(0))
        self._add("count", columns.shape[0])

    def synchronise(self) -> None:
        """Move every rank's sums to one shift (the first rank's that measured an item), then
        add them up: sums about different shifts cannot be added."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        common = self._first_measured(None if self.shift is None else self.shift.detach().cpu())
        if common is None:
            return  # no rank measured an item
        if self.shift is None:  # this rank measured nothing: zero sums of the others' shape
            for state in ("residual", "total", "total_squared"):
                setattr(self, state, torch.zeros_like(common, dtype=torch.float64))
        else:
            delta = (self.shift - common.to(self.shift.device)).to(self.total.device)
            self.total_squared = (self.total_squared + 2 * delta * self.total
                                  + self.count.to(delta.device) * delta**2)
            self.total = self.total + self.count.to(delta.device) * delta
        self.shift = common
        super().synchronise()

    def compute(self) -> float:
        if float(self.count) == 0:
            return float("nan")
        residual = self.residual
        sum_squares = self.total_squared - self.total**2 / self.count
        constant = sum_squares <= CONSTANT_TARGETS * self.total_squared
        scores = torch.where(constant, (residual == 0).to(torch.float64),
                             1 - residual / sum_squares.masked_fill(constant, 1.0))
        return float(scores.mean())


def default_metrics(target_kind: str, n_out: int) -> list[Metric]:
    """The metrics Ember reports by default for a kind of target.

    Example:
        >>> [m.name for m in default_metrics("regression", 1)]
        ['rmse', 'mae', 'r2']
    """
    if target_kind == "single_label":
        metrics: list[Metric] = [Accuracy()]
        if n_out == 2:
            metrics.append(RocAuc())
        elif n_out > 5:
            metrics.append(TopKAccuracy(k=3))
        return metrics
    if target_kind == "multi_label":
        return [AccuracyMulti(), FBeta(multi_label=True)]
    if target_kind == "regression":
        return [RMSE(), MAE(), R2()]
    return []
