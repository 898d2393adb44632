"""Small datasets for core tests (core ships no data; the domain plugins test on real data)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

import ember


def blobs(n: int = 512, features: int = 8, classes: int = 3, seed: int = 0, shift: float = 0.0,
          scale: float = 1.0) -> TensorDataset:
    """Gaussian clusters: class c centred at 2.5 * e_c (separable well above chance)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=generator)
    x = torch.randn(n, features, generator=generator)
    x[torch.arange(n), labels % features] += 2.5
    return TensorDataset(x * scale + shift, labels)


def blob_data(n: int = 512, bs: int = 32, **kwargs) -> ember.Data:
    """``blobs`` split 80/20 into an :class:`ember.Data`."""
    dataset = blobs(n, **kwargs)
    train_idx, valid_idx = ember.split_indices(n, 0.2, seed=0)
    x, y = dataset.tensors
    train = TensorDataset(x[train_idx], y[train_idx])
    valid = TensorDataset(x[valid_idx], y[valid_idx])
    train_dl, valid_dl, _ = ember.make_loaders(train, valid, bs=bs)
    return ember.Data.from_loaders(train_dl, valid_dl)


def regression_data(n: int = 512, bs: int = 32) -> ember.Data:
    """y = x · w + noise, 80/20."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=generator)
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:400], y[:400]),
                                               TensorDataset(x[400:], y[400:]), bs=bs)
    return ember.Data.from_loaders(train_dl, valid_dl)
