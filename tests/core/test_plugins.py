from __future__ import annotations

import json
import textwrap
import types

import pytest
import torch

import ember
from ember.cli import main

from .helpers import metric_plugin


def install_fake_plugin(tmp_path, monkeypatch, name: str, source: str) -> None:
    """Make an installed distribution with an entry point in the group ``ember``."""
    package = tmp_path / f"{name}_pkg.py"
    package.write_text(textwrap.dedent(source))
    info = tmp_path / f"{name}_pkg-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-pkg\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(f"[ember]\n{name} = {name}_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ember.reset_plugins()


def data_kind_source(kind: str, class_name: str) -> str:
    """The source of a plugin that registers one data kind, ``kind``, for an empty
    :class:`ember.Data` subclass named ``class_name`` (for :func:`install_fake_plugin`)."""
    return f"""
        import ember

        class {class_name}(ember.Data):
            kind = "{kind}"

        @ember.hookimpl
        def ember_data_kinds(register):
            register("{kind}", {class_name})
    """


def infos() -> dict[str, ember.PluginInfo]:
    return {info.name: info for info in ember.plugin_infos()}


def test_builtin_plugin_registers_through_the_public_hooks():
    registry = ember.get_registry()
    assert "mlp" in registry.architectures and "tensor" in registry.data_kinds
    assert {"accuracy", "rmse", "roc_auc"} <= set(registry.metrics)
    assert infos()["builtin"].status == "ok"


def test_a_working_third_party_plugin_is_loaded(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "good", """
        import torch
        import ember

        @ember.hookimpl
        def ember_architectures(register):
            register("good_linear", lambda n_in, n_out: torch.nn.Linear(n_in, n_out))
    """)
    assert infos()["good"].status == "ok" and infos()["good"].version == "0.3.0"
    model = ember.create_model("good_linear", n_in=3, n_out=2)
    assert model.ember_config == {"name": "good_linear", "config": {"n_in": 3, "n_out": 2},
                                  "plugin": "good"}


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "broken", "raise ImportError('needs foo')\n")
    info = infos()["broken"]
    assert info.status == "broken" and "needs foo" in info.reason
    assert "mlp" in ember.get_registry().architectures  # core keeps working


def test_a_plugin_whose_hook_raises_is_reported(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "raising", """
        import ember

        @ember.hookimpl
        def ember_metrics(register):
            raise RuntimeError("boom")
    """)
    info = infos()["raising"]
    assert info.status == "broken" and "boom" in info.reason


def test_a_plugin_broken_in_one_hook_contributes_nothing(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "half", """
        import torch
        import ember

        @ember.hookimpl
        def ember_architectures(register):
            register("half_linear", lambda n_in, n_out: torch.nn.Linear(n_in, n_out))
            raise RuntimeError("boom after registering")

        @ember.hookimpl
        def ember_metrics(register):  # a later hook of the same plugin
            register("half_metric", ember.metrics.Accuracy)
    """)
    info = infos()["half"]
    assert info.status == "broken" and "boom after registering" in info.reason
    registry = ember.get_registry()
    assert "half_linear" not in registry.architectures and "half_metric" not in registry.metrics
    assert not [key for key, owner in registry.owner.items() if owner == "half"]
    with pytest.raises(ember.PluginError, match="no architecture named 'half_linear'"):
        ember.create_model("half_linear", n_in=2, n_out=2)
    assert "mlp" in registry.architectures  # the others' contributions stay


def test_a_plugin_with_an_unknown_hook_is_reported(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "typo", """
        import ember

        @ember.hookimpl
        def ember_architecturez(register):
            pass
    """)
    assert infos()["typo"].status == "broken"


def test_a_data_class_without_its_kind_is_refused_with_the_fix(tmp_path, monkeypatch):
    # a subclass that forgets ``kind`` inherits "tensor": its exports would load as plain
    # tensor data, without the plugin's preprocessing
    install_fake_plugin(tmp_path, monkeypatch, "nokind", """
        import ember

        class SeriesData(ember.Data):
            pass

        @ember.hookimpl
        def ember_data_kinds(register):
            register("series", SeriesData)
    """)
    info = infos()["nokind"]
    assert info.status == "broken"
    assert "kind is 'tensor'" in info.reason and "set kind = 'series'" in info.reason
    assert "series" not in ember.get_registry().data_kinds


def test_a_plugin_for_a_newer_contract_is_skipped(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "future", "EMBER_CONTRACT = 99\n")
    info = infos()["future"]
    assert info.status == "incompatible" and "upgrade ember" in info.reason


def test_environment_controls(tmp_path, monkeypatch):
    install_fake_plugin(tmp_path, monkeypatch, "good", "")
    monkeypatch.setenv("EMBER_BLOCK_PLUGINS", "good")
    ember.reset_plugins()
    assert infos()["good"].status == "blocked"
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    ember.reset_plugins()
    assert list(infos()) == ["builtin"]


def test_cli_lists_plugins_as_json(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    builtin = next(row for row in rows if row["name"] == "builtin")
    assert "ember_defaults" in builtin["hooks"] and "architectures:mlp" in builtin["registered"]


def test_cli_quickstart_names_what_to_install(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert main(["quickstart", "nosuchdomain"]) == 2
    assert "pip install" in capsys.readouterr().err


def test_import_does_not_load_plugins():
    import subprocess
    import sys

    code = "import ember, ember.plugins as p; print(p._State.manager is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("value", ["0", "off", "false", "No", ""])
def test_a_false_value_keeps_autoloading(tmp_path, monkeypatch, value):
    install_fake_plugin(tmp_path, monkeypatch, "good", "")
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", value)
    assert infos()["good"].status == "ok"


@pytest.mark.parametrize("value", ["1", "on", "TRUE", "yes"])
def test_a_true_value_disables_autoloading(tmp_path, monkeypatch, value):
    install_fake_plugin(tmp_path, monkeypatch, "good", "")
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", value)
    assert list(infos()) == ["builtin"]


def test_an_unknown_autoload_value_is_an_error_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "ture")
    with pytest.raises(ember.PluginError, match=r"EMBER_DISABLE_PLUGIN_AUTOLOAD='ture'.*1, true"):
        ember.plugin_infos()
    assert main(["plugins"]) == 1
    assert "EMBER_DISABLE_PLUGIN_AUTOLOAD='ture' is not understood" in capsys.readouterr().err


def test_a_blocked_name_stays_blocked_when_registered_by_hand(monkeypatch):
    plugin = metric_plugin("handmade")
    monkeypatch.setenv("EMBER_BLOCK_PLUGINS", "other, handmade")
    with pytest.raises(ember.PluginError, match="'handmade' is named in EMBER_BLOCK_PLUGINS"):
        ember.register_plugin(plugin)
    assert "handmade" not in infos()
    monkeypatch.delenv("EMBER_BLOCK_PLUGINS")
    ember.register_plugin(plugin)
    monkeypatch.setenv("EMBER_BLOCK_PLUGINS", "handmade")  # blocked after it was registered
    assert infos()["handmade"].status == "blocked"
    assert "handmade_metric" not in ember.get_registry().metrics


def test_registering_under_a_taken_name_never_unloads_another_plugin(tmp_path, monkeypatch):
    import types

    install_fake_plugin(tmp_path, monkeypatch, "good", """
        import torch
        import ember

        @ember.hookimpl
        def ember_architectures(register):
            register("installed_linear", lambda n_in, n_out: torch.nn.Linear(n_in, n_out))
    """)
    with pytest.raises(ember.PluginError, match="'builtin' is core's own plugin"):
        ember.register_plugin(types.ModuleType("mine"), name="builtin")
    assert infos()["builtin"].status == "ok" and "mlp" in ember.get_registry().architectures
    development = types.ModuleType("good_in_development")

    @ember.hookimpl
    def ember_architectures(register):
        register("development_linear", lambda n_in, n_out: torch.nn.Linear(n_in, n_out))

    development.ember_architectures = ember_architectures
    ember.register_plugin(development, name="good")
    info = infos()["good"]
    assert info.status == "ok" and info.module == "good_in_development"
    registry = ember.get_registry()
    assert "development_linear" in registry.architectures
    assert "installed_linear" not in registry.architectures and "mlp" in registry.architectures


def test_a_register_hook_that_takes_no_argument_is_called_not_broken():
    import types

    plugin = types.ModuleType("no_arguments")
    called = []

    @ember.hookimpl
    def ember_callbacks():  # accepts a subset (none) of the hook's arguments
        called.append(True)

    plugin.ember_callbacks = ember_callbacks
    ember.register_plugin(plugin)
    assert infos()["no_arguments"].status == "ok" and called == [True]


def _series_plugin(name: str, defaults=None):
    """A plugin registering the data kind 'series', with ``defaults`` as its ember_defaults."""
    import types

    class SeriesData(ember.Data):
        kind = "series"

    plugin = types.ModuleType(name)

    @ember.hookimpl
    def ember_data_kinds(register):
        register("series", SeriesData)

    plugin.ember_data_kinds = ember_data_kinds
    if defaults is not None:
        plugin.ember_defaults = ember.hookimpl(defaults)
    return plugin, SeriesData


def _series_data(data_class):
    from .helpers import blob_data

    blobs = blob_data()
    return data_class(blobs.train_dl, blobs.valid_dl, target_kind="single_label", n_out=3)


def test_learner_names_the_plugin_whose_defaults_raised(ember_plugins):
    # before: "no installed plugin has defaults ... install the plugin for this domain", when
    # the plugin was installed and had just raised (and been marked broken)
    def ember_defaults(data):
        raise ValueError("window is not set")

    plugin, data_class = _series_plugin("series_plugin", ember_defaults)
    ember_plugins.register(plugin)
    with pytest.raises(ember.TrainingError,
                       match=r"plugin 'series_plugin' raised in ember_defaults "
                             r"\(ValueError: window is not set\)"):
        ember.learner(_series_data(data_class))
    assert infos()["series_plugin"].status == "broken"


def test_learner_names_the_plugin_of_a_data_kind_it_has_no_defaults_for(ember_plugins):
    plugin, data_class = _series_plugin("series_plugin")
    ember_plugins.register(plugin)
    with pytest.raises(ember.TrainingError,
                       match=r"plugin 'series_plugin' registers series data .* implement "
                             r"ember_defaults"):
        ember.learner(_series_data(data_class))


def test_learner_names_the_data_kinds_plugin_not_another_that_raised(ember_plugins):
    # another plugin's ember_defaults raised for this data (it reads an attribute only its
    # own data has): the error blamed that plugin, not the one that registers the kind and
    # gave no defaults
    import types

    def ember_defaults(data):
        return ember.Defaults(model=data.window)  # AttributeError for any other data

    clumsy = types.ModuleType("clumsy_plugin")
    clumsy.ember_defaults = ember.hookimpl(ember_defaults)
    plugin, data_class = _series_plugin("series_plugin")
    ember_plugins.register(plugin)
    ember_plugins.register(clumsy)
    with pytest.raises(ember.TrainingError,
                       match=r"plugin 'series_plugin' registers series data .* implement "
                             r"ember_defaults") as raised:
        ember.learner(_series_data(data_class))
    assert "clumsy_plugin" in str(raised.value)  # still named, as a second problem
    assert infos()["clumsy_plugin"].status == "broken"


@pytest.mark.parametrize("answer", [lambda: torch.nn.Linear(2, 3), lambda: {"model": None}])
def test_defaults_of_the_wrong_type_name_the_plugin_and_what_to_return(ember_plugins, answer):
    # before: AttributeError: 'Linear' object has no attribute 'model', from inside learner()
    plugin, data_class = _series_plugin("series_plugin", lambda data: answer())
    ember_plugins.register(plugin)
    with pytest.raises(ember.TrainingError,
                       match=r"plugin 'series_plugin' raised in ember_defaults \(PluginError: "
                             r"ember_defaults returned a \w+, not an ember.Defaults; return "
                             r"ember.Defaults\(model=...\)"):
        ember.learner(_series_data(data_class))
    assert infos()["series_plugin"].status == "broken"


def test_a_rebuilt_model_of_the_wrong_type_names_the_plugin(ember_plugins):
    import types

    plugin = types.ModuleType("rebuilder")
    plugin.ember_rebuild_model = ember.hookimpl(lambda manifest: {"weights": []})
    ember_plugins.register(plugin)
    from ember.plugins import call_first

    assert call_first("ember_rebuild_model", manifest={"model": {}}) is None
    assert infos()["rebuilder"].status == "broken"
    assert infos()["rebuilder"].reason == (
        "ember_rebuild_model raised PluginError: ember_rebuild_model returned a dict, not a "
        "torch.nn.Module; return an untrained torch.nn.Module for manifests it understands, "
        "None otherwise")


def test_a_callback_is_addressable_by_its_registered_name(ember_plugins):
    # before: AttributeError: 'str' object has no attribute 'learn' (docs/plugins.md says
    # ember_callbacks makes a callback "addressable by name")
    import types

    class CountBatches(ember.Callback):
        def __init__(self):
            self.batches = 0

        def after_batch(self):
            self.batches += 1

    plugin = types.ModuleType("counting")
    plugin.ember_callbacks = ember.hookimpl(lambda register: register("CountBatches",
                                                                      CountBatches))
    ember_plugins.register(plugin)
    _, data_class = _series_plugin("series_plugin")
    learn = ember.learner(_series_data(data_class), model=torch.nn.Linear(8, 3),
                          cbs=["CountBatches"], quiet=True)
    learn.fit(1)
    counter = next(cb for cb in learn.cbs if isinstance(cb, CountBatches))
    assert counter.batches == len(learn.data.train_dl) + len(learn.data.valid_dl)
    with pytest.raises(ember.TrainingError, match=r"no callback named 'CountBatchs'; "
                                                  r"registered: \[.*'CountBatches'"):
        learn.fit(1, cbs=["CountBatchs"])


@pytest.mark.parametrize(("hook", "value", "message"), [
    ("ember_architectures", torch.nn.Linear(2, 3),
     r"registers architecture 'thing' as a Linear; register a builder"),
    ("ember_metrics", ember.metrics.Accuracy(),
     r"registers metric 'thing' as an instance of Accuracy; register its class"),
    ("ember_callbacks", ember.callbacks.NanGuard(),
     r"registers callback 'thing' as .*; register an ember.Callback subclass"),
])
def test_registering_an_instance_where_a_factory_belongs_is_refused_at_load(
        ember_plugins, hook, value, message):
    # before: the plugin loaded as ok, then create_model("thing") failed with a TypeError from
    # Linear.forward, metrics=["thing"] with "'Accuracy' object is not callable", and
    # cbs=["thing"] attached the one instance to every learner
    import types

    plugin = types.ModuleType("instances")
    setattr(plugin, hook, ember.hookimpl(lambda register: register("thing", value)))
    ember_plugins.register(plugin)
    info = infos()["instances"]
    assert info.status == "broken"
    assert info.reason.startswith(f"{hook} raised PluginError: plugin 'instances' ")
    import re

    assert re.search(message, info.reason), info.reason


def test_a_hook_function_without_the_marker_makes_the_plugin_broken(tmp_path, monkeypatch):
    # before, pluggy skipped the undecorated function: the plugin was listed "ok", registered
    # nothing, and "no architecture named 'plain_linear'" was all the author ever saw
    install_fake_plugin(tmp_path, monkeypatch, "plain", """
        import torch

        def ember_architectures(register):
            register("plain_linear", lambda n_in, n_out: torch.nn.Linear(n_in, n_out))
    """)
    info = infos()["plain"]
    assert info.status == "broken"
    assert "ember_architectures()" in info.reason and "@ember.hookimpl" in info.reason
    assert "mlp" in ember.get_registry().architectures  # core keeps working


def test_an_unmarked_hook_is_named_beside_marked_ones_in_a_registered_plugin(ember_plugins):
    plugin = types.ModuleType("half_marked")

    @ember.hookimpl
    def ember_metrics(register):
        register("half_marked_metric", ember.metrics.Accuracy)

    def ember_callbacks(register):
        register("HalfMarked", ember.GradientClip)

    def helper(register):  # not named like a hook: left alone
        pass

    plugin.ember_metrics, plugin.ember_callbacks, plugin.helper = (ember_metrics,
                                                                   ember_callbacks, helper)
    ember_plugins.register(plugin)
    info = infos()["half_marked"]
    assert info.status == "broken" and info.reason.startswith("ember_callbacks() is named like")
    assert "half_marked_metric" not in ember.get_registry().metrics


def test_create_model_names_the_architecture_and_its_arguments_when_the_config_is_wrong():
    # before: a bare TypeError from the builder ("mlp() got an unexpected keyword argument
    # 'n_outputs'"), or "create_model() takes 1 positional argument but 3 were given"
    with pytest.raises(ember.TrainingError,
                       match=r"architecture 'mlp'.*no argument 'n_outputs'.*takes n_in, n_out"):
        ember.create_model("mlp", n_in=20, n_outputs=3)
    with pytest.raises(ember.TrainingError, match=r"architecture 'mlp'.*missing.*'n_out'"):
        ember.create_model("mlp", n_in=20)
    assert ember.create_model("mlp", n_in=20, n_out=3)(torch.zeros(2, 20)).shape == (2, 3)
    with pytest.raises(ember.TrainingError, match=r"by keyword.*create_model\('mlp', n_in=\.\.\."):
        ember.create_model("mlp", 20, 3)


@pytest.mark.parametrize(("hook", "answer"), [
    ("ember_architectures", {"returned_linear": lambda n_in, n_out: torch.nn.Linear(n_in, n_out)}),
    ("ember_metrics", [("returned_metric", ember.metrics.Accuracy)]),
])
def test_a_register_hook_that_returns_its_things_instead_of_registering_is_broken(
        ember_plugins, hook, answer):
    # before, the plugin was listed "ok", registered nothing, and its author met only
    # "no architecture named 'returned_linear'" later, with no word about the hook
    plugin = types.ModuleType("returner")
    setattr(plugin, hook, ember.hookimpl(lambda register: answer))
    ember_plugins.register(plugin)
    info = infos()["returner"]
    assert info.status == "broken"
    assert info.reason.startswith(f"{hook} returned a {type(answer).__name__}")
    assert "register(" in info.reason and "return nothing" in info.reason
    assert "mlp" in ember.get_registry().architectures  # core keeps working


def test_a_registered_plugin_from_new_plugin_shows_its_packages_version(ember_plugins, tmp_path,
                                                                          monkeypatch):
    # before, `ember plugins` and the export manifest said "0+local": ember new-plugin puts
    # __version__ in the package's __init__.py, and only the registered module was read
    import importlib
    import sys

    from ember import scaffold

    folder = scaffold.new_plugin("gauge", tmp_path)
    monkeypatch.syspath_prepend(str(folder))
    try:
        plugin = importlib.import_module("ember_gauge.plugin")
        assert not hasattr(plugin, "__version__")
        ember.register_plugin(plugin, name="gauge")
        assert infos()["gauge"].version == "0.1.0"
    finally:
        for module in [m for m in sys.modules if m.startswith("ember_gauge")]:
            del sys.modules[module]


def test_a_registered_plugin_without_a_version_attribute_shows_its_distributions(
        ember_plugins, tmp_path, monkeypatch):
    package = tmp_path / "meter_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("")
    info = tmp_path / "meter_pkg-2.5.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: meter-pkg\nVersion: 2.5.0\n")
    (info / "top_level.txt").write_text("meter_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    try:
        ember.register_plugin(importlib.import_module("meter_pkg.plugin"), name="meter")
        assert infos()["meter"].version == "2.5.0"
    finally:
        for module in [m for m in sys.modules if m.startswith("meter_pkg")]:
            del sys.modules[module]
    ember.register_plugin(types.ModuleType("notebook_cell"), name="cell")
    assert infos()["cell"].version == "0+local"


def test_a_plugin_that_registers_a_name_of_embers_own_plugins_is_the_one_that_breaks(
        tmp_path, monkeypatch):
    # entry points loaded in sys.path order: a plugin earlier on the path took the 'image'
    # data kind, and the vision plugin was listed as broken
    pytest.importorskip("ember_vision")
    install_fake_plugin(tmp_path, monkeypatch, "aaa_images", data_kind_source("image", "Images"))
    assert infos()["vision"].status == "ok"
    assert infos()["aaa_images"].status == "broken"
    assert "already registered" in infos()["aaa_images"].reason
    from ember_vision import ImageData

    assert ember.get_registry().data_kinds["image"] is ImageData


def test_a_misspelt_hook_is_reported_with_the_hook_it_was_probably_meant_to_be(ember_plugins):
    # before: "unknown hook 'ember_default' in plugin <module 'misspelt'>", nothing on which
    # hooks exist
    plugin = types.ModuleType("misspelt")
    plugin.ember_default = ember.hookimpl(lambda data: None)
    ember_plugins.register(plugin)
    info = infos()["misspelt"]
    assert info.status == "broken"
    assert "did you mean ember_defaults?" in info.reason and "ember_samples" in info.reason


def test_a_hook_with_an_argument_it_does_not_have_is_reported_with_the_arguments_it_has(
        ember_plugins):
    # before: pluggy's three lines ("Argument(s) {'dataset'} are declared in the hookimpl but
    # can not be found in the hookspec"), which never said what the argument is called
    plugin = types.ModuleType("misnamed")
    plugin.ember_defaults = ember.hookimpl(lambda dataset: None)
    ember_plugins.register(plugin)
    info = infos()["misnamed"]
    assert info.status == "broken" and "\n" not in info.reason
    assert "{'dataset'}" in info.reason and "ember_defaults takes (data)" in info.reason


@pytest.mark.parametrize(("fields", "problem"), [
    ({"model": "mlp"}, "model is a str; give an nn.Module"),
    ({"model": lambda n_in: torch.nn.Linear(n_in, 3)},
     r"model is a builder that needs arguments \(n_in\)"),
    ({"model": torch.nn.Linear(8, 3), "loss_func": "cross_entropy"},
     "loss_func is a str; give a callable"),
    ({"model": torch.nn.Linear(8, 3), "lr": "3e-3"}, "lr is '3e-3'; give a positive number"),
])
def test_defaults_with_a_field_learner_cannot_use_name_the_plugin(ember_plugins, fields,
                                                                  problem):
    # before: "model must be a torch.nn.Module, got str", "str failed on model outputs ...:
    # 'str' object is not callable" or a TypeError from the builder: errors about a model, a
    # loss or a rate the user never gave, with no word of the plugin that gave them
    plugin, data_class = _series_plugin("series_plugin", lambda data: ember.Defaults(**fields))
    ember_plugins.register(plugin)
    with pytest.raises(ember.TrainingError,
                       match=r"plugin 'series_plugin' raised in ember_defaults \(PluginError: "
                             r"ember_defaults returned ember.Defaults whose " + problem):
        ember.learner(_series_data(data_class))
    assert infos()["series_plugin"].status == "broken"


def test_defaults_with_a_builder_and_a_numpy_rate_are_used(ember_plugins):
    import numpy as np

    plugin, data_class = _series_plugin("series_plugin", lambda data: ember.Defaults(
        model=lambda: torch.nn.Linear(8, 3), lr=np.float32(3e-3)))
    ember_plugins.register(plugin)
    learn = ember.learner(_series_data(data_class), quiet=True)
    assert isinstance(learn.model, torch.nn.Linear) and learn.lr == pytest.approx(3e-3)


def test_an_installed_plugins_module_registered_without_its_name_says_it_is_loaded_already(
        ember_plugins):
    # before: "ValueError: Plugin already registered under a different name:
    # ember_signal.plugin=<module ...>" followed by pluggy's whole table of plugins
    import ember_signal.plugin

    ember_plugins.load_installed()
    ember_plugins.register(ember_signal.plugin)
    info = infos()["ember_signal.plugin"]
    assert info.status == "broken" and info.reason == (
        "its module 'ember_signal.plugin' is loaded already, as plugin 'signal' (a module loads "
        "once), so this adds nothing; leave it out, or give it that name: "
        "ember.register_plugin(module, name='signal')")
    assert infos()["signal"].status == "ok"
    assert ember.get_registry().owner[("ember_data_kinds", "signal")] == "signal"


def test_learner_on_data_of_a_plugin_not_loaded_says_how_to_register_one(ember_plugins):
    # before: "no installed plugin has defaults for SeriesData (series data); ... install the
    # plugin", to the author of a plugin not installed yet who had not registered it in this
    # process
    _, data_class = _series_plugin("series_plugin")
    with pytest.raises(ember.TrainingError,
                       match=r"no loaded plugin registers its kind 'series'; a plugin that is "
                             r"not installed loads with ember.register_plugin\(module"):
        ember.learner(_series_data(data_class))


@pytest.mark.parametrize("contract", ["1", 1.0, True])
def test_a_contract_that_is_no_whole_number_says_so_not_upgrade_ember(ember_plugins, contract):
    # before: "written for hook contract '1', this ember provides 1; upgrade ember"
    plugin = types.ModuleType("odd_contract")
    plugin.EMBER_CONTRACT = contract
    ember_plugins.register(plugin)
    info = infos()["odd_contract"]
    assert info.status == "incompatible" and "upgrade" not in info.reason
    assert info.reason.startswith(f"EMBER_CONTRACT is {contract!r}, not a whole number; set it "
                                  f"to the hook contract the plugin was written for: "
                                  f"EMBER_CONTRACT = 1")


def _distribution(folder, package: str, entry: str, metric: str) -> None:
    """An installed distribution ``package`` in ``folder`` whose entry point ``entry`` loads a
    module registering the metric ``metric``."""
    folder.mkdir()
    module = package.replace("-", "_")
    (folder / f"{module}.py").write_text(textwrap.dedent(f"""
        import ember

        @ember.hookimpl
        def ember_metrics(register):
            register({metric!r}, ember.metrics.Accuracy)
    """))
    info = folder / f"{module}-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(f"[ember]\n{entry} = {module}\n")


@pytest.mark.parametrize("first_on_path", ["alpha", "beta"])
def test_two_distributions_with_one_entry_point_name_list_the_one_not_loaded(
        tmp_path, monkeypatch, first_on_path):
    # before: the second was dropped without a word (not even in `ember plugins`), and which
    # one loaded followed the order of sys.path
    _distribution(tmp_path / "alpha", "alpha-pkg", "shared", "alpha_metric")
    _distribution(tmp_path / "beta", "beta-pkg", "shared", "beta_metric")
    for name in sorted(["alpha", "beta"], key=lambda name: name == first_on_path):
        monkeypatch.syspath_prepend(str(tmp_path / name))  # the last prepended comes first
    ember.reset_plugins()
    listed = infos()
    assert listed["shared"].package == "alpha-pkg" and listed["shared"].status == "ok"
    assert listed["shared (beta-pkg)"].status == "broken"
    assert listed["shared (beta-pkg)"].reason.startswith(
        "its entry-point name 'shared' is taken by the plugin of alpha-pkg, loaded first")
    metrics = ember.get_registry().metrics
    assert "alpha_metric" in metrics and "beta_metric" not in metrics


@pytest.mark.parametrize(("call", "reason"), [
    (lambda register: register("forgetful"),
     "ember_metrics registers 'forgetful' with no value; give what it names too: "
     "register('forgetful', value)"),
    (lambda register: register(ember.metrics.Accuracy),
     "ember_metrics calls register(name, value) with a type <class 'ember.metrics.Accuracy'> "
     "as the name; give the name first, a str"),
])
def test_a_register_call_without_its_name_or_value_says_which(ember_plugins, call, reason):
    # before: "register(name, value) needs a str name" for both, the name a str in the first
    plugin = types.ModuleType("careless")
    plugin.ember_metrics = ember.hookimpl(lambda register: call(register))
    ember_plugins.register(plugin)
    info = infos()["careless"]
    assert info.status == "broken" and reason in info.reason


def test_a_data_class_whose_from_state_is_no_classmethod_is_refused_with_the_fix(ember_plugins):
    # before: the plugin loaded, and each export failed with "from_state() missing 1 required
    # positional argument: 'state'" and advice to override from_state, which it did
    class SeriesData(ember.Data):
        kind = "series"

        def from_state(cls, state):
            return cls(None, None, target_kind=state["target_kind"], n_out=state["n_out"])

    plugin = types.ModuleType("no_classmethod")
    plugin.ember_data_kinds = ember.hookimpl(lambda register: register("series", SeriesData))
    ember_plugins.register(plugin)
    info = infos()["no_classmethod"]
    assert info.status == "broken" and info.reason.endswith(
        "registers SeriesData as data kind 'series', but its from_state is not a classmethod "
        "(ember.load calls SeriesData.from_state(state) on the class, to make the data); "
        "decorate it with @classmethod")
    assert "series" not in ember.get_registry().data_kinds


def test_an_installed_entry_point_named_builtin_is_listed_as_not_loaded(tmp_path, monkeypatch):
    # before: skipped without a word; core's own plugin has that name
    install_fake_plugin(tmp_path, monkeypatch, "builtin", """
        import ember

        @ember.hookimpl
        def ember_metrics(register):
            register("impostor_metric", ember.metrics.Accuracy)
    """)
    listed = infos()
    assert listed["builtin"].package == "ember"
    assert listed["builtin (builtin-pkg)"].status == "broken"
    assert listed["builtin (builtin-pkg)"].reason.startswith(
        "its entry-point name 'builtin' is taken by core's own plugin")
    assert "impostor_metric" not in ember.get_registry().metrics
