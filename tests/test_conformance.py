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


SOURCES = ["plugins/vision/ember_vision", "plugins/text/ember_text",
           "plugins/tabular/ember_tabular", "examples/ember-signal/ember_signal"]


@pytest.mark.parametrize("source", SOURCES)
def test_plugins_import_only_public_core_api(source):
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / source
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module == "ember" or node.module.startswith("ember.")):
                assert not any(part.startswith("_") for part in node.module.split(".")), path
                assert not any(alias.name.startswith("_") for alias in node.names), path
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                    node.value.id == "ember"):
                assert not node.attr.startswith("_"), f"{path}: ember.{node.attr}"
