"""Greedy and beam decoding: beam finds what greedy misses; decoding always ends."""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

from ember_text.seq2seq.decoding import beam_search, greedy_decode
from ember_text.seq2seq.models import Seq2SeqRNN

EOS, A, B = 2, 4, 5


class Scripted:
    """A fake model with fixed next-token probabilities, keyed by the previous token.

    After <bos>: A 0.6, B 0.4. After A: <eos> 0.3, seven other tokens 0.1 each.
    After B: <eos> 1.0. Greedy takes A then <eos> (0.18); the best sequence is B <eos> (0.4).
    """

    vocab = 13

    def encode(self, src: torch.Tensor) -> tuple[Any, ...]:
        n = src.shape[0]
        return torch.zeros(n, 1, 1), torch.zeros(n, 1, 1), torch.ones(n, 1, dtype=torch.bool), \
            torch.zeros(n, 1)

    def decode_step(self, token: torch.Tensor, state: torch.Tensor, memory: Any, keys: Any,
                    mask: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        probs = torch.full((len(token), self.vocab), 1e-9)
        for row, previous in enumerate(token.tolist()):
            if previous == 1:
                probs[row, A], probs[row, B] = 0.6, 0.4
            elif previous == A:
                probs[row, EOS] = 0.3
                probs[row, 6:13] = 0.1
            else:
                probs[row, EOS] = 1.0
        return probs.log(), state, torch.ones(len(token), 1)


def test_beam_finds_the_more_likely_sequence_greedy_misses() -> None:
    src = torch.tensor([[7, 2]])
    ids, attention, score = greedy_decode(Scripted(), src, max_len=5)[0]
    assert ids == [A, EOS] and abs(math.exp(score) - 0.18) < 1e-6
    best = beam_search(Scripted(), src, beam=3, max_len=5, length_penalty=0.0)
    assert best[0][0] == [B, EOS] and abs(math.exp(best[0][2]) - 0.4) < 1e-6
    assert attention.shape == (2, 1)


def test_decoding_stops_at_max_len_for_a_model_that_never_ends() -> None:
    torch.manual_seed(0)
    model = Seq2SeqRNN(10, 8, hidden_size=16, emb_size=8).eval()
    with torch.no_grad():
        model.output.bias[EOS] = -1e4  # can never emit <eos>
    src = torch.tensor([[4, 5, 6, 2]])
    ids, attention, _ = greedy_decode(model, src, max_len=7)[0]
    assert len(ids) == 7 and attention.shape == (7, 4)
    hypotheses = beam_search(model, src, beam=4, max_len=7)
    assert hypotheses and all(len(h[0]) == 7 for h in hypotheses)


def test_greedy_equals_free_running_forward() -> None:
    torch.manual_seed(0)
    model = Seq2SeqRNN(10, 8, hidden_size=16, emb_size=8, max_len=6).eval()
    src = torch.tensor([[4, 5, 6, 2], [7, 2, 0, 0]])
    with torch.no_grad():
        expected = model(src).argmax(-1).tolist()
    for row, (ids, _, _) in enumerate(greedy_decode(model, src, max_len=6)):
        assert ids == expected[row][: len(ids)]


class Chain(Scripted):
    """Confident chain A A A <eos>; every other token is junk that ends quickly.

    Unlikely <eos> hypotheses finish early and often; the search must not stop on them before
    the likely chain finishes at step 4.
    """

    def decode_step(self, token: torch.Tensor, state: torch.Tensor, memory: Any, keys: Any,
                    mask: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        probs = torch.full((len(token), self.vocab), 0.03 / (self.vocab - 1))
        for row, (previous, step) in enumerate(zip(token.tolist(), state[:, 0].tolist())):
            if previous == 1:  # first step: A 0.6, <eos> 0.1, the rest share 0.3
                probs[row] = 0.3 / (self.vocab - 2)
                probs[row, A], probs[row, EOS] = 0.6, 0.1
            elif previous == A:
                probs[row, EOS if step >= 3 else A] = 0.97
            else:
                probs[row] = 0.5 / (self.vocab - 1)
                probs[row, EOS] = 0.5
        return probs.log(), state + 1, torch.ones(len(token), 1)


def test_beam_does_not_stop_on_unlikely_finished_hypotheses() -> None:
    src = torch.tensor([[7, 2]])
    assert greedy_decode(Chain(), src, max_len=10)[0][0] == [A, A, A, EOS]
    for penalty in (0.0, 1.0):
        assert beam_search(Chain(), src, beam=5, max_len=10, length_penalty=penalty)[0][0] == \
            [A, A, A, EOS]


def _exhaustive_best(model: Seq2SeqRNN, src: torch.Tensor, vocab: int, max_len: int,
                     length_penalty: float) -> tuple[list[int], float]:
    """The best output by brute force: every sequence that ends at ``<eos>`` or at
    ``max_len``, scored token by token, ranked by ``score / length ** length_penalty``."""
    memory, keys, mask, start = model.encode(src)
    best: tuple[float, list[int]] = (float("-inf"), [])
    for length in range(1, max_len + 1):
        for body in itertools.product([t for t in range(vocab) if t != EOS], repeat=length - 1):
            for last in range(vocab) if length == max_len else (EOS,):
                ids, state, token, score = [*body, last], start, torch.tensor([1]), 0.0
                for target in ids:
                    logits, state, _ = model.decode_step(token, state, memory, keys, mask)
                    score += float(logits.log_softmax(-1)[0, target])
                    token = torch.tensor([target])
                best = max(best, (score / length ** length_penalty, ids))
    return best[1], best[0]


@torch.no_grad()
def test_wide_beam_finds_the_exhaustive_best_under_any_length_penalty() -> None:
    # Seed 8 has a short output that finishes early and a longer, confident one that ranks
    # higher once divided by its length: the search must not stop before it finishes.
    for seed in (8, 33):
        torch.manual_seed(seed)
        model = Seq2SeqRNN(6, 5, hidden_size=8, emb_size=4, dropout=0.0).eval()
        model.output.weight.mul_(4)  # sharper distributions: confident continuations
        model.output.bias.mul_(4)
        src = torch.tensor([[4, 5, 2]])
        for penalty in (0.0, 1.0, 2.0, -0.5):
            expected, rank = _exhaustive_best(model, src, 5, 4, penalty)
            ids, _, score = beam_search(model, src, beam=500, max_len=4,
                                        length_penalty=penalty)[0]
            assert ids == expected, (seed, penalty)
            assert math.isclose(score / len(ids) ** penalty, rank, abs_tol=1e-5)
