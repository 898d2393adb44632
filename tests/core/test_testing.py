"""ember.testing: the isolated plugin manager fixture and the conformance suite."""

from __future__ import annotations

import types

import pytest

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
