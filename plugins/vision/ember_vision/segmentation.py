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
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import ember
from ember_vision.data import ArrayImageDataset, ImageCollate, ImageData, _channel_stats
from ember_vision.data import _images_to_tensor as images_to_tensor
from ember_vision.models import conv_block

__all__ = ["CompactUNet", "SegmentationData", "compact_unet"]


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
                    num_workers: int = 0, augment: Any = True) -> SegmentationData:
        """Images (N, H, W[, C]) ``uint8`` and masks (N, H, W) of integer codes indexing
        ``codes`` (default: ``0 … max``). A seeded ``valid_pct`` of the items is held out.

        Example:
            >>> # data = SegmentationData.from_arrays(images, masks, codes=["bg", "shoe"])
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
        names = list(codes) if codes is not None else list(range(int(mask_tensor.max()) + 1))
        bad = (mask_tensor < 0) | (mask_tensor >= len(names))
        if bad.any():
            item = int(bad.flatten(1).any(1).nonzero()[0])
            raise ember.DataError(f"mask {item} holds codes outside 0 … {len(names) - 1} "
                                  f"(codes={names}); fix the mask or give more codes")
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

    def decode(self, outputs: Tensor, threshold: float = 0.5) -> list[Any]:
        """Per-pixel logits (N, H, W, C) → one (H, W) array of class indices per image.

        Example:
            >>> # data.decode(model(xb))[0].shape -> (H, W)
        """
        return list(outputs.detach().float().cpu().argmax(dim=-1).numpy())

    def decode_targets(self, targets: Tensor) -> list[Any]:
        """Masks of a batch as (H, W) arrays.

        Example:
            >>> # data.decode_targets(yb)[0].shape -> (H, W)
        """
        return list(targets.detach().cpu().numpy())

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 4) -> Any:
        """A figure with one row per image: the image, its mask, the predicted mask.

        Example:
            >>> # learn.show_results(4).savefig("masks.png")
        """
        import matplotlib.pyplot as plt

        n = min(n, len(predictions))
        figure, axes = plt.subplots(n, 3, squeeze=False, figsize=(6.6, 2.2 * n))
        pixels = self._pixels(batch[0][:n])
        targets = self.decode_targets(batch[-1][:n])
        n_codes = max(len(self.classes or []), 2)
        for row in range(n):
            shown = (pixels[row], targets[row], predictions[row])
            for column, (image, title) in enumerate(zip(shown, ("image", "mask", "predicted"))):
                axis = axes[row, column]
                axis.axis("off")
                if column == 0:
                    axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
                else:
                    axis.imshow(image, cmap="tab20", vmin=0, vmax=n_codes - 1,
                                interpolation="nearest")
                if row == 0:
                    axis.set_title(title, fontsize=9)
        figure.tight_layout()
        return figure


class CompactUNet(nn.Module):
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

    def forward(self, images: Tensor) -> Tensor:
        skips = []
        features = images
        for block in self.body:
            features = block(features)
            skips.append(features)
        for block, skip in zip(self.head["up"], reversed(skips[:-1])):
            features = F.interpolate(features, size=skip.shape[-2:], mode="bilinear",
                                     align_corners=False)
            features = block(torch.cat([features, skip], dim=1))
        return self.head["out"](features).permute(0, 2, 3, 1)

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
