"""Every installed plugin — the built-in domains and the example — passes the conformance suite
that third-party authors run (ember.testing.check_plugin)."""

from __future__ import annotations

import importlib

import pytest

from ember.testing import check_plugin

PLUGINS = ["ember_vision.plugin", "ember_text.plugin", "ember_text.seq2seq.plugin",
           "ember_tabular.plugin", "ember_signal.plugin"]


@pytest.mark.parametrize("module", PLUGINS)
def test_plugin_conforms(module):
    report = check_plugin(importlib.import_module(module))
    assert report.ok and report.checked
