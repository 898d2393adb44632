"""Quick-start demos (``ember quickstart vision``).

Example:
    >>> # from ember_vision.demos import run_fashion_mnist; run_fashion_mnist(smoke=True)
"""

from __future__ import annotations

import ember
from ember_vision.data import ImageData
from ember_vision.datasets import FASHION_MNIST_CLASSES, fashion_mnist

__all__ = ["run_fashion_mnist"]


def run_fashion_mnist(smoke: bool = False) -> dict[str, float]:
    """Train the default model (compact CNN) on the bundled Fashion-MNIST sample and return its
    accuracy on the 300 held-out test images (chance: 0.1).

    Example:
        >>> # run_fashion_mnist()["accuracy"] -> about 0.8
    """
    ember.seed(0)
    (train_x, train_y), (test_x, test_y) = fashion_mnist(sample=True)
    if smoke:
        train_x, train_y = train_x[:512], train_y[:512]
    data = ImageData.from_arrays(train_x, train_y, valid=(test_x, test_y),
                                 classes=FASHION_MNIST_CLASSES, bs=64)
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(2 if smoke else 8)
    metrics = learn.validate()
    return {"accuracy": float(metrics["accuracy"]), "valid_loss": float(metrics["valid_loss"])}
