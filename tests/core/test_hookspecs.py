"""The hook contract is documented: every hook in docs/plugins.md with its exact signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from ember import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("ember_"))


def documented() -> dict[str, str]:
    headings = re.findall(r"^### `(ember_\w+)(\(.*\) -> .*)`$", DOCS.read_text(), re.M)
    return dict(headings)


def signature_text(name: str) -> str:
    signature = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"({params}) -> {signature.return_annotation}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_in_the_docs_with_its_signature(hook):
    docs = documented()
    assert hook in docs, f"{hook} is missing from docs/plugins.md"
    assert docs[hook] == signature_text(hook)


def test_the_docs_name_no_hook_that_does_not_exist():
    assert set(documented()) == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_docstring_with_an_example(hook):
    doc = getattr(hookspecs, hook).__doc__
    assert doc and "Example" in doc and "versionadded" in doc


def test_deprecating_a_hook_argument_warns_plugins_through_pluggy():
    import types
    import warnings

    import pluggy

    import ember

    spec = types.ModuleType("future_specs")

    @hookspecs.hookspec(warn_on_impl_args={"size": DeprecationWarning(
        "ember_widget(size=...) is deprecated since 0.2; read data.size instead")})
    def ember_widget(data, size):
        """A hook whose ``size`` argument is being retired."""

    spec.ember_widget = ember_widget
    manager = pluggy.PluginManager("ember")
    manager.add_hookspecs(spec)
    old_style = types.ModuleType("old_style")

    @ember.hookimpl
    def ember_widget(data, size):
        return size

    old_style.ember_widget = ember_widget
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager.register(old_style)
    assert any("deprecated since 0.2" in str(w.message) for w in caught)


#: core's helpers for the rules every plugin follows, as docs/plugins.md names them
HELPERS = ["ember.split_label", "ember.warn_unseen_classes", "ember.first_unseen_class",
           "ember.item_number", "ember.utils.check_whole", "ember.data.check_batch_size",
           "ember.data.check_batch_like_training", "ember.Data.check_options"]


@pytest.mark.parametrize("helper", HELPERS)
def test_the_docs_point_plugin_authors_to_cores_shared_helpers(helper):
    # before: docs/plugins.md named none of them, so a plugin author wrote a copy of each
    # rule (and its message) that the built-in plugins share
    import importlib

    module, _, name = helper.rpartition(".")
    owner = (importlib.import_module(module) if module != "ember.Data"
             else importlib.import_module("ember").Data)
    assert callable(getattr(owner, name)), helper
    assert f"`{helper}" in DOCS.read_text(), f"{helper} is not in docs/plugins.md"
