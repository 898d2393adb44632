"""Image data: :class:`ImageData`, built from arrays, folders or data frames.

Every image of one ``ImageData`` has one mode (``"L"`` or ``"RGB"``) and one size; batches are
``(images, targets)`` with images normalised float32 (N, C, H, W). The normalisation statistics
are computed on the training split only and stored in :meth:`ImageData.state`, so an exported
model replays exactly the validation preprocessing on raw items (arrays, tensors, PIL images,
file paths).

Example:
    >>> import numpy as np
    >>> from ember_vision import ImageData
    >>> images = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
    >>> data = ImageData.from_arrays(images, [0, 1] * 10, classes=["a", "b"], bs=4)
    >>> data.one_batch()[0].shape
    torch.Size([4, 1, 8, 8])
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

import ember
from ember.utils import check_whole, is_missing, is_whole, new_figure, plain, warn
from ember_vision.transforms import (
    IMAGE_SUFFIXES,
    MODES,
    _fix_for_corrupt,
    convert_mode,
    default_augmentation,
    denormalize,
    load_image,
    normalize,
    read_image_mode,
    resize_image,
    to_image_tensor,
)

__all__ = [
    "ArrayImageDataset",
    "FileImageDataset",
    "ImageCollate",
    "ImageData",
    "encode_targets",
    "image_headers",
    "scan_image_files",
]


# ----------------------------------------------------------------------------- targets
def encode_targets(labels: Any, classes: Sequence[Any] | None = None,
                   target_kind: str | None = None, label_delim: str | None = None
                   ) -> tuple[Tensor, str, list[Any] | None]:
    """Turn raw labels into a target tensor, the target kind and the class list.

    - lists/tuples/sets of labels, or strings split by ``label_delim`` → ``multi_label``
      (multi-hot float targets, classes sorted; spaces around each part are no part of its
      class, :func:`ember.split_label`); with ``label_delim`` a blank label (``""``, or the
      NaN/None a data frame holds for an empty cell) is an item of no class;
    - non-integral floats → ``regression`` (a 2-D float array gives several outputs);
    - integers or strings → ``single_label`` (classes sorted, or the given ``classes``; integer
      labels index into given ``classes``).

    Example:
        >>> targets, kind, classes = encode_targets(["cat", "dog", "cat"])
        >>> targets.tolist(), kind, classes
        ([0, 1, 0], 'single_label', ['cat', 'dog'])
    """
    if hasattr(labels, "to_numpy"):
        labels = labels.to_numpy()
    if isinstance(labels, Tensor):
        labels = labels.cpu().numpy()
    values = list(labels) if not isinstance(labels, np.ndarray) or labels.ndim == 1 else labels
    if isinstance(values, np.ndarray):  # 2-D: multi-hot or several regression outputs
        array = values.astype(np.float32)
        if not np.isfinite(array).all():
            row = int(np.argwhere(~np.isfinite(array))[0][0])
            raise ember.DataError(f"label of item {row} is missing or not finite; fix or drop it")
        if target_kind is None:
            is_binary = np.isin(array, (0.0, 1.0)).all()
            target_kind = "multi_label" if is_binary and classes is not None else "regression"
        kind_classes = list(classes) if classes is not None else None
        if target_kind == "multi_label" and kind_classes is None:
            kind_classes = list(range(array.shape[1]))
        return torch.from_numpy(array), target_kind, kind_classes
    for index, value in enumerate(values):
        if is_missing(value) and label_delim is None:
            raise ember.DataError(
                f"label of item {index} is missing; drop the item or give it a label")
    if label_delim is not None:
        # a blank cell of delimited labels (NaN once pandas reads the CSV) is no class, as ""
        values = [[] if is_missing(v) else ember.split_label(v, label_delim)
                  if isinstance(v, str) else v for v in values]
        values = [[part for part in v if part != ""] if isinstance(v, list) else v
                  for v in values]
    is_multi = [isinstance(v, (list, tuple, set, frozenset, np.ndarray)) for v in values]
    if target_kind == "multi_label" or (target_kind is None and any(is_multi)):
        if not all(is_multi):
            index = is_multi.index(False)
            raise ember.DataError(
                f"label of item {index} is {values[index]!r} while others are lists of labels; "
                f"give every item a list (empty for none), or pass label_delim=")
        names = list(classes) if classes is not None else sorted(
            {label for value in values for label in value}, key=str)
        position = {name: i for i, name in enumerate(names)}
        targets = torch.zeros(len(values), len(names))
        for row, value in enumerate(values):
            for label in value:
                if label not in position:
                    raise ember.DataError(
                        f"label {label!r} of item {row} is not among the classes {names}")
                targets[row, position[label]] = 1.0
        return targets, "multi_label", names
    is_float = [isinstance(v, (float, np.floating)) and not float(v).is_integer() for v in values]
    if target_kind == "regression" or (target_kind is None and any(is_float) and classes is None):
        try:
            array = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            bad = next(i for i, v in enumerate(values) if not isinstance(v, numbers.Number))
            raise ember.DataError(
                f"label of item {bad} is {values[bad]!r}, not a number, in a regression "
                f"target; fix the label or build a classification target") from None
        if not np.isfinite(array).all():
            bad = int(np.argwhere(~np.isfinite(array))[0][0])
            raise ember.DataError(f"label of item {bad} is not finite; fix or drop it")
        return torch.from_numpy(array), "regression", None
    if target_kind not in (None, "single_label"):
        raise ember.DataError(f"images support target kinds single_label, multi_label and "
                              f"regression, not {target_kind!r}")
    kinds = {type(plain(v)) for v in values}
    numeric = all(issubclass(k, numbers.Number) for k in kinds)
    if numeric and any(is_float):  # int() would silently turn 0.7 into class 0
        row = is_float.index(True)
        raise ember.DataError(
            f"label {values[row]!r} of item {row} is not a whole number, so it cannot name a "
            f"class; give integer class labels, or target_kind='regression' for values")
    if classes is not None and numeric:
        names = list(classes)
        indices = [int(v) for v in values]
        for row, index in enumerate(indices):
            if not 0 <= index < len(names):
                raise ember.DataError(
                    f"label {index} of item {row} is out of range for {len(names)} classes; "
                    f"integer labels index into classes= (0 … {len(names) - 1})")
        return torch.tensor(indices, dtype=torch.long), "single_label", names
    if not numeric and len(kinds) > 1:
        raise ember.DataError(
            f"labels mix types {sorted(k.__name__ for k in kinds)}; give labels of one type")
    labels = [int(v) if numeric else plain(v) for v in values]
    names = list(classes) if classes is not None else sorted(set(labels))
    position = {name: i for i, name in enumerate(names)}
    for row, value in enumerate(labels):
        if value not in position:
            raise ember.DataError(f"label {value!r} of item {row} is not among the classes")
    return torch.tensor([position[v] for v in labels], dtype=torch.long), "single_label", names


# ----------------------------------------------------------------------------- datasets
class ArrayImageDataset(Dataset):
    """Images held in memory as one ``uint8`` tensor (N, C, H, W) with their targets; images
    without targets (``targets=None``: a test set without labels) give ``(image,)``.

    Example:
        >>> import torch
        >>> ds = ArrayImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.arange(3))
        >>> ds[2][1].item(), len(ds)
        (2, 3)
        >>> len(ArrayImageDataset(ds.images, None)[2])
        1
    """

    def __init__(self, images: Tensor, targets: Tensor | None) -> None:
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        if self.targets is None:
            return (self.images[index],)
        return self.images[index], self.targets[index]


class FileImageDataset(Dataset):
    """Images decoded from files on access (in loader workers), converted to ``mode`` and resized
    to ``size`` deterministically; an ``item_transform`` (training only, on ``uint8`` CHW
    tensors that keep their size) may be added. Files without targets (``targets=None``: a
    test set without labels) give ``(image,)``.

    Example:
        >>> # ds = FileImageDataset(["a.png"], torch.tensor([0]), "RGB", (64, 64))
        >>> # FileImageDataset(["test/1.png"], None, "RGB", (64, 64))[0] -> (image,)
    """

    def __init__(self, paths: Sequence[str | Path], targets: Tensor | None, mode: str,
                 size: Sequence[int] | None,
                 item_transform: Callable[[Tensor], Tensor] | None = None) -> None:
        self.paths, self.targets, self.mode = [str(p) for p in paths], targets, mode
        self.size = tuple(size) if size is not None else None
        self.item_transform = item_transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        image = resize_image(load_image(self.paths[index], self.mode), self.size)
        if self.item_transform is not None:
            image = self.item_transform(image)
        if self.targets is None:
            return (image,)
        return image, self.targets[index]


class ImageCollate:
    """Collate ``(uint8 image, target)`` pairs into a normalised float batch; ``(image,)``
    items (a test set without labels) into ``(images,)``.

    Example:
        >>> import torch
        >>> collate = ImageCollate([0.5], [0.5])
        >>> xb, yb = collate([(torch.zeros(1, 2, 2, dtype=torch.uint8), torch.tensor(1))] * 2)
        >>> xb.shape, yb.tolist()
        (torch.Size([2, 1, 2, 2]), [1, 1])
        >>> len(collate([(torch.zeros(1, 2, 2, dtype=torch.uint8),)] * 2))
        1
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, samples: Sequence[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        images = normalize(torch.stack([sample[0] for sample in samples]), self.mean, self.std)
        if len(samples[0]) == 1:  # no targets: a test set without labels
            return (images,)
        return images, torch.stack([sample[1] for sample in samples])


# ----------------------------------------------------------------------------- helpers
def _images_to_tensor(images: Any, name: str = "images") -> Tensor:
    """(N, H, W) / (N, H, W, C) arrays or tensors (or NxCxHxW tensors) → uint8 (N, C, H, W)."""
    if isinstance(images, (list, tuple)):
        items = [to_image_tensor(item, f"{name}[{i}]") for i, item in enumerate(images)]
        for index, item in enumerate(items):
            if item.shape != items[0].shape:  # arrays take no size=: that is for files
                raise ember.DataError(
                    f"{name}[{index}] has shape {tuple(item.shape)} (channels, height, width) "
                    f"but {name}[0] {tuple(items[0].shape)}; images in memory need one mode "
                    f"and size: resize and convert them first, or save them as files for "
                    f"ImageData.from_files(paths, labels, size=(height, width), mode='RGB')")
        return torch.stack(items)
    is_tensor = isinstance(images, Tensor)
    tensor = images.detach().cpu() if is_tensor else torch.from_numpy(np.asarray(images))
    if tensor.ndim == 3:
        tensor = tensor[:, None]
    elif tensor.ndim == 4:
        channels_first = is_tensor and tensor.shape[1] in (1, 3) and tensor.shape[-1] not in (
            1, 3, 4)
        if not channels_first:
            tensor = tensor.permute(0, 3, 1, 2)
    else:
        raise ember.DataError(f"{name} must have shape (N, H, W) or (N, H, W, C), got "
                              f"{tuple(tensor.shape)}")
    if tensor.shape[1] not in (1, 3, 4):
        raise ember.DataError(f"{name} have {tensor.shape[1]} channels; give 1 (grey), 3 (RGB) "
                              f"or 4 (RGBA) channels, last: (N, H, W, C)")
    if tensor.shape[1] == 4:
        tensor = tensor[:, :3]
    if tensor.dtype != torch.uint8:
        bad = ~torch.isfinite(tensor.float()).flatten(1).all(1)
        if bad.any():
            raise ember.DataError(f"{name}[{int(bad.nonzero()[0])}] holds NaN or inf pixels")
        from ember_vision.transforms import _as_uint8  # same rule as for single items

        tensor = _as_uint8(tensor, name)
    return tensor.contiguous()


def _channel_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of a uint8 (N, C, H, W) tensor, in [0, 1] units."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros(images.shape[1], dtype=torch.float64)
    count = 0
    for start in range(0, len(images), 1024):
        chunk = images[start:start + 1024].double() / 255
        total += chunk.sum(dim=(0, 2, 3))
        squares += (chunk**2).sum(dim=(0, 2, 3))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / count
    std = (squares / count - mean**2).clamp_min(0).sqrt().clamp_min(1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def _is_image(part: Any, shape: tuple[int, ...] | None = None) -> bool:
    """One image of ``test=``: a path, encoded file bytes, a PIL image, or (given ``shape``,
    the shape of one training image as the caller gave it) an array or tensor of that shape."""
    if isinstance(part, (str, Path, bytes, bytearray)) or type(part).__module__.startswith(
            "PIL."):
        return True
    return shape is not None and hasattr(part, "shape") and tuple(part.shape) == shape


def _no_path(value: Any) -> bool:
    """Whether ``value`` is a missing path: None, NaN, pandas' missing markers, a blank
    string."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def _file_paths(values: Sequence[Any], what: str = "paths") -> list[Path]:
    """``values`` as paths; a missing one (None, NaN, a blank string) or one that is no path
    is an :class:`ember.DataError` naming its position in ``what``."""
    paths = []
    for index, value in enumerate(values):
        if _no_path(value):
            raise ember.DataError(f"{what}[{index}] is missing ({value!r}); drop that item or "
                                  f"give the path of its file")
        if not isinstance(value, (str, Path)):
            raise ember.DataError(f"{what}[{index}] is a {type(value).__name__}, not a path; "
                                  f"give the path of its file")
        paths.append(Path(value))
    return paths


def _mode_for(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def _check_shown_count(n: Any, argument: str = "n") -> None:
    """Refuse a number of images to show that is not a whole number of at least 1 (``0``
    divided by zero laying out the grid; a negative one sliced all but the last images).

    Example:
        >>> _check_shown_count(9)
    """
    check_whole(n, argument, "the number of images to show")


def _grid(n: int) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(n))
    return math.ceil(n / columns), columns


def scan_image_files(paths: Sequence[Path], mode: str | None = None,
                     size: Sequence[int] | int | None = None) -> tuple[str, tuple[int, int]]:
    """Read every file's header once: the one mode ("L" or "RGB") and size (height, width) the
    images will have. An unreadable file, or (without ``mode``/``size``) a file whose mode or
    size differs from the others, raises an :class:`ember.DataError` naming it.

    Example:
        >>> # scan_image_files(paths) -> ('L', (28, 28))
    """
    chosen_mode, chosen_size, _ = image_headers(paths, mode, size)
    return chosen_mode, chosen_size


def image_headers(paths: Sequence[Path], mode: str | None = None,
                  size: Sequence[int] | int | None = None
                  ) -> tuple[str, tuple[int, int], list[tuple[int, int]]]:
    """:func:`scan_image_files` plus each file's own (height, width), from the same one read
    of every header.

    Example:
        >>> # image_headers(paths) -> ('L', (28, 28), [(28, 28), (28, 28), ...])
    """
    if len(paths) < 2:
        raise ember.DataError("give at least two images (one to train, one to validate)")
    if mode is not None and mode not in MODES:
        raise ember.DataError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    size = _checked_size(size)
    modes: dict[str, Path] = {}
    sizes: dict[tuple[int, int], Path] = {}
    each: list[tuple[int, int]] = []
    for path in paths:
        image_mode, image_size = read_image_mode(path)
        each.append(image_size)
        simple = "L" if image_mode in ("1", "L", "I", "F", "LA") or image_mode.startswith(
            "I;16") else "RGB"
        modes.setdefault(simple, path)
        sizes.setdefault(image_size, path)
        if mode is None and len(modes) > 1:
            first = sorted(modes.items(), key=lambda item: item[0] != simple)[-1]
            raise ember.DataError(
                f"image {path} is {simple} ({image_mode}) but {first[1]} is {first[0]}; "
                f"images of one dataset need one mode: pass mode='RGB' (or 'L') to convert "
                f"every image")
        if size is None and len(sizes) > 1:
            other_size, other = next((s, p) for s, p in sizes.items() if s != image_size)
            raise ember.DataError(
                f"image {path} is {image_size[0]}x{image_size[1]} (height x width) but "
                f"{other} is {other_size[0]}x{other_size[1]}; pass size=(height, width) to "
                f"resize every image")
    chosen_size = tuple(size) if size is not None else next(iter(sizes))
    return mode or next(iter(modes)), (int(chosen_size[0]), int(chosen_size[1])), each


def _checked_size(size: Sequence[int] | int | None) -> tuple[int, int] | None:
    """``size=`` as (height, width): one positive whole number for a square, or a pair."""
    pair = (size, size) if isinstance(size, numbers.Integral) else size
    if pair is None:
        return None
    if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence | np.ndarray)
            or len(pair) != 2
            or not all(is_whole(v, least=1) for v in pair)):
        raise ember.DataError(f"size= must be a positive whole number or a pair (height, "
                              f"width) of them, got {size!r}; e.g. size=224 or size=(96, 128)")
    return int(pair[0]), int(pair[1])


def _file_split(n: int, valid_pct: float, seed: int, valid_mask: Sequence[bool] | None
                ) -> tuple[np.ndarray, np.ndarray]:
    if valid_mask is None:
        return ember.split_indices(n, valid_pct, seed)
    return ember.split_by_flags(valid_mask, n, "valid_mask")


def _file_stats(paths: Sequence[Path], train_index: np.ndarray, mode: str, size: Sequence[int],
                seed: int, stats_sample: int) -> tuple[list[float], list[float]]:
    """Normalisation statistics from up to ``stats_sample`` training images."""
    generator = np.random.default_rng(seed)
    sample = generator.choice(train_index, min(stats_sample, len(train_index)), replace=False)
    return _channel_stats(torch.stack([resize_image(load_image(paths[i], mode), size)
                                       for i in np.sort(sample)]))


# ----------------------------------------------------------------------------- ImageData
class ImageData(ember.Data):
    """Images and their targets: single-label, multi-label or regression.

    Build it with :meth:`from_arrays`, :meth:`from_folder` or :meth:`from_df`. It records the
    image ``mode`` ("L" or "RGB"), ``size`` (height, width) and the per-channel ``mean`` /
    ``std`` of the training images; :meth:`encode` replays decode → convert → resize →
    normalise on raw items. ``augment`` (default ``True``: :func:`default_augmentation`) is the
    batch augmentation :func:`ember.learner` adds as a :class:`BatchAugment` callback;
    ``False`` or ``None`` turns it off, a v2 transform replaces it.

    Example:
        >>> import numpy as np
        >>> images = np.zeros((10, 4, 4, 3), dtype=np.uint8)
        >>> data = ImageData.from_arrays(images, [0, 1] * 5)
        >>> data.mode, data.size, data.n_channels
        ('RGB', (4, 4), 3)
    """

    kind = "image"

    def __init__(self, train_dl: Any, valid_dl: Any, test_dl: Any = None, *, target_kind: str,
                 classes: Sequence[Any] | None = None, n_out: int | None = None,
                 mode: str = "RGB", size: Sequence[int] | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 augment: Any = True) -> None:
        super().__init__(train_dl, valid_dl, test_dl, target_kind=target_kind, classes=classes,
                         n_out=n_out, input_kind="image")
        if mode not in MODES:
            raise ember.DataError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        self.mode = mode
        self.size = tuple(int(v) for v in size) if size is not None else None
        channels = MODES[mode]
        self.mean = [float(v) for v in (mean if mean is not None else [0.5] * channels)]
        self.std = [float(v) for v in (std if std is not None else [0.25] * channels)]
        if len(self.mean) != self.n_channels or len(self.std) != self.n_channels:
            raise ember.DataError(f"mean and std need {self.n_channels} values for mode {mode}")
        self.augment = augment

    @property
    def n_channels(self) -> int:
        """Channels of every image: 1 for mode "L", 3 for "RGB"."""
        return MODES[self.mode]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(cls, images: Any, labels: Any, valid_pct: float = 0.2, seed: int = 0, *,
                    classes: Sequence[Any] | None = None, target_kind: str | None = None,
                    valid: tuple[Any, Any] | None = None, test: Any = None,
                    bs: int = 64, num_workers: int = 0, augment: Any = True,
                    label_delim: str | None = None) -> ImageData:
        """Images in memory: a ``uint8`` array (N, H, W) or (N, H, W, C), with labels.

        Without ``valid`` a seeded ``valid_pct`` of the items is held out; ``valid`` takes an
        ``(images, labels)`` pair instead. Integer labels index into ``classes`` when given.
        Statistics come from the training split only. A ``valid`` class that training lacks
        is an error (``classes=`` keeps it on purpose); a random split that puts every image
        of a class in validation warns, naming it (:func:`ember.warn_unseen_classes`).

        ``test`` adds a test loader (``data.test_dl``). An ``(images, labels)`` pair (a tuple,
        or a list of two parts of one length) is a labelled test set, scored by
        ``learn.validate("test")``. Images alone (a test set without labels, a competition's)
        are an array (N, H, W[, C]), a tensor or a list of images: its batches hold the images
        only, ``data.test_labelled`` is False, and ``learn.get_preds("test")`` gives a
        prediction per image (targets ``None``) while ``validate("test")`` refuses it. The two
        forms are told apart by :func:`ember.split_test`: two images (paths, PIL images, or
        arrays of the training images' shape), in a list or a tuple, are two images.

        Example:
            >>> import numpy as np
            >>> images = np.zeros((10, 6, 6), dtype=np.uint8)
            >>> data = ImageData.from_arrays(images, ["a", "b"] * 5, valid_pct=0.2)
            >>> len(data.train_dl.dataset), len(data.valid_dl.dataset), data.classes
            (8, 2, ['a', 'b'])
            >>> data = ImageData.from_arrays(images, ["a", "b"] * 5, test=images[:3])
            >>> data.test_labelled, len(data.test_dl.dataset)
            (False, 3)
        """
        pixels = _images_to_tensor(images)
        label_list = labels
        if len(pixels) != len(labels):
            raise ember.DataError(f"{len(pixels)} images but {len(labels)} labels; give one "
                                  f"label per image")
        extra = []
        test_images = None  # a test set without labels: its images alone
        if test is not None:
            first = images[0] if len(images) else None
            image_shape = tuple(first.shape if hasattr(first, "shape") else np.shape(first))
            test_inputs, test_labels = ember.split_test(
                test, lambda part: _is_image(part, image_shape), "image")
            test = (test_inputs, test_labels)
            if test_labels is None:
                test_images = _images_to_tensor(test_inputs, "test images")
                if test_images.shape[1:] != pixels.shape[1:]:
                    raise ember.DataError(f"test images have shape "
                                          f"{tuple(test_images.shape[1:])}, training images "
                                          f"{tuple(pixels.shape[1:])}")
                test = None
        for name, pair in (("valid", valid), ("test", test)):
            if pair is not None:
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ember.DataError(f"{name}= must be a pair (images, labels)")
                more = _images_to_tensor(pair[0], f"{name} images")
                if len(more) != len(pair[1]):
                    raise ember.DataError(f"{name}: {len(more)} images but {len(pair[1])} labels")
                if more.shape[1:] != pixels.shape[1:]:
                    raise ember.DataError(f"{name} images have shape {tuple(more.shape[1:])}, "
                                          f"training images {tuple(pixels.shape[1:])}")
                extra.append((name, more, _as_list(pair[1])))
        train_labels = _as_list(label_list)
        all_labels = _join_labels(train_labels, extra) if extra else label_list
        if extra and classes is None and not isinstance(train_labels, np.ndarray):
            _check_seen(train_labels, extra, label_delim)
        targets, kind, names = encode_targets(all_labels, classes, target_kind, label_delim)
        n = len(pixels)
        split_targets = {"all": targets[:n]}
        offset = n
        for name, more, _ in extra:
            split_targets[name] = targets[offset:offset + len(more)]
            offset += len(more)
        extra_pixels = {name: more for name, more, _ in extra}
        if "valid" in extra_pixels:
            train_images, train_targets = pixels, split_targets["all"]
            valid_images, valid_targets = extra_pixels["valid"], split_targets["valid"]
        else:
            train_index, valid_index = ember.split_indices(n, valid_pct, seed)
            _warn_unseen(train_labels, train_index, valid_index, label_delim)
            train_index_t = torch.from_numpy(train_index)
            valid_index_t = torch.from_numpy(valid_index)
            train_images, train_targets = pixels[train_index_t], split_targets["all"][train_index_t]
            valid_images, valid_targets = pixels[valid_index_t], split_targets["all"][valid_index_t]
        mean, std = _channel_stats(train_images)
        test_ds = (ArrayImageDataset(extra_pixels["test"], split_targets["test"])
                   if "test" in extra_pixels else None)
        if test_images is not None:
            test_ds = ArrayImageDataset(test_images, None)
        train_dl, valid_dl, test_dl = ember.make_loaders(
            ArrayImageDataset(train_images, train_targets),
            ArrayImageDataset(valid_images, valid_targets), test_ds, bs=bs,
            num_workers=num_workers, collate_fn=ImageCollate(mean, std))
        data = cls(train_dl, valid_dl, test_dl, target_kind=kind, classes=names,
                   n_out=None if names is not None else _n_out(train_targets),
                   mode=_mode_for(pixels.shape[1]), size=tuple(pixels.shape[-2:]), mean=mean,
                   std=std, augment=augment)
        if kind == "regression":  # several targets: the default loss weighs each by it
            data.target_std = ember.target_scale(train_targets)[1]
        if test_images is not None:
            data.test_labelled = False
        return data

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], labels: Any, valid_pct: float = 0.2,
                   seed: int = 0, *, valid_mask: Sequence[bool] | None = None,
                   size: Sequence[int] | int | None = None, mode: str | None = None,
                   classes: Sequence[Any] | None = None, target_kind: str | None = None,
                   label_delim: str | None = None, bs: int = 64, num_workers: int = 0,
                   augment: Any = True, item_transform: Callable[[Tensor], Tensor] | None = None,
                   stats_sample: int = 512, test: Any = None) -> ImageData:
        """Image files with one label each (the base of :meth:`from_folder` and :meth:`from_df`).

        Every file's header is read up front: an unreadable file, or (without ``mode``) a file
        whose mode differs from the others, raises an :class:`ember.DataError` naming it. Without
        ``size`` all images must have one size. ``valid_mask`` marks validation items; otherwise
        a seeded ``valid_pct`` is held out. A class only validation items have is an error
        naming the file when the split is given (``valid_mask``, without ``classes=``, which
        keeps it on purpose), and an :class:`ember.EmberWarning` naming the class when the
        random split did it (:func:`ember.warn_unseen_classes`). Statistics come from up to
        ``stats_sample`` training images (decoded, converted, resized).

        ``test`` adds a test loader (``data.test_dl``), read like the validation files. A
        ``(paths, labels)`` pair is a labelled test set (``learn.validate("test")``); without
        ``classes`` a test label that the other items lack is an error naming it. A list of
        paths alone is a test set without labels (a competition's): its batches hold the
        images only, ``data.test_labelled`` is False, and ``learn.get_preds("test")`` gives
        row ``i`` for ``test[i]`` (targets ``None``) while ``validate("test")`` refuses it. Two
        paths, in a list or a tuple, are two images (the rule of :func:`ember.split_test`).

        Example:
            >>> # data = ImageData.from_files(["a.png", "b.png"], ["cat", "dog"], size=64)
            >>> # ImageData.from_files(paths, labels, test=(test_paths, test_labels))
            >>> # ImageData.from_files(paths, labels, test=test_paths)  # no labels
            >>> # probs, _ = learn.get_preds("test")  # row i: test_paths[i]
        """
        paths = _file_paths(paths)
        if len(paths) != len(labels):
            raise ember.DataError(f"{len(paths)} images but {len(labels)} labels")
        test_paths: list[Path] = []
        all_labels = labels
        test_labels = None
        if test is not None:
            if isinstance(test, (str, Path)):
                raise ember.DataError("test= takes a list of paths, not one path: test=[path]")
            test, test_labels = ember.split_test(test, _is_image, "image")
        test_labelled = test_labels is not None
        if test is not None and not test_labelled:  # paths alone: a test set without labels
            for i, item in enumerate(test):
                if not isinstance(item, (str, Path)):
                    raise ember.DataError(
                        f"test[{i}] is a {type(item).__name__}, not a path; give test= a list "
                        f"of paths, or a pair (paths, labels) of one length")
            test_paths = _file_paths(test, "test")
            if not test_paths:
                raise ember.DataError("test= holds no paths; give at least one, or leave it out")
        if test_labelled:
            test_paths, test_labels = _file_paths(test, "test"), _as_list(test_labels)
            if len(test_paths) != len(test_labels):
                raise ember.DataError(f"test: {len(test_paths)} images but {len(test_labels)} "
                                      f"labels")
            extra = [("test", torch.empty(0), test_labels)]
            train_labels = _as_list(labels)
            all_labels = _join_labels(train_labels, extra)
            if classes is None and isinstance(train_labels, list):
                _check_seen(train_labels, extra, label_delim)
        train_index, valid_index = _file_split(len(paths), valid_pct, seed, valid_mask)
        label_list = _as_list(labels)
        if valid_mask is None:
            _warn_unseen(label_list, train_index, valid_index, label_delim)
        elif classes is None and isinstance(label_list, list):  # a split the user gave
            _check_seen([label_list[i] for i in train_index],
                        [("valid", torch.empty(0), [label_list[i] for i in valid_index])],
                        label_delim, [str(paths[i]) for i in valid_index])
        chosen_mode, final_size = scan_image_files(paths + test_paths, mode, size)
        all_targets, kind, names = encode_targets(all_labels, classes, target_kind, label_delim)
        targets = all_targets[:len(paths)]
        mean, std = _file_stats(paths, train_index, chosen_mode, final_size, seed, stats_sample)

        def dataset(index: np.ndarray, train: bool) -> FileImageDataset:
            return FileImageDataset([paths[i] for i in index], targets[torch.from_numpy(index)],
                                    chosen_mode, final_size, item_transform if train else None)

        test_ds = (FileImageDataset(test_paths, all_targets[len(paths):] if test_labelled
                                    else None, chosen_mode, final_size)
                   if test is not None else None)
        train_dl, valid_dl, test_dl = ember.make_loaders(
            dataset(train_index, True), dataset(valid_index, False), test_ds, bs=bs,
            num_workers=num_workers, collate_fn=ImageCollate(mean, std))
        data = cls(train_dl, valid_dl, test_dl, target_kind=kind, classes=names,
                   n_out=None if names is not None else _n_out(targets),
                   mode=chosen_mode, size=final_size, mean=mean, std=std, augment=augment)
        if kind == "regression":  # several targets: the default loss weighs each by it
            data.target_std = ember.target_scale(targets[torch.from_numpy(train_index)])[1]
        if test is not None and not test_labelled:
            data.test_labelled = False
        return data

    @classmethod
    def from_folder(cls, path: str | Path, valid_pct: float = 0.2, seed: int = 0, *,
                    train: str = "train", valid: str = "valid", test: str | None = "test",
                    size: Sequence[int] | int | None = None, mode: str | None = None,
                    **options: Any) -> ImageData:
        """Images in one sub-folder per class (``path/cat/1.jpg``), or split in advance into
        ``path/train/<class>/…`` and ``path/valid/<class>/…``, with an optional
        ``path/test/<class>/…`` beside them that becomes the test loader (``data.test_dl``:
        ``learn.validate("test")``, ``learn.get_preds("test")``). A ``train`` folder of class
        folders without a ``valid`` one (or the reverse) is refused rather than read as a
        class: name the other folder (``valid="test"``).

        Without the train/valid layout a seeded ``valid_pct`` of the images is held out (and
        ``test`` plays no part: a folder called "test" there is a class). The classes are
        those of the training folder; a validation or test class that training lacks is an
        error. A test folder of loose images without class folders (``path/test/*.png``, a
        competition's) is a test set without labels: its images, in name order
        (``data.test_dl.dataset.paths``), are predicted by ``learn.get_preds("test")``
        (targets ``None``), and ``data.test_labelled`` is False, so ``validate("test")``
        refuses it. ``test=None`` leaves any test folder out. An empty class folder is left
        out of the classes with an :class:`ember.EmberWarning` naming it. Other options are
        those of :meth:`from_files`.

        Example:
            >>> # data = ImageData.from_folder("pets", size=128)
            >>> # data = ImageData.from_folder("chest_xray", size=224)  # train/ valid/ test/
            >>> # learn.validate("test")
            >>> # data = ImageData.from_folder("competition")  # train/<class>/ valid/ test/*.png
            >>> # probs, _ = learn.get_preds("test")  # row i: data.test_dl.dataset.paths[i]
        """
        root = Path(path).expanduser()  # "~/pets" is in the home folder, as in a shell
        if not root.is_dir():
            raise ember.DataError(f"{root} is not a folder; give the folder that holds one "
                                  f"sub-folder per class")
        folders = ember.split_folders(root, train, valid)
        if folders is not None:
            train_dir, valid_dir = folders
            train_files, train_labels = _class_folder(train_dir)
            classes = options.pop("classes", None) or sorted(set(train_labels))
            valid_files, valid_labels = _labelled_split(valid_dir, train_dir, classes)
            test_dir = ember.find_test_folder(root, test, folders, IMAGE_SUFFIXES, "images",
                                              loose=True)
            test_split: Any = None
            if test_dir is not None:  # loose images are a test set without labels
                test_split = (ember.loose_files(test_dir, IMAGE_SUFFIXES)
                              or _labelled_split(test_dir, train_dir, classes))
            mask = [False] * len(train_files) + [True] * len(valid_files)
            return cls.from_files(train_files + valid_files, train_labels + valid_labels,
                                  valid_mask=mask, size=size, mode=mode, classes=classes,
                                  test=test_split, **options)
        files, labels = _class_folder(root)
        return cls.from_files(files, labels, valid_pct, seed, size=size, mode=mode, **options)

    @classmethod
    def from_df(cls, df: Any, path_col: str = "path", label_col: str = "label",
                valid_pct: float = 0.2, seed: int = 0, *, folder: str | Path | None = None,
                valid_col: str | None = None, label_delim: str | None = None,
                **options: Any) -> ImageData:
        """Images listed in a data frame: a column of file paths (relative to ``folder`` when
        given) and a label column. Lists of labels, or strings split by ``label_delim``, make a
        multi-label target (with ``label_delim`` an empty cell, which pandas reads as NaN, is
        an image of no class); non-integral floats make a regression target. ``valid_col``
        names a boolean column marking validation rows (a class only they have is an error,
        as for ``valid_mask`` of :meth:`from_files`).

        Example:
            >>> # data = ImageData.from_df(df, "file", "tags", label_delim=" ", folder="planet")
        """
        for column in (path_col, label_col, valid_col):
            if column is not None and column not in df.columns:
                raise ember.DataError(f"the data frame has no column {column!r}; its columns "
                                      f"are {list(df.columns)}")
        for row, value in zip(df.index, df[path_col]):
            if _no_path(value):
                raise ember.DataError(f"the path of row {row!r} (column {path_col!r}) is "
                                      f"missing; drop that row or fill in its file")
        base = Path(folder).expanduser() if folder is not None else None
        paths = [base / str(p) if base is not None else Path(str(p)).expanduser()
                 for p in df[path_col]]
        labels = list(df[label_col])
        mask = df[valid_col].tolist() if valid_col is not None else None
        return cls.from_files(paths, labels, valid_pct, seed, valid_mask=mask,
                              label_delim=label_delim, **options)

    # ------------------------------------------------------------------ inference side
    def encode(self, items: Sequence[Any]) -> tuple[Tensor, ...]:
        """Raw images (paths, PIL images, arrays (H, W[, C]), tensors ([C,] H, W)) → the
        normalised batch the model saw in validation.

        Example:
            >>> # data.encode(["shoe.png", np.zeros((28, 28), np.uint8)])[0].shape
        """
        return (self.encode_images(self.read_images(items)),)

    def read_images(self, items: Sequence[Any]) -> list[Tensor]:
        """Raw images → ``uint8`` (C, H, W) tensors in the data's mode, each at its own size:
        the first half of :meth:`encode`, for predictions that need each image's size
        (segmentation masks).

        Example:
            >>> # data.read_images(["photo.jpg"])[0].shape -> torch.Size([3, 480, 640])
        """
        images = []
        for index, item in enumerate(items):
            name = (str(item) if isinstance(item, (str, Path))
                    else f"item {ember.item_number(index)}")
            image = to_image_tensor(item, name, self.mode)
            images.append(convert_mode(image, self.mode, name))
        if not images:
            raise ember.DataError("no items to encode; give at least one image")
        return images

    def encode_images(self, images: Sequence[Tensor]) -> Tensor:
        """``uint8`` (C, H, W) images in the data's mode (:meth:`read_images`) → the normalised
        batch the model takes: the second half of :meth:`encode`.

        Example:
            >>> # data.encode_images(data.read_images(items)) equals data.encode(items)[0]
        """
        resized = [resize_image(image, self.size) for image in images]
        shapes = {tuple(image.shape) for image in resized}
        if len(shapes) > 1:
            raise ember.DataError(f"the images have different sizes {sorted(shapes)[:3]}; this "
                                  f"model was trained without a fixed size: resize them first")
        return normalize(torch.stack(resized), self.mean, self.std)

    def input_specs(self, n_inputs: int) -> list[ember.InputSpec]:
        """The model takes ``images``: normalised ``(batch, channels, height, width)`` float32
        batches of the data's size, as :meth:`encode` returns them (for ONNX export).

        Example:
            >>> # data.input_specs(1) -> [InputSpec('images', {0: 'batch'})]
        """
        return [ember.InputSpec("images")]

    def from_json(self, value: Any, position: int = 0) -> Any:
        """A request's image: a base64 string of an encoded file (PNG, JPEG, …), bare or as a
        ``data:image/png;base64,…`` URI → the image decoded (:meth:`from_upload`); pixels as
        nested lists (height, width[, channels]) → a NumPy array; any other JSON value is a
        :class:`ember.DataError` naming it.

        Example:
            >>> # data.from_json(base64.b64encode(png_bytes).decode()) -> uint8 (C, H, W)
            >>> # data.from_json("data:image/png;base64," + encoded) -> the same
            >>> # data.from_json([[0, 255], [255, 0]]) -> array([[0, 255], [255, 0]])
        """
        if isinstance(value, list):
            try:
                array = np.asarray(value)
            except ValueError:
                array = None
            if array is None or array.dtype.kind not in "buif":
                raise ember.DataError(
                    f"inputs[{position}] is not an image: send pixels as nested lists of "
                    f"numbers of one shape (height, width[, channels]), or the encoded file "
                    f"(PNG, JPEG…) as a base64 string")
            return array
        if not isinstance(value, str):  # it was passed on, to be refused as a Python type
            kind = ("a JSON object" if isinstance(value, dict) else "null" if value is None
                    else "a JSON boolean" if isinstance(value, bool) else "a JSON number")
            raise ember.DataError(
                f"inputs[{position}] is {kind}, not an image: send the encoded file (PNG, "
                f"JPEG…) as a base64 string, or pixels as nested lists of numbers (height, "
                f"width[, channels])")
        if value.startswith("data:"):  # a data URI, as a browser's FileReader gives it
            header, _, value = value.partition(",")
            if not header.endswith(";base64"):
                raise ember.DataError(f"inputs[{position}] is a data URI without ';base64' "
                                      f"({header[:40]}); send the encoded file as base64")
        try:  # base64 wrapped at 76 characters (the base64 tool, MIME) is base64 too
            content = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ember.DataError(f"inputs[{position}] is not valid base64 image data; send "
                                  f"the encoded file (PNG, JPEG…) as base64") from None
        # decoded here, as an upload is, so bytes that are no image are named by their place
        # in the request (they were "image item 0 (encoded image bytes) cannot be read …;
        # delete or replace the file", advice for a file on a disk)
        return self.from_upload(content, f"inputs[{position}]")

    def from_upload(self, content: bytes, name: str) -> Tensor:
        """An uploaded image file (``ember serve``'s ``/predict/files``) → its ``uint8``
        (channels, height, width) tensor in the data's mode, decoded here so that a file that
        is not an image (corrupt, truncated, empty) is refused by its ``name``.

        Example:
            >>> # data.from_upload(png_bytes, "file 'cat.png' (files[0])").shape -> (1, 28, 28)
        """
        try:
            return load_image(io.BytesIO(content), self.mode, name=name)
        except ember.DataError as error:
            if str(error) != _fix_for_corrupt(name):  # too large: its own reason stands
                raise
            raise ember.DataError(
                f"image {name} cannot be read (corrupt, truncated or not an image); send it "
                f"again as a PNG, JPEG or other image file, or leave it out") from None

    def input_schema(self) -> dict[str, Any]:
        """One raw image as ``ember serve`` takes it in JSON (its ``/metadata``): a base64
        string of an encoded file, or pixels as nested lists.

        Example:
            >>> # data.input_schema()["oneOf"][0]["contentEncoding"] -> 'base64'
        """
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "its own size"
        return {
            "description": f"one image, converted to mode {self.mode} and resized to {size} "
                           f"(height x width)",
            "oneOf": [
                {"type": "string", "contentEncoding": "base64",
                 "description": "an encoded image file (PNG, JPEG…) as base64, bare or as a "
                                "data URI (data:image/png;base64,…)"},
                {"type": "array", "items": {"type": "array"},
                 "description": "pixels as nested lists (height, width[, channels]): "
                                "integers 0-255 or floats in [0, 1]"},
            ],
        }

    def state(self) -> dict[str, Any]:
        """Preprocessing state: mode, size and normalisation statistics (plus targets).

        Example:
            >>> # data.state()["mean"] -> [0.286]
        """
        return {**super().state(), "mode": self.mode, "size": list(self.size or []) or None,
                "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImageData:
        """Rebuild the inference side (no loaders) from :meth:`state`.

        Example:
            >>> # ImageData.from_state(data.state()).encode([image])
        """
        return cls(None, None, target_kind=state["target_kind"], classes=state.get("classes"),
                   n_out=state.get("n_out"), mode=state["mode"], size=state.get("size"),
                   mean=state["mean"], std=state["std"], augment=None)

    # ------------------------------------------------------------------ showing
    def _pixels(self, images: Tensor) -> np.ndarray:
        """Normalised batch → displayable (N, H, W[, 3]) floats in [0, 1]."""
        shown = denormalize(images.detach().float().cpu(), self.mean, self.std).clamp(0, 1)
        array = shown.permute(0, 2, 3, 1).numpy()
        return array[..., 0] if array.shape[-1] == 1 else array

    def show_images(self, images: Tensor, titles: list[str], colors: list[str] | None = None,
                    n: int = 9, figsize: tuple[float, float] | None = None) -> Any:
        """A grid figure of normalised ``images`` (a batch) with one title per image
        (:func:`ember.utils.new_figure`).

        Example:
            >>> # data.show_images(xb[:4], ["a", "b", "c", "d"])
        """
        _check_shown_count(n)
        n = min(n, len(images))
        rows, columns = _grid(n)
        figure, axes = new_figure(rows, columns, squeeze=False,
                                  figsize=figsize or (2.2 * columns, 2.4 * rows))
        pixels = self._pixels(images[:n])
        for index, axis in enumerate(axes.flat):
            axis.axis("off")
            if index >= n:
                continue
            axis.imshow(pixels[index], cmap="gray" if pixels.ndim == 3 else None, vmin=0, vmax=1)
            axis.set_title(titles[index], fontsize=9,
                           color=colors[index] if colors is not None else "black")
        figure.tight_layout()
        return figure

    def show_batch(self, n: int = 9, split: str = "train", augment: bool = False) -> Any:
        """A matplotlib figure of ``n`` images of one batch with their labels (untitled for a
        test set without labels); with ``augment`` the training augmentation is applied first
        (to see what the model sees).

        Example:
            >>> # data.show_batch(16).savefig("batch.png")
            >>> # data.show_batch(split="test")
        """
        batch = self.one_batch(split)
        images = batch[0]
        if len(batch) == 1:  # a test set without labels: the images alone
            titles = [""] * len(images)
        else:
            titles = [_label_text(t) for t in self.decode_targets(batch[1])]
        if augment and self.augment not in (None, False):
            from ember_vision.transforms import BatchAugment

            augmenter = BatchAugment(None if self.augment is True else self.augment,
                                     mean=self.mean, std=self.std)
            augmenter.transform = augmenter.transform or default_augmentation(self.size)
            images = augmenter.augment(images)
        return self.show_images(images, titles, n=n)

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 9) -> Any:
        """A figure of ``n`` images titled ``target / prediction`` (green when right, red
        when wrong); used by ``learn.show_results()``.

        Example:
            >>> # learn.show_results(9).savefig("results.png")
        """
        targets = self.decode_targets(batch[-1])
        titles, colors = [], []
        for target, prediction in zip(targets, predictions):
            titles.append(f"{_label_text(target)}\n{_label_text(prediction)}")
            right = (bool(np.all(np.abs(np.subtract(target, prediction)) < 0.5))
                     if self.target_kind == "regression" else target == prediction)
            colors.append("green" if right else "red")
        return self.show_images(batch[0], titles, colors, n=n)


def _label_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):  # several labels, or several regression values
        return ";".join(map(_label_text, value)) or "(none)"
    return str(value)


def _classes_of(label_delim: str | None) -> Callable[[Any], list[Any]]:
    """The classes of one label as :func:`encode_targets` reads it: a list (or tuple, set) of
    classes, a string split by ``label_delim`` (a blank cell: no class), or one class."""
    def classes_of(value: Any) -> list[Any]:
        if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
            return [plain(part) for part in value]
        value = plain(value)
        if is_missing(value):  # a blank cell: no class with label_delim, else refused by
            return []  # encode_targets as a missing label
        if label_delim is not None and isinstance(value, str):
            return ember.split_label(value, label_delim)  # as encode_targets splits it
        return [value]

    return classes_of


def _regression_labels(labels: Sequence[Any]) -> bool:
    """Whether labels read as a regression target (non-integral floats): no classes."""
    return any(isinstance(v, float) and not is_missing(v) and not v.is_integer()
               for v in labels[:1000])


def _check_seen(train_labels: list[Any],
                extra: list[tuple[str, Tensor, list[Any] | np.ndarray]],
                label_delim: str | None = None,
                item_names: Sequence[str] | None = None) -> None:
    """A class label in ``valid``/``test`` (a split the user gave) that no training image has
    is an error (the model could never predict it); pass ``classes=`` to keep such a class on
    purpose. A list of labels, or a string split by ``label_delim``, is checked class by
    class. ``item_names`` names the items of the one split in ``extra`` (their files)."""
    if _regression_labels(train_labels):
        return
    for name, _, labels in extra:
        unseen = ember.first_unseen_class(train_labels, labels, _classes_of(label_delim))
        if unseen is not None:
            index, label = unseen
            item = item_names[index] if item_names is not None else f"item {index}"
            raise ember.DataError(
                f"{name} label {label!r} ({item}) never occurs in training; add "
                f"training images of that class, drop the item, or pass classes= to "
                f"keep the class on purpose")


def _warn_unseen(labels: Sequence[Any], train_index: np.ndarray, valid_index: np.ndarray,
                 label_delim: str | None) -> None:
    """Warn about a class whose images a random split put all in validation (one rule with
    the other plugins: :func:`ember.warn_unseen_classes`)."""
    if (isinstance(labels, np.ndarray) and labels.ndim > 1) or _regression_labels(labels):
        return  # a multi-hot matrix or several regression outputs: no class names
    ember.warn_unseen_classes((labels[i] for i in train_index), (labels[i] for i in valid_index),
                              _classes_of(label_delim), item="image")


def _n_out(targets: Tensor) -> int:
    return 1 if targets.ndim <= 1 else int(targets.shape[1])


def _as_list(labels: Any) -> list[Any] | np.ndarray:
    """Labels as a list, except a 2-D array (multi-hot rows or several regression outputs),
    which stays one array so :func:`encode_targets` still sees a table of numbers."""
    if hasattr(labels, "to_numpy"):
        labels = labels.to_numpy()
    if isinstance(labels, Tensor):
        labels = labels.cpu().numpy()
    if isinstance(labels, np.ndarray) and labels.ndim > 1:
        return labels
    return list(labels)


def _join_labels(train_labels: list[Any] | np.ndarray,
                 extra: list[tuple[str, Tensor, list[Any] | np.ndarray]]) -> Any:
    """Training labels followed by those of ``valid``/``test``, in the form of the training
    labels: 2-D arrays are stacked (their widths must agree), lists are concatenated."""
    if not isinstance(train_labels, np.ndarray):
        for name, _, labels in extra:
            if isinstance(labels, np.ndarray):
                raise ember.DataError(f"{name} labels are a 2-D array but the training labels "
                                      f"are not; give labels of one form")
        return train_labels + [value for _, _, labels in extra for value in labels]
    for name, _, labels in extra:
        if not isinstance(labels, np.ndarray) or labels.shape[1:] != train_labels.shape[1:]:
            shape = labels.shape if isinstance(labels, np.ndarray) else (len(labels),)
            raise ember.DataError(
                f"{name} labels have shape {shape} but the training labels "
                f"{train_labels.shape}; give {name} labels with {train_labels.shape[1]} "
                f"columns")
    return np.concatenate([train_labels, *(labels for _, _, labels in extra)])


def _labelled_split(folder: Path, train_dir: Path, classes: Sequence[Any]
                    ) -> tuple[list[Path], list[str]]:
    """The files and labels of the class folders of ``folder`` (validation or test); a class
    that is not among the training folder's ``classes`` is an error naming it."""
    files, labels = _class_folder(folder)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ember.DataError(f"{folder} has classes {unknown} that {train_dir} lacks; add "
                              f"training images for them")
    return files, labels


def _class_folder(root: Path) -> tuple[list[Path], list[str]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ember.DataError(f"{root} holds no class sub-folders; put each class's images in "
                              f"{root}/<class name>/")
    files, labels, empty = [], [], []
    for folder in folders:
        found = ember.class_files(folder, IMAGE_SUFFIXES)
        if not found:
            empty.append(folder.name)
        files += found
        labels += [folder.name] * len(found)
    if empty and files:
        warn(f"{root}: class folder(s) {empty} hold no images "
                      f"({', '.join(IMAGE_SUFFIXES)}) and are left out of the classes; add "
                      f"images or remove the folder(s)")
    if not files:
        raise ember.DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files, labels
