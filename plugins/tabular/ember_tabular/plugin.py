"""The tabular plugin's hook implementations (entry point ``tabular`` in the group ``ember``).

It registers the ``tabular`` data kind, the ``tabular_mlp`` architecture, the defaults for
:class:`~ember_tabular.TabularData` and the ``tabular/diamonds`` quick-start demo.

Example:
    >>> import ember
    >>> "tabular_mlp" in ember.get_registry().architectures
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ember
from ember_tabular.data import TabularData
from ember_tabular.demos import run_diamonds
from ember_tabular.models import tabular_mlp, tabular_model

EMBER_CONTRACT = 1

#: Default peak learning rate for ``fit_one_cycle`` on tabular data.
DEFAULT_LR = 3e-3


@ember.hookimpl
def ember_data_kinds(register: Callable[[str, type[ember.Data]], None]) -> None:
    register("tabular", TabularData)


@ember.hookimpl
def ember_architectures(register: Callable[..., None]) -> None:
    register("tabular_mlp", tabular_mlp,
             description="entity embeddings + BatchNorm/dropout MLP for tables")


@ember.hookimpl
def ember_defaults(data: ember.Data) -> ember.Defaults | None:
    if not isinstance(data, TabularData):
        return None
    model: Any = tabular_model(data)
    # the batch size is chosen by TabularData.from_df (about 100 steps per epoch, 64-1024 rows)
    return ember.Defaults(model=model, lr=DEFAULT_LR)


def _sample() -> ember.Sample:
    from ember_tabular.datasets import load_sample

    frame = load_sample("lending_club")
    data = TabularData.from_df(frame.iloc[:600], "Class", valid_pct=0.2, seed=0, verbose=False)
    rows = [row.drop("Class") for _, row in frame.iloc[600:606].iterrows()]
    return ember.Sample(data, items=rows)


@ember.hookimpl
def ember_samples(register: Callable[..., None]) -> None:
    register("tabular", _sample)


@ember.hookimpl
def ember_quickstart(register: Callable[[ember.Demo], None]) -> None:
    register(ember.Demo(
        domain="tabular", name="diamonds", run=run_diamonds,
        description="regression of log(price) on 5,000 real diamonds (ggplot2); reports RMSE "
                    "in log space"))
