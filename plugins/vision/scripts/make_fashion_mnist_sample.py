"""Rebuild the bundled Fashion-MNIST sample from the full set (run once; the output ships).

Takes a seeded, class-balanced subset: 100 training and 30 test images per class, written as
gzipped IDX files next to ``ember_vision/datasets/__init__.py``.

Example:
    $ python plugins/vision/scripts/make_fashion_mnist_sample.py /work/shared/data/fashion-mnist
"""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np

TARGET = Path(__file__).resolve().parents[1] / "ember_vision" / "datasets"
PER_CLASS = {"train": 100, "t10k": 30}


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes into an array."""
    with gzip.open(path) as handle:
        raw = handle.read()
    n_dims = raw[3]
    shape = struct.unpack(f">{n_dims}I", raw[4:4 + 4 * n_dims])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an array of unsigned bytes as a gzipped IDX file (deterministic bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(header + np.ascontiguousarray(array).tobytes())


def main(source: str) -> None:
    """Write the sample from the full set in ``source``."""
    rng = np.random.default_rng(0)
    for split, per_class in PER_CLASS.items():
        images = read_idx(Path(source) / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(Path(source) / f"{split}-labels-idx1-ubyte.gz")
        chosen = np.sort(np.concatenate([
            rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
            for label in range(10)
        ]))
        write_idx(TARGET / f"fashion-mnist-{split}-images-idx3-ubyte.gz", images[chosen])
        write_idx(TARGET / f"fashion-mnist-{split}-labels-idx1-ubyte.gz", labels[chosen])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/fashion-mnist")
