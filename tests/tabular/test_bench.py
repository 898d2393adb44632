"""The benchmark script runs in smoke mode on the bundled samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_prints_a_table_and_results() -> None:
    pytest.importorskip("sklearn")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "tabular.py"), "--smoke",
                           "--no-fastai"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| diamonds | rmse_log_price |" in done.stdout
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 2 and all("baseline=" in line for line in results)
