"""Greedy and beam decoding: beam finds what greedy misses; decoding always ends."""

from __future__ import annotations

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
