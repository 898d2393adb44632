"""Signals as data: arrays of shape (N, T) or (N, T, C), standardised per channel.

Example:
    >>> import numpy as np
    >>> data = SignalData.from_arrays(np.random.rand(40, 16), np.arange(40) % 2, bs=8)
    >>> data.n_channels, data.n_out
    (1, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

import ember

__all__ = ["SignalData", "sequential_fashion"]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def _as_signals(values: Any, name: str = "signals") -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ember.DataError(f"{name} must have shape (N, T) or (N, T, C), got {array.shape}")
    bad = ~np.isfinite(array).all(axis=(1, 2))
    if bad.any():
        raise ember.DataError(f"{name}: signal {int(np.argmax(bad))} contains NaN or inf; "
                              f"fill or drop it first")
    return array


class SignalData(ember.Data):
    """Labelled signals for classification; the per-channel mean and std of the training split
    are replayed at inference.

    Example:
        >>> # data = SignalData.from_arrays(signals, labels, valid_pct=0.2, seed=0)
    """

    kind = "signal"

    def __init__(self, train_dl: Any, valid_dl: Any, *, classes: Sequence[Any],
                 mean: Sequence[float], std: Sequence[float], length: int) -> None:
        super().__init__(train_dl, valid_dl, target_kind="single_label", classes=classes,
                         input_kind="signal")
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.n_channels, self.length = len(mean), length

    @classmethod
    def from_arrays(cls, signals: Any, labels: Sequence[Any], classes: Sequence[Any] | None = None,
                    valid_pct: float = 0.2, seed: int = 0, bs: int = 64) -> SignalData:
        """Build from arrays; labels may be names or integers (``classes`` names them).

        Example:
            >>> import numpy as np
            >>> SignalData.from_arrays(np.zeros((10, 8)), ["a", "b"] * 5, bs=4).classes
            ['a', 'b']
        """
        array = _as_signals(signals)
        labels = list(labels)
        if len(labels) != len(array):
            raise ember.DataError(f"{len(array)} signals but {len(labels)} labels; give one "
                                  f"label per signal")
        if classes is None:
            classes = sorted(set(labels), key=str)
            index = {c: i for i, c in enumerate(classes)}
            codes = np.array([index[label] for label in labels])
        else:
            codes = np.asarray(labels, dtype=np.int64)
            if codes.min() < 0 or codes.max() >= len(classes):
                raise ember.DataError(f"labels must be 0 … {len(classes) - 1} for "
                                      f"{len(classes)} classes, got {codes.min()} … {codes.max()}")
        train_idx, valid_idx = ember.split_indices(len(array), valid_pct, seed)
        # a class the random split put wholly in validation is kept, with a warning naming it
        ember.warn_unseen_classes([labels[i] for i in train_idx],
                                  [labels[i] for i in valid_idx], item="signal")
        mean = array[train_idx].mean(axis=(0, 1))
        std = array[train_idx].std(axis=(0, 1)) + 1e-6
        tensor = torch.from_numpy((array - mean) / std).transpose(1, 2).contiguous()
        targets = torch.from_numpy(codes.astype(np.int64))
        train_dl, valid_dl, _ = ember.make_loaders(
            TensorDataset(tensor[train_idx], targets[train_idx]),
            TensorDataset(tensor[valid_idx], targets[valid_idx]), bs=bs)
        return cls(train_dl, valid_dl, classes=list(classes), mean=mean.tolist(),
                   std=std.tolist(), length=array.shape[1])

    def encode(self, items: Sequence[Any]) -> tuple[Tensor, ...]:
        array = _stacked(items)
        if array.shape[2] != self.n_channels:
            raise ember.DataError(f"items have {array.shape[2]} channel(s), the model was "
                                  f"trained on {self.n_channels}")
        tensor = (torch.from_numpy(array) - self.mean) / self.std
        return (tensor.transpose(1, 2).contiguous(),)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "length": self.length}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SignalData:
        return cls(None, None, classes=state["classes"], mean=state["mean"], std=state["std"],
                   length=state["length"])


def _stacked(items: Sequence[Any]) -> np.ndarray:
    """Raw signals, each of shape (T,) or (T, C), as one (N, T, C) array; an item that is not
    finite numbers of that shape, or whose length or channels differ from the first item's, is
    a :class:`ember.DataError` naming it by its position among all the items given
    (:func:`ember.item_number`: ``predict_batch`` encodes them in chunks of ``bs``), so served,
    a 422 the client can act on, not a 500.

    Example:
        >>> _stacked([[1, 2, 3], [4, 5, 6]]).shape
        (2, 3, 1)
    """
    arrays = []
    for position, item in enumerate(items):
        number = ember.item_number(position)
        try:
            array = np.asarray(item, dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as error:
            raise ember.DataError(
                f"item {number} is not a signal ({error}); give T numbers, or T rows of C "
                f"numbers, as a list or an array") from None
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or not array.size:
            raise ember.DataError(f"item {number} has shape {array.shape}; give a signal of "
                                  f"shape (T,) or (T, C), T and C at least 1")
        if arrays and array.shape != arrays[0].shape:
            raise ember.DataError(
                f"item {number} has shape {array.shape}, item {ember.item_number(0)} "
                f"{arrays[0].shape}; the signals of one batch must have one length and one "
                f"number of channels (predict them in separate calls)")
        if not np.isfinite(array).all():
            raise ember.DataError(f"item {number} contains NaN or inf; fill or drop it first")
        arrays.append(array)
    if not arrays:
        raise ember.DataError("no items to predict; give at least one signal")
    return np.stack(arrays)


def sequential_fashion(n: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The bundled sample: Fashion-MNIST images as 28-step signals of 28 channels.

    Example:
        >>> signals, labels = sequential_fashion(5)
        >>> signals.shape, labels[0]
        ((5, 28, 28), 'Ankle boot')
    """
    with resources.files("ember_signal").joinpath("datasets/fashion_rows.npz").open("rb") as f:
        archive = np.load(f, allow_pickle=False)
        signals, labels = archive["signals"], archive["labels"]
    if n is not None:
        signals, labels = signals[:n], labels[:n]
    return signals.astype(np.float32) / 255.0, [FASHION_CLASSES[i] for i in labels]
