"""An encoder-decoder with attention, written to be read: a bidirectional GRU/LSTM encoder, and a
decoder that takes one step at a time so teacher forcing can be decided at every step.

One decoder step (:meth:`Seq2SeqRNN.decode_step`):

1. embed the previous token;
2. attend: score every encoder output against the previous decoder state — additive
   (Bahdanau: ``v · tanh(W_k h + W_q s)``) or multiplicative (Luong "general": ``s · W h``) —
   and take the softmax-weighted sum of encoder outputs (the context);
3. update the decoder state from ``[embedding; context]``;
4. predict the next token from ``[state; context; embedding]``.

Example:
    >>> import torch
    >>> model = Seq2SeqRNN(src_vocab_size=10, tgt_vocab_size=8, hidden_size=16, emb_size=8)
    >>> src = torch.tensor([[4, 5, 2], [6, 2, 0]])
    >>> model(src, torch.tensor([[4, 2], [5, 2]])).shape
    torch.Size([2, 2, 8])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["ATTENTIONS", "RNN_TYPES", "AdditiveAttention", "MultiplicativeAttention",
           "Seq2SeqRNN", "seq2seq_rnn"]

PAD, BOS, EOS = 0, 1, 2
ATTENTIONS = ("additive", "multiplicative")
RNN_TYPES = ("gru", "lstm")
TEACHER_FORCING_MODES = ("step", "sample")
COIN_SEED_OFFSET = 0x5EED  # the coins' generator: torch's seed + this (a stream of its own)


class AdditiveAttention(nn.Module):
    """Bahdanau attention: ``score(s, h) = v · tanh(W_k h + W_q s)``.

    Example:
        >>> import torch
        >>> attention = AdditiveAttention(query_size=4, key_size=6, size=5)
        >>> memory = torch.randn(2, 3, 6)
        >>> keys = attention.prepare(memory)
        >>> context, weights = attention(torch.randn(2, 4), keys, memory,
        ...                              torch.ones(2, 3, dtype=torch.bool))
        >>> context.shape, [round(total, 4) for total in weights.sum(-1).tolist()]
        (torch.Size([2, 6]), [1.0, 1.0])
    """

    def __init__(self, query_size: int, key_size: int, size: int) -> None:
        super().__init__()
        self.key = nn.Linear(key_size, size, bias=False)
        self.query = nn.Linear(query_size, size)
        self.energy = nn.Linear(size, 1, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        """Project the encoder outputs once per sequence (reused at every step)."""
        return self.key(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
                ) -> tuple[Tensor, Tensor]:
        scores = self.energy(torch.tanh(keys + self.query(query).unsqueeze(1))).squeeze(-1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights


class MultiplicativeAttention(nn.Module):
    """Luong "general" attention: ``score(s, h) = s · W h``.

    Example:
        >>> import torch
        >>> attention = MultiplicativeAttention(query_size=4, key_size=6)
        >>> memory = torch.randn(2, 3, 6)
        >>> context, weights = attention(torch.randn(2, 4), attention.prepare(memory), memory,
        ...                              torch.ones(2, 3, dtype=torch.bool))
        >>> tuple(weights.shape)
        (2, 3)
    """

    def __init__(self, query_size: int, key_size: int, size: int | None = None) -> None:
        super().__init__()
        self.key = nn.Linear(key_size, query_size, bias=False)
        self.scale = query_size ** -0.5

    def prepare(self, memory: Tensor) -> Tensor:
        """Project the encoder outputs once per sequence (reused at every step)."""
        return self.key(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
                ) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1) * self.scale
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights


class Seq2SeqRNN(nn.Module):
    """Bidirectional RNN encoder + attention decoder.

    Args:
        src_vocab_size, tgt_vocab_size: vocab sizes (ids 0-3 are pad, bos, eos, unk).
        emb_size: token embedding size.
        hidden_size: decoder state size; each encoder direction has half of it.
        n_layers: encoder layers.
        rnn: ``"gru"`` or ``"lstm"``.
        attention: ``"additive"`` or ``"multiplicative"``.
        dropout: dropout on embeddings and before the output layer.
        max_len: steps to decode when ``forward`` gets no target.

    Attributes:
        teacher_forcing_ratio: probability of feeding the true previous token (rather than the
            model's own prediction) at a training step. Used only when ``forward`` gets a
            target in training mode; :class:`ember_text.seq2seq.TeacherForcing` schedules it.
        teacher_forcing_mode: ``"step"`` (one draw per decoding step for the whole batch) or
            ``"sample"`` (one draw per step and per sequence).
        teacher_forcing_generator: the (CPU) ``torch.Generator`` the teacher-forcing coins are
            drawn from, seeded from torch's seed when the model is built. The coins never touch
            torch's global random stream, so in a seeded run the schedule changes nothing else
            (dropout masks, batch order): two schedules compared on one seed differ only where
            their ratios do.

    Example:
        >>> import torch
        >>> model = Seq2SeqRNN(10, 8, hidden_size=16, emb_size=8, rnn="lstm",
        ...                    attention="multiplicative", max_len=5)
        >>> model.eval()(torch.tensor([[4, 5, 2]])).shape
        torch.Size([1, 5, 8])
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, emb_size: int = 64,
                 hidden_size: int = 256, n_layers: int = 1, rnn: str = "gru",
                 attention: str = "additive", dropout: float = 0.1, max_len: int = 50) -> None:
        super().__init__()
        if rnn not in RNN_TYPES:
            raise ValueError(f"rnn must be one of {RNN_TYPES}, got {rnn!r}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if hidden_size % 2:
            raise ValueError(f"hidden_size must be even (two encoder directions), got "
                             f"{hidden_size}")
        self.rnn_type, self.hidden_size, self.max_len = rnn, hidden_size, max_len
        self.teacher_forcing_ratio = 1.0
        self.teacher_forcing_mode = "step"
        self.teacher_forcing_generator = torch.Generator().manual_seed(
            (torch.initial_seed() + COIN_SEED_OFFSET) % 2**63)
        recurrent = nn.GRU if rnn == "gru" else nn.LSTM
        cell = nn.GRUCell if rnn == "gru" else nn.LSTMCell
        self.src_embedding = nn.Embedding(src_vocab_size, emb_size, padding_idx=PAD)
        self.encoder = recurrent(emb_size, hidden_size // 2, num_layers=n_layers,
                                 batch_first=True, bidirectional=True,
                                 dropout=dropout if n_layers > 1 else 0.0)
        self.bridge = nn.Linear(hidden_size, hidden_size)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=PAD)
        attention_class = AdditiveAttention if attention == "additive" else MultiplicativeAttention
        self.attention = attention_class(hidden_size, hidden_size, hidden_size)
        self.cell = cell(emb_size + hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.pre_output = nn.Linear(hidden_size * 2 + emb_size, hidden_size)
        self.output = nn.Linear(hidden_size, tgt_vocab_size)

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Encoder (body) then decoder (head), for freezing and discriminative rates."""
        encoder = [*self.src_embedding.parameters(), *self.encoder.parameters(),
                   *self.bridge.parameters()]
        seen = {id(p) for p in encoder}
        return [encoder, [p for p in self.parameters() if id(p) not in seen]]

    # ------------------------------------------------------------------ encoder
    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor, Any]:
        """Encode ``src`` (``N x S``): returns memory ``N x S x H``, attention keys, the mask of
        real tokens, and the decoder's initial state.

        Example:
            >>> # memory, keys, mask, state = model.encode(src)
        """
        mask = src != PAD
        lengths = mask.sum(dim=1).clamp(min=1)
        embedded = self.dropout(self.src_embedding(src))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        outputs, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])
        hidden = final[0] if self.rnn_type == "lstm" else final
        last = torch.cat([hidden[-2], hidden[-1]], dim=-1)  # last layer, both directions
        state: Any = torch.tanh(self.bridge(last))
        if self.rnn_type == "lstm":
            state = (state, torch.zeros_like(state))
        return memory, self.attention.prepare(memory), mask, state

    # ------------------------------------------------------------------ decoder
    def decode_step(self, token: Tensor, state: Any, memory: Tensor, keys: Tensor, mask: Tensor
                    ) -> tuple[Tensor, Any, Tensor]:
        """One decoding step: previous ``token`` (``N``) → logits ``N x V``, new state,
        attention weights ``N x S``.

        Example:
            >>> # logits, state, weights = model.decode_step(token, state, *model.encode(src)[:3])
        """
        query = state[0] if self.rnn_type == "lstm" else state
        embedded = self.dropout(self.tgt_embedding(token))
        context, weights = self.attention(query, keys, memory, mask)
        state = self.cell(torch.cat([embedded, context], dim=-1), state)
        hidden = state[0] if self.rnn_type == "lstm" else state
        features = torch.tanh(self.pre_output(torch.cat([hidden, context, embedded], dim=-1)))
        return self.output(self.dropout(features)), state, weights

    def forward(self, src: Tensor, tgt: Tensor | None = None) -> Tensor:
        """Logits ``N x T x V``.

        With a target ``tgt`` (``N x T``) the model decodes ``T`` steps; in training mode it
        feeds the true previous token with probability :attr:`teacher_forcing_ratio`, else its
        own prediction. In eval mode, or without a target (``max_len`` steps), it always feeds
        its own greedy prediction: no teacher forcing at validation or inference.
        """
        memory, keys, mask, state = self.encode(src)
        steps = tgt.shape[1] if tgt is not None else self.max_len
        forcing = tgt is not None and self.training and self.teacher_forcing_ratio > 0
        token = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
        outputs = []
        for step in range(steps):
            logits, state, _ = self.decode_step(token, state, memory, keys, mask)
            outputs.append(logits)
            token = logits.argmax(dim=-1)
            if forcing:
                assert tgt is not None
                truth = tgt[:, step]
                if self.teacher_forcing_ratio >= 1.0:
                    token = truth
                elif self.teacher_forcing_mode == "sample":
                    coins = torch.rand(token.shape, generator=self.teacher_forcing_generator)
                    coins = coins.to(token.device, non_blocking=True)
                    token = torch.where(coins < self.teacher_forcing_ratio, truth, token)
                elif float(torch.rand((), generator=self.teacher_forcing_generator)) < (
                        self.teacher_forcing_ratio):
                    token = truth
        return torch.stack(outputs, dim=1)


def seq2seq_rnn(src_vocab_size: int, tgt_vocab_size: int, emb_size: int = 64,
                hidden_size: int = 256, n_layers: int = 1, rnn: str = "gru",
                attention: str = "additive", dropout: float = 0.1, max_len: int = 50
                ) -> Seq2SeqRNN:
    """Builder registered as the ``seq2seq_rnn`` architecture (JSON-able arguments only).

    Example:
        >>> seq2seq_rnn(10, 8, hidden_size=16).rnn_type
        'gru'
    """
    return Seq2SeqRNN(src_vocab_size, tgt_vocab_size, emb_size, hidden_size, n_layers, rnn,
                      attention, dropout, max_len)
