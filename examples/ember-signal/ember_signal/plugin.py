"""The hooks of ember-signal: everything Ember needs to know about the signal domain.

Example:
    >>> import ember
    >>> "signal_cnn" in ember.get_registry().architectures
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable

import ember
from ember_signal.data import SignalData, sequential_fashion
from ember_signal.models import signal_cnn

EMBER_CONTRACT = 1


@ember.hookimpl
def ember_data_kinds(register: Callable[..., None]) -> None:
    register("signal", SignalData)


@ember.hookimpl
def ember_architectures(register: Callable[..., None]) -> None:
    register("signal_cnn", signal_cnn, description="1-D CNN for multichannel signals")


@ember.hookimpl
def ember_defaults(data: ember.Data) -> ember.Defaults | None:
    if not isinstance(data, SignalData):
        return None
    model = ember.create_model("signal_cnn", n_channels=data.n_channels, n_out=data.n_out)
    return ember.Defaults(model=model, lr=3e-3)


def _sample() -> ember.Sample:
    signals, labels = sequential_fashion(300)
    return ember.Sample(SignalData.from_arrays(signals, labels, bs=32), items=list(signals[:8]))


@ember.hookimpl
def ember_samples(register: Callable[..., None]) -> None:
    register("signal", _sample)


def run_demo(smoke: bool = False) -> dict[str, float]:
    """Train the default 1-D CNN on the bundled sequential Fashion-MNIST rows."""
    ember.seed(0)
    signals, labels = sequential_fashion(300 if smoke else None)
    learn = ember.learner(SignalData.from_arrays(signals, labels, bs=32))
    start = time.perf_counter()
    learn.fit_one_cycle(1 if smoke else 6)
    metrics = learn.validate()
    return {"accuracy": metrics["accuracy"], "train_seconds": time.perf_counter() - start}


@ember.hookimpl
def ember_quickstart(register: Callable[..., None]) -> None:
    register(ember.Demo(domain="signal", name="sequential_fashion", run=run_demo,
                        description="1-D CNN on Fashion-MNIST rows read as 28-step signals"))
