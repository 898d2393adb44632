"""ImageData: construction from arrays, folders and data frames; splits, statistics, targets,
encoding replay, state round trip, figures and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData, encode_targets, load_image


def test_from_arrays_splits_seeded_and_reproducibly(fashion):
    (x, y), _ = fashion
    first = ImageData.from_arrays(x, y, valid_pct=0.2, seed=3, classes=FASHION_MNIST_CLASSES)
    again = ImageData.from_arrays(x, y, valid_pct=0.2, seed=3, classes=FASHION_MNIST_CLASSES)
    other = ImageData.from_arrays(x, y, valid_pct=0.2, seed=4, classes=FASHION_MNIST_CLASSES)
    assert len(first.train_dl.dataset) == 800 and len(first.valid_dl.dataset) == 200
    assert torch.equal(first.valid_dl.dataset.images, again.valid_dl.dataset.images)
    assert not torch.equal(first.valid_dl.dataset.images, other.valid_dl.dataset.images)
    assert first.classes == FASHION_MNIST_CLASSES and first.target_kind == "single_label"
    assert first.mode == "L" and first.size == (28, 28) and first.n_out == 10
    xb, yb = first.one_batch("valid")
    assert xb.dtype == torch.float32 and xb.shape == (128, 1, 28, 28)
    assert yb.dtype == torch.long


def test_statistics_come_from_the_training_split_only(fashion):
    (x, y), (test_x, test_y) = fashion
    data = ImageData.from_arrays(x, y, valid=(test_x, test_y), test=(test_x, test_y))
    bright = ImageData.from_arrays(x, y, valid=(np.full_like(test_x, 255), test_y),
                                   test=(np.full_like(test_x, 255), test_y))
    assert data.mean == bright.mean and data.std == bright.std
    expected = x.astype(np.float64).mean() / 255
    assert data.mean[0] == pytest.approx(expected, abs=1e-5)
    train_batches = torch.cat([xb for xb, _ in data.train_dl])
    assert abs(float(train_batches.mean())) < 0.02 and abs(float(train_batches.std()) - 1) < 0.02
    assert len(data.test_dl.dataset) == 300


def test_encode_replays_validation_preprocessing_exactly(fashion, tmp_path):
    (x, y), _ = fashion
    data = ImageData.from_arrays(x, y, seed=0)
    valid_images = data.valid_dl.dataset.images
    xb, _ = data.one_batch("valid")
    raw = [valid_images[i, 0].numpy() for i in range(5)]
    assert torch.equal(data.encode(raw)[0], xb[:5])
    Image.fromarray(raw[0]).save(tmp_path / "item.png")
    as_path, as_pil, as_tensor = data.encode([tmp_path / "item.png", Image.fromarray(raw[0]),
                                              valid_images[0]])[0]
    assert torch.equal(as_path, xb[0]) and torch.equal(as_pil, xb[0])
    assert torch.equal(as_tensor, xb[0])
    rebuilt = ImageData.from_state(data.state())
    assert torch.equal(rebuilt.encode(raw)[0], xb[:5])
    # an RGB item and a bigger item are converted and resized to the data's mode and size
    rgb = np.repeat(raw[0][:, :, None], 3, axis=2)
    assert torch.equal(data.encode([rgb])[0][0], xb[0])
    assert data.encode([np.zeros((56, 56), np.uint8)])[0].shape == (1, 1, 28, 28)


def test_state_is_json_able():
    import json

    data = ImageData.from_arrays(np.zeros((10, 4, 4, 3), np.uint8), ["a", "b"] * 5)
    state = json.loads(json.dumps(data.state()))
    assert state["mode"] == "RGB" and state["size"] == [4, 4] and len(state["mean"]) == 3


def test_targets_single_multi_and_regression():
    targets, kind, classes = encode_targets([3, 1, 3])
    assert (targets.tolist(), kind, classes) == ([1, 0, 1], "single_label", [1, 3])
    targets, kind, classes = encode_targets([["a", "b"], [], ["b"]])
    assert kind == "multi_label" and classes == ["a", "b"]
    assert targets.tolist() == [[1, 1], [0, 0], [0, 1]]
    targets, kind, classes = encode_targets(["a b", "", "b"], label_delim=" ")
    assert kind == "multi_label" and targets.tolist() == [[1, 1], [0, 0], [0, 1]]
    targets, kind, classes = encode_targets([0.5, 1.25, 3.0])
    assert kind == "regression" and classes is None and targets.dtype == torch.float32
    with pytest.raises(ember.DataError, match="item 1 is missing"):
        encode_targets(["a", None, "b"])
    with pytest.raises(ember.DataError, match="out of range"):
        encode_targets([0, 12], classes=["a", "b"])


def test_from_arrays_bad_input_names_the_problem():
    images = np.zeros((10, 4, 4), np.uint8)
    with pytest.raises(ember.DataError, match="10 images but 9 labels"):
        ImageData.from_arrays(images, [0] * 9)
    with pytest.raises(ember.DataError, match="shape"):
        ImageData.from_arrays(np.zeros((10, 4), np.uint8), [0, 1] * 5)
    bad = np.zeros((10, 4, 4), np.float32)
    bad[7, 0, 0] = np.nan
    with pytest.raises(ember.DataError, match=r"images\[7\]"):
        ImageData.from_arrays(bad, [0, 1] * 5)


def test_two_column_labels_keep_their_kind_with_a_valid_or_test_pair(fashion):
    (x, _), (test_x, _) = fashion
    rng = np.random.default_rng(0)
    outputs, valid_outputs = rng.normal(size=(len(x), 2)), rng.normal(size=(len(test_x), 2))
    data = ImageData.from_arrays(x, outputs, valid=(test_x, valid_outputs))
    assert data.target_kind == "regression" and data.n_out == 2 and data.classes is None
    assert torch.allclose(data.valid_dl.dataset.targets,
                          torch.from_numpy(valid_outputs).float())
    tags = (rng.random((len(x), 3)) < 0.5).astype(np.float32)
    valid_tags = (rng.random((len(test_x), 3)) < 0.5).astype(np.float32)
    data = ImageData.from_arrays(x, tags, classes=["a", "b", "c"], valid=(test_x, valid_tags),
                                 test=(test_x, valid_tags))
    assert data.target_kind == "multi_label" and data.classes == ["a", "b", "c"]
    assert torch.equal(data.test_dl.dataset.targets, torch.from_numpy(valid_tags))
    with pytest.raises(ember.DataError, match="valid labels have shape"):
        ImageData.from_arrays(x, outputs, valid=(test_x, valid_outputs[:, :1]))


def test_from_folder_class_per_subfolder(image_folder):
    data = ImageData.from_folder(image_folder, valid_pct=0.25, seed=0, bs=8)
    assert data.classes == ["sneaker", "trouser", "tshirt"]
    assert len(data.train_dl.dataset) == 36 and len(data.valid_dl.dataset) == 12
    assert data.mode == "L" and data.size == (28, 28)
    xb, _ = data.one_batch("valid")
    paths = data.valid_dl.dataset.paths[:3]
    assert torch.equal(data.encode(paths)[0], xb[:3])


def test_folders_starting_with_a_tilde_are_in_the_home_folder(image_folder, monkeypatch):
    # "~/pets" was read as a folder named "~" in the working directory: "is not a folder"
    # (export, save and load already expanded "~", as a shell does)
    pd = pytest.importorskip("pandas")
    monkeypatch.setenv("HOME", str(image_folder.parent))
    monkeypatch.chdir(image_folder)
    data = ImageData.from_folder(f"~/{image_folder.name}", valid_pct=0.25, seed=0, bs=8)
    assert data.classes == ["sneaker", "trouser", "tshirt"]
    frame = {"path": [f"~/{image_folder.name}/{p.parent.name}/{p.name}"
                      for p in sorted(image_folder.glob("*/*.png"))]}
    frame["label"] = [Path(p).parent.name for p in frame["path"]]
    assert ImageData.from_df(pd.DataFrame(frame), bs=8).classes == data.classes
    relative = pd.DataFrame({"path": [p[len(f"~/{image_folder.name}/"):]
                                      for p in frame["path"]], "label": frame["label"]})
    assert ImageData.from_df(relative, folder=f"~/{image_folder.name}", bs=8).classes == (
        data.classes)


def split_layout(image_folder, root, parts):
    """``root/<part>/<class>/`` holding, of each class folder's sorted files, the slice
    ``parts[part]``."""
    for part, chosen in parts.items():
        for folder in image_folder.iterdir():
            target = root / part / folder.name
            target.mkdir(parents=True)
            for file in sorted(folder.iterdir())[chosen]:
                (target / file.name).write_bytes(file.read_bytes())
    return root


def test_from_folder_train_valid_layout_and_resize(image_folder, tmp_path_factory):
    root = split_layout(image_folder, tmp_path_factory.mktemp("split"),
                        {"train": slice(12), "valid": slice(12, None)})
    data = ImageData.from_folder(root, size=(32, 32), mode="RGB", bs=8)
    assert len(data.train_dl.dataset) == 36 and len(data.valid_dl.dataset) == 12
    assert data.one_batch()[0].shape == (8, 3, 32, 32) and data.n_channels == 3


def test_from_folder_refuses_half_the_split_layout(image_folder, tmp_path_factory):
    # train/<class> and test/<class> without valid/: the two splits were read as the classes
    # "test" and "train"
    root = split_layout(image_folder, tmp_path_factory.mktemp("train_test"),
                        {"train": slice(4), "test": slice(4)})
    with pytest.raises(ember.DataError, match=r"no validation folder 'valid' .*'test'"):
        ImageData.from_folder(root, bs=4)
    data = ImageData.from_folder(root, valid="test", bs=4)
    assert data.classes == ["sneaker", "trouser", "tshirt"]
    assert len(data.train_dl.dataset) == len(data.valid_dl.dataset) == 12
    # a class that happens to be called "train" (a folder of images) is still a class
    (image_folder / "tshirt").rename(image_folder / "train")
    assert "train" in ImageData.from_folder(image_folder, bs=4).classes


def test_corrupt_image_and_mixed_modes_name_the_file(image_folder):
    first = sorted((image_folder / "trouser").iterdir())[0]
    Image.open(first).convert("RGB").save(image_folder / "trouser" / "colour.png")
    with pytest.raises(ember.DataError, match=r"colour.png is RGB.*mode='RGB'"):
        ImageData.from_folder(image_folder)
    data = ImageData.from_folder(image_folder, mode="RGB", bs=8)  # converted as documented
    assert data.mode == "RGB"
    (image_folder / "trouser" / "colour.png").unlink()
    (image_folder / "tshirt" / "zz-broken.png").write_bytes(b"not an image at all")
    with pytest.raises(ember.DataError, match=r"zz-broken\.png cannot be read"):
        ImageData.from_folder(image_folder)


def test_an_image_too_large_to_decode_safely_is_named_when_the_data_is_built(image_folder,
                                                                          monkeypatch):
    # PIL's DecompressionBombError is no OSError: the header scan let it through as PIL's
    # own traceback ("could be decompression bomb DOS attack") naming no way out
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses over 200: 28x28 is
    with pytest.raises(ember.DataError, match=r"image .*\.png is too large to decode "
                                              r"safely.*MAX_IMAGE_PIXELS"):
        ImageData.from_folder(image_folder)


def test_sixteen_bit_rgba_and_grey_images_load_as_documented(image_folder):
    grey = np.asarray(Image.open(sorted((image_folder / "trouser").iterdir())[0]))
    wide = grey.astype(np.uint16) * 257  # the same picture stored with 16 bits per pixel
    Image.fromarray(wide).save(image_folder / "trouser" / "sixteen.png")
    assert Image.open(image_folder / "trouser" / "sixteen.png").mode.startswith("I")
    data = ImageData.from_folder(image_folder, bs=8)  # 16-bit grey is grey: one mode
    loaded = data.encode([image_folder / "trouser" / "sixteen.png"])[0]
    original = data.encode([grey])[0]
    assert torch.equal(loaded, original)  # scaled 65535 -> 255, not clipped to white
    rgba = np.dstack([np.repeat(grey[:, :, None], 3, axis=2), np.full_like(grey, 128)])
    Image.fromarray(rgba, "RGBA").save(image_folder / "tshirt" / "alpha.png")
    data = ImageData.from_folder(image_folder, mode="RGB", bs=8)
    assert data.encode([image_folder / "tshirt" / "alpha.png"])[0].shape == (1, 3, 28, 28)


def test_sixteen_bit_arrays_are_scaled_like_sixteen_bit_files(fashion):
    # a uint16 array (what tifffile or cv2.IMREAD_UNCHANGED give) failed in from_arrays and
    # predict with torch's NotImplementedError: "min_all" not implemented for 'UInt16'
    (x, y), _ = fashion
    wide = x[:40].astype(np.uint16) * 257
    data = ImageData.from_arrays(wide, y[:40], bs=8)
    assert torch.equal(data.train_dl.dataset.images,
                       ImageData.from_arrays(x[:40], y[:40], bs=8).train_dl.dataset.images)
    assert torch.equal(data.encode([wide[0]])[0], data.encode([x[0]])[0])  # 65535 -> 255
    with pytest.raises(ember.DataError, match="integer pixel values must lie in 0-255"):
        data.encode([wide[0].astype(np.uint32)])


def test_dark_sixteen_bit_pgm_is_scaled_like_a_bright_one(tmp_path):
    # Pillow opens 16-bit PGM files as mode "I" (32-bit integers holding 0-65535). A dark one,
    # whose brightest pixel is below 256, was read as 8-bit data: 257 times too bright
    dark = np.arange(16, dtype=np.uint16).reshape(4, 4) * 16  # at most 240 of 65535
    bright = dark * 257
    for name, array in (("dark", dark), ("bright", bright)):
        (tmp_path / f"{name}.pgm").write_bytes(b"P5\n4 4\n65535\n" + array.astype(">u2").tobytes())
    assert Image.open(tmp_path / "dark.pgm").mode == "I"
    assert load_image(tmp_path / "dark.pgm").max() == 1  # 240 / 257, rounded
    assert torch.equal(load_image(tmp_path / "bright.pgm")[0], torch.from_numpy(
        dark.astype(np.uint8)))  # 240 * 257 / 257


def test_empty_class_folder_warns_and_unseen_validation_label_is_an_error(image_folder, fashion):
    (image_folder / "sandal").mkdir()
    with pytest.warns(ember.EmberWarning, match=r"\['sandal'\] hold no images"):
        data = ImageData.from_folder(image_folder, bs=8)
    assert data.classes == ["sneaker", "trouser", "tshirt"]
    (x, y), _ = fashion
    labels = [FASHION_MNIST_CLASSES[v] for v in y]
    train = [i for i, v in enumerate(labels) if v != "Bag"][:200]
    with pytest.raises(ember.DataError, match=r"valid label 'Bag' \(item \d+\) never occurs"):
        ImageData.from_arrays(x[train], [labels[i] for i in train], valid=(x[:100], labels[:100]))
    kept = ImageData.from_arrays(x[train], [labels[i] for i in train],
                                 valid=(x[:100], labels[:100]), classes=FASHION_MNIST_CLASSES)
    assert kept.n_out == 10  # classes= keeps the class on purpose


def test_delimited_labels_are_checked_class_by_class_against_training(fashion):
    # "b a" in validation was compared with training's "a b" as a whole string and refused
    (x, _), _ = fashion
    train_labels = ["coat warm", "shirt"] * 20
    data = ImageData.from_arrays(x[:40], train_labels, label_delim=" ",
                                 valid=(x[40:44], ["warm coat", "shirt coat", "shirt", "warm"]))
    assert data.target_kind == "multi_label" and data.classes == ["coat", "shirt", "warm"]
    with pytest.raises(ember.DataError, match=r"valid label 'hat' \(item 1\) never occurs"):
        ImageData.from_arrays(x[:40], train_labels, label_delim=" ",
                              valid=(x[40:42], ["coat", "hat coat"]))


def test_a_delimited_label_with_no_class_is_not_an_unseen_class(fashion):
    # an image with no tags ("") or a stray delimiter ("coat ") in validation or test was
    # refused as the never-seen class '', where encode_targets reads them as no class
    (x, _), _ = fashion
    train_labels = ["coat warm", "shirt"] * 20
    data = ImageData.from_arrays(x[:40], train_labels, label_delim=" ",
                                 valid=(x[40:43], ["", "coat ", "warm  shirt"]),
                                 test=(x[43:44], [""]))
    assert data.classes == ["coat", "shirt", "warm"]
    assert data.valid_dl.dataset.targets.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert data.test_dl.dataset.targets.tolist() == [[0, 0, 0]]


def test_spaces_around_delimited_labels_are_not_part_of_the_class(fashion):
    # "cat, dog" split by "," made the class " dog" beside "dog" (and "cat " beside "cat"),
    # and a validation "dog , cat" was refused as the unseen class "dog "; the text plugin
    # already strips them (one rule: ember.split_label)
    targets, _, classes = encode_targets(["cat, dog", "dog", "cat ,bird", " , "],
                                         label_delim=",")
    assert classes == ["bird", "cat", "dog"]
    assert targets.tolist() == [[0, 1, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0]]
    (x, _), _ = fashion
    data = ImageData.from_arrays(x[:40], ["coat, warm", "shirt"] * 20, label_delim=",",
                                 valid=(x[40:42], ["warm , coat", " shirt"]))
    assert data.classes == ["coat", "shirt", "warm"]
    assert data.valid_dl.dataset.targets.tolist() == [[1, 0, 1], [0, 1, 0]]


def test_different_sizes_need_size(image_folder):
    Image.new("L", (40, 30)).save(image_folder / "tshirt" / "big.png")
    with pytest.raises(ember.DataError, match=r"big.png is 30x40.*size="):
        ImageData.from_folder(image_folder)
    data = ImageData.from_folder(image_folder, size=28, bs=8)
    assert data.size == (28, 28)


def test_from_df_single_multi_label_and_regression(image_folder):
    pandas = pytest.importorskip("pandas")
    files = sorted(p.relative_to(image_folder) for p in image_folder.rglob("*.png"))
    frame = pandas.DataFrame({
        "file": [str(f) for f in files],
        "label": [f.parent.name for f in files],
        "tags": [f"{f.parent.name} {'odd' if i % 2 else 'even'}" for i, f in enumerate(files)],
        "score": [float(i) + 0.5 for i in range(len(files))],
    })
    single = ImageData.from_df(frame, "file", "label", folder=image_folder, bs=8)
    assert single.target_kind == "single_label" and len(single.classes) == 3
    multi = ImageData.from_df(frame, "file", "tags", folder=image_folder, label_delim=" ", bs=8)
    assert multi.target_kind == "multi_label" and "odd" in multi.classes
    assert multi.one_batch()[1].shape == (8, 5)
    regression = ImageData.from_df(frame, "file", "score", folder=image_folder, bs=8)
    assert regression.target_kind == "regression" and regression.n_out == 1
    with pytest.raises(ember.DataError, match="no column 'nope'"):
        ImageData.from_df(frame, "file", "nope")


def test_show_batch_and_show_results_draw_figures(fashion):
    (x, y), _ = fashion
    data = ImageData.from_arrays(x[:64], y[:64], classes=FASHION_MNIST_CLASSES, bs=16)
    figure = data.show_batch(9)
    assert len([a for a in figure.axes if a.images]) == 9
    assert figure.axes[0].get_title() in FASHION_MNIST_CLASSES
    assert len([a for a in data.show_batch(4, augment=True).axes if a.images]) == 4
    batch = data.one_batch("valid")
    predictions = data.decode_targets(batch[1])
    figure = data.show_results(batch, predictions, n=4)
    assert all(a.title.get_color() == "green" for a in figure.axes if a.images)


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_showing_no_whole_positive_number_of_images_is_an_error(fashion, n):
    # 0 once divided by zero laying out the grid
    (x, y), _ = fashion
    data = ImageData.from_arrays(x[:64], y[:64], classes=FASHION_MNIST_CLASSES, bs=16)
    with pytest.raises(ember.DataError, match="number of images to show"):
        data.show_batch(n)
    batch = data.one_batch("valid")
    with pytest.raises(ember.DataError, match="number of images to show"):
        data.show_results(batch, data.decode_targets(batch[1]), n=n)


def test_show_batch_of_a_test_set_without_labels_draws_the_images_untitled(fashion):
    # it unpacked (images, targets) from a batch that holds the images alone
    (x, y), (test_x, _) = fashion
    data = ImageData.from_arrays(x[:64], y[:64], classes=FASHION_MNIST_CLASSES, bs=16,
                                 test=test_x[:8])
    figure = data.show_batch(4, split="test")
    drawn = [a for a in figure.axes if a.images]
    assert len(drawn) == 4 and all(a.get_title() == "" for a in drawn)


def test_show_results_of_a_several_output_regression(fashion):
    (x, _), _ = fashion
    outputs = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    data = ImageData.from_arrays(x[:64], outputs, bs=16)
    batch = data.one_batch("valid")
    targets = data.decode_targets(batch[1])
    predictions = [[a + 0.1, b - 0.1] for a, b in targets[:2]] + [[a + 1, b] for a, b in
                                                                  targets[2:4]]
    figure = data.show_results(batch, predictions, n=4)
    shown = [a for a in figure.axes if a.images]
    assert [a.title.get_color() for a in shown] == ["green", "green", "red", "red"]
    assert shown[0].get_title().split("\n")[0] == f"{targets[0][0]:.3g};{targets[0][1]:.3g}"


def invert(image):
    """A module-level item transform (picklable for any worker start method)."""
    return 255 - image


def test_item_transforms_run_in_cpu_workers_on_training_items_only(image_folder):
    plain = ImageData.from_folder(image_folder, bs=8)
    data = ImageData.from_folder(image_folder, bs=8, num_workers=2, item_transform=invert)
    assert torch.equal(torch.cat([xb for xb, _ in data.valid_dl]),
                       torch.cat([xb for xb, _ in plain.valid_dl]))  # validation untouched
    train = data.train_dl.dataset
    image, _ = train[0]
    assert torch.equal(image, 255 - plain.train_dl.dataset[0][0])
    xb, yb = next(iter(data.train_dl))  # decoded in two worker processes
    assert xb.shape == (8, 1, 28, 28) and yb.shape == (8,)


def test_fractional_labels_cannot_name_classes():
    # int() truncated them: 0.7 became class 0 without a word
    from ember_vision.data import encode_targets

    with pytest.raises(ember.DataError, match=r"label 0.7 of item 1 is not a whole number"):
        encode_targets([1.0, 0.7, 2.0], classes=["a", "b", "c"])
    with pytest.raises(ember.DataError, match="not a whole number"):
        encode_targets([1.0, 0.7], target_kind="single_label")
    targets, kind, names = encode_targets([1.0, 0.0, 2.0], classes=["a", "b", "c"])
    assert targets.tolist() == [1, 0, 2] and kind == "single_label" and names == ["a", "b", "c"]
    assert encode_targets([1.0, 0.7])[1] == "regression"


def test_from_folder_loads_a_test_folder_as_the_test_split(image_folder, tmp_path_factory):
    # a test/ folder beside train/ and valid/ was ignored: no test loader, so
    # learn.validate("test") said "this Data has no 'test' loader"
    root = split_layout(image_folder, tmp_path_factory.mktemp("three"),
                        {"train": slice(8), "valid": slice(8, 12), "test": slice(12, None)})
    data = ImageData.from_folder(root, bs=8)
    assert data.classes == ["sneaker", "trouser", "tshirt"]
    assert [len(dl.dataset) for dl in data.loaders] == [24, 12, 12]
    test_set = data.test_dl.dataset
    assert [data.classes[int(t)] for t in test_set.targets] == [
        Path(p).parent.name for p in test_set.paths]
    assert all(Path(p).parts[-3] == "test" for p in test_set.paths)
    learn = ember.learner(data, quiet=True)
    scores = learn.validate("test")
    assert set(scores) >= {"test_loss", "test_accuracy"}
    probabilities, targets = learn.get_preds("test")
    assert probabilities.shape == (12, 3) and torch.equal(targets, test_set.targets)
    # statistics come from train/ alone: the same as without the test folder
    shutil.rmtree(root / "test")
    without = ImageData.from_folder(root, bs=8)
    assert without.test_dl is None and (without.mean, without.std) == (data.mean, data.std)
    # a test class that training lacks is refused, as a validation one is
    split_layout(image_folder, root, {"test": slice(12, None)})
    (root / "test" / "sandal").mkdir()
    shutil.copy(data.train_dl.dataset.paths[0], root / "test" / "sandal" / "0.png")
    with pytest.raises(ember.DataError, match=r"test has classes \['sandal'\] that .*train "
                                              r"lacks"):
        ImageData.from_folder(root, bs=8)
    assert ImageData.from_folder(root, test=None, bs=8).test_dl is None
    assert ImageData.from_folder(root, test="missing", bs=8).test_dl is None


def _unlabelled_test_checks(data, n_test, images=None):
    """A test loader without labels: batches of images alone, predictions for every item in
    dataset order with targets None, validate("test") refused."""
    assert data.test_labelled is False and len(data.test_dl.dataset) == n_test
    batch = data.one_batch("test")
    assert len(batch) == 1 and batch[0].shape[1:] == (data.n_channels, *data.size)
    learn = ember.learner(data, quiet=True, device="cpu")
    probabilities, targets = learn.get_preds("test")
    assert targets is None and probabilities.shape == (n_test, len(data.classes))
    if images is not None:  # row i is test item i
        expected = learn.predict_batch(images, probs=True)
        assert torch.allclose(probabilities, torch.tensor(
            [list(p.probabilities.values()) for p in expected]), atol=1e-5)
    with pytest.raises(ember.DataError, match=r"the test set has no labels.*get_preds"):
        learn.validate("test")
    return learn


def test_from_arrays_takes_test_images_without_labels(fashion):
    # a competition's test images have no labels: test= took only (images, labels) pairs
    (x, y), (test_x, test_y) = fashion
    x, y, test_x, test_y = x[:200], y[:200], test_x[:20], test_y[:20]
    data = ImageData.from_arrays(x, y, test=test_x, bs=16)  # an array (N, H, W): images alone
    _unlabelled_test_checks(data, 20, list(test_x))
    assert torch.equal(data.test_dl.dataset.images[:, 0], torch.from_numpy(test_x))
    # a list of images, or a tensor, is images alone too; statistics stay the training ones
    as_list = ImageData.from_arrays(x, y, test=list(test_x[:3]), bs=16)
    assert as_list.test_labelled is False and len(as_list.test_dl.dataset) == 3
    assert (as_list.mean, as_list.std) == (data.mean, data.std)
    assert ImageData.from_arrays(x, y, test=torch.from_numpy(test_x), bs=16).test_labelled is False
    # an (images, labels) pair of equal lengths stays a labelled test set
    labelled = ImageData.from_arrays(x, y, test=(test_x, test_y), bs=16)
    assert labelled.test_labelled is True and (labelled.mean, labelled.std) == (data.mean, data.std)
    assert len(labelled.one_batch("test")) == 2
    with pytest.raises(ember.DataError, match=r"test images have shape \(3, 28, 28\)"):
        ImageData.from_arrays(x, y, test=np.zeros((4, 28, 28, 3), np.uint8))
    # two images of the training images' shape are two images, in a list or a tuple (a list
    # of two 28x28 images read as a pair of 28 rows and failed; ember.split_test's rule)
    for two in (list(test_x[:2]), tuple(test_x[:2])):
        two_images = ImageData.from_arrays(x, y, test=two, bs=16)
        assert two_images.test_labelled is False and len(two_images.test_dl.dataset) == 2
    with pytest.raises(ember.DataError, match=r"^test: 20 images but 19 labels; give one label "
                                              r"per image$"):
        ImageData.from_arrays(x, y, test=(test_x, test_y[:19]))


def test_from_files_takes_test_paths_without_labels(image_folder):
    files = sorted(image_folder.rglob("*.png"))
    paths, labels = files[:40], [p.parent.name for p in files[:40]]
    test_paths = files[40:]
    data = ImageData.from_files(paths, labels, test=[str(p) for p in test_paths], bs=8)
    assert data.test_dl.dataset.paths == [str(p) for p in test_paths]
    _unlabelled_test_checks(data, len(test_paths), test_paths)
    # two paths alone are two images, not a (paths, labels) pair, in a list or a tuple
    assert len(ImageData.from_files(paths, labels, test=test_paths[:2]).test_dl.dataset) == 2
    assert len(ImageData.from_files(paths, labels, test=tuple(test_paths[:2])).test_dl
               .dataset) == 2
    # a list of two parts of two lengths is neither a pair nor paths: a DataError, not
    # the TypeError of Path(list)
    with pytest.raises(ember.DataError, match=r"test\[0\] is a list, not a path; give test= a "
                                              r"list of paths, or a pair \(paths, labels\)"):
        ImageData.from_files(paths, labels, test=[test_paths[:3], ["cat"]])
    with pytest.raises(ember.DataError, match=r"test: 3 images but 1 labels"):
        ImageData.from_files(paths, labels, test=(test_paths[:3], ["cat"]))
    labelled = ImageData.from_files(paths, labels, bs=8, test=(
        test_paths, [p.parent.name for p in test_paths]))
    assert labelled.test_labelled is True and len(labelled.one_batch("test")) == 2


def test_from_folder_reads_a_test_folder_of_loose_images_without_labels(image_folder,
                                                                          tmp_path_factory):
    # a test/ folder of images without class folders was left out with a warning
    root = split_layout(image_folder, tmp_path_factory.mktemp("loose"),
                        {"train": slice(8), "valid": slice(8, 12)})
    (root / "test").mkdir()
    loose = sorted(image_folder.rglob("*.png"))[::4]
    for index, file in enumerate(loose):
        shutil.copy(file, root / "test" / f"{index:02d}.png")
    (root / "test" / "notes.txt").write_text("not an image")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ember.EmberWarning)
        data = ImageData.from_folder(root, bs=8)
    test_files = sorted((root / "test").glob("*.png"))
    assert data.test_dl.dataset.paths == [str(p) for p in test_files]
    _unlabelled_test_checks(data, len(loose), test_files)
    assert ImageData.from_folder(root, test=None, bs=8).test_dl is None


# ----------------------------------------------------------------------------- audit
def test_a_misspelt_mode_is_named_not_blamed_on_a_good_file(image_folder):
    with pytest.raises(ember.DataError, match=r"mode must be one of \['L', 'RGB'\], got 'rgb'"):
        ImageData.from_folder(image_folder, mode="rgb")
    with pytest.raises(ember.DataError, match="mode must be one of"):
        load_image(next(image_folder.rglob("*.png")), "rgb")


@pytest.mark.parametrize("size", [0, (0, 28), (-1, 5), (28, 28, 3), (28,), 16.5, "28",
                                  (16.5, 16)])
def test_a_size_that_is_not_a_height_and_width_is_refused_by_name(image_folder, size):
    with pytest.raises(ember.DataError, match=r"size= must be a positive whole number or a "
                                              r"pair \(height, width\)"):
        ImageData.from_folder(image_folder, size=size)


def test_size_takes_numpy_integers_as_ints(image_folder):
    data = ImageData.from_folder(image_folder, size=(np.int64(20), np.int64(24)))
    assert data.size == (20, 24) and data.one_batch()[0].shape[-2:] == (20, 24)


def test_hidden_files_and_folders_in_class_folders_are_not_images(image_folder):
    """Jupyter's .ipynb_checkpoints copies and macOS's ._ files in a class folder are no
    images of it: the first would copy images across the split, the second is no image."""
    shoe = next((image_folder / "sneaker").glob("*.png"))
    checkpoints = image_folder / "sneaker" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    shutil.copy(shoe, checkpoints / f"{shoe.stem}-checkpoint.png")
    (image_folder / "tshirt" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    data = ImageData.from_folder(image_folder)
    paths = data.train_dl.dataset.paths + data.valid_dl.dataset.paths
    assert len(paths) == 48 and not any("/." in path for path in paths)


@pytest.mark.parametrize("missing", [None, float("nan"), "", "  "])
def test_from_df_names_the_row_of_a_missing_path(image_folder, missing):
    # it looked for a file called "nan" (or "None", or the folder itself)
    pandas = pytest.importorskip("pandas")
    files = sorted(p.relative_to(image_folder) for p in image_folder.rglob("*.png"))
    frame = pandas.DataFrame({"file": [str(f) for f in files],
                              "label": [f.parent.name for f in files]},
                             index=[f"r{i}" for i in range(len(files))])
    frame.loc["r3", "file"] = missing
    with pytest.raises(ember.DataError, match=r"path of row 'r3' \(column 'file'\) is missing"):
        ImageData.from_df(frame, "file", "label", folder=image_folder)


@pytest.mark.parametrize("missing", [None, float("nan"), ""])
def test_from_files_names_the_position_of_a_missing_path(image_folder, missing):
    # None and NaN were a raw TypeError; "" read the current folder as an image
    files = sorted(image_folder.rglob("*.png"))
    labels = [f.parent.name for f in files]
    paths = [*files[:3], missing, *files[4:]]
    with pytest.raises(ember.DataError, match=r"^paths\[3\] is missing"):
        ImageData.from_files(paths, labels)
    with pytest.raises(ember.DataError, match=r"^test\[1\] is missing"):
        ImageData.from_files(files, labels, test=([files[0], missing], labels[:2]))


def test_from_df_reads_an_empty_cell_of_delimited_labels_as_no_class(image_folder, tmp_path):
    pandas = pytest.importorskip("pandas")
    files = sorted(p.relative_to(image_folder) for p in image_folder.rglob("*.png"))
    tags = ["round red", "red", "", "round"] * (len(files) // 4)
    pandas.DataFrame({"file": [str(f) for f in files], "tags": tags}).to_csv(
        tmp_path / "tags.csv", index=False)
    frame = pandas.read_csv(tmp_path / "tags.csv")  # the empty cells come back as NaN
    assert frame["tags"].isna().sum() == len(files) // 4
    data = ImageData.from_df(frame, "file", "tags", folder=image_folder, label_delim=" ",
                             valid_pct=0.25, bs=8)
    assert data.target_kind == "multi_label" and data.classes == ["red", "round"]
    targets, _, _ = encode_targets(frame["tags"], label_delim=" ")
    assert targets[:4].tolist() == [[1, 1], [1, 0], [0, 0], [0, 1]]
    # a labelled test set with blank cells: still checked for classes training lacks
    test = ([image_folder / f for f in files[:2]], [float("nan"), "blue"])
    with pytest.raises(ember.DataError, match="'blue'"):
        ImageData.from_files([image_folder / f for f in files], list(frame["tags"]),
                             label_delim=" ", test=test)
    with pytest.raises(ember.DataError, match="item 1 is missing"):  # single-label: an error
        encode_targets(["a", float("nan"), "b"])


def test_a_list_of_images_of_different_sizes_names_the_odd_one_and_a_way_that_exists(fashion):
    (x, y), _ = fashion
    images = [Image.fromarray(image) for image in x[:10]]
    images[3] = images[3].resize((32, 28))  # (width, height): 28 rows, 32 columns
    with pytest.raises(ember.DataError, match=r"images\[3\] has shape \(1, 28, 32\)") as error:
        ImageData.from_arrays(images, y[:10])
    assert "pass size=" not in str(error.value)  # from_arrays takes no size=
    assert "from_files(paths, labels, size=" in str(error.value)
    data = ImageData.from_arrays([image.resize((28, 28)) for image in images], y[:10])
    assert data.size == (28, 28)


def test_a_random_split_that_puts_a_whole_class_in_validation_warns_and_keeps_it(
        image_folder, fashion):
    # the class was kept in silence (an output the model never trains, its images counted as
    # errors), while a given split refuses it: one rule with text and tabular
    (x, _), _ = fashion
    _, valid = ember.split_indices(40, 0.2, seed=0)
    labels = ["coat", "shirt"] * 20
    for index in valid[:2]:
        labels[index] = "bag"
    with pytest.warns(ember.EmberWarning, match=r"every image of class 'bag' \(2 images\) in "
                                                r"validation.*seed=.*valid_pct="):
        data = ImageData.from_arrays(x[:40], labels, valid_pct=0.2, seed=0)
    assert data.classes == ["bag", "coat", "shirt"]
    paths = sorted(image_folder.rglob("*.png"))
    names = [path.parent.name for path in paths]
    _, valid = ember.split_indices(len(paths), 0.2, seed=0)
    names[valid[0]] = "sandal"
    with pytest.warns(ember.EmberWarning, match=r"class 'sandal' \(1 image\)"):
        ImageData.from_files(paths, names, valid_pct=0.2, seed=0)


def test_a_given_validation_mask_with_a_class_training_lacks_is_refused(image_folder):
    # from_df(valid_col=) and from_files(valid_mask=) checked only the test labels: a
    # validation class that training lacks got an output the model never trained, in silence
    paths = sorted(image_folder.rglob("*.png"))
    names = [path.parent.name for path in paths]
    mask = [False] * (len(paths) - 4) + [True] * 4
    names[-1] = "sandal"
    with pytest.raises(ember.DataError, match=r"valid label 'sandal' \(.*\.png\) never occurs "
                                              r"in training.*classes="):
        ImageData.from_files(paths, names, valid_mask=mask)
    kept = ImageData.from_files(paths, names, valid_mask=mask,
                                classes=["sandal", "sneaker", "trouser", "tshirt"])
    assert kept.n_out == 4  # classes= keeps it on purpose


def test_a_given_validation_class_in_lists_of_labels_is_checked_class_by_class(fashion):
    # lists of labels (multi-label) were not checked at all, where text checks them
    (x, _), _ = fashion
    with pytest.raises(ember.DataError, match=r"valid label 'hat' \(item 1\) never occurs"):
        ImageData.from_arrays(x[:40], [["coat", "warm"], ["shirt"]] * 20,
                              valid=(x[40:42], [["coat"], ["hat", "coat"]]))
