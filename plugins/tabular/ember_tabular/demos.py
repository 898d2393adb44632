"""Quick-start demos trained on the bundled real samples.

Example:
    >>> # ember quickstart tabular diamonds
"""

from __future__ import annotations

import ember
from ember_tabular.data import TabularData
from ember_tabular.datasets import load_sample

__all__ = ["run_diamonds"]


def run_diamonds(smoke: bool = False) -> dict[str, float]:
    """Train on 5,000 bundled diamonds to predict ``log(price)``; return validation metrics
    (``rmse`` is in log space: 0.1 means predictions typically within about 10%).

    Example:
        >>> # run_diamonds(smoke=True)["rmse"] < 1.0
    """
    ember.seed(0)
    frame = load_sample("diamonds")
    if smoke:
        frame = frame.iloc[:1000]
    data = TabularData.from_df(frame, "price", log_target=True, verbose=not smoke)
    learn = ember.learner(data, quiet=smoke)
    learn.fit_one_cycle(2 if smoke else 20)
    return {name: float(value) for name, value in learn.validate().items()}
