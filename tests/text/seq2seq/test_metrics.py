"""BLEU against published values, and the id-level metrics on padded batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ember
from ember_text.seq2seq.metrics import Bleu, ExactMatch, TokenAccuracy, corpus_bleu

# NLTK's corpus_bleu docstring example (nltk.translate.bleu_score), itself from Papineni et al.
HYP1 = ["It", "is", "a", "guide", "to", "action", "which", "ensures", "that", "the",
        "military", "always", "obeys", "the", "commands", "of", "the", "party"]
REF1A = ["It", "is", "a", "guide", "to", "action", "that", "ensures", "that", "the",
         "military", "will", "forever", "heed", "Party", "commands"]
REF1B = ["It", "is", "the", "guiding", "principle", "which", "guarantees", "the", "military",
         "forces", "always", "being", "under", "the", "command", "of", "the", "Party"]
REF1C = ["It", "is", "the", "practical", "guide", "for", "the", "army", "always", "to", "heed",
         "the", "directions", "of", "the", "party"]
HYP2 = ["he", "read", "the", "book", "because", "he", "was", "interested", "in", "world",
        "history"]
REF2A = ["he", "was", "interested", "in", "world", "history", "because", "he", "read", "the",
         "book"]


def test_corpus_bleu_matches_the_published_nltk_value() -> None:
    score = corpus_bleu([[REF1A, REF1B, REF1C], [REF2A]], [HYP1, HYP2])
    assert score == pytest.approx(0.5920778868801042, abs=1e-12)


def test_sentence_bleu_matches_the_published_nltk_value() -> None:
    # nltk sentence_bleu docstring: sentence_bleu([reference1, reference2, reference3],
    # hypothesis1) -> 0.5045...
    assert corpus_bleu([[REF1A, REF1B, REF1C]], [HYP1]) == pytest.approx(0.5045666840058485)


def test_bleu_by_hand() -> None:
    # hypothesis "a b c d e" vs reference "a b c d f g":
    # p1 = 4/5, p2 = 3/4, p3 = 2/3, p4 = 1/2; brevity penalty exp(1 - 6/5)
    expected = math.exp(1 - 6 / 5) * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    score = corpus_bleu([[list("abcdfg")]], [list("abcde")])
    assert score == pytest.approx(expected)
    assert corpus_bleu([[list("abcd")]], [list("abcd")]) == 1.0
    assert corpus_bleu([[list("abcd")]], [list("wxyz")]) == 0.0


def _logits(ids: list[list[int]], vocab: int = 12) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), vocab).float()


def test_id_metrics_ignore_padding_and_stop_at_eos() -> None:
    # targets: "4 5 <eos>" and "6 <eos> pad"; predictions right, then wrong in one token
    targets = torch.tensor([[4, 5, 2], [6, 2, -100]])
    preds = _logits([[4, 5, 2], [7, 2, 9]])
    exact, tokens = ExactMatch(), TokenAccuracy()
    for metric in (exact, tokens):
        metric.update(preds, targets)
    assert exact.compute() == 0.5
    assert tokens.compute() == pytest.approx(4 / 5)


def test_bleu_metric_equals_corpus_bleu_on_the_same_tokens() -> None:
    targets = torch.tensor([[4, 5, 6, 7, 8, 2], [4, 5, 6, 7, 2, -100]])
    preds = _logits([[4, 5, 6, 7, 9, 2], [4, 5, 6, 7, 2, 3]])
    metric = Bleu()
    metric.update(preds[:1], targets[:1])  # two batches: statistics are summed, not averaged
    metric.update(preds[1:], targets[1:])
    expected = corpus_bleu([[[4, 5, 6, 7, 8]], [[4, 5, 6, 7]]], [[4, 5, 6, 7, 9], [4, 5, 6, 7]])
    assert metric.compute() == pytest.approx(expected)
    words = Bleu(tokens=lambda ids: ["w" + str(i) for i in ids if i != 2])
    words.update(preds, targets)
    assert words.compute() == pytest.approx(expected)


def test_token_accuracy_and_exact_match_of_nothing_are_nan():
    # a pass that measured no item read 0.0, the worst score, rather than no score
    for metric in (TokenAccuracy(), ExactMatch()):
        assert math.isnan(metric.compute())
    padding = TokenAccuracy()
    padding.update(torch.zeros(1, 2, 6), torch.full((1, 2), -100))
    assert math.isnan(padding.compute())


def test_exact_match_with_text_scores_the_strings_users_get() -> None:
    # id 4 is the word token "cent " (trailing space), id 5 "cent": both read "cent" once
    # detokenised, so a prediction "cent " + <eos> for the target "cent" is the string the
    # user gets and matches; a prediction cut before its <eos> does not
    words = ["<pad>", "<bos>", "<eos>", "<unk>", "cent ", "cent", "un"]

    def text(ids: list[int]) -> str:
        return "".join(words[i] for i in ids).strip()

    targets = torch.tensor([[5, 2, -100], [4, 6, 2], [5, 2, -100]])
    preds = _logits([[4, 2, 9], [4, 6, 2], [5, 5, 5]])
    by_ids, by_text = ExactMatch(), ExactMatch(text=text)
    for metric in (by_ids, by_text):
        metric.update(preds, targets)
    assert by_ids.compute() == pytest.approx(1 / 3)
    assert by_text.compute() == pytest.approx(2 / 3)


@pytest.mark.parametrize("max_order", [0, -1, 2.0, True])
def test_bleu_refuses_an_order_it_cannot_count(max_order: object) -> None:
    refused = r"max_order \(BLEU counts .*\) must be a whole number of at least 1"
    with pytest.raises(ember.DataError, match=refused):
        corpus_bleu([[["a", "b"]]], [["a", "b"]], max_order=max_order)  # type: ignore[arg-type]
    with pytest.raises(ember.DataError, match=refused):
        Bleu(max_order=max_order)  # type: ignore[arg-type]
    assert corpus_bleu([[["a", "b"]]], [["a", "b"]], max_order=np.int64(2)) == 1.0
