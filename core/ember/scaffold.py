"""``ember new-plugin NAME``: write a ready-to-install plugin package.

Example:
    >>> import tempfile
    >>> folder = new_plugin("sensor", tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['README.md', 'ember_sensor', 'pyproject.toml', 'tests']
"""

from __future__ import annotations

import keyword
import re
import shutil
from importlib import resources
from pathlib import Path
from string import Template

from ember.errors import EmberError
from ember.hookspecs import CONTRACT_VERSION
from ember.plugins import FIRST_PARTY

__all__ = ["new_plugin"]

FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "ember_{name}/__init__.py",
    "data.py.tmpl": "ember_{name}/data.py",
    "plugin.py.tmpl": "ember_{name}/plugin.py",
    "test_plugin.py.tmpl": "tests/test_plugin.py",
}


def new_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write ``ember-NAME/`` under ``parent``: pyproject with the entry point, a Data class,
    the hooks, a bundled real sample and a conformance test. Returns the folder.

    Example:
        >>> # new_plugin("signal")  then: pip install -e ember-signal && pytest ember-signal
    """
    if keyword.iskeyword(name):  # a lowercase identifier, so the message below was wrong
        raise EmberError(f"plugin name {name!r} is a Python keyword; choose another name, "
                         f"e.g. 'my_{name}'")
    # the package is named ember-NAME: a trailing '_' would make it an invalid project name
    if not re.fullmatch(r"[a-z]([a-z0-9_]*[a-z0-9])?", name):
        raise EmberError(f"plugin name {name!r} must be a lowercase Python identifier that "
                         f"does not end with '_', e.g. 'signal' or 'time_series'")
    if name == "builtin":  # its entry point would be skipped: core's own plugin has that name
        raise EmberError("plugin name 'builtin' is core's own plugin; choose another name")
    if f"ember-{name.replace('_', '-')}" in FIRST_PARTY:  # it would install over Ember's own
        raise EmberError(f"plugin name {name!r} is Ember's own plugin: its package "
                         f"ember-{name} (import ember_{name}) would replace that one; choose "
                         f"another name, e.g. 'my_{name}'")
    parent = Path(parent).expanduser()  # "~/code" is in the home folder, as in a shell
    if parent.exists() and not parent.is_dir():
        raise EmberError(f"{parent} is a file, not a folder; give a folder to write the plugin in")
    folder = Path(parent) / f"ember-{name.replace('_', '-')}"
    if folder.exists():
        raise EmberError(f"{folder} exists already; choose another name or remove it")
    from ember import __version__

    values = {"name": name, "Name": "".join(p.capitalize() for p in name.split("_")),
              "ember_version": __version__, "contract": str(CONTRACT_VERSION)}
    templates = resources.files("ember").joinpath("templates/plugin")
    for template, target in FILES.items():
        path = folder / target.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = Template(templates.joinpath(template).read_text()).substitute(values)
        path.write_text(text)
    datasets = folder / f"ember_{name}" / "datasets"
    datasets.mkdir()
    with resources.as_file(templates.joinpath("sample.csv")) as sample:
        shutil.copy(sample, datasets / "sample.csv")
    return folder
