"""Small real tables bundled with the plugin (see ``README.md`` here for sources and licences).

Example:
    >>> from ember_tabular.datasets import load_sample
    >>> load_sample("diamonds").shape
    (5000, 10)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

import ember

__all__ = ["DIAMOND_ORDERS", "SAMPLES", "load_sample", "order_diamonds", "sample_path"]

#: Sample name -> file name.
SAMPLES = {"diamonds": "diamonds.csv.gz", "lending_club": "lending_club.csv.gz"}

#: The ordered levels of the diamonds categories, in the order ggplot2 defines them.
DIAMOND_ORDERS = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["D", "E", "F", "G", "H", "I", "J"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}


def sample_path(name: str) -> Path:
    """Path of a bundled sample file.

    Example:
        >>> sample_path("lending_club").name
        'lending_club.csv.gz'
    """
    if name not in SAMPLES:
        raise ember.DataError(f"no bundled sample {name!r}; choose one of {sorted(SAMPLES)}")
    return Path(str(resources.files(__name__) / SAMPLES[name]))


def order_diamonds(frame: pd.DataFrame) -> pd.DataFrame:
    """Give ``cut``, ``color`` and ``clarity`` their ordered category dtypes (for the full set too).

    Example:
        >>> order_diamonds(load_sample("diamonds"))["cut"].cat.ordered
        True
    """
    frame = frame.copy()
    for column, levels in DIAMOND_ORDERS.items():
        frame[column] = pd.Categorical(frame[column], categories=levels, ordered=True)
    return frame


def load_sample(name: str) -> pd.DataFrame:
    """Load a bundled sample as a data frame: ``"diamonds"`` (ordered categories restored) or
    ``"lending_club"``.

    Example:
        >>> load_sample("lending_club")["Class"].value_counts().to_dict()
        {'good': 4729, 'bad': 271}
    """
    frame = pd.read_csv(sample_path(name))
    return order_diamonds(frame) if name == "diamonds" else frame
