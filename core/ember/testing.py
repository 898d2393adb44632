"""Testing tools for plugin authors: isolated plugin managers and a conformance suite.

Installed with ember as a pytest plugin (entry point ``pytest11``), so in any test suite:

- the fixture ``ember_plugins`` gives a plugin manager with only core's built-ins loaded
  (installed plugins do not leak into the test unless asked): ``ember_plugins.register(module)``
  adds one, ``ember_plugins.load_installed()`` loads the installed ones;
- :func:`check_plugin` verifies that a plugin's hooks return valid defaults, that a learner built
  from them trains for one batch on the plugin's samples, and that export → load → predict
  round-trips exactly.

Example::

    from ember.testing import check_plugin
    import my_plugin.plugin

    def test_conformance(ember_plugins):
        check_plugin(my_plugin.plugin)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.callbacks.base import Callback, Order
from ember.errors import CancelTrainException
from ember.plugins import (
    Defaults,
    Sample,
    _isolated,
    call_first,
    get_registry,
    plugin_infos,
    register_plugin,
    reset_plugins,
)

__all__ = ["ConformanceReport", "PluginSandbox", "check_plugin", "ember_plugins"]


class PluginSandbox:
    """An isolated plugin manager for one test (see the ``ember_plugins`` fixture).

    Example:
        >>> # def test_x(ember_plugins): ember_plugins.register(my_plugin)
    """

    def __init__(self, monkeypatch: Any) -> None:
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
        reset_plugins()

    def register(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin module or object to this test's manager."""
        return register_plugin(plugin, name)

    def load_installed(self) -> None:
        """Let the installed plugins load too (those this test registered stay)."""
        self.monkeypatch.delenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", raising=False)
        reset_plugins(registered=False)  # reload on next use, keeping what register() added


def _fixture() -> Any:
    import pytest

    @pytest.fixture
    def ember_plugins(monkeypatch: Any) -> Iterator[PluginSandbox]:
        """An isolated plugin manager: only core's built-ins unless a test registers more.
        The session's plugins (a conftest's ``register_plugin``) are put back afterwards."""
        with _isolated():
            yield PluginSandbox(monkeypatch)

    return ember_plugins


try:
    ember_plugins = _fixture()
except ImportError:  # pytest is not installed: check_plugin still works
    ember_plugins = None


@dataclass
class ConformanceReport:
    """What :func:`check_plugin` checked, per data kind.

    Example:
        >>> ConformanceReport("demo").ok
        True
    """

    plugin: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _OneBatch(Callback):
    order = Order.LAST

    def after_batch(self) -> None:
        if self.learn.training:
            raise CancelTrainException  # then validation runs as usual


#: how far apart two float predictions may be and still be the same: a model run on a batch
#: of 1 and on a batch of 8 (``predict`` and ``predict_batch``), or on another device, rounds
#: differently in the last bits of float32 (1e-7 relative), never by more than this
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-6


def _same(a: Any, b: Any) -> bool:
    """Equality of predictions: labels, strings and integers exactly, floats (also inside lists,
    dicts, tensors, arrays and NumPy scalars) up to float32 rounding (:data:`FLOAT_RTOL`,
    :data:`FLOAT_ATOL`)."""
    import numpy as np
    import torch

    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    # NumPy scalars (a decode's list(outputs[:, 0].numpy()) gives float32 ones) as arrays
    arrays = (torch.Tensor, np.ndarray, np.generic)
    if isinstance(a, arrays) or isinstance(b, arrays):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        numbers = a.dtype.kind in "biuf" and b.dtype.kind in "biuf"  # not a float vs a label
        if numbers and "f" in (a.dtype.kind, b.dtype.kind):
            return bool(np.allclose(a, b, rtol=FLOAT_RTOL, atol=FLOAT_ATOL))
        return bool(np.array_equal(a, b))
    if (isinstance(a, float) or isinstance(b, float)) and all(
            isinstance(value, (int, float)) for value in (a, b)):
        return math.isclose(a, b, rel_tol=FLOAT_RTOL, abs_tol=FLOAT_ATOL)
    return bool(a == b)


def _check_sample(kind: str, sample: Any, report: ConformanceReport, folder: Path,
                  step: list[str]) -> None:
    """Check one sample; ``step`` gets the name of each step as it starts, so an error that
    escapes is reported with the step that raised it."""
    import ember

    if not isinstance(sample, Sample):
        report.problems.append(f"{kind}: the sample factory must return ember.Sample")
        return
    data = sample.data
    defaults = call_first("ember_defaults", data=data)
    if not isinstance(defaults, Defaults):
        # call_first skips a hook that raised (or returned the wrong type) and lists the plugin
        # as broken with the reason: that reason is the problem, not the None it fell back to
        info = {i.name: i for i in plugin_infos()}.get(report.plugin)
        if info is not None and info.status == "broken":
            report.problems.append(f"{kind}: {info.reason} (for its own sample, a "
                                   f"{type(data).__name__})")
        else:
            report.problems.append(f"{kind}: ember_defaults returned {defaults!r} for its own "
                                   f"sample, a {type(data).__name__}; return ember.Defaults("
                                   f"model=...) for it")
        return
    step.append("building ember.learner(sample.data) from the defaults")
    learn = ember.learner(data, quiet=True, path=folder)
    step.append("training one batch (learn.fit)")
    learn.fit(1, cbs=[_OneBatch()])
    losses = learn.recorder.losses
    if not losses or not math.isfinite(losses[-1]):
        report.problems.append(f"{kind}: one training batch gave loss {losses[-1:]}")
    step.append("validating (learn.validate)")
    metrics = learn.validate()
    if "valid_loss" not in metrics or not math.isfinite(metrics["valid_loss"]):
        report.problems.append(f"{kind}: validate() gave {metrics}")
    if not sample.items:
        report.problems.append(f"{kind}: the sample has no items to predict")
        return
    step.append("predicting the sample's items (learn.predict_batch)")
    expected = learn.predict_batch(sample.items, **sample.options)
    step.append("exporting (learn.export)")
    path = learn.export(folder / f"{kind}.ember")
    step.append("loading the export (ember.load)")
    predictor = ember.load(path)
    step.append("predicting the sample's items with the loaded model (predict_batch)")
    got = predictor.predict_batch(sample.items, **sample.options)
    if not _same(got, expected):
        report.problems.append(f"{kind}: predictions after export → load differ: {got[:3]} vs "
                               f"{expected[:3]}")
    step.append("predicting one item with the loaded model (predict)")
    if not _same(predictor.predict(sample.items[0], **sample.options), expected[0]):
        report.problems.append(f"{kind}: predict(item) differs from predict_batch([item])")
    if "probs" in data.prediction_options() and "probs" not in sample.options:
        # labels alone hide a lost preprocessing: a model trained for one batch gives most
        # items one label whatever their scale, but not the same probabilities
        step.append("predicting class probabilities before and after export (probs=True)")
        before = learn.predict_batch(sample.items, probs=True, **sample.options)
        after = predictor.predict_batch(sample.items, probs=True, **sample.options)
        if not _same(after, before):
            report.problems.append(
                f"{kind}: class probabilities after export → load differ: {after[:1]} vs "
                f"{before[:1]}; from_state(state()) must rebuild everything encode and decode "
                f"replay (the training statistics, vocab, category maps): extend state() "
                f"with it and read it back in from_state")
    step.append("predicting with an option predict_batch does not take (no_such_option=1)")
    _check_refuses_unknown_options(kind, predictor, sample, report)
    step.append("predicting in batches of a few items (predict_batch(items, bs=...))")
    bs = 3 if len(sample.items) > 3 else 1  # full batches and a partial one where items allow
    batched = predictor.predict_batch(sample.items, **{**sample.options, "bs": bs})
    if len(batched) != len(sample.items):
        report.problems.append(
            f"{kind}: predict_batch(items, bs={bs}) gave {len(batched)} predictions for "
            f"{len(sample.items)} items; give one prediction per item, every batch of bs "
            f"items and the last, shorter one")
    elif not _same(batched, got):
        report.problems.append(f"{kind}: predict_batch(items, bs={bs}) differs from "
                               f"predict_batch(items): {batched[:3]} vs {got[:3]}")
    try:
        nothing: Any = predictor.predict_batch([], **sample.options)
    except Exception as error:
        nothing = f"{type(error).__name__}: {error}"
    if not (isinstance(nothing, list) and nothing == []):
        report.problems.append(f"{kind}: predict_batch([]) gave {nothing!r}, not [] (a batch of "
                               f"nothing has nothing to predict)")
    report.checked.append(kind)


def _check_refuses_unknown_options(kind: str, predictor: Any, sample: Sample,
                                   report: ConformanceReport) -> None:
    """``predict_batch`` must refuse an option it does not take with a ``TypeError``
    (:meth:`ember.Data.check_options`): a typo such as ``prob=True`` silently ignored gives a
    bare label where the user asked for probabilities."""
    try:
        predictor.predict_batch(sample.items[:1], **sample.options, no_such_option=1)
    except TypeError:
        return
    except Exception as error:
        report.problems.append(
            f"{kind}: predict_batch(items, no_such_option=1) raised {type(error).__name__}: "
            f"{error}, not a TypeError; refuse the options predict_batch does not take with "
            f"self.check_options(options, probs)")
        return
    report.problems.append(
        f"{kind}: predict_batch(items, no_such_option=1) gave predictions instead of a "
        f"TypeError; refuse the options predict_batch does not take with "
        f"self.check_options(options, probs) (a typo such as prob=True must not be ignored)")


def check_plugin(plugin: object, name: str | None = None, raise_on_problem: bool = True
                 ) -> ConformanceReport:
    """Run the conformance suite on a plugin module or object (not necessarily installed).

    Checks: it loads with no broken or unknown hook, and implements at least one hook (a
    function named like a hook must be marked with ``@ember.hookimpl``); its registered names
    are unique; it registers at least one sample per data kind it registers; for each sample,
    its defaults build a learner that trains one batch with a finite loss, validates, and
    exports to a file whose predictions after :func:`ember.load` equal the learner's (floats up
    to float32 rounding: :data:`FLOAT_RTOL`, :data:`FLOAT_ATOL`), and so do its class
    probabilities (``probs=True``, where the data gives them: labels alone hide a lost
    preprocessing), ``predict(item)`` equals ``predict_batch([item])[0]``, ``predict_batch``
    refuses an option it does not take with a ``TypeError``, gives the same predictions in
    batches of a few items (``bs=3``) as in one, and ``predict_batch([])`` is ``[]``. Raises
    ``AssertionError`` listing every problem (or returns the report with
    ``raise_on_problem=False``). The plugin is loaded in a registry of its own: the session's
    plugins are left as they were.

    Example:
        >>> # check_plugin(my_plugin.plugin)
    """
    previous = os.environ.get("EMBER_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["EMBER_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        with _isolated():  # the session's plugins are put back as they were
            report = _check(plugin, name)
    finally:
        if previous is None:
            os.environ.pop("EMBER_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["EMBER_DISABLE_PLUGIN_AUTOLOAD"] = previous
    if raise_on_problem and report.problems:
        raise AssertionError(f"plugin {report.plugin!r} does not conform:\n- " +
                             "\n- ".join(report.problems))
    return report


def _check(plugin: object, name: str | None) -> ConformanceReport:
    """The checks of :func:`check_plugin`, in a plugin registry of their own."""
    name = register_plugin(plugin, name)
    report = ConformanceReport(name)
    info = {i.name: i for i in plugin_infos()}[name]
    if info.status != "ok":
        report.problems.append(f"{name} is {info.status}: {info.reason}")
        return report
    if not info.hooks:
        report.problems.append(f"{name} implements no ember hook, so it contributes nothing: "
                               f"mark its hook functions with @ember.hookimpl (the hooks are "
                               f"listed in ember.hookspecs)")
        return report
    registry = get_registry()
    kinds = [k for (hook, k), owner in registry.owner.items()
             if hook == "ember_data_kinds" and owner == name]
    samples = {k: f for k, f in registry.samples.items()
               if registry.owner.get(("ember_samples", k)) == name}
    for kind in kinds:
        if kind not in samples:
            report.problems.append(f"data kind {kind!r} has no sample: implement ember_samples")
    with tempfile.TemporaryDirectory() as folder:
        for kind, factory in samples.items():
            step = ["calling the sample factory it registered (ember_samples)"]
            try:
                _check_sample(kind, factory(), report, Path(folder), step)
            except Exception as error:  # named with the step that raised it
                report.problems.append(f"{kind}: {type(error).__name__} while {step[-1]}: "
                                       f"{error}")
    return report
