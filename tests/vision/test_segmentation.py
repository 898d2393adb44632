"""Segmentation: masks from real Fashion-MNIST images (each garment's pixels labelled with its
class, background 0), a compact U-Net, mask-aware augmentation, export round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember_vision import FASHION_MNIST_CLASSES, CompactUNet, SegmentationData
from ember_vision.transforms import RandomBatchAugment

CODES = ["background", *FASHION_MNIST_CLASSES]


def garment_masks(images, labels):
    return np.where(images > 40, labels[:, None, None] + 1, 0).astype(np.int64)


@pytest.fixture(scope="module")
def segmentation_data(fashion):
    (x, y), _ = fashion
    return SegmentationData.from_arrays(x[:400], garment_masks(x[:400], y[:400]), codes=CODES,
                                        bs=32)


def test_segmentation_data_shapes_and_bad_masks(segmentation_data, fashion):
    xb, yb = segmentation_data.one_batch()
    assert xb.shape == (32, 1, 28, 28) and yb.shape == (32, 28, 28) and yb.dtype == torch.long
    assert segmentation_data.n_out == 11 and segmentation_data.classes == CODES
    (x, y), _ = fashion
    with pytest.raises(ember.DataError, match="outside 0"):
        SegmentationData.from_arrays(x[:10], garment_masks(x[:10], y[:10]), codes=["a", "b"])
    with pytest.raises(ember.DataError, match="one mask pixel per image pixel"):
        SegmentationData.from_arrays(x[:10], np.zeros((10, 14, 14), np.int64))


def test_masks_move_with_their_images():
    torch.manual_seed(0)
    images = torch.rand(16, 1, 12, 12)
    masks = (images[:, 0] > 0.5).long()
    flip = RandomBatchAugment(max_rotate=0, max_translate=0, scale=(1, 1), min_crop=1.0,
                              lighting=0)
    out_images, out_masks = flip(images, masks)
    flipped = torch.isclose(out_images, images.flip(-1), atol=1e-5).flatten(1).all(1)
    for index in range(16):
        expected = masks[index].flip(-1) if flipped[index] else masks[index]
        assert torch.equal(out_masks[index], expected)
    squares = torch.zeros(16, 1, 24, 24)
    squares[:, :, 6:18, 4:14] = 1.0
    warped_images, warped_masks = RandomBatchAugment(lighting=0)(squares, squares[:, 0].long())
    agreement = (warped_masks == (warped_images[:, 0] > 0.5).long()).float().mean()
    assert agreement > 0.97 and not torch.equal(warped_masks, squares[:, 0].long())


def test_unet_learns_garment_masks_and_exports(segmentation_data, fashion, tmp_path):
    ember.seed(0)
    learn = ember.learner(segmentation_data, quiet=True)
    assert isinstance(learn.model, CompactUNet)
    learn.fit_one_cycle(3, 1e-2)
    targets = torch.cat([yb for _, yb in segmentation_data.valid_dl])
    background_share = float((targets == 0).float().mean())
    accuracy = learn.validate()["accuracy"]
    assert accuracy > background_share + 0.1, (accuracy, background_share)
    _, (test_x, _) = fashion
    items = list(test_x[:6])
    predictor = ember.load(learn.export(tmp_path / "masks.ember"))
    expected = learn.predict_batch(items)
    assert expected[0].shape == (28, 28)
    assert all(np.array_equal(a, b) for a, b in zip(predictor.predict_batch(items), expected))
    figure = learn.show_results(2)
    assert len([a for a in figure.axes if a.images]) == 6
