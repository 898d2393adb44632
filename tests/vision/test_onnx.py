"""ONNX export of vision models: the compact CNN (the default for small images) and a
torchvision resnet18 body with the pooled head give onnxruntime the outputs of the model in
eval mode on real Fashion-MNIST images, at two batch sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData

onnxruntime = pytest.importorskip("onnxruntime")


def assert_onnx_matches(path, learn: ember.Learner, batches) -> None:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["images"]
    model = learn.model.eval()
    for items in batches:
        (images,) = learn.data.encode(items)
        (got,) = session.run(None, {"images": images.numpy()})
        with torch.no_grad():
            expected = model(images).numpy()
        assert got.shape == expected.shape == (len(items), 10)
        assert np.abs(got - expected).max() <= 1e-4


def trained(images, labels, tmp_path, model=None) -> ember.Learner:
    ember.seed(0)
    data = ImageData.from_arrays(images[:160], labels[:160], classes=FASHION_MNIST_CLASSES,
                                 bs=32)
    options = {"model": model} if model is not None else {}
    learn = ember.learner(data, quiet=True, path=tmp_path, device="cpu", **options)
    learn.fit_one_cycle(1)  # BatchNorm statistics and weights away from their initial values
    return learn


def test_compact_cnn_exports_with_a_dynamic_batch(fashion, tmp_path):
    (images, labels), (test_images, _) = fashion
    learn = trained(images, labels, tmp_path)
    assert learn.model.ember_config["name"] == "compact_cnn"
    path = learn.export_onnx(tmp_path / "fashion.onnx")
    assert_onnx_matches(path, learn, [list(test_images[:3]), list(test_images[3:20])])


def test_resnet18_body_with_pooled_head_exports(fashion, tmp_path):
    (images, labels), (test_images, _) = fashion
    model = ember.create_model("resnet18", n_out=10, n_channels=1, hidden=64)
    learn = trained(images, labels, tmp_path, model=model)
    path = learn.export_onnx(tmp_path / "resnet.onnx")
    assert_onnx_matches(path, learn, [list(test_images[:2]), list(test_images[2:11])])
