"""Bundled real samples for tests and quick-starts (licence notes alongside).

Example:
    >>> texts, labels, movies = load_rotten_tomatoes()
    >>> len(texts), sorted(set(labels))
    (4000, ['fresh', 'rotten'])
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

__all__ = ["ROTTEN_TOMATOES", "load_rotten_tomatoes"]

#: Path of the bundled Rotten Tomatoes sample (4,000 rows; Apache-2.0, see the licence note).
ROTTEN_TOMATOES = Path(__file__).with_name("rotten_tomatoes.csv.gz")


def load_rotten_tomatoes(path: str | Path = ROTTEN_TOMATOES
                         ) -> tuple[list[str], list[str], list[str]]:
    """Read the Rotten Tomatoes reviews (bundled sample by default, or the full file) as three
    lists: ``texts``, ``labels`` (``fresh``/``rotten``), ``movies``. Needs no pandas.

    Example:
        >>> texts, labels, movies = load_rotten_tomatoes()
        >>> labels[0] in ("fresh", "rotten")
        True
    """
    with gzip.open(path, "rb") as handle:
        reader = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8", newline=""))
        rows = list(reader)
    return ([row["text"] for row in rows], [row["label"] for row in rows],
            [row["movie"] for row in rows])
