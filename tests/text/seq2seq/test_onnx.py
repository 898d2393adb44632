"""Sequence-to-sequence models decode in a Python loop over packed, variable-length sources:
ONNX export refuses them with a clear ExportError (docs/export.md says why)."""

from __future__ import annotations

import pytest

import ember

pytest.importorskip("onnxruntime")


def test_seq2seq_export_to_onnx_fails_clearly(tmp_path):
    sample = ember.get_registry().samples["seq2seq"]()
    learn = ember.learner(sample.data, quiet=True, path=tmp_path, device="cpu")
    with pytest.raises(ember.ExportError, match=r"Seq2SeqRNN cannot be exported to ONNX \("):
        learn.export_onnx(tmp_path / "seq2seq.onnx")
    path = learn.export("seq2seq")  # the safetensors export still works
    assert ember.load(path).predict_batch(sample.items[:2]) == learn.predict_batch(
        sample.items[:2])
