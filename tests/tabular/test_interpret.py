"""Permutation feature importance on a real trained model."""

from __future__ import annotations

import pytest

import ember
from ember_tabular import feature_importance


def test_size_matters_more_than_proportions(diamonds_learner: ember.Learner) -> None:
    importance = feature_importance(diamonds_learner, n_repeats=2)
    assert set(importance["feature"]) == {"carat", "cut", "color", "clarity", "depth", "table",
                                          "x", "y", "z"}
    ranked = importance["feature"].tolist()
    # price is driven by size (carat, x, y, z) and clarity, hardly by depth or table
    assert set(ranked[:3]) <= {"carat", "x", "y", "z", "clarity"}, importance
    scores = dict(zip(importance["feature"], importance["importance"]))
    assert scores["depth"] < scores["carat"] / 5 and scores["table"] < scores["carat"] / 5
    assert importance.attrs["score"] == "rmse"


def test_metric_can_be_chosen_by_name(diamonds_learner: ember.Learner) -> None:
    by_mae = feature_importance(diamonds_learner, metric="mae", n_repeats=1)
    assert by_mae.attrs["score"] == "mae"
    with pytest.raises(ember.TrainingError, match="no metric 'accuracy'"):
        feature_importance(diamonds_learner, metric="accuracy")


def test_learner_feature_importance_goes_through_the_data_contract():
    from ember_tabular import TabularData
    from ember_tabular.datasets import load_sample

    ember.seed(0)
    data = TabularData.from_df(load_sample("diamonds").iloc[:1500], "price",
                                             log_target=True, verbose=False)
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(2)
    table = learn.feature_importance(n_repeats=1)
    assert "carat" in set(table["feature"])


def test_feature_importance_on_a_test_set_without_labels_says_it_needs_them(lending):
    # it failed inside the scoring with "'NoneType' object has no attribute 'reshape'"; the
    # validation set and a labelled test set are still scored
    from ember_tabular import TabularData

    ember.seed(0)
    train, test = lending.iloc[30:530], lending.iloc[:30].drop(columns="Class")
    learn = ember.learner(TabularData.from_df(train, "Class", test_df=test, verbose=False),
                          quiet=True, device="cpu")
    with pytest.raises(ember.DataError, match=r"^the test set has no labels.*feature importance"
                                              r".*split=\"valid\""):
        feature_importance(learn, split="test")
    with pytest.raises(ember.DataError, match=r"^the test set has no labels"):
        learn.feature_importance(split="test")
    assert len(feature_importance(learn, n_repeats=1)) == len(learn.data.processor
                                                              .feature_groups())
    labelled = ember.learner(TabularData.from_df(train, "Class", test_df=lending.iloc[:30],
                                                 verbose=False), quiet=True, device="cpu")
    assert feature_importance(labelled, split="test", n_repeats=1).attrs["score"]


def test_the_importance_plot_can_be_saved(diamonds_learner: ember.Learner, tmp_path) -> None:
    import matplotlib.pyplot as plt

    from ember_tabular import plot_feature_importance

    importance = feature_importance(diamonds_learner, n_repeats=1)
    figure = plot_feature_importance(importance)
    figure.savefig(tmp_path / "importance.png")
    assert (tmp_path / "importance.png").stat().st_size > 0
    assert len(figure.axes[0].patches) == len(importance)  # one bar per column
    plt.close(figure)
    # or draw into the caller's own axes, here through the learner
    figure, axis = plt.subplots()
    table = diamonds_learner.feature_importance(n_repeats=1, ax=axis)
    assert len(axis.patches) == len(table)
    assert "figure" not in table.attrs  # pandas would copy a figure into every derived frame
    figure.savefig(tmp_path / "own_axes.png")
    assert (tmp_path / "own_axes.png").stat().st_size > 0
    plt.close(figure)
    # plot=True returns the table: the figure is pyplot's, to be found (and shown) there
    table = feature_importance(diamonds_learner, n_repeats=1, plot=True)
    assert len(plt.gcf().axes[0].patches) == len(table)
    plt.close(plt.gcf())
