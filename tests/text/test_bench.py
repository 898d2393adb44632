"""bench/text.py runs in smoke mode on the bundled sample and prints its RESULT lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "text.py"


def test_bench_text_smoke(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_text", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--data", "/nonexistent"]) == 0
    output = capsys.readouterr().out
    assert "| model | valid accuracy | seconds |" in output
    for name in ("text_scratch_accuracy", "text_ulmfit_accuracy", "text_tokenize_speedup"):
        assert f"RESULT {name} " in output
