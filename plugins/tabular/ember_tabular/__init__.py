"""Ember's tabular plugin: pandas tables in, entity-embedding networks out.

Three lines train a model on a table::

    import ember, ember_tabular
    data = ember_tabular.TabularData.from_csv("diamonds.csv", "price", log_target=True)
    learn = ember.learner(data); learn.fit_one_cycle(20)

Example:
    >>> from ember_tabular import TabularData, load_sample
    >>> TabularData.from_df(load_sample("lending_club"), "Class", verbose=False).n_out
    2
"""

from __future__ import annotations

from ember_tabular.data import TabularData, TabularDataset, items_to_frame
from ember_tabular.datasets import load_sample, sample_path
from ember_tabular.interpret import feature_importance, plot_feature_importance
from ember_tabular.models import (
    PeriodicEmbedding,
    PiecewiseLinear,
    TabularBody,
    TabularHead,
    embedding_size,
    tabular_config,
    tabular_mlp,
    tabular_model,
)
from ember_tabular.transforms import TabularProcessor, add_date_parts, infer_column_kinds

__version__ = "0.1.0"

__all__ = [
    "PeriodicEmbedding",
    "PiecewiseLinear",
    "TabularBody",
    "TabularData",
    "TabularDataset",
    "TabularHead",
    "TabularProcessor",
    "add_date_parts",
    "embedding_size",
    "feature_importance",
    "infer_column_kinds",
    "items_to_frame",
    "load_sample",
    "plot_feature_importance",
    "sample_path",
    "tabular_config",
    "tabular_mlp",
    "tabular_model",
]
