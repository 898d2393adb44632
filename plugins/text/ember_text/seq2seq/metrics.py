"""Sequence metrics: exact match, token accuracy and corpus BLEU.

They read the model's logits ``N x T x V`` and targets ``N x T`` (padding ``-100``). During
validation the model decodes without teacher forcing for as many steps as the target has, so
these are the scores of free-running greedy decoding (a hypothesis longer than its reference is
cut at the reference's length; :func:`corpus_bleu` on decoded strings has no such limit).

BLEU is written here (torchtext cannot be used): Papineni et al. (2002) corpus BLEU — clipped
n-gram precisions summed over the corpus, geometric mean over orders 1-4, brevity penalty from
the summed closest reference lengths — with no smoothing, as ``multi-bleu.perl`` and
sacreBLEU count it. NLTK's ``corpus_bleu`` agrees wherever every hypothesis has at least
``max_order`` tokens; on shorter ones it counts an n-gram total of at least 1 per sentence, so
its precisions (and scores) come out lower there.

Example:
    >>> round(corpus_bleu([[["the", "cat", "sat", "on", "the", "mat"]]],
    ...                   [["the", "cat", "sat", "on", "the", "mat"]]), 4)
    1.0
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

import ember
from ember.metrics import IGNORE_INDEX
from ember.utils import check_whole

__all__ = ["Bleu", "ExactMatch", "TokenAccuracy", "bleu_statistics", "corpus_bleu"]

EOS = 2


def _ngrams(tokens: Sequence[Any], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _check_max_order(max_order: Any) -> None:
    """A ValueError for an n-gram order BLEU cannot use (it needs orders 1 … ``max_order``)."""
    check_whole(max_order, "max_order", "BLEU counts n-grams of orders 1 to max_order; 4 is "
                "the standard")


def bleu_statistics(references: Sequence[Sequence[Any]], hypothesis: Sequence[Any],
                    max_order: int = 4) -> tuple[list[int], list[int], int, int]:
    """Clipped n-gram matches and totals (orders 1 … ``max_order``), hypothesis length and
    closest reference length (ties → the shorter) for one sentence.

    Example:
        >>> bleu_statistics([["a", "b", "c"]], ["a", "b", "d"], max_order=2)
        ([2, 1], [3, 2], 3, 3)
    """
    _check_max_order(max_order)
    return _sentence_statistics(references, hypothesis, max_order)


def _sentence_statistics(references: Sequence[Sequence[Any]], hypothesis: Sequence[Any],
                         max_order: int) -> tuple[list[int], list[int], int, int]:
    """:func:`bleu_statistics` for a ``max_order`` checked already (by the corpus or the
    metric that calls it for each sentence)."""
    matches, totals = [], []
    for n in range(1, max_order + 1):
        hypothesis_counts = _ngrams(hypothesis, n)
        most: Counter = Counter()
        for reference in references:
            for gram, count in _ngrams(reference, n).items():
                most[gram] = max(most[gram], count)
        matches.append(sum(min(c, most[g]) for g, c in hypothesis_counts.items()))
        totals.append(max(0, len(hypothesis) - n + 1))
    hypothesis_length = len(hypothesis)
    closest = min((abs(len(r) - hypothesis_length), len(r)) for r in references)[1] \
        if references else 0
    return matches, totals, hypothesis_length, closest


def _bleu_from(matches: Sequence[float], totals: Sequence[float], hypothesis_length: float,
               reference_length: float) -> float:
    if hypothesis_length == 0 or any(m == 0 for m in matches) or any(t == 0 for t in totals):
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / len(matches)
    brevity = 1.0 if hypothesis_length > reference_length else math.exp(
        1 - reference_length / hypothesis_length)
    return brevity * math.exp(log_precision)


def corpus_bleu(list_of_references: Sequence[Sequence[Sequence[Any]]],
                hypotheses: Sequence[Sequence[Any]], max_order: int = 4) -> float:
    """Corpus-level BLEU (0 … 1) of tokenised ``hypotheses`` against one or more references each.

    Statistics are summed over the corpus before the precisions are taken (this is not the
    average of sentence scores). Same argument order as NLTK's ``corpus_bleu``.

    Example:
        >>> round(corpus_bleu([[["a", "b", "c", "d"]]], [["a", "b", "c", "e"]], max_order=2), 4)
        0.7071
    """
    _check_max_order(max_order)
    if len(list_of_references) != len(hypotheses):
        raise ember.DataError(f"{len(hypotheses)} hypotheses for {len(list_of_references)} "
                              f"reference sets; give one set of references per hypothesis")
    matches, totals = [0] * max_order, [0] * max_order
    hypothesis_length = reference_length = 0
    for references, hypothesis in zip(list_of_references, hypotheses):
        m, t, h, r = _sentence_statistics(references, hypothesis, max_order)
        matches = [a + b for a, b in zip(matches, m)]
        totals = [a + b for a, b in zip(totals, t)]
        hypothesis_length += h
        reference_length += r
    return _bleu_from(matches, totals, hypothesis_length, reference_length)


def _rows(preds: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    predicted = preds.argmax(dim=-1)
    steps = min(predicted.shape[1], targets.shape[1])
    predicted, targets = predicted[:, :steps], targets[:, :steps]
    return predicted, targets, targets != IGNORE_INDEX


class TokenAccuracy(ember.Metric):
    """Share of target tokens (``<eos>`` included, padding not) predicted right.

    Example:
        >>> import torch
        >>> logits = torch.nn.functional.one_hot(torch.tensor([[4, 5, 2]]), 6).float()
        >>> metric = TokenAccuracy()
        >>> metric.update(logits, torch.tensor([[4, 4, 2]]))
        >>> round(metric.compute(), 4)
        0.6667
    """

    name = "token_accuracy"
    sum_states = ("correct", "count")

    def update(self, preds: Tensor, targets: Tensor) -> None:
        predicted, targets, real = _rows(preds, targets)
        self._add("correct", ((predicted == targets) & real).sum())
        self._add("count", real.sum())

    def compute(self) -> float:
        return self.share(self.correct, self.count)


class ExactMatch(ember.Metric):
    """Share of sequences predicted exactly.

    By default every target token (``<eos>`` included) must be predicted right. Give
    ``text=data.detokenize`` (the default for seq2seq data, see :func:`ember.learner`) to
    compare the strings users get instead: the greedy ids up to the first ``<eos>`` (which
    must be reached) against the target's, each turned into text, so two token sequences that
    read the same count as a match (e.g. a last word token ``"cent "`` with its trailing
    space, where the target has ``"cent"``: ``predict`` returns ``"cent"`` for both).

    Example:
        >>> import torch
        >>> logits = torch.nn.functional.one_hot(torch.tensor([[4, 2], [5, 2]]), 6).float()
        >>> metric = ExactMatch()
        >>> metric.update(logits, torch.tensor([[4, 2], [4, 2]]))
        >>> metric.compute()
        0.5
        >>> words = ExactMatch(text=lambda ids: "".join(["", "", "", "", "a ", "a"][i]
        ...                                             for i in ids).strip())
        >>> words.update(logits, torch.tensor([[5, 2], [5, 2]]))
        >>> words.compute()
        1.0
    """

    name = "exact_match"
    sum_states = ("correct", "count")

    def __init__(self, text: Callable[[list[int]], str] | None = None) -> None:
        self.text = text
        super().__init__()

    def update(self, preds: Tensor, targets: Tensor) -> None:
        predicted, targets, real = _rows(preds, targets)
        if self.text is None:
            correct: Any = ((predicted == targets) | ~real).all(dim=1).sum()
        else:
            correct = sum(
                EOS in hypothesis_ids and self.text(_until_eos(hypothesis_ids)) == self.text(
                    _until_eos([i for i in reference_ids if i != IGNORE_INDEX]))
                for hypothesis_ids, reference_ids in zip(predicted.cpu().tolist(),
                                                         targets.cpu().tolist()))
        self._add("correct", correct)
        self._add("count", targets.shape[0])

    def compute(self) -> float:
        return self.share(self.correct, self.count)


class Bleu(ember.Metric):
    """Corpus BLEU over a whole validation pass (see :func:`corpus_bleu`).

    Hypotheses are the greedy ids up to the first ``<eos>``; references the target ids. By
    default the ids themselves are the tokens (character BLEU for character-level data); give
    ``tokens=data.target_words`` to score whitespace-separated words instead (the default for
    seq2seq data, see :func:`ember.learner`).

    Example:
        >>> import torch
        >>> logits = torch.nn.functional.one_hot(torch.tensor([[4, 5, 6, 7, 2]]), 9).float()
        >>> metric = Bleu(max_order=2)
        >>> metric.update(logits, torch.tensor([[4, 5, 6, 8, 2]]))
        >>> round(metric.compute(), 4)
        0.7071
    """

    name = "bleu"
    sum_states = ("matches", "totals", "hypothesis_length", "reference_length")

    def __init__(self, max_order: int = 4,
                 tokens: Callable[[list[int]], Sequence[Any]] | None = None) -> None:
        _check_max_order(max_order)
        self.max_order, self.tokens = max_order, tokens
        super().__init__()

    def update(self, preds: Tensor, targets: Tensor) -> None:
        predicted = preds.argmax(dim=-1).cpu().tolist()
        references = targets.cpu().tolist()
        matches, totals = [0] * self.max_order, [0] * self.max_order
        hypothesis_length = reference_length = 0
        for hypothesis_ids, reference_ids in zip(predicted, references):
            hypothesis_ids = _until_eos(hypothesis_ids)
            reference_ids = _until_eos([i for i in reference_ids if i != IGNORE_INDEX])
            hypothesis = self.tokens(hypothesis_ids) if self.tokens else hypothesis_ids
            reference = self.tokens(reference_ids) if self.tokens else reference_ids
            m, t, h, r = _sentence_statistics([reference], hypothesis, self.max_order)
            matches = [a + b for a, b in zip(matches, m)]
            totals = [a + b for a, b in zip(totals, t)]
            hypothesis_length += h
            reference_length += r
        self._add("matches", torch.tensor(matches, dtype=torch.float64))
        self._add("totals", torch.tensor(totals, dtype=torch.float64))
        self._add("hypothesis_length", torch.tensor(float(hypothesis_length)))
        self._add("reference_length", torch.tensor(float(reference_length)))

    def compute(self) -> float:
        if self.matches.ndim == 0:  # nothing added
            return float("nan")
        return _bleu_from(self.matches.tolist(), self.totals.tolist(),
                          float(self.hypothesis_length), float(self.reference_length))


def _until_eos(ids: list[int]) -> list[int]:
    return ids[: ids.index(EOS)] if EOS in ids else ids
