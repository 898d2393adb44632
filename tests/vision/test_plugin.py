"""The plugin hooks: registration, defaults by input size and target kind, training on real
Fashion-MNIST above chance, export → ember.load → identical predictions, the demo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ember
from ember_vision import FASHION_MNIST_CLASSES, BatchAugment, ImageData


def test_plugin_registers_kind_architectures_and_demo():
    infos = {info.name: info for info in ember.plugin_infos()}
    assert infos["vision"].status == "ok", infos["vision"].reason
    registry = ember.get_registry()
    assert registry.data_kinds["image"] is ImageData
    for name in ("compact_cnn", "resnet18", "resnet34", "resnet50", "efficientnet_b0",
                 "convnext_tiny"):
        assert name in registry.architectures
    assert any(d.domain == "vision" and d.name == "fashion_mnist" for d in registry.demos)


def test_defaults_follow_input_size_and_target_kind():
    small = ImageData.from_arrays(np.zeros((20, 28, 28), np.uint8), [0, 1] * 10)
    learn = ember.learner(small)
    assert learn.model.ember_config["name"] == "compact_cnn"
    assert any(isinstance(cb, BatchAugment) for cb in learn.cbs)
    assert type(learn.loss_func).__name__ == "CrossEntropyFlat"
    assert list(learn.candidates) == ["compact_cnn 16-32-64", "compact_cnn 32-64-128"]
    assert learn.candidates["compact_cnn 32-64-128"]().ember_config["config"]["widths"] == [
        32, 64, 128]
    big = ImageData.from_arrays(np.zeros((20, 128, 128, 3), np.uint8), [0.5, 1.5] * 10,
                                augment=False)
    learn = ember.learner(big)
    assert learn.model.ember_config["name"] == "resnet18"
    assert type(learn.loss_func).__name__ == "MSEFlat"
    assert not any(isinstance(cb, BatchAugment) for cb in learn.cbs)
    multi = ImageData.from_arrays(np.zeros((20, 16, 16), np.uint8), [["a"], ["a", "b"]] * 10)
    assert type(ember.learner(multi).loss_func).__name__ == "BCEWithLogitsFlat"


def test_precise_batchnorm_is_a_default_that_yours_replaces_and_that_comes_off():
    from ember_vision import SegmentationData

    images = np.random.default_rng(0).integers(0, 255, (20, 16, 16), dtype=np.uint8)
    classes = ImageData.from_arrays(images, [0, 1] * 10)
    masks = SegmentationData.from_arrays(images, (images > 128).astype(np.int64),
                                         codes=["dark", "light"])
    for data in (classes, masks):
        learn = ember.learner(data, quiet=True)
        (default,) = [cb for cb in learn.cbs if isinstance(cb, ember.PreciseBatchNorm)]
        assert default.n_items == 8192 and learn.callback("precise_batch_norm") is default
        assert default.only_when_stale  # a longer fit costs nothing
        assert any(isinstance(cb, BatchAugment) for cb in learn.cbs)
        mine = ember.PreciseBatchNorm(n_items=64)
        learn = ember.learner(data, quiet=True, cbs=[mine])
        assert [cb for cb in learn.cbs if isinstance(cb, ember.PreciseBatchNorm)] == [mine]
        learn.remove_cbs(learn.callback("precise_batch_norm"))
        assert not any(isinstance(cb, ember.PreciseBatchNorm) for cb in learn.cbs)
        assert not any(isinstance(cb, ember.PreciseBatchNorm)
                       for cb in ember.learner(data, default_cbs=False).cbs)
    # a fit with the default ends with the statistics a recompute gives its final weights
    ember.seed(0)
    learn = ember.learner(classes, quiet=True)
    learn.fit(1, 1e-3)
    norm = next(m for m in learn.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    held = norm.running_mean.clone()
    ember.PreciseBatchNorm().attached_to(learn).recompute()
    assert torch.equal(norm.running_mean, held)


@pytest.fixture(scope="module")
def trained(fashion):
    (x, y), (test_x, test_y) = fashion
    ember.seed(0)
    data = ImageData.from_arrays(x, y, valid=(test_x, test_y), classes=FASHION_MNIST_CLASSES,
                                 bs=64, augment=False)
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(3, 5e-3)
    return learn


def test_training_on_real_fashion_mnist_beats_chance_clearly(trained):
    metrics = trained.validate()
    losses = trained.recorder.losses
    assert metrics["accuracy"] > 0.65, metrics  # chance is 0.10
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])  # training loss falls


def test_export_load_gives_identical_predictions(trained, fashion, tmp_path):
    _, (test_x, _) = fashion
    Image.fromarray(test_x[3]).save(tmp_path / "shoe.png")
    items = [test_x[0], torch.from_numpy(test_x[1]), Image.fromarray(test_x[2]),
             tmp_path / "shoe.png", *list(test_x[4:40])]
    path = trained.export(tmp_path / "fashion.ember")
    predictor = ember.load(path)
    assert predictor.classes == FASHION_MNIST_CLASSES
    expected = trained.predict_batch(items)
    assert predictor.predict_batch(items) == expected
    assert all(label in FASHION_MNIST_CLASSES for label in expected)
    original = trained.model(*[x.to(trained.device) for x in trained.data.encode(items)])
    loaded = predictor.model(*predictor.data.encode(items))
    assert torch.allclose(original.cpu(), loaded, atol=1e-5)


def test_probabilities_are_the_softmax_of_the_model_and_survive_export(fashion, tmp_path):
    (x, y), (test_x, _) = fashion
    ember.seed(0)
    data = ImageData.from_arrays(x[:128], y[:128], classes=FASHION_MNIST_CLASSES, bs=32,
                                 augment=False)
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(1)
    items = list(test_x[:6])
    predictions = learn.predict_batch(items, probs=True)
    assert [p.value for p in predictions] == learn.predict_batch(items)
    assert all(list(p.probabilities) == FASHION_MNIST_CLASSES for p in predictions)
    with torch.no_grad():
        outputs = learn.model.eval()(*[t.to(learn.device) for t in data.encode(items)]).cpu()
    probabilities = torch.tensor([list(p.probabilities.values()) for p in predictions])
    assert torch.allclose(probabilities, outputs.softmax(-1), rtol=0, atol=1e-6)
    assert [p.value for p in predictions] == [FASHION_MNIST_CLASSES[i]
                                              for i in outputs.argmax(-1)]
    loaded = ember.load(learn.export(tmp_path / "fashion.ember")).predict(items[0], probs=True)
    assert loaded.value == predictions[0].value
    assert list(loaded.probabilities.values()) == pytest.approx(
        list(predictions[0].probabilities.values()), rel=1e-5, abs=1e-6)


def test_export_of_a_pretrained_model_never_refetches_weights(tmp_path, fashion):
    import torchvision

    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "w.pth")
    (x, y), _ = fashion
    data = ImageData.from_arrays(x[:32], y[:32], bs=8, augment=False)
    model = ember.create_model("mobilenet_v3_small", n_out=10, n_channels=1,
                               pretrained=str(tmp_path / "w.pth"))
    learn = ember.learner(data, model=model, quiet=True)
    path = learn.export(tmp_path / "m.ember")
    (tmp_path / "w.pth").unlink()
    assert ember.load(path).predict_batch(list(x[:4])) == learn.predict_batch(list(x[:4]))


def test_fashion_mnist_demo_smoke():
    demo = next(d for d in ember.get_registry().demos if d.name == "fashion_mnist")
    metrics = demo.run(smoke=True)
    assert set(metrics) >= {"accuracy", "valid_loss"} and 0 <= metrics["accuracy"] <= 1


def test_a_multi_label_threshold_survives_export(fashion, tmp_path):
    (x, y), (test_x, _) = fashion
    tags = {0: "top", 2: "top warm", 4: "top warm", 6: "top", 5: "shoe", 7: "shoe", 9: "shoe"}
    labels = [tags.get(int(label), "") for label in y[:128]]
    ember.seed(0)
    data = ImageData.from_arrays(x[:128], labels, label_delim=" ", bs=32, augment=False)
    assert data.target_kind == "multi_label"
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(1)
    items = list(test_x[:16])
    low, high = (learn.predict_batch(items, threshold=t) for t in (0.2, 0.8))
    assert low != high  # the threshold decides which tags an image gets
    assert all(set(few) <= set(many) for few, many in zip(high, low))
    learn.data.threshold = 0.2  # the user's default, kept by the export
    predictor = ember.load(learn.export(tmp_path / "tags.ember"))
    assert predictor.predict_batch(items) == learn.predict_batch(items) == low
    assert predictor.predict_batch(items, threshold=0.8) == high
    assert predictor.predict(items[0], threshold=0.8) == high[0]
