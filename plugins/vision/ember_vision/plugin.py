"""ember-vision's hook implementations: the ``image`` data kind, vision architectures,
defaults for :class:`ImageData`, and the ``fashion_mnist`` quick-start demo.

Defaults (:func:`ember_defaults`), chosen from the input size and target kind:

- images of at most 32 pixels a side → ``compact_cnn`` (widths 16-32-64), up to 64 px
  32-64-128, up to 96 px 32-64-128-256; learning rate 3e-3; ``fit_auto`` candidates: that
  model and one twice as wide (raced when the budget allows);
- larger images → ``resnet18`` from random initialisation (pass a pretrained model yourself:
  ``ember.learner(data, model=vision_model("resnet34", data, pretrained="DEFAULT"))``),
  learning rate 1e-3;
- loss and metrics from the target kind (core's defaults: cross-entropy + accuracy,
  BCE + multi-label accuracy/F1, MSE + RMSE/MAE/R²);
- the data's batch augmentation as a :class:`BatchAugment` callback (``augment=False`` on the
  data turns it off);
- :class:`ember.PreciseBatchNorm` (classification and segmentation), ``only_when_stale``:
  after a fit too short for BatchNorm's moving averages to forget their start (fewer than
  about 44 batches), the statistics are recomputed from the trained weights on up to 8,192
  training items (every epoch when early stopping or save-best watches the validation). Your own
  ``cbs=[ember.PreciseBatchNorm(...)]`` replaces it;
  ``learn.remove_cbs(learn.callback("precise_batch_norm"))`` switches it off;
- :class:`SegmentationData` → ``compact_unet`` up to 96 px a side, else ``resnet_unet``
  (resnet18 body, random initialisation unless you pass ``pretrained=``); per-pixel
  cross-entropy, pixel accuracy and Dice.

Example:
    >>> import ember
    >>> "compact_cnn" in ember.get_registry().architectures
    True
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import ember
from ember_vision.data import ImageData
from ember_vision.models import TORCHVISION_ARCHITECTURES, compact_cnn, torchvision_model
from ember_vision.segmentation import SegmentationData, compact_unet, resnet_unet
from ember_vision.transforms import BatchAugment

EMBER_CONTRACT = 1


@ember.hookimpl
def ember_data_kinds(register: Callable[[str, type[ember.Data]], None]) -> None:
    register("image", ImageData)
    register("segmentation", SegmentationData)


@ember.hookimpl
def ember_architectures(register: Callable[..., None]) -> None:
    register("compact_cnn", compact_cnn, description="fast CNN for small images (≤ 64 px)")
    register("compact_unet", compact_unet, description="small U-Net for segmentation masks")
    register("resnet_unet", resnet_unet,
             description="U-Net on a torchvision ResNet body (arch=, pretrained=)")
    register("torchvision", torchvision_model,
             description="any torchvision classifier by arch=, body + pooled head")
    for arch in TORCHVISION_ARCHITECTURES:
        register(arch, partial(torchvision_model, arch),
                 description=f"torchvision {arch}, body + pooled (avg+max) head")


@ember.hookimpl
def ember_callbacks(register: Callable[..., None]) -> None:
    register("BatchAugment", BatchAugment)


@ember.hookimpl
def ember_defaults(data: ember.Data) -> ember.Defaults | None:
    if not isinstance(data, ImageData):
        return None
    # BatchNorm statistics recomputed from the trained weights at the end of each fit
    cbs: list[ember.Callback] = [ember.PreciseBatchNorm(only_when_stale=True)]
    if data.augment not in (None, False):
        cbs.append(BatchAugment(None if data.augment is True else data.augment))
    side = max(data.size) if data.size else 224
    if isinstance(data, SegmentationData):
        name = "compact_unet" if side <= 96 else "resnet_unet"
        model_builder = partial(ember.create_model, name, n_channels=data.n_channels,
                                n_out=data.n_out)
        return ember.Defaults(model=model_builder, lr=3e-3 if side <= 96 else 1e-3, cbs=cbs,
                              metrics=[ember.Accuracy(), ember.Dice()])
    model: Any
    candidates: dict[str, Any] = {}
    if side <= 96:
        widths = (16, 32, 64) if side <= 32 else (32, 64, 128) if side <= 64 else (
            32, 64, 128, 256)
        model = partial(ember.create_model, "compact_cnn", n_channels=data.n_channels,
                        n_out=data.n_out, widths=list(widths))
        lr = 3e-3
        # fit_auto races the default against a model twice as wide when its budget allows
        candidates = {
            "compact_cnn " + "-".join(map(str, w)): partial(
                ember.create_model, "compact_cnn", n_channels=data.n_channels,
                n_out=data.n_out, widths=list(w))
            for w in (widths, tuple(2 * v for v in widths))}
    else:
        model = partial(ember.create_model, "resnet18", n_channels=data.n_channels,
                        n_out=data.n_out)
        lr = 1e-3
    return ember.Defaults(model=model, lr=lr, cbs=cbs, candidates=candidates)


@ember.hookimpl
def ember_rebuild_model(manifest: dict[str, Any]) -> Any:
    model = manifest.get("model", {})
    config = dict(model.get("config", {}))
    if model.get("plugin") != "vision" or config.get("pretrained") in (None, False):
        return None
    config["pretrained"] = None  # the exported file holds the weights; never download them
    return ember.create_model(model["name"], **config)


def _image_sample() -> ember.Sample:
    from ember_vision.datasets import FASHION_MNIST_CLASSES, fashion_mnist

    (images, labels), _ = fashion_mnist(sample=True)
    data = ImageData.from_arrays(images[:200], labels[:200], classes=FASHION_MNIST_CLASSES,
                                 bs=32)
    return ember.Sample(data, items=list(images[200:208]))


def _segmentation_sample() -> ember.Sample:
    import numpy as np

    from ember_vision.datasets import FASHION_MNIST_CLASSES, fashion_mnist

    (images, labels), _ = fashion_mnist(sample=True)
    # each garment's pixels labelled with its class, background 0
    masks = np.where(images[:120] > 40, labels[:120, None, None] + 1, 0)
    data = SegmentationData.from_arrays(images[:120], masks,
                                        codes=["background", *FASHION_MNIST_CLASSES], bs=16)
    return ember.Sample(data, items=list(images[120:124]))


@ember.hookimpl
def ember_samples(register: Callable[..., None]) -> None:
    register("image", _image_sample)
    register("segmentation", _segmentation_sample)


@ember.hookimpl
def ember_quickstart(register: Callable[[ember.Demo], None]) -> None:
    from ember_vision.demos import run_fashion_mnist

    register(ember.Demo(domain="vision", name="fashion_mnist", run=run_fashion_mnist,
                        description="compact CNN on the bundled Fashion-MNIST sample "
                                    "(1,000 train / 300 test images)"))
