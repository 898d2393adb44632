"""Every public seq2seq name has a docstring with an example (pytest runs the examples
themselves: the plugins are in its testpaths, with --doctest-modules)."""

from __future__ import annotations

import importlib


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    package = importlib.import_module("ember_text.seq2seq")
    for name in package.__all__:
        value = getattr(package, name)
        if callable(value):
            assert value.__doc__ and "Example" in value.__doc__, name
