"""Fixtures for the vision plugin's tests: quiet, CPU only, small real images."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("EMBER_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def fashion():
    """The bundled Fashion-MNIST sample: ((train_x, train_y), (test_x, test_y))."""
    from ember_vision.datasets import fashion_mnist

    return fashion_mnist(sample=True)


@pytest.fixture
def image_folder(tmp_path, fashion):
    """A folder of real PNG images, one sub-folder per class (three classes, 16 each)."""
    from PIL import Image

    (images, labels), _ = fashion
    names = {0: "tshirt", 1: "trouser", 7: "sneaker"}
    for label, name in names.items():
        (tmp_path / name).mkdir()
        for index in np.flatnonzero(labels == label)[:16]:
            Image.fromarray(images[index]).save(tmp_path / name / f"{index}.png")
    return tmp_path
