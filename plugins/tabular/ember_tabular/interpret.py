"""Understanding a trained tabular model: permutation feature importance.

Example:
    >>> # from ember_tabular import feature_importance
    >>> # feature_importance(learn)   # a DataFrame, most important column first
    >>> # plot_feature_importance(feature_importance(learn)).savefig("importance.png")
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

import ember
from ember.data import unlabelled_test_error
from ember.model import evaluating
from ember.utils import new_figure
from ember_tabular.data import TabularData

__all__ = ["feature_importance", "plot_feature_importance"]


def _score(learn: ember.Learner, cats: Tensor, conts: Tensor, targets: Tensor,
           metric: ember.Metric | None, bs: int) -> float:
    model = learn.model
    outputs = []
    with torch.no_grad():
        for start in range(0, len(cats), bs):
            outputs.append(model(cats[start:start + bs].to(learn.device),
                                 conts[start:start + bs].to(learn.device)).float().cpu())
    predictions = torch.cat(outputs)
    if metric is None:
        with torch.no_grad():
            return float(learn.loss_func(predictions.to(learn.device), targets.to(learn.device)))
    metric.reset()
    metric.update(predictions, targets)
    return float(metric.compute())


def feature_importance(learn: ember.Learner, split: str = "valid",
                       metric: ember.Metric | str | None = None, n_repeats: int = 3,
                       seed: int = 0, bs: int = 4096, plot: bool = False,
                       ax: Any = None) -> pd.DataFrame:
    """Permutation importance of each input column of a tabular learner.

    Each raw column (a date with all its parts, a continuous column with its ``_na``
    indicator) is shuffled across the rows of ``split`` in turn, and the loss in the score is
    measured: ``importance`` is how much worse the model gets (a drop in accuracy or ROC AUC,
    a rise in RMSE or loss), averaged over ``n_repeats`` shuffles, with its ``std``. The score
    is ``metric`` (an :class:`ember.Metric`, or the name of one of the learner's metrics), else
    the learner's first metric, else its loss. A test set without labels has nothing to score:
    it is an :class:`ember.DataError`.

    The DataFrame is always what is returned. ``ax=`` (a matplotlib ``Axes``) draws the bars
    into it, so the figure is the caller's to save or close; ``plot=True`` without ``ax``
    draws into a new figure (then ``matplotlib.pyplot.gcf()``). To get the figure back, call
    :func:`plot_feature_importance` on the DataFrame: it returns the figure, like every
    other Ember plot.

    Example:
        >>> # feature_importance(learn).head()
        >>> #      feature  importance     std
        >>> # 0      carat      0.9123  0.0102
        >>> # figure, axis = plt.subplots(); feature_importance(learn, ax=axis)
        >>> # figure.savefig("importance.png")
    """
    data = learn.data
    if not isinstance(data, TabularData):
        raise ember.DataError(f"feature_importance needs a learner on TabularData, got "
                              f"{type(data).__name__}")
    dataset = learn.loader(split).dataset
    cats, conts, targets = dataset.cats, dataset.conts, dataset.targets
    if targets is None:  # a test frame without the target column
        raise unlabelled_test_error(
            "feature importance needs labels to score the shuffled columns",
            'use feature_importance(learn, split="valid")')
    chosen: ember.Metric | None
    if isinstance(metric, str):
        named = [m for m in learn.metrics if m.name == metric]
        if not named:
            raise ember.TrainingError(f"the learner has no metric {metric!r}; it has "
                                      f"{[m.name for m in learn.metrics]}")
        chosen = copy.deepcopy(named[0])
    elif metric is None:
        chosen = copy.deepcopy(learn.metrics[0]) if learn.metrics else None
    else:
        chosen = copy.deepcopy(metric)
    higher_is_better = chosen.higher_is_better if chosen is not None else False
    generator = np.random.default_rng(seed)
    rows = []
    with evaluating(learn.model):
        baseline = _score(learn, cats, conts, targets, chosen, bs)
        for name, (cat_indices, cont_indices) in data.processor.feature_groups().items():
            drops = []
            for _ in range(n_repeats):
                order = torch.from_numpy(generator.permutation(len(cats)))
                shuffled_cats, shuffled_conts = cats.clone(), conts.clone()
                if cat_indices:
                    shuffled_cats[:, cat_indices] = cats[order][:, cat_indices]
                if cont_indices:
                    shuffled_conts[:, cont_indices] = conts[order][:, cont_indices]
                score = _score(learn, shuffled_cats, shuffled_conts, targets, chosen, bs)
                drops.append(baseline - score if higher_is_better else score - baseline)
            rows.append((name, float(np.mean(drops)), float(np.std(drops))))
    frame = pd.DataFrame(rows, columns=["feature", "importance", "std"])
    frame = frame.sort_values("importance", ascending=False, ignore_index=True)
    frame.attrs["baseline"] = baseline
    frame.attrs["score"] = chosen.name if chosen is not None else "loss"
    if plot or ax is not None:
        plot_feature_importance(frame, ax=ax)
    return frame


def plot_feature_importance(importance: pd.DataFrame, ax: Any = None) -> Any:
    """A bar chart of a :func:`feature_importance` table (most important column on top);
    returns the matplotlib figure, a new one (:func:`ember.utils.new_figure`) or that of
    ``ax`` when given.

    Example:
        >>> # plot_feature_importance(feature_importance(learn)).savefig("importance.png")
    """
    figure, axis = new_figure(ax=ax, figsize=(6, 0.3 * len(importance) + 1))
    axis.barh(importance["feature"][::-1], importance["importance"][::-1],
              xerr=importance["std"][::-1])
    axis.set_xlabel(f"loss of {importance.attrs.get('score', 'score')} when shuffled")
    if ax is None:
        figure.tight_layout()
    return figure
