"""Shared test configuration: quiet training output, CPU only, a fresh plugin registry."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("EMBER_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _fresh_plugins():
    import ember

    ember.reset_plugins()
    yield
    ember.reset_plugins()
