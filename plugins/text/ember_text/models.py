"""Text models: an AWD-LSTM encoder and a transformer encoder, each with a language-model head
(tied decoder) or a classifier head (masked concat pooling).

Encoders share one interface, ``encoder(ids, state=None) -> (outputs, state)`` with ``ids`` of
shape ``(batch, time)`` padded at the end with id 1 and ``outputs`` of shape
``(batch, time, features)``, so heads and :func:`generate` work with either.

- :class:`AWDLSTMEncoder` (Merity et al. 2017): embedding dropout (whole words), variational
  dropout on inputs and between layers (one mask per sequence), and weight dropout on the
  LSTMs' hidden-to-hidden matrices (DropConnect).
- :class:`TransformerEncoder`: pre-norm blocks on torch's ``scaled_dot_product_attention``,
  padding masked, causal for language models.
- :class:`LanguageModel`: encoder + output dropout + decoder tied to the embedding; recurrent
  encoders carry their state across batches (the stream continues).
- :class:`TextClassifier`: encoder + :class:`MaskedConcatPool` (last real step, max and mean
  over real steps) + a BatchNorm/dropout MLP head.

Build them by name with ``ember.create_model`` (``"awd_lstm_lm"``, ``"awd_lstm_classifier"``,
``"transformer_lm"``, ``"transformer_classifier"``) so exports can rebuild them.

Example:
    >>> import torch
    >>> model = awd_lstm_classifier(vocab_size=50, n_out=2, emb_size=16, hidden_size=32)
    >>> model(torch.tensor([[2, 5, 7, 1], [2, 9, 1, 1]])).shape
    torch.Size([2, 2])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from ember import DataError, TrainingError
from ember.model import TargetScale, evaluating
from ember.utils import check_whole, is_whole

__all__ = [
    "AWDLSTMEncoder",
    "LanguageModel",
    "MaskedConcatPool",
    "TextClassifier",
    "TransformerEncoder",
    "VariationalDropout",
    "WeightDropLSTM",
    "awd_lstm_classifier",
    "awd_lstm_lm",
    "generate",
    "transformer_classifier",
    "transformer_lm",
]

PAD_ID = 1


class VariationalDropout(nn.Module):
    """Dropout with one mask per sequence, shared over time: input ``(batch, time, features)``.

    Example:
        >>> dropout = VariationalDropout(0.5).train()
        >>> out = dropout(torch.ones(2, 4, 3))
        >>> bool((out[:, 0] == out[:, 3]).all())
        True
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


class WeightDropLSTM(nn.Module):
    """A one-layer LSTM whose hidden-to-hidden weights are dropped (DropConnect) in training,
    with the same dropped matrix for every time step of a batch.

    The LSTM keeps its usual parameters; in training the call goes through
    ``torch.func.functional_call`` with a dropped copy of ``weight_hh_l0`` in its place.

    Example:
        >>> layer = WeightDropLSTM(4, 6, weight_p=0.5)
        >>> out, (h, c) = layer(torch.randn(2, 3, 4))
        >>> out.shape, h.shape
        (torch.Size([2, 3, 6]), torch.Size([1, 2, 6]))
    """

    def __init__(self, input_size: int, hidden_size: int, weight_p: float = 0.5) -> None:
        super().__init__()
        self.weight_p = weight_p
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        if not self.training or self.weight_p == 0:
            return self.lstm(x, state)
        dropped = F.dropout(self.lstm.weight_hh_l0, self.weight_p, training=True)
        return functional_call(self.lstm, {"weight_hh_l0": dropped}, (x, state))


class AWDLSTMEncoder(nn.Module):
    """The AWD-LSTM encoder: embedding → stacked weight-dropped LSTMs, with the ULMFiT
    dropouts (``embed_p`` whole words, ``input_p`` on embeddings, ``hidden_p`` between layers,
    ``weight_p`` on hidden-to-hidden weights). The last layer's size is ``emb_size`` so a
    decoder can be tied to the embedding.

    ``forward(ids, state)`` returns the last layer's outputs and the new state (one
    ``(h, c)`` per layer).

    Example:
        >>> encoder = AWDLSTMEncoder(30, emb_size=8, hidden_size=16, n_layers=2)
        >>> out, state = encoder(torch.tensor([[2, 4, 5]]))
        >>> out.shape, len(state)
        (torch.Size([1, 3, 8]), 2)
    """

    def __init__(self, vocab_size: int, emb_size: int = 400, hidden_size: int = 1152,
                 n_layers: int = 3, pad_id: int = PAD_ID, hidden_p: float = 0.3,
                 input_p: float = 0.4, embed_p: float = 0.05, weight_p: float = 0.5) -> None:
        super().__init__()
        self.emb_size, self.n_layers, self.pad_id = emb_size, n_layers, pad_id
        self.embed_p = embed_p
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        self.input_dropout = VariationalDropout(input_p)
        sizes = [emb_size] + [hidden_size] * (n_layers - 1) + [emb_size]
        self.rnns = nn.ModuleList(
            WeightDropLSTM(sizes[i], sizes[i + 1], weight_p) for i in range(n_layers))
        self.hidden_dropouts = nn.ModuleList(VariationalDropout(hidden_p) for _ in range(n_layers))
        self.out_size = emb_size
        self.layer_sizes = sizes[1:]

    def embed(self, ids: Tensor) -> Tensor:
        """Embed ids, dropping whole words (rows of the embedding) with ``embed_p`` in training.

        Example:
            >>> AWDLSTMEncoder(10, emb_size=4, hidden_size=8).embed(torch.tensor([[2]])).shape
            torch.Size([1, 1, 4])
        """
        weight = self.embedding.weight
        if self.training and self.embed_p:
            mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - self.embed_p)
            weight = weight * mask / (1 - self.embed_p)
        return F.embedding(ids, weight, self.pad_id)

    def forward(self, ids: Tensor, state: list[Any] | None = None) -> tuple[Tensor, list[Any]]:
        outputs, new_state = self.layer_outputs(ids, state)
        return outputs[-1], new_state

    def layer_outputs(self, ids: Tensor, state: list[Any] | None = None
                      ) -> tuple[list[Tensor], list[Any]]:
        """Every layer's outputs (before the dropout between layers) and the new state.

        Example:
            >>> encoder = AWDLSTMEncoder(30, emb_size=8, hidden_size=16, n_layers=2)
            >>> [out.shape[-1] for out in encoder.layer_outputs(torch.tensor([[2, 4]]))[0]]
            [16, 8]
        """
        x = self.input_dropout(self.embed(ids))
        outputs, new_state = [], []
        for index, (rnn, dropout) in enumerate(zip(self.rnns, self.hidden_dropouts)):
            x, layer_state = rnn(x, None if state is None else state[index])
            new_state.append(layer_state)
            outputs.append(x)
            if index < self.n_layers - 1:
                x = dropout(x)
        return outputs, new_state

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Embedding first, then one group per LSTM layer (for gradual unfreezing).

        Example:
            >>> len(AWDLSTMEncoder(10, emb_size=4, hidden_size=8, n_layers=3).param_groups())
            4
        """
        return [list(self.embedding.parameters())] + [list(r.parameters()) for r in self.rnns]


class _Block(nn.Module):
    """A pre-norm transformer block: attention (scaled dot product) then a GELU MLP."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model),
                                 nn.Dropout(dropout))
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, time, 3, self.n_heads, -1).permute(
            2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal and mask is None)
        attended = attended.transpose(1, 2).reshape(batch, time, width)
        x = x + self.residual_dropout(self.proj(attended))
        return x + self.mlp(self.norm2(x))


class TransformerEncoder(nn.Module):
    """A transformer encoder on ``torch.nn.functional.scaled_dot_product_attention``: token and
    learned position embeddings, ``n_layers`` pre-norm blocks, a final LayerNorm. Padding
    (id ``pad_id``) is masked out of attention; ``causal=True`` makes it a left-to-right
    language-model encoder. Inputs longer than ``max_len`` keep their last ``max_len`` tokens.

    Example:
        >>> encoder = TransformerEncoder(30, d_model=16, n_heads=2, n_layers=1)
        >>> encoder(torch.tensor([[2, 4, 1]]))[0].shape
        torch.Size([1, 3, 16])
    """

    def __init__(self, vocab_size: int, d_model: int = 256, n_heads: int = 4, n_layers: int = 4,
                 d_ff: int | None = None, max_len: int = 1024, dropout: float = 0.1,
                 pad_id: int = PAD_ID, causal: bool = False) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.pad_id, self.causal, self.max_len, self.out_size = pad_id, causal, max_len, d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, d_ff or 4 * d_model, dropout)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, ids: Tensor, state: Any = None) -> tuple[Tensor, None]:
        ids = ids[:, -self.max_len:]
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embedding_dropout(self.embedding(ids) + self.position(positions))
        padded = ids == self.pad_id
        mask = None
        # an unpadded causal batch (language modelling) runs SDPA's fused causal kernel without
        # a mask; otherwise the padding is masked. An exported graph cannot branch on the
        # data, so it always carries the mask (the same outputs).
        if not self.causal or torch.compiler.is_exporting() or bool(padded.any()):
            mask = ~padded[:, None, None, :]
            if self.causal:
                mask = mask & torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool,
                                         device=ids.device).tril()
        for block in self.blocks:
            x = block(x, mask, self.causal)
        return self.norm(x), None

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings first, then one group per block (the final norm goes with the last).

        Example:
            >>> len(TransformerEncoder(10, d_model=8, n_heads=2, n_layers=2).param_groups())
            3
        """
        groups = [list(self.embedding.parameters()) + list(self.position.parameters())]
        groups += [list(block.parameters()) for block in self.blocks]
        groups[-1] += list(self.norm.parameters())
        return groups


class LanguageModel(nn.Module):
    """Encoder + output dropout + a decoder tied to the embedding: next-token logits
    ``(batch, time, vocab)``.

    A recurrent encoder keeps its state between calls (the BPTT stream continues); call
    :meth:`reset` at the start of each pass (the plugin's default callbacks do) — it also
    resets by itself when the batch size changes or the model switches between training and
    evaluation. A transformer's input longer than its ``max_len`` is read in windows of
    ``max_len`` ending at the last token, so the logits still cover every token.

    Example:
        >>> lm = awd_lstm_lm(40, emb_size=8, hidden_size=16, n_layers=2)
        >>> lm(torch.tensor([[2, 5, 6]])).shape
        torch.Size([1, 3, 40])
    """

    def __init__(self, encoder: nn.Module, vocab_size: int, output_p: float = 0.1,
                 tie_weights: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.output_dropout = VariationalDropout(output_p)
        self.decoder = nn.Linear(encoder.out_size, vocab_size)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = encoder.embedding.weight
        self.recurrent = isinstance(encoder, AWDLSTMEncoder)
        self.state: list[Any] | None = None
        self._state_training = True

    def init_output_bias(self, counts: Tensor, smoothing: float = 0.1) -> None:
        """Start the decoder's bias at the log unigram frequencies of the training stream
        (``counts[i]``: how often token ``i`` occurs; ``smoothing`` is added to every count).

        Why it matters: at the start of training the quickest way to lower the loss is to
        learn how frequent each word is. With a zero bias, Adam moves every weight by about the
        learning rate per step, so within a few dozen steps the network encodes the frequencies
        by driving the recurrent cells into saturation (cell states in the tens, ``|h|`` ≈ 1
        for any input) to produce a constant vector that, dotted with the tied embedding,
        plays the part of the bias. A language model stuck that way predicts worse, and its
        encoder is useless for transfer: pooled features hardly depend on the text and the
        saturated gates pass no gradient. With the frequencies in the bias from the start the
        cells stay in their working range.

        Example:
            >>> lm = awd_lstm_lm(4, emb_size=2, hidden_size=4, n_layers=1)
            >>> lm.init_output_bias(torch.tensor([0.0, 0.0, 3.0, 1.0]), smoothing=0.0)
            >>> [round(v, 2) for v in lm.decoder.bias.exp().tolist()]
            [0.0, 0.0, 0.75, 0.25]
        """
        counts = counts.detach().to(self.decoder.bias.device, torch.float32)
        if counts.shape != self.decoder.bias.shape:
            raise ValueError(f"counts has shape {tuple(counts.shape)}, the decoder has "
                             f"{self.decoder.bias.shape[0]} outputs")
        counts = counts + smoothing
        with torch.no_grad():
            self.decoder.bias.copy_((counts / counts.sum()).log().clamp(min=-30.0))

    def reset(self) -> None:
        """Forget the carried state (start of an epoch, of validation, of a new text).

        Example:
            >>> awd_lstm_lm(10, emb_size=4, hidden_size=8).reset()
        """
        self.state = None

    def forward(self, ids: Tensor) -> Tensor:
        state = self.state
        if state is not None and (state[0][0].shape[1] != ids.shape[0]
                                  or self.training != self._state_training):
            state = None  # a new batch size, or a switch between training and evaluation
        self._state_training = self.training
        max_len = getattr(self.encoder, "max_len", None)
        if (not self.recurrent and max_len is not None and ids.shape[1] > max_len
                and not torch.compiler.is_exporting()):
            # longer than the encoder's positions (a jittered BPTT chunk, a long text): windows
            # of max_len ending at the last token, so every token gets its next-token logits
            # (one per target) and the last ones, which generation reads, the most context
            ends = range(ids.shape[1], 0, -max_len)
            outputs = torch.cat([self.encoder(ids[:, max(0, end - max_len):end])[0]
                                 for end in reversed(ends)], dim=1)
        else:
            outputs, new_state = self.encoder(ids, state)
            if self.recurrent:
                self.state = [(h.detach(), c.detach()) for h, c in new_state]
        return self.decoder(self.output_dropout(outputs))

    def param_groups(self) -> list[list[nn.Parameter]]:
        """The encoder's groups, with the decoder's bias in the last.

        Example:
            >>> len(awd_lstm_lm(10, emb_size=4, hidden_size=8, n_layers=2).param_groups())
            3
        """
        groups = self.encoder.param_groups()
        seen = {id(p) for group in groups for p in group}
        groups[-1] += [p for p in self.decoder.parameters() if id(p) not in seen]
        return groups


class MaskedConcatPool(nn.Module):
    """Pool ``(batch, time, features)`` over the real (non-padding) steps: the last real
    step, the max and the mean, concatenated → ``(batch, 3 * features)``.

    Example:
        >>> pool = MaskedConcatPool()
        >>> out = pool(torch.tensor([[[1.0], [3.0], [9.0]]]), torch.tensor([[True, True, False]]))
        >>> out.tolist()
        [[3.0, 3.0, 2.0]]
    """

    def forward(self, outputs: Tensor, mask: Tensor) -> Tensor:
        lengths = mask.sum(dim=1).clamp(min=1)
        last = outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths - 1]
        masked = mask.unsqueeze(-1)
        maximum = outputs.masked_fill(~masked, float("-inf")).max(dim=1).values
        mean = (outputs * masked).sum(dim=1) / lengths.unsqueeze(-1).to(outputs.dtype)
        return torch.cat([last, maximum, mean], dim=-1)


class TextClassifier(nn.Module):
    """Encoder + masked concat pooling + a BatchNorm/dropout MLP head → ``(batch, n_out)``.

    ``pool_layers="last"`` pools the encoder's last layer (ULMFiT; with a tied language
    model its width is the embedding's); ``"all"`` pools every layer's outputs, concatenated
    (encoders with ``layer_outputs``, i.e. the AWD-LSTM), a wider summary of the text for the
    head at almost no extra cost.

    An encoder with a ``max_len`` (the transformer) sees the first ``max_len`` tokens of a
    longer text, like the data's own cut.

    Parameter groups: the encoder's (embedding, then each layer), then the head — so
    ``learn.freeze_to(-k)`` unfreezes the top ``k - 1`` encoder layers (ULMFiT's gradual
    unfreezing).

    Example:
        >>> model = awd_lstm_classifier(30, 3, emb_size=8, hidden_size=16, n_layers=1).eval()
        >>> model(torch.tensor([[2, 5, 1]])).shape
        torch.Size([1, 3])
    """

    def __init__(self, encoder: nn.Module, n_out: int, head_size: int = 50,
                 head_p: float = 0.1, pool_layers: str = "last",
                 target_mean: Sequence[float] | None = None,
                 target_std: Sequence[float] | None = None) -> None:
        super().__init__()
        if pool_layers not in ("last", "all"):
            raise TrainingError(f"pool_layers must be 'last' or 'all', got {pool_layers!r}")
        if pool_layers == "all" and not hasattr(encoder, "layer_outputs"):
            raise TrainingError(f"{type(encoder).__name__} has no layer_outputs; use "
                             f"pool_layers='last'")
        self.encoder, self.pool, self.pool_layers = encoder, MaskedConcatPool(), pool_layers
        width = 3 * (sum(encoder.layer_sizes) if pool_layers == "all" else encoder.out_size)
        self.head = nn.Sequential(
            nn.BatchNorm1d(width), nn.Dropout(head_p * 2), nn.Linear(width, head_size),
            nn.ReLU(inplace=True), nn.BatchNorm1d(head_size), nn.Dropout(head_p),
            nn.Linear(head_size, n_out))
        # a regressor's output is mapped to the training targets' scale, so it starts where
        # the targets are; kept in the config, not in the state dict
        self.scale = TargetScale(target_mean, target_std)

    def forward(self, ids: Tensor) -> Tensor:
        max_len = getattr(self.encoder, "max_len", None)
        if max_len is not None:  # the encoder's limit; keep the start, as the data's cut does
            ids = ids[:, :max_len]
        if self.pool_layers == "all":
            outputs = torch.cat(self.encoder.layer_outputs(ids)[0], dim=-1)
        else:
            outputs, _ = self.encoder(ids)
        return self.scale(self.head(self.pool(outputs, ids != self.encoder.pad_id)))

    def param_groups(self) -> list[list[nn.Parameter]]:
        """The encoder's groups, then the head.

        Example:
            >>> len(awd_lstm_classifier(10, 2, emb_size=4, hidden_size=8, n_layers=2)
            ...     .param_groups())
            4
        """
        return [*self.encoder.param_groups(), list(self.head.parameters())]


# ------------------------------------------------------------------------ builders by name
def awd_lstm_lm(vocab_size: int, emb_size: int = 400, hidden_size: int = 1152,
                n_layers: int = 3, drop_mult: float = 1.0, tie_weights: bool = True
                ) -> LanguageModel:
    """An AWD-LSTM language model (ULMFiT dropouts scaled by ``drop_mult``).

    Example:
        >>> awd_lstm_lm(100, emb_size=8, hidden_size=16).decoder.weight.shape
        torch.Size([100, 8])
    """
    encoder = AWDLSTMEncoder(vocab_size, emb_size, hidden_size, n_layers,
                             hidden_p=0.15 * drop_mult, input_p=0.25 * drop_mult,
                             embed_p=0.02 * drop_mult, weight_p=0.2 * drop_mult)
    return LanguageModel(encoder, vocab_size, output_p=0.1 * drop_mult, tie_weights=tie_weights)


def awd_lstm_classifier(vocab_size: int, n_out: int, emb_size: int = 400,
                        hidden_size: int = 1152, n_layers: int = 3, drop_mult: float = 0.5,
                        head_size: int = 50, pool_layers: str = "last",
                        target_mean: Sequence[float] | None = None,
                        target_std: Sequence[float] | None = None) -> TextClassifier:
    """An AWD-LSTM classifier (the encoder of :func:`awd_lstm_lm` with the same config can
    be loaded into it; ULMFiT's classifier dropouts scaled by ``drop_mult``; ``pool_layers``
    as :class:`TextClassifier`).

    Example:
        >>> awd_lstm_classifier(100, 2, emb_size=8, hidden_size=16).head[-1].out_features
        2
    """
    encoder = AWDLSTMEncoder(vocab_size, emb_size, hidden_size, n_layers,
                             hidden_p=0.3 * drop_mult, input_p=0.4 * drop_mult,
                             embed_p=0.05 * drop_mult, weight_p=0.5 * drop_mult)
    return TextClassifier(encoder, n_out, head_size, head_p=0.1 * drop_mult * 2,
                          pool_layers=pool_layers, target_mean=target_mean,
                          target_std=target_std)


def transformer_lm(vocab_size: int, d_model: int = 256, n_heads: int = 4, n_layers: int = 4,
                   max_len: int = 512, dropout: float = 0.1) -> LanguageModel:
    """A causal transformer language model with a tied decoder.

    Example:
        >>> transformer_lm(50, d_model=16, n_heads=2, n_layers=1)(torch.tensor([[2, 3]])).shape
        torch.Size([1, 2, 50])
    """
    encoder = TransformerEncoder(vocab_size, d_model, n_heads, n_layers, max_len=max_len,
                                 dropout=dropout, causal=True)
    return LanguageModel(encoder, vocab_size, output_p=0.0)


def transformer_classifier(vocab_size: int, n_out: int, d_model: int = 256, n_heads: int = 4,
                           n_layers: int = 4, max_len: int = 1024, dropout: float = 0.1,
                           head_size: int = 50, causal: bool = False,
                           target_mean: Sequence[float] | None = None,
                           target_std: Sequence[float] | None = None) -> TextClassifier:
    """A transformer-encoder classifier (bidirectional unless ``causal``, which lets it reuse
    a :func:`transformer_lm` encoder).

    Example:
        >>> transformer_classifier(50, 2, d_model=16, n_heads=2, n_layers=1).eval()(
        ...     torch.tensor([[2, 3, 1]])).shape
        torch.Size([1, 2])
    """
    encoder = TransformerEncoder(vocab_size, d_model, n_heads, n_layers, max_len=max_len,
                                 dropout=dropout, causal=causal)
    return TextClassifier(encoder, n_out, head_size, head_p=dropout, target_mean=target_mean,
                          target_std=target_std)


# ------------------------------------------------------------------------ generation
@torch.no_grad()
def generate(model: nn.Module, prompt: list[int], n_words: int, *, temperature: float = 1.0,
             top_k: int | None = None, banned: list[int] | None = None,
             generator: torch.Generator | None = None, device: Any = None) -> list[int]:
    """Continue ``prompt`` (token ids) by ``n_words`` ids sampled from a :class:`LanguageModel`.

    ``temperature=0`` picks the most likely token each time; otherwise sampling draws from the
    ``top_k`` most likely (``None``: every token); ``banned`` ids are never chosen. The
    prompt goes to ``device``, by default the model's own.
    A recurrent model is fed one token at a time (its state carries the context); a
    transformer sees the whole context each step.

    Example:
        >>> lm = awd_lstm_lm(20, emb_size=8, hidden_size=16, n_layers=1)
        >>> len(generate(lm, [2, 5], 4, temperature=0))
        4
    """
    if top_k is not None and not is_whole(top_k, least=1):
        raise DataError(f"top_k must be at least 1, a whole number (the most likely tokens to "
                        f"sample from), got {top_k!r}; use top_k=None to sample from every "
                        f"token")
    check_whole(n_words, "n_words", "the tokens to generate", least=0)
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
            and temperature >= 0):
        raise DataError(f"temperature must be a finite number, 0 or more (0: always the most "
                        f"likely token), got {temperature!r}")
    recurrent = getattr(model, "recurrent", False)
    if hasattr(model, "reset"):
        model.reset()
    new: list[int] = []
    try:
        with evaluating(model) as model_device:
            device = model_device if device is None else device
            context = torch.tensor([prompt], dtype=torch.long, device=device)
            logits = model(context)[0, -1]
            for _ in range(n_words):
                logits = logits.float().cpu()
                if banned:
                    logits[banned] = float("-inf")
                if temperature <= 0:
                    choice = int(logits.argmax())
                else:
                    # from the largest logit down, in float64: a temperature near 0 (1e-300)
                    # or a huge one (1e308) neither overflows to inf nor rounds to 0/0
                    shifted = logits.double() - logits.max().double()
                    scaled = shifted / temperature
                    if top_k is not None and top_k < len(scaled):
                        threshold = scaled.topk(int(top_k)).values[-1]
                        scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
                    probabilities = scaled.softmax(dim=-1)
                    choice = int(torch.multinomial(probabilities, 1, generator=generator))
                new.append(choice)
                step = torch.tensor([[choice]], dtype=torch.long, device=device)
                if recurrent:
                    logits = model(step)[0, -1]
                else:
                    context = torch.cat([context, step], dim=1)
                    logits = model(context)[0, -1]
    finally:
        if hasattr(model, "reset"):
            model.reset()
    return new


def count_parameters(model: nn.Module) -> int:
    """Number of distinct trainable parameters (tied weights counted once).

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    seen: dict[int, int] = {id(p): p.numel() for p in model.parameters()}
    return sum(seen.values())
