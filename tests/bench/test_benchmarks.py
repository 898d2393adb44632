"""Every benchmark script runs in its --smoke mode and prints its RESULT lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def smoke(script: str) -> str:
    result = subprocess.run([sys.executable, f"bench/{script}", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_overhead_smoke():
    out = smoke("overhead.py")
    assert "RESULT overhead_mlp_ratio" in out and "RESULT overhead_cnn_ratio" in out
    assert "RESULT import_ember_beyond_torch" in out


@pytest.mark.skipif(pytest.importorskip("torchvision") is None, reason="needs torchvision")
def test_gpu_script_smoke_runs_on_cpu():
    out = smoke("gpu.py")
    assert "RESULT gpu_ratio" in out and "| ember |" in out


def test_auto_smoke_on_one_domain():
    result = subprocess.run([sys.executable, "bench/auto.py", "--smoke", "--domains",
                             "diamonds log(price)"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT auto_diamonds_rmse" in result.stdout


def test_serve_smoke_on_one_domain():
    """ember serve in a subprocess: zero errors, every malformed request a 4xx, still healthy."""
    pytest.importorskip("fastapi")
    pytest.importorskip("ember_tabular")
    result = subprocess.run([sys.executable, "bench/serve.py", "--smoke", "--domains",
                             "tabular"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT serve_tabular_errors 0 requests" in result.stdout
    assert "RESULT serve_tabular_ratio" in result.stdout
    assert "RESULT serve_tabular_malformed_4xx 30 requests baseline=30" in result.stdout
    assert "| tabular |" in result.stdout


def test_overhead_trainers_do_the_same_computation():
    # the benchmark's ratios compare work, so every trainer it times must train the same model
    # to the same weights from the same batches: the hand loop, the lean hand loop (the
    # optimiser called as Ember calls it) and Ember, bit for bit
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import overhead
    finally:
        sys.path.remove(str(ROOT / "bench"))
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(640, 1, 28, 28, generator=generator), torch.randint(0, 10, (640,),
                                                                          generator=generator)
    train_dl = DataLoader(TensorDataset(x[128:], y[128:]), batch_size=32, shuffle=True,
                          drop_last=True)
    valid_dl = DataLoader(TensorDataset(x[:128], y[:128]), batch_size=64)
    torch.manual_seed(0)
    initial = overhead.mlp().state_dict()
    weights = {}
    for name, fit in (("hand", overhead.hand_loop), ("lean", overhead.lean_hand_loop),
                      ("ember", overhead.ember_fit)):
        model = overhead.mlp()
        model.load_state_dict(initial)
        torch.manual_seed(1)  # the same shuffled batches for each
        fit(model, train_dl, valid_dl, 2)
        weights[name] = model.state_dict()
    assert not all(torch.equal(initial[key], weights["hand"][key]) for key in initial)
    for name in ("lean", "ember"):
        assert all(torch.equal(weights["hand"][key], weights[name][key]) for key in initial), name


def test_seq2seq_test_numbers_leave_training_and_validation_as_they_were():
    # --tf-test scores the side by side on numbers no run trained or validated on, and adding
    # it must not change the training and validation draws that earlier tables came from
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import seq2seq
    finally:
        sys.path.remove(str(ROOT / "bench"))
    train, valid = seq2seq.draw_numbers(300, 50, high=1000, seed=2)
    assert (train, valid) == seq2seq.draw_numbers(300, 50, high=1000, seed=2)
    test = seq2seq.draw_test_numbers(600, train + valid, high=1000, seed=3)
    assert len(set(test)) == 600 and not set(test) & set(train + valid)
    assert test == seq2seq.draw_test_numbers(600, train + valid, high=1000, seed=3)
    with pytest.raises(ValueError, match="only 650 are left"):
        seq2seq.draw_test_numbers(651, train + valid, high=1000)
