"""ember.utils: helpers shared by core and the plugins."""

from __future__ import annotations

import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.checks import LoaderWarning


def test_a_warning_raised_deep_in_a_fit_names_the_users_line():
    # the fixed stacklevels pointed inside Ember (learner.py, checks.py), not at the script
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    unshuffled = DataLoader(TensorDataset(x, y), batch_size=16)
    learn = ember.Learner(ember.Data.from_loaders(unshuffled, unshuffled),
                          ember.create_model("mlp", n_in=4, n_out=2), quiet=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit(1)
    shuffle = [w for w in caught if issubclass(w.category, LoaderWarning)]
    assert shuffle and all(w.filename == __file__ for w in shuffle), [
        (w.filename, w.lineno) for w in shuffle]


def test_warn_names_the_caller_outside_ember():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ember.utils.warn("plain words")
    assert caught[0].filename == __file__ and caught[0].category is ember.EmberWarning
