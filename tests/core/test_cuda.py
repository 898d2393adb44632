"""The CUDA code paths: automatic device choice, mixed precision (bf16, and fp16 with loss
scaling), the NaN guard's device-side check, channels-last, checkpoints that resume exactly and
export from a GPU learner to a CPU predictor. Skipped on machines without CUDA (CI has none);
``bench/device.sh`` runs them on a lent GPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import ember

from .helpers import assert_nan_guard_restores, blob_data, interrupted_run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def small_model() -> nn.Module:
    return ember.create_model("mlp", n_in=8, n_out=3, hidden=[32])


def test_auto_device_is_cuda_and_user_code_never_moves_tensors():
    ember.seed(0)
    learn = ember.learner(blob_data())
    assert learn.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in learn.model.parameters())
    learn.fit_one_cycle(2, 1e-2)
    assert learn.validate()["accuracy"] > 0.8
    x, _ = learn.data.valid_dl.dataset.tensors  # CPU tensors in, plain labels out
    predictions = learn.predict_batch(list(x[:5]))
    assert all(isinstance(p, int) for p in predictions)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cuda_learns_and_keeps_float32_weights(precision):
    ember.seed(0)
    learn = ember.Learner(blob_data(), small_model(), quiet=True, precision=precision)
    learn.fit_one_cycle(3, 1e-2)
    assert learn.validate()["accuracy"] > 0.8
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    precision_cb = learn.callback("mixed_precision")
    assert precision_cb.scaler.is_enabled() == (precision == "fp16")


def test_fp16_checkpoint_keeps_the_loss_scale_and_resumes(tmp_path):
    ember.seed(0)
    learn = ember.Learner(blob_data(), small_model(), quiet=True, precision="fp16")
    learn.fit(1, 1e-2)
    scale = learn.callback("mixed_precision").scaler.get_scale()
    path = learn.save(tmp_path / "fp16")
    restored = ember.Learner(blob_data(), small_model(), quiet=True, precision="fp16")
    restored.load(path)
    for key, value in learn.model.state_dict().items():
        assert torch.equal(value, restored.model.state_dict()[key]), key
    restored.fit(1, 1e-2)  # trains on from the restored state without error
    assert scale > 0 and not restored.diverged


def test_nan_guard_on_cuda_keeps_cpu_snapshots_and_restores_the_epoch_start_weights():
    ember.seed(0)
    learn = ember.Learner(blob_data(), small_model(), quiet=True)
    assert_nan_guard_restores(learn, 2)
    guard = learn.callback("nan_guard")
    assert all(v.device.type == "cpu" for v in guard.good_state.values())  # no GPU memory


def test_channels_last_cnn_trains_on_cuda():
    ember.seed(0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (256,), generator=generator)
    images = torch.randn(256, 3, 16, 16, generator=generator) * 0.5
    images[labels == 1, 0] += 1.0  # class 1: a brighter red channel
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(images[:192], labels[:192]),
                                               TensorDataset(images[192:], labels[192:]), bs=32)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    learn = ember.Learner(ember.Data.from_loaders(train_dl, valid_dl), model, quiet=True,
                          channels_last=True, precision="bf16")
    learn.fit_one_cycle(4, 1e-2)
    assert learn.validate()["accuracy"] > 0.8
    assert learn.model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_resumed_cuda_run_ends_with_the_same_weights(tmp_path):
    """Dropout draws from the CUDA generator: its state travels in the checkpoint."""
    uninterrupted = interrupted_run(tmp_path / "a", None).model.state_dict()
    resumed = interrupted_run(tmp_path / "b", interrupt_after=1).model.state_dict()
    for key, value in uninterrupted.items():
        assert torch.allclose(value, resumed[key], atol=1e-6, rtol=0), key


def test_export_from_a_cuda_learner_predicts_the_same_on_cpu(tmp_path):
    ember.seed(0)
    learn = ember.learner(blob_data())
    learn.fit_one_cycle(2, 1e-2)
    x, _ = learn.data.valid_dl.dataset.tensors
    items = list(x[:16])
    path = learn.export(tmp_path / "model.ember")
    predictor = ember.load(path)  # CPU by default
    assert predictor.predict_batch(items) == learn.predict_batch(items)
