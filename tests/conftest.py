"""Shared test configuration: quiet training output, CPU only, a fresh plugin registry."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("EMBER_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # the README's test command runs two workers (pytest -n 2) on the two cores: one thread
    # each, here and in the processes the tests start, instead of two threads each on two
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_plugins():
    import ember

    ember.reset_plugins()
    yield
    ember.reset_plugins()
