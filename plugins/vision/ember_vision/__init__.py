"""ember-vision: images for Ember — data from arrays, folders and data frames, batch
augmentation on the device, a compact CNN and torchvision architectures with a pooled head,
test-time augmentation and interpretation.

Example:
    >>> import ember
    >>> from ember_vision import ImageData
    >>> from ember_vision.datasets import FASHION_MNIST_CLASSES, fashion_mnist
    >>> (x, y), (test_x, test_y) = fashion_mnist()
    >>> data = ImageData.from_arrays(x, y, valid=(test_x, test_y), classes=FASHION_MNIST_CLASSES)
    >>> learn = ember.learner(data)
    >>> # learn.fit_one_cycle(8); learn.export("fashion.ember")
"""

from __future__ import annotations

from ember_vision.data import ImageData, encode_targets
from ember_vision.datasets import FASHION_MNIST_CLASSES, fashion_mnist, read_idx
from ember_vision.interpret import Interpretation, tta
from ember_vision.models import (
    ConcatPool2d,
    VisionModel,
    compact_cnn,
    pooled_head,
    torchvision_model,
    vision_model,
)
from ember_vision.segmentation import (
    CompactUNet,
    ResNetUNet,
    SegmentationData,
    compact_unet,
    load_mask,
    resnet_unet,
)
from ember_vision.transforms import BatchAugment, default_augmentation, load_image

__version__ = "0.1.0"

__all__ = [
    "FASHION_MNIST_CLASSES",
    "BatchAugment",
    "CompactUNet",
    "ConcatPool2d",
    "ImageData",
    "Interpretation",
    "ResNetUNet",
    "SegmentationData",
    "VisionModel",
    "compact_cnn",
    "compact_unet",
    "default_augmentation",
    "encode_targets",
    "fashion_mnist",
    "load_image",
    "load_mask",
    "pooled_head",
    "read_idx",
    "resnet_unet",
    "torchvision_model",
    "tta",
    "vision_model",
]
