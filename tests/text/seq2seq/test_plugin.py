"""The plugin end to end: defaults, training, predict with beam, attention, export → load."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

import ember
from ember_text.seq2seq import TeacherForcing, Translation, show_attention
from ember_text.seq2seq.plugin import run_demo

ROOT = Path(__file__).resolve().parents[3]


def test_plugin_registers_everything() -> None:
    registry = ember.get_registry()
    assert "seq2seq" in registry.data_kinds and "seq2seq_rnn" in registry.architectures
    assert {"exact_match", "token_accuracy", "bleu"} <= set(registry.metrics)
    assert "TeacherForcing" in registry.callbacks
    assert any(d.domain == "seq2seq" and d.name == "fr_numbers" for d in registry.demos)
    info = {i.name: i for i in ember.plugin_infos()}["text-seq2seq"]
    assert info.status == "ok", info.reason


def test_defaults_and_training(trained: ember.Learner) -> None:
    assert trained.model.ember_config["name"] == "seq2seq_rnn"
    assert [m.name for m in trained.metrics] == ["token_accuracy", "exact_match", "bleu"]
    assert any(isinstance(cb, TeacherForcing) for cb in trained.cbs)
    last = trained.recorder.values[-1]
    # 1,800 training numbers are enough to read unseen ones: 200 held-out numbers, most of
    # them with 3 to 6 digits, nearly all exactly right (chance: 1 digit in 10)
    assert last["valid_loss"] < 0.1 * trained.initial_loss
    assert last["token_accuracy"] > 0.95
    assert last["exact_match"] > 0.9 and last["bleu"] > 0.9


def test_predict_greedy_beam_and_attention(trained: ember.Learner) -> None:
    greedy = trained.predict("quarante-deux")
    assert greedy == trained.predict("quarante-deux", beam=5) == "42"
    sources = ["neuf cent vingt et un", "cent deux", "sept cent mille trois"]
    batch = trained.predict_batch(sources, beam=5)
    assert batch == [trained.predict(source, beam=5) for source in sources]  # batch = one by one
    assert batch[:2] == ["921", "102"] and batch[2].isdigit()
    translation = trained.predict("cent deux", beam=3, with_attention=True)
    assert isinstance(translation, Translation)
    assert translation.attention.shape == (len(translation.tokens),
                                           len(translation.source_tokens))
    assert translation.attention.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    import matplotlib.pyplot as plt

    figure = show_attention(trained, "quarante-deux")
    assert figure.translation.text == greedy
    plt.close(figure)
    with pytest.raises(TypeError, match="unexpected prediction options"):
        trained.predict("deux", temperature=0.5)


def test_show_results_rows(trained: ember.Learner) -> None:
    rows = trained.show_results(4)
    assert len(rows) == 4 and all(len(row) == 3 for row in rows)


def test_bad_input_at_inference(trained: ember.Learner) -> None:
    with pytest.raises(ember.DataError, match="empty"):
        trained.predict("")
    with pytest.warns(ember.EmberWarning, match="never seen"):
        trained.predict("quarante ☃")
    long_source = " ".join(["quatre-vingt-dix-neuf mille"] * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = trained.predict(long_source, beam=3)
    assert len(text) <= trained.data.default_max_len()


def test_export_load_gives_identical_predictions(trained: ember.Learner, tmp_path: Path
                                                 ) -> None:
    path = trained.export(tmp_path / "numbers.ember")
    predictor = ember.load(path)
    sources = ["quarante-deux", "sept", "cent mille un", "neuf cent quatre-vingt-dix-neuf"]
    assert predictor.predict_batch(sources) == trained.predict_batch(sources)
    assert predictor.predict_batch(sources, beam=4) == trained.predict_batch(sources, beam=4)
    state = predictor.manifest["data"]["state"]
    assert state["level"] == "word" and state["tgt_level"] == "char"
    json.dumps(predictor.manifest)


@pytest.mark.slow
def test_demo_smoke_runs() -> None:
    result = run_demo(smoke=True)
    assert {"valid_loss", "token_accuracy", "exact_match", "bleu"} <= set(result)


@pytest.mark.slow
def test_bench_smoke_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "seq2seq.py"), "--smoke", "--task", "all",
         "--threads", "1"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) >= 7 and all("baseline=" in line for line in results)


@pytest.mark.slow
def test_bench_teacher_forcing_pool_resumes(tmp_path: Path) -> None:
    """``--tf-pool``: every finished (seed, arm) run is appended; a second call with the same
    settings reads them back instead of training, and prints the same table."""
    pool = tmp_path / "pool.jsonl"
    command = [sys.executable, str(ROOT / "bench" / "seq2seq.py"), "--smoke", "--task", "tf",
               "--threads", "1", "--tf-pool", str(pool),
               "--tf-default", "adaptive,accuracy_low=0.2,accuracy_high=0.4"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(pool.read_text().splitlines()) == 3  # constant 1.0, constant 0.5, the default
    assert "ratio by epoch" in first.stdout and "running token accuracy" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "3 runs read from" in second.stdout and "0 to train" in second.stdout
    assert len(pool.read_text().splitlines()) == 3

    def results(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("RESULT ")]

    assert results(second.stdout) == results(first.stdout)


def test_default_exact_match_scores_the_strings_predict_returns() -> None:
    import torch

    from ember_text.seq2seq import Seq2SeqData
    from ember_text.seq2seq.plugin import ember_defaults

    pairs = [("hundred", "cent"), ("one hundred and one", "cent un")] * 5
    data = Seq2SeqData.from_pairs(pairs, valid_pct=0.2, level="word", bs=4)
    stoi = data.tgt_vocab.stoi
    exact = next(m for m in ember_defaults(data).metrics if m.name == "exact_match")
    # the model said "cent " then <eos>: predict returns "cent", the target itself
    logits = torch.nn.functional.one_hot(torch.tensor([[stoi["cent "], 2]]),
                                         len(data.tgt_vocab)).float()
    exact.update(logits, torch.tensor([[stoi["cent"], 2]]))
    assert exact.compute() == 1.0
