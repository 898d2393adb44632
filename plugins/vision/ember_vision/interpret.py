"""Looking at a trained image model: test-time augmentation, confusion matrix, top losses.

Example:
    >>> # probs, targets = tta(learn)
    >>> # interp = Interpretation.from_learner(learn)
    >>> # interp.most_confused()[:3]; interp.plot_top_losses(9).savefig("top.png")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

import ember
from ember.metrics import IGNORE_INDEX
from ember.utils import check_whole, new_figure
from ember_vision.data import _check_shown_count, _label_text
from ember_vision.transforms import BatchAugment, RandomBatchAugment

__all__ = ["Interpretation", "tta"]


def tta(learn: ember.Learner, dl: Any = "valid", n: int = 4,
        augment: Callable[[Tensor], Tensor] | None = None, beta: float = 0.25
        ) -> tuple[Tensor, Tensor | None]:
    """Test-time augmentation: predictions (after the activation) averaged over ``n``
    augmented passes, blended with the plain prediction: ``(1 - beta) * augmented + beta *
    plain``. The default augmentation is mild (flip, crops of 85-100 % of the area, small
    shifts; no rotation or lighting). For a segmentation model the only augmentation is a
    left-right mirror, undone on the predicted masks (``n`` and ``augment`` do not apply).
    Returns ``(predictions, targets)`` like ``get_preds``: targets ``None`` for a test set
    without labels. ``n`` is a whole number of at least 1 and ``beta`` lies in [0, 1]
    (``beta=1``: the plain prediction alone); anything else is an :class:`ember.DataError`.

    Example:
        >>> # probs, targets = tta(learn); (probs.argmax(1) == targets).float().mean()
        >>> # probs, _ = tta(learn, "test")  # a competition's test images
    """
    check_whole(n, "tta's n", "the number of augmented passes; for the plain predictions use "
                "learn.get_preds()")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 1:
        raise ember.DataError(f"tta: beta (the plain prediction's share of the blend) must lie "
                              f"in [0, 1], got {beta!r}")
    # every pass reads ``dl`` as get_preds names it (a training loader in order, every item
    # once; a test set without labels as inputs only, its targets None); a loader given as it
    # is, in one fixed order, so that every pass's row ``i`` is the same item
    dl = _fixed(learn, dl)
    plain, targets = learn.get_preds(dl)
    if learn.data.target_kind == "single_label" and plain.ndim > 2:
        # masks: crops and shifts would move every pixel's prediction off its pixel, so the
        # only augmentation is a mirror, undone on the outputs (N, H, W, classes)
        mirrored = _activations(learn, dl, lambda images: images.flip(-1),
                                lambda outputs: outputs.flip(-2))
        return torch.lerp(mirrored, plain, beta), targets
    transform = augment or RandomBatchAugment(max_rotate=0, max_translate=0.05, scale=(1, 1),
                                              min_crop=0.85, lighting=0)
    augmenter = BatchAugment(transform, mean=learn.data.mean, std=learn.data.std)  # type: ignore[attr-defined]
    total = torch.zeros_like(plain)
    for _ in range(n):
        total += _activations(learn, dl, augmenter.augment)
    averaged = total / n
    return torch.lerp(averaged, plain, beta), targets


def _fixed(learn: ember.Learner, dl: Any) -> Any:
    """``dl`` when it names a split; a loader given as it is, read in one fixed order (a
    shuffling one through a loader of the same items in dataset order)."""
    return dl if dl is None or isinstance(dl, str) else learn.loader(dl, in_order=True)


def _row_items(loader: Any, rows: int) -> list[int]:
    """The dataset index of each of the ``rows`` rows ``get_preds`` gives for ``loader`` (read
    in a fixed order): the items in dataset order when it reads every item, else in the order
    it reads them (a subset of the items)."""
    try:
        size = len(loader.dataset)
        if loader.batch_size is not None:
            indices = [int(index) for index in loader.sampler]
        else:
            indices = [int(index) for batch in loader.batch_sampler for index in batch]
    except TypeError:  # no length or no indices: rows are the items as read
        return list(range(rows))
    if len(indices) != rows or sorted(indices) == list(range(size)):
        return list(range(rows))
    return indices


class _Augmented(ember.Callback):
    """Passes each evaluated batch's images through ``augment`` before the model and its
    outputs through ``restore`` after it."""

    order = ember.Order.FIRST

    def __init__(self, augment: Callable[[Tensor], Tensor],
                 restore: Callable[[Tensor], Tensor] | None) -> None:
        self.augment, self.restore = augment, restore

    def before_batch(self) -> None:
        images, *rest = self.learn.xb
        self.learn.xb = (self.augment(images), *rest)

    def after_pred(self) -> None:
        if self.restore is not None:
            self.learn.pred = self.restore(self.learn.pred)


def _activations(learn: ember.Learner, loader: Any, augment: Callable[[Tensor], Tensor],
                 restore: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """The model's predictions (after the activation) over ``loader``, each batch's images
    passed through ``augment`` and its outputs through ``restore``: ``get_preds``' own pass
    (precision, and under ``torchrun`` every rank's batches gathered, as for the plain
    predictions)."""
    augmented = _Augmented(augment, restore)
    learn.add_cbs([augmented])
    try:
        return learn.get_preds(loader)[0]
    finally:
        learn.remove_cbs([augmented])


def _item_losses(data: ember.Data, outputs: Tensor, targets: Tensor) -> Tensor:
    if data.target_kind == "single_label":  # per pixel for masks: mean over each item's pixels
        targets = targets.long()
        losses = F.cross_entropy(outputs.movedim(-1, 1), targets, reduction="none",
                                 ignore_index=IGNORE_INDEX)
        labelled = (targets != IGNORE_INDEX).reshape(len(losses), -1).sum(dim=1)
        return losses.reshape(len(losses), -1).sum(dim=1) / labelled.clamp(min=1)
    if data.target_kind == "multi_label":
        return F.binary_cross_entropy_with_logits(outputs, targets.float(),
                                                  reduction="none").mean(dim=1)
    return (outputs.reshape(len(outputs), -1) - targets.reshape(len(targets), -1)).pow(2).mean(1)


class Interpretation:
    """Per-item losses and predictions of a model on one loader, and views of them.

    Example:
        >>> # interp = Interpretation.from_learner(learn)
        >>> # interp.confusion_matrix(); interp.top_losses(5)
    """

    def __init__(self, data: ember.Data, loader: Any, outputs: Tensor, targets: Tensor) -> None:
        self.data, self.loader = data, loader
        self.outputs, self.targets = outputs, targets
        self.losses = _item_losses(data, outputs, targets)
        self.predictions = data.decode(outputs)
        # the dataset index of each row (a subset loader's rows are its own items)
        self.items = _row_items(loader, len(outputs))

    @classmethod
    def from_learner(cls, learn: ember.Learner, dl: Any = "valid") -> Interpretation:
        """Run ``learn``'s model over a loader (validation by default) and keep what it gives.

        Example:
            >>> # interp = Interpretation.from_learner(learn, "test")
        """
        # a training loader, or one given that shuffles, is read in order, every item once
        dl = _fixed(learn, dl)
        loader = learn.loader(dl)
        outputs, targets = learn.get_preds(dl, activation=False)  # read as get_preds names it
        if targets is None:
            raise ember.data.unlabelled_test_error(
                "an Interpretation compares predictions with targets", "interpret the "
                "validation set (Interpretation.from_learner(learn)), or use tta(learn, "
                "\"test\") or learn.get_preds(\"test\") for the test images' predictions")
        return cls(learn.data, loader, outputs, targets)

    def top_losses(self, k: int = 9) -> tuple[Tensor, Tensor]:
        """The ``k`` largest per-item losses and their item indices, largest first.

        Example:
            >>> # losses, indices = interp.top_losses(5)
        """
        return self.losses.topk(min(k, len(self.losses)))

    def confusion_matrix(self) -> np.ndarray:
        """Counts of (actual class, predicted class) for a single-label target; rows are actual.
        For segmentation masks every pixel counts, but void ones (``IGNORE_INDEX``).

        Example:
            >>> # interp.confusion_matrix().trace() / len(interp.targets)  # accuracy
        """
        if self.data.target_kind != "single_label":
            raise ember.DataError(
                f"a confusion matrix needs a single-label target, and this data's is "
                f"{self.data.target_kind}; use interp.top_losses() or interp.plot_top_losses() "
                f"to see the items the model gets most wrong")
        n = self.outputs.shape[-1]
        predicted = self.outputs.argmax(dim=-1).flatten()
        targets = self.targets.long().flatten()
        kept = targets != IGNORE_INDEX
        flat = targets[kept] * n + predicted[kept]
        return torch.bincount(flat, minlength=n * n).reshape(n, n).numpy()

    def most_confused(self, min_count: int = 1) -> list[tuple[Any, Any, int]]:
        """(actual, predicted, count) for off-diagonal cells with at least ``min_count``
        items, most frequent first.

        Example:
            >>> # interp.most_confused()[:3] -> [('Shirt', 'T-shirt/top', 14), ...]
        """
        matrix = self.confusion_matrix()
        names = self.data.classes or list(range(len(matrix)))
        pairs = [(names[a], names[p], int(matrix[a, p])) for a in range(len(matrix))
                 for p in range(len(matrix)) if a != p and matrix[a, p] >= min_count]
        return sorted(pairs, key=lambda pair: -pair[2])

    def plot_confusion_matrix(self, normalize: bool = False, ax: Any = None) -> Any:
        """A matplotlib figure of the confusion matrix (rows actual, columns predicted):
        a new one (:func:`ember.utils.new_figure`), or, with ``ax`` (a matplotlib
        ``Axes`` of yours), the figure of ``ax`` with the matrix drawn into it.

        Example:
            >>> # interp.plot_confusion_matrix().savefig("confusion.png")
        """
        matrix = self.confusion_matrix().astype(float)
        if normalize:
            matrix = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
        names = [str(c) for c in (self.data.classes or range(len(matrix)))]
        figure, axis = new_figure(ax=ax, figsize=(1 + 0.6 * len(names), 1 + 0.6 * len(names)))
        axis.imshow(matrix, cmap="Blues")
        axis.set_xticks(range(len(names)), names, rotation=90)
        axis.set_yticks(range(len(names)), names)
        axis.set_xlabel("predicted")
        axis.set_ylabel("actual")
        for row in range(len(names)):
            for column in range(len(names)):
                value = matrix[row, column]
                axis.text(column, row, f"{value:.2f}" if normalize else f"{int(value)}",
                          ha="center", va="center", fontsize=8,
                          color="white" if value > matrix.max() / 2 else "black")
        if ax is None:  # a figure of the caller's is theirs to lay out
            figure.tight_layout()
        return figure

    def plot_top_losses(self, k: int = 9) -> Any:
        """A figure of the ``k`` items with the largest loss, titled
        ``prediction / actual / loss / probability of the actual class``.

        Example:
            >>> # interp.plot_top_losses(9).savefig("top_losses.png")
        """
        _check_shown_count(k, "k")
        losses, indices = self.top_losses(k)
        dataset, collate = self.loader.dataset, self.loader.collate_fn
        images = collate([dataset[self.items[int(i)]] for i in indices])[0]
        if self.targets.ndim > 2 and self.data.target_kind == "single_label":  # masks
            predictions = [self.predictions[i] for i in indices.tolist()]
            figure = self.data.show_results(  # type: ignore[call-arg]
                (images, self.targets[indices]), predictions, n=len(predictions))
            for axis, loss in zip(figure.axes[::3], losses.tolist()):
                axis.set_title(f"loss {loss:.2f}", fontsize=9)
            return figure
        actual = self.data.decode_targets(self.targets[indices])
        titles = []
        probabilities = self.data.activation(self.outputs[indices])
        for row, (index, loss) in enumerate(zip(indices.tolist(), losses.tolist())):
            text = f"{_label_text(self.predictions[index])} / {_label_text(actual[row])}" \
                   f"\n{loss:.2f}"
            if self.data.target_kind == "single_label":
                text += f" / {float(probabilities[row, int(self.targets[index])]):.2f}"
            titles.append(text)
        return self.data.show_images(images, titles, n=len(titles))  # type: ignore[attr-defined]
