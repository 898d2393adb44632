"""Segmentation: one class per pixel. :class:`SegmentationData` and a compact U-Net.

Masks are integer class codes (N, H, W); the model returns per-pixel logits channels-last,
(N, H, W, n_classes), so core's cross-entropy and accuracy work per pixel unchanged. The batch
augmentation warps image and mask with the same random affine (the mask with nearest-neighbour
sampling); lighting changes touch the image only.

Example:
    >>> import numpy as np
    >>> images = np.zeros((8, 16, 16), np.uint8)
    >>> masks = np.zeros((8, 16, 16), np.int64); masks[:, 4:12, 4:12] = 1
    >>> data = SegmentationData.from_arrays(images, masks, codes=["background", "object"], bs=4)
    >>> data.one_batch()[1].shape
    torch.Size([4, 16, 16])
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

import ember
from ember.metrics import IGNORE_INDEX
from ember.model import evaluating
from ember.utils import new_figure, warn
from ember_vision.data import (
    ArrayImageDataset,
    ImageCollate,
    ImageData,
    _channel_stats,
    _check_shown_count,
    _file_split,
    _file_stats,
    image_headers,
)
from ember_vision.data import _images_to_tensor as images_to_tensor
from ember_vision.models import conv_block, torchvision_model
from ember_vision.transforms import (
    IMAGE_SUFFIXES,
    BatchAugment,
    _upright,
    default_augmentation,
    load_image,
    resize_image,
)

UNUSED_CODES_WARN = 10  # a largest code this far above the next one seen is likely void

__all__ = [
    "CompactUNet",
    "FileMaskDataset",
    "ResNetUNet",
    "SegmentationData",
    "UNet",
    "compact_unet",
    "load_mask",
    "resnet_unet",
]


class SegmentationData(ImageData):
    """Images with a class code per pixel (target kind ``single_label``, classes = ``codes``).

    :meth:`decode` gives one (H, W) array of class indices per image.

    Example:
        >>> # data = SegmentationData.from_arrays(images, masks, codes=["sky", "road", "car"])
    """

    kind = "segmentation"

    @classmethod
    def from_arrays(cls, images: Any, masks: Any, valid_pct: float = 0.2,  # type: ignore[override]
                    seed: int = 0, *, codes: Sequence[Any] | None = None, bs: int = 16,
                    num_workers: int = 0, augment: Any = True,
                    void: int | None = None) -> SegmentationData:
        """Images (N, H, W[, C]) ``uint8`` and masks (N, H, W) of integer codes indexing
        ``codes`` (default: ``0 … max``; a largest code far above the others, say 255 over
        0 … 2, warns that it makes classes no mask holds). A seeded ``valid_pct`` of the items
        is held out.
        Mask pixels equal to ``void`` (say 255: borders, unlabelled pixels) belong to no
        class: they become ``ember.metrics.IGNORE_INDEX``, which the loss, accuracy and Dice
        skip.

        Example:
            >>> # data = SegmentationData.from_arrays(images, masks, codes=["bg", "shoe"])
            >>> # data = SegmentationData.from_arrays(images, masks, codes=codes, void=255)
        """
        pixels = images_to_tensor(images)
        mask_tensor = torch.as_tensor(np.asarray(masks))
        if mask_tensor.ndim != 3 or mask_tensor.shape[0] != len(pixels):
            raise ember.DataError(f"masks must have shape (N, H, W) with N = {len(pixels)} "
                                  f"images, got {tuple(mask_tensor.shape)}")
        if tuple(mask_tensor.shape[1:]) != tuple(pixels.shape[2:]):
            raise ember.DataError(f"masks are {tuple(mask_tensor.shape[1:])} but images are "
                                  f"{tuple(pixels.shape[2:])}; give one mask pixel per image pixel")
        if mask_tensor.is_floating_point():
            raise ember.DataError("masks must hold integer class codes, not floats")
        mask_tensor = mask_tensor.long()
        mask_tensor = _void_ignored(mask_tensor, void)
        labelled = mask_tensor[mask_tensor != IGNORE_INDEX] if void is not None else mask_tensor
        highest = int(labelled.max()) if labelled.numel() else 0
        names = list(codes) if codes is not None else list(range(highest + 1))
        bad = (mask_tensor < 0) | (mask_tensor >= len(names))
        if void is not None:
            bad &= mask_tensor != IGNORE_INDEX
        if bad.any():
            item = int(bad.flatten(1).any(1).nonzero()[0])
            code = int(mask_tensor[item][bad[item]].max())
            raise ember.DataError(f"mask {item} holds code {code}, outside 0 … {len(names) - 1} "
                                  f"(codes={names}); fix the mask or give more codes"
                                  f"{_void_hint(code, void)}")
        if codes is None:
            _warn_unused_codes(labelled.unique().tolist())
        train_index, valid_index = ember.split_indices(len(pixels), valid_pct, seed)
        train_t, valid_t = torch.from_numpy(train_index), torch.from_numpy(valid_index)
        mean, std = _channel_stats(pixels[train_t])
        train_dl, valid_dl, _ = ember.make_loaders(
            ArrayImageDataset(pixels[train_t], mask_tensor[train_t]),
            ArrayImageDataset(pixels[valid_t], mask_tensor[valid_t]), bs=bs,
            num_workers=num_workers, collate_fn=ImageCollate(mean, std))
        return cls(train_dl, valid_dl, target_kind="single_label", classes=names,
                   mode="L" if pixels.shape[1] == 1 else "RGB", size=tuple(pixels.shape[-2:]),
                   mean=mean, std=std, augment=augment)

    @classmethod
    def from_files(cls, images: Sequence[str | Path],  # type: ignore[override]
                   masks: Sequence[str | Path] | Callable[[Path], str | Path],
                   valid_pct: float = 0.2, seed: int = 0, *, codes: Sequence[Any] | None = None,
                   valid_mask: Sequence[bool] | None = None,
                   size: Sequence[int] | int | None = None, mode: str | None = None,
                   bs: int = 16, num_workers: int = 0, augment: Any = True,
                   stats_sample: int = 512, void: int | None = None) -> SegmentationData:
        """Image files and their mask files: ``masks`` lists them (paired by position), or is
        a function that takes an image's path (a ``Path``) and returns its mask's path
        (CamVid's ``labels/<name>_P.png``). A mask is a single-channel
        image (greyscale, palette or 16-bit PNG) whose pixel values are class codes indexing
        ``codes`` (default ``0 … max``, with a warning when the largest code stands far above
        the others, as a 255 void border does); it must have its image's size. Every mask is read up
        front, so a bad one is named before training, with its image: a missing or unreadable
        file, a colour mask, a mask of another size, and a function that raises or returns
        anything but a path. With ``size`` images are resized
        bilinearly and masks by nearest neighbour, so codes stay codes. Mask pixels equal to
        ``void`` (say 255) belong to no class: the loss, accuracy and Dice skip them.

        Example:
            >>> # data = SegmentationData.from_files(image_paths, mask_paths, codes=["bg", "car"])
            >>> # SegmentationData.from_files(image_paths, mask_paths, codes=codes, void=255)
            >>> # SegmentationData.from_files(
            >>> #     image_paths, lambda image: image.parent.parent / "labels" /
            >>> #     f"{image.stem}_P.png", codes=codes)
        """
        image_paths = [Path(p) for p in images]
        mask_paths, mask_names = _mask_paths(image_paths, masks)
        chosen_mode, final_size, image_sizes = image_headers(image_paths, mode, size)
        highest, seen = 0, set()
        for image_path, mask_path, image_size, mask_name in zip(image_paths, mask_paths,
                                                                 image_sizes, mask_names):
            mask = load_mask(mask_path, void=void, name=mask_name)
            if tuple(mask.shape) != image_size:
                raise ember.DataError(
                    f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} but its image "
                    f"{image_path} is {image_size[0]}x{image_size[1]}; give one mask pixel per "
                    f"image pixel")
            highest = max(highest, int(mask.max()))
            if codes is None:
                seen.update(mask.unique().tolist())
            if codes is not None and highest >= len(codes):
                raise ember.DataError(
                    f"mask {mask_path} holds code {int(mask.max())}, outside 0 … "
                    f"{len(codes) - 1} (codes={list(codes)}); fix the mask or give more codes"
                    f"{_void_hint(int(mask.max()), void)}")
        if codes is None:
            _warn_unused_codes(seen - {IGNORE_INDEX})
        names = list(codes) if codes is not None else list(range(highest + 1))
        if len(names) < 2:
            raise ember.DataError("every mask holds code 0 only; a segmentation needs at least "
                                  "two classes (give masks with objects, or codes=)")
        train_index, valid_index = _file_split(len(image_paths), valid_pct, seed, valid_mask)
        mean, std = _file_stats(image_paths, train_index, chosen_mode, final_size, seed,
                                stats_sample)

        def dataset(index: np.ndarray) -> FileMaskDataset:
            return FileMaskDataset([image_paths[i] for i in index],
                                   [mask_paths[i] for i in index], chosen_mode, final_size,
                                   void)

        train_dl, valid_dl, _ = ember.make_loaders(
            dataset(train_index), dataset(valid_index), bs=bs, num_workers=num_workers,
            collate_fn=ImageCollate(mean, std))
        return cls(train_dl, valid_dl, target_kind="single_label", classes=names,
                   mode=chosen_mode, size=final_size, mean=mean, std=std, augment=augment)

    @classmethod
    def from_folder(cls, path: str | Path, valid_pct: float = 0.2,  # type: ignore[override]
                    seed: int = 0, *, images: str = "images",
                    masks: str | Callable[[Path], str | Path] = "masks",
                    **options: Any) -> SegmentationData:
        """``path/images/<name>.<ext>`` with ``path/masks/<name>.png``, paired by file name
        without the suffix; hidden files (macOS's ``._name.png``) are neither. An image
        without a mask (or a mask without an image) is an error naming it. ``masks`` may
        instead be a function from an image's path to its mask's path, as :meth:`from_files`
        takes it. Other options are those of :meth:`from_files`.

        Example:
            >>> # data = SegmentationData.from_folder("camvid", codes=codes, size=(96, 128))
            >>> # SegmentationData.from_folder(
            >>> #     "camvid", masks=lambda image: image.parent.parent / "labels" /
            >>> #     f"{image.stem}_P.png", codes=codes)
        """
        root = Path(path).expanduser()  # "~/camvid" is in the home folder, as in a shell
        folders = [root / images] + ([] if callable(masks) else [root / masks])
        for folder in folders:
            if not folder.is_dir():
                needs = f"{root}/{images}/" + ("" if callable(masks) else f" and {root}/{masks}/")
                raise ember.DataError(f"{folder} is not a folder; segmentation data needs "
                                      f"{needs} (or images=, masks=)")
        # hidden entries (macOS's "._0001.png") are no images or masks, as in class folders
        image_files, *mask_folder = (
            {p.stem: p for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")} for folder in folders)
        if callable(masks):
            return cls.from_files([image_files[s] for s in sorted(image_files)], masks,
                                  valid_pct, seed, **options)
        mask_files = mask_folder[0]
        unpaired = [s for s in image_files if s not in mask_files]
        if unpaired:
            raise ember.DataError(f"image {image_files[unpaired[0]]} has no mask "
                                  f"{folders[1]}/{unpaired[0]}.*; add the mask or remove the image")
        unpaired = [s for s in mask_files if s not in image_files]
        if unpaired:
            raise ember.DataError(f"mask {mask_files[unpaired[0]]} has no image in {folders[0]}")
        stems = sorted(image_files)
        return cls.from_files([image_files[s] for s in stems], [mask_files[s] for s in stems],
                              valid_pct, seed, **options)

    def predict_batch(self, model: nn.Module, items: Sequence[Any], device: Any = None,
                      bs: int = 256, *, probs: bool = False, **options: Any
                      ) -> list[np.ndarray]:
        """One mask per raw image (path, encoded bytes, PIL image, array, tensor), at that
        image's own size: an (H, W) ``int64`` array of class indices that lies over the image
        as it was given. The model sees the image resized to the data's size; its logits are
        resized back bilinearly (antialiased when shrinking) before the argmax, which gives
        smoother edges than resizing the mask. An item already at the data's size (a tensor
        taken from a batch) gets its mask at that size, as every item gets its own.

        Example:
            >>> # learn.predict("street.jpg").shape -> (480, 640) for a 640x480 photo
            >>> # ember.load("masks.ember").predict_batch([photo, other])[1].shape
        """
        self.check_options(options, probs)  # a mask has no one set of class probabilities
        items = list(items)
        results: list[np.ndarray] = []
        with evaluating(model) as model_device:
            device = device or model_device
            for start in range(0, len(items), bs):
                with ember.numbering_items_from(start):  # a bad image named by its position
                    images = self.read_images(items[start:start + bs])
                logits = model(self.encode_images(images).to(device))
                results.extend(_masks_at(logits, [tuple(image.shape[-2:]) for image in images]))
        return results

    def decode(self, outputs: Tensor, threshold: float = 0.5) -> list[Any]:
        """Per-pixel logits (N, H, W, C) → one (H, W) array of class indices per image, at
        the model's size (:meth:`predict_batch` resizes them to each image's own size).

        Example:
            >>> # data.decode(model(xb))[0].shape -> (H, W)
        """
        return list(outputs.detach().float().cpu().argmax(dim=-1).numpy())

    def why_no_probabilities(self) -> str:
        """A mask holds one class per pixel, not one per image: ``probs=True`` is refused with
        this reason.

        Example:
            >>> SegmentationData.why_no_probabilities(None)[:36]
            'segmentation predicts a mask (an (H,'
        """
        return ("segmentation predicts a mask (an (H, W) array of class indices) per image, "
                "not one class; learn.get_preds() gives each pixel's class probabilities")

    def decode_targets(self, targets: Tensor) -> list[Any]:
        """Masks of a batch as (H, W) arrays.

        Example:
            >>> # data.decode_targets(yb)[0].shape -> (H, W)
        """
        return list(targets.detach().cpu().numpy())

    def show_batch(self, n: int = 4, split: str = "train", augment: bool = False) -> Any:
        """A figure with one row per image of one batch: the image and its mask (void pixels
        blank). With ``augment`` the training augmentation warps both first, together, as
        the model sees them.

        Example:
            >>> # data.show_batch(4, augment=True).savefig("batch.png")
        """
        _check_shown_count(n)
        images, masks = self.one_batch(split)[:2]
        if augment and self.augment not in (None, False):
            augmenter = BatchAugment(None if self.augment is True else self.augment,
                                     mean=self.mean, std=self.std)
            augmenter.transform = augmenter.transform or default_augmentation(self.size)
            images, masks = augmenter.augment_with_masks(images, masks)
        n = min(n, len(images))
        return self._mask_rows(images[:n], [self.decode_targets(masks[:n])], ("image", "mask"))

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 4) -> Any:
        """A figure with one row per image: the image, its mask, the predicted mask.

        Example:
            >>> # learn.show_results(4).savefig("masks.png")
        """
        _check_shown_count(n)
        n = min(n, len(predictions))
        return self._mask_rows(batch[0][:n], [self.decode_targets(batch[-1][:n]),
                                              list(predictions[:n])],
                               ("image", "mask", "predicted"))

    def _mask_rows(self, images: Tensor, masks: list[list[np.ndarray]],
                   titles: Sequence[str]) -> Any:
        """A figure with one row per normalised image: the image, then each of ``masks``'
        lists' mask for it (void pixels, ``IGNORE_INDEX``, left blank)."""
        n, columns = len(images), 1 + len(masks)
        figure, axes = new_figure(n, columns, squeeze=False, figsize=(2.2 * columns, 2.2 * n))
        pixels = self._pixels(images)
        n_codes = max(len(self.classes or []), 2)
        for row in range(n):
            shown = (pixels[row], *(column_masks[row] for column_masks in masks))
            for column, (image, title) in enumerate(zip(shown, titles)):
                axis = axes[row, column]
                axis.axis("off")
                if column == 0:
                    axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
                else:  # void pixels (IGNORE_INDEX) left blank
                    axis.imshow(np.ma.masked_less(image, 0), cmap="tab20", vmin=0,
                                vmax=n_codes - 1, interpolation="nearest")
                if row == 0:
                    axis.set_title(title, fontsize=9)
        figure.tight_layout()
        return figure


def _masks_at(logits: Tensor, sizes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Per-pixel logits (N, h, w, C) → one (H, W) array of class indices per item at its own
    ``sizes[i]``: the logits resized bilinearly (antialiased when shrinking), then argmax."""
    masks = []
    for item_logits, size in zip(logits.detach().float(), sizes):
        scores = item_logits.permute(2, 0, 1)[None]
        if tuple(scores.shape[-2:]) != tuple(size):
            shrinking = size[0] < scores.shape[-2] or size[1] < scores.shape[-1]
            scores = F.interpolate(scores, size=tuple(size), mode="bilinear",
                                   align_corners=False, antialias=shrinking)
        masks.append(scores[0].argmax(dim=0).cpu().numpy())
    return masks


def _void_hint(code: int, void: int | None) -> str:
    """The end of an out-of-range code's error: where no ``void`` was given, how to mark the
    code as unlabelled pixels (255 borders, as in Pascal VOC) instead of a class."""
    return ("" if void is not None or code < 0 else
            f", or pass void={code} if pixels of code {code} are unlabelled (borders, "
            f"don't-care regions) so that the loss and metrics skip them")


def _warn_unused_codes(seen: Iterable[int]) -> None:
    """Without ``codes=`` the classes are ``0 … largest code``: warn when the largest code
    stands more than ``UNUSED_CODES_WARN`` above the next one the masks hold (0 … 2 and 255,
    Pascal VOC's void border), which makes that many classes that no mask holds."""
    present = sorted(int(code) for code in seen)
    if len(present) < 2 or present[-1] - present[-2] - 1 <= UNUSED_CODES_WARN:
        return
    largest, below = present[-1], present[-2]
    shown = f"0 … {below}" if present[:-1] == list(range(below + 1)) else \
        ", ".join(map(str, present[:-1]))
    warn(f"the masks hold codes {shown} and {largest}, so without codes= they make "
         f"{largest + 1} classes (0 … {largest}), {largest - below - 1} of them in no mask; "
         f"if code {largest} marks unlabelled pixels (a void border, as in Pascal VOC) pass "
         f"void={largest}, else give codes=[...] naming every class")


def _void_ignored(codes: Tensor, void: int | None) -> Tensor:
    """Mask ``codes`` with the ``void`` value (no class) as ``IGNORE_INDEX``, which the loss
    and the metrics skip."""
    return codes if void is None else codes.masked_fill(codes == void, IGNORE_INDEX)


def _mask_paths(images: Sequence[Path], masks: Any) -> tuple[list[Path], list[str]]:
    """Each image's mask path, from a list of paths or a function of the image's path, and
    the name errors give that mask (with its image, and the function that gave it)."""
    if callable(masks):
        source = f"masks={getattr(masks, '__name__', type(masks).__name__)}"
        paths = []
        for image in images:
            try:
                found = masks(image)
            except Exception as error:
                raise ember.DataError(
                    f"{source} raised {type(error).__name__}: {error} for image {image}; the "
                    f"function takes an image's path (a Path) and returns its mask's path: fix "
                    f"it for this image") from error
            if not isinstance(found, (str, os.PathLike)):
                kind = "None" if found is None else f"a value of type {type(found).__name__}"
                hint = (" (masks held in memory go to SegmentationData.from_arrays)"
                        if hasattr(found, "shape") or type(found).__module__.startswith("PIL.")
                        else "")
                raise ember.DataError(
                    f"{source} returned {kind} for image {image}; return the path of the "
                    f"image's mask file (a str or Path){hint}")
            paths.append(Path(found))
        return paths, [f"mask {path} ({source} gave it for image {image})"
                       for image, path in zip(images, paths)]
    if isinstance(masks, (str, os.PathLike)):
        raise ember.DataError(f"masks={str(masks)!r} is one path; give one mask path per image "
                              f"(a list), or a function from an image's path to its mask's")
    listed = list(masks)
    if len(images) != len(listed):
        raise ember.DataError(f"{len(images)} images but {len(listed)} masks; give one mask "
                              f"per image")
    for position, (image, mask) in enumerate(zip(images, listed)):
        if not isinstance(mask, (str, os.PathLike)):
            raise ember.DataError(f"masks[{position}] (for image {image}) is "
                                  f"{type(mask).__name__}, not a path; give the mask file's "
                                  f"path")
    paths = [Path(mask) for mask in listed]
    return paths, [f"mask {path} of image {image}" for image, path in zip(images, paths)]


def load_mask(path: str | Path, size: Sequence[int] | None = None,
              void: int | None = None, *, name: str | None = None) -> Tensor:
    """Read a mask file into an ``int64`` tensor (height, width) of class codes; with ``size``
    it is resized by nearest neighbour. Pixels equal to ``void`` become
    ``ember.metrics.IGNORE_INDEX`` (-100). Colour masks are refused: map colours to codes first.
    A missing, unreadable or colour file is an :class:`ember.DataError` that calls it ``name``
    (default ``mask <path>``; say which image it belongs to).

    Example:
        >>> # load_mask("masks/0001.png").unique() -> tensor([0, 1, 3])
        >>> # load_mask("masks/0001.png", void=255).unique() -> tensor([-100, 0, 1, 3])
    """
    from PIL import Image, UnidentifiedImageError

    name = name or f"mask {path}"
    try:
        with Image.open(path) as image:
            image.load()
            upright = _upright(image)  # as its image is read, so the two still lie together
            mode, array = upright.mode, np.asarray(upright)
    except FileNotFoundError:
        raise ember.DataError(f"{name} does not exist; check the path") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ember.DataError(f"{name} cannot be read (corrupt, truncated, not an image or a "
                              f"folder); delete or replace the file") from None
    if mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
        raise ember.DataError(
            f"{name} is a {mode} image; a mask holds one class code per pixel "
            f"(greyscale, palette or 16-bit PNG): map its colours to codes first")
    codes = torch.from_numpy(array.astype(np.int64))
    codes = _void_ignored(codes, void)
    if size is not None and tuple(codes.shape) != tuple(size):
        codes = F.interpolate(codes[None, None].float(), size=tuple(size),
                              mode="nearest-exact")[0, 0].long()
    return codes


class FileMaskDataset(Dataset):
    """Image and mask files decoded on access: the image converted to ``mode`` and resized
    bilinearly, its mask resized by nearest neighbour.

    Example:
        >>> # FileMaskDataset(["a.png"], ["a_mask.png"], "RGB", (64, 64))[0][1].dtype
        >>> # torch.int64
    """

    def __init__(self, images: Sequence[str | Path], masks: Sequence[str | Path], mode: str,
                 size: Sequence[int], void: int | None = None) -> None:
        self.paths, self.masks = [str(p) for p in images], [str(p) for p in masks]
        self.mode, self.size, self.void = mode, tuple(size), void

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = resize_image(load_image(self.paths[index], self.mode), self.size)
        return image, load_mask(self.masks[index], self.size, self.void,
                                name=f"mask {self.masks[index]} of image {self.paths[index]}")


class UNet(nn.Module):
    """The U-Net pass shared by Ember's segmentation models: ``body`` (a list of stages, each
    halving the resolution or keeping it) records every stage's output; ``head["up"]`` blocks
    upsample and join them deepest first; ``head["out"]`` maps to per-pixel logits, returned
    channels-last (N, H, W, n_out). With ``input_skip`` the input image itself is the last skip.

    Example:
        >>> # class MyUNet(UNet): ...  # set self.body, self.head, self.input_skip
    """

    input_skip = False

    def forward(self, images: Tensor) -> Tensor:
        skips = [images] if self.input_skip else []
        features = images
        for stage in self.body:
            features = stage(features)
            skips.append(features)
        for block, skip in zip(self.head["up"], reversed(skips[:-1])):
            features = F.interpolate(features, size=skip.shape[-2:], mode="bilinear",
                                     align_corners=False)
            features = block(torch.cat([features, skip], dim=1))
        return self.head["out"](features).permute(0, 2, 3, 1)


class CompactUNet(UNet):
    """A small U-Net: an encoder of stride-2 conv blocks (``body``) and a decoder that upsamples
    and joins the skip connections (``head``); returns per-pixel logits channels-last
    (N, H, W, n_out). Two parameter groups, so ``freeze`` trains the decoder alone.

    Example:
        >>> import torch
        >>> CompactUNet(1, 3)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 28, 28, 3])
    """

    def __init__(self, n_channels: int = 3, n_out: int = 2,
                 widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        widths = list(widths)
        encoder = [conv_block(n_channels, widths[0])]
        encoder += [nn.Sequential(conv_block(a, b, stride=2), conv_block(b, b))
                    for a, b in itertools.pairwise(widths)]
        self.body = nn.ModuleList(encoder)
        decoder = [conv_block(b + a, a) for a, b in itertools.pairwise(widths)]
        self.head = nn.ModuleDict({"up": nn.ModuleList(decoder[::-1]),
                                   "out": nn.Conv2d(widths[0], n_out, 1)})

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Encoder, then decoder."""
        return [list(self.body.parameters()), list(self.head.parameters())]


def compact_unet(n_channels: int = 3, n_out: int = 2, widths: Sequence[int] = (16, 32, 64)
                 ) -> CompactUNet:
    """Build a :class:`CompactUNet` (the registered ``compact_unet`` architecture).

    Example:
        >>> compact_unet(1, 2).head["out"].out_channels
        2
    """
    return CompactUNet(n_channels, n_out, widths)


class ResNetUNet(UNet):
    """A U-Net whose encoder is a torchvision ResNet body (stem, then ``layer1`` … ``layer4``),
    optionally pretrained, and whose decoder upsamples through one skip connection per stage
    back to the input size. Returns per-pixel logits channels-last (N, H, W, n_out).

    Parameter groups for discriminative learning rates and freezing: early encoder (stem,
    layer1, layer2), late encoder (layer3, layer4), decoder; ``learn.freeze()`` trains the
    decoder alone, as fine-tuning a pretrained body wants.

    Example:
        >>> import torch
        >>> ResNetUNet("resnet18", n_channels=1, n_out=3)(torch.zeros(2, 1, 64, 48)).shape
        torch.Size([2, 64, 48, 3])
    """

    input_skip = True  # the last decoder block sees the full-resolution image

    def __init__(self, arch: str = "resnet18", n_channels: int = 3, n_out: int = 2,
                 pretrained: Any = None) -> None:
        super().__init__()
        if not arch.startswith("resnet"):
            raise ember.DataError(f"ResNetUNet needs a torchvision ResNet (resnet18, resnet34, "
                                  f"resnet50, …), not {arch!r}")
        body = torchvision_model(arch, n_out=1, n_channels=n_channels,
                                 pretrained=pretrained).body
        stem = nn.Sequential(body[0], body[1], body[2])  # conv1, bn1, relu: 1/2 resolution
        stages = [stem, nn.Sequential(body[3], body[4]), body[5], body[6], body[7]]
        self.body = nn.ModuleList(stages)
        with torch.no_grad():
            widths = [n_channels]
            features = torch.zeros(1, n_channels, 64, 64)
            self.body.eval()
            for stage in self.body:
                features = stage(features)
                widths.append(int(features.shape[1]))
            self.body.train()
        decoder = []
        width = widths[-1]
        for skip in reversed(widths[1:-1]):
            out = max(skip, 32)
            decoder.append(nn.Sequential(conv_block(width + skip, out), conv_block(out, out)))
            width = out
        decoder.append(conv_block(width + n_channels, 32))
        self.head = nn.ModuleDict({"up": nn.ModuleList(decoder),
                                   "out": nn.Conv2d(32, n_out, 1)})

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Early encoder, late encoder, decoder."""
        early = [p for stage in self.body[:3] for p in stage.parameters()]
        late = [p for stage in self.body[3:] for p in stage.parameters()]
        return [early, late, list(self.head.parameters())]


def resnet_unet(arch: str = "resnet18", n_channels: int = 3, n_out: int = 2,
                pretrained: Any = None) -> ResNetUNet:
    """Build a :class:`ResNetUNet` (the registered ``resnet_unet`` architecture);
    ``pretrained`` as for :func:`~ember_vision.torchvision_model` (a local state-dict file, or
    a torchvision weights name, which downloads on first use).

    Example:
        >>> resnet_unet("resnet18", n_channels=3, n_out=4).head["out"].out_channels
        4
    """
    return ResNetUNet(arch, n_channels, n_out, pretrained)
