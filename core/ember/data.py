"""The data contract: one :class:`Data` object per dataset.

A ``Data`` carries what a model needs to know about a dataset: the train / valid / optional test
loaders, the kind of target, the class list, and the preprocessing to replay at inference
(:meth:`Data.encode` turns raw items into an input batch, :meth:`Data.decode` turns model outputs
back into labels, floats or strings). Plugins subclass it for their domain; any two plain torch
``DataLoader`` objects become one with :meth:`Data.from_loaders`.

A batch is a tuple ``(*inputs, target)``: every element but the last is passed to the model as a
positional argument, the last is the target.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> import ember
    >>> x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    >>> data = ember.Data.from_loaders(
    ...     DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16, shuffle=True),
    ...     DataLoader(TensorDataset(x[48:], y[48:]), batch_size=16))
    >>> data.target_kind, data.n_out
    ('single_label', 2)
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from ember.errors import DataError, PluginError
from ember.utils import check_whole, is_missing, plain, warn

if TYPE_CHECKING:
    import numpy as np
    from torch.utils.data import DataLoader, Dataset

__all__ = [
    "TARGET_KINDS",
    "Data",
    "InputSpec",
    "Prediction",
    "check_batch",
    "check_batch_like_training",
    "check_batch_size",
    "check_items",
    "find_test_folder",
    "first_unseen_class",
    "item_number",
    "make_loaders",
    "n_batches",
    "numbering_items_from",
    "require_batches",
    "split_by_flags",
    "split_folders",
    "split_indices",
    "split_label",
    "split_test",
    "unlabelled_test_error",
    "warn_unseen_classes",
]

#: The kinds of target Ember knows. They choose the default loss, metrics and decoding.
TARGET_KINDS = ("single_label", "multi_label", "regression", "sequence")


@dataclass(frozen=True)
class InputSpec:
    """One positional input of a model as an exported graph (ONNX) declares it: a name, and the
    dimensions whose size varies between calls (index → axis name). The batch dimension 0
    varies for every input; a text batch also varies in length.

    Example:
        >>> InputSpec("tokens", {0: "batch", 1: "time"}).dynamic[1]
        'time'
        >>> InputSpec("input0").dynamic
        {0: 'batch'}
    """

    name: str
    dynamic: dict[int, str] = field(default_factory=lambda: {0: "batch"})


class Prediction(NamedTuple):
    """One prediction with how sure the model is, as ``predict(item, probs=True)`` gives it.

    ``value`` is what ``predict(item)`` gives (a class, or the list of classes of a multi-label
    target); ``probabilities`` maps each class, in the order of ``data.classes`` (its index
    when the classes have no names), to its probability: the softmax of the model's outputs
    for a single-label target, one sigmoid per class for a multi-label one.

    Example:
        >>> prediction = Prediction("dog", {"cat": 0.2, "dog": 0.8})
        >>> prediction.value, prediction.probabilities["dog"]
        ('dog', 0.8)
    """

    value: Any
    probabilities: dict[Any, float]


def split_indices(n: int, valid_pct: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into seeded, reproducible train and validation indices.

    The same ``n``, ``valid_pct`` and ``seed`` always give the same split, on any machine.

    Example:
        >>> train, valid = split_indices(10, valid_pct=0.2, seed=0)
        >>> len(train), len(valid), sorted(set(train) | set(valid)) == list(range(10))
        (8, 2, True)
    """
    if n < 2:
        raise DataError(f"cannot split {n} item(s) into train and validation; give at least 2")
    if not 0.0 < valid_pct < 1.0:
        raise DataError(f"valid_pct must be between 0 and 1 (exclusive), got {valid_pct}")
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    n_valid = min(n - 1, max(1, round(n * valid_pct)))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def first_unseen_class(train: Iterable[Any], labels: Iterable[Any],
                       classes_of: Callable[[Any], Iterable[Any]] | None = None
                       ) -> tuple[int, Any] | None:
    """The first class in ``labels`` that no ``train`` label has, as ``(position in labels,
    class)``, or None when every class was seen in training.

    A validation or test label of a class that training lacks is one the model could never
    learn: a wrong label, or a split that left the class out. Plugins call this and word the
    error for their items. ``classes_of`` turns one label into its classes (a multi-label
    item has several; split them the way the plugin's encoder does); by default a label is
    one class, NumPy scalars made plain (see :func:`ember.utils.plain`).

    Example:
        >>> first_unseen_class(["cat", "dog"], ["dog", "cat", "bird"])
        (2, 'bird')
        >>> first_unseen_class(["a,b", "c"], ["c", "b,d"], lambda label: label.split(","))
        (1, 'd')
        >>> first_unseen_class([1, 2], [2, 1]) is None
        True
    """
    split = classes_of if classes_of is not None else (lambda label: [plain(label)])
    seen = {seen_class for label in train for seen_class in split(label)}
    for position, label in enumerate(labels):
        for label_class in split(label):
            if label_class not in seen:
                return position, label_class
    return None


def warn_unseen_classes(train: Iterable[Any], valid: Iterable[Any],
                        classes_of: Callable[[Any], Iterable[Any]] | None = None, *,
                        item: str = "item") -> dict[Any, int]:
    """After a random validation split (``valid_pct``), warn about every class whose items all
    fell in validation; returns those classes with their number of items (empty when none).

    One rule for every plugin: a split the user gave (a validation column, a ``valid``
    folder, validation items) with a class that training lacks is a :class:`DataError` (see
    :func:`first_unseen_class`), since the user chose it; a random split did it by chance, so
    the data is kept and an :class:`ember.EmberWarning` names each class, how many
    ``item``\\ s it has, and the fix (another ``seed=``, a smaller ``valid_pct=``, or drop the
    class). The model has an output for such a class but never trains on it, and its items
    count as errors in every validation metric. ``classes_of`` is as for
    :func:`first_unseen_class`.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     warn_unseen_classes(["cat", "dog"], ["dog", "bird", "bird"], item="image")
        {'bird': 2}
    """
    split = classes_of if classes_of is not None else (lambda label: [plain(label)])
    seen = {seen_class for label in train for seen_class in split(label)}
    unseen: dict[Any, int] = {}
    for label in valid:
        for label_class in split(label):
            if label_class not in seen:
                unseen[label_class] = unseen.get(label_class, 0) + 1
    if unseen:
        def counted(count: int) -> str:
            return f"{count} {item}" + ("" if count == 1 else "s")

        listed = ", ".join(f"{label_class!r} ({counted(count)})"
                           for label_class, count in list(unseen.items())[:10])
        more = f" and {len(unseen) - 10} more" if len(unseen) > 10 else ""
        noun, it, that = (("class", "it", "that class") if len(unseen) == 1
                          else ("classes", "each", "those classes"))
        warn(f"the random validation split put every {item} of {noun} {listed}{more} in "
             f"validation: the model has an output for {it} but never trains on {it}, and "
             f"those {item}s count as errors in validation; pass another seed=, a smaller "
             f"valid_pct= (a larger training share), or drop the {item}s of {that}")
    return unseen


def split_label(label: str, delim: str) -> list[str]:
    """The classes of one multi-label item written as a string with ``delim`` between them:
    each part stripped of the spaces around it (a CSV's ``"cat, dog"``), empty parts (a
    blank label, a stray or doubled delimiter) dropped. One rule for every plugin's
    ``label_delim``, so that training, validation and test labels split alike.

    Example:
        >>> split_label("cat, dog,", ",")
        ['cat', 'dog']
        >>> split_label("  ", " ")
        []
    """
    return [part.strip() for part in label.split(delim) if part.strip()]


def split_by_flags(flags: Iterable[Any], n: int | None = None, name: str = "valid_col"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices from one flag per item (true: a validation item), as
    a data frame's validation column gives them.

    Booleans and the numbers 0 and 1 are flags; a missing value (None, NaN, pandas' NA) marks
    a training item. Anything else raises a :class:`DataError` that names the values: a
    string such as ``"False"`` is true to Python's ``bool``, so reading it as a flag would put
    every item in validation. Each side must keep at least one item; ``n`` checks the count.

    Example:
        >>> train, valid = split_by_flags([False, True, 0, 1, None])
        >>> train.tolist(), valid.tolist()
        ([0, 2, 4], [1, 3])
    """
    import numpy as np

    marks, odd = [], set()
    for value in flags:
        if isinstance(value, (bool, np.bool_)):
            marks.append(bool(value))
        elif is_missing(value):
            marks.append(False)
        elif isinstance(value, numbers.Real) and value in (0, 1):
            marks.append(bool(value))
        else:
            odd.add(repr(value))
    if odd:
        raise DataError(f"{name} must be boolean (True for a validation item); it holds "
                        f"{sorted(odd)[:5]}. Convert it first, e.g. column == 'True'")
    if n is not None and len(marks) != n:
        raise DataError(f"{name} has {len(marks)} entries for {n} items")
    chosen = np.asarray(marks, dtype=bool)
    train, valid = np.flatnonzero(~chosen), np.flatnonzero(chosen)
    if len(train) == 0 or len(valid) == 0:
        raise DataError(f"{name} leaves {len(train)} training and {len(valid)} validation "
                        f"items; both need at least one")
    return train, valid


def split_folders(root: str | Path, train: str = "train", valid: str = "valid"
                  ) -> tuple[Path, Path] | None:
    """The training and validation folders of a folder of class folders split in advance
    (``root/train/<class>`` and ``root/valid/<class>``), or None when ``root`` holds the class
    folders themselves (a class may be called "train" if its folder holds items, not folders).

    Half the split layout, a ``train`` folder of class folders without a ``valid`` one (IMDB's
    ``train/`` and ``test/``) or the reverse, raises a :class:`DataError` that names the
    folders: read as classes, the two splits would become two classes.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     root = Path(folder)
        ...     for split in ("train", "valid"):
        ...         (root / split / "cat").mkdir(parents=True)
        ...     print([found.name for found in split_folders(root)], split_folders(root / "train"))
        ['train', 'valid'] None
    """
    root = Path(root)
    splits = (root / train, root / valid)
    present = [folder for folder in splits if folder.is_dir()]
    if len(present) == 2:
        return splits
    if present and any(entry.is_dir() for entry in present[0].iterdir()):
        folders = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
        if present[0] == splits[0]:
            raise DataError(
                f"{root} has a {train!r} folder but no validation folder {valid!r} (its "
                f"folders: {folders}); pass valid= the folder that holds the validation "
                f"items, or give {splits[0]} itself to split it by valid_pct")
        raise DataError(
            f"{root} has a {valid!r} folder but no training folder {train!r} (its folders: "
            f"{folders}); pass train= the folder that holds the training items")
    return None


def find_test_folder(root: str | Path, test: str | None = "test", splits: Sequence[Path] = (),
                     suffixes: Sequence[str] = (), items: str = "items", *,
                     loose: bool = False) -> Path | None:
    """The test folder beside a split layout: ``root/test`` when it is a folder of class
    folders and not one of ``splits`` (the training and validation folders that
    :func:`split_folders` found; ``valid="test"`` makes the test folder the validation one).
    None when ``test`` is None, there is no such folder, or it is one of ``splits``.

    A test folder of loose files (names ending in one of ``suffixes``) without class folders
    has no labels. With ``loose=True`` (a plugin that reads such a folder as a test set
    without labels, :attr:`Data.test_labelled` False) it is returned like a labelled one,
    and the caller tells the two apart by its class folders; otherwise it is left out with an
    :class:`ember.EmberWarning` that names it and says what to do (``items`` names the
    files: "images", "texts"). A folder with neither class folders nor such files is None.
    Hidden folders (``.ipynb_checkpoints``) are not class folders.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     root = Path(folder)
        ...     for split in ("train", "valid", "test"):
        ...         (root / split / "cat").mkdir(parents=True)
        ...     print(find_test_folder(root, "test", split_folders(root)).name,
        ...           find_test_folder(root, None), find_test_folder(root, "valid",
        ...                                                          split_folders(root)))
        test None None
    """
    if test is None:
        return None
    root = Path(root)
    folder = root / test
    if not folder.is_dir() or any(folder.resolve() == Path(split).resolve() for split in splits):
        return None
    files = loose_files(folder, suffixes)
    if files is None:
        return folder
    if files and loose:
        return folder
    if files:
        warn(f"{folder} holds no class folders, so its {items} have no labels to score: "
             f"it is left out of the data (predict such {items} with "
             f"learn.predict_batch); put them in {folder}/<class name>/ to make it the "
             f"test split, or pass test=None")
    return None


def loose_files(folder: str | Path, suffixes: Sequence[str]) -> list[Path] | None:
    """The files of ``folder`` whose names end in one of ``suffixes`` (any case), in name
    order, when it holds no class folders: a test set without labels (see
    :func:`find_test_folder`); None when it holds class folders. Hidden entries
    (``.ipynb_checkpoints``, ``._photo.png``) are neither.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for name in ("b.png", "a.PNG", "notes.txt", "._a.png"):
        ...         _ = (Path(folder) / name).write_bytes(b"")
        ...     print([p.name for p in loose_files(folder, [".png"])])
        ...     (Path(folder) / "cat").mkdir()
        ...     print(loose_files(folder, [".png"]))
        ['a.PNG', 'b.png']
        None
    """
    entries = [entry for entry in Path(folder).iterdir() if not entry.name.startswith(".")]
    if any(entry.is_dir() for entry in entries):
        return None
    wanted = {suffix.lower() for suffix in suffixes}
    return sorted((entry for entry in entries
                   if entry.is_file() and entry.suffix.lower() in wanted),
                  key=lambda entry: entry.name)


def class_files(folder: str | Path, suffixes: Sequence[str]) -> list[Path]:
    """The files under a class folder, nested folders included, whose names end in one of
    ``suffixes`` (any case), in path order. Hidden entries at any depth (Jupyter's
    ``.ipynb_checkpoints`` copies, macOS's ``._photo.png`` resource files) are not items of
    the class, as :func:`loose_files` leaves them out of a test folder.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for name in ("b.png", "a.PNG", "notes.txt", "._a.png", "sub/c.png",
        ...                  ".ipynb_checkpoints/b-checkpoint.png"):
        ...         (Path(folder) / name).parent.mkdir(exist_ok=True)
        ...         _ = (Path(folder) / name).write_bytes(b"")
        ...     print([p.relative_to(folder).as_posix() for p in class_files(folder, [".png"])])
        ['a.PNG', 'b.png', 'sub/c.png']
    """
    root = Path(folder)
    wanted = {suffix.lower() for suffix in suffixes}
    return sorted(path for path in root.rglob("*")
                  if path.is_file() and path.suffix.lower() in wanted
                  and not any(part.startswith(".") for part in path.relative_to(root).parts))


def split_test(test: Any, is_item: Callable[[Any], bool], item: str = "item"
               ) -> tuple[Any, Any | None]:
    """Read a plugin's ``test=`` as ``(inputs, labels)``, or as the inputs alone with labels
    None (a test set without labels, :attr:`Data.test_labelled` False). One rule for every
    plugin, which says with ``is_item`` whether one object is a single input item (one text,
    one path, one image):

    - anything but a tuple or list of two parts is the inputs alone;
    - so is a pair either part of which is one item: two texts are two texts, two paths two
      images;
    - a tuple is ``(inputs, labels)``; parts of different lengths are a :class:`DataError`
      naming both counts (``item`` names the inputs in it: "text", "image");
    - a list is ``(inputs, labels)`` when both parts have a length and the lengths match,
      else the inputs alone (two images of different heights are two images).

    Pass a list of items, or an array, for inputs alone; a tuple for a pair.

    Example:
        >>> def is_text(part):
        ...     return isinstance(part, str)
        >>> split_test((["good", "dull"], ["pos", "neg"]), is_text)
        (['good', 'dull'], ['pos', 'neg'])
        >>> split_test(["good", "dull"], is_text)
        (['good', 'dull'], None)
        >>> split_test(("good", "dull"), is_text)
        (('good', 'dull'), None)
    """
    if not isinstance(test, (tuple, list)) or len(test) != 2:
        return test, None
    inputs, labels = test
    if is_item(inputs) or is_item(labels):
        return test, None
    sized = hasattr(inputs, "__len__") and hasattr(labels, "__len__")
    if isinstance(test, tuple):
        if sized and len(inputs) != len(labels):
            raise DataError(f"test: {len(inputs)} {item}s but {len(labels)} labels; give one "
                            f"label per {item}")
        return inputs, labels
    if sized and len(inputs) == len(labels):
        return inputs, labels
    return test, None


def make_loaders(
    train_ds: Dataset,
    valid_ds: Dataset,
    test_ds: Dataset | None = None,
    *,
    bs: int = 64,
    valid_bs: int | None = None,
    num_workers: int = 0,
    collate_fn: Any = None,
    train_sampler: Any = None,
    valid_sampler: Any = None,
    test_sampler: Any = None,
    pin_memory: bool | None = None,
) -> tuple[DataLoader, DataLoader, DataLoader | None]:
    """Build loaders that follow Ember's rules: training shuffles, validation never does.

    The training loader drops the last incomplete batch only when at least one full batch
    remains of what an epoch draws (the training sampler's length when it has one), so
    BatchNorm never sees a batch of one, and small datasets still train; the
    shuffle draws from torch's global generator so :func:`ember.seed` makes it reproducible.
    Reading a loader draws nothing else from that generator (each loader seeds its workers
    from a ``generator`` of its own, seeded from torch's seed), so a validation pass does not
    change the next fit, and a fit resumed from a checkpoint, with or without ``num_workers``,
    draws what the uninterrupted one draws.
    Validation and test loaders keep every item in order. Samplers may be given instead (for
    example a length-bucketing sampler); the training one must shuffle, the validation and test
    ones must not. An empty training, validation or test set is a :class:`DataError`.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.arange(10.0))
        >>> train, valid, _ = make_loaders(ds, ds, bs=4)
        >>> len(train), len(valid)  # validation batches are twice as large
        (2, 2)
    """
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

    for name, ds in (("training", train_ds), ("validation", valid_ds), ("test", test_ds)):
        if ds is not None and len(ds) == 0:  # type: ignore[arg-type]
            raise DataError(f"the {name} set is empty; give it at least one item")
    bs = check_batch_size(bs)
    valid_bs = bs * 2 if valid_bs is None else check_batch_size(valid_bs, "valid_bs")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    common = {"num_workers": num_workers, "collate_fn": collate_fn, "pin_memory": pin_memory}
    if num_workers > 0:
        common["persistent_workers"] = True
    if train_sampler is None:
        train_sampler = RandomSampler(train_ds)
    try:  # what an epoch draws: a sampler may draw fewer items (or more) than the dataset holds
        n_train = len(train_sampler)
    except TypeError:
        n_train = len(train_ds)  # type: ignore[arg-type]
    train = DataLoader(
        train_ds, batch_size=bs, sampler=train_sampler, drop_last=n_train > bs,
        generator=worker_seeds(), **common
    )

    def evaluation_loader(ds: Dataset, sampler: Any = None) -> DataLoader:
        sampler = sampler if sampler is not None else SequentialSampler(ds)
        return DataLoader(ds, batch_size=valid_bs, sampler=sampler, drop_last=False,
                          generator=worker_seeds(), **common)

    valid = evaluation_loader(valid_ds, valid_sampler)
    test = evaluation_loader(test_ds, test_sampler) if test_ds is not None else None
    return train, valid, test


def worker_seeds() -> torch.Generator:
    # Each reading of a loader draws its workers' base seed from the loader's ``generator``,
    # torch's global one when it has none: a draw every epoch without workers, only the first
    # epoch with persistent workers. So a validation pass outside a fit shifted the next fit's
    # shuffle, and a fit resumed in a fresh process (its workers new) drew once more than the
    # uninterrupted one. Its own generator, seeded from torch's seed (no draw), keeps the
    # global stream to the samplers, augmentation and dropout, and still follows ember.seed
    return torch.Generator().manual_seed(torch.initial_seed())


def n_batches(dl: DataLoader) -> int | None:
    """How many batches ``dl`` yields in one pass, or ``None`` when it cannot say without being
    read: a loader over an ``IterableDataset`` that defines no ``__len__`` (``len(dl)`` is a
    ``TypeError`` from inside torch then).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, IterableDataset, TensorDataset
        >>> n_batches(DataLoader(TensorDataset(torch.zeros(10, 1)), batch_size=4))
        3
        >>> class Stream(IterableDataset):
        ...     def __iter__(self):
        ...         return iter(torch.zeros(10, 1))
        >>> n_batches(DataLoader(Stream(), batch_size=4)) is None
        True
    """
    try:
        return len(dl)
    except TypeError:
        return None


def check_batch(batch: Any, name: str) -> None:
    """Raise a :class:`DataError` naming ``name`` (the loader) and what it gave when ``batch``
    is not a tuple or list ``(*inputs, target)`` of at least two elements: a dict batch would
    reach the model as its keys, a bare tensor batch as its rows.

    Example:
        >>> import torch
        >>> check_batch((torch.zeros(2, 3), torch.zeros(2)), "train_dl")
        >>> check_batch({"x": torch.zeros(2, 3)}, "train_dl")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ember.errors.DataError: each batch must be a tuple (*inputs, target), but train_dl ...
    """
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return
    what = (f"a dict with keys {sorted(map(str, batch))}" if isinstance(batch, dict) else
            f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list))
            else f"a {type(batch).__name__}")
    raise DataError(
        f"each batch must be a tuple (*inputs, target), but {name} gave {what}; return (x, y) "
        f"(or (x1, x2, ..., y)) from your Dataset, wrap inputs and targets in a "
        f"TensorDataset, or give the loader a collate_fn that returns such a tuple")


def check_batch_like_training(batch: Any, name: str, n_elements: int) -> None:
    """:func:`check_batch`, then a :class:`DataError` naming ``name`` (a validation or test
    loader) when ``batch`` has another number of elements than a training batch's
    ``n_elements``: both are read as ``(*inputs, target)``, so ``(x, y, index)`` against
    ``(x, y)`` would reach the model as ``model(x, y)`` with the indices as targets.
    :meth:`Data.from_loaders` calls it on the first batches it reads, the learner on the
    first batch of each evaluation pass.

    Example:
        >>> import torch
        >>> x, y = torch.zeros(2, 3), torch.zeros(2)
        >>> check_batch_like_training((x, y), "valid_dl", 2)
        >>> check_batch_like_training((x, y, y), "valid_dl", 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ember.errors.DataError: valid_dl gives batches of 3 element(s) but train_dl gives 2: ...
    """
    check_batch(batch, name)
    if len(batch) != n_elements:
        raise DataError(
            f"{name} gives batches of {len(batch)} element(s) but train_dl gives "
            f"{n_elements}: both are read as (*inputs, target), so {name} would give the "
            f"model other inputs or another target; make its Dataset (or collate_fn) return "
            f"what the training one does")


def check_batch_size(bs: Any, name: str = "bs") -> int:
    """``bs`` as an ``int`` when it is a whole number of at least 1 (a batch size), else a
    :class:`DataError` naming the option ``name`` (0 or a negative size predicted nothing,
    or failed deep inside the loader).

    Example:
        >>> check_batch_size(32)
        32
        >>> try:
        ...     check_batch_size(0)
        ... except DataError as error:
        ...     print(error)
        bs (the batch size) must be a whole number of at least 1, got 0
    """
    return check_whole(bs, name, "the batch size")


def check_items(items: Any, options: dict[str, Any] | None = None) -> None:
    """Refuse what ``predict_batch`` cannot read: one item given where it wants a collection
    of items (a string, bytes or a path: read character by character, byte by byte, or not
    iterable at all; any object that cannot be iterated, a PIL image), and among its
    ``options`` a batch size ``bs`` that is not a whole number of at least 1
    (:func:`check_batch_size`). Lists, tuples, arrays, tensors, data frames, mappings and
    generators pass. ``learn.predict_batch`` and a loaded model's call it, for every domain.

    Example:
        >>> check_items(["great film", "dull"], {"bs": 64})
        >>> try:
        ...     check_items("great film")
        ... except DataError as error:
        ...     print(str(error)[:46])
        predict_batch takes a collection of items, not
    """
    if isinstance(items, (str, bytes, bytearray, os.PathLike)) or not isinstance(
            items, Iterable):
        reading = " (a string would be read one character per item)" if isinstance(
            items, str) else ""
        raise DataError(f"predict_batch takes a collection of items, not one "
                        f"{type(items).__name__}{reading}; give a list ([item] for one item), "
                        f"or use predict(item)")
    if options and "bs" in options:  # every domain's predict_batch batches by it
        check_batch_size(options["bs"])


def unlabelled_test_error(needs: str, instead: str, what: str = "the test set") -> DataError:
    """The :class:`DataError` for something that needs targets (``needs``) asked of a test set
    without labels (:attr:`Data.test_labelled` False), or of another loader without them
    (``what``: "the loader"), saying what to use ``instead``.

    Example:
        >>> error = unlabelled_test_error("validate needs labels", "use get_preds")
        >>> str(error).endswith("only), and validate needs labels; use get_preds")
        True
    """
    return DataError(f"{what} has no labels (its batches hold the inputs only), and "
                     f"{needs}; {instead}")


def require_batches(dl: DataLoader, name: str) -> None:
    """Raise a :class:`DataError` naming ``name`` when the loader ``dl`` yields no batch (an
    iterable dataset without a length passes: only iterating it would tell).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> require_batches(DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=4), "x")
    """
    if n_batches(dl) == 0:
        raise DataError(f"{name} yields no batch: its dataset is empty, or smaller than the batch "
                        f"size with drop_last=True; give more data or a smaller batch_size")


#: the position, among all the items given, of the first item being encoded now
_first_item: contextvars.ContextVar[int] = contextvars.ContextVar("ember_first_item", default=0)


def item_number(position: int) -> int:
    """The number by which a message names the item at ``position`` of the items being
    encoded: its position among all the items the user gave. :meth:`Data.predict_batch`
    encodes items in chunks of ``bs``; inside :func:`numbering_items_from` (which it sets for
    each chunk) the chunk's position 0 is item ``start``, so a refusal of the 300th item says
    "item 299", not "item 43". An ``encode`` (a plugin's override too) names its items by this
    number.

    Example:
        >>> item_number(3)
        3
        >>> with numbering_items_from(256):
        ...     item_number(3)
        259
    """
    return _first_item.get() + position


@contextlib.contextmanager
def numbering_items_from(start: int) -> Iterator[None]:
    """Within the block, :func:`item_number` counts the items being encoded from ``start``:
    what a ``predict_batch`` that encodes its items in chunks sets around each chunk's
    ``encode``. Blocks nest (the innermost's ``start`` counts), and each thread has its own.

    Example:
        >>> # with numbering_items_from(start): batch = self.encode(items[start:start + bs])
    """
    token = _first_item.set(start)
    try:
        yield
    finally:
        _first_item.reset(token)


def _check_encoded(data: Data, inputs: Any) -> None:
    """Refuse, as the plugin's bug (a :class:`PluginError` naming the class), a batch from
    ``encode`` that is not a tuple of input tensors: a bare tensor would reach the model as
    ``model(*x)``, one row per argument, and fail as if the user's items were at fault."""
    if isinstance(inputs, (tuple, list)) and inputs and all(
            isinstance(x, Tensor) for x in inputs):
        return
    what = (f"a {type(inputs).__name__}" if not isinstance(inputs, (tuple, list)) else
            f"a {type(inputs).__name__} of " + (", ".join(type(x).__name__ for x in inputs)
                                                  or "nothing"))
    raise PluginError(f"{type(data).__name__}.encode gave {what}, not a tuple of input "
                      f"tensors; return (x,) for a model of one input, (x1, x2, ...) for "
                      f"several (a bug of the data class, not of the items)")


def _first_batch(dl: DataLoader) -> Any:
    """The first batch of ``dl``, read with torch's generator left as it was (a shuffling
    sampler draws its seed from it), so reading it does not change a seeded run's order."""
    with torch.random.fork_rng(devices=[]):
        return next(iter(dl))


def _labels(dl: DataLoader) -> Tensor:
    """All integer labels of a loader: from its dataset's label tensor or ``targets`` list (a
    ``TensorDataset``, torchvision's datasets, or a ``Subset`` of either) without loading a
    single input, else by iterating the loader."""
    from torch.utils.data import default_collate

    labels = None
    if dl.collate_fn is default_collate:  # a custom collate may change the labels
        dataset, indices = dl.dataset, None
        while hasattr(dataset, "dataset") and hasattr(dataset, "indices"):  # Subset(s)
            inner = torch.as_tensor(dataset.indices, dtype=torch.long)
            indices = inner if indices is None else inner[indices]
            dataset = dataset.dataset
        if isinstance(getattr(dataset, "tensors", None), tuple) and dataset.tensors:
            labels = dataset.tensors[-1]
        elif isinstance(getattr(dataset, "targets", None), (list, tuple, Tensor)):
            labels = torch.as_tensor(dataset.targets)
        if labels is not None and not labels.is_floating_point():
            return (labels if indices is None else labels[indices]).reshape(-1)
    return torch.cat([_target_of(batch, "a loader").reshape(-1) for batch in dl])


def _target_of(batch: Any, name: str) -> Tensor:
    """The target of a batch that :meth:`Data.from_loaders` reads its kind and classes off: a
    tensor (or numbers); a target in parts (a dict, a tuple of tensors) is a
    :class:`DataError` that asks for ``target_kind=`` and ``n_out=``."""
    check_batch(batch, name)
    target = batch[-1]
    if isinstance(target, (dict, tuple, list)) and not (
            isinstance(target, (tuple, list)) and target
            and all(isinstance(value, numbers.Number) for value in target)):
        raise DataError(
            f"the target of a training batch is a {type(target).__name__} (the last element "
            f"of each batch is the target), so Ember cannot read its kind or the model's "
            f"output size; pass target_kind= (one of {TARGET_KINDS}, which chooses the default "
            f"loss and metrics: give loss_func= and metrics= for a target in parts) and n_out= "
            f"(the model's output size) to from_loaders")
    return target if isinstance(target, Tensor) else torch.as_tensor(target)


def _stack(items: Sequence[Any], what: str, part: str = "",
           shape: tuple[int, ...] | None = None) -> Tensor:
    """One batch tensor of tensors, arrays or nested lists of numbers of one shape. An item
    that is not numbers, or whose shape is not the first item's, is a :class:`DataError` that
    names it by its position (``item 2``; ``part`` names which of its inputs, as in ``input 1
    of item 2``), so one bad item of a batch (an ``ember serve`` request's) can be found.
    With ``shape`` (the training items' shape, see :meth:`Data.checks_input_shapes`) an item
    of another shape is refused so too, even alone.

    Example:
        >>> _stack([[1.0, 2.0], [3.0, 4.0]], "the items").shape
        torch.Size([2, 2])
        >>> _stack([[1.0, 2.0, 3.0]], "the items", shape=(2,))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ember.errors.DataError: item 0 has shape (3,), but the model was trained on items of ...
    """
    tensors = []
    for position, item in enumerate(items):
        number = item_number(position)
        try:
            tensors.append(torch.as_tensor(item))
        except (TypeError, RuntimeError, ValueError, OverflowError) as error:
            raise DataError(
                f"cannot turn {part}item {number} of {what} into a tensor ({error}); give "
                f"each item as a tensor, an array or nested lists of numbers") from None
        if shape is not None and tuple(tensors[-1].shape) != tuple(shape):
            trained = (f"items whose {part.removesuffix(' of ')} has shape" if part
                       else "items of shape")
            raise DataError(
                f"{part}item {number} has shape {tuple(tensors[-1].shape)}, but the model "
                f"was trained on {trained} {tuple(shape)}; give items of that shape")
        if tensors[-1].shape != tensors[0].shape:
            raise DataError(
                f"{part}item {number} of {what} has shape {tuple(tensors[-1].shape)}, but "
                f"{part}item {item_number(0)} has {tuple(tensors[0].shape)}; give items of "
                f"one shape")
    try:
        return torch.stack(tensors)
    except (TypeError, RuntimeError, ValueError) as error:
        raise DataError(
            f"cannot turn {what} into one tensor batch ({error}); give tensors or arrays of one "
            f"shape"
        ) from None


def _shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of one input of a training item: a tensor's or an array's, ``()`` for a
    number, ``None`` for anything else (what default collate does to it is not checked)."""
    if isinstance(value, Tensor) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return tuple(int(size) for size in value.shape)
    return () if isinstance(value, numbers.Number) else None


def _shapes_from_state(state: dict[str, Any]) -> list[tuple[int, ...] | None] | None:
    """The ``"input_shapes"`` of an exported data state as tuples, or ``None`` when the file
    has none (exported before Ember recorded it, or items of any shape)."""
    shapes = state.get("input_shapes")
    if not isinstance(shapes, list):
        return None
    return [tuple(shape) if isinstance(shape, list) and all(
        isinstance(size, int) for size in shape) else None for shape in shapes]


def _shape_from_state(state: dict[str, Any]) -> tuple[int, ...] | None:
    """The ``"target_shape"`` of an exported data state as a tuple, or ``None`` when the file
    has none (exported before Ember recorded it, or a target of another kind)."""
    shape = state.get("target_shape")
    if isinstance(shape, list) and all(isinstance(size, int) for size in shape):
        return tuple(shape)
    return None


def _require_tensor(value: Any, source: str, what: str) -> None:
    """A :class:`DataError` when ``value`` (a batch of model outputs or targets) is not one
    tensor: a model with several heads, a target in parts. :meth:`Data.decode` reads one."""
    if isinstance(value, Tensor):
        return
    size = f" of {len(value)}" if isinstance(value, (tuple, list, dict)) else ""
    raise DataError(
        f"{source} a {type(value).__name__}{size} {what}, and decoding reads one tensor of "
        f"{what} per batch into one value per item; subclass ember.Data and override decode "
        f"(and decode_targets) to say what several mean, or read the raw {what} with "
        f"learn.get_preds()")


def _regression_values(values: Tensor) -> list[Any]:
    """One float per item, or a list of floats for items with several values."""
    flat = values.reshape(len(values), -1)
    return [row[0].item() if row.numel() == 1 else row.tolist() for row in flat]


def _plain_classes(classes: Iterable[Any]) -> list[Any]:
    """``classes`` as a list of plain Python values: a NumPy array's or a tensor's entries
    (``np.int64(5)``, ``tensor(5)``) became the predictions themselves, which ``json.dumps``
    refused, and a tensor's made ``export`` fail.

    Example:
        >>> import numpy as np
        >>> _plain_classes(np.array([5, 6])), _plain_classes(torch.tensor([0.5]))
        ([5, 6], [0.5])
    """
    return [plain(value.item() if isinstance(value, Tensor) and value.numel() == 1 else value)
            for value in classes]


def _checked_threshold(value: Any) -> float:
    """``value`` as a decision threshold: a number strictly between 0 and 1, else a
    :class:`DataError` naming the option."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 < float(value) < 1):
        raise DataError(
            f"threshold= must be a number between 0 and 1 (not 0 or 1 themselves): the "
            f"probability a class must pass to be predicted, e.g. threshold=0.3; got "
            f"{value!r}")
    return float(value)


class Data:
    """Everything a model needs to know about one dataset.

    Args:
        train_dl: the training loader (must shuffle).
        valid_dl: the validation loader (must not shuffle).
        test_dl: an optional test loader; it never feeds training statistics. Its batches
            may lack the target (a test set without labels): see :attr:`test_labelled`.
        target_kind: one of :data:`TARGET_KINDS`.
        classes: class names for ``single_label`` / ``multi_label`` targets.
        n_out: number of model outputs; derived from ``classes`` when not given.
        input_kind: a short name of the kind of input ("tensor", "image", "text", "tabular").

    Subclasses (one per domain) override :meth:`encode`, :meth:`decode` when they need more
    than tensors, and :meth:`state` / :meth:`from_state` to carry their preprocessing into an
    exported model. They set ``kind`` to the name under which their plugin registers them.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(torch.randn(8, 2), torch.randn(8))
        >>> data = Data(DataLoader(ds, batch_size=4, shuffle=True), DataLoader(ds, batch_size=4),
        ...             target_kind="regression")
        >>> data.n_out, data.decode(torch.tensor([[1.5]]))
        (1, [1.5])
    """

    #: Name of this data kind in plugin registries and export manifests.
    kind: ClassVar[str] = "tensor"
    #: dtype of the training inputs, read back from an exported file (``None``: ask the loader)
    input_dtype: str | None = None
    #: how many inputs the model takes, read back from an exported file (``None``: ask the
    #: training set)
    n_inputs: int | None = None
    #: the shape of one raw item of each input (``None`` for an input of any shape), read back
    #: from an exported file; ``None``: ask the training set (see :meth:`checks_input_shapes`),
    #: or items of any shape
    input_shapes: list[tuple[int, ...] | None] | None = None
    #: the spread (sample standard deviation, :func:`ember.target_scale`) of each regression
    #: target over the training set, one per output, set by the plugin that builds the data;
    #: with two or more, the default loss weighs each target's squared error by ``1 / std**2``
    #: so each counts equally (see :func:`ember.loss_for`). ``None``: unknown, plain MSE.
    #: Stored in an export (``"target_std"`` in :meth:`state`) and set back by ``ember.load``.
    target_std: list[float] | None = None
    _training_item_read: bool = False  # see _read_training_item
    _target_shape: tuple[int, ...] | None = None  # see target_shape
    _target_shape_read: bool = False  # see target_shape
    _threshold: float = 0.5  # see threshold
    _test_labelled: bool | None = None  # see test_labelled

    def __init__(
        self,
        train_dl: DataLoader | None,
        valid_dl: DataLoader | None,
        test_dl: DataLoader | None = None,
        *,
        target_kind: str,
        classes: Sequence[Any] | None = None,
        n_out: int | None = None,
        input_kind: str = "tensor",
    ) -> None:
        if target_kind not in TARGET_KINDS:
            raise DataError(f"target_kind must be one of {TARGET_KINDS}, got {target_kind!r}")
        self.train_dl, self.valid_dl, self.test_dl = train_dl, valid_dl, test_dl
        self.target_kind = target_kind
        self.classes = _plain_classes(classes) if classes is not None else None
        if n_out is None:
            if self.classes is not None:
                n_out = len(self.classes)
            elif target_kind == "regression":
                n_out = 1
            else:
                raise DataError(
                    f"give classes or n_out for a {target_kind} target (the model's output size)"
                )
        self.n_out = n_out
        self.input_kind = input_kind
        if self.classes is not None and target_kind == "single_label" and len(self.classes) < 2:
            raise DataError(
                f"a single-label target needs at least two classes, got {self.classes!r}"
            )

    # ----------------------------------------------------------------------- construction
    @classmethod
    def from_loaders(
        cls,
        train_dl: DataLoader,
        valid_dl: DataLoader | None,
        test_dl: DataLoader | None = None,
        *,
        target_kind: str | None = None,
        classes: Sequence[Any] | None = None,
        n_out: int | None = None,
    ) -> Data:
        """Wrap two plain torch loaders; the escape hatch for any custom data.

        When ``target_kind`` is not given it is read off the first training batch: integer
        targets of one dimension are single-label (classes ``0 … max`` over the training and
        validation labels, read from the datasets' ``tensors`` or ``targets`` where they have
        them, by iterating the loaders otherwise), float targets are regression; integer
        targets with a class per position (a mask, a sequence) are single-label too, except
        rows of zeros and ones, which could be multi-hot rows or two classes per position:
        a :class:`DataError` asks for ``target_kind``. Say
        ``target_kind="multi_label"`` for multi-hot float targets, and give ``target_kind`` and
        ``n_out`` for a target in parts (a dict or tuple, with a loss of your own).
        ``valid_dl`` may be ``None`` to train without validation (a final fit on every item):
        each epoch then trains only, and ``validate()`` asks for a loader.

        At inference (``predict``, an exported file) a raw item is the model's input itself:
        what the dataset or a ``collate_fn`` does to inputs is not replayed (subclass
        ``Data`` and override :meth:`encode` for that).

        Example:
            >>> import torch
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.randn(8, 2), torch.randn(8, 3))
            >>> Data.from_loaders(DataLoader(ds, batch_size=4), DataLoader(ds, batch_size=4)).n_out
            3
        """
        from torch.utils.data import DataLoader

        for name, dl in (("train_dl", train_dl), ("valid_dl", valid_dl)):
            if dl is None and name == "valid_dl":  # no validation: Data and Learner take it
                continue
            if not isinstance(dl, DataLoader):
                raise DataError(f"{name} must be a torch DataLoader, got {type(dl).__name__}")
            require_batches(dl, name)
        count_classes = classes is None and n_out is None
        reads_target = target_kind is None or (count_classes and target_kind != "single_label")
        train_batch = next(iter(train_dl)) if reads_target else None
        if train_batch is not None and valid_dl is not None:
            # the validation target is read as the training one is: (x, y, index) against
            # (x, y) had its indices counted as classes, (x,) of integers its inputs
            check_batch(train_batch, "train_dl")
            check_batch_like_training(_first_batch(valid_dl), "valid_dl", len(train_batch))
        if reads_target:
            target = _target_of(train_batch, "train_dl")
            if target_kind is None and not target.is_floating_point() and target.ndim == 2 \
                    and target.shape[1] > 1 and bool(((target == 0) | (target == 1)).all()):
                # multi-hot 0/1 rows were read as labels 0 and 1 (n_out 2), and the first
                # batch failed inside the loss on a batch-size mismatch; masks (a class per
                # pixel) and rows of labels past 1 are a class per position, as ever
                raise DataError(
                    f"the training targets are rows of {target.shape[1]} zeros and ones per "
                    f"item, so Ember cannot tell their kind; pass target_kind= to from_loaders: "
                    f"'multi_label' for multi-hot rows (one 0/1 per class; n_out is their "
                    f"width), 'single_label' for one class index per position (the model gives "
                    f"(batch, positions, classes)), or 'regression' for numbers (as floats)")
            if target_kind is None:
                target_kind = "regression" if target.is_floating_point() else "single_label"
            if count_classes and target_kind in ("regression", "multi_label"):
                n_out = 1 if target.ndim <= 1 else int(math.prod(target.shape[1:]))
        if count_classes and target_kind == "single_label":
            n_out = max(int(_labels(dl).max()) for dl in (train_dl, valid_dl)
                        if dl is not None) + 1
        return cls(train_dl, valid_dl, test_dl, target_kind=target_kind, classes=classes,
                   n_out=n_out)

    # ------------------------------------------------------------------------- loaders
    @property
    def loaders(self) -> list[DataLoader]:
        """The loaders present, in order train, valid, test.

        Example:
            >>> # len(data.loaders) is 2 without a test set, 3 with one
        """
        return [dl for dl in (self.train_dl, self.valid_dl, self.test_dl) if dl is not None]

    @property
    def test_labelled(self) -> bool:
        """Whether the test loader's batches carry targets. A test set without labels (a
        competition's, say) yields the inputs only: ``(x,)`` or a bare tensor where training
        yields ``(x, y)``, one element fewer than a training batch. Such a test set is read by
        ``learn.get_preds("test")`` (targets ``None``) but not scored by
        ``learn.validate("test")``, which needs labels. Read off the first batches unless set
        (a plugin that builds a test set without labels sets it to ``False``); ``True`` when
        there is no test set.

        Example:
            >>> import torch
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> x, y = torch.randn(8, 2), torch.randn(8)
            >>> loader = DataLoader(TensorDataset(x, y), batch_size=4)
            >>> Data(loader, loader, DataLoader(TensorDataset(x), batch_size=4),
            ...      target_kind="regression").test_labelled
            False
        """
        if self._test_labelled is None:
            self._test_labelled = self.test_dl is None or self.loader_labelled(self.test_dl)
        return self._test_labelled

    @test_labelled.setter
    def test_labelled(self, value: bool) -> None:
        self._test_labelled = value

    def loader_labelled(self, dl: DataLoader) -> bool:
        """Whether the loader ``dl`` yields targets, by its first batch: a bare tensor, or a
        tuple with one element fewer than a training item (the inputs only), is a loader
        without labels; anything else is read as ``(*inputs, target)``. The rule behind
        :attr:`test_labelled`, and how ``learn.get_preds(loader)`` reads a loader of the
        user's own. The batch is read with torch's generator left as it was, so asking does
        not change a seeded run's batch order.

        Example:
            >>> import torch
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> x, y = torch.randn(8, 2), torch.randn(8)
            >>> loader = DataLoader(TensorDataset(x, y), batch_size=4)
            >>> data = Data(loader, loader, target_kind="regression")
            >>> data.loader_labelled(loader), data.loader_labelled(DataLoader(x, batch_size=4))
            (True, False)
        """
        # the training item says how many inputs come before the target (read once per Data)
        self._read_training_item()
        with torch.random.fork_rng(devices=[]):
            batch = next(iter(dl), None)
        return not (isinstance(batch, Tensor) or (
            isinstance(batch, (tuple, list)) and self.n_inputs is not None
            and len(batch) == self.n_inputs))

    def loader(self, split: str) -> DataLoader:
        """The loader called ``split`` ("train", "valid" or "test"); a name that is not one of
        these, or a loader this Data does not have, is a :class:`DataError`.

        Example:
            >>> # data.loader("valid") is data.valid_dl
        """
        loaders = {"train": self.train_dl, "valid": self.valid_dl, "test": self.test_dl}
        if split not in loaders:
            raise DataError(f"no loader is called {split!r}; give 'train', 'valid' or 'test'")
        dl = loaders[split]
        if dl is None:
            hint = ("; build the data with its test items (test=, test_df=, test_pairs= or a "
                    "test/ folder of class folders: see the constructor's docstring), or "
                    "predict unlabelled items with learn.predict_batch(items)"
                    if split == "test" else
                    "; give a loader of labelled items instead (learn.validate(loader), "
                    "learn.get_preds(loader)), or build the data with a validation loader"
                    if split == "valid" else "")
            raise DataError(f"this Data has no {split!r} loader{hint}")
        return dl

    def one_batch(self, split: str = "train") -> tuple[Any, ...]:
        """Return the first batch of ``split`` ("train", "valid" or "test").

        Example:
            >>> # xb, yb = data.one_batch()
        """
        return tuple(next(iter(self.loader(split))))

    # --------------------------------------------------------------------- inference side
    def encode(self, items: Sequence[Any]) -> tuple[Tensor, ...]:
        """Turn raw items into the model's input tensors (the preprocessing replayed at inference).

        The base class stacks tensors or arrays. Domain plugins override it (decode an image,
        tokenise a text, process a table row).

        A model that takes several inputs (training items ``(input0, input1, ..., target)``)
        takes each raw item as a tuple with one entry per input, and gets one batch per input.
        Items of the (first) input take the training inputs' dtype when that is floating
        point (a numpy array is float64 by default; whole numbers given as ``[1, 2, 3]`` are
        integers). An item of another shape than the training items (7
        features where they had 8) is a :class:`DataError` naming it and both shapes, when
        the training items are known to share one shape (:meth:`checks_input_shapes`); a
        model may accept such an item and predict garbage, or fail inside.

        Example:
            >>> # Data.encode(data, [torch.zeros(3)])[0].shape == (1, 3)
            >>> # with two inputs: data.encode([(torch.zeros(3), torch.ones(2))]) -> 2 batches
        """
        self._read_training_item()
        n_inputs = self.n_inputs or 1
        shapes = self.input_shapes
        if shapes is None or len(shapes) != n_inputs:
            shapes = [None] * n_inputs
        if n_inputs == 1:
            return (self._as_input_dtype(_stack(items, "the items", shape=shapes[0])),)
        for position, item in enumerate(items):
            if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(
                    item) != n_inputs:
                raise DataError(
                    f"item {item_number(position)} is not {n_inputs} inputs: the model takes "
                    f"{n_inputs} inputs (its training items are (input0, ..., "
                    f"input{n_inputs - 1}, target)), so give each item as a tuple of "
                    f"{n_inputs}, one per input")
        batches = [_stack([item[index] for item in items], "the items", f"input {index} of ",
                          shape=shapes[index])
                   for index in range(n_inputs)]
        return (self._as_input_dtype(batches[0]), *batches[1:])

    def checks_input_shapes(self) -> bool:
        """Whether raw items must have the shape of the training items (read off the first
        one, per input, into :attr:`input_shapes` and an exported file's state), so that
        :meth:`encode` refuses an item of another shape by its position. True when both hold:

        - this data predicts with the base :meth:`encode` (a raw item is the model's input
          itself; a domain that preprocesses its items says itself what they look like), and
        - its training loader stacks items with torch's default collate in batches of more
          than one, so the training items share one shape: items of different shapes could
          not have been stacked. A ``collate_fn`` of the user's own (padding), a batch
          sampler (batches by length) or batches of one let items vary, and are not checked.

        A model that takes inputs of varying shape from such a loader (a fully convolutional
        network, pooling over a length) opts out in a subclass: override this method to
        return False. Files exported before Ember recorded the shape check nothing.

        Example:
            >>> import torch
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.randn(8, 3), torch.randn(8))
            >>> Data(DataLoader(ds, batch_size=4), None, target_kind="regression"
            ...      ).checks_input_shapes()
            True
            >>> Data(DataLoader(ds, batch_size=4, collate_fn=lambda items: items), None,
            ...      target_kind="regression").checks_input_shapes()
            False
        """
        from torch.utils.data import default_collate

        loader = self.train_dl
        return (type(self).encode is Data.encode and loader is not None
                and getattr(loader, "collate_fn", None) is default_collate
                and (getattr(loader, "batch_size", None) or 0) > 1)

    def _training_input_shapes(self) -> list[tuple[int, ...] | None] | None:
        """The shape of each input of the first training item (the dataset's first), or
        ``None`` where :meth:`checks_input_shapes` says items may vary or it cannot be read."""
        if not self.checks_input_shapes():
            return None
        try:
            first = self.train_dl.dataset[0]  # type: ignore[union-attr, index]
        except Exception:  # an IterableDataset, a dataset that fails: nothing to check
            return None
        if not isinstance(first, (tuple, list)) or len(first) < 2:
            return None
        shapes = [_shape_of(value) for value in first[:-1]]
        return None if all(shape is None for shape in shapes) else shapes

    def _as_input_dtype(self, batch: Tensor) -> Tensor:
        """``batch`` (the first input) in the floating dtype of the training inputs when those
        are floating point and it holds real numbers: a numpy item is float64 by default, and
        whole numbers (``[1, 2, 3]``, ``np.arange(3)``) or booleans become integers, which a
        model trained on float32 cannot multiply."""
        dtype = self.input_dtype
        if dtype is None or not dtype.startswith(("float", "bfloat")) or \
                batch.is_complex():
            return batch
        return batch.to(getattr(torch, dtype))

    def example_inputs(self, n: int = 4, split: str = "valid", index: int = 0
                       ) -> tuple[Tensor, ...]:
        """Real model inputs for tracing and exporting a model: the inputs (every element of a
        batch but the target) of the first ``n`` items of batch number ``index`` of ``split``
        (its last batch when it has fewer), on the CPU.

        Example:
            >>> # (images,) = data.example_inputs(4); model(*data.example_inputs())
        """
        loader = self.loader(split)
        import itertools

        batch = next(itertools.islice(loader, index, None), None)
        if batch is None and index > 0:  # fewer batches: the last one
            batch = next(iter(reversed(list(loader))), None)
        if batch is None:
            raise DataError(f"the {split} loader yields no batch")
        inputs = tuple(x[:n].cpu() for x in batch[:-1])
        if not inputs or not all(isinstance(x, Tensor) for x in inputs):
            raise DataError(f"the model inputs of a {self.kind} batch are not tensors; override "
                            f"{type(self).__name__}.example_inputs to say what the model takes")
        return inputs

    def input_specs(self, n_inputs: int) -> list[InputSpec]:
        """Names and varying dimensions of the model's ``n_inputs`` positional inputs, for
        exported graphs. The base class names them ``input0``, ``input1``… with only the batch
        dimension varying; domains override it (``tokens`` with a varying length for text,
        ``cats`` and ``conts`` for tables).

        Example:
            >>> # data.input_specs(1) -> [InputSpec(name='input0', dynamic={0: 'batch'})]
        """
        return [InputSpec(f"input{i}") for i in range(n_inputs)]

    @property
    def threshold(self) -> float:
        """The probability a class must pass to be in a multi-label prediction: the default of
        the ``threshold=`` prediction option, ``0.5`` unless set. Set it to change every
        prediction's default; an exported model keeps it (:meth:`state`). A value outside
        (0, 1) is a :class:`DataError`, and data whose target is not multi-label refuses it
        (see :meth:`why_no_threshold`).

        Example:
            >>> data = Data(None, None, target_kind="multi_label", classes=["a", "b"])
            >>> data.threshold = 0.3
            >>> data.decode(torch.tensor([[-0.5, -1.0]]))  # sigmoid: 0.38 and 0.27
            [['a']]
        """
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if (reason := self.why_no_threshold()) is not None:
            raise TypeError(f"data.threshold decides which classes a multi-label prediction "
                            f"holds, but {reason}")
        self._threshold = _checked_threshold(value)

    def why_no_threshold(self) -> str | None:
        """Why this data's predictions take no ``threshold=``, or ``None`` when they do: a
        multi-label target, whose prediction is every class whose probability passes it.

        Example:
            >>> Data(None, None, target_kind="multi_label", n_out=3).why_no_threshold()
            >>> Data(None, None, target_kind="single_label", n_out=3).why_no_threshold()[:44]
            'tensor data with a single_label target predi'
        """
        what = {"multi_label": None,
                "single_label": "predicts the most likely class (no threshold decides it); "
                                "probs=True gives every class's probability",
                "regression": "predicts numbers, not classes"}.get(
            self.target_kind, "predicts a sequence per item, not a set of classes")
        return None if what is None else f"{self.kind} data with a {self.target_kind} target {what}"

    @property
    def target_shape(self) -> tuple[int, ...] | None:
        """The shape of one item's target, without the batch dimension: ``()`` for one number
        (or one class index) per item, ``(k,)`` for ``k`` numbers; ``None`` when unknown (no
        training loader to read it from, or a target in parts). Read off the first training
        item once, stored in an export (``"target_shape"`` in :meth:`state`, for a regression
        target) and set back by ``ember.load``; a plugin that knows it may set it.
        :meth:`shaped_like_targets` reads it for a test set without labels.

        Example:
            >>> import torch
            >>> from torch.utils.data import DataLoader, TensorDataset
            >>> ds = TensorDataset(torch.randn(8, 2), torch.randn(8))
            >>> Data(DataLoader(ds, batch_size=4), None, target_kind="regression").target_shape
            ()
        """
        if not self._target_shape_read:
            self._target_shape_read = True
            if self._target_shape is None:
                self._target_shape = self._training_target_shape()
        return self._target_shape

    @target_shape.setter
    def target_shape(self, value: Sequence[int] | None) -> None:
        self._target_shape = None if value is None else tuple(int(size) for size in value)
        self._target_shape_read = True

    def _training_target_shape(self) -> tuple[int, ...] | None:
        """The shape of the target of the first training item (see :attr:`target_shape`)."""
        return self._target_shape_of(*self._first_train_read())

    @staticmethod
    def _target_shape_of(first: Any, batched: bool) -> tuple[int, ...] | None:
        """The shape of one item's target in ``first``, a training item or (``batched``) a
        whole batch, as :meth:`_first_train_read` gives it."""
        if not isinstance(first, (tuple, list)) or len(first) < 2:
            return None
        target = first[-1]
        if batched:
            return tuple(target.shape[1:]) if isinstance(target, Tensor) else None
        return _shape_of(target)

    def shaped_like_targets(self, outputs: Any, targets: Any = None) -> Any:
        """Model outputs over many items shaped like their targets: a regression model gives
        ``(N, 1)`` for one number per item, and comes back ``(N,)`` beside ``(N,)`` targets,
        so ``(predictions - targets)`` compares item with item instead of broadcasting to
        ``(N, N)``. Only one trailing dimension of size 1 is dropped, and only where the
        targets lack it: targets ``(N, k)`` keep outputs ``(N, k)``, targets ``(N, 1)`` keep
        ``(N, 1)``. The shape is that of ``targets`` when given, else :attr:`target_shape`
        (a test set without labels gets the shape a labelled one would). Outputs of other
        target kinds, and outputs in parts, come back as they are. ``learn.get_preds()``
        calls it.

        Example:
            >>> import torch
            >>> data = Data(None, None, target_kind="regression")
            >>> data.shaped_like_targets(torch.zeros(5, 1), torch.zeros(5)).shape
            torch.Size([5])
            >>> data.shaped_like_targets(torch.zeros(5, 2, 1), torch.zeros(5, 2)).shape
            torch.Size([5, 2])
            >>> data.shaped_like_targets(torch.zeros(5, 1), torch.zeros(5, 1)).shape
            torch.Size([5, 1])
        """
        if self.target_kind != "regression" or not isinstance(outputs, Tensor):
            return outputs
        shape = tuple(targets.shape[1:]) if isinstance(targets, Tensor) else self.target_shape
        if shape is not None and tuple(outputs.shape[1:]) == (*shape, 1):
            return outputs.squeeze(-1)
        return outputs

    def activation(self, outputs: Tensor) -> Tensor:
        """Map raw model outputs to probabilities or values for the target kind.

        Example:
            >>> # data.activation(logits) gives softmax probabilities for a single-label target
            >>> # (and per position for a sequence target), sigmoid ones for a multi-label one
        """
        if self.target_kind in ("single_label", "sequence"):  # logits over the last dimension
            return outputs.softmax(dim=-1)
        if self.target_kind == "multi_label":
            return outputs.sigmoid()
        return outputs

    def decode(self, outputs: Tensor, threshold: float | None = None) -> list[Any]:
        """Turn a batch of raw model outputs into user-facing values, one per item.

        Single-label → a class (name when classes are known), multi-label → the list of classes
        whose probability passes ``threshold`` (``None``: :attr:`threshold`, 0.5 unless set),
        regression → a float (or a list of floats).

        Example:
            >>> # data.decode(logits) -> ['cat', 'dog']
        """
        _require_tensor(outputs, "the model gives", "outputs")
        outputs = outputs.detach().float().cpu()
        kind = self.target_kind
        if kind == "single_label":
            indices = outputs.argmax(dim=-1).tolist()
            return [self.classes[i] if self.classes is not None else i for i in indices]
        if kind == "multi_label":
            chosen = outputs.sigmoid() > (self.threshold if threshold is None else threshold)
            names = self.classes if self.classes is not None else list(range(outputs.shape[-1]))
            return [[names[i] for i in row.nonzero().flatten().tolist()] for row in chosen]
        if kind == "regression":
            return _regression_values(outputs)
        return outputs.tolist()

    def predict_batch(self, model: torch.nn.Module, items: Sequence[Any], device: Any = None,
                      bs: int = 256, *, probs: bool = False, threshold: float | None = None,
                      **options: Any) -> list[Any]:
        """Decoded predictions of ``model`` for raw ``items``: encode, forward in batches of
        ``bs``, decode. With ``probs=True`` each prediction is a :class:`Prediction` (the value
        and every class's probability); data whose predictions are not classes refuses it
        (see :meth:`why_no_probabilities`). ``threshold`` is the probability a class must pass
        to be in a multi-label prediction (``None``: :attr:`threshold`, 0.5 unless set); other
        data refuses it (see :meth:`why_no_threshold`). No items give ``[]``: a batch of
        nothing has nothing to predict (options are still checked). Plugins override it for
        generation (text, beam search); an override takes its options as keyword-only
        parameters, ``probs`` (and ``threshold``, passed on to :meth:`predict_encoded`, where it
        means something) among them, refuses the rest with :meth:`check_options`, and answers
        ``[]`` for no items too (:func:`ember.testing.check_plugin` checks it).

        Example:
            >>> import torch
            >>> data = Data(None, None, target_kind="single_label", classes=["cat", "dog"])
            >>> model = torch.nn.Linear(2, 2)
            >>> [label in ("cat", "dog") for label in data.predict_batch(model, [[0.5, 1.0]])]
            [True]
            >>> prediction = data.predict_batch(model, [[0.5, 1.0]], probs=True)[0]
            >>> list(prediction.probabilities), round(sum(prediction.probabilities.values()), 5)
            (['cat', 'dog'], 1.0)
            >>> tags = Data(None, None, target_kind="multi_label", classes=["red", "round"])
            >>> tags.predict_batch(model, [[0.5, 1.0]], threshold=0.01)  # sigmoid > 0.01
            [['red', 'round']]
            >>> data.predict_batch(model, [])
            []
        """
        self.check_options(options, probs, threshold)
        bs = check_batch_size(bs)
        items = list(items)

        def batches() -> Iterator[tuple[Tensor, ...]]:
            for start in range(0, len(items), bs):
                with numbering_items_from(start):  # a refused item is named by its position
                    batch = self.encode(items[start:start + bs])
                yield batch

        return self.predict_encoded(model, batches(), device, probs=probs, threshold=threshold)

    def predict_one(self, model: torch.nn.Module, item: Any, device: Any = None,
                    **options: Any) -> Any:
        """The decoded prediction for one raw ``item`` (what ``Learner.predict`` and
        ``Predictor.predict`` answer), with the options of :meth:`predict_batch`. An item that
        gives more than one prediction (a table of several rows) is a :class:`DataError`
        pointing to ``predict_batch``, not the first row's answer.

        Example:
            >>> import torch
            >>> data = Data(None, None, target_kind="single_label", classes=["cat", "dog"])
            >>> data.predict_one(torch.nn.Linear(2, 2), [0.5, 1.0]) in ("cat", "dog")
            True
        """
        predictions = self.predict_batch(model, [item], device=device, **options)
        if len(predictions) != 1:
            raise DataError(
                f"predict takes one item, but this {type(item).__name__} gave "
                f"{len(predictions)} predictions (a table of {len(predictions)} rows?); use "
                f"predict_batch([item]) for one prediction per row")
        return predictions[0]

    def predict_encoded(self, model: torch.nn.Module, batches: Iterable[tuple[Tensor, ...]],
                        device: Any = None, *, probs: bool = False,
                        threshold: float | None = None) -> list[Any]:
        """Decoded predictions of ``model`` for batches of encoded inputs (what :meth:`encode`
        returns, one tuple of input tensors per batch): the one loop that runs a model for
        :meth:`predict_batch`, in eval mode and without gradients. With ``probs=True`` each
        prediction is a :class:`Prediction`; ``threshold`` goes to :meth:`decode` (check the
        request first with :meth:`check_options`). A batch the model cannot take is a
        :class:`DataError` that names its items; a batch that is not a tuple of tensors, or a
        :meth:`decode` that gives another number of values than the batch has items, is a
        :class:`~ember.PluginError` naming the data class (its bug, not the items').

        Example:
            >>> import torch
            >>> data = Data(None, None, target_kind="single_label", classes=["cat", "dog"])
            >>> batches = [(torch.tensor([[0.5, 1.0], [1.0, 0.0]]),)]
            >>> len(data.predict_encoded(torch.nn.Linear(2, 2), batches))
            2
        """
        from ember.model import evaluating

        results: list[Any] = []
        with evaluating(model) as model_device:
            device = device or model_device
            start = 0
            for inputs in batches:
                _check_encoded(self, inputs)
                try:
                    outputs = model(*(x.to(device) for x in inputs))
                except torch.OutOfMemoryError:
                    raise
                except (RuntimeError, ValueError, IndexError) as error:
                    # items the model cannot take (a vector of the wrong length): the caller's
                    # mistake, said as such (ember serve answers 422, not 500)
                    shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
                    raise DataError(
                        f"the model cannot take items {start}-{start + len(inputs[0]) - 1} "
                        f"(inputs of shape {shapes}, the first dimension counting items): "
                        f"{str(error).splitlines()[0]}. Give items shaped like the training "
                        f"items") from error
                decoded = (self._with_probabilities(outputs, threshold) if probs
                           else self.decode(outputs, threshold))
                if len(decoded) != len(inputs[0]):  # a plugin's decode, not the user's items
                    raise PluginError(
                        f"{type(self).__name__}.decode gave {len(decoded)} value(s) for a batch "
                        f"of {len(inputs[0])} items; give one per item (the model's outputs "
                        f"have the items along their first dimension)")
                results.extend(decoded)
                start += len(inputs[0])
        return results

    def _with_probabilities(self, outputs: Tensor, threshold: float | None = None
                            ) -> list[Prediction]:
        """One :class:`Prediction` per item of a batch of raw model outputs: the decoded value
        (at ``threshold``) and :meth:`activation`'s probability of each class."""
        values = self.decode(outputs, threshold)
        probabilities = self.activation(outputs.detach().float().cpu())
        names = self.classes if self.classes is not None else range(probabilities.shape[-1])
        return [Prediction(value, dict(zip(names, row))) for value, row in
                zip(values, probabilities.tolist())]

    def why_no_probabilities(self) -> str | None:
        """Why this data's predictions carry no class probabilities, saying what they are
        instead, or ``None`` when ``predict(item, probs=True)`` works: a single-label or
        multi-label target with one probability per class for each item. Domains whose
        predictions are not one set of classes per item (segmentation masks, generated text)
        override it.

        Example:
            >>> Data(None, None, target_kind="single_label", n_out=3).why_no_probabilities()
            >>> Data(None, None, target_kind="regression").why_no_probabilities()[:40]
            'tensor data with a regression target pre'
        """
        if self.target_kind in ("single_label", "multi_label"):
            return None
        if self.target_kind == "regression":
            return (f"{self.kind} data with a regression target predicts numbers (a float, or a "
                    f"list of floats, per item), not classes")
        return (f"{self.kind} data with a {self.target_kind} target predicts a sequence per "
                f"item, not one set of classes; learn.get_preds() gives the probabilities at "
                f"each position")

    def check_options(self, options: dict[str, Any], probs: bool = False,
                      threshold: float | None = None) -> None:
        """Refuse what :meth:`predict_batch` cannot do: ``probs=True`` for data whose
        predictions carry no class probabilities (saying what they give instead), a
        ``threshold`` for data that is not multi-label (:meth:`why_no_threshold`; also when it
        is left in ``options``), and any option left in ``options`` (the ones
        ``predict_batch`` did not take), naming them and the ones it takes
        (:meth:`prediction_options`). These are a ``TypeError``; a ``threshold`` outside
        (0, 1) is a :class:`DataError`.

        Example:
            >>> data = Data(None, None, target_kind="regression")
            >>> data.check_options({})
            >>> data.check_options({"beam": 5})
            Traceback (most recent call last):
            ...
            TypeError: unexpected prediction options ['beam'] for tensor data
            >>> data.check_options({}, threshold=0.3)
            Traceback (most recent call last):
            ...
            TypeError: threshold= decides which classes a multi-label prediction holds, ...
        """
        if probs and (reason := self.why_no_probabilities()) is not None:
            raise TypeError(f"probs=True gives class probabilities, but {reason}")
        if threshold is not None or "threshold" in options:
            if (reason := self.why_no_threshold()) is not None:
                raise TypeError(f"threshold= decides which classes a multi-label prediction "
                                f"holds, but {reason}")
            if threshold is not None:
                _checked_threshold(threshold)
        if options:
            accepted = ", ".join(f"{name}=" for name in self.prediction_options())
            hint = f"; use {accepted}" if accepted else ""
            raise TypeError(f"unexpected prediction options {sorted(options)} for {self.kind} "
                            f"data{hint}")

    def prediction_options(self) -> dict[str, Any]:
        """The options :meth:`predict_batch` takes, name → default: its keyword-only
        parameters, ``probs`` only where predictions carry class probabilities, ``threshold``
        only for a multi-label target (its default :attr:`threshold`). ``ember serve``'s
        ``/metadata`` lists them.

        Example:
            >>> Data(None, None, target_kind="single_label", n_out=3).prediction_options()
            {'probs': False}
            >>> Data(None, None, target_kind="multi_label", n_out=3).prediction_options()
            {'probs': False, 'threshold': 0.5}
            >>> Data(None, None, target_kind="regression").prediction_options()
            {}
        """
        import inspect

        parameters = inspect.signature(self.predict_batch).parameters.values()
        options = {parameter.name: parameter.default for parameter in parameters
                   if parameter.kind is parameter.KEYWORD_ONLY}
        if self.why_no_probabilities() is not None:
            options.pop("probs", None)
        if "threshold" in options:
            if self.why_no_threshold() is not None:
                del options["threshold"]
            elif options["threshold"] is None:
                options["threshold"] = self.threshold
        return options

    def option_limits(self) -> dict[str, int]:
        """The largest value a client of ``ember serve`` may ask for each costly prediction
        option, name → limit: an option whose value sets how much work one request buys
        (decoding steps, beam width, generated words). The server refuses a value over its
        limit with a 422 naming it, so one request cannot hold the worker that every other
        client waits on; the operator may move a limit (``--option-limit NAME=VALUE``).
        Direct calls (``learn.predict``, ``predictor.predict_batch``) are never limited.
        The base class has no costly options and returns ``{}``; domains that generate
        (text: seq2seq ``beam`` and ``max_len``, a language model's ``n_words``) override it.

        Example:
            >>> Data(None, None, target_kind="single_label", n_out=3).option_limits()
            {}
        """
        return {}

    def feature_importance(self, learn: Any, **options: Any) -> Any:
        """Importance of each input for ``learn``'s validation metric. Domains that can say
        (tables: permutation importance per column) override it.

        Example:
            >>> # learn.feature_importance() calls data.feature_importance(learn)
        """
        raise DataError(f"feature importance is not defined for {self.kind} data; the tabular "
                        f"plugin provides it for tables")

    def from_json(self, value: Any, position: int = 0) -> Any:
        """Turn one JSON value of an ``ember serve`` request into a raw item for
        :meth:`encode`. The base class passes it through; domains whose items are not JSON
        (images: base64 strings) override it. ``position`` names the item in errors.

        Example:
            >>> # data.from_json([0.5, 1.0]) -> [0.5, 1.0]
        """
        self._read_training_item()
        dtype = self.input_dtype
        if isinstance(value, list) and dtype is not None and dtype.startswith("float"):
            # JSON writes 1.0 as 1 (JavaScript always does): whole numbers must not turn a
            # float model's batch into integers it cannot multiply
            try:
                return torch.tensor(value, dtype=getattr(torch, dtype))
            except (TypeError, ValueError, RuntimeError, OverflowError):
                return value  # ragged, not numbers or too large: encode says what is wrong
        return value

    def from_upload(self, content: bytes, name: str) -> Any:
        """Turn one file uploaded to ``ember serve``'s ``/predict/files`` into a raw item for
        :meth:`encode`. ``name`` names the upload in errors (``"file 'cat.png' (files[1])"``):
        a domain that reads files checks each one here, so a bad upload among several is
        refused by its name and position, not by its place in a batch. The base class passes
        the bytes through; domains override it (images: decode the file; text: decode UTF-8
        and refuse an empty file).

        Example:
            >>> data = Data(None, None, target_kind="regression")
            >>> data.from_upload(b"raw", "file 'a.bin' (files[0])")
            b'raw'
        """
        return content

    def _first_train_item(self) -> Any:
        """The first training item as the model sees it, or ``None`` when there is none to
        read (no loader, an empty dataset): the dataset's first item, or the first training
        batch where a ``collate_fn`` of the user's own makes the batches (it may regroup the
        item: ``(x, label, value)`` into ``(x, {"label": ..., "value": ...})``) or the
        dataset cannot be indexed (an ``IterableDataset``). Either gives the inputs first and
        the target last, so the number of inputs and their dtype read the same off both."""
        return self._first_train_read()[0]

    def _first_train_read(self) -> tuple[Any, bool]:
        """:meth:`_first_train_item`, and whether it is a whole batch (True) or the dataset's
        first item (False)."""
        from torch.utils.data import default_collate

        loader = self.train_dl
        dataset = getattr(loader, "dataset", None)
        try:
            if getattr(loader, "collate_fn", default_collate) is default_collate:
                return dataset[0], False  # type: ignore[index]
        except Exception:
            pass
        try:
            # a shuffling sampler draws its seed from torch's global generator: read the batch
            # with that generator as it was, so a seeded run's batches do not change
            with torch.random.fork_rng(devices=[]):
                return next(iter(loader)), True  # type: ignore[call-overload]
        except Exception:
            return None, False

    def _read_training_item(self) -> None:
        """Fill :attr:`n_inputs`, :attr:`input_dtype` and :attr:`input_shapes` from the first
        training item where they are unknown, once per ``Data``: reading it may decode an
        image or read a whole batch (a ``collate_fn`` of the user's own), and an item that
        tells neither (no loaders, inputs that are not tensors) would otherwise be read on
        every prediction."""
        if self._training_item_read:
            return
        self._training_item_read = True
        if self.input_shapes is None:
            self.input_shapes = self._training_input_shapes()
        if self.n_inputs is None or self.input_dtype is None:
            first = self._first_train_item()
            if self.n_inputs is None:
                self.n_inputs = self._n_inputs_of(first)
            if self.input_dtype is None:
                self.input_dtype = self._input_dtype_of(first)

    @staticmethod
    def _n_inputs_of(first: Any) -> int | None:
        """How many inputs the training item ``first`` holds before its target, or ``None``
        when unknown (no item, or items that are not tuples)."""
        return len(first) - 1 if isinstance(first, (tuple, list)) and len(first) > 1 else None

    @staticmethod
    def _input_dtype_of(first: Any) -> str | None:
        """The dtype of the input of the training item ``first`` (``'float32'``), or ``None``
        when unknown."""
        first = first[0] if isinstance(first, (tuple, list)) and first else first
        return str(first.dtype).removeprefix("torch.") if isinstance(first, Tensor) else None

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 9) -> Any:
        """Show ``n`` items of ``batch`` with target and prediction. The base class prints a
        table and returns its rows; domain plugins draw figures.

        Example:
            >>> # learn.show_results() -> [(target, prediction), ...]
        """
        targets = self.decode_targets(batch[-1])
        rows = list(zip(targets, predictions))[:n]
        for target, prediction in rows:
            print(f"target: {target!s:>20}   prediction: {prediction!s:>20}")
        return rows

    def decode_targets(self, targets: Tensor) -> list[Any]:
        """Targets of a batch in the same form :meth:`decode` gives predictions.

        Example:
            >>> # data.decode_targets(yb) -> ['cat', 'dog']
        """
        _require_tensor(targets, "the batches give", "targets")
        targets = targets.detach().cpu()
        if self.target_kind == "single_label":
            return [self.classes[i] if self.classes is not None else i for i in targets.tolist()]
        if self.target_kind == "multi_label":
            names = self.classes if self.classes is not None else list(range(targets.shape[-1]))
            return [[names[i] for i in row.nonzero().flatten().tolist()] for row in targets]
        if self.target_kind == "regression":
            return _regression_values(targets)
        return targets.tolist()

    def input_schema(self) -> dict[str, Any]:
        """What one raw item looks like, for ``ember serve``'s ``/metadata`` (a JSON schema).

        Example:
            >>> # data.input_schema() -> {'type': 'array', 'items': {'type': 'number'}}
        """
        return {"type": "array", "items": {"type": "number"},
                "description": f"one {self.input_kind} item as nested lists of numbers"}

    # -------------------------------------------------------------------------- export
    def state(self) -> dict[str, Any]:
        """JSON-able preprocessing state to store in an exported model's manifest.

        Subclasses extend it with what :meth:`encode` needs (vocab, statistics, category maps).
        A multi-label target's :attr:`threshold` is kept under ``"threshold"``, the shape
        of each input of a training item under ``"input_shapes"`` where raw items must have
        it (:meth:`checks_input_shapes`), and a regression target's :attr:`target_shape`
        under ``"target_shape"``; ``ember.load`` sets them back on the data that
        ``from_state`` rebuilds, so overrides need not read them.

        Example:
            >>> # json.dumps(data.state()) always works
        """
        first, batched = self._first_train_read()  # read once (an image decode for vision)
        if self.target_kind == "regression" and not self._target_shape_read:
            self.target_shape = self._target_shape_of(first, batched)  # from the same read
        state = {
            "target_kind": self.target_kind,
            "classes": self.classes,
            "n_out": self.n_out,
            "input_kind": self.input_kind,
            "input_dtype": self._input_dtype_of(first),
            "n_inputs": self._n_inputs_of(first),
        }
        shapes = self._training_input_shapes()
        if shapes is not None:  # older Ember ignores the key; files without it check nothing
            state["input_shapes"] = [None if shape is None else list(shape) for shape in shapes]
        if self.target_kind == "multi_label":
            state["threshold"] = self.threshold
        if self.target_kind == "regression" and self.target_std is not None:
            state["target_std"] = [float(std) for std in self.target_std]
        if self.target_kind == "regression" and self.target_shape is not None:
            state["target_shape"] = list(self.target_shape)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Data:
        """Rebuild an inference-only ``Data`` (no loaders) from :meth:`state`.

        Example:
            >>> # Data.from_state(data.state()).decode(outputs) == data.decode(outputs)
        """
        data = cls(None, None, target_kind=state["target_kind"], classes=state.get("classes"),
                   n_out=state.get("n_out"), input_kind=state.get("input_kind", "tensor"))
        data.input_dtype = state.get("input_dtype")
        data.n_inputs = state.get("n_inputs")
        data.input_shapes = _shapes_from_state(state)
        if state.get("threshold") is not None:
            data.threshold = state["threshold"]
        if state.get("target_std") is not None:
            data.target_std = list(state["target_std"])
        data.target_shape = _shape_from_state(state)
        return data

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{name}={len(dl.dataset)}"  # type: ignore[arg-type]
            for name, dl in (("train", self.train_dl), ("valid", self.valid_dl),
                             ("test", self.test_dl))
            if dl is not None and hasattr(dl.dataset, "__len__")
        )
        return f"{type(self).__name__}({self.target_kind}, n_out={self.n_out}, {sizes})"
