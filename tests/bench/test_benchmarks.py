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
