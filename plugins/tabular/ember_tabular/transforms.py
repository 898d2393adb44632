"""Table preprocessing: column-kind inference and the processors replayed at inference.

:class:`TabularProcessor` is fitted on the TRAINING rows only and then replays exactly the same
steps on validation, test and inference rows:

- **dates** are expanded into parts: ``<col>_year``, ``<col>_dayofyear`` and ``<col>_elapsed``
  (days since 1970) are continuous, ``<col>_month``, ``<col>_day`` and ``<col>_dayofweek`` are
  categorical; a date with a time zone gives its local parts (``elapsed`` counts in UTC), and
  date strings with different time zones are read in UTC;
- **durations** (``timedelta`` columns) are continuous and count in seconds, whatever the
  column's unit (a row may give a timedelta or a number of seconds);
- **fill missing**: a continuous value that is missing (NaN, None, ``pd.NA``) or infinite is
  replaced by the training median; columns that had missing values in training also get a
  categorical ``<col>_na`` indicator. Infinite values are treated as missing, with an
  :class:`ember.EmberWarning` naming the column;
- **categorify**: each categorical column gets a vocabulary (training values; an ordered
  ``category`` dtype keeps its order). Code 0 is the unknown level: a missing value or a value
  never seen in training maps to it, at training time and at inference. Levels that are
  neither text, numbers nor booleans (``pd.cut`` intervals, dates) are kept as their text, so
  they export, and rows may give them as objects or as that text. In a true/false column
  (levels that are booleans, or the text ``"True"``/``"False"``), a row may give a boolean,
  the text ``"true"``/``"false"`` in any case (as JSON or ``read_csv(dtype=str)`` gives it), or
  the number 1 or 0 (``1.0``, ``0.0``); any other value is unseen, code 0;
- **normalise**: continuous columns are standardised with the training mean and standard
  deviation (``normalize="standard"``), or mapped through their training quantiles onto a
  standard normal (``normalize="quantile"``: robust to outliers and skew, so an MLP fits
  heavy-tailed columns such as sizes and prices much better; values outside the training range
  land on the extreme quantiles).

A column missing at inference, or text inside a continuous column, raises an
:class:`ember.DataError` naming the column and the row.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"colour": ["red", "blue", "red"], "size": [1.0, None, 3.0]})
    >>> processor = TabularProcessor(["colour"], ["size"]).fit(frame)
    >>> cats, conts = processor.transform(pd.DataFrame({"colour": ["green"], "size": [None]}))
    >>> cats.tolist(), processor.cat_columns
    ([[0, 2]], ['colour', 'size_na'])
"""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

import ember
from ember.utils import plain

__all__ = [
    "DATE_CAT_PARTS",
    "DATE_CONT_PARTS",
    "TabularProcessor",
    "add_date_parts",
    "check_unique_columns",
    "column_list",
    "factorize_objects",
    "infer_column_kinds",
]

#: Date parts that become categorical columns.
DATE_CAT_PARTS = ("month", "day", "dayofweek")
#: Date parts that become continuous columns.
DATE_CONT_PARTS = ("year", "dayofyear", "elapsed")


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series.dtype) or series.dtype == object


def _is_integer(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype)


def column_list(names: Any, argument: str = "columns") -> list[Any]:
    """A list of column labels from ``names``: a list (or tuple, Index), or one label given
    alone (``cat_names="cut"`` is the column ``cut``, not the letters ``c``, ``u``, ``t``).
    A label listed twice is a :class:`ember.DataError` (it would become two inputs).

    Example:
        >>> column_list("cut"), column_list(("cut", "color"))
        (['cut'], ['cut', 'color'])
    """
    if names is None:
        return []
    if isinstance(names, (str, bytes)) or not isinstance(names, (Sequence, pd.Index, set)):
        names = [names]
    names = list(names)
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:
        raise ember.DataError(f"{argument}: column(s) {twice} listed twice; give each column "
                              f"once")
    return names


def check_unique_columns(frame: pd.DataFrame, names: Sequence[Any] | None = None) -> None:
    """Refuse a frame in which a column label (of ``names``, or any) occurs more than once:
    ``frame[label]`` would be a frame, not a column, and which copy to use is unknowable. A
    frame with columns of several levels (a ``MultiIndex``, as ``groupby().agg`` and
    ``pivot_table`` give) is refused too: its labels are tuples, which an export cannot name.

    Example:
        >>> check_unique_columns(pd.DataFrame([[1, 2]], columns=["a", "b"]))
    """
    if isinstance(frame.columns, pd.MultiIndex):
        raise ember.DataError(
            f"the frame's columns have {frame.columns.nlevels} levels (a MultiIndex, as "
            f"groupby().agg or pivot_table give, e.g. {plain(frame.columns[0])!r}); give one "
            f"label per column: df.columns = ['_'.join(map(str, label)) for label in "
            f"df.columns]")
    duplicated = frame.columns[frame.columns.duplicated()]
    if names is not None:
        duplicated = duplicated[duplicated.isin(list(names))]
    if len(duplicated):
        labels = [plain(label) for label in dict.fromkeys(duplicated)]
        raise ember.DataError(
            f"column label(s) {labels} occur more than once in the frame (a concat or a merge "
            f"that repeated them?); keep one of each, e.g. "
            f"df.loc[:, ~df.columns.duplicated()], or rename them")


def infer_column_kinds(
    frame: pd.DataFrame, exclude: Sequence[str] = (), max_card: int = 20
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Sort the columns of ``frame`` into categorical, continuous and date columns.

    Rules: text (pandas 3 ``str`` or ``object``), ``category`` and ``bool`` columns are
    categorical; integer columns with at most ``max_card`` distinct values are categorical,
    other numbers and durations (``timedelta``, counted in seconds) continuous; ``datetime``
    columns are dates (expanded into parts). Returns
    ``(cat_names, cont_names, date_names, notes)``, where ``notes`` are remarks worth printing
    (a text column that looks numeric, an identifier-like column). A saved row index (an
    ``Unnamed: 0`` column of distinct integers, as ``read_csv`` names the index that
    ``to_csv`` writes) is left out, with a note.

    Example:
        >>> frame = pd.DataFrame({"a": ["x", "y"], "b": [1.5, 2.0], "c": [1, 2], "y": [0, 1]})
        >>> infer_column_kinds(frame, exclude=["y"])[:3]
        (['a', 'c'], ['b'], [])
    """
    cats: list[str] = []
    conts: list[str] = []
    dates: list[str] = []
    notes: list[str] = []
    for name in frame.columns:
        if name in exclude:
            continue
        series = frame[name]
        dtype = series.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            dates.append(name)
        elif isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
            cats.append(name)
        elif _is_integer(series):
            distinct = series.nunique()
            if len(frame) > 100 and distinct == len(frame):  # a different value in every row
                if re.fullmatch(r"Unnamed: \d+", str(name)):
                    notes.append(f"{name!r} is a saved row index (to_csv writes one, read_csv "
                                 f"names it so) and is left out: a row number would leak the "
                                 f"file's order, and every row to predict would need one. "
                                 f"Pass it in cont_names= to use it anyway")
                    continue
                notes.append(f"{name!r} holds a different integer in every row (an identifier "
                             f"or a row number?); if so, drop it or leave it out of "
                             f"cont_names=: it can leak the order of the file")
            (cats if distinct <= max_card else conts).append(name)
        elif pd.api.types.is_complex_dtype(dtype):
            notes.append(f"{name!r} holds complex numbers, which Ember cannot use; it is "
                         f"ignored (give its parts as two columns: "
                         f"df[name].to_numpy().real and .imag)")
        elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            conts.append(name)  # a duration counts in seconds
        elif _is_text(series):
            cats.append(name)
            sample = series.dropna().head(1000)
            # booleans with blanks (read_csv gives True/False/NaN objects) are categories,
            # though pd.to_numeric takes them for numbers
            if len(sample) and pd.api.types.infer_dtype(sample) != "boolean" and \
                    pd.to_numeric(sample, errors="coerce").notna().mean() > 0.95:
                notes.append(f"{name!r} is text but looks numeric; pass it in cont_names= "
                             f"(text that is not a number will then be reported by row)")
            elif len(frame) > 100 and _n_distinct(series) > 0.5 * len(frame):
                notes.append(f"{name!r} has a distinct value in most rows (an identifier?); "
                             f"drop it or leave it out of cat_names=")
        else:
            notes.append(f"{name!r} has dtype {dtype} which Ember cannot use; it is ignored")
    return cats, conts, dates, notes


def date_part_columns(frame: pd.DataFrame, date_names: Sequence[str]) -> dict[str, pd.Series]:
    """The parts of each date column of ``frame`` (see the module docs), as float64 Series
    indexed like ``frame``; the frame itself is not copied.

    Example:
        >>> frame = pd.DataFrame({"when": pd.to_datetime(["2024-03-01"])})
        >>> date_part_columns(frame, ["when"])["when_dayofyear"].tolist()
        [61.0]
    """
    parts: dict[str, pd.Series] = {}
    for name in date_names:
        if name not in frame.columns:
            raise ember.DataError(f"date column {name!r} is missing; give a frame that has it")
        column = frame[name]
        if not pd.api.types.is_datetime64_any_dtype(column.dtype):
            _refuse_numeric_dates(name, column)
            try:
                converted = pd.to_datetime(column, errors="coerce")
            except ValueError:  # mixed time zones, or dates with and without one
                converted = pd.to_datetime(column, errors="coerce", utc=True)
            bad = converted.isna() & column.notna()
            if bad.any():
                row = bad.idxmax()
                raise ember.DataError(
                    f"column {name!r}, row {plain(row)!r}: {plain(column[row])!r} is not a date "
                    f"({int(bad.sum())} such row(s)); fix or blank these values"
                )
            column = converted
        dt = column.dt
        parts[f"{name}_year"] = dt.year.astype("float64")
        parts[f"{name}_month"] = dt.month.astype("float64")
        parts[f"{name}_day"] = dt.day.astype("float64")
        parts[f"{name}_dayofweek"] = dt.day_of_week.astype("float64")
        parts[f"{name}_dayofyear"] = dt.day_of_year.astype("float64")
        if dt.tz is not None:  # elapsed time is absolute; the other parts are local
            column = dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = column.astype("datetime64[s]").astype("int64").astype("float64")
        elapsed = np.where(column.isna(), np.nan, seconds / 86400.0)
        parts[f"{name}_elapsed"] = pd.Series(elapsed, index=frame.index)
    for part, series in parts.items():
        series.name = part
    return parts


def _refuse_numeric_dates(name: Any, column: pd.Series) -> None:
    """Numbers in a date column are an error: ``pd.to_datetime`` reads them as nanoseconds
    since 1970, so ``20240301`` (or epoch seconds) would all become 1970-01-01, silently."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if kind in ("string", "empty", "datetime", "datetime64", "date"):
        return
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        numeric = column.notna()
    else:  # objects: look at each value (JSON rows may mix numbers with text)
        numeric = column.map(lambda value: isinstance(value, (int, float, np.number))
                             and not isinstance(value, (bool, np.bool_)) and not pd.isna(value))
    if numeric.any():
        row = numeric.idxmax()
        raise ember.DataError(
            f"column {name!r}, row {plain(row)!r}: {plain(column[row])!r} is a number, not a "
            f"date ({int(numeric.sum())} such row(s)); give dates as text or datetimes, e.g. "
            f"pd.to_datetime(df[{name!r}].astype(str), format='%Y%m%d') for 20240301, or "
            f"pd.to_datetime(df[{name!r}], unit='s') for seconds since 1970")


def add_date_parts(frame: pd.DataFrame, date_names: Sequence[str]) -> pd.DataFrame:
    """Return ``frame`` with each date column replaced by its parts (see the module docs).

    Example:
        >>> frame = pd.DataFrame({"when": pd.to_datetime(["2024-03-01"])})
        >>> sorted(add_date_parts(frame, ["when"]).columns)[:3]
        ['when_day', 'when_dayofweek', 'when_dayofyear']
    """
    if not date_names:
        return frame
    parts = date_part_columns(frame, date_names)
    rest = frame.drop(columns=list(date_names))
    return pd.concat([rest, pd.DataFrame(parts, index=frame.index)], axis=1)


def date_part_names(date_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names of the categorical and continuous parts of ``date_names``.

    Example:
        >>> date_part_names(["d"])[0]
        ['d_month', 'd_day', 'd_dayofweek']
    """
    cats = [f"{name}_{part}" for name in date_names for part in DATE_CAT_PARTS]
    conts = [f"{name}_{part}" for name in date_names for part in DATE_CONT_PARTS]
    return cats, conts


#: The ways continuous columns can be scaled.
NORMALIZERS = ("quantile", "standard")


@functools.cache
def _normal_references(n: int) -> np.ndarray:
    """Standard-normal values at ``n`` evenly spaced probabilities (clipped at 1e-7)."""
    levels = torch.linspace(0, 1, n, dtype=torch.float64).clamp(1e-7, 1 - 1e-7)
    return torch.special.ndtri(levels).numpy() if n > 1 else np.zeros(1)


#: Columns with more training rows than this get their quantiles from a seeded random sample
#: of this many rows (as scikit-learn's ``QuantileTransformer`` does); medians, means,
#: standard deviations and vocabularies always use every training row.
QUANTILE_SAMPLE = 100_000


class QuantileMap:
    """The quantile normalisation of one column: a piecewise-linear map from the column's
    training quantiles onto standard-normal values, evaluated in a few vectorised passes.

    It equals the average of the forward and backward linear interpolation through the
    quantiles (scikit-learn's ``QuantileTransformer`` rule): a value tied at several quantiles
    (a discrete column) maps to the middle of their range, values outside the training range
    land on the extreme quantiles. A uniform grid over the quantile range holds, for each cell
    without a quantile, the line the map follows there, so most values are mapped by one
    lookup and a multiply-add; values in cells that hold a quantile (or outside the range)
    find their segment by binary search. Inputs must be finite numbers (the processor fills
    missing values first).

    Example:
        >>> mapping = QuantileMap([0.0, 1.0, 1.0, 2.0])
        >>> mapping(np.array([-5.0, 0.5, 1.0, 5.0])).round(3).tolist()
        [-5.199, -2.815, 0.0, 5.199]
    """

    #: Most grid cells (the grid has 64 per distinct quantile up to this).
    MAX_CELLS = 2**16

    def __init__(self, quantiles: Sequence[float]) -> None:
        quantiles = np.asarray(quantiles, dtype=np.float64)
        references = _normal_references(len(quantiles))
        knots, first = np.unique(quantiles, return_index=True)
        last = np.r_[first[1:], len(quantiles)] - 1
        low, high = references[first], references[last]  # at the first/last tied quantile
        # segment s holds the values with exactly s knots <= value: s = 0 is below the range,
        # s = len(knots) at or above its top. In segment s the result is
        # base[s] + (value - anchor[s]) * slope[s], or tie[s] for a value equal to anchor[s].
        self.knots = knots
        self.anchor = np.r_[knots[0], knots]
        self.base = np.r_[low[0], high]
        self.tie = np.r_[low[0], 0.5 * (low + high)]
        gaps = np.diff(knots)
        self.slope = np.r_[0.0, (low[1:] - high[:-1]) / gaps if len(gaps) else [], 0.0]
        # grid: cells[c] is the segment of every value in cell c, or -1 when a knot lies in
        # the cell or within a millionth of a cell of it (so rounding cannot misplace values)
        self.cells: np.ndarray | None = None
        span = float(knots[-1] - knots[0])
        n_cells = min(self.MAX_CELLS, 64 * len(knots))
        self.scale = n_cells / span if len(knots) > 1 else 0.0
        if len(knots) > 1 and np.isfinite(self.scale) and self.scale > 0:
            position = (knots - knots[0]) * self.scale  # knot positions in cell units
            cells = np.searchsorted(knots, knots[0] + np.arange(n_cells) / self.scale,
                                    side="right").astype(np.intp)
            margin = 1e-6
            for shift in (-margin, margin):
                touched = np.floor(position + shift).astype(np.intp)
                cells[touched[(touched >= 0) & (touched < n_cells)]] = -1
            cells[0] = cells[-1] = -1  # out-of-range values are clipped into these
            self.cells = cells
            # in a cell without a knot the map is one line in the cell position p:
            # result = offset[c] + p * gradient[c] (NaN marks the other cells)
            known = cells >= 0
            segment = cells[known]
            self.offset = np.full(n_cells, np.nan)
            self.gradient = np.full(n_cells, np.nan)
            self.offset[known] = self.base[segment] + (knots[0] - self.anchor[segment]) * \
                self.slope[segment]
            self.gradient[known] = self.slope[segment] / self.scale

    def segments(self, values: np.ndarray) -> np.ndarray:
        """The segment of each value: how many distinct quantiles are ``<= value``.

        Example:
            >>> QuantileMap([0.0, 1.0, 2.0]).segments(np.array([-1.0, 0.0, 1.5, 9.0])).tolist()
            [0, 1, 2, 3]
        """
        if self.cells is None:
            return np.searchsorted(self.knots, values, side="right")
        position = values - self.knots[0]
        position *= self.scale
        np.clip(position, 0, len(self.cells) - 1, out=position)
        segment = self.cells[position.astype(np.intp)]
        unknown = np.flatnonzero(segment < 0)
        if len(unknown):
            segment[unknown] = np.searchsorted(self.knots, values[unknown], side="right")
        return segment

    #: Values mapped per block: the temporaries of a block stay in the CPU cache.
    BLOCK = 2**15

    def __call__(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Map ``values`` (float64) to standard-normal scores, into ``out`` when given (for
        example a float32 row of the output).

        Example:
            >>> QuantileMap([0.0, 2.0])(np.array([1.0])).round(6).tolist()
            [0.0]
        """
        values = np.asarray(values, dtype=np.float64)
        if out is None:
            out = np.empty(values.shape, dtype=np.float64)
        flat_values, flat_out = values.reshape(-1), out.reshape(-1)
        for start in range(0, len(flat_values), self.BLOCK):
            block = flat_values[start:start + self.BLOCK]
            if self.cells is None:
                result = self._exact(block)
            else:
                position = np.subtract(block, self.knots[0])
                position *= self.scale
                # out-of-range positions take the first or last cell (mode="clip"), which
                # hold NaN like every cell with a knot: those values go the exact way (a
                # position too large for an integer casts to the most negative one)
                with np.errstate(invalid="ignore"):
                    cell = position.astype(np.intp)
                result = np.multiply(position, np.take(self.gradient, cell, mode="clip"),
                                     out=position)
                result += np.take(self.offset, cell, mode="clip")
                unknown = np.flatnonzero(np.isnan(result))  # cells holding a knot
                if len(unknown):
                    result[unknown] = self._exact(block[unknown])
            flat_out[start:start + self.BLOCK] = result
        return out

    def _exact(self, values: np.ndarray) -> np.ndarray:
        """The map of ``values`` by binary search for their segments."""
        segment = np.searchsorted(self.knots, values, side="right")
        anchor = self.anchor[segment]
        tied = np.flatnonzero(values == anchor)
        result = np.subtract(values, anchor, out=anchor)
        result *= self.slope[segment]
        result += self.base[segment]
        if len(tied):
            result[tied] = self.tie[segment[tied]]
        return result


def _first_positions(codes: np.ndarray) -> np.ndarray:
    """Where each code first occurs, for codes numbered in order of first appearance (as
    ``pd.factorize`` numbers them): a new code is always one more than every code before it."""
    if not len(codes):
        return np.zeros(0, dtype=np.intp)
    running = np.maximum.accumulate(codes)
    return np.r_[0, np.flatnonzero(running[1:] > running[:-1]) + 1]


def factorize_objects(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct objects of a 1-D object array (text, mostly), fast.

    An object array holds pointers to Python objects, and rows that hold the same object hold
    equal values: pandas' CSV reader and repeated values share one object per distinct string,
    so a column usually holds few distinct objects. Hashing the pointers as integers costs a
    third of hashing the strings; only the distinct objects are then compared by value (by the
    caller). ``codes[i]`` numbers the object of row ``i`` (in order of first appearance) and
    ``objects[codes] == array`` row by row; equal values held by different objects get
    different codes, which the caller's lookup of ``objects`` merges. When a sample shows many
    more distinct objects than distinct values (a column built row by row), the values are
    hashed directly instead.

    Example:
        >>> codes, objects = factorize_objects(np.array(["b", "a", "b", None], dtype=object))
        >>> codes.tolist(), objects.tolist()
        ([0, 1, 0, 2], ['b', 'a', None])
    """
    array = np.ascontiguousarray(array, dtype=object).reshape(-1)
    # an int view of the object array's pointers; `array` stays referenced while it is used
    pointers = np.ctypeslib.as_array(
        array.ctypes.data_as(ctypes.POINTER(ctypes.c_ssize_t)), shape=(len(array),))
    sample = slice(0, 4096)
    if len(array) and len(pd.unique(array[sample])) * 2 + 16 < len(pd.unique(pointers[sample])):
        codes, objects = pd.factorize(array, use_na_sentinel=False)
        return codes.astype(np.int64, copy=False), np.asarray(objects, dtype=object)
    codes, _ = pd.factorize(pointers)
    codes = codes.astype(np.int64, copy=False)
    return codes, array[_first_positions(codes)]


def _n_distinct(series: pd.Series) -> int:
    """The number of distinct values of a text column, 0 when a cell holds a list or a dict
    (pandas' "unhashable type" named nothing: fitting the processor refuses the cell by its
    column and row)."""
    try:
        return int(series.nunique())
    except TypeError:
        return 0


def _factorize(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``(codes, distinct)``: each row's position in ``distinct`` (-1 for a missing value of a
    ``category`` column), found by hashing as little as possible (see
    :func:`factorize_objects`)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), pd.Series(series.cat.categories)
    array = series.to_numpy()
    if array.dtype == object:
        try:
            codes, objects = factorize_objects(array)
        except TypeError:  # a list or a dict in a cell: "unhashable type", naming nothing
            row = next(i for i, value in enumerate(array) if not isinstance(value, Hashable))
            raise ember.DataError(
                f"column {series.name!r}, row {plain(series.index[row])!r}: {array[row]!r} is a "
                f"{type(array[row]).__name__}, but a category is one value (text, a number or "
                f"a boolean); give one value per cell") from None
        return codes, pd.Series(objects, dtype=object)
    codes, uniques = pd.factorize(array)
    return codes, pd.Series(uniques)


def _level(value: Any) -> Any:
    """A vocabulary level as JSON holds it: text, numbers and booleans as they are, any other
    value (an interval from ``pd.cut``, a date, a timestamp) as its text."""
    value = plain(value)
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _whole_number_text(value: Any) -> Any:
    """The text of a float that holds a whole number, as an integer (``10001.0`` → ``"10001"``);
    ``None`` for any other value."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _vocab(series: pd.Series, distinct: pd.Series) -> list[Any]:
    """The sorted vocabulary of ``series`` from its ``distinct`` values (a ``category``
    column keeps its categories in their order); levels that are neither text, numbers nor
    booleans are kept as their text (see :func:`_level`), so the vocabulary exports."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(dict.fromkeys(_level(v) for v in distinct.tolist()))
    uniques = distinct.to_numpy(dtype=object)
    values = [plain(v) for v in uniques[~pd.isna(uniques)]]
    if any(isinstance(v, float) and v.is_integer() for v in values) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        values = [int(v) if float(v).is_integer() else v for v in values]
    values = list(dict.fromkeys(values))  # equal values held by different objects
    try:
        values = sorted(values)
    except TypeError:  # mixed types: sort by text, stably
        values = sorted(values, key=lambda v: (type(v).__name__, str(v)))
    return list(dict.fromkeys(_level(v) for v in values))


def _truth(value: Any) -> bool | None:
    """What a cell of a true/false column says: a boolean as it is, the text ``"true"`` or
    ``"false"`` in any case, the number 1 or 0 (``1.0``, ``0.0``); ``None`` for any other value
    (a missing one, ``"yes"``, ``2``), which no true/false level matches.

    Example:
        >>> _truth("FALSE"), _truth(1.0), _truth(np.True_), _truth("1"), _truth(2)
        (False, True, True, None, None)
    """
    value = plain(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.lower())
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return None


def _truth_positions(vocab: Sequence[Any]) -> dict[bool, int] | None:
    """For a true/false vocabulary (booleans, or the text ``"True"``/``"False"``, one level
    per meaning), the vocabulary position of each meaning; ``None`` for any other vocabulary,
    whose levels are matched only as they are (an integer column's ``[0, 1]`` is numbers).

    Example:
        >>> _truth_positions([False, True]), _truth_positions(["True"]), _truth_positions([0, 1])
        ({False: 0, True: 1}, {True: 0}, None)
    """
    if not vocab or not all(isinstance(level, (bool, str)) for level in vocab):
        return None
    truths = [_truth(level) for level in vocab]
    if None in truths or len(set(truths)) < len(truths):  # "True" and True: which one?
        return None
    return {truth: position for position, truth in enumerate(truths) if truth is not None}


def _median(values: np.ndarray, n_present: int) -> float:
    """The exact median of the non-NaN ``values`` (0.0 when there are none), as ``np.median``
    computes it. For a long column, a seeded sample brackets the middle ranks and only the
    values inside the bracket are partitioned (``np.median`` of every value when the bracket
    misses them)."""
    if n_present == 0:
        return 0.0
    if len(values) > QUANTILE_SAMPLE:
        sample = values[np.random.default_rng(1).integers(0, len(values), 20_000)]
        sample = np.sort(sample[~np.isnan(sample)])
        middle, margin = len(sample) // 2, int(5 * np.sqrt(len(sample))) + 10
        if len(sample) > 2 * margin:
            low, high = sample[middle - margin], sample[middle + margin]
            below = int(np.count_nonzero(values < low))
            inside = (values >= low)
            inside &= values <= high
            bracket = values[inside]
            ranks = np.array([(n_present - 1) // 2, n_present // 2]) - below
            if ranks[0] >= 0 and ranks[1] < len(bracket):
                bracket.partition(ranks)
                return float(np.mean(bracket[ranks]))
    return float(np.nanmedian(values))


def _sample_quantiles(values: np.ndarray, n_quantiles: int) -> list[float]:
    """``min(n_quantiles, rows)`` evenly spaced quantiles of ``values`` (from a seeded sample
    of :data:`QUANTILE_SAMPLE` rows when there are more)."""
    levels = np.linspace(0, 1, min(n_quantiles, len(values)))
    if len(values) > QUANTILE_SAMPLE:
        values = values[np.random.default_rng(0).integers(0, len(values), QUANTILE_SAMPLE)]
    ordered = np.sort(values)
    # np.quantile's "linear" rule, on the sorted values (np.quantile would partition again)
    position = levels * (len(ordered) - 1)
    below = np.floor(position)
    gamma = position - below
    below = below.astype(np.intp)
    low, high = ordered[below], ordered[np.minimum(below + 1, len(ordered) - 1)]
    difference = high - low
    result = np.where(gamma >= 0.5, high - difference * (1 - gamma), low + difference * gamma)
    return result.tolist()


def _row_label(index: pd.Index, position: int) -> Any:
    return plain(index[position])


class TabularProcessor:
    """Fill-missing, categorify and normalise, fitted on training rows and replayed exactly.

    Args:
        cat_names: categorical columns.
        cont_names: continuous columns.
        date_names: date columns, expanded into parts before the other steps.
        normalize: ``"quantile"`` (default) or ``"standard"`` scaling of continuous columns.
        n_quantiles: number of training quantiles kept per column for ``"quantile"``.

    After :meth:`fit`, ``cat_columns`` lists the columns of the categorical array (the
    categorical inputs, then the ``_na`` indicators) and ``cont_columns`` those of the
    continuous array; ``cardinalities`` gives each categorical column's number of codes
    (its vocabulary plus the unknown level 0).

    Example:
        >>> frame = pd.DataFrame({"kind": ["a", "b", "a"], "value": [1.0, 2.0, 3.0]})
        >>> processor = TabularProcessor(["kind"], ["value"]).fit(frame)
        >>> processor.cardinalities, processor.means["value"]
        ([3], 2.0)
    """

    def __init__(self, cat_names: Sequence[str] = (), cont_names: Sequence[str] = (),
                 date_names: Sequence[str] = (), normalize: str = "quantile",
                 n_quantiles: int = 1000) -> None:
        if normalize not in NORMALIZERS:
            raise ember.DataError(f"normalize must be one of {NORMALIZERS}, got {normalize!r}")
        self.normalize, self.n_quantiles = normalize, n_quantiles
        self.quantiles: dict[str, list[float]] = {}
        cat_names = column_list(cat_names, "cat_names")
        cont_names = column_list(cont_names, "cont_names")
        date_names = column_list(date_names, "date_names")
        lists = {"categorical": cat_names, "continuous": cont_names, "date": date_names}
        kinds = list(lists)
        for first, second in [(a, b) for i, a in enumerate(kinds) for b in kinds[i + 1:]]:
            overlap = [name for name in lists[first] if name in lists[second]]
            if overlap:
                raise ember.DataError(
                    f"columns {overlap} are listed as both {first} and {second}; put each "
                    f"column in one list")
        part_cats, part_conts = date_part_names(date_names)
        taken = [name for name in [*cat_names, *cont_names] if name in {*part_cats, *part_conts}]
        if taken:
            # the part replaced the column in the layout: training read one, inference the other,
            # and a frame with both was refused by the model's shape (or predicted wrongly)
            dates = [date for date in date_names if any(
                str(name).startswith(f"{date}_") for name in taken)]
            raise ember.DataError(
                f"column(s) {taken} have the name of a part that the date column(s) {dates} "
                f"are expanded into (<date>_{'/'.join(DATE_CAT_PARTS + DATE_CONT_PARTS)}); "
                f"rename them, e.g. df.rename(columns={{{taken[0]!r}: "
                f"{str(taken[0]) + '_given'!r}}})")
        self.date_names = list(date_names)
        self.cat_names = [*cat_names, *part_cats]
        self.cont_names = [*cont_names, *part_conts]
        self.vocabs: dict[str, list[Any]] = {}
        self.ordered: dict[str, bool] = {}
        self.medians: dict[str, float] = {}
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}
        self.na_names: list[str] = []
        self.fitted = False
        # derived from the fitted state, built on first use (not part of state())
        self._quantile_maps: dict[str, QuantileMap] = {}
        self._lookups: dict[str, tuple[pd.Index, bool, bool, dict[bool, int] | None]] = {}

    # ------------------------------------------------------------------ layout
    @property
    def input_names(self) -> list[str]:
        """The raw columns a frame must have: categorical, continuous and date columns.

        Example:
            >>> TabularProcessor(["a"], ["b"], ["d"]).input_names
            ['a', 'b', 'd']
        """
        part_cats, part_conts = date_part_names(self.date_names)
        cats = [n for n in self.cat_names if n not in part_cats]
        conts = [n for n in self.cont_names if n not in part_conts]
        return [*cats, *conts, *self.date_names]

    @property
    def cat_columns(self) -> list[str]:
        """Columns of the categorical array: categorical inputs, then ``_na`` indicators."""
        return [*self.cat_names, *(f"{name}_na" for name in self.na_names)]

    @property
    def cont_columns(self) -> list[str]:
        """Columns of the continuous array."""
        return list(self.cont_names)

    @property
    def cardinalities(self) -> list[int]:
        """Number of codes of each categorical column (vocabulary + the unknown level 0)."""
        return [len(self.vocabs[name]) + 1 for name in self.cat_names] + [3] * len(self.na_names)

    def feature_groups(self) -> dict[str, tuple[list[int], list[int]]]:
        """For each raw input column, the indices of the categorical and continuous array
        columns that come from it (a date's parts, a column's ``_na`` indicator).

        Example:
            >>> frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, None]})
            >>> TabularProcessor(["a"], ["b"]).fit(frame).feature_groups()["b"]
            ([1], [0])
        """
        cat_columns, cont_columns = self.cat_columns, self.cont_columns
        # an indicator by its place after the categorical inputs, not by its name: a
        # categorical input of the user's may be called "<col>_na" too
        indicator = {name: len(self.cat_names) + k for k, name in enumerate(self.na_names)}
        groups: dict[str, tuple[list[int], list[int]]] = {}
        for name in self.input_names:
            if name in self.date_names:
                part_cats, part_conts = date_part_names([name])
                cats = [cat_columns.index(n) for n in part_cats]
                conts = [cont_columns.index(n) for n in part_conts]
                cats += [indicator[n] for n in part_conts if n in indicator]
            elif name in self.cat_names:
                cats, conts = [cat_columns.index(name)], []
            else:
                conts = [cont_columns.index(name)]
                cats = [indicator[name]] if name in indicator else []
            groups[name] = (cats, conts)
        return groups

    # ------------------------------------------------------------------ fitting
    def fit(self, frame: pd.DataFrame) -> TabularProcessor:
        """Learn vocabularies, medians, means and standard deviations from training rows.

        Example:
            >>> levels = pd.Categorical(["lo", "hi"], ["lo", "hi"], ordered=True)
            >>> frame = pd.DataFrame({"a": levels})
            >>> TabularProcessor(["a"]).fit(frame).vocabs["a"]
            ['lo', 'hi']
        """
        self._fit(frame, transform=False)
        return self

    def fit_transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit` on ``frame``, then :meth:`transform` it, reading and hashing each
        column once (the same result, faster).

        Example:
            >>> frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 3.0]})
            >>> cats, conts = TabularProcessor(["a"], ["b"], normalize="standard").fit_transform(
            ...     frame)
            >>> cats.ravel().tolist(), conts.ravel().tolist()
            ([1, 2], [-1.0, 1.0])
        """
        outputs = self._fit(frame, transform=True)
        assert outputs is not None
        return outputs

    def _fit(self, frame: pd.DataFrame,
             transform: bool) -> tuple[np.ndarray, np.ndarray] | None:
        if len(frame) == 0:
            raise ember.DataError("cannot fit the processors on an empty frame; give rows")
        column = self._columns(frame)
        self._quantile_maps, self._lookups = {}, {}
        self.na_names = []
        conts = np.empty((len(self.cont_names), len(frame)) if transform else (0, 0),
                         dtype=np.float32)
        missing_rows = {}
        for position, name in enumerate(self.cont_names):
            values = self._numbers(column(name), frame.index, warn=True)
            missing = np.isnan(values)
            has_missing = bool(missing.any())
            median = _median(values, len(values) - int(np.count_nonzero(missing)))
            if has_missing:
                self.na_names.append(name)
                values[missing] = median
                if transform:
                    missing_rows[name] = missing
            mean = float(values.mean())
            # two passes over one temporary, no BLAS call (whose idle threads would spin)
            squares = np.subtract(values, mean)
            np.square(squares, out=squares)
            std = float(np.sqrt(squares.sum() / len(values)))
            del squares
            self.medians[name] = median
            self.means[name] = mean
            self.stds[name] = std if std > 1e-12 and np.isfinite(std) else 1.0
            if self.normalize == "quantile":
                self.quantiles[name] = _sample_quantiles(values, self.n_quantiles)
            if transform:
                self._scale(name, values, out=conts[position])
        # the continuous columns came first: they decide the _na indicator columns
        cats = np.empty((len(self.cat_columns), len(frame)) if transform else (0, 0),
                        dtype=np.int64)
        for position, name in enumerate(self.cat_names):
            series = column(name)
            codes, distinct = _factorize(series)
            self.vocabs[name] = _vocab(series, distinct)
            self.ordered[name] = bool(isinstance(series.dtype, pd.CategoricalDtype)
                                      and series.cat.ordered)
            if transform:
                self._write_codes(name, codes, distinct, out=cats[position])
        for position, name in enumerate(self.na_names if transform else [],
                                        start=len(self.cat_names)):  # 1 present, 2 missing
            np.add(missing_rows.pop(name), 1, out=cats[position], casting="unsafe")
        self.fitted = True
        return (cats.T, conts.T) if transform else None

    # ---------------------------------------------------------------- replaying
    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Process ``frame`` into ``(cats int64 [rows, n_cat], conts float32 [rows, n_cont])``.

        Each output is built once, column by column, so both arrays are column-major (Fortran
        order: each column contiguous); ``np.ascontiguousarray`` gives row-major copies.

        Example:
            >>> frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 3.0]})
            >>> processor = TabularProcessor(["a"], ["b"], normalize="standard").fit(frame)
            >>> cats, conts = processor.transform(frame)
            >>> cats.ravel().tolist(), conts.ravel().tolist()
            ([1, 2], [-1.0, 1.0])
        """
        if not self.fitted:
            raise ember.DataError("the processor is not fitted; call fit(training_frame) first")
        column = self._columns(frame)
        n = len(frame)
        cats = np.empty((len(self.cat_columns), n), dtype=np.int64)
        conts = np.empty((len(self.cont_names), n), dtype=np.float32)
        for position, name in enumerate(self.cat_names):
            codes, distinct = _factorize(column(name))
            self._write_codes(name, codes, distinct, out=cats[position])
        indicators = {name: len(self.cat_names) + k for k, name in enumerate(self.na_names)}
        for position, name in enumerate(self.cont_names):
            values = self._numbers(column(name), frame.index, warn=True)
            missing = np.isnan(values)
            if name in indicators:  # 1 present, 2 missing
                np.add(missing, 1, out=cats[indicators[name]], casting="unsafe")
            if missing.any():
                values[missing] = self.medians[name]
            self._scale(name, values, out=conts[position])
        return cats.T, conts.T

    def _columns(self, frame: pd.DataFrame) -> Any:
        """A getter for the input and date-part columns of ``frame`` (checked, not copied)."""
        frame = self._check_columns(frame)
        parts = date_part_columns(frame, self.date_names)
        return lambda name: parts[name] if name in parts else frame[name]

    def _scale(self, name: str, values: np.ndarray, out: np.ndarray) -> None:
        if self.normalize == "standard":
            values -= self.means[name]
            np.divide(values, self.stds[name], out=out)
            return
        if name not in self._quantile_maps:
            self._quantile_maps[name] = QuantileMap(self.quantiles[name])
        self._quantile_maps[name](values, out=out)

    def _unscale(self, name: str, values: np.ndarray) -> np.ndarray:
        if self.normalize == "standard":
            return values * self.stds[name] + self.means[name]
        quantiles = np.asarray(self.quantiles[name])
        return np.interp(values, _normal_references(len(quantiles)), quantiles)

    def decode(self, cats: np.ndarray, conts: np.ndarray) -> pd.DataFrame:
        """Turn processed arrays back into readable raw-looking columns (for ``show_results``).

        Unknown codes show as ``"#unknown"``; filled values show as the median they became.

        Example:
            >>> frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 3.0]})
            >>> processor = TabularProcessor(["a"], ["b"]).fit(frame)
            >>> processor.decode(*processor.transform(frame))["a"].tolist()
            ['x', 'y']
        """
        columns: dict[str, Any] = {}
        for position, name in enumerate(self.cat_names):
            levels = np.array(["#unknown", *self.vocabs[name]], dtype=object)
            columns[name] = levels[np.asarray(cats)[:, position]]
        for position, name in enumerate(self.cont_names):
            columns[name] = self._unscale(name, np.asarray(conts, dtype=np.float64)[:, position])
        return pd.DataFrame(columns)

    # ------------------------------------------------------------------ helpers
    def _check_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise ember.DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        check_unique_columns(frame, self.input_names)
        # a column labelled by a number (read_csv(header=None)) arrives by its text from JSON,
        # whose keys are always text: "0" is column 0
        texts = {str(name): name for name in self.input_names
                 if not isinstance(name, str) and name not in frame.columns
                 and str(name) in frame.columns}
        if texts:
            frame = frame.rename(columns=texts)
        missing = [name for name in self.input_names if name not in frame.columns]
        if missing:
            raise ember.DataError(
                f"column(s) {missing} missing from the frame; the model was trained with "
                f"columns {self.input_names}. Add them (use None/NaN for unknown values)"
            )
        return frame

    @staticmethod
    def _numbers(series: pd.Series, index: pd.Index, warn: bool) -> np.ndarray:
        name = series.name
        if pd.api.types.is_complex_dtype(series.dtype):  # the cast kept the real part alone
            raise ember.DataError(
                f"column {name!r} holds complex numbers; a continuous column takes real ones: "
                f"give the real and imaginary parts as two columns "
                f"(df[name].to_numpy().real and .imag)")
        if pd.api.types.is_bool_dtype(series.dtype):
            series = series.astype("float64")
        elif pd.api.types.is_timedelta64_dtype(series.dtype):  # seconds, whatever its unit
            series = series.dt.total_seconds()
        elif not pd.api.types.is_numeric_dtype(series.dtype):
            try:
                numbers = pd.to_numeric(series, errors="coerce")
            except OverflowError:  # a whole number beyond float64 (JSON can send 10**400)
                huge = series.map(_too_large_for_a_float)
                position = int(np.argmax(huge.to_numpy(dtype=bool)))
                raise ember.DataError(
                    f"column {name!r}, row {_row_label(index, position)!r}: "
                    f"{str(series.iloc[position])[:20]}... is too large for a number (at most "
                    f"about 1.8e308) in a continuous column; fix or blank it (NaN is filled "
                    f"with the training median)") from None
            bad = (numbers.isna() & series.notna()).to_numpy()
            if bad.any():
                position = int(np.argmax(bad))
                raise ember.DataError(
                    f"column {name!r}, row {_row_label(index, position)!r}: "
                    f"{series.iloc[position]!r} is not a number ({int(bad.sum())} such row(s)) "
                    f"in a continuous column; fix these values, blank them (NaN is filled with "
                    f"the training median), or make {name!r} categorical with cat_names="
                )
            series = numbers
        values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        infinite = np.isinf(values)
        if infinite.any():
            if warn:
                ember.utils.warn(
                    f"column {name!r}: {int(infinite.sum())} infinite value(s) (first at row "
                    f"{_row_label(index, int(np.argmax(infinite)))!r}) are treated as missing")
            values[infinite] = np.nan
        return values

    def _write_codes(self, name: str, codes: np.ndarray, distinct: pd.Series,
                     out: np.ndarray) -> None:
        """Write each row's code into ``out``: 1 + the vocabulary position of its value, 0 for
        a missing or unseen value. Only the ``distinct`` values are looked up."""
        found = self._lookup(name, distinct, _is_text(distinct)) if self.vocabs[name] else \
            np.full(len(distinct), -1, dtype=np.int64)
        codes_of_distinct = np.append(found + 1, 0)  # code -1 (missing) takes the last entry
        np.take(codes_of_distinct, codes, out=out, mode="wrap")  # "wrap": no bounds buffer

    def _lookup(self, name: str, values: pd.Series, text: bool) -> np.ndarray:
        """Vocabulary positions of a few distinct ``values`` (-1: missing or unseen), matching
        integer categories given as floats or text, numbers against a text vocabulary, and
        ``"true"``/``"false"``/1/0 against a true/false vocabulary (see :func:`_truth`)."""
        if name not in self._lookups:
            vocab = self.vocabs[name]
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vocab)
            is_text = all(isinstance(v, str) for v in vocab)
            self._lookups[name] = (pd.Index(vocab), numeric, is_text, _truth_positions(vocab))
        index, numeric_vocab, text_vocab, truths = self._lookups[name]
        if numeric_vocab and text:
            found = index.get_indexer(pd.to_numeric(values, errors="coerce"))
        elif text_vocab and (not text or pd.api.types.infer_dtype(values, skipna=True)
                             not in ("string", "empty")):  # numbers, dates, intervals
            missing = values.isna()
            found = index.get_indexer(values.astype(object).where(
                missing, values.map(lambda v: str(_level(v)))))
            # a whole number read as a float (its column had a blank) matches its integer
            # text: 10001.0 is the zip code "10001"
            retry = np.flatnonzero((found < 0) & ~missing.to_numpy())
            if len(retry):
                whole = values.iloc[retry].map(lambda v: _whole_number_text(_level(v)))
                found[retry] = index.get_indexer(whole)
        else:
            found = index.get_indexer(values)
        if truths is not None:  # "True" (JSON, a re-read CSV) or 1.0 for the level True
            retry = np.flatnonzero(found < 0)
            if len(retry):
                found[retry] = [truths.get(_truth(v), -1)  # type: ignore[arg-type]
                                for v in values.iloc[retry]]
        return found

    # ------------------------------------------------------------------ export
    def state(self) -> dict[str, Any]:
        """JSON-able state: everything :meth:`transform` needs.

        Example:
            >>> import json
            >>> frame = pd.DataFrame({"a": ["x"], "b": [1.0]})
            >>> _ = json.dumps(TabularProcessor(["a"], ["b"]).fit(frame).state())
        """
        part_cats, part_conts = date_part_names(self.date_names)
        return {
            "cat_names": [n for n in self.cat_names if n not in part_cats],
            "cont_names": [n for n in self.cont_names if n not in part_conts],
            "date_names": self.date_names,
            "vocabs": self.vocabs,
            "ordered": self.ordered,
            "medians": self.medians,
            "means": self.means,
            "stds": self.stds,
            "na_names": self.na_names,
            "normalize": self.normalize,
            "n_quantiles": self.n_quantiles,
            "quantiles": self.quantiles,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularProcessor:
        """Rebuild a fitted processor from :meth:`state`.

        Example:
            >>> frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]})
            >>> processor = TabularProcessor(["a"], ["b"]).fit(frame)
            >>> again = TabularProcessor.from_state(processor.state())
            >>> (again.transform(frame)[1] == processor.transform(frame)[1]).all()
            np.True_
        """
        processor = cls(state["cat_names"], state["cont_names"], state.get("date_names", []),
                        normalize=state.get("normalize", "standard"),
                        n_quantiles=state.get("n_quantiles", 1000))
        # JSON object keys are text: key the statistics by the columns' own names again (a
        # frame read with header=None names its columns 0, 1, ...)
        names = {str(name): name for name in [*processor.cat_names, *processor.cont_names]}

        def by_name(mapping: dict[str, Any]) -> dict[Any, Any]:
            return {names.get(key, key): value for key, value in mapping.items()}

        processor.quantiles = {k: list(v) for k, v in by_name(state.get("quantiles", {})).items()}
        processor.vocabs = {k: list(v) for k, v in by_name(state["vocabs"]).items()}
        processor.ordered = by_name(state.get("ordered", {}))
        processor.medians = by_name(state["medians"])
        processor.means = by_name(state["means"])
        processor.stds = by_name(state["stds"])
        processor.na_names = list(state["na_names"])
        processor.fitted = True
        return processor

    def __repr__(self) -> str:
        return (f"TabularProcessor(cats={self.cat_names}, conts={self.cont_names}, "
                f"dates={self.date_names}, na={self.na_names})")


def _too_large_for_a_float(value: Any) -> bool:
    """Whether ``value`` is a whole number that no float64 can hold (``10**400``).

    Example:
        >>> _too_large_for_a_float(10**400), _too_large_for_a_float(2**70)
        (True, False)
    """
    if not isinstance(value, int):
        return False
    try:
        float(value)
    except OverflowError:
        return True
    return False
