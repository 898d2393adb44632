"""Shared benchmark conventions (DESIGN.md §7): data path, timing, table and RESULT lines."""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the common ``--data``, ``--smoke`` and ``--repeats`` options."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--data", type=Path, default=None,
                        help="data folder (default: $EMBER_DATA or ../shared/data)")
    result.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    result.add_argument("--repeats", type=int, default=5)
    return result


def data_dir(given: Path | None) -> Path | None:
    """The data folder: ``--data``, then ``$EMBER_DATA``, then ``../shared/data`` if present."""
    for candidate in (given, os.environ.get("EMBER_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file: big-endian header of magic and dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    n_dims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(n_dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(dims)


def interleaved_samples(contenders: dict[str, Callable[[], None]], repeats: int,
                        clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Run each contender once per repeat, in rotating order (after one warm-up run each when
    repeating); return every repeat's seconds by ``clock``, so ratios can be taken per repeat."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    if repeats > 1:
        for run in contenders.values():  # warm-up: allocator, kernels, lazy imports
            run()
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            start = clock()
            contenders[name]()
            times[name].append(clock() - start)
    return times


def paired_ratio(samples: list[float], baseline: list[float]) -> float:
    """Median over repeats of each repeat's ratio to the baseline's time in the same repeat
    (slow drifts of a shared machine cancel within a repeat)."""
    return statistics.median(a / b for a, b in zip(samples, baseline))


def mean_spread(values: list[float], signed: bool = False, error: bool = False,
                digits: int = 3) -> str:
    """``mean ± standard deviation`` (over seeds) of ``values``, as text with ``digits``
    decimals; with ``error`` also the standard error of the mean (sd / sqrt(seeds): a gap
    within two of it is not resolved)."""
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    text = f"{np.mean(values):{'+' if signed else ''}.{digits}f} ± {spread:.{digits}f}"
    return (f"{text} (se {spread / np.sqrt(len(values)):.{digits}f})" if error else text)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
