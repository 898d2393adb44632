"""Shared fixtures: small learners trained once per session on the bundled real samples."""

from __future__ import annotations

import pandas as pd
import pytest

import ember
from ember_tabular import TabularData, load_sample


@pytest.fixture(scope="session")
def diamonds() -> pd.DataFrame:
    return load_sample("diamonds")


@pytest.fixture(scope="session")
def lending() -> pd.DataFrame:
    return load_sample("lending_club")


@pytest.fixture(scope="session")
def diamonds_learner(diamonds: pd.DataFrame) -> ember.Learner:
    """log(price) regression on 2,500 real diamonds, 6 epochs (a few seconds)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ember.seed(0)
        data = TabularData.from_df(diamonds.iloc[:2500], "price", log_target=True,
                                   verbose=False)
        learn = ember.learner(data, quiet=True, device="cpu")
        learn.fit_one_cycle(6)
    finally:
        torch.set_num_threads(previous)
    return learn


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small tabular models train fastest on one thread (much faster on a busy machine);
    the previous setting is restored after each module."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
