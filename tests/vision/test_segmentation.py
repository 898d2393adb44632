"""Segmentation: masks from real Fashion-MNIST images (each garment's pixels labelled with its
class, background 0), a compact U-Net, mask-aware augmentation, export round trip."""

from __future__ import annotations

import io
import warnings

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
    learn.fit_one_cycle(6, 1e-2)
    targets = torch.cat([yb for _, yb in segmentation_data.valid_dl])
    background_share = float((targets == 0).float().mean())
    metrics = learn.validate()
    assert metrics["accuracy"] > background_share + 0.1, (metrics, background_share)
    assert metrics["dice"] > 0.25, metrics  # 11 codes: background and 10 garment classes
    _, (test_x, _) = fashion
    items = list(test_x[:6])
    predictor = ember.load(learn.export(tmp_path / "masks.ember"))
    expected = learn.predict_batch(items)
    assert expected[0].shape == (28, 28)
    assert all(np.array_equal(a, b) for a, b in zip(predictor.predict_batch(items), expected))
    figure = learn.show_results(2)
    assert len([a for a in figure.axes if a.images]) == 6


def test_a_mask_model_refuses_probs_and_says_what_it_gives(segmentation_data, fashion):
    learn = ember.learner(segmentation_data, quiet=True)
    _, (test_x, _) = fashion
    with pytest.raises(TypeError, match=r"segmentation predicts a mask .*get_preds\(\)"):
        learn.predict(test_x[0], probs=True)
    assert segmentation_data.prediction_options() == {}
    assert learn.predict(test_x[0], probs=False).shape == (28, 28)


def write_pairs(root, images, masks, palette=False):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray(image).save(root / "images" / f"{index:03d}.png")
        mask_image = Image.fromarray(mask.astype(np.uint8), "L")
        if palette:
            mask_image = mask_image.convert("P")
        mask_image.save(root / "masks" / f"{index:03d}.png")


def test_from_folder_starting_with_a_tilde_is_in_the_home_folder(fashion, tmp_path,
                                                                  monkeypatch):
    # "~/set" was read as a folder named "~" in the working directory
    (x, y), _ = fashion
    write_pairs(tmp_path / "set", x[:20], garment_masks(x[:20], y[:20]))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "set")
    data = SegmentationData.from_folder("~/set", codes=CODES, bs=8)
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 20


def test_hidden_files_beside_images_and_masks_are_neither(fashion, tmp_path):
    # macOS's "._0001.png" resource files were read as images (and masks): from_folder
    # stopped on "image ._0.png cannot be read", where class folders leave them out
    (x, y), _ = fashion
    write_pairs(tmp_path / "set", x[:20], garment_masks(x[:20], y[:20]))
    for folder in ("images", "masks"):
        (tmp_path / "set" / folder / "._0.png").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    (tmp_path / "set" / "images" / "._extra.png").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    data = SegmentationData.from_folder(tmp_path / "set", codes=CODES, bs=8)
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 20


def test_masks_from_files_match_the_arrays_exactly(fashion, tmp_path):
    (x, y), _ = fashion
    masks = garment_masks(x[:40], y[:40])
    write_pairs(tmp_path / "set", x[:40], masks, palette=True)
    from_files = SegmentationData.from_folder(tmp_path / "set", codes=CODES, bs=8)
    from_arrays = SegmentationData.from_arrays(x[:40], masks, codes=CODES, bs=8)
    assert from_files.classes == CODES and from_files.size == (28, 28)
    files_x, files_y = from_files.one_batch("valid")
    arrays_x, arrays_y = from_arrays.one_batch("valid")
    assert torch.equal(files_y, arrays_y) and files_y.dtype == torch.long
    assert torch.allclose(files_x, arrays_x, atol=1e-6)
    for index in range(len(from_arrays.train_dl.dataset)):
        image, mask = from_files.train_dl.dataset[index]
        assert torch.equal(image, from_arrays.train_dl.dataset[index][0])
        assert torch.equal(mask, from_arrays.train_dl.dataset[index][1])
    resized = SegmentationData.from_folder(tmp_path / "set", codes=CODES, size=(56, 56), bs=8)
    big_x, big_y = resized.one_batch("valid")
    assert big_x.shape == (8, 1, 56, 56) and big_y.shape == (8, 56, 56)
    small_y = from_files.one_batch("valid")[1]
    assert torch.equal(big_y[:, ::2, ::2], small_y)  # nearest neighbour: codes stay codes


def test_bad_mask_files_are_named(fashion, tmp_path):
    from PIL import Image

    (x, y), _ = fashion
    write_pairs(tmp_path / "set", x[:6], garment_masks(x[:6], y[:6]))
    root = tmp_path / "set"
    with pytest.raises(ember.DataError, match=r"masks[/\\]00\d.png holds code \d+, outside"):
        SegmentationData.from_folder(root, codes=["background", "object"])
    Image.new("RGB", (28, 28)).save(root / "masks" / "002.png")
    with pytest.raises(ember.DataError, match=r"002.png is a RGB image.*map its colours"):
        SegmentationData.from_folder(root)
    Image.new("L", (14, 14)).save(root / "masks" / "002.png")
    with pytest.raises(ember.DataError, match=r"mask .*002.png is 14x14 but its image"):
        SegmentationData.from_folder(root)
    (root / "masks" / "002.png").unlink()
    with pytest.raises(ember.DataError, match=r"images[/\\]002.png has no mask"):
        SegmentationData.from_folder(root)


def test_resnet_unet_learns_from_mask_files_with_dice(fashion, tmp_path):
    from ember_vision import ResNetUNet

    (x, _), _ = fashion
    images = np.pad(x[:64], ((0, 0), (2, 2), (2, 2)))  # 32x32: five halvings leave 1x1
    masks = (images > 40).astype(np.int64)
    write_pairs(tmp_path / "set", images, masks)
    data = SegmentationData.from_folder(tmp_path / "set", codes=["background", "garment"],
                                        bs=16)
    ember.seed(0)
    learn = ember.learner(data, model=ember.create_model("resnet_unet", n_channels=1, n_out=2),
                          metrics=[ember.Accuracy(), ember.Dice()], quiet=True)
    assert isinstance(learn.model, ResNetUNet) and len(learn.model.param_groups()) == 3
    before = learn.validate()["dice"]
    learn.fit_one_cycle(2, 3e-3)
    after = learn.validate()
    assert after["dice"] > 0.8 and after["dice"] > before + 0.2, (before, after)
    assert learn.predict(str(tmp_path / "set" / "images" / "000.png")).shape == (32, 32)


def test_void_mask_pixels_are_skipped_by_loss_accuracy_and_dice(fashion, tmp_path):
    from ember.metrics import IGNORE_INDEX

    (x, _), _ = fashion
    masks = (x[:20] > 40).astype(np.int64)
    masks[(x[:20] > 10) & (x[:20] <= 40)] = 255  # the garment's faint edge: unlabelled
    write_pairs(tmp_path / "set", x[:20], masks)
    codes = ["background", "garment"]
    from_files = SegmentationData.from_folder(tmp_path / "set", codes=codes, void=255, bs=32)
    from_arrays = SegmentationData.from_arrays(x[:20], masks, codes=codes, void=255, bs=32)
    files_y, arrays_y = from_files.one_batch("valid")[1], from_arrays.one_batch("valid")[1]
    assert from_files.classes == from_arrays.classes == codes and from_files.n_out == 2
    assert torch.equal(files_y, arrays_y) and (files_y == IGNORE_INDEX).any()
    assert set(files_y.unique().tolist()) == {IGNORE_INDEX, 0, 1}
    ember.seed(0)
    learn = ember.learner(from_files, quiet=True)
    outputs, targets = learn.get_preds(activation=False)  # the 4 validation masks: one batch
    kept = targets != IGNORE_INDEX
    scores = learn.validate()
    accuracy = (outputs.argmax(-1)[kept] == targets[kept]).float().mean()
    assert scores["accuracy"] == pytest.approx(float(accuracy), abs=1e-6)
    loss = torch.nn.functional.cross_entropy(outputs[kept], targets[kept])
    assert scores["valid_loss"] == pytest.approx(float(loss), rel=1e-4)
    dice = ember.Dice()
    dice.update(outputs[kept], targets[kept])
    assert scores["dice"] == pytest.approx(dice.compute(), abs=1e-6)


def _untrained_segmenter(fashion, tmp_path):
    """A compact U-Net, untrained, on 28x28 garment masks; its learner and exported predictor."""
    (x, y), _ = fashion
    data = SegmentationData.from_arrays(x[:32], garment_masks(x[:32], y[:32]), codes=CODES,
                                        bs=16)
    ember.seed(0)
    learn = ember.learner(data, quiet=True, path=tmp_path)
    return learn, ember.load(learn.export("masks"))


def test_predicted_masks_come_back_at_each_images_own_size(fashion, tmp_path):
    # predict returned the mask at the training size (28x28) whatever the image's size, so a
    # mask could not be laid over the photo it was predicted for
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from ember.serve import create_app

    learn, predictor = _untrained_segmenter(fashion, tmp_path)
    _, (test_x, _) = fashion
    wide = np.asarray(Image.fromarray(test_x[0]).resize((40, 30)))  # 30 rows, 40 columns
    Image.fromarray(test_x[1]).resize((36, 48)).save(tmp_path / "tall.png")
    items = [wide, str(tmp_path / "tall.png"), Image.fromarray(test_x[2]).resize((20, 14)),
             torch.from_numpy(test_x[3]), test_x[4]]
    sizes = [(30, 40), (48, 36), (14, 20), (28, 28), (28, 28)]
    got = learn.predict_batch(items)
    assert [mask.shape for mask in got] == sizes
    assert all(mask.dtype == np.int64 for mask in got)
    for item, mask, size in zip(items, got, sizes):  # logits resized bilinearly, then argmax
        with torch.no_grad():
            logits = learn.model.eval()(learn.data.encode([item])[0])
        expected = torch.nn.functional.interpolate(
            logits.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False,
            antialias=min(size) < 28).argmax(1)[0].numpy()  # antialiased when shrinking
        assert np.array_equal(mask, expected)
    assert np.array_equal(learn.predict(items[0]), got[0])
    exported = predictor.predict_batch(items)
    assert all(np.array_equal(a, b) for a, b in zip(exported, got))
    buffer = io.BytesIO()
    Image.fromarray(wide).save(buffer, format="PNG")
    response = TestClient(create_app(predictor)).post(
        "/predict", json={"inputs": [base64.b64encode(buffer.getvalue()).decode()]})
    assert response.status_code == 200
    assert np.array_equal(np.asarray(response.json()["predictions"][0]), got[0])


def test_masks_given_by_a_function_and_its_mistakes_name_the_image(fashion, tmp_path):
    # masks= took only a list: a function (CamVid's "<name>_P.png" labels, fastai's
    # label_func) ended in a bare TypeError, and a function returning a wrong path in a trace
    from PIL import Image

    (x, y), _ = fashion
    masks = garment_masks(x[:12], y[:12])
    write_pairs(tmp_path / "paired", x[:12], masks)
    root = tmp_path / "camvid"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for index in range(12):
        Image.fromarray(x[index]).save(root / "images" / f"{index:03d}.png")
        Image.fromarray(masks[index].astype(np.uint8)).save(root / "labels" / f"{index:03d}_P.png")

    def label_of(image):
        return root / "labels" / f"{image.stem}_P.png"

    paired = SegmentationData.from_folder(tmp_path / "paired", codes=CODES, bs=4)
    by_function = SegmentationData.from_folder(root, masks=label_of, codes=CODES, bs=4)
    images = sorted((root / "images").iterdir())
    from_files = SegmentationData.from_files(images, label_of, codes=CODES, bs=4)
    for data in (by_function, from_files):
        assert torch.equal(data.one_batch("valid")[1], paired.one_batch("valid")[1])
    (root / "labels" / "not-an-image_P.png").write_bytes(b"no pixels here")
    Image.new("L", (14, 14)).save(root / "labels" / "small_P.png")
    gave = r" \(masks=<lambda> gave it for image .*images[/\\]000.png\)"
    cases = [
        (lambda image: root / "labels" / f"{image.stem}.png", r"000.png" + gave +
         " does not exist"),
        (lambda image: root / "labels" / "not-an-image_P.png", r"not-an-image_P.png" + gave +
         " cannot be read"),
        (lambda image: None, r"masks=<lambda> returned None for image .*000.png; return the "
                             r"path of the image's mask file"),
        (lambda image: masks[0], r"masks=<lambda> returned a value of type ndarray for "
                                 r"image .*000.png; return the path.*from_arrays"),
        (lambda image: {"000": "a.png"}[image.stem], r"masks=<lambda> raised KeyError: '001' "
                                                     r"for image .*001.png"),
        (lambda image: root / "labels" / "small_P.png",
         r"mask .*small_P.png is 14x14 but its image .*000.png is 28x28"),
    ]
    for function, message in cases:
        with pytest.raises(ember.DataError, match=message):
            SegmentationData.from_files(images, function, codes=CODES)
        with pytest.raises(ember.DataError, match=message):
            SegmentationData.from_folder(root, masks=function, codes=CODES)


def test_a_void_border_out_of_range_says_how_to_mark_it_void(fashion, tmp_path):
    # Pascal VOC-style masks mark object borders 255: the error said only "fix the mask or give
    # more codes", never that void=255 makes the loss and metrics skip those pixels
    (x, y), _ = fashion
    masks = garment_masks(x[:6], y[:6]) % 2
    masks[:, 0, :] = 255  # an unlabelled border row
    with pytest.raises(ember.DataError, match=r"mask 0 holds code 255, outside 0 … 1 .*"
                                              r"pass void=255 if pixels of code 255"):
        SegmentationData.from_arrays(x[:6], masks, codes=["background", "object"])
    write_pairs(tmp_path / "set", x[:6], masks)
    with pytest.raises(ember.DataError, match=r"000.png holds code 255, .*pass void=255"):
        SegmentationData.from_folder(tmp_path / "set", codes=["background", "object"])
    data = SegmentationData.from_folder(tmp_path / "set", codes=["background", "object"],
                                        void=255)
    assert data.classes == ["background", "object"]
    assert (data.one_batch("valid")[1][:, 0, :] == ember.metrics.IGNORE_INDEX).all()
    with pytest.raises(ember.DataError) as refused:  # a code above the codes, void given
        SegmentationData.from_arrays(x[:6], masks + 1, codes=["background", "object"],
                                     void=255)
    assert "void=" not in str(refused.value)


def test_masks_with_a_void_border_and_no_codes_warn_about_the_unused_classes(fashion, tmp_path):
    # codes 0, 1, 2 and a 255 border read without codes= made 256 classes, 252 of them in no
    # mask, silently
    (x, y), _ = fashion
    masks = garment_masks(x[:6], y[:6]) % 3
    masks[:, 0, :] = 255
    message = r"codes 0 … 2 and 255.*256 classes.*void=255.*codes="
    with pytest.warns(ember.EmberWarning, match=message):
        data = SegmentationData.from_arrays(x[:6], masks)
    assert len(data.classes) == 256  # a warning, the classes are unchanged
    write_pairs(tmp_path / "set", x[:6], masks)
    with pytest.warns(ember.EmberWarning, match=message):
        SegmentationData.from_folder(tmp_path / "set")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SegmentationData.from_folder(tmp_path / "set", void=255).classes == [0, 1, 2]
        assert SegmentationData.from_arrays(x[:6], masks, void=255).classes == [0, 1, 2]
        dense = np.arange(6)[:, None, None] * np.ones((6, 28, 28), np.int64)  # codes 0 … 5
        assert SegmentationData.from_arrays(x[:6], dense).classes == list(range(6))
        sparse = masks.copy()
        sparse[sparse == 255] = 12  # 3 … 11 unused: a gap of 9 is left alone
        assert len(SegmentationData.from_arrays(x[:6], sparse).classes) == 13


@pytest.mark.parametrize("n", [0, -1])
def test_showing_no_whole_positive_number_of_masks_is_an_error(segmentation_data, n):
    # -1 once drew every image of the batch but the last; 0 failed inside matplotlib
    with pytest.raises(ember.DataError, match="number of images to show"):
        segmentation_data.show_batch(n)
    images, masks = segmentation_data.one_batch("valid")[:2]
    with pytest.raises(ember.DataError, match="number of images to show"):
        segmentation_data.show_results((images, masks), list(masks.numpy()), n=n)


def test_show_batch_draws_each_image_beside_its_mask_and_augments_both(segmentation_data):
    import matplotlib.pyplot as plt

    figure = segmentation_data.show_batch(3, split="valid")  # in order: comparable
    plt.close(figure)
    shown = [axis.images[0].get_array() for axis in figure.axes]
    assert len(shown) == 6 and figure.axes[0].get_title() == "image"
    assert figure.axes[1].get_title() == "mask"  # a column title, not a mask's numpy repr
    yb = segmentation_data.one_batch("valid")[1]
    for row in range(3):
        assert np.array_equal(np.asarray(shown[2 * row + 1]), yb[row].numpy())
    torch.manual_seed(0)
    figure = segmentation_data.show_batch(4, split="valid", augment=True)
    images = [np.asarray(axis.images[0].get_array()) for axis in figure.axes[::2]]
    masks = [np.asarray(axis.images[0].get_array()) for axis in figure.axes[1::2]]
    assert any(not np.array_equal(mask, yb[row].numpy()) for row, mask in enumerate(masks))
    for image, mask in zip(images, masks):  # the garment's pixels still carry its mask
        assert ((image > 40 / 255) == (mask > 0)).mean() > 0.9
    figure.savefig(io.BytesIO(), format="png")
