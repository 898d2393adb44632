"""The IDX reader and the Fashion-MNIST loader (bundled sample and full-set path)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import ember
from ember_vision.datasets import FASHION_MNIST_CLASSES, fashion_mnist, read_idx


def write_idx(path, array, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def test_bundled_sample_is_real_balanced_fashion_mnist(fashion):
    (train_x, train_y), (test_x, test_y) = fashion
    assert train_x.shape == (1000, 28, 28) and test_x.shape == (300, 28, 28)
    assert train_x.dtype == np.uint8
    assert np.bincount(train_y).tolist() == [100] * 10
    assert np.bincount(test_y).tolist() == [30] * 10
    assert len(FASHION_MNIST_CLASSES) == 10
    # real photographs of clothes: dark backgrounds, many grey levels
    assert 60 < train_x.mean() < 90 and len(np.unique(train_x)) == 256


def test_read_idx_gzipped_and_plain(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b", array, compress=False)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(read_idx(tmp_path / "b"), array)


def test_read_idx_bad_files_name_the_file(tmp_path):
    array = np.zeros((2, 3, 4), dtype=np.uint8)
    write_idx(tmp_path / "short", array, compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ember.DataError, match=r"short.*truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "text").write_text("hello world")
    with pytest.raises(ember.DataError, match="text is not an IDX file"):
        read_idx(tmp_path / "text")
    with pytest.raises(ember.DataError, match="does not exist"):
        read_idx(tmp_path / "missing")


def test_fashion_mnist_reads_the_full_set_from_a_path_or_ember_data(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    (train_x, _), (test_x, _) = fashion_mnist(folder)
    assert train_x.shape == (6, 28, 28) and test_x.shape == (4, 28, 28)
    monkeypatch.setenv("EMBER_DATA", str(tmp_path))
    (train_x, _), _ = fashion_mnist()
    assert len(train_x) == 6
    (train_x, _), _ = fashion_mnist(sample=True)
    assert len(train_x) == 1000
