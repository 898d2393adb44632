"""Real image data: an IDX reader and Fashion-MNIST (a bundled sample, or the full set).

The bundled sample is a seeded, class-balanced subset of Fashion-MNIST (Zalando SE, MIT
licence; see ``LICENSE-fashion-mnist.txt`` here): 1,000 training and 300 test images, 28x28
grey, as gzipped IDX files (``scripts/make_fashion_mnist_sample.py`` rebuilds it).

Example:
    >>> from ember_vision.datasets import fashion_mnist
    >>> (train_x, train_y), (test_x, test_y) = fashion_mnist()
    >>> train_x.shape, test_x.shape, int(train_y.max())
    ((1000, 28, 28), (300, 28, 28), 9)
"""

from __future__ import annotations

import gzip
import os
import struct
from importlib import resources
from pathlib import Path

import numpy as np

import ember

__all__ = ["FASHION_MNIST_CLASSES", "fashion_mnist", "read_idx"]

#: Class names of Fashion-MNIST, in label order.
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzipped or not) into a NumPy array.

    The header is big-endian: two zero bytes, a type code (0x08 unsigned byte … 0x0E double),
    the number of dimensions, then one 32-bit size per dimension; the data follows.

    Example:
        >>> # images = read_idx("train-images-idx3-ubyte.gz")  # (60000, 28, 28) uint8
    """
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise ember.DataError(f"IDX file {file} does not exist; check the path") from None
    except (OSError, EOFError) as error:
        raise ember.DataError(f"IDX file {file} is corrupt ({error}); fetch it again") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise ember.DataError(f"{file} is not an IDX file (bad magic number {raw[:4].hex()})")
    n_dims = raw[3]
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise ember.DataError(f"IDX file {file} is truncated inside its header")
    shape = struct.unpack(f">{n_dims}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ember.DataError(
            f"IDX file {file} holds {len(raw) - header} data bytes but its header {shape} "
            f"promises {expected}; the file is truncated or corrupt")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def fashion_mnist(path: str | Path | None = None, sample: bool | None = None
                  ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST as ``((train_images, train_labels), (test_images, test_labels))``.

    ``sample=True`` (the default when no ``path`` is given and ``EMBER_DATA`` is unset) reads
    the bundled 1,000 + 300 sample. Otherwise the full set (60,000 + 10,000) is read from
    ``path`` — the folder of the four ``*-ubyte.gz`` files — or from
    ``$EMBER_DATA/fashion-mnist``. Labels index :data:`FASHION_MNIST_CLASSES`.

    Example:
        >>> (x, y), _ = fashion_mnist(sample=True)
        >>> x.dtype, len(x) == len(y)
        (dtype('uint8'), True)
    """
    if sample is None:
        sample = path is None and not os.environ.get("EMBER_DATA")
    if sample:
        folder = resources.files("ember_vision.datasets")

        def part(split: str, what: str) -> np.ndarray:
            name = f"fashion-mnist-{split}-{what}-idx{3 if what == 'images' else 1}-ubyte.gz"
            with resources.as_file(folder / name) as file:
                return read_idx(file)
    else:
        root = (Path(path) if path is not None else Path(os.environ["EMBER_DATA"])).expanduser()
        if (root / "fashion-mnist").is_dir():
            root = root / "fashion-mnist"

        def part(split: str, what: str) -> np.ndarray:
            return read_idx(root / f"{split}-{what}-idx{3 if what == 'images' else 1}-ubyte.gz")

    return ((part("train", "images"), part("train", "labels")),
            (part("t10k", "images"), part("t10k", "labels")))
