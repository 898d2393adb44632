"""The plugin manager: loads plugins from the entry-point group ``ember`` and keeps a registry.

Plugins load lazily, on the first call that needs them (``import ember`` stays fast). A plugin
that fails to import, declares an incompatible contract, has a function named like a hook but
not marked with ``@ember.hookimpl``, or raises inside a hook is recorded as broken with the
reason and skipped; core keeps working.

Environment controls:

- ``EMBER_DISABLE_PLUGIN_AUTOLOAD=1``: load no installed plugin (core's built-ins still load).
  ``1``, ``true``, ``yes`` and ``on`` disable; ``0``, ``false``, ``no``, ``off`` or empty (or
  unset) keep autoloading; any other value is a :class:`ember.PluginError` naming the variable,
  so a typo never silently picks one behaviour.
- ``EMBER_BLOCK_PLUGINS=name1,name2``: skip the named plugins, installed or given to
  :func:`register_plugin` (which refuses a blocked name with a :class:`ember.PluginError`; one
  blocked after it was registered is listed as ``blocked`` and not loaded).

Example:
    >>> import ember
    >>> names = [info.name for info in ember.plugin_infos()]
    >>> "builtin" in names
    True
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ember import hookspecs
from ember.errors import PluginError, TrainingError
from ember.utils import env_flag

if TYPE_CHECKING:
    import pluggy
    from torch import nn

    from ember.data import Data

__all__ = [
    "Defaults",
    "Demo",
    "PluginInfo",
    "Registry",
    "Sample",
    "create_model",
    "get_plugin_manager",
    "get_registry",
    "plugin_infos",
    "register_plugin",
    "reset_plugins",
    "unregister_plugin",
]

ENTRY_POINT_GROUP = "ember"
REGISTER_HOOKS = (
    "ember_data_kinds",
    "ember_architectures",
    "ember_callbacks",
    "ember_metrics",
    "ember_quickstart",
    "ember_samples",
)


@dataclass
class Defaults:
    """What a plugin proposes for a given :class:`ember.Data` (returned by ``ember_defaults``).

    ``model`` is a module or a zero-argument callable that builds one. Everything here can be
    overridden by the keyword arguments of :func:`ember.learner`.

    Example:
        >>> import torch
        >>> Defaults(model=torch.nn.Linear(3, 2)).metrics
        []
    """

    model: Any
    loss_func: Callable[..., Any] | None = None
    metrics: list[Any] = field(default_factory=list)
    cbs: list[Any] = field(default_factory=list)
    splitter: Callable[..., Any] | None = None
    lr: float | None = None
    #: alternative models ``fit_auto`` may race (name → zero-argument builder)
    candidates: dict[str, Callable[[], Any]] = field(default_factory=dict)


@dataclass
class Demo:
    """A quick-start demo a plugin contributes to ``ember quickstart``.

    ``run(smoke=False)`` trains on real bundled data and returns a dict of metric → value.

    Example:
        >>> demo = Demo(domain="tensor", name="noop", run=lambda smoke=False: {"accuracy": 1.0})
        >>> demo.run()
        {'accuracy': 1.0}
    """

    domain: str
    name: str
    run: Callable[..., dict[str, float]]
    description: str = ""


@dataclass
class Sample:
    """A small real dataset of one data kind and raw items to predict (``ember_samples``).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from ember.data import Data
        >>> ds = TensorDataset(torch.randn(8, 2), torch.randn(8))
        >>> data = Data.from_loaders(DataLoader(ds, batch_size=4), DataLoader(ds, batch_size=4))
        >>> len(Sample(data, items=list(ds.tensors[0][:2])).items)
        2
    """

    data: Data
    items: list[Any]
    #: keyword options for ``predict_batch`` (e.g. ``{"temperature": 0}`` for generation)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PluginInfo:
    """One installed plugin as ``ember plugins`` lists it.

    Example:
        >>> PluginInfo("vision", "0.1.0", ["ember_defaults"]).status
        'ok'
    """

    name: str
    version: str
    hooks: list[str] = field(default_factory=list)
    status: str = "ok"
    reason: str = ""
    module: str = ""
    package: str = ""


class Registry:
    """Everything the loaded plugins registered, by name.

    Example:
        >>> sorted(get_registry().architectures)[:1]  # doctest: +SKIP
        ['mlp']
    """

    def __init__(self) -> None:
        self.data_kinds: dict[str, type[Data]] = {}
        self.architectures: dict[str, Callable[..., nn.Module]] = {}
        self.architecture_descriptions: dict[str, str] = {}
        self.callbacks: dict[str, type] = {}
        self.metrics: dict[str, Callable[..., Any]] = {}
        self.demos: list[Demo] = []
        self.samples: dict[str, Callable[[], Sample]] = {}
        self.owner: dict[tuple[str, str], str] = {}

    def registrar(self, hook: str, plugin: str) -> Callable[..., None]:
        """The ``register`` callable handed to ``plugin`` for ``hook``."""
        table: dict[str, Any]

        def register(name: Any, value: Any = None, description: str = "") -> None:
            if hook == "ember_quickstart":
                if not isinstance(name, Demo):
                    raise PluginError(f"plugin {plugin!r} must register ember.Demo objects")
                self.demos.append(name)
                self.owner[(hook, f"{name.domain}/{name.name}")] = plugin
                return
            if not isinstance(name, str):
                raise PluginError(f"plugin {plugin!r}: {hook} calls register(name, value) with "
                                  f"a {type(name).__name__} {name!r} as the name; give the "
                                  f"name first, a str: register('my_name', value)")
            if value is None:
                raise PluginError(f"plugin {plugin!r}: {hook} registers {name!r} with no value; "
                                  f"give what it names too: register({name!r}, value)")
            if hook == "ember_data_kinds":
                _check_data_kind(plugin, name, value)
            else:
                _check_registered(hook, plugin, name, value)
            key = (hook, name)
            if key in self.owner and self.owner[key] != plugin:
                raise PluginError(
                    f"plugin {plugin!r} registers {name!r} which plugin "
                    f"{self.owner[key]!r} already registered; rename one of them"
                )
            self.owner[key] = plugin
            table[name] = value
            if hook == "ember_architectures":
                self.architecture_descriptions[name] = description

        table = self._table(hook)
        return register

    def _table(self, hook: str) -> dict[str, Any]:
        return {
            "ember_data_kinds": self.data_kinds,
            "ember_architectures": self.architectures,
            "ember_callbacks": self.callbacks,
            "ember_metrics": self.metrics,
            "ember_quickstart": {},
            "ember_samples": self.samples,
        }[hook]

    def forget(self, plugin: str) -> None:
        """Drop everything ``plugin`` registered (it broke part-way: none of it is trusted).

        Example:
            >>> registry = Registry()
            >>> registry.registrar("ember_metrics", "mine")("score", object)
            >>> registry.forget("mine"); registry.metrics
            {}
        """
        for hook, name in [key for key, owner in self.owner.items() if owner == plugin]:
            del self.owner[(hook, name)]
            self._table(hook).pop(name, None)
            if hook == "ember_architectures":
                self.architecture_descriptions.pop(name, None)
            if hook == "ember_quickstart":
                self.demos = [d for d in self.demos if f"{d.domain}/{d.name}" != name]


def _check_data_kind(plugin: str, name: str, value: Any) -> None:
    """A data class registered under ``name`` must say ``kind = name``: an export stores
    ``data.kind`` and :func:`ember.load` looks the class up by it, so a mismatch (a subclass
    that forgot ``kind`` inherits ``"tensor"``) would rebuild the wrong preprocessing."""
    from ember.data import Data

    if not (isinstance(value, type) and issubclass(value, Data)):
        raise PluginError(f"plugin {plugin!r} registers data kind {name!r} with {value!r}, "
                          f"which is not an ember.Data subclass")
    if value.kind != name:
        raise PluginError(
            f"plugin {plugin!r} registers {value.__name__} as data kind {name!r}, but its "
            f"class attribute kind is {value.kind!r}; set kind = {name!r} on the class "
            f"(exports store data.kind and ember.load looks the class up by it)")
    if not isinstance(inspect.getattr_static(value, "from_state"), classmethod):
        raise PluginError(
            f"plugin {plugin!r} registers {value.__name__} as data kind {name!r}, but its "
            f"from_state is not a classmethod (ember.load calls {value.__name__}.from_state"
            f"(state) on the class, to make the data); decorate it with @classmethod")


def _check_registered(hook: str, plugin: str, name: str, value: Any) -> None:
    """What ``register`` gets must be what core calls later: a builder (not a built model), a
    metric factory (not a metric), a callback class; refused at load, naming the plugin, rather
    than a TypeError deep in ``create_model`` or ``fit``."""
    from torch import nn

    from ember.callbacks.base import Callback

    if hook == "ember_architectures" and (isinstance(value, nn.Module) or not callable(value)):
        raise PluginError(f"plugin {plugin!r} registers architecture {name!r} as a "
                          f"{type(value).__name__}; register a builder, a function or class "
                          f"whose builder(**config) returns a new nn.Module")
    if hook == "ember_metrics" and not callable(value):
        raise PluginError(f"plugin {plugin!r} registers metric {name!r} as an instance of "
                          f"{type(value).__name__}; register its class or a zero-argument "
                          f"factory that returns a new ember.Metric")
    if hook == "ember_callbacks" and not (isinstance(value, type) and issubclass(value, Callback)):
        raise PluginError(f"plugin {plugin!r} registers callback {name!r} as {value!r}; "
                          f"register an ember.Callback subclass (its class, not an instance)")


class _State:
    lock = threading.RLock()
    manager: pluggy.PluginManager | None = None
    registry: Registry | None = None
    infos: dict[str, PluginInfo] = {}
    extra: dict[str, object] = {}


def _blocked() -> set[str]:
    return {n.strip() for n in os.environ.get("EMBER_BLOCK_PLUGINS", "").split(",") if n.strip()}


def _hooks_of(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(c.name for c in manager.get_hookcallers(plugin) or [])


def _check_contract(module: object) -> str:
    wanted = getattr(module, "EMBER_CONTRACT", hookspecs.CONTRACT_VERSION)
    if isinstance(wanted, bool) or not isinstance(wanted, int):  # no upgrade would help
        return (f"EMBER_CONTRACT is {wanted!r}, not a whole number; set it to the hook "
                f"contract the plugin was written for: EMBER_CONTRACT = "
                f"{hookspecs.CONTRACT_VERSION} (ember.hookspecs.CONTRACT_VERSION)")
    if wanted > hookspecs.CONTRACT_VERSION:
        return (
            f"written for hook contract {wanted!r}, this ember provides "
            f"{hookspecs.CONTRACT_VERSION}; upgrade ember"
        )
    return ""


def _unmarked_hooks(plugin: object) -> str:
    """Why ``plugin`` is broken when a function of it is named like a hook but is not marked
    with ``@ember.hookimpl`` (pluggy skips such a function without a word), or ``""``."""
    spec_marker = f"{hookspecs.hookspec.project_name}_spec"
    impl_marker = f"{hookspecs.hookimpl.project_name}_impl"
    hooks = [name for name, value in vars(hookspecs).items()
             if inspect.isfunction(value) and hasattr(value, spec_marker)]
    unmarked = [name for name in hooks if inspect.isroutine(getattr(plugin, name, None))
                and getattr(getattr(plugin, name), impl_marker, None) is None]
    if not unmarked:
        return ""
    functions, one = ", ".join(f"{name}()" for name in unmarked), len(unmarked) == 1
    return (f"{functions} {'is' if one else 'are'} named like an ember hook but not marked as "
            f"one, so ember would never call {'it' if one else 'them'}; decorate "
            f"{'it' if one else 'each'} with @ember.hookimpl")


def _hook_names() -> list[str]:
    spec_marker = f"{hookspecs.hookspec.project_name}_spec"
    return sorted(name for name, value in vars(hookspecs).items()
                  if inspect.isfunction(value) and hasattr(value, spec_marker))


def _failure(error: Exception) -> str:
    """The reason a plugin that failed to register is listed as broken: the error, on one line
    (``ember plugins`` prints it in a table), and for pluggy's validation errors what to write
    instead: the hook a misspelt name was probably meant to be, or the arguments a hook takes.

    Example:
        >>> import pluggy
        >>> _failure(pluggy.PluginValidationError(None, "unknown hook 'ember_default' in x"))
        ... # doctest: +ELLIPSIS
        "PluginValidationError: unknown hook 'ember_default' in x; did you mean ember_defaults? ..."
    """
    import difflib
    import re

    import pluggy

    reason = f"{type(error).__name__}: {error}"
    if not isinstance(error, pluggy.PluginValidationError):
        return reason
    reason = "; ".join(line.strip() for line in reason.splitlines() if line.strip())
    hooks = _hook_names()
    unknown = re.search(r"unknown hook '(\w+)'", str(error))
    if unknown:
        close = difflib.get_close_matches(unknown.group(1), hooks, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        return f"{reason}; {guess}the hooks are {', '.join(hooks)} (see ember.hookspecs)"
    hook = re.search(r"for hook '(\w+)'", str(error))
    if hook and hook.group(1) in hooks:
        name = hook.group(1)
        takes = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        return (f"{reason}; {name} takes ({takes}): an implementation may take any of these "
                f"arguments, by these names, and no other")
    return reason


def _loaded_already(manager: pluggy.PluginManager, plugin: object) -> str:
    """Why ``plugin`` cannot load a second time, under another name, or ``""``: pluggy refuses
    it ("Plugin already registered under a different name" and its whole table of plugins).
    The usual case is an installed plugin's module given to :func:`register_plugin` without
    its name.

    Example:
        >>> import pluggy, types
        >>> manager, module = pluggy.PluginManager("ember"), types.ModuleType("mine.plugin")
        >>> _ = manager.register(module, name="mine")
        >>> _loaded_already(manager, module)[:50]
        "its module 'mine.plugin' is loaded already, as plu"
    """
    other = manager.get_name(plugin)
    if other is None:
        return ""
    module = getattr(plugin, "__name__", None) or type(plugin).__name__
    return (f"its module {module!r} is loaded already, as plugin {other!r} (a module loads "
            f"once), so this adds nothing; leave it out, or give it that name: "
            f"ember.register_plugin(module, name={other!r})")


#: Ember's own plugin distributions: loaded before any other, so a name they register (the
#: ``image`` data kind, say) stays theirs, and another plugin that registers it too is the one
#: listed as broken
FIRST_PARTY = ("ember-vision", "ember-text", "ember-tabular")


def _load_order(entry: Any) -> tuple[bool, str, str]:
    """Where an entry point loads: Ember's own plugins first, then the others by name, so
    which of two plugins keeps a name they both register does not depend on the order of
    ``sys.path`` or of the files in site-packages."""
    distribution = entry.dist.name if entry.dist is not None else ""
    normalized = distribution.replace("_", "-").lower()
    # two distributions with one entry-point name: the first by distribution name loads
    return normalized not in FIRST_PARTY, entry.name, normalized


def _name_taken(infos: dict[str, PluginInfo], entry: Any, version: str) -> None:
    """List ``entry``, whose entry-point name a plugin loaded before it has (core's own, or
    another distribution's), as broken under ``"NAME (DISTRIBUTION)"``: a plugin manager
    holds one plugin per name, and the other was dropped without a word before."""
    package = entry.dist.name if entry.dist is not None else ""
    taken = infos[entry.name]
    holder = ("core's own plugin" if entry.name == "builtin"
              else f"the plugin of {taken.package or taken.module}, loaded first")
    key = f"{entry.name} ({package or entry.value})"
    infos[key] = PluginInfo(
        key, version, module=entry.value, package=package, status="broken",
        reason=f"its entry-point name {entry.name!r} is taken by {holder}; a name loads one "
               f"plugin, so this one is not loaded: rename its entry point in the group "
               f"'ember' (pyproject.toml, [project.entry-points.ember]) and reinstall it")


def _load() -> tuple[pluggy.PluginManager, Registry]:
    import importlib.metadata

    import pluggy

    manager = pluggy.PluginManager("ember")
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    builtin = importlib.import_module("ember.builtin")
    manager.register(builtin, name="builtin")
    version = importlib.metadata.version("ember") if _dist_exists("ember") else "0+unknown"
    infos["builtin"] = PluginInfo("builtin", version, _hooks_of(manager, builtin),
                                  module="ember.builtin", package="ember")
    blocked = _blocked()
    if not env_flag("EMBER_DISABLE_PLUGIN_AUTOLOAD", PluginError):
        for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                            key=_load_order):
            if entry.name in _State.extra:  # register_plugin's wins
                continue
            dist_version = entry.dist.version if entry.dist is not None else "?"
            if entry.name in infos:  # listed, never dropped without a word
                _name_taken(infos, entry, dist_version)
                continue
            info = PluginInfo(entry.name, dist_version, module=entry.value,
                              package=entry.dist.name if entry.dist is not None else "")
            infos[entry.name] = info
            if entry.name in blocked:
                info.status, info.reason = "blocked", "named in EMBER_BLOCK_PLUGINS"
                continue
            module = None
            try:
                module = entry.load()
                reason = _check_contract(module)
                if reason:
                    info.status, info.reason = "incompatible", reason
                    continue
                reason = _unmarked_hooks(module) or _loaded_already(manager, module)
                if reason:
                    info.status, info.reason = "broken", reason
                    continue
                manager.register(module, name=entry.name)
                manager.check_pending()
            except Exception as error:  # a broken third-party plugin must never break core
                info.status, info.reason = "broken", _failure(error)
                if manager.has_plugin(entry.name):
                    manager.unregister(name=entry.name)
                continue
            info.hooks = _hooks_of(manager, module)
    for name, plugin in _State.extra.items():
        info = PluginInfo(name, _registered_version(plugin),
                          module=getattr(plugin, "__name__", repr(plugin)))
        infos[name] = info
        if name in blocked:
            info.status, info.reason = "blocked", "named in EMBER_BLOCK_PLUGINS"
            continue
        reason = _check_contract(plugin)
        if reason:
            info.status, info.reason = "incompatible", reason
            continue
        reason = _unmarked_hooks(plugin) or _loaded_already(manager, plugin)
        if reason:
            info.status, info.reason = "broken", reason
            continue
        try:
            manager.register(plugin, name=name)
            manager.check_pending()
        except Exception as error:
            info.status, info.reason = "broken", _failure(error)
            if manager.has_plugin(name):
                manager.unregister(name=name)
            continue
        info.hooks = _hooks_of(manager, plugin)
    registry = Registry()
    for hook in REGISTER_HOOKS:
        for impl in getattr(manager.hook, hook).get_hookimpls():
            info = infos[impl.plugin_name]
            if info.status == "broken":  # broken in an earlier hook: it registers nothing more
                continue
            register = registry.registrar(hook, impl.plugin_name)
            # an implementation may accept any subset of the hook's arguments, even none
            arguments = {"register": register} if "register" in impl.argnames else {}
            try:
                reason = _returned_instead_of_registering(hook, impl.function(**arguments))
            except Exception as error:
                reason = f"{hook} raised {type(error).__name__}: {error}"
            if reason:
                info.status, info.reason = "broken", reason
    for name, info in infos.items():
        if info.status == "broken":  # what it registered before it raised goes too
            registry.forget(name)
            if manager.has_plugin(name):
                manager.unregister(name=name)
    _State.infos = infos
    return manager, registry


def _returned_instead_of_registering(hook: str, result: Any) -> str:
    """Why a ``register`` hook that returned its contributions (a dict, a list of pairs) is
    broken, or ``""``: core reads nothing a register hook returns, so they would be dropped
    without a word. ``None`` passes, and so does a list of ``None`` (``[register(...) ...]``)."""
    if result is None or (isinstance(result, (list, tuple))
                          and all(item is None for item in result)):
        return ""
    call = "register(ember.Demo(...))" if hook == "ember_quickstart" else "register(name, value)"
    return (f"{hook} returned a {type(result).__name__}, which ember ignores, so nothing was "
            f"registered; call {call} inside the hook for each one and return nothing")


def _registered_version(plugin: object) -> str:
    """The version of a plugin given to :func:`register_plugin`: its own ``__version__``, then
    its top-level package's (``ember new-plugin`` puts it in the package's ``__init__.py``,
    beside the ``plugin`` module that is registered), then the version of the installed
    distribution that provides that package, and ``"0+local"`` when none says.

    Example:
        >>> import types
        >>> _registered_version(types.ModuleType("nowhere_to_be_found.plugin"))
        '0+local'
    """
    import importlib.metadata
    import sys

    if getattr(plugin, "__version__", None) is not None:
        return str(plugin.__version__)  # type: ignore[attr-defined]
    module = getattr(plugin, "__name__", None)
    if not isinstance(module, str):  # an object, not a module: the module of its class
        module = type(plugin).__module__
    top = module.partition(".")[0]
    package = sys.modules.get(top)
    if package is not None and getattr(package, "__version__", None) is not None:
        return str(package.__version__)
    for distribution in importlib.metadata.packages_distributions().get(top, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(distribution)
    return "0+local"


def _dist_exists(name: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the plugin manager, loading plugins on first use.

    Example:
        >>> get_plugin_manager().has_plugin("builtin")
        True
    """
    with _State.lock:
        if _State.manager is None:
            _State.manager, _State.registry = _load()
        return _State.manager


def get_registry() -> Registry:
    """Return what the loaded plugins registered (architectures, data kinds, demos, …).

    Example:
        >>> "mlp" in get_registry().architectures
        True
    """
    get_plugin_manager()
    assert _State.registry is not None
    return _State.registry


def plugin_infos() -> list[PluginInfo]:
    """Every plugin found, loaded or not, with version, hooks and status.

    Example:
        >>> plugin_infos()[0].name
        'builtin'
    """
    get_plugin_manager()
    return list(_State.infos.values())


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Load a plugin module or object that is not installed (a notebook, a test, a plugin in
    development), through the same checks as installed ones. Returns its name.

    A name listed in ``EMBER_BLOCK_PLUGINS`` stays blocked: registering it raises
    :class:`ember.PluginError`, and so does the name ``builtin`` (core's own plugin). A plugin
    registered under an installed plugin's name replaces it (a development copy, say).

    Example:
        >>> import types
        >>> register_plugin(types.ModuleType("my_plugin"))
        'my_plugin'
        >>> unregister_plugin("my_plugin")
    """
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    if name == "builtin":
        raise PluginError("the name 'builtin' is core's own plugin; register yours under "
                          "another name: register_plugin(plugin, name=...)")
    if name in _blocked():
        raise PluginError(f"plugin {name!r} is named in EMBER_BLOCK_PLUGINS, so it is not "
                          f"registered; remove it from that variable to load it")
    with _State.lock:
        _State.extra[name] = plugin
        _State.manager, _State.registry = None, None
    return name


def unregister_plugin(name: str) -> None:
    """Forget a plugin given to :func:`register_plugin`.

    Example:
        >>> unregister_plugin("never_registered")
    """
    with _State.lock:
        _State.extra.pop(name, None)
        _State.manager, _State.registry = None, None


def reset_plugins(registered: bool = True) -> None:
    """Forget loaded plugins so the next call reloads the installed ones — after installing a
    plugin, or between tests. With ``registered`` (the default) those given to
    :func:`register_plugin` are forgotten too; without it they load again with the others.

    Example:
        >>> reset_plugins()
    """
    with _State.lock:
        _State.manager, _State.registry, _State.infos = None, None, {}
        if registered:
            _State.extra = {}


@contextlib.contextmanager
def _isolated() -> Iterator[None]:
    """Start from no loaded plugin and no registered one; put the session's back afterwards."""
    with _State.lock:
        saved = _State.manager, _State.registry, _State.infos, _State.extra
        _State.manager, _State.registry, _State.infos, _State.extra = None, None, {}, {}
    try:
        yield
    finally:
        with _State.lock:
            _State.manager, _State.registry, _State.infos, _State.extra = saved


def call_first(hook: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook, one implementation at a time; a raising plugin is skipped
    and recorded as broken.

    Example:
        >>> call_first("ember_rebuild_model", manifest={"model": {}}) is None
        True
    """
    manager = get_plugin_manager()
    caller = getattr(manager.hook, hook)
    for impl in reversed(caller.get_hookimpls()):
        arguments = {name: kwargs[name] for name in impl.argnames}
        try:
            result = impl.function(**arguments)
            _check_result(hook, result)
        except Exception as error:
            info = _State.infos.get(impl.plugin_name)
            if info is None or impl.plugin_name == "builtin":
                raise
            info.status, info.reason = "broken", f"{hook} raised {type(error).__name__}: {error}"
            continue
        if result is not None:
            return result
    return None


def _check_result(hook: str, result: Any) -> None:
    """Refuse what a ``firstresult`` hook must not return (a model where ``ember.Defaults``
    belongs, a dict), with what to return instead; ``None`` (not mine) always passes."""
    from torch import nn

    expected: dict[str, tuple[type, str, str]] = {
        "ember_defaults": (Defaults, "an ember.Defaults",
                           "ember.Defaults(model=...) for data it handles"),
        "ember_rebuild_model": (nn.Module, "a torch.nn.Module",
                                "an untrained torch.nn.Module for manifests it understands"),
    }
    if result is None or hook not in expected:
        return
    wanted, name, what = expected[hook]
    if not isinstance(result, wanted):
        raise PluginError(f"{hook} returned a {type(result).__name__}, not {name}; return "
                          f"{what}, None otherwise")
    if hook == "ember_defaults":
        problem = _defaults_problem(result)
        if problem:
            raise PluginError(f"ember_defaults returned ember.Defaults whose {problem}")


def _defaults_problem(defaults: Defaults) -> str:
    """What is wrong with the fields of a plugin's ``defaults`` that :func:`ember.learner`
    uses as they are, or ``""``: refused here, naming the plugin, rather than as the user's
    mistake ("model must be a torch.nn.Module", "'str' object is not callable") in a learner
    the user gave no model, loss or learning rate."""
    from torch import nn

    model = defaults.model
    if not isinstance(model, nn.Module):
        if not callable(model):
            return (f"model is a {type(model).__name__}; give an nn.Module (build it with "
                    f"ember.create_model(name, **config)) or a builder that takes no argument")
        try:
            inspect.signature(model).bind()
        except TypeError:
            return (f"model is a builder that needs arguments {inspect.signature(model)}; "
                    f"give an nn.Module sized to the data, or a builder that takes no argument")
        except ValueError:  # a builder whose signature Python cannot read: called as it is
            pass
    loss = defaults.loss_func
    if loss is not None and not callable(loss):
        return (f"loss_func is a {type(loss).__name__}; give a callable (a torch loss module or "
                f"function), or None for the loss that fits data.target_kind")
    lr = defaults.lr
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real)
                           or not lr > 0):
        return f"lr is {lr!r}; give a positive number, or None for the learner's default"
    return ""


def create_model(name: str, *positional: Any, **config: Any) -> nn.Module:
    """Build a registered architecture by name; the model remembers its name and config so
    that :meth:`ember.Learner.export` can rebuild it. The config goes by keyword (it is
    written into exported files by name); a config the architecture does not take is an
    :class:`ember.TrainingError` naming the architecture and the arguments it takes.

    Example:
        >>> model = create_model("mlp", n_in=4, n_out=2)
        >>> model.ember_config["name"]
        'mlp'
    """
    registry = get_registry()
    if name not in registry.architectures:
        known = ", ".join(sorted(registry.architectures)) or "none"
        raise PluginError(
            f"no architecture named {name!r}; installed: {known}. Install the plugin that "
            f"provides it (for example ember-vision)"
        )
    builder = registry.architectures[name]
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builder whose signature Python cannot read
        parameters = None
    if parameters is not None:
        takes = ", ".join(parameters) or "no arguments"
        if positional:
            raise TrainingError(
                f"architecture {name!r} takes its config by keyword, so that an exported file "
                f"can name it: create_model({name!r}, {', '.join(f'{p}=...' for p in parameters)})"
                f" (it takes {takes}); got {len(positional)} positional argument(s)")
        open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        unknown = [key for key in config if key not in parameters and not open_ended]
        try:
            inspect.signature(builder).bind(**config)
        except TypeError as error:
            reason = (f"it takes no argument {', '.join(map(repr, unknown))}" if unknown
                      else str(error))
            raise TrainingError(
                f"architecture {name!r} cannot be built with {sorted(config)}: {reason}. It "
                f"takes {takes}") from None
    elif positional:
        raise TrainingError(f"architecture {name!r} takes its config by keyword; got "
                            f"{len(positional)} positional argument(s)")
    model = builder(**config)
    model.ember_config = {  # type: ignore[assignment]
        "name": name,
        "config": config,
        "plugin": registry.owner.get(("ember_architectures", name), "builtin"),
    }
    return model
