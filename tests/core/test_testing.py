"""ember.testing: the isolated plugin manager fixture and the conformance suite."""

from __future__ import annotations

import types

import pytest
import torch
from torch.utils.data import TensorDataset

import ember
from ember.testing import check_plugin

from .helpers import metric_plugin


def test_fixture_isolates_installed_plugins(ember_plugins):
    assert "signal" not in ember.get_registry().data_kinds
    ember_plugins.load_installed()
    assert "signal" in ember.get_registry().data_kinds


def test_fixture_registers_a_plugin_under_test(ember_plugins):
    import ember_signal.plugin

    ember_plugins.register(ember_signal.plugin, "signal_under_test")
    assert ember.get_registry().owner[("ember_data_kinds", "signal")] == "signal_under_test"


def test_a_conforming_plugin_passes():
    import ember_signal.plugin

    report = check_plugin(ember_signal.plugin)
    assert report.ok and report.checked == ["signal"]


def test_a_plugin_without_samples_or_with_bad_defaults_fails_with_every_reason():
    import ember_signal.data

    plugin = types.ModuleType("half_done")

    @ember.hookimpl
    def ember_data_kinds(register):
        register("signal", ember_signal.data.SignalData)

    plugin.ember_data_kinds = ember_data_kinds
    with pytest.raises(AssertionError, match="has no sample"):
        check_plugin(plugin)


def test_a_plugin_whose_predict_batch_refuses_no_items_fails_the_suite():
    # every built-in domain answers predict_batch([]) with [] (tabular raised "no rows to
    # predict on"); the suite holds third-party plugins to the same answer
    import ember_signal.data

    class RefusesNothing(ember_signal.data.SignalData):
        kind = "refuses_nothing"

        def predict_batch(self, model, items, device=None, **options):
            if not len(items):
                raise ember.DataError("no items to predict on")
            return super().predict_batch(model, items, device, **options)

    plugin = _signal_plugin(RefusesNothing, "refuses_nothing")
    report = check_plugin(plugin, raise_on_problem=False)
    assert report.problems == ["refuses_nothing: predict_batch([]) gave 'DataError: no items to "
                               "predict on', not [] (a batch of nothing has nothing to predict)"]


def test_a_broken_plugin_is_reported_by_the_suite():
    plugin = types.ModuleType("typo")

    @ember.hookimpl
    def ember_defualts(data):
        return None

    plugin.ember_defualts = ember_defualts
    report = check_plugin(plugin, raise_on_problem=False)
    assert not report.ok and "broken" in report.problems[0]


def test_check_plugin_leaves_the_sessions_plugins_as_they_were():
    import ember_signal.plugin

    ember.register_plugin(metric_plugin("session_plugin"))
    registry = ember.get_registry()
    assert check_plugin(ember_signal.plugin).ok
    assert ember.get_registry() is registry and "session_plugin_metric" in registry.metrics
    assert "session_plugin" in [info.name for info in ember.plugin_infos()]
    ember.unregister_plugin("unrelated")  # a reload still finds the plugin the session registered
    assert "session_plugin_metric" in ember.get_registry().metrics


def test_load_installed_keeps_the_plugins_the_test_registered(ember_plugins):
    ember_plugins.register(metric_plugin("under_test"))
    ember_plugins.load_installed()
    registry = ember.get_registry()
    assert "signal" in registry.data_kinds and "under_test_metric" in registry.metrics


def test_the_ember_plugins_fixture_puts_the_sessions_plugins_back(monkeypatch):
    # its teardown called reset_plugins(), which forgot a plugin a conftest had registered
    from ember.testing import ember_plugins

    ember.register_plugin(metric_plugin("session_wide"))
    fixture = ember_plugins.__wrapped__(monkeypatch)
    sandbox = next(fixture)
    assert "session_wide_metric" not in ember.get_registry().metrics  # isolated
    sandbox.register(metric_plugin("in_test"))
    assert "in_test_metric" in ember.get_registry().metrics
    with pytest.raises(StopIteration):
        next(fixture)
    metrics = ember.get_registry().metrics
    assert "session_wide_metric" in metrics and "in_test_metric" not in metrics


class _RoundsByBatchSize(torch.nn.Module):
    """A linear model whose float outputs move in the last bits with the batch size, as a BLAS
    matrix product does (another kernel for 1 row than for 8: 1e-7 apart on this machine)."""

    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_in, 3)

    def forward(self, x):
        return self.linear(x) + 1e-7 * (len(x) - 1)


def _float_regression_plugin() -> types.ModuleType:
    plugin = types.ModuleType("float_regression")

    @ember.hookimpl
    def ember_architectures(register):
        register("rounds_by_batch_size", _RoundsByBatchSize)

    @ember.hookimpl
    def ember_samples(register):
        def sample():
            generator = torch.Generator().manual_seed(0)
            x, y = torch.randn(64, 4, generator=generator), torch.randn(64, 3, generator=generator)
            train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:48], y[:48]),
                                                       TensorDataset(x[48:], y[48:]), bs=16)
            data = ember.Data.from_loaders(train_dl, valid_dl)
            return ember.Sample(data, items=list(x[:8]))
        register("tensor", sample)

    @ember.hookimpl
    def ember_defaults(data):
        return ember.Defaults(model=ember.create_model("rounds_by_batch_size", n_in=4))

    plugin.ember_architectures = ember_architectures
    plugin.ember_samples = ember_samples
    plugin.ember_defaults = ember_defaults
    return plugin


def test_float_predictions_that_differ_only_by_rounding_conform():
    # a forecaster's predict(item) and predict_batch(items)[0] run the model on batches of 1
    # and 8: equal up to float rounding, never bit for bit; that is not a broken plugin
    report = check_plugin(_float_regression_plugin(), raise_on_problem=False)
    assert report.problems == [] and report.checked == ["tensor"]


def test_float_predictions_that_really_differ_still_fail():
    from ember.testing import _same

    assert _same([[1.0, 2.0]], [[1.0, 2.0 + 1e-7]])
    assert not _same([[1.0, 2.0]], [[1.0, 2.001]])
    assert not _same(["cat"], ["dog"]) and not _same([1], [2])
    assert _same([ember.Prediction("cat", {"cat": 0.9, "dog": 0.1})],
                 [ember.Prediction("cat", {"cat": 0.9 + 1e-8, "dog": 0.1})])
    assert not _same([ember.Prediction("cat", {"cat": 0.9, "dog": 0.1})],
                     [ember.Prediction("dog", {"cat": 0.9, "dog": 0.1})])


def test_numpy_float_scalars_are_compared_up_to_rounding():
    # a plugin whose decode gives list(outputs[:, 0].numpy()) predicts NumPy float32 scalars,
    # neither Python floats nor arrays: they were compared bit for bit, so a batch of 1 against
    # a batch of 8 (1 ulp apart) failed check_plugin
    import numpy as np

    from ember.testing import _same

    value = np.float32(0.3)
    next_up = np.nextafter(value, np.float32(1))
    assert _same([value], [next_up]) and _same([value], [float(next_up)])
    assert _same(np.float64(0.3), 0.3 + 1e-9)
    assert not _same([value], [np.float32(0.31)]) and not _same(np.float32(0.3), 0.31)
    assert not _same(np.str_("cat"), "dog") and _same(np.int64(3), 3)
    assert not _same(np.float32(0.3), "0.3") and not _same(np.float32(0.3), None)


def test_dict_predictions_in_another_key_order_are_the_same():
    # dicts were compared key list to key list, so {"cat": .., "dog": ..} against the same
    # dict built in another order failed check_plugin; dict equality ignores the order
    from ember.testing import _same

    assert _same({"cat": 0.9, "dog": 0.1}, {"dog": 0.1, "cat": 0.9 + 1e-8})
    assert not _same({"cat": 0.9}, {"cat": 0.9, "dog": 0.1})
    assert not _same({"cat": 0.9, "dog": 0.1}, {"cat": 0.9, "bird": 0.1})


def test_a_plugin_whose_hook_lacks_the_marker_fails_the_suite_saying_so():
    plugin = types.ModuleType("unmarked")

    def ember_architectures(register):
        register("unmarked_mlp", ember.model.mlp)

    plugin.ember_architectures = ember_architectures
    with pytest.raises(AssertionError, match=r"ember_architectures\(\).*@ember\.hookimpl"):
        check_plugin(plugin)


def test_a_plugin_that_implements_no_hook_fails_the_suite_saying_so():
    with pytest.raises(AssertionError, match="implements no ember hook"):
        check_plugin(types.ModuleType("empty"))


def test_a_raising_ember_defaults_is_reported_with_its_error_not_as_none():
    # before: "signal: ember_defaults returned None for its own sample", though the hook had
    # raised; the plugin author was sent to look for a missing return, not at the error
    import ember_signal.plugin

    plugin = types.ModuleType("defaults_raise")

    @ember.hookimpl
    def ember_defaults(data):
        raise AttributeError("'SignalData' object has no attribute 'n_channel'")

    plugin.ember_defaults = ember_defaults
    for hook in ("ember_data_kinds", "ember_samples", "ember_architectures"):
        setattr(plugin, hook, getattr(ember_signal.plugin, hook))
    report = check_plugin(plugin, raise_on_problem=False)
    assert report.problems == [
        "signal: ember_defaults raised AttributeError: 'SignalData' object has no attribute "
        "'n_channel' (for its own sample, a SignalData)"]


def test_an_error_in_the_suite_names_the_step_that_raised_it():
    # before: "signal: KeyError: 'signals'", the same whether the sample factory, the
    # learner, training, export or ember.load had raised it
    import ember_signal.plugin

    plugin = types.ModuleType("factory_raises")

    @ember.hookimpl
    def ember_samples(register):
        def sample():
            raise KeyError("signals")
        register("signal", sample)

    plugin.ember_samples = ember_samples
    for hook in ("ember_data_kinds", "ember_defaults", "ember_architectures"):
        setattr(plugin, hook, getattr(ember_signal.plugin, hook))
    report = check_plugin(plugin, raise_on_problem=False)
    assert report.problems == ["signal: KeyError while calling the sample factory it registered "
                               "(ember_samples): 'signals'"]


def _signal_plugin(data_class: type, name: str) -> types.ModuleType:
    """A plugin of the signal domain whose data is ``data_class`` (a SignalData subclass whose
    ``kind`` is ``name``): the example plugin's hooks with one piece broken."""
    import ember_signal.data
    import ember_signal.models

    plugin = types.ModuleType(name)

    @ember.hookimpl
    def ember_data_kinds(register):
        register(name, data_class)

    @ember.hookimpl
    def ember_samples(register):
        def sample():
            signals, labels = ember_signal.data.sequential_fashion(64)
            return ember.Sample(data_class.from_arrays(signals, labels, bs=32),
                                items=list(signals[:8]))
        register(name, sample)

    @ember.hookimpl
    def ember_defaults(data):
        if not isinstance(data, data_class):
            return None
        return ember.Defaults(model=ember.create_model(
            "signal_cnn", n_channels=data.n_channels, n_out=data.n_out))

    @ember.hookimpl
    def ember_architectures(register):
        register("signal_cnn", ember_signal.models.signal_cnn)

    for hook in (ember_data_kinds, ember_samples, ember_defaults, ember_architectures):
        setattr(plugin, hook.__name__, hook)
    return plugin


def test_an_export_that_loses_the_preprocessing_fails_the_suite():
    # before: check_plugin compared the decoded labels only; a model trained for one batch
    # gives most items one label, so a from_state that forgot the training mean and std (the
    # loaded model predicts from raw values) passed, though every probability had changed
    import ember_signal.data

    class ForgetsStatistics(ember_signal.data.SignalData):
        kind = "forgets_statistics"

        @classmethod
        def from_state(cls, state):
            channels = len(state["mean"])
            return cls(None, None, classes=state["classes"], mean=[0.0] * channels,
                       std=[1.0] * channels, length=state["length"])

    ember.seed(1)  # a run whose loaded model happens to give the learner's eight labels
    report = check_plugin(_signal_plugin(ForgetsStatistics, "forgets_statistics"),
                          raise_on_problem=False)
    found = [problem for problem in report.problems if problem.startswith(
        "forgets_statistics: class probabilities after export → load differ")]
    assert len(found) == 1 and "state()" in found[0] and "from_state" in found[0]


def test_a_predict_batch_that_ignores_unknown_options_fails_the_suite():
    # before: an override that took **options and never passed them to check_options
    # passed, so learn.predict(item, prob=True) (a typo) answered a bare label without a word
    import ember_signal.data

    class SwallowsOptions(ember_signal.data.SignalData):
        kind = "swallows_options"

        def predict_batch(self, model, items, device=None, bs=256, *, probs=False, **options):
            return super().predict_batch(model, items, device, bs, probs=probs)

    report = check_plugin(_signal_plugin(SwallowsOptions, "swallows_options"),
                          raise_on_problem=False)
    assert report.problems == [
        "swallows_options: predict_batch(items, no_such_option=1) gave predictions instead of "
        "a TypeError; refuse the options predict_batch does not take with "
        "self.check_options(options, probs) (a typo such as prob=True must not be ignored)"]


def test_a_predict_batch_that_batches_wrongly_fails_the_suite():
    # before: the suite predicted 8 items with the default bs (256), one batch, so an
    # override whose own batching loop lost items at a batch boundary passed
    import ember_signal.data

    class LosesTheLastBatch(ember_signal.data.SignalData):
        kind = "loses_the_last_batch"

        def predict_batch(self, model, items, device=None, bs=256, *, probs=False, **options):
            self.check_options(options, probs)
            bs = ember.data.check_batch_size(bs)
            items = list(items)
            starts = range(0, max(len(items) - bs + 1, 1), bs)  # drops a last partial batch
            batches = (self.encode(items[start:start + bs]) for start in starts if items)
            return self.predict_encoded(model, batches, device, probs=probs)

    report = check_plugin(_signal_plugin(LosesTheLastBatch, "loses_the_last_batch"),
                          raise_on_problem=False)
    assert len(report.problems) == 1
    assert report.problems[0].startswith(
        "loses_the_last_batch: predict_batch(items, bs=3) gave 6 predictions for 8 items")
