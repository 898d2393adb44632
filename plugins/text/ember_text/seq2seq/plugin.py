"""The seq2seq part of ember-text, registered with Ember through its own entry point
(``text-seq2seq``): the ``seq2seq`` data kind, the ``seq2seq_rnn`` architecture, its defaults
(model sized to the data, :class:`TeacherForcing`, gradient clipping, sequence metrics), the
``teacher_forcing`` callback, the metrics by name, and the ``seq2seq/fr_numbers`` demo.

Example:
    >>> import ember
    >>> "seq2seq_rnn" in ember.get_registry().architectures
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

import ember
from ember_text.seq2seq.callbacks import TeacherForcing
from ember_text.seq2seq.data import Seq2SeqData
from ember_text.seq2seq.metrics import Bleu, ExactMatch, TokenAccuracy
from ember_text.seq2seq.models import seq2seq_rnn

EMBER_CONTRACT = 1


def _sample() -> ember.Sample:
    from ember_text.seq2seq.datasets import load_sample

    pairs = load_sample("fr_numbers")
    data = Seq2SeqData.from_pairs(pairs[:300], valid_pct=0.1, seed=0)
    return ember.Sample(data, items=[source for source, _ in pairs[300:305]])


@ember.hookimpl
def ember_samples(register: Callable[..., None]) -> None:
    register("seq2seq", _sample)


@ember.hookimpl
def ember_data_kinds(register: Callable[..., None]) -> None:
    register("seq2seq", Seq2SeqData)


@ember.hookimpl
def ember_architectures(register: Callable[..., None]) -> None:
    register("seq2seq_rnn", seq2seq_rnn,
             description="bidirectional GRU/LSTM encoder + additive/multiplicative attention "
                         "decoder (teacher forcing, greedy and beam decoding)")


@ember.hookimpl
def ember_callbacks(register: Callable[..., None]) -> None:
    register("TeacherForcing", TeacherForcing)


@ember.hookimpl
def ember_metrics(register: Callable[..., None]) -> None:
    register("exact_match", ExactMatch)
    register("token_accuracy", TokenAccuracy)
    register("bleu", Bleu)


def default_model_config(data: Seq2SeqData) -> dict[str, Any]:
    """The ``seq2seq_rnn`` config :func:`ember.learner` uses for ``data``: 128 hidden units
    under 5,000 training pairs, 256 above; decoding capped at ``data.default_max_len()``.

    Example:
        >>> # default_model_config(data) -> {'src_vocab_size': 40, ..., 'hidden_size': 256}
    """
    n_train = len(data.train_dl.dataset) if data.train_dl is not None else 0
    small = n_train < 5000
    return {
        "src_vocab_size": len(data.src_vocab),
        "tgt_vocab_size": len(data.tgt_vocab),
        "emb_size": 32 if small else 64,
        "hidden_size": 128 if small else 256,
        "rnn": "gru",
        "attention": "additive",
        "dropout": 0.1,
        "max_len": data.default_max_len(),
    }


def default_bleu(data: Seq2SeqData) -> Bleu:
    """BLEU over words when the targets are sentences (word tokens, or at least 4 words on
    average), else over characters (e.g. digits, where word BLEU has no 4-grams to count).

    Example:
        >>> # default_bleu(data).tokens is data.target_words for French-words targets
    """
    targets = data.train_dl.dataset.targets[:500] if data.train_dl is not None else []
    words_per_target = (sum(len(data.target_words(t)) for t in targets) / len(targets)
                        if targets else 0.0)
    if data.tgt_level == "word" or words_per_target >= 4:
        return Bleu(tokens=data.target_words)
    return Bleu()


@ember.hookimpl
def ember_defaults(data: ember.Data) -> ember.Defaults | None:
    if not isinstance(data, Seq2SeqData):
        return None
    return ember.Defaults(
        model=lambda: ember.create_model("seq2seq_rnn", **default_model_config(data)),
        # exact match on the strings users get (data.detokenize), not on the token ids
        metrics=[TokenAccuracy(), ExactMatch(text=data.detokenize), default_bleu(data)],
        cbs=[TeacherForcing(), ember.GradientClip(1.0)],
        lr=3e-3,
    )


def run_demo(smoke: bool = False) -> dict[str, float]:
    """Train French number words → digits on the bundled sample; return validation metrics
    (with the training time).

    Example:
        >>> # run_demo(smoke=True)["token_accuracy"] > 0.3
    """
    from ember_text.seq2seq.datasets import load_sample

    # The decoder runs many tiny steps: one thread avoids synchronisation costs that make a
    # shared two-core machine several times slower. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_demo(load_sample("fr_numbers"), smoke)
    finally:
        torch.set_num_threads(threads)


def _train_demo(pairs: list[tuple[str, str]], smoke: bool) -> dict[str, float]:
    ember.seed(0)
    if smoke:
        pairs = pairs[:400]
    # words in, digits out: word tokens make the source short, so this trains in seconds
    data = Seq2SeqData.from_pairs(pairs, valid_pct=0.1, seed=0, bs=64, level="word",
                                  tgt_level="char")
    learn = ember.learner(data, quiet=True)
    started = time.perf_counter()
    learn.fit_one_cycle(1 if smoke else 10, 1e-2)
    result = dict(learn.validate())
    result["train_seconds"] = time.perf_counter() - started
    return result


@ember.hookimpl
def ember_quickstart(register: Callable[..., None]) -> None:
    register(ember.Demo(domain="seq2seq", name="fr_numbers", run=run_demo,
                        description="French number words → digits (attention seq2seq, "
                                    "bundled num2words sample)"))
