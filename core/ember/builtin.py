"""Core's own plugin: registered through the same hooks as every other plugin.

It provides the ``tensor`` data kind (plain tensors from :meth:`ember.Data.from_loaders`), the
``mlp`` architecture with defaults for flat feature vectors, and Ember's metrics and callbacks
by name.

Example:
    >>> import ember
    >>> "accuracy" in ember.get_registry().metrics
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from ember import callbacks, metrics
from ember.data import Data
from ember.hookspecs import hookimpl
from ember.model import mlp
from ember.plugins import Defaults, create_model

EMBER_CONTRACT = 1


@hookimpl
def ember_data_kinds(register: Callable[[str, type[Data]], None]) -> None:
    register("tensor", Data)


@hookimpl
def ember_architectures(register: Callable[..., None]) -> None:
    register("mlp", mlp, description="BatchNorm/dropout MLP for flat feature vectors")


@hookimpl
def ember_metrics(register: Callable[..., None]) -> None:
    for factory in (metrics.Accuracy, metrics.ErrorRate, metrics.AccuracyMulti, metrics.RocAuc,
                    metrics.RMSE, metrics.MAE, metrics.R2, metrics.Dice):
        register(factory.name, factory)
    register("top_k_accuracy", metrics.TopKAccuracy)
    register("f1", metrics.FBeta)


@hookimpl
def ember_callbacks(register: Callable[..., None]) -> None:
    for cls in (callbacks.EarlyStopping, callbacks.SaveBest, callbacks.Checkpoint,
                callbacks.GradientAccumulation, callbacks.GradientClip, callbacks.NanGuard,
                callbacks.MixedPrecision, callbacks.OneCycle, callbacks.CosineSchedule,
                callbacks.PreciseBatchNorm):
        register(cls.__name__, cls)


@hookimpl(trylast=True)
def ember_defaults(data: Data) -> Defaults | None:
    if type(data) is not Data or data.train_dl is None:
        return None
    inputs = data.one_batch()[:-1]
    # an input that is not one tensor (a dict or tuple of them) is the user's model's to read
    if len(inputs) != 1 or not isinstance(inputs[0], Tensor) or inputs[0].ndim != 2 \
            or not inputs[0].is_floating_point():
        return None
    n_in = int(inputs[0].shape[1])
    model: Any = create_model("mlp", n_in=n_in, n_out=data.n_out)
    return Defaults(model=model, lr=3e-3)
