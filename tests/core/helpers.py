"""Small datasets for core tests (core ships no data; the domain plugins test on real data)."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn
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


def tag_data(n: int = 32, bs: int = 8) -> ember.Data:
    """Multi-label data: 4 features, 3 tags ("red", "green", "blue") drawn at random."""
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    y = (torch.rand(n, 3, generator=generator) > 0.5).float()
    loader = DataLoader(TensorDataset(x, y), batch_size=bs)
    return ember.Data.from_loaders(loader, loader, target_kind="multi_label",
                                   classes=["red", "green", "blue"])


def regression_data(n: int = 512, bs: int = 32) -> ember.Data:
    """y = x · w + noise, 80/20."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=generator)
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:400], y[:400]),
                                               TensorDataset(x[400:], y[400:]), bs=bs)
    return ember.Data.from_loaders(train_dl, valid_dl)


class PoisonAt(ember.Callback):
    """Turns the model's output to NaN on training batch ``iteration`` (0-based) of every
    epoch, and records the training batches that ran."""

    def __init__(self, iteration: int) -> None:
        self.iteration, self.seen = iteration, []

    def after_pred(self) -> None:
        if self.learn.training:
            self.seen.append(self.learn.iter)
            if self.learn.iter == self.iteration:
                self.learn.pred = self.learn.pred * float("nan")


def assert_nan_guard_restores(learn: ember.Learner, iteration: int, match: str = "restored",
                              cbs: list | None = None) -> PoisonAt:
    """Fit once, then fit again with a NaN on training batch ``iteration``: the guard must warn
    (``match``), stop after the first epoch and leave the weights of the first fit."""
    import pytest

    learn.fit(1, 1e-3)
    good = {k: v.clone() for k, v in learn.model.state_dict().items()}
    poison = PoisonAt(iteration)
    with pytest.warns(ember.DivergenceWarning, match=match):
        learn.fit(3, 1e-3, cbs=[poison, *(cbs or [])])
    assert learn.diverged and len(learn.recorder.values) == 1
    for key, value in learn.model.state_dict().items():
        assert torch.equal(value, good[key]), key
    return poison



class InterruptAfter(ember.Callback):
    """Stops a fit after epoch ``epoch`` (its first by default) once the Checkpoint has
    written it, as an interrupted run stops."""

    order = ember.Order.LAST + 1  # after the Checkpoint (Order.LAST) has written the epoch

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = epoch

    def after_epoch(self) -> None:
        if self.learn.epoch == self.epoch:
            raise ember.CancelFitException


def interrupted_run(folder: Path, interrupt_after: int | None) -> ember.Learner:
    """Four one-cycle epochs of a dropout MLP with checkpoints in ``folder``; with
    ``interrupt_after`` the fit stops after that epoch and a fresh learner, in another RNG
    state, resumes it from the checkpoint. Returns the learner that finished."""

    def model() -> nn.Module:
        return ember.create_model("mlp", n_in=8, n_out=3, hidden=[32], dropout=0.3)

    ember.seed(0)
    learn = ember.Learner(blob_data(), model(), quiet=True)
    stop = [] if interrupt_after is None else [InterruptAfter(interrupt_after)]
    learn.fit_one_cycle(4, 1e-2, cbs=[ember.Checkpoint(folder / "ckpt.pt"), *stop])
    if interrupt_after is not None:
        ember.seed(123)  # a different process state: the checkpoint must restore everything
        learn = ember.Learner(blob_data(), model(), quiet=True)
        learn.fit_one_cycle(4, 1e-2, resume=folder / "ckpt.pt")
    return learn


def metric_plugin(name: str) -> types.ModuleType:
    """A plugin module ``name`` whose one hook registers the metric ``<name>_metric``."""
    module = types.ModuleType(name)

    @ember.hookimpl
    def ember_metrics(register):
        register(f"{name}_metric", ember.metrics.Accuracy)

    module.ember_metrics = ember_metrics
    return module


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` (made if missing) as a folder no file can be created in, even by root
    (``chattr +i`` where permissions do not stop it); the test is skipped where neither works.
    Writable again afterwards."""
    import subprocess

    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    immutable = False
    try:
        (folder / ".probe").touch()
    except PermissionError:
        pass
    else:  # root: permissions do not stop it
        (folder / ".probe").unlink()
        immutable = subprocess.run(["chattr", "+i", str(folder)],
                                   capture_output=True).returncode == 0
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("no way to make a folder read-only here")
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
