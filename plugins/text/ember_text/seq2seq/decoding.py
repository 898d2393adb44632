"""Greedy and beam-search decoding for :class:`~ember_text.seq2seq.models.Seq2SeqRNN`-like
models (anything with ``encode(src)`` and ``decode_step(token, state, memory, keys, mask)``).

Both stop at ``<eos>`` or after ``max_len`` steps, so decoding always ends, and both return the
attention weights of every step for :func:`show_attention`.

Example:
    >>> import torch
    >>> from ember_text.seq2seq.models import Seq2SeqRNN
    >>> model = Seq2SeqRNN(10, 8, hidden_size=16, emb_size=8).eval()
    >>> ids, attention, score = greedy_decode(model, torch.tensor([[4, 5, 2]]), max_len=6)[0]
    >>> len(ids) <= 6 and attention.shape[1] == 3
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["beam_search", "greedy_decode"]

BOS, EOS = 1, 2


def _select_state(state: Any, index: Tensor) -> Any:
    if isinstance(state, tuple):
        return tuple(part.index_select(0, index) for part in state)
    return state.index_select(0, index)


@torch.no_grad()
def greedy_decode(model: Any, src: Tensor, max_len: int
                  ) -> list[tuple[list[int], np.ndarray, float]]:
    """Pick the most likely token at every step, for a whole batch at once.

    Returns, per item, ``(ids, attention, score)``: the ids up to and including ``<eos>``
    (if reached), attention ``steps x source length``, and the summed log-probability.

    Example:
        >>> # [(ids, attention, score)] = greedy_decode(model, encoded_src, max_len=20)
    """
    memory, keys, mask, state = model.encode(src)
    n = src.shape[0]
    token = torch.full((n,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(n, dtype=torch.bool, device=src.device)
    scores = torch.zeros(n, device=src.device)
    steps, weights_per_step = [], []
    for _ in range(max_len):
        logits, state, weights = model.decode_step(token, state, memory, keys, mask)
        log_probs = logits.float().log_softmax(dim=-1)
        best, token = log_probs.max(dim=-1)
        scores += torch.where(done, torch.zeros_like(best), best)
        steps.append(token)
        weights_per_step.append(weights)
        done |= token == EOS
        if bool(done.all()):
            break
    ids = torch.stack(steps, dim=1).cpu().tolist()
    attention = torch.stack(weights_per_step, dim=1).float().cpu().numpy()
    results = []
    for row, item_ids in enumerate(ids):
        length = item_ids.index(EOS) + 1 if EOS in item_ids else len(item_ids)
        results.append((item_ids[:length], attention[row, :length], float(scores[row])))
    return results


@torch.no_grad()
def beam_search(model: Any, src: Tensor, beam: int = 5, max_len: int = 50,
                length_penalty: float = 1.0) -> list[tuple[list[int], np.ndarray, float]]:
    """Beam search for ONE source sequence (``src`` is ``1 x S``).

    Keeps the ``beam`` best partial hypotheses at each step; a hypothesis that emits ``<eos>``
    is finished, and the search stops once no live hypothesis could still finish ranked above
    the best finished one (or after ``max_len`` steps). Finished hypotheses are ranked by
    ``score / length ** length_penalty`` (``length`` counts ``<eos>``; ``length_penalty=0``:
    raw log-probability, which favours short outputs). With a positive penalty a live
    hypothesis is bounded by its score over ``max_len ** length_penalty`` (log-probabilities
    only fall, and a longer output divides by more), so the search is exact for its beam but
    often runs to ``max_len``. Returns the finished hypotheses best first, as
    ``(ids, attention, score)``.

    Example:
        >>> # best_ids, attention, score = beam_search(model, src[:1], beam=5, max_len=20)[0]
    """
    if src.shape[0] != 1:
        raise ValueError(f"beam_search decodes one sequence at a time; got a batch of "
                         f"{src.shape[0]}")
    memory, keys, mask, state = model.encode(src)
    device = src.device
    tokens = torch.full((1,), BOS, dtype=torch.long, device=device)
    scores = torch.zeros(1, device=device)
    histories: list[list[int]] = [[]]
    attentions: list[list[Tensor]] = [[]]
    finished: list[tuple[list[int], np.ndarray, float, float]] = []
    for step in range(max_len):
        n_alive = tokens.shape[0]
        logits, state, weights = model.decode_step(
            tokens, state, memory.expand(n_alive, -1, -1), keys.expand(n_alive, -1, -1),
            mask.expand(n_alive, -1))
        log_probs = logits.float().log_softmax(dim=-1)
        vocab = log_probs.shape[-1]
        candidates = (scores.unsqueeze(1) + log_probs).reshape(-1)
        top_scores, top_index = candidates.topk(min(beam * 2, candidates.numel()))
        keep_rows, keep_tokens, keep_scores = [], [], []
        for score, flat in zip(top_scores.tolist(), top_index.tolist()):
            row, token = divmod(flat, vocab)
            history = [*histories[row], token]
            attention = [*attentions[row], weights[row]]
            if token == EOS or step == max_len - 1:
                rank = score / (len(history) ** length_penalty)
                finished.append((history, torch.stack(attention).cpu().numpy(), score, rank))
            else:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
            if len(keep_rows) == beam:
                break
        if not keep_rows:
            break
        # stop when no live hypothesis can end up ranked above the best finished one. Its
        # score can only fall, and it ends with at least one more token (<eos>) and at most
        # max_len: with a positive penalty the longest ending ranks highest, otherwise the
        # shortest. Comparing its rank at its current length would stop too early under a
        # positive penalty, since a long, confident continuation divides by more.
        best_finished = max((f[3] for f in finished), default=float("-inf"))
        best_length = max_len if length_penalty > 0 else min(step + 2, max_len)
        if max(keep_scores) / (best_length ** length_penalty) < best_finished:
            break
        rows = torch.tensor(keep_rows, device=device)
        state = _select_state(state, rows)
        tokens = torch.tensor(keep_tokens, device=device)
        scores = torch.tensor(keep_scores, device=device)
        histories = [[*histories[r], t] for r, t in zip(keep_rows, keep_tokens)]
        attentions = [[*attentions[r], weights[r]] for r in keep_rows]
    finished.sort(key=lambda f: f[3], reverse=True)
    return [(ids, attention, score) for ids, attention, score, _ in finished]
