"""Text data: :class:`TextData` for classification / regression, :class:`LanguageModelData`
for language models.

Both tokenise with :class:`ember_text.Tokenizer`, numericalise with a :class:`ember_text.Vocab`
built on the training texts only, and carry tokenizer and vocab into exported models so that
``ember.load(path).predict(text)`` replays exactly the same preprocessing.

Classification batches are bucketed by length: the training loader uses a :class:`SortishSampler`
(shuffled, then sorted within large chunks so each batch holds texts of similar length), the
validation loader a :class:`SortedSampler` (longest first, never shuffled). Texts are padded at
the end with ``xxpad`` (id 1), which recurrent models and attention masks then ignore exactly.

Example:
    >>> import ember_text
    >>> data = ember_text.TextData.from_df(
    ...     {"text": ["a good film", "a bad film"] * 20, "label": ["pos", "neg"] * 20},
    ...     "text", "label", min_freq=1, bs=8)
    >>> data.classes, data.one_batch()[0].shape[0]
    (['neg', 'pos'], 8)
"""

from __future__ import annotations

import codecs
import copy
import itertools
import math
import numbers
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

import ember
from ember import DataError, find_test_folder, loose_files, split_folders, split_label
from ember.utils import check_whole, plain, warn
from ember_text.tokenize import BOS, EOS, Tokenizer, Vocab, check_uploaded_text, is_missing

__all__ = [
    "LMBatchSampler",
    "LMStream",
    "LanguageModelData",
    "PadCollate",
    "SortedSampler",
    "SortishSampler",
    "TextData",
    "TokenIdsDataset",
    "pad_ids",
]

#: Tokens kept per text by default (the rest is cut, the same way at inference).
DEFAULT_MAX_LEN = 1024


# ------------------------------------------------------------------------------ datasets
class TokenIdsDataset(Dataset):
    """Numericalised texts and their targets; item ``i`` is ``(ids, target)``, or ``(ids,)``
    for texts without targets (``targets=None``: a test set without labels).

    Example:
        >>> ds = TokenIdsDataset([torch.tensor([2, 9, 10])], torch.tensor([1]))
        >>> ds[0][0].tolist(), ds.lengths
        ([2, 9, 10], [3])
        >>> len(TokenIdsDataset(ds.ids, None)[0])
        1
    """

    def __init__(self, ids: Sequence[Tensor], targets: Tensor | None) -> None:
        if targets is not None and len(ids) != len(targets):
            raise DataError(f"{len(ids)} texts but {len(targets)} targets; give one per text")
        self.ids, self.targets = list(ids), targets
        self.lengths = [len(item) for item in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        if self.targets is None:
            return (self.ids[index],)
        return self.ids[index], self.targets[index]


class PadCollate:
    """Collate ``(ids, target)`` items into ``(padded ids, targets)``, padding at the end;
    ``(ids,)`` items (a test set without labels) into ``(padded ids,)``.

    Example:
        >>> xb, yb = PadCollate(pad_id=1)([(torch.tensor([5, 6]), torch.tensor(0)),
        ...                                (torch.tensor([7]), torch.tensor(1))])
        >>> xb.tolist(), yb.tolist()
        ([[5, 6], [7, 1]], [0, 1])
        >>> PadCollate(pad_id=1)([(torch.tensor([5, 6]),), (torch.tensor([7]),)])[0].tolist()
        [[5, 6], [7, 1]]
    """

    def __init__(self, pad_id: int = 1) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        ids = pad_ids([item[0] for item in items], self.pad_id)
        if len(items[0]) == 1:  # no targets: a test set without labels
            return (ids,)
        return ids, torch.stack([item[1] for item in items])


def pad_ids(sequences: Sequence[Tensor | Sequence[int]], pad_id: int = 1) -> Tensor:
    """Stack id sequences (tensors or lists of ints) into one ``(n, longest)`` tensor, padded
    at the end.

    Example:
        >>> pad_ids([torch.tensor([4, 5, 6]), [7]]).tolist()
        [[4, 5, 6], [7, 1, 1]]
    """
    longest = max(len(sequence) for sequence in sequences)
    batch = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return batch


class SortishSampler(Sampler[int]):
    """Training order that keeps batches of similar length: shuffle, cut into chunks of
    ``bs * 50`` items (a tail shorter than ``bs`` joins the last chunk), sort each chunk by
    length, cut into batches, shuffle the batches. The full batch holding the longest item
    goes first, so running out of memory shows at once; a short final batch stays last, so
    ``drop_last`` drops only it. Draws from torch's
    global generator, so :func:`ember.seed` makes it reproducible.

    Example:
        >>> sampler = SortishSampler([3, 1, 2, 5, 4, 6], bs=2)
        >>> sorted(sampler) == list(range(6))
        True
    """

    def __init__(self, lengths: Sequence[int], bs: int, chunk_batches: int = 50) -> None:
        self.lengths, self.bs, self.chunk = np.asarray(lengths), bs, bs * chunk_batches

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(len(self.lengths)).numpy()
        chunks = [order[i:i + self.chunk] for i in range(0, len(order), self.chunk)]
        if len(chunks) > 1 and len(chunks[-1]) < self.bs:
            # a tail shorter than a batch joins the chunk before it: alone it would be the
            # short last batch, holding random (possibly the longest) items
            chunks[-2:] = [np.concatenate(chunks[-2:])]
        order = np.concatenate([c[np.argsort(-self.lengths[c], kind="stable")] for c in chunks])
        batches = [order[i:i + self.bs] for i in range(0, len(order), self.bs)]
        # a final short batch (the shortest items of the last chunk) stays last, so the first
        # batch is full and drop_last only ever drops the short one
        short = [batches.pop()] if len(batches) > 1 and len(batches[-1]) < self.bs else []
        if len(batches) > 1:
            longest = int(np.argmax([self.lengths[b[0]] for b in batches]))
            rest = batches[:longest] + batches[longest + 1:]
            batches = [batches[longest]] + [rest[i] for i in torch.randperm(len(rest)).tolist()]
        return iter(int(index) for batch in batches + short for index in batch)


class SortedSampler(Sampler[int]):
    """Validation order: longest text first, ties in dataset order (never shuffled).

    Example:
        >>> list(SortedSampler([1, 3, 2]))
        [1, 2, 0]
    """

    def __init__(self, lengths: Sequence[int]) -> None:
        self.lengths = np.asarray(lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(int(i) for i in np.argsort(-self.lengths, kind="stable"))


# ------------------------------------------------------------------------------ helpers
def _ids(ids: list[int], backwards: bool) -> Tensor:
    tensor = torch.tensor(ids, dtype=torch.long)
    return tensor.flip(0) if backwards else tensor


def _in_order(tokens: list[str], backwards: bool) -> list[str]:
    return tokens[::-1] if backwards else tokens


def _open_ended(tokens: list[str], backwards: bool) -> list[str]:
    """A prompt's tokens without the end marker on the side the text continues: a forward
    model writes what follows, so no ``xxeos`` after it; a backward model writes what comes
    before, so no ``xxbos`` before it (either would make the model start another text)."""
    if backwards:
        return tokens[1:] if tokens[:1] == [BOS] else tokens
    return tokens[:-1] if tokens[-1:] == [EOS] else tokens


def _column(df: Any, name: str, frame: str | None = None) -> list[Any]:
    if not (hasattr(df, "columns") or isinstance(df, Mapping)):  # a list, a Series
        what = frame or "df"
        raise DataError(f"{what} must be a data frame (or a dict of lists) with a column "
                        f"{name!r}, not a {type(df).__name__}; give {what}={{{name!r}: "
                        f"[...]}}, or texts alone as TextData.from_texts(..., test=[...])")
    columns = list(df.columns) if hasattr(df, "columns") else list(df.keys())
    if name not in columns:
        where = f" in {frame}" if frame is not None else ""
        raise DataError(f"no column {name!r}{where}; the columns are {columns}")
    return list(df[name])


def _check_text_column(texts: Sequence[Any], names: Sequence[str], column: str) -> None:
    """A :class:`DataError` for a data frame's cell that is neither text nor missing (a column
    of numbers: ids, stars, or the text and label columns swapped), naming the row and the
    fix; missing and empty cells are :func:`check_text`'s."""
    for value, name in zip(texts, names):
        if not (_is_text(value) or is_missing(value)):
            raise DataError(
                f"{name} must be a string, got {type(value).__name__}: {value!r:.40}; convert "
                f"the column to text first, e.g. df[{column!r}] = df[{column!r}].astype(str), "
                f"or name the column of texts with text_col=")


def _row_names(df: Any, n: int) -> list[Any]:
    index = getattr(df, "index", None)
    return list(index) if index is not None and len(index) == n else list(range(n))


def _is_text(part: Any) -> bool:
    """One text (a ``str``, or the ``bytes`` of a file): the unit of ``test=``'s inputs."""
    return isinstance(part, (str, bytes))


def _refuse_one_text(value: Any, argument: str, fix: str) -> None:
    """A :class:`DataError` for one text given where a list of texts belongs (``argument=``):
    a string would be read as one text per character."""
    if _is_text(value):
        raise DataError(f"{argument}= takes a list of texts, not one text: {fix}")


def _read_text_file(file: Path, encoding: str) -> str:
    """The text of ``file`` in ``encoding``, or a :class:`ember.DataError` naming the file and
    saying what to do (the advice of :func:`check_text`, decoding bytes yourself, cannot be
    followed for a file that ``from_folder`` reads, nor its advice to drop a row)."""
    content = file.read_bytes()
    try:
        text = content.decode(encoding)
    except UnicodeDecodeError as error:
        shown = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
        raise DataError(
            f"file {file} is not valid {shown} text (byte {error.start}: "
            f"{content[error.start:error.start + 4]!r}); save it as {shown}, or give the "
            f"files' encoding, e.g. TextData.from_folder(..., encoding='latin-1')") from None
    if not text.removeprefix("\ufeff").strip():  # blank, or a byte-order mark alone
        raise DataError(f"file {file} is empty; delete the file or give it some text")
    return text


def _suffixes(extensions: str | Sequence[str]) -> list[str]:
    """``from_folder``'s ``extensions=`` as file endings with their dot: one string is one
    ending (``".md"``, never ``"."``, ``"m"``, ``"d"``), and ``"md"`` is ``".md"``."""
    if isinstance(extensions, str):
        extensions = [extensions]
    extensions = list(extensions)
    if not extensions or not all(isinstance(e, str) and e.strip(".") for e in extensions):
        raise DataError(f"extensions={extensions!r} names no file ending; give the endings of "
                        f"the text files, e.g. extensions='.txt' or ['.txt', '.md']")
    return [e if e.startswith(".") else f".{e}" for e in extensions]


def _class_folder_texts(folder: Path, extensions: Sequence[str], encoding: str = "utf-8"
                        ) -> tuple[list[str], list[str], list[str]]:
    """The texts of the files of the class folders of ``folder`` (read in ``encoding``), their
    labels (the folder names) and their names for errors (``file <path>``). Hidden folders
    (``.ipynb_checkpoints``) are not class folders, and hidden files in them (macOS's
    ``._review.txt``) are not texts: the files are :func:`ember.class_files`, as images are.
    A class folder without such files is left out with an :class:`ember.EmberWarning` naming
    it, as an empty image class folder is."""
    texts: list[str] = []
    labels: list[str] = []
    names: list[str] = []
    empty: list[str] = []
    for class_dir in sorted(p for p in folder.iterdir()
                            if p.is_dir() and not p.name.startswith(".")):
        files = ember.class_files(class_dir, extensions)
        if not files:
            empty.append(class_dir.name)
        for file in files:
            texts.append(_read_text_file(file, encoding))
            labels.append(class_dir.name)
            names.append(f"file {file}")
    if empty and texts:
        warn(f"{folder}: class folder(s) {empty} hold no {'/'.join(extensions)} files and give "
             f"no texts (a class without training files is left out of the classes); add "
             f"files, pass extensions= for files with another ending, or remove the folder(s)")
    return texts, labels, names


def _corpus(texts: Any, text_col: str | None, test: bool = False
            ) -> tuple[list[Any], list[str]]:
    """A language model's texts (a list, or the ``text_col`` column of a data frame) without
    the blank ones, and their names for errors by their place among the texts given
    (``text #3``, or ``test item 3`` for the ``test`` texts)."""
    _refuse_one_text(texts, "test" if test else "texts", "test=[text]" if test else
                     "split a book into paragraphs or lines (text.splitlines()), or give [text]")
    # a frame or a dict of columns; a Series (a column itself) has keys too, but no columns
    if text_col is not None and (hasattr(texts, "columns") or isinstance(texts, Mapping)):
        texts = _column(texts, text_col, "test" if test else None)
    elif hasattr(texts, "columns"):
        raise DataError(f"give text_col= to read {'test ' if test else ''}texts from a data "
                        f"frame")
    # a blank line (between a novel's paragraphs) adds nothing to the stream: skipped,
    # where a classifier's empty text, an item with a label, is an error
    kept = [(index, text) for index, text in enumerate(texts)
            if not (isinstance(text, str) and not text.strip())]
    if not kept:
        raise DataError(f"{'test=' if test else 'the corpus'} holds no text (every text is "
                        f"empty or blank)")
    prefix = "test item " if test else "text #"
    return [text for _, text in kept], [f"{prefix}{index}" for index, _ in kept]


def _sorted_classes(values: Sequence[Any]) -> list[Any]:
    unique = {plain(v) for v in values}
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


def _given_classes(classes: Sequence[Any]) -> list[Any]:
    """The classes a user gave, as plain Python values: ``np.unique(column)`` holds numpy
    scalars, which an exported model's JSON manifest cannot hold."""
    return [plain(c) for c in classes]


def _numbers_with_a_float(values: Sequence[Any]) -> bool:
    """Numbers only, at least one of them a float: a regression target (``[1, 2.5]`` as a
    data frame column is float64 too). Integers alone stay class labels."""
    numbers_only = all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                       for v in values)
    return numbers_only and any(isinstance(v, (float, np.floating)) for v in values)


def _label_values(labels: Any) -> list[Any]:
    """``labels`` as a list of plain values: a tensor or array read element by element,
    NumPy and 0-d tensor scalars as the Python values they equal (a tensor's elements would
    otherwise be tensors, which hash by identity: no two of them one class). A label that is
    a 1-D array of strings (a list column read from Parquet) is the list of its classes; the
    rows of a 2-D array, and numeric arrays (multi-hot rows), stay arrays, which
    :class:`_Targets` refuses with advice."""
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    matrix = getattr(labels, "ndim", 1) >= 2
    values = []
    for value in labels:
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        elif (isinstance(value, np.ndarray) and value.ndim == 1 and not matrix
              and value.dtype.kind in "OUS"):
            value = [plain(part) for part in value]
        values.append(plain(value))
    return values


class _Targets:
    """Turns a label column into target tensors, for the three kinds of target."""

    def __init__(self, values: Sequence[Any], names: Sequence[str], target_kind: str | None,
                 label_delim: str | None, classes: Sequence[Any] | None) -> None:
        self._check_present(values, names)
        self._check_one_label(values, names)
        if target_kind is None:
            if label_delim is not None or any(isinstance(v, (list, tuple)) for v in values):
                target_kind = "multi_label"
            elif _numbers_with_a_float(values):
                target_kind = "regression"
            else:
                target_kind = "single_label"
        self.kind, self.delim = target_kind, label_delim
        if target_kind == "regression":
            self.classes = None
            self.check(values, names)
        elif target_kind == "multi_label":
            lists = [self.split(v) for v in values]
            self.classes = _given_classes(classes) if classes is not None else _sorted_classes(
                [label for labels in lists for label in labels])
        elif target_kind == "single_label":
            self.classes = (_given_classes(classes) if classes is not None
                            else _sorted_classes(values))
        else:
            raise DataError(f"TextData targets are single_label, multi_label or regression, "
                            f"not {target_kind!r}; use LanguageModelData for language models")

    @staticmethod
    def _check_present(values: Sequence[Any], names: Sequence[str]) -> None:
        for value, name in zip(values, names):
            if is_missing(value):
                raise DataError(f"the label of {name} is missing; drop that row or fill it")

    @staticmethod
    def _check_one_label(values: Sequence[Any], names: Sequence[str]) -> None:
        """Refuse a label that is neither one value nor a list of classes: a row of a 2-D
        array (a multi-hot matrix, or several regression outputs), a set, a dict."""
        for value, name in zip(values, names):
            if not isinstance(value, (list, tuple, Hashable)):
                shape = getattr(value, "shape", None)
                what = (f"an array of shape {tuple(shape)}" if shape is not None
                        else f"a {type(value).__name__}")
                raise DataError(
                    f"the label of {name} is {what}; a text's label is one class, one number "
                    f"(regression, one output) or a list of classes (multi-label): for a "
                    f"multi-hot matrix give each text the list of its classes, e.g. "
                    f"[[classes[j] for j in np.flatnonzero(row)] for row in labels]")

    def check(self, values: Sequence[Any], names: Sequence[str]) -> None:
        """Refuse labels this target cannot take: missing ones, and for a regression target
        anything but finite numbers (class labels are checked by :meth:`encode`)."""
        self._check_present(values, names)
        self._check_one_label(values, names)
        if self.kind != "regression":
            return
        for value, name in zip(values, names):
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise DataError(f"the label of {name} is {value!r}, not a number; a "
                                f"regression target needs numbers")
            if not math.isfinite(value):
                raise DataError(f"the label of {name} is {value!r}; a regression target "
                                f"must be a finite number (drop that row or fix it)")

    def check_seen(self, values: Sequence[Any], names: Sequence[str], train: Sequence[int],
                   valid: Sequence[int]) -> None:
        """Refuse a validation label whose class no training label has (the model could never
        learn it): a wrong label, or a split that left a class out of training."""
        if self.kind == "regression":
            return
        unseen = ember.first_unseen_class(
            (values[index] for index in train), (values[index] for index in valid),
            self.split if self.kind == "multi_label" else None)
        if unseen is not None:
            position, label = unseen
            raise DataError(
                f"the label {label!r} of {names[valid[position]]} (validation) never occurs in "
                f"training; add training texts of that class, drop the item, or pass "
                f"classes= to keep the class on purpose")

    def warn_unseen(self, values: Sequence[Any], train: Sequence[int],
                    valid: Sequence[int]) -> None:
        """Warn about a class whose texts a random split put all in validation (one rule
        with the other plugins: :func:`ember.warn_unseen_classes`)."""
        if self.kind == "regression":
            return
        ember.warn_unseen_classes(
            (values[index] for index in train), (values[index] for index in valid),
            self.split if self.kind == "multi_label" else None, item="text")

    def split(self, value: Any) -> list[Any]:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if self.delim is not None and isinstance(value, str):
            return split_label(value, self.delim)
        return [plain(value)]

    def encode(self, values: Sequence[Any], names: Sequence[str]) -> Tensor:
        if self.kind == "regression":
            return torch.tensor([float(v) for v in values], dtype=torch.float32)
        assert self.classes is not None
        index = {label: i for i, label in enumerate(self.classes)}

        def lookup(label: Any, name: str) -> int:
            try:
                return index[label]
            except (KeyError, TypeError):  # TypeError: a list where one class was expected
                raise DataError(f"the label {label!r} of {name} is not among the classes "
                                f"{self.classes[:10]}; give it in classes= or drop the "
                                f"row") from None

        if self.kind == "single_label":
            return torch.tensor([lookup(plain(v), n) for v, n in zip(values, names)])
        hot = torch.zeros(len(values), len(self.classes))
        for row, (value, name) in enumerate(zip(values, names)):
            for label in self.split(value):
                hot[row, lookup(label, name)] = 1.0
        return hot


# ------------------------------------------------------------------------------ TextData
def _one_text(item: Any) -> None:
    """A :class:`DataError` for a list or tuple given to ``predict``, which takes one text:
    several texts go to ``predict_batch``."""
    if isinstance(item, (list, tuple)):
        raise DataError(f"predict takes one text, not a {type(item).__name__} of {len(item)}; "
                        f"give several to predict_batch([...])")


class TextData(ember.Data):
    """Texts with single-label, multi-label or regression targets.

    Build it with :meth:`from_df`, :meth:`from_folder` or :meth:`from_texts`. Batches are
    ``(ids, target)`` with ``ids`` of shape ``(batch, longest)`` padded at the end with
    ``xxpad``.

    Example:
        >>> data = TextData.from_texts(["fine", "awful", "nice", "bad"] * 5,
        ...                            ["pos", "neg", "pos", "neg"] * 5, min_freq=1)
        >>> data.target_kind, len(data.vocab) > 9
        ('single_label', True)
    """

    kind = "text"

    def input_schema(self) -> dict[str, Any]:
        """One raw item for ``ember serve``'s ``/metadata``: a text, as a string.

        Example:
            >>> TextData.input_schema(None)["type"]
            'string'
        """
        return {"type": "string", "description": "one text to classify or score"}

    def predict_one(self, model: torch.nn.Module, item: Any, device: Any = None,
                    **options: Any) -> Any:
        """The prediction for one text (``learn.predict(text)``); a list or tuple of texts is
        a :class:`DataError` that points to ``predict_batch``.

        Example:
            >>> # learn.predict("A delight.") -> 'fresh'
            >>> # learn.predict(["A delight.", "Dull."])  # DataError: give several to predict_batch
        """
        _one_text(item)
        return super().predict_one(model, item, device, **options)

    def from_upload(self, content: bytes, name: str) -> str:
        """An uploaded text file (``ember serve``'s ``/predict/files``) → its text, refusing
        one that is not UTF-8 or is empty by its ``name`` (:func:`check_uploaded_text`).

        Example:
            >>> # data.from_upload(b"A delight.", "file 'a.txt' (files[0])") -> 'A delight.'
        """
        return check_uploaded_text(content, name)

    def __init__(self, train_dl: DataLoader | None, valid_dl: DataLoader | None,
                 test_dl: DataLoader | None = None, *, tokenizer: Tokenizer, vocab: Vocab,
                 target_kind: str, classes: Sequence[Any] | None = None,
                 n_out: int | None = None, max_len: int = DEFAULT_MAX_LEN,
                 label_delim: str | None = None, backwards: bool = False) -> None:
        super().__init__(train_dl, valid_dl, test_dl, target_kind=target_kind, classes=classes,
                         n_out=n_out, input_kind="text")
        self.tokenizer, self.vocab, self.max_len = tokenizer, vocab, max_len
        self.label_delim, self.backwards = label_delim, backwards

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_texts(cls, texts: Sequence[Any], labels: Sequence[Any], valid_pct: float = 0.2,
                   seed: int = 0, *, is_valid: Sequence[bool] | None = None,
                   names: Sequence[str] | None = None,
                   label_names: Sequence[str] | None = None, target_kind: str | None = None,
                   classes: Sequence[Any] | None = None, label_delim: str | None = None,
                   tokenizer: Tokenizer | None = None, vocab: Vocab | None = None,
                   min_freq: int = 2, max_vocab: int = 60000, max_len: int = DEFAULT_MAX_LEN,
                   bs: int = 64, num_workers: int = 0, n_workers: int | None = None,
                   cache_dir: str | Path | None = None, backwards: bool = False,
                   test: Any = None, test_names: Sequence[str] | None = None,
                   test_label_names: Sequence[str] | None = None) -> TextData:
        """Texts and labels as two lists; the other constructors end here.

        ``is_valid`` marks validation items (else a seeded ``valid_pct`` split). A class
        whose every text is a validation one is an error when the split was given (unless
        ``classes=`` keeps it on purpose) and an :class:`ember.EmberWarning` naming it when
        the random split did it (:func:`ember.warn_unseen_classes`). Errors name an item by
        ``names`` (its text) and ``label_names`` (its label; by default as its text). The
        vocab is built on the training texts only (pass ``vocab=`` to reuse a language model's).
        ``max_len`` tokens are kept per text. ``n_workers``/``cache_dir`` go to
        :meth:`Tokenizer.tokenize_many`. ``backwards=True`` reverses each text's token ids
        (after the cut to ``max_len``), in training and at inference: the classifier for a
        backward language model's encoder (ULMFiT's forward + backward ensemble, see
        :func:`ember_text.average_preds`).

        ``test=(texts, labels)`` adds a test loader (``data.test_dl``: ``learn.validate("test")``,
        ``learn.get_preds("test")``), its texts processed exactly like validation texts: the
        training vocab (words it lacks read as ``xxunk``), the same cut, batches ordered
        longest first. Its labels take the classes of the training and validation labels
        (or ``classes=``); one they lack is an error naming it, and errors name a test item
        by ``test_names`` / ``test_label_names`` (by default ``test item 3``).

        ``test=[text, …]``, texts alone (a list, or a Series), is a test set without labels
        (a competition's): its batches hold the token ids only, ``data.test_labelled`` is
        False, ``learn.get_preds("test")`` gives row ``i`` for text ``i`` (targets ``None``;
        the loader reads them longest first and ``get_preds`` puts them back), and
        ``learn.validate("test")`` refuses it. The two forms are told apart by
        :func:`ember.split_test`: a 2-tuple of two lists is ``(texts, labels)`` (of one
        length), a list of two is a pair when its parts are lists of one length, and two
        texts (in a list or a tuple) are two texts.

        Example:
            >>> data = TextData.from_texts(["a", "b"] * 10, [0.5, 1.5] * 10, min_freq=1)
            >>> data.target_kind
            'regression'
            >>> data = TextData.from_texts(["good", "bad"] * 10, ["pos", "neg"] * 10,
            ...                            min_freq=1, test=(["good", "awful"], ["pos", "neg"]))
            >>> len(data.test_dl.dataset)
            2
            >>> data = TextData.from_texts(["good", "bad"] * 10, ["pos", "neg"] * 10,
            ...                            min_freq=1, test=["good", "awful", "fine"])
            >>> data.test_labelled, len(data.test_dl.dataset)
            (False, 3)
        """
        _refuse_one_text(texts, "texts", "give [text] and [label]")
        check_whole(max_len, "max_len", "the tokens kept of each text")
        if vocab is None:  # before the (long) tokenisation
            Vocab.check_size_options(min_freq, max_vocab)
        if not hasattr(texts, "__len__"):  # a generator, as LanguageModelData takes one
            texts = list(texts)
        n = len(texts)
        labels = _label_values(labels)
        if len(labels) != n:
            raise DataError(f"{n} texts but {len(labels)} labels; give one label per text")
        names = list(names) if names is not None else [f"text #{i}" for i in range(n)]
        tokenizer = tokenizer or Tokenizer()
        if tokenizer.max_chars is None:  # a 1 MB text must not stall tokenisation
            tokenizer = copy.copy(tokenizer)  # the caller's tokenizer keeps its own settings
            tokenizer.max_chars = max_len * 20
        label_names = list(label_names) if label_names is not None else names
        targets = _Targets(labels, label_names, target_kind, label_delim, classes)
        test_y = None
        if test is not None:  # checked before the (long) tokenisation of the training texts
            _refuse_one_text(test, "test", "test=[text]")
            test_texts, test_labels = ember.split_test(test, _is_text, "text")
            test_texts = list(test_texts)
            test_labels = _label_values(test_labels) if test_labels is not None else None
            test_names = (list(test_names) if test_names is not None
                          else [f"test item {i}" for i in range(len(test_texts))])
            test_label_names = (list(test_label_names) if test_label_names is not None
                                else test_names)
            if test_labels is not None:
                targets.check(test_labels, test_label_names)
                test_y = targets.encode(test_labels, test_label_names)
            # tokenised on their own: the cache of the training texts stays theirs
            test_tokens = tokenizer.tokenize_many(test_texts, n_workers, cache_dir=cache_dir,
                                                  names=test_names)
        if is_valid is not None:
            train_idx, valid_idx = ember.split_by_flags(is_valid, n, "is_valid")
            if classes is None:  # a split given in advance: a class only validation has is
                targets.check_seen(labels, label_names, train_idx, valid_idx)  # a mistake
        else:
            train_idx, valid_idx = ember.split_indices(n, valid_pct, seed)
            targets.warn_unseen(labels, train_idx, valid_idx)  # by chance: kept, with a warning
        tokens = tokenizer.tokenize_many(texts, n_workers, cache_dir=cache_dir, names=names)
        if vocab is None:
            vocab = Vocab.build((tokens[i] for i in train_idx), min_freq, max_vocab)

        def numericalize(token_lists: list[list[str]]) -> list[Tensor]:
            return [_ids(vocab.numericalize(t[:max_len]), backwards) for t in token_lists]

        ids = numericalize(tokens)
        y = targets.encode(labels, label_names)

        def dataset(indices: np.ndarray) -> TokenIdsDataset:
            return TokenIdsDataset([ids[i] for i in indices], y[torch.as_tensor(indices)])

        train_ds, valid_ds = dataset(train_idx), dataset(valid_idx)
        test_ds = (TokenIdsDataset(numericalize(test_tokens), test_y)
                   if test is not None else None)
        train_dl, valid_dl, test_dl = ember.make_loaders(
            train_ds, valid_ds, test_ds, bs=bs, num_workers=num_workers,
            collate_fn=PadCollate(vocab.pad_id),
            train_sampler=SortishSampler(train_ds.lengths, bs),
            valid_sampler=SortedSampler(valid_ds.lengths),
            test_sampler=SortedSampler(test_ds.lengths) if test_ds is not None else None)
        data = cls(train_dl, valid_dl, test_dl, tokenizer=tokenizer, vocab=vocab,
                   target_kind=targets.kind, classes=targets.classes, max_len=max_len,
                   label_delim=label_delim, n_out=None if targets.kind != "regression" else 1,
                   backwards=backwards)
        if test is not None and test_y is None:
            data.test_labelled = False
        return data

    @classmethod
    def from_df(cls, df: Any, text_col: str = "text", label_col: str = "label",
                valid_pct: float = 0.2, seed: int = 0, valid_col: str | None = None,
                *, test_df: Any = None, **options: Any) -> TextData:
        """Texts and labels from two columns of a data frame (pandas, or a dict of lists).

        The target kind follows the label column: strings or integers → single-label, floats →
        regression, lists (or ``label_delim="|"``-joined strings) → multi-label; say
        ``target_kind=`` to choose. ``valid_col`` names a boolean column that marks the
        validation rows. ``test_df``, a frame with the same text and label columns, becomes
        the test loader, processed like the validation rows with the training vocab and
        classes (see ``test=`` of :meth:`from_texts`); a ``test_df`` without the label
        column (a competition's) is a test set without labels, predicted by
        ``learn.get_preds("test")`` (row ``i`` is row ``i`` of ``test_df``, targets ``None``)
        and refused by ``validate("test")``. Other options as :meth:`from_texts`. Errors
        name the row by the frame's index (``test row 3`` in ``test_df``).

        Example:
            >>> data = TextData.from_df({"text": ["x y", "y z"] * 10,
            ...                          "tags": ["a|b", "b"] * 10},
            ...                         label_col="tags", label_delim="|", min_freq=1)
            >>> data.target_kind, data.classes
            ('multi_label', ['a', 'b'])
            >>> # TextData.from_df(train_frame, "text", "label", test_df=test_frame)
            >>> # TextData.from_df(train_frame, "text", "label", test_df=frame_without_labels)
        """
        texts, labels = _column(df, text_col), _column(df, label_col)
        rows = _row_names(df, len(texts))
        names = [f"row {row!r} (column {text_col!r})" for row in rows]
        _check_text_column(texts, names, text_col)
        label_names = [f"row {row!r} (column {label_col!r})" for row in rows]
        is_valid = None
        if valid_col is not None:  # read here, so that an error names the column given
            valid = ember.split_by_flags(_column(df, valid_col), len(texts),
                                         f"valid_col {valid_col!r}")[1]
            is_valid = np.isin(np.arange(len(texts)), valid)
        if test_df is not None:
            if options.get("test") is not None:
                raise DataError("give the test items as test_df= or as test=, not both")
            test_texts = _column(test_df, text_col, "test_df")
            columns = (list(test_df.columns) if hasattr(test_df, "columns")
                       else list(test_df.keys()))
            test_labels = (_column(test_df, label_col, "test_df") if label_col in columns
                           else None)  # no label column: a test set without labels
            test_rows = _row_names(test_df, len(test_texts))
            test_names = [f"test row {row!r} (column {text_col!r})" for row in test_rows]
            _check_text_column(test_texts, test_names, text_col)
            options.update(
                test=(test_texts, test_labels) if test_labels is not None else test_texts,
                test_names=test_names,
                test_label_names=[f"test row {row!r} (column {label_col!r})"
                                  for row in test_rows])
        return cls.from_texts(texts, labels, valid_pct, seed, is_valid=is_valid, names=names,
                              label_names=label_names, **options)

    @classmethod
    def from_folder(cls, path: str | Path, train: str = "train", valid: str = "valid",
                    valid_pct: float = 0.2, seed: int = 0,
                    extensions: str | Sequence[str] = (".txt",),
                    *, test: str | None = "test", encoding: str = "utf-8",
                    **options: Any) -> TextData:
        """One text file per item, one folder per class: ``path/train/<class>/*.txt`` and
        ``path/valid/<class>/*.txt``, or ``path/<class>/*.txt`` split by ``valid_pct``. A
        ``train`` folder of class folders without a ``valid`` one (or the reverse) is refused
        rather than read as a class: name the other folder (``valid="test"``).

        Beside ``train`` and ``valid``, a ``path/test/<class>/*.txt`` folder becomes the test
        loader (``learn.validate("test")``, ``learn.get_preds("test")``), read like the
        validation files (see ``test=`` of :meth:`from_texts`); ``test="holdout"`` names
        another folder, ``test=None`` leaves it out. A test folder of bare files without class
        folders (``path/test/*.txt``, a competition's) is a test set without labels: its
        files in name order are predicted by ``learn.get_preds("test")`` (targets ``None``)
        and refused by ``validate("test")``. Without the train/valid layout ``test`` plays no
        part (a folder called "test" there is a class).

        Files are read as UTF-8 (a leading byte-order mark is dropped); ``encoding=`` reads
        files saved in another encoding (``"latin-1"``, ``"cp1252"``, ``"utf-16"``). A file
        that is not in that encoding is an error naming its path. ``extensions`` are the
        endings of the text files, any case: one (``".md"``) or several (``[".txt", ".md"]``),
        with or without the dot.

        Example:
            >>> # data = TextData.from_folder("imdb", train="train", valid="test")
            >>> # data = TextData.from_folder("reviews")  # train/ valid/ test/
            >>> # data = TextData.from_folder("competition")  # train/<class>/ valid/ test/*.txt
            >>> # probs, _ = learn.get_preds("test")  # row i: the i-th test file by name
        """
        root = Path(path).expanduser()  # "~/reviews" is in the home folder, as in a shell
        if not root.is_dir():
            raise DataError(f"no folder at {root}")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"encoding={encoding!r} is not a text encoding Python knows; "
                            f"give one such as 'utf-8', 'latin-1' or 'cp1252'") from None
        extensions = _suffixes(extensions)
        folders = split_folders(root, train, valid)
        splits = ([(folders[0], False), (folders[1], True)] if folders is not None
                  else [(root, None)])
        texts: list[Any] = []
        labels: list[str] = []
        names: list[str] = []
        flags: list[bool] = []
        for folder, flag in splits:
            found, found_labels, found_names = _class_folder_texts(folder, extensions,
                                                                   encoding)
            if not found and flag is not None:  # train/ or valid/ without a file
                raise DataError(f"no {'/'.join(extensions)} files in the class folders of "
                                f"{folder}; expected {folder}/<class>/<name>{extensions[0]}")
            texts += found
            labels += found_labels
            names += found_names
            flags += [bool(flag)] * len(found)
        if not texts:
            raise DataError(f"no {'/'.join(extensions)} files in class folders under {root}; "
                            f"expected {root}/<class>/<name>{extensions[0]}")
        test_dir = (find_test_folder(root, test, folders, extensions, "texts", loose=True)
                    if folders is not None else None)
        files = loose_files(test_dir, extensions) if test_dir is not None else None
        if files:  # loose files: a test set without labels
            options.update(test=[_read_text_file(file, encoding) for file in files],
                           test_names=[f"file {file}" for file in files])
        elif test_dir is not None:
            test_texts, test_labels, test_names = _class_folder_texts(test_dir, extensions,
                                                                      encoding)
            if not test_texts:
                raise DataError(f"no {'/'.join(extensions)} files in the class folders of "
                                f"{test_dir}; add them, or pass test=None to leave it out")
            options.update(test=(test_texts, test_labels), test_names=test_names)
        is_valid = flags if splits[0][1] is not None else None
        return cls.from_texts(texts, labels, valid_pct, seed, is_valid=is_valid, names=names,
                              **options)

    # ---------------------------------------------------------------- inference
    def numericalize(self, items: Sequence[Any]) -> list[Tensor]:
        """Token ids of raw texts, cut to ``max_len`` and reversed when ``backwards`` (the
        preprocessing of training).

        Example:
            >>> # data.numericalize(["what a film"])[0] -> tensor([2, 8, 62, 12, 23])
        """
        names = [f"item #{ember.item_number(i)}" for i in range(len(items))]
        tokens = self.tokenizer.tokenize_many(items, n_workers=1, cache_dir=False, names=names)
        return [_ids(self.vocab.numericalize(t[: self.max_len]), self.backwards)
                for t in tokens]

    def encode(self, items: Sequence[Any]) -> tuple[Tensor, ...]:
        """Tokenise, numericalise and pad raw texts into one ``(n, longest)`` batch.

        Example:
            >>> # data.encode(["great", "not great at all"])[0].shape -> (2, 6)
        """
        return (pad_ids(self.numericalize(items), self.vocab.pad_id),)

    def input_specs(self, n_inputs: int) -> list[ember.InputSpec]:
        """The classifier takes one input, ``tokens``: ids ``(batch, time)`` padded at the end,
        whose batch size and length both vary (for ONNX export).

        Example:
            >>> # data.input_specs(1) -> [InputSpec('tokens', {0: 'batch', 1: 'time'})]
        """
        return [ember.InputSpec("tokens", {0: "batch", 1: "time"})]

    def decode_inputs(self, ids: Tensor) -> list[str]:
        """Readable texts of a batch of ids (padding dropped, rule tokens undone, reading
        order restored when ``backwards``).

        Example:
            >>> # data.decode_inputs(data.one_batch()[0])[:2]
        """
        return [self.tokenizer.detokenize(_in_order(self.vocab.decode(row.tolist()),
                                                    self.backwards)) for row in ids]

    def show_batch(self, n: int = 6, split: str = "train") -> list[tuple[str, Any]]:
        """Print ``n`` texts of a batch with their targets, and return them (the target
        ``None`` for a test set without labels).

        Example:
            >>> # data.show_batch(3)
        """
        batch = self.one_batch(split)
        texts = self.decode_inputs(batch[0][:n])
        targets = (self.decode_targets(batch[1][:n]) if len(batch) > 1  # else inputs only
                   else [None] * len(texts))
        rows = list(zip(texts, targets))
        for text, target in rows:
            print(f"{target!s:>12}  {text[:100]}")
        return rows

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 9) -> Any:
        """Print texts with target and prediction; returns ``(text, target, prediction)``.

        Example:
            >>> # learn.show_results(5)
        """
        texts = self.decode_inputs(batch[0][:n])
        rows = list(zip(texts, self.decode_targets(batch[-1][:n]), predictions[:n]))
        for text, target, prediction in rows:
            print(f"target {target!s:>10}  predicted {prediction!s:>10}  {text[:80]}")
        return rows

    # ---------------------------------------------------------------- export
    def state(self) -> dict[str, Any]:
        """Tokenizer, vocab, max length, direction and targets for an exported model.

        Example:
            >>> # TextData.from_state(data.state()).encode(["hi"]) == data.encode(["hi"])
        """
        return {**super().state(), "tokenizer": self.tokenizer.state(),
                "vocab": self.vocab.to_dict(), "max_len": self.max_len,
                "label_delim": self.label_delim, "backwards": self.backwards}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TextData:
        """An inference-only :class:`TextData` from :meth:`state`.

        Example:
            >>> # data = TextData.from_state(manifest["data"]["state"])
        """
        return cls(None, None, tokenizer=Tokenizer.from_state(state["tokenizer"]),
                   vocab=Vocab.from_dict(state["vocab"]), target_kind=state["target_kind"],
                   classes=state.get("classes"), n_out=state.get("n_out"),
                   max_len=state.get("max_len", DEFAULT_MAX_LEN),
                   label_delim=state.get("label_delim"),
                   backwards=bool(state.get("backwards", False)))


# ------------------------------------------------------------------------------ LM data
class LMStream(Dataset):
    """A token stream read in batches: key ``(offset, position, length)`` → ``(x, y)`` of shape
    ``(bs, length)``, where row ``r`` continues from where it stopped in the previous batch, so
    a stateful model carries its hidden state across batches. ``y`` is ``x`` shifted by one.
    ``len()`` is the number of rows.

    Under ``torchrun`` the stream is split by row (``shard_by = "rows"``, see
    :func:`ember.distributed.shard_loader`): every rank reads every batch and keeps its own
    rows of it, so each rank's rows continue its previous batch's, as one process's do.

    Example:
        >>> stream = LMStream(torch.arange(21), bs=2)
        >>> x, y = stream[(0, 0, 3)]
        >>> x.tolist(), y.tolist()
        ([[0, 1, 2], [10, 11, 12]], [[1, 2, 3], [11, 12, 13]])
    """

    #: under torchrun each rank takes its own rows of every batch, not its own batches
    shard_by = "rows"

    def __init__(self, ids: Tensor, bs: int) -> None:
        self.ids, self.bs = ids, bs
        self.row_len = (len(ids) - 1) // bs
        if self.row_len < 2:
            raise DataError(f"a stream of {len(ids)} tokens is too short for {bs} rows; give "
                            f"more text or a smaller batch size")

    def __len__(self) -> int:
        return self.bs

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
        offset, position, length = key
        starts = offset + position + torch.arange(self.bs) * self.row_len
        index = (starts[:, None] + torch.arange(length + 1)[None]) % len(self.ids)
        chunk = self.ids[index]
        return chunk[:, :-1], chunk[:, 1:]


class LMBatchSampler(Sampler[tuple[int, int, int]]):
    """Keys for :class:`LMStream`: consecutive chunks along the rows, of variable length in
    training (ULMFiT: ``bptt`` 95 % of the time, ``bptt / 2`` otherwise, jittered by a normal
    of standard deviation 5) and a random start offset per epoch; fixed ``bptt`` and offset 0
    for validation. The number of batches is the same every epoch.

    Example:
        >>> keys = list(LMBatchSampler(row_len=100, bptt=10, shuffle=False))
        >>> len(keys), keys[0], sum(length for _, _, length in keys)
        (10, (0, 0, 10), 100)
    """

    def __init__(self, row_len: int, bptt: int = 70, shuffle: bool = True,
                 n_tokens: int | None = None) -> None:
        self.row_len, self.bptt, self.shuffle = row_len, bptt, shuffle
        self.n_tokens = n_tokens or row_len
        self.n_batches = max(1, math.ceil(row_len / bptt))

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        if not self.shuffle:
            for position in range(0, self.row_len, self.bptt):
                yield 0, position, min(self.bptt, self.row_len - position)
            return
        offset = int(torch.randint(self.n_tokens, ()).item())
        base = torch.where(torch.rand(self.n_batches) < 0.95, float(self.bptt), self.bptt / 2)
        lengths = (base + 5 * torch.randn(self.n_batches)).clamp(min=5)
        bounds = torch.cumsum(lengths, 0) / lengths.sum() * self.row_len
        bounds = torch.cat([torch.zeros(1), bounds]).round().long().tolist()
        bounds[-1] = self.row_len
        for start, end in itertools.pairwise(bounds):
            if end > start:
                yield offset, start, end - start


class LanguageModelData(ember.Data):
    """A corpus for a language model: texts tokenised and joined into one stream per split,
    read in BPTT chunks of variable length (``bs`` parallel rows).

    The target kind is ``"sequence"`` (next-token ids); ``learn.predict(prompt, n_words=20,
    temperature=0.8)`` generates text.

    Example:
        >>> data = LanguageModelData.from_texts(["It is a truth universally acknowledged."] * 40,
        ...                                     bs=4, bptt=8, min_freq=1)
        >>> xb, yb = data.one_batch()
        >>> xb.shape[0], bool((xb[:, 1:] == yb[:, :-1]).all())
        (4, True)
    """

    kind = "language_model"

    def input_schema(self) -> dict[str, Any]:
        """One raw item for ``ember serve``'s ``/metadata``: a prompt, as a string.

        Example:
            >>> LanguageModelData.input_schema(None)["type"]
            'string'
        """
        return {"type": "string", "description": "the start of a text, to continue"}

    def predict_one(self, model: torch.nn.Module, item: Any, device: Any = None,
                    **options: Any) -> Any:
        """The continuation of one prompt (``learn.predict(prompt)``); a list or tuple of
        prompts is a :class:`DataError` that points to ``predict_batch``.

        Example:
            >>> # learn.predict("It is a truth", n_words=20) -> 'It is a truth ...'
        """
        _one_text(item)
        return super().predict_one(model, item, device, **options)

    from_upload = TextData.from_upload  # a text file, read and checked as TextData does

    def __init__(self, train_dl: DataLoader | None, valid_dl: DataLoader | None,
                 test_dl: DataLoader | None = None, *, tokenizer: Tokenizer, vocab: Vocab,
                 bptt: int = 70, backwards: bool = False) -> None:
        super().__init__(train_dl, valid_dl, test_dl, target_kind="sequence", n_out=len(vocab),
                         input_kind="text")
        self.tokenizer, self.vocab, self.bptt = tokenizer, vocab, bptt
        self.backwards = backwards

    @classmethod
    def from_texts(cls, texts: Any, text_col: str | None = None, valid_pct: float = 0.1,
                   seed: int = 0, *, bs: int = 64, bptt: int = 70,
                   tokenizer: Tokenizer | None = None, vocab: Vocab | None = None,
                   min_freq: int = 2, max_vocab: int = 60000, n_workers: int | None = None,
                   cache_dir: str | Path | None = None, backwards: bool = False,
                   test: Any = None) -> LanguageModelData:
        """Build from a list of texts (documents, paragraphs or lines) or a data frame column.

        Texts are split into train and validation by a seeded ``valid_pct`` split of whole
        texts; the vocab is built on the training texts (or pass ``vocab=``); each text starts
        with ``xxbos``. Blank texts (the empty lines between paragraphs of a book read line by
        line) are skipped. Tokenisation runs in ``n_workers`` processes for large corpora and is
        cached in ``cache_dir`` (see :meth:`Tokenizer.tokenize_many`). ``backwards=True``
        reverses each stream, so the model learns to predict the previous token (ULMFiT's
        backward model; its classifier takes ``TextData.from_texts(..., backwards=True)``),
        and generation writes the text that comes *before* a prompt.

        ``test`` holds held-out texts (a list, or a data frame read by ``text_col``) for a
        test stream read like the validation one (``learn.validate("test")`` gives its loss
        and perplexity): the training vocab (words it lacks read as ``xxunk``), fixed ``bptt``
        chunks, never shuffled. Blank texts are skipped there too; errors name a bad one
        ``test item 3`` (and a training one ``text #3``, by its place in ``texts``).

        Example:
            >>> data = LanguageModelData.from_texts(["one two three four"] * 50, bs=2,
            ...                                     bptt=5, min_freq=1)
            >>> data.n_out == len(data.vocab)
            True
            >>> data = LanguageModelData.from_texts(["one two three four"] * 50, bs=2,
            ...                                     bptt=5, min_freq=1, test=["four one"] * 9)
            >>> data.test_dl is data.loader("test")
            True
        """
        check_whole(bptt, "bptt", "the tokens of each training sequence")
        if vocab is None:  # before the (long) tokenisation
            Vocab.check_size_options(min_freq, max_vocab)
        texts, names = _corpus(texts, text_col)
        test_texts, test_names = _corpus(test, text_col, test=True) if test is not None else (
            [], [])
        tokenizer = tokenizer or Tokenizer()
        if test is not None:  # first: a bad test text is named before the corpus is tokenised
            test_tokens = tokenizer.tokenize_many(test_texts, n_workers, cache_dir=cache_dir,
                                                  names=test_names)
        tokens = tokenizer.tokenize_many(texts, n_workers, cache_dir=cache_dir, names=names)
        train_idx, valid_idx = ember.split_indices(len(texts), valid_pct, seed)
        if vocab is None:
            vocab = Vocab.build((tokens[i] for i in train_idx), min_freq, max_vocab)

        def stream(token_lists: Iterable[list[str]]) -> Tensor:
            ids = torch.tensor([i for tokens in token_lists for i in vocab.numericalize(tokens)],
                               dtype=torch.long)
            return ids.flip(0) if backwards else ids

        pin = torch.cuda.is_available()

        def evaluation_loader(ids: Tensor, what: str) -> DataLoader:
            """Fixed ``bptt`` chunks from offset 0, as many rows as the stream fills."""
            rows = max(1, min(bs, (len(ids) - 1) // (bptt + 1)))
            try:
                dataset = LMStream(ids, rows)
            except DataError as error:
                raise DataError(f"the {what} texts: {error}") from None
            return DataLoader(dataset, batch_size=None, pin_memory=pin,
                              sampler=LMBatchSampler(dataset.row_len, bptt, False))

        train_stream = stream(tokens[i] for i in train_idx)
        try:
            train_ds = LMStream(train_stream, bs)
        except DataError as error:
            raise DataError(f"the training texts: {error}") from None
        train_dl = DataLoader(train_ds, batch_size=None, pin_memory=pin,
                              sampler=LMBatchSampler(train_ds.row_len, bptt, True,
                                                     len(train_stream)))
        valid_dl = evaluation_loader(stream(tokens[i] for i in valid_idx), "validation")
        test_dl = evaluation_loader(stream(test_tokens), "test") if test is not None else None
        return cls(train_dl, valid_dl, test_dl, tokenizer=tokenizer, vocab=vocab, bptt=bptt,
                   backwards=backwards)

    # ---------------------------------------------------------------- inference
    def encode(self, items: Sequence[Any]) -> tuple[Tensor, ...]:
        """Token ids of prompts (reversed when ``backwards``), padded at the end (the model's
        input).

        Example:
            >>> # data.encode(["It is a truth"])[0] -> tensor([[2, 8, 20, 15, 11, 453]])
        """
        names = [f"prompt #{ember.item_number(i)}" for i in range(len(items))]
        tokens = self.tokenizer.tokenize_many(items, n_workers=1, cache_dir=False, names=names)
        return (pad_ids([_ids(self.vocab.numericalize(t), self.backwards) for t in tokens],
                        self.vocab.pad_id),)

    def input_specs(self, n_inputs: int) -> list[ember.InputSpec]:
        """The language model takes ``tokens`` ``(batch, time)``, both varying (for ONNX
        export, which holds one forward pass: next-token logits for every position).

        Example:
            >>> # data.input_specs(1) -> [InputSpec('tokens', {0: 'batch', 1: 'time'})]
        """
        return [ember.InputSpec("tokens", {0: "batch", 1: "time"})]

    def decode(self, outputs: Tensor, threshold: float = 0.5) -> list[Any]:
        """The most likely next token at each position, as token lists (in reading order
        when ``backwards``).

        Example:
            >>> # data.decode(model(xb)) -> [['the', 'xxmaj', ...], ...]
        """
        return [_in_order(self.vocab.decode(row.tolist()), self.backwards)
                for row in outputs.argmax(dim=-1)]

    def decode_targets(self, targets: Tensor) -> list[Any]:
        """Target texts of a batch.

        Example:
            >>> # data.decode_targets(yb)[0] -> 'It is a truth…'
        """
        return [self.tokenizer.detokenize(_in_order(self.vocab.decode(row.tolist()),
                                                    self.backwards)) for row in targets]

    def predict_batch(self, model: torch.nn.Module, items: Sequence[Any], device: Any = None,
                      bs: int = 256, *, n_words: int = 20, temperature: float = 1.0,
                      top_k: int | None = None, seed: int | None = None,
                      no_unk: bool = True, probs: bool = False, **options: Any) -> list[str]:
        """Continue each prompt by ``n_words`` tokens, sampled with ``temperature`` (``0``:
        always the most likely token) from the ``top_k`` most likely (``None``: all), never
        ``xxunk`` when ``no_unk``. ``seed`` makes sampling reproducible, item by item: each
        prompt's continuation is the one ``predict(prompt, seed=seed)`` gives. Returns the prompt
        and its continuation as text (a backward model writes the words *before* the prompt:
        continuation, then prompt). A prompt is unfinished text: the model does not see an
        ``xxeos`` after it (forward) or an ``xxbos`` before it (backward). Generated text has
        no class probabilities: ``probs=True`` is refused (see :meth:`why_no_probabilities`).

        Example:
            >>> # learn.predict("It is a truth", n_words=20, temperature=0.75)
        """
        from ember_text.models import generate

        self.check_options(options, probs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not -(2**63) <= seed < 2**64):
            raise DataError(f"seed must be a whole number from -2**63 to 2**64 - 1 (torch's "
                            f"range), or None for a fresh draw each call; got {seed!r}")
        device = device or next(model.parameters()).device
        generator = torch.Generator(device="cpu")
        if seed is None:
            generator.seed()
        results = []
        for item_index, item in enumerate(items):
            if seed is not None:  # every item from the seed, as if predicted alone
                generator.manual_seed(seed)
            ids = self.tokenizer.tokenize_many([item], n_workers=1, cache_dir=False,
                                               names=[f"prompt #{item_index}"])[0]
            ids = _open_ended(ids, self.backwards)
            prompt = self.vocab.numericalize(ids)[:: -1 if self.backwards else 1]
            banned = [self.vocab.unk_id, self.vocab.pad_id] if no_unk else [self.vocab.pad_id]
            new = generate(model, prompt, n_words, temperature=temperature, top_k=top_k,
                           banned=banned, generator=generator, device=device)
            words = self.vocab.decode(new)
            results.append(self.tokenizer.detokenize(words[::-1] + ids if self.backwards
                                                     else ids + words))
        return results

    def option_limits(self) -> dict[str, int]:
        """The most ``ember serve`` lets a client ask for (see :meth:`ember.Data.option_limits`):
        ``n_words`` 1,000.

        Each generated token is one model step per prompt (a transformer's step also grows
        with the text so far), so ``n_words`` sets the cost of a request; 1,000 tokens is a
        few pages of text, far more than a completion needs, and ``n_words=10000000`` cannot
        hold the server. ``top_k`` costs nothing extra (a value over the vocab size samples
        from every token), and ``temperature`` and ``seed`` cost nothing, so they have no
        limit. Direct calls are not limited.

        Example:
            >>> LanguageModelData.option_limits(None)
            {'n_words': 1000}
        """
        return {"n_words": 1000}

    def why_no_probabilities(self) -> str:
        """A language model's predictions are text, not classes: ``probs=True`` is refused
        with this reason.

        Example:
            >>> LanguageModelData.why_no_probabilities(None)[:33]
            'a language model predicts text (t'
        """
        return ("a language model predicts text (the prompt and its continuation), not "
                "classes; learn.get_preds() gives the next-token probabilities")

    def show_batch(self, n: int = 6, split: str = "train") -> list[tuple[str, str]]:
        """Print ``n`` rows of the first batch of ``split`` as text, each input beside its
        target (the same stream one token on: what the model learns to predict), and return
        them as ``(input, target)``; in reading order when ``backwards``.

        Example:
            >>> # data.show_batch(2)
            >>> # input:  xxbos xxmaj it is a truth universally
            >>> # target: xxmaj it is a truth universally acknowledged
        """
        xb, yb = self.one_batch(split)[:2]
        rows = list(zip(self.decode_targets(xb[:n]), self.decode_targets(yb[:n])))
        for text, target in rows:
            print(f"input:  {text[:100]}\ntarget: {target[:100]}\n")
        return rows

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 9) -> Any:
        """Print the target text and the model's next-token guesses; returns the pairs.

        Example:
            >>> # learn.show_results(3)
        """
        targets = self.decode_targets(batch[-1][:n])
        guesses = [self.tokenizer.detokenize(p) for p in predictions[:n]]
        for target, guess in zip(targets, guesses):
            print(f"text:   {target[:100]}\nguess:  {guess[:100]}\n")
        return list(zip(targets, guesses))

    # ---------------------------------------------------------------- export
    def state(self) -> dict[str, Any]:
        """Tokenizer, vocab, BPTT length and direction for an exported language model.

        Example:
            >>> # LanguageModelData.from_state(data.state()).vocab == data.vocab
        """
        return {**super().state(), "tokenizer": self.tokenizer.state(),
                "vocab": self.vocab.to_dict(), "bptt": self.bptt, "backwards": self.backwards}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LanguageModelData:
        """An inference-only :class:`LanguageModelData` (for generation) from :meth:`state`.

        Example:
            >>> # data = LanguageModelData.from_state(manifest["data"]["state"])
        """
        return cls(None, None, tokenizer=Tokenizer.from_state(state["tokenizer"]),
                   vocab=Vocab.from_dict(state["vocab"]), bptt=state.get("bptt", 70),
                   backwards=bool(state.get("backwards", False)))

