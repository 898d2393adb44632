"""Every example in the seq2seq docstrings runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["callbacks", "data", "datasets", "decoding", "metrics", "models", "plugin", "show"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"ember_text.seq2seq.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    package = importlib.import_module("ember_text.seq2seq")
    for name in package.__all__:
        value = getattr(package, name)
        if callable(value):
            assert value.__doc__ and "Example" in value.__doc__, name
