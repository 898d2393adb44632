"""Tables as Ember data: :class:`TabularData` from a pandas frame or a CSV file.

The target column decides the task: a text, ``category`` or ``bool`` target (or an integer
target with few distinct values) is single-label classification; a float target (or a duration,
in seconds) is regression, optionally trained on ``log(target)``; a list of numeric targets
is multi-target regression; a column of label lists (or a list of true/false columns, one per
class) is multi-label.
Batches are ``(cats LongTensor [bs, n_cat], conts FloatTensor [bs, n_cont], target)``.

Example:
    >>> from ember_tabular import TabularData, load_sample
    >>> frame = load_sample("diamonds")
    >>> data = TabularData.from_df(frame, "price", log_target=True, verbose=False)
    >>> data.target_kind, data.processor.cat_names
    ('regression', ['cut', 'color', 'clarity'])
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

import ember
from ember.utils import plain, warn
from ember_tabular.transforms import (
    TabularProcessor,
    check_unique_columns,
    column_list,
    infer_column_kinds,
)

__all__ = ["TabularData", "TabularDataset", "items_to_frame"]


class TabularDataset(Dataset):
    """Processed rows held as three tensors; a batch is gathered in one indexing operation.

    ``__getitems__`` (used by torch's ``DataLoader``) returns a whole batch
    ``(cats, conts, targets)`` at once, so a loader costs no per-row Python work. Rows
    without targets (``targets=None``: a test frame without the target column) give
    ``(cats, conts)``.

    Example:
        >>> import torch
        >>> ds = TabularDataset(torch.zeros(4, 1, dtype=torch.long), torch.ones(4, 2),
        ...                     torch.arange(4))
        >>> [t.shape[0] for t in ds.__getitems__([0, 2])]
        [2, 2, 2]
    """

    def __init__(self, cats: Tensor, conts: Tensor, targets: Tensor | None) -> None:
        self.cats, self.conts, self.targets = cats, conts, targets

    def __len__(self) -> int:
        return len(self.cats)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        if self.targets is None:
            return self.cats[index], self.conts[index]
        return self.cats[index], self.conts[index], self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, ...]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        if self.targets is None:
            return self.cats[rows], self.conts[rows]
        return self.cats[rows], self.conts[rows], self.targets[rows]


def _batch_as_is(batch: Any) -> Any:
    """Collate function for datasets whose ``__getitems__`` already returns a batch."""
    return tuple(batch)


def items_to_frame(items: Any, required: Sequence[str] = ()) -> pd.DataFrame:
    """Gather raw inference items into one frame: a DataFrame, or a list of dicts, pandas Series
    and DataFrames (a DataFrame in the list contributes all its rows).

    Rows from dicts and Series are labelled by their position in ``items``; a DataFrame's rows
    keep its own index, so errors name the row you gave. A dict or Series row without one of
    the ``required`` columns is a :class:`ember.DataError` naming the item: gathering rows
    fills a column some rows lack with NaN (an unknown value), so a forgotten column would
    otherwise be predicted as unknown whenever another row has it.

    Example:
        >>> items_to_frame([{"a": 1}, {"a": 2}])["a"].tolist()
        [1, 2]
    """
    if isinstance(items, pd.DataFrame):
        return items
    if isinstance(items, (Mapping, pd.Series)):
        items = [items]
    frames: list[pd.DataFrame] = []
    records: list[dict[str, Any]] = []
    labels: list[int] = []

    def flush() -> None:
        if records:
            frames.append(pd.DataFrame.from_records(records, index=labels))
            records.clear()
            labels.clear()

    for position, item in enumerate(items):
        number = ember.item_number(position)  # its place among all the items given
        if isinstance(item, pd.DataFrame):
            flush()
            frames.append(item)
        elif isinstance(item, (Mapping, pd.Series)):
            record = item.to_dict() if isinstance(item, pd.Series) else dict(item)
            # a column labelled by a number (read_csv(header=None)) comes from JSON by its
            # text, "0", as TabularProcessor reads it
            missing = [name for name in required if name not in record
                       and str(name) not in record]
            if missing:
                names = ", ".join(repr(name) for name in missing)
                raise ember.DataError(
                    f"item {number} has no column{'s' if len(missing) > 1 else ''} {names}; "
                    f"give every row each input column ({', '.join(map(str, required))}), "
                    f"null (None) for a value that is unknown")
            records.append(record)
            labels.append(number)  # the frame names a row by its item number
        else:
            raise ember.DataError(
                f"item {number} is a {type(item).__name__}; tabular models predict on dicts "
                f"(column -> value), pandas Series (one row) or DataFrames"
            )
    flush()
    if not frames:
        raise ember.DataError("no rows to predict on; give at least one dict, Series or row")
    return frames[0] if len(frames) == 1 else pd.concat(frames)


class TabularData(ember.Data):
    """A table ready for training: processors fitted on the training rows, loaders of tensors.

    Build it with :meth:`from_df` or :meth:`from_csv`. ``processor`` holds the preprocessing
    (see :class:`ember_tabular.TabularProcessor`), ``target_names`` the target column(s).
    ``log_target`` means the model learns ``log(target)`` and predictions are turned back with
    ``exp``; ``y_range`` bounds the model's output (in the space it learns in).

    Example:
        >>> from ember_tabular import load_sample
        >>> data = TabularData.from_df(load_sample("lending_club"), "Class", verbose=False)
        >>> data.target_kind, data.classes
        ('single_label', ['bad', 'good'])
    """

    kind = "tabular"

    def __init__(
        self,
        train_dl: Any,
        valid_dl: Any,
        test_dl: Any = None,
        *,
        processor: TabularProcessor,
        target_names: Sequence[str],
        target_kind: str,
        classes: Sequence[Any] | None = None,
        n_out: int | None = None,
        log_target: bool = False,
        y_range: Sequence[float] | None = None,
        target_mean: Sequence[float] | None = None,
        target_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__(train_dl, valid_dl, test_dl, target_kind=target_kind, classes=classes,
                         n_out=n_out, input_kind="tabular")
        self.processor = processor
        self.target_names = list(target_names)
        self.log_target = log_target
        self.y_range = [float(v) for v in y_range] if y_range is not None else None
        self.target_mean = list(target_mean) if target_mean is not None else None
        self.target_std = list(target_std) if target_std is not None else None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_df(
        cls,
        df: pd.DataFrame,
        target: str | Sequence[str],
        cat_names: Sequence[str] | None = None,
        cont_names: Sequence[str] | None = None,
        valid_pct: float = 0.2,
        seed: int = 0,
        valid_col: str | None = None,
        *,
        bs: int | None = None,
        valid_bs: int | None = None,
        procs: TabularProcessor | None = None,
        date_names: Sequence[str] | None = None,
        target_kind: str | None = None,
        log_target: bool = False,
        y_range: Sequence[float] | None = None,
        max_card: int = 20,
        test_df: pd.DataFrame | None = None,
        num_workers: int = 0,
        verbose: bool = True,
    ) -> TabularData:
        """Build loaders from a data frame; the processors are fitted on the training rows only.

        Args:
            df: the table, one row per example.
            target: the target column, or a list of numeric columns (multi-target regression)
                or of true/false columns, one per class (multi-label). A column whose rows are
                lists of labels (``["red", "round"]``, ``[]`` for none) is multi-label.
                Columns may be labelled by numbers (``read_csv(header=None)`` gives 0, 1, ...).
            cat_names / cont_names / date_names: the input columns by kind (a list, or one
                column name alone). A column may be in one list only. Any list left as
                ``None`` is inferred (see :func:`infer_column_kinds`) and the result is printed
                so you can correct it. Columns in none of the lists are not used.
            valid_pct / seed: seeded random validation split (ignored with ``valid_col``).
            valid_col: a boolean column, ``True`` for validation rows. A validation class that
                no training row has is an error (a ``Categorical`` target keeps its
                categories); a random split that does it warns (:func:`ember.warn_unseen_classes`).
            bs / valid_bs: batch sizes (chosen from the number of rows when not given).
            procs: a :class:`TabularProcessor` to use instead of the default one (fitted on the
                training rows unless it is fitted already).
            target_kind: ``"single_label"``, ``"multi_label"`` or ``"regression"`` to
                override the inference (``"multi_label"`` makes a list of 0/1 columns one
                multi-label target).
            log_target: learn ``log(target)`` (positive, skewed targets such as prices).
            y_range: ``(low, high)`` output range of the model (in log space with
                ``log_target``); outputs are squashed into it with a scaled sigmoid.
            max_card: integer columns (and integer targets) with at most this many distinct
                values are treated as categories.
            test_df: an optional test table, processed with the training statistics. Without
                the target column(s) (a competition's test set), or with a target column
                empty in every row, it is a test set without labels:
                ``learn.get_preds("test")`` predicts its rows (targets ``None``),
                ``learn.validate("test")`` refuses it (``data.test_labelled`` is False).
            verbose: print the inferred column kinds and task.

        Example:
            >>> from ember_tabular import load_sample
            >>> frame = load_sample("diamonds")
            >>> data = TabularData.from_df(frame, "price", log_target=True, verbose=False)
            >>> cats, conts, target = data.one_batch()
            >>> cats.dtype, conts.dtype, target.dtype
            (torch.int64, torch.float32, torch.float32)
        """
        if not isinstance(df, pd.DataFrame):
            raise ember.DataError(f"from_df needs a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise ember.DataError("the data frame is empty; give a frame with rows")
        check_unique_columns(df)
        cat_names, cont_names, date_names = (
            None if names is None else column_list(names, argument)
            for names, argument in [(cat_names, "cat_names"), (cont_names, "cont_names"),
                                    (date_names, "date_names")])
        # one column label (text, or a number: read_csv(header=None) labels columns 0, 1, ...)
        # or a list of them
        target_names = list(target) if isinstance(target, (list, tuple, pd.Index)) else [target]
        for label, argument in [*((name, "target") for name in target_names),
                                (valid_col, "valid_col")]:
            if not isinstance(label, Hashable):  # a Series: pandas' "unhashable type" named none
                name = getattr(label, "name", None)
                name = name if isinstance(name, str) else argument
                raise ember.DataError(
                    f"{argument} takes the name of a column of the frame, not a "
                    f"{type(label).__name__}; put the values in the frame and name them: "
                    f"TabularData.from_df(df.assign({name}=values), ..., {argument}={name!r})")
        absent = [name for name in target_names if name not in df.columns]
        if absent:
            raise ember.DataError(f"target column(s) {absent} not in the frame; its columns "
                                  f"are {list(df.columns)}")
        if valid_col is not None and valid_col not in df.columns:
            raise ember.DataError(f"valid_col {valid_col!r} is not a column of the frame")
        excluded = [*target_names, *([valid_col] if valid_col else [])]
        notes: list[str] = []
        inferred = procs is None and (cat_names is None or cont_names is None
                                      or date_names is None)
        if procs is None:
            cats, conts, dates, notes = infer_column_kinds(df, excluded, max_card)
            cat_names = list(cat_names) if cat_names is not None else (
                [n for n in cats if n not in (cont_names or ()) and n not in (date_names or ())])
            cont_names = list(cont_names) if cont_names is not None else (
                [n for n in conts if n not in cat_names and n not in (date_names or ())])
            date_names = list(date_names) if date_names is not None else (
                [n for n in dates if n not in cat_names and n not in cont_names])
            for name in [*cat_names, *cont_names, *date_names]:
                if name not in df.columns:
                    raise ember.DataError(f"column {name!r} is not in the frame; its columns "
                                          f"are {list(df.columns)}")
                if name in target_names:
                    raise ember.DataError(f"column {name!r} is the target; it cannot also be "
                                          f"an input")
                if valid_col is not None and name == valid_col:
                    raise ember.DataError(
                        f"column {name!r} is valid_col (True for the validation rows); it "
                        f"cannot also be an input: it is False in every training row, and each "
                        f"row to predict would need it. Leave it out of cat_names=/cont_names=")
            procs = TabularProcessor(cat_names, cont_names, date_names)

        train_index, valid_index = _split(df, valid_pct, seed, valid_col)
        train_frame, valid_frame = df.iloc[train_index], df.iloc[valid_index]
        train_arrays = None
        if not procs.fitted:  # fitted and transformed in one pass over the training rows
            train_arrays = procs.fit_transform(train_frame)
        target_kind, classes = _target_kind(df, target_names, target_kind, max_card)
        if target_kind == "single_label":
            _check_seen(train_frame[target_names[0]], valid_frame[target_names[0]],
                        given=valid_col is not None)
        if log_target and target_kind != "regression":
            raise ember.DataError("log_target=True needs a regression target")
        y_range = _checked_y_range(y_range, target_kind, target_names)
        train_y = _targets(train_frame, target_names, target_kind, classes, log_target)
        target_mean = target_std = None
        if target_kind == "regression":
            target_mean, target_std = ember.target_scale(train_y)

        def dataset(frame: pd.DataFrame, targets: Tensor | None = None,
                    arrays: tuple[np.ndarray, np.ndarray] | None = None,
                    labelled: bool = True) -> TabularDataset:
            cats, conts = arrays if arrays is not None else procs.transform(frame)
            if targets is None and labelled:
                targets = _targets(frame, target_names, target_kind, classes, log_target)
            return TabularDataset(torch.from_numpy(cats), torch.from_numpy(conts), targets)

        train_ds = dataset(train_frame, train_y, train_arrays)
        valid_ds = dataset(valid_frame)
        test_ds, test_labelled = None, True
        if test_df is not None:
            # a target column with no label in any row (training and test rows concatenated,
            # then split on the missing target) is a test set without labels, as is a frame
            # without the column
            present = [name for name in target_names if name in test_df.columns
                       and not (len(test_df) and test_df[name].isna().all())]
            if present and len(present) < len(target_names):
                absent = [name for name in target_names if name not in present]
                raise ember.DataError(f"test_df has labels in the target column(s) {present} "
                                      f"but none in {absent}; give all of them (a test set "
                                      f"with labels) or none (a test set without labels)")
            test_labelled = bool(present)
            try:
                test_ds = dataset(test_df, labelled=test_labelled)
            except ember.DataError as error:  # its rows' labels may be the training frame's too
                raise ember.DataError(f"test_df: {error}") from None
        if bs is None:
            bs = _default_bs(len(train_ds))
        train_dl, valid_dl, test_dl = ember.make_loaders(
            train_ds, valid_ds, test_ds, bs=bs, valid_bs=valid_bs or max(bs * 2, 1024),
            collate_fn=_batch_as_is, num_workers=num_workers)
        n_out = len(classes) if classes is not None else len(target_names)
        data = cls(train_dl, valid_dl, test_dl, processor=procs, target_names=target_names,
                   target_kind=target_kind, classes=classes, n_out=n_out, log_target=log_target,
                   y_range=y_range, target_mean=target_mean, target_std=target_std)
        data.test_labelled = test_labelled
        if verbose and inferred:
            print(data.describe(notes))
        return data

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], target: str | Sequence[str],
                 read_options: Mapping[str, Any] | None = None, **options: Any) -> TabularData:
        """Read a CSV file with ``pandas.read_csv(path, **read_options)`` and call
        :meth:`from_df` with ``options``.

        Example:
            >>> from ember_tabular.datasets import sample_path
            >>> data = TabularData.from_csv(sample_path("lending_club"), "Class", verbose=False)
            >>> data.n_out
            2
        """
        file = Path(path).expanduser()  # "~/diamonds.csv" is in the home folder, as in a shell
        if not file.is_file():
            raise ember.DataError(f"no CSV file at {file}")
        try:
            frame = pd.read_csv(file, **dict(read_options or {}))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
            raise ember.DataError(f"{file} could not be read as CSV: {error}") from None
        return cls.from_df(frame, target, **options)

    def describe(self, notes: Sequence[str] = ()) -> str:
        """A readable summary of the task and the column kinds (printed by :meth:`from_df`).

        Example:
            >>> # print(data.describe())
        """
        processor = self.processor
        if self.target_kind in ("single_label", "multi_label"):
            task = f"classification into {len(self.classes or [])} classes {self.classes[:10]}"
            if self.target_kind == "multi_label":
                task = "multi-label " + task
        else:
            task = "regression" + (f" of {len(self.target_names)} targets"
                                   if len(self.target_names) > 1 else "")
            if self.log_target:
                task += " on log(target)"
        cats = []
        for name in processor.cat_names:
            if name in processor.vocabs:
                levels = len(processor.vocabs[name])
                ordered = ", ordered" if processor.ordered.get(name) else ""
                cats.append(f"{name} ({levels} levels{ordered})")
        lines = [
            f"TabularData: target {', '.join(map(repr, self.target_names))} -> {task}",
            f"  categorical ({len(cats)}): {', '.join(cats) or '-'}",
            f"  continuous ({len(processor.cont_names)}): "
            f"{', '.join(map(str, processor.cont_names)) or '-'}",
        ]
        if processor.date_names:
            lines.append(f"  dates, expanded into parts: "
                         f"{', '.join(map(str, processor.date_names))}")
        if processor.na_names:
            lines.append(f"  missing values filled with the median (+ _na column): "
                         f"{', '.join(map(str, processor.na_names))}")
        lines += [f"  note: {note}" for note in notes]
        lines.append("  change this with cat_names=, cont_names=, date_names=, target_kind=")
        return "\n".join(lines)

    # ------------------------------------------------------------------ inference
    def encode(self, items: Any) -> tuple[Tensor, ...]:
        """Process raw rows (dicts, Series, DataFrames; see :func:`items_to_frame`) into
        ``(cats, conts)`` exactly as the training rows were processed.

        Example:
            >>> # cats, conts = data.encode([{"carat": 0.3, "cut": "Ideal", ...}])
        """
        cats, conts = self.processor.transform(
            items_to_frame(items, required=self.processor.input_names))
        return torch.from_numpy(cats), torch.from_numpy(conts)

    def input_schema(self) -> dict[str, Any]:
        """One raw row for ``ember serve``'s ``/metadata``: an object of column → value, with
        every input column (null for a value that is unknown).

        Example:
            >>> # data.input_schema()["required"] -> ['cut', 'color', 'carat', ...]
        """
        processor = self.processor
        inputs = processor.input_names  # raw columns: a date's parts are derived, not sent
        kinds = [(processor.cat_names, ["string", "number", "boolean", "null"], "a category"),
                 (processor.cont_names, ["number", "null"], "a number"),
                 (processor.date_names, ["string", "null"], "a date (ISO 8601)")]
        properties = {str(name): {"type": types, "description": description}
                      for names, types, description in kinds for name in names
                      if name in inputs}
        return {"type": "object", "properties": properties, "required": list(properties),
                "description": "one row: each input column's value (null when unknown)"}

    def input_specs(self, n_inputs: int) -> list[ember.InputSpec]:
        """The model takes ``cats`` (int64 codes, ``(batch, n_cat)``) and ``conts`` (float32,
        ``(batch, n_cont)``), as :meth:`encode` returns them (names for ONNX export).

        Example:
            >>> # [spec.name for spec in data.input_specs(2)] -> ['cats', 'conts']
        """
        return [ember.InputSpec("cats"), ember.InputSpec("conts")]

    def predict_batch(self, model: torch.nn.Module, items: Sequence[Any], device: Any = None,
                      bs: int = 4096, *, probs: bool = False, **options: Any) -> list[Any]:
        """Decoded predictions for raw rows: the whole input is processed at once, then the
        model runs in batches of ``bs``. A DataFrame inside ``items`` contributes all its rows,
        so ``learn.predict_batch([frame])`` predicts a whole table. ``probs=True`` gives a
        classifier's :class:`ember.Prediction` per row (the class and each class's
        probability); a regression refuses it. No items (``[]``), like a frame of no rows,
        give ``[]``.

        Example:
            >>> # learn.predict_batch([frame]) -> [512.3, 1203.9, ...]
            >>> # learn.predict(row, probs=True) -> Prediction('good', {'bad': 0.2, 'good': 0.8})
        """
        self.check_options(options, probs)
        if not isinstance(items, (pd.DataFrame, pd.Series, Mapping)):
            items = list(items)
            if not items:  # a batch of nothing, as every Data answers it
                return []
        cats, conts = self.encode(items)
        batches = ((cats[start:start + bs], conts[start:start + bs])
                   for start in range(0, len(cats), bs))
        return self.predict_encoded(model, batches, device, probs=probs)

    def decode(self, outputs: Tensor, threshold: float = 0.5) -> list[Any]:
        """Model outputs → classes, or floats in the target's own units (``exp`` undone for
        ``log_target``).

        Example:
            >>> # data.decode(model(cats, conts)) -> [326.0, 1250.5]
        """
        if self.target_kind == "regression" and self.log_target:
            outputs = outputs.detach().double().exp()
        return super().decode(outputs, threshold)

    def decode_targets(self, targets: Tensor) -> list[Any]:
        """Batch targets in the form :meth:`decode` gives predictions.

        Example:
            >>> # data.decode_targets(yb)
        """
        if self.target_kind == "regression" and self.log_target:
            targets = targets.detach().double().exp()
        return super().decode_targets(targets)

    def feature_importance(self, learn: ember.Learner, **options: Any) -> pd.DataFrame:
        """Permutation importance of each raw column (``learn.feature_importance()``); the
        options are those of :func:`ember_tabular.interpret.feature_importance`.

        Example:
            >>> # learn.feature_importance(n_repeats=3)
        """
        from ember_tabular.interpret import feature_importance

        return feature_importance(learn, **options)

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 9) -> Any:
        """Print and return a frame of ``n`` rows: the inputs (decoded), target and prediction.

        Example:
            >>> # learn.show_results(5)
        """
        cats, conts = batch[0][:n].cpu().numpy(), batch[1][:n].cpu().numpy()
        frame = self.processor.decode(cats, conts)
        targets = self.decode_targets(batch[-1][:n])
        predictions = predictions[:n]
        if len(self.target_names) == 1:
            name = self.target_names[0]
            frame[name] = targets
            frame[f"{name}_pred"] = predictions
        else:
            for index, name in enumerate(self.target_names):
                frame[name] = [row[index] for row in targets]
                frame[f"{name}_pred"] = [row[index] for row in predictions]
        with pd.option_context("display.max_columns", 30, "display.width", 140):
            print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return frame

    # ------------------------------------------------------------------ export
    def state(self) -> dict[str, Any]:
        """JSON-able state: the processors, targets and task (stored in exported models).

        Example:
            >>> # json.dumps(data.state())
        """
        state = super().state()
        state.update({
            "processor": self.processor.state(),
            "target_names": self.target_names,
            "log_target": self.log_target,
            "y_range": self.y_range,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        })
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularData:
        """Rebuild an inference-only TabularData from :meth:`state`.

        Example:
            >>> # TabularData.from_state(data.state()).encode(rows)
        """
        return cls(None, None, processor=TabularProcessor.from_state(state["processor"]),
                   target_names=state["target_names"], target_kind=state["target_kind"],
                   classes=state.get("classes"), n_out=state.get("n_out"),
                   log_target=state.get("log_target", False), y_range=state.get("y_range"),
                   target_mean=state.get("target_mean"), target_std=state.get("target_std"))


# ---------------------------------------------------------------------- helpers
def _default_bs(n_train: int) -> int:
    """About 100 steps per epoch, between 64 and 1024 rows per batch (a power of two)."""
    return int(min(1024, max(64, 2 ** round(math.log2(max(n_train, 1) / 100)))))


def _split(df: pd.DataFrame, valid_pct: float, seed: int, valid_col: str | None
           ) -> tuple[np.ndarray, np.ndarray]:
    if valid_col is None:
        if len(df) < 2:
            raise ember.DataError(f"the frame has {len(df)} row; give at least 2 rows (one to "
                                  f"train on, one to validate)")
        return ember.split_indices(len(df), valid_pct, seed)
    return ember.split_by_flags(df[valid_col].tolist(), name=f"valid_col {valid_col!r}")


def _target_kind(df: pd.DataFrame, names: list[str], target_kind: str | None, max_card: int
                 ) -> tuple[str, list[Any] | None]:
    if target_kind not in (None, "single_label", "multi_label", "regression"):
        raise ember.DataError(f"target_kind must be 'single_label', 'multi_label' or "
                              f"'regression' for tables, got {target_kind!r}")
    for name in names:
        missing = df[name].isna().to_numpy()
        if missing.any():
            raise ember.DataError(
                f"target {name!r} is missing in {int(missing.sum())} row(s), first row "
                f"{df.index[int(np.argmax(missing))]!r}; drop them: "
                f"df.dropna(subset=[{name!r}])")
        if pd.api.types.is_datetime64_any_dtype(df[name].dtype):
            raise ember.DataError(
                f"target {name!r} holds dates, which a model cannot output; predict a "
                f"duration instead (df[{name!r}] - start, a timedelta, is regressed in "
                f"seconds), or the dates' text as classes (df[{name!r}].astype(str))")
    if len(names) > 1:
        flags = all(pd.api.types.is_bool_dtype(df[name].dtype) for name in names)
        if target_kind == "multi_label" or (target_kind is None and flags):
            return "multi_label", list(names)  # one true/false column per class
        if target_kind == "single_label":
            raise ember.DataError(
                f"target_kind='single_label' takes one target column, got {names}; give one, "
                f"or target_kind='multi_label' for one true/false column per class")
    if len(names) > 1 or target_kind == "regression":
        for name in names:
            if not _is_number_target(df[name]):
                raise ember.DataError(
                    f"regression target {name!r} has dtype {df[name].dtype}; regression needs "
                    f"numbers (convert with pd.to_numeric) — or use one categorical target, or "
                    f"target_kind='multi_label' for one true/false column per class")
        return "regression", None
    series = df[names[0]]
    if target_kind == "multi_label" or (target_kind is None and _holds_label_lists(series)):
        classes = [plain(label) for labels in _label_lists(series, names[0])
                   for label in labels]
        classes = list(dict.fromkeys(classes))
        try:
            classes = sorted(classes)
        except TypeError:
            classes = sorted(classes, key=str)
        if not classes:
            raise ember.DataError(f"target {names[0]!r} holds no label in any row; a "
                                  f"multi-label classifier needs at least one class")
        return "multi_label", classes
    dtype = series.dtype
    inferred = target_kind is None
    if target_kind is None:
        if pd.api.types.is_float_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            target_kind = "regression"
        elif pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            target_kind = "single_label" if series.nunique() <= max_card else "regression"
        else:
            target_kind = "single_label"
    if target_kind == "regression":
        return "regression", None
    if isinstance(dtype, pd.CategoricalDtype):
        classes = [plain(v) for v in series.cat.categories]
    else:
        values = [plain(v) for v in pd.unique(series)]
        try:
            classes = sorted(values)
        except TypeError:
            classes = sorted(values, key=str)
    if len(classes) < 2:
        raise ember.DataError(
            f"target {names[0]!r} has a single class {classes!r}; a classifier needs at least "
            f"two. Check the filtering of the frame, or choose another target")
    if inferred and len(classes) > max_card and not isinstance(dtype, pd.CategoricalDtype) \
            and not pd.api.types.is_numeric_dtype(dtype):
        _warn_text_target(names[0], series, len(classes))
    _warn_near_duplicate_classes(names[0], classes)
    return "single_label", classes


def _is_number_target(series: pd.Series) -> bool:
    """Whether a regression can learn ``series``: numbers (not booleans), or durations."""
    dtype = series.dtype
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)) \
        or pd.api.types.is_timedelta64_dtype(dtype)


#: The cell types that hold a row's labels in a multi-label target column.
LABEL_LISTS = (list, tuple, set, frozenset, np.ndarray)


def _holds_label_lists(series: pd.Series) -> bool:
    """Whether a target column holds lists of labels (checked row by row only when pandas
    sees mixed objects, as it does lists)."""
    return series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == \
        "mixed" and any(isinstance(value, LABEL_LISTS) for value in series)


def _label_lists(series: pd.Series, name: Any) -> list[Any]:
    """Each row's labels of a multi-label target column; a row that is not a list (a missing
    value, one label alone) is a :class:`ember.DataError` naming it."""
    values = series.tolist()
    for position, value in enumerate(values):
        if not isinstance(value, LABEL_LISTS):
            what = "the labels are missing" if pd.isna(value) else \
                f"{plain(value)!r} is not a list of labels"
            raise ember.DataError(
                f"target {name!r}, row {plain(series.index[position])!r}: {what}, while a "
                f"multi-label target holds a list in each row; give every row a list ([] for "
                f"no class), e.g. df[{name!r}].str.split('|') for text such as 'a|b'")
    return values


def _multi_hot(frame: pd.DataFrame, names: list[Any], classes: list[Any]) -> Tensor:
    """Float 0/1 targets ``[rows, classes]`` from a column of label lists, or from one
    true/false column per class."""
    if len(names) > 1:
        values = frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
        _refuse_first(frame, names, values, ~np.isin(values, (0.0, 1.0)),
                      "target {name!r}, row {row!r}: {value} is not 0 or 1; a multi-label "
                      "target of several columns holds one true/false column per class")
        return torch.from_numpy(values.astype(np.float32))
    name = names[0]
    position = {label: column for column, label in enumerate(classes)}
    targets = np.zeros((len(frame), len(classes)), dtype=np.float32)
    for row, labels in enumerate(_label_lists(frame[name], name)):
        for label in labels:
            column = position.get(plain(label))
            if column is None:
                raise ember.DataError(
                    f"target {name!r}, row {plain(frame.index[row])!r}: {plain(label)!r} is "
                    f"not one of the classes {classes[:10]}; drop the label, or train on a "
                    f"frame that holds every class")
            targets[row, column] = 1.0
    return torch.from_numpy(targets)


def _checked_y_range(y_range: Any, target_kind: str, names: list[Any]) -> list[float] | None:
    """``y_range`` as two floats ``[low, high]``, or ``None``: a classifier's outputs are
    logits, which a range would squash, and anything but two finite numbers in increasing
    order would fail inside the model (or silently flip its outputs)."""
    if y_range is None:
        return None
    if target_kind != "regression":
        raise ember.DataError(
            f"y_range bounds a regression's output, but target {names[0]!r} is "
            f"classification (its outputs are logits); drop y_range, or pass "
            f"target_kind='regression' for a numeric target")
    try:
        low, high = (float(value) for value in y_range)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ember.DataError(
            f"y_range must be (low, high): two finite numbers with low < high (in log space "
            f"with log_target=True), got {y_range!r}")
    return [low, high]


def _check_seen(train: pd.Series, valid: pd.Series, given: bool) -> None:
    """A validation class that no training row has is refused when the split was given (the
    model could never learn it); the categories of a ``Categorical`` column are declared, so
    they keep such a class on purpose. A random split that put every row of a class in
    validation keeps it, with a warning (:func:`ember.warn_unseen_classes`)."""
    if not given:
        ember.warn_unseen_classes(pd.unique(train), valid.tolist(), item="row")
        return
    if isinstance(train.dtype, pd.CategoricalDtype):
        return
    unseen = ember.first_unseen_class(pd.unique(train), valid.tolist())
    if unseen is not None:
        position, label = unseen
        raise ember.DataError(
            f"target {train.name!r}, row {plain(valid.index[position])!r} (validation): "
            f"{label!r} never occurs in training; add training rows of that class, drop the "
            f"row, or make the column a pandas Categorical whose categories hold the class to "
            f"keep it on purpose")


def _warn_text_target(name: Any, series: pd.Series, n_classes: int) -> None:
    """A text target of numbers (``"326"``), or one with a class for most rows, is almost
    always a regression target read as text: training a classifier over thousands of classes
    would go ahead silently and learn nothing."""
    sample = series.head(1000)
    numeric = pd.to_numeric(sample, errors="coerce").notna().mean() > 0.95
    if numeric:
        reason = "is text that holds numbers"
    elif len(series) > 100 and n_classes > 0.5 * len(series):
        reason = "has a different value in most rows"
    else:
        return
    warn(
        f"target {name!r} {reason}, so it was taken as classification into {n_classes} "
        f"classes; for regression convert it first (df[{name!r}] = pd.to_numeric(df[{name!r}])"
        f", after removing signs such as '$' or ','), or pass target_kind='single_label' to "
        f"keep the classes and silence this")


def _warn_near_duplicate_classes(name: Any, classes: list[Any]) -> None:
    """Text classes that differ only in case or surrounding spaces (``"yes"``, ``" yes"``,
    ``"Yes"``: a hand-written CSV) are almost always one class split in several; they are
    kept (they may be meant), with a warning that shows them and how to merge them."""
    groups: dict[str, list[str]] = {}
    for label in classes:
        if isinstance(label, str):
            groups.setdefault(label.strip().casefold(), []).append(label)
    clashes = [labels for labels in groups.values() if len(labels) > 1]
    if clashes:
        shown = "; ".join(str(labels) for labels in clashes[:5])
        warn(f"target {name!r} has classes that differ only in case or surrounding spaces: "
             f"{shown}; each is a class of its own. If they are one class, merge them first: "
             f"df[{name!r}] = df[{name!r}].str.strip().str.lower()")


def _targets(frame: pd.DataFrame, names: list[str], target_kind: str,
             classes: list[Any] | None, log_target: bool) -> Tensor:
    if target_kind == "multi_label":
        return _multi_hot(frame, names, classes or [])
    if target_kind == "single_label":
        column = frame[names[0]]
        codes = pd.Index(classes).get_indexer(column).astype(np.int64)
        unknown = codes < 0  # a missing value, or a class the training frame lacks
        if unknown.any():
            position = int(np.argmax(unknown))
            value = column.iloc[position]
            missing = column.isna().to_numpy()
            if pd.isna(value):  # "train on every class" does not mend a missing label
                problem, count = "the label is missing", int(missing.sum())
                fix = f"drop these rows: df.dropna(subset=[{names[0]!r}])"
            else:
                problem = f"{plain(value)!r} is not one of the classes {classes[:10]}"
                count = int((unknown & ~missing).sum())
                fix = "drop these rows, or train on a frame that holds every class"
            raise ember.DataError(
                f"target {names[0]!r}, row {plain(frame.index[position])!r}: {problem} "
                f"({count} such row(s)); {fix}")
        return torch.from_numpy(codes)
    values = np.stack([_regression_numbers(frame[name]) for name in names], axis=1)
    _refuse_first(frame, names, values, ~np.isfinite(values),
                  "target {name!r}, row {row!r}: {value} is not a finite number; drop such rows")
    if log_target:
        _refuse_first(frame, names, values, values <= 0,
                      "log_target=True needs positive targets, but {name!r} is {value} in row "
                      "{row!r}; drop log_target or shift the target")
        values = np.log(values)
    tensor = torch.from_numpy(values.astype(np.float32))
    return tensor[:, 0] if len(names) == 1 else tensor


def _refuse_first(frame: pd.DataFrame, names: list[Any], values: np.ndarray, bad: np.ndarray,
                  message: str) -> None:
    """A :class:`ember.DataError` for the first cell of the target ``values`` (rows of
    ``frame`` by columns ``names``) that ``bad`` marks, ``message`` filled in with its column
    ``name``, its ``row`` label and its ``value``; nothing when none is marked."""
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ember.DataError(message.format(name=names[column], row=plain(frame.index[row]),
                                             value=values[row, column]))


def _regression_numbers(series: pd.Series) -> np.ndarray:
    """A regression target column as float64: a duration in seconds, whatever its unit."""
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        series = series.dt.total_seconds()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)
