"""Every hook an Ember plugin can implement, in one module.

A plugin is a module (or object) with functions marked by :data:`ember.hookimpl`, exposed to
Ember through an entry point in the group ``ember``::

    # pyproject.toml of the plugin
    [project.entry-points.ember]
    mydomain = "my_package.plugin"

or, for a plugin that is not installed (a notebook, a plugin in development), registered for
the running process: ``ember.register_plugin(my_package.plugin, name="mydomain")``.

A hook implementation may accept any subset of a hook's arguments, so adding an argument later
breaks no plugin. Hooks that receive ``register`` let a plugin contribute several named things;
everything registered is listed by ``ember plugins``. Core's own defaults are registered through
these same hooks (``ember.builtin``).

A plugin module may set ``EMBER_CONTRACT = 1`` to declare the hook contract it was written for;
a plugin written for a newer contract than this core is reported as incompatible and skipped.

Example:
    >>> import ember
    >>> @ember.hookimpl
    ... def ember_architectures(register):
    ...     register("tiny_mlp", lambda n_in, n_out: __import__("torch").nn.Linear(n_in, n_out))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ember.data import Data
    from ember.plugins import Defaults, Demo

__all__ = ["CONTRACT_VERSION", "hookimpl", "hookspec"]

#: Version of the hook contract defined in this module.
CONTRACT_VERSION = 1

hookspec = pluggy.HookspecMarker("ember")
#: Marker for a plugin's hook implementations: ``@ember.hookimpl``.
hookimpl = pluggy.HookimplMarker("ember")


@hookspec
def ember_data_kinds(register: Callable[[str, type[Data]], None]) -> None:
    """Register the :class:`ember.Data` subclasses this plugin provides.

    Call ``register(kind, data_class)`` once per class; the class's ``kind`` attribute must be
    the same name (a mismatch is refused). ``kind`` is the name stored in export manifests;
    ``data_class.from_state(state)`` must rebuild the inference-side preprocessing.

    Example::

        @ember.hookimpl
        def ember_data_kinds(register):
            register("image", ImageData)

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def ember_defaults(data: Data) -> Defaults | None:
    """Return the defaults (model, loss, metrics, callbacks) that fit ``data``, or ``None``.

    Called by :func:`ember.learner`. Return ``None`` for data this plugin does not handle; the
    first plugin that returns a :class:`ember.Defaults` wins, and plugins are asked in the
    reverse of their load order: those given to :func:`ember.register_plugin` first, then
    installed third-party plugins, then Ember's own, and core's built-in plugin last (for plain
    tensor data). So answer for your own ``Data`` classes only; ``@ember.hookimpl(trylast=True)``
    makes an answer a fallback. Size the model to the data (input shape, ``data.n_out``) and
    build it with :func:`ember.create_model`, so that an export can rebuild it.

    Example::

        @ember.hookimpl
        def ember_defaults(data):
            if isinstance(data, ImageData):
                return ember.Defaults(model=ember.create_model(
                    "compact_cnn", n_channels=data.n_channels, n_out=data.n_out))

    .. versionadded:: 0.1
    """


@hookspec
def ember_architectures(register: Callable[..., None]) -> None:
    """Register named model builders: ``register(name, builder, description="")``.

    ``builder(**config)`` must return an ``nn.Module``; ``config`` must be JSON-able, because
    :func:`ember.create_model` stores it on the model so an export can rebuild it.

    Example::

        @ember.hookimpl
        def ember_architectures(register):
            register("compact_cnn", compact_cnn, description="fast CNN for small images")

    .. versionadded:: 0.1
    """


@hookspec
def ember_callbacks(register: Callable[..., None]) -> None:
    """Register named callback classes: ``register(name, callback_class)``.

    Example::

        @ember.hookimpl
        def ember_callbacks(register):
            register("teacher_forcing", TeacherForcing)

    .. versionadded:: 0.1
    """


@hookspec
def ember_metrics(register: Callable[..., None]) -> None:
    """Register named metric factories: ``register(name, factory)``; ``factory()`` returns a
    :class:`ember.Metric`.

    Example::

        @ember.hookimpl
        def ember_metrics(register):
            register("bleu", Bleu)

    .. versionadded:: 0.1
    """


@hookspec
def ember_quickstart(register: Callable[[Demo], None]) -> None:
    """Register quick-start demos for ``ember quickstart``: ``register(ember.Demo(...))``.

    A demo trains on real data bundled with the plugin and returns its metrics; it must run in
    about a minute on two CPU cores, and faster still with ``smoke=True``.

    Example::

        @ember.hookimpl
        def ember_quickstart(register):
            register(ember.Demo(domain="vision", name="fashion_mnist", run=run_demo))

    .. versionadded:: 0.1
    """


@hookspec
def ember_samples(register: Callable[..., None]) -> None:
    """Register small real samples of each data kind: ``register(kind, factory)``, where
    ``factory()`` returns an :class:`ember.Sample` (a small ``Data`` built from bundled data,
    plus raw items to predict). :func:`ember.testing.check_plugin` trains on them for one batch
    and checks that export → load → predict round-trips.

    Example::

        @ember.hookimpl
        def ember_samples(register):
            register("image", lambda: ember.Sample(ImageData.from_arrays(images, labels),
                                                   items=list(images[:8])))

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def ember_rebuild_model(manifest: dict[str, Any]) -> Any:
    """Rebuild an untrained model from an export manifest, or return ``None``.

    Models made by :func:`ember.create_model` are rebuilt by core from the architecture
    registry; implement this only for models built some other way. The weights are loaded by
    core afterwards.

    Example::

        @ember.hookimpl
        def ember_rebuild_model(manifest):
            if manifest["model"]["name"] == "my_special_model":
                return MySpecialModel(**manifest["model"]["config"])

    .. versionadded:: 0.1
    """
