"""The plugin's registration: data kind, architecture, defaults and the quick-start demo."""

from __future__ import annotations

import ember
from ember_tabular import plugin


def test_plugin_is_loaded_and_registers_its_parts() -> None:
    infos = {info.name: info for info in ember.plugin_infos()}
    assert infos["tabular"].status == "ok", infos["tabular"].reason
    registry = ember.get_registry()
    assert registry.data_kinds["tabular"].__name__ == "TabularData"
    assert "tabular_mlp" in registry.architectures
    assert any(d.domain == "tabular" and d.name == "diamonds" for d in registry.demos)
    assert plugin.EMBER_CONTRACT == 1


def test_defaults_only_answer_for_tabular_data() -> None:
    assert plugin.ember_defaults(data=object()) is None


def test_quickstart_demo_smoke_trains_on_bundled_diamonds() -> None:
    demo = next(d for d in ember.get_registry().demos if d.domain == "tabular")
    metrics = demo.run(smoke=True)
    assert metrics["rmse"] < 0.6, metrics  # log(price) spreads with std ~1.0
