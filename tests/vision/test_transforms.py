"""Decoding, conversion, resizing and batch augmentation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

import ember
from ember_vision import ImageData, load_mask
from ember_vision.transforms import (
    BatchAugment,
    RandomBatchAugment,
    convert_mode,
    load_image,
    resize_image,
    to_image_tensor,
)


def test_every_raw_form_gives_the_same_uint8_image(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    expected = torch.from_numpy(pixels).permute(2, 0, 1)
    for item in (pixels, expected, Image.fromarray(pixels), tmp_path / "x.png",
                 str(tmp_path / "x.png"), expected.float() / 255):
        image = to_image_tensor(item)
        assert image.dtype == torch.uint8
        assert torch.equal(image, expected), type(item)


def test_pil_images_of_any_mode_read_like_their_files(tmp_path, fashion):
    (images, _), _ = fashion
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    pictures = {"palette": Image.fromarray(rgb).quantize(16),
                "bilevel": Image.fromarray(images[0]).convert("1"),
                "grey_alpha": Image.fromarray(images[0]).convert("LA")}
    for name, picture in pictures.items():
        picture.save(tmp_path / f"{name}.png")
        assert torch.equal(to_image_tensor(picture), load_image(tmp_path / f"{name}.png")), name
    palette = to_image_tensor(pictures["palette"])  # colours, not palette indices
    assert torch.equal(palette, to_image_tensor(np.asarray(pictures["palette"].convert("RGB"))))
    assert set(to_image_tensor(pictures["bilevel"]).unique().tolist()) == {0, 255}
    cmyk = Image.fromarray(rgb).convert("CMYK")  # colours, not C, M, Y read as R, G, B
    assert torch.equal(to_image_tensor(cmyk), to_image_tensor(np.asarray(cmyk.convert("RGB"))))
    assert ImageData.from_arrays([pictures["palette"]] * 4, [0, 1] * 2).mode == "RGB"


def test_a_photo_with_an_exif_orientation_is_read_upright_as_viewers_show_it(tmp_path):
    # a phone's portrait photo is stored sideways with an EXIF orientation tag that every
    # viewer (and a browser's canvas) applies: the model saw it on its side, its header size
    # disagreed with the upright images beside it, and a mask predicted for it did not lie
    # over the image as the user sees it
    rng = np.random.default_rng(0)
    upright = rng.integers(0, 256, (12, 8, 3), dtype=np.uint8)  # 12 high, 8 wide
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 8 high, 12 wide
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    stored.save(tmp_path / "portrait.png", exif=exif)
    Image.fromarray(upright).save(tmp_path / "plain.png")
    assert torch.equal(load_image(tmp_path / "portrait.png"), load_image(tmp_path / "plain.png"))
    assert torch.equal(to_image_tensor(Image.open(tmp_path / "portrait.png")),
                       load_image(tmp_path / "plain.png"))
    data = ImageData.from_files([tmp_path / "portrait.png", tmp_path / "plain.png"] * 2,
                                [0, 1] * 2, bs=2)  # one size: no size= needed
    assert data.size == (12, 8)
    codes = rng.integers(0, 3, (12, 8), dtype=np.uint8)  # a mask stored the same way
    mask = Image.fromarray(codes).transpose(Image.Transpose.ROTATE_90)
    mask.save(tmp_path / "portrait_mask.png", exif=exif)
    assert torch.equal(load_mask(tmp_path / "portrait_mask.png"), torch.from_numpy(codes).long())


def test_bad_raw_items_get_clear_errors(tmp_path):
    with pytest.raises(ember.DataError, match=r"\[0, 1\]"):
        to_image_tensor(np.full((4, 4), 3.5))
    with pytest.raises(ember.DataError, match="dict"):
        to_image_tensor({"not": "an image"})
    # a channels-first array was read as 28 channels of a 3-pixel-high image, and predict
    # then said "item 0 has 28 channels; cannot convert it to mode 'L'"
    for first in (1, 3):
        with pytest.raises(ember.DataError, match=r"item 0: .*\(H, W, C\).*channels first.*"
                                                  r"np\.moveaxis"):
            to_image_tensor(np.zeros((first, 28, 28), np.uint8), "item 0")
    # the twin for tensors: a channels-last tensor (torch.from_numpy of an (H, W, C) array)
    # was called "not one image" and sent to predict_batch, though it is one image
    for last in (1, 3, 4):
        with pytest.raises(ember.DataError, match=r"item 0: .*\(C, H, W\).*channels last.*"
                                                  r"permute\(2, 0, 1\)"):
            to_image_tensor(torch.zeros(28, 28, last, dtype=torch.uint8), "item 0")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ember.DataError, match=r"broken\.png cannot be read"):
        load_image(tmp_path / "broken.png")


def test_convert_mode_and_deterministic_resize():
    grey = torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8)
    rgb = convert_mode(grey, "RGB")
    assert rgb.shape == (3, 8, 8) and torch.equal(rgb[1], grey[0])
    assert torch.equal(convert_mode(rgb, "L"), grey)  # equal channels → same grey
    assert convert_mode(torch.zeros(4, 2, 2, dtype=torch.uint8), "RGB").shape == (3, 2, 2)
    big = torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8)
    assert torch.equal(resize_image(big, (20, 20)), resize_image(big, (20, 20)))
    assert resize_image(big, (20, 10)).shape == (3, 20, 10)


def test_random_batch_augment_draws_per_image_and_keeps_range():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 24, 24)
    batch = image.expand(8, -1, -1, -1).contiguous()
    out = RandomBatchAugment()(batch)
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    differences = {round(float((out[0] - out[i]).abs().mean()), 4) for i in range(1, 8)}
    assert len(differences) > 1 and max(differences) > 0.01  # each image its own draw


def test_flip_only_augment_flips_some_images_exactly():
    torch.manual_seed(1)
    batch = torch.rand(32, 1, 10, 10)
    flip = RandomBatchAugment(max_rotate=0, max_translate=0, scale=(1, 1), min_crop=1.0,
                              lighting=0)
    out = flip(batch)
    same = torch.isclose(out, batch, atol=1e-5).flatten(1).all(1)
    flipped = torch.isclose(out, batch.flip(-1), atol=1e-5).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 4 < int(flipped.sum()) < 28


class _Spy(ember.Callback):
    order = ember.Order.DEFAULT

    def __init__(self):
        self.train, self.valid = [], []

    def before_batch(self):
        (self.train if self.learn.training else self.valid).append(self.learn.xb[0].clone())


def test_batch_augment_changes_training_batches_only(fashion):
    (x, y), _ = fashion
    data = ImageData.from_arrays(x[:128], y[:128], bs=32, augment=False)
    spy = _Spy()
    learn = ember.learner(data, cbs=[BatchAugment(), spy])
    learn.fit(1, 1e-3)
    valid_batch = data.one_batch("valid")[0]
    assert torch.equal(spy.valid[0], valid_batch)  # validation untouched
    raw_train = torch.cat([xb for xb, _ in data.train_dl])
    assert spy.train[0].shape == (32, 1, 28, 28)
    # augmented batches are not rows of the raw training set
    assert not any(torch.equal(spy.train[0][0], row) for row in raw_train)


def test_v2_transforms_plug_in_per_image():
    augment = BatchAugment(v2.RandomHorizontalFlip(1.0), mean=[0.5], std=[0.25])
    assert augment.per_item
    batch = torch.randn(4, 1, 6, 6)
    assert torch.allclose(augment.augment(batch.clamp(-2, 2)),
                          batch.clamp(-2, 2).flip(-1), atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 28, 28), (28, 28, 7)])
def test_an_array_that_is_not_one_image_is_refused_with_what_to_do(shape):
    """A stack of images given to predict is not read as one image with 28 channels."""
    expected = rf"item 0 has shape {re.escape(str(shape))}: not one image.*predict_batch"
    with pytest.raises(ember.DataError, match=expected):
        to_image_tensor(np.zeros(shape, np.uint8), "item 0")
    with pytest.raises(ember.DataError, match="not one image"):
        to_image_tensor(torch.zeros(shape[::-1], dtype=torch.uint8), "item 0")


def test_a_bilevel_image_as_a_boolean_array_reads_as_its_file_does(tmp_path):
    """NumPy gives a mode "1" image as booleans: True is white (255), as PIL reads the file,
    not 1 (nearly black)."""
    pixels = np.random.default_rng(0).integers(0, 2, (6, 9)).astype(bool)
    Image.fromarray(pixels).save(tmp_path / "bilevel.png")
    from_file = load_image(tmp_path / "bilevel.png")
    assert from_file.max().item() == 255
    array = np.asarray(Image.open(tmp_path / "bilevel.png"))
    assert array.dtype == bool
    assert torch.equal(to_image_tensor(array), from_file)
    assert torch.equal(to_image_tensor(torch.from_numpy(pixels)), from_file)
    data = ImageData.from_arrays(np.stack([pixels] * 4), [0, 1] * 2, valid_pct=0.5)
    assert data.train_dl.dataset.images.max().item() == 255
