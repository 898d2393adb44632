"""Tabular models: entity embeddings for categorical columns, BatchNorm on continuous ones, and
a BatchNorm/dropout MLP, split into a body (embeddings + MLP) and a head (output layer).

The registered architecture ``tabular_mlp`` is built with :func:`ember.create_model`, so an
exported model is rebuilt from its JSON config. :func:`tabular_model` sizes it to a
:class:`~ember_tabular.TabularData`.

Example:
    >>> import torch
    >>> model = tabular_mlp(cardinalities=[4, 3], n_cont=2, n_out=1)
    >>> model(torch.zeros(5, 2, dtype=torch.long), torch.zeros(5, 2)).shape
    torch.Size([5, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

import ember

if TYPE_CHECKING:
    from ember_tabular.data import TabularData

__all__ = [
    "PeriodicEmbedding",
    "PiecewiseLinear",
    "TabularBody",
    "TabularHead",
    "embedding_size",
    "tabular_config",
    "tabular_mlp",
    "tabular_model",
]

#: Default hidden layer widths of the MLP.
DEFAULT_LAYERS = (400, 200)
#: Default number of piecewise-linear bins per continuous column.
DEFAULT_CONT_BINS = 16
#: Default periodic embedding of each continuous column: frequencies, width, initial spread.
DEFAULT_PERIODIC_FREQUENCIES = 16
DEFAULT_PERIODIC_SIZE = 16
DEFAULT_PERIODIC_SCALE = 1.0


def embedding_size(cardinality: int) -> int:
    """fastai's rule for the width of an entity embedding: ``min(600, round(1.6 * n ** 0.56))``.

    Example:
        >>> embedding_size(3), embedding_size(10), embedding_size(1000)
        (3, 6, 77)
    """
    return int(min(600, round(1.6 * cardinality**0.56)))


class PiecewiseLinear(nn.Module):
    """Piecewise-linear encoding of continuous inputs (Gorishniy et al., 2022): each value
    becomes ``n_bins`` numbers in ``[0, 1]`` saying how far it lies through each bin, with bin
    edges at the standard-normal quantiles ``k / n_bins`` — the training quantiles of each column
    once :class:`~ember_tabular.TabularProcessor` has quantile-normalised it. The MLP can then
    model steps and kinks in a column (price jumps at one carat) with few units. The raw value
    is kept alongside.

    Example:
        >>> import torch
        >>> PiecewiseLinear(n_bins=4)(torch.zeros(2, 3)).shape
        torch.Size([2, 15])
    """

    def __init__(self, n_bins: int) -> None:
        super().__init__()
        levels = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64).clamp(1e-4, 1 - 1e-4)
        edges = torch.special.ndtri(levels).float()
        self.register_buffer("left", edges[:-1], persistent=False)
        self.register_buffer("width", edges[1:] - edges[:-1], persistent=False)

    def forward(self, conts: Tensor) -> Tensor:
        position = (conts.unsqueeze(-1) - self.left) / self.width  # [bs, n_cont, n_bins]
        inner = position[..., 1:-1].clamp(0, 1)
        first = position[..., :1].clamp(max=1)  # the outer bins extend linearly
        last = position[..., -1:].clamp(min=0)
        encoded = torch.cat([first, inner, last], dim=-1).flatten(1)
        return torch.cat([conts, encoded], dim=1)


class PeriodicEmbedding(nn.Module):
    """Periodic embeddings of continuous inputs (Gorishniy et al., 2022, "PLR"): each column
    ``i`` gets ``n_frequencies`` learned frequencies ``c_i``; its value ``x`` becomes
    ``[cos(2 pi c_i x), sin(2 pi c_i x)]``, then a linear map of that column's own (``size``
    outputs) and a ReLU. The frequencies start from a normal distribution of standard
    deviation ``scale`` (small values give smooth functions of ``x``; the inputs are
    normalised, so one scale suits every column). The output is ``[bs, n_cont * size]``.

    Example:
        >>> import torch
        >>> PeriodicEmbedding(n_cont=3, n_frequencies=8, size=4)(torch.zeros(2, 3)).shape
        torch.Size([2, 12])
    """

    def __init__(self, n_cont: int, n_frequencies: int, size: int,
                 scale: float = DEFAULT_PERIODIC_SCALE) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(n_cont, n_frequencies) * scale)
        bound = (2 * n_frequencies) ** -0.5  # nn.Linear's initialisation, one map per column
        self.weight = nn.Parameter(torch.empty(n_cont, 2 * n_frequencies, size).uniform_(
            -bound, bound))
        self.bias = nn.Parameter(torch.empty(n_cont, size).uniform_(-bound, bound))

    def forward(self, conts: Tensor) -> Tensor:
        angles = 2 * torch.pi * conts.unsqueeze(-1) * self.frequencies  # [bs, n_cont, k]
        waves = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        embedded = torch.einsum("bnf,nfd->bnd", waves, self.weight) + self.bias
        return torch.relu(embedded).flatten(1)


class TabularBody(nn.Module):
    """Embeddings (with dropout) for ``cats``, BatchNorm for ``conts``, then the MLP layers
    (Linear → ReLU → BatchNorm → Dropout).

    Example:
        >>> import torch
        >>> body = TabularBody([5], [3], n_cont=2, layers=[8], dropout=[0.0])
        >>> body(torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, 2)).shape
        torch.Size([4, 8])
    """

    def __init__(self, cardinalities: Sequence[int], embedding_sizes: Sequence[int], n_cont: int,
                 layers: Sequence[int], dropout: Sequence[float], embedding_dropout: float = 0.0,
                 cont_bins: int = 0, periodic_frequencies: int = 0,
                 periodic_size: int = DEFAULT_PERIODIC_SIZE,
                 periodic_scale: float = DEFAULT_PERIODIC_SCALE) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, size) for n, size in zip(cardinalities, embedding_sizes))
        for embedding in self.embeddings:
            nn.init.trunc_normal_(embedding.weight, std=0.01)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.cont_norm = nn.BatchNorm1d(n_cont) if n_cont else None
        self.n_cont = n_cont
        self.cont_encoding = PiecewiseLinear(cont_bins) if cont_bins and n_cont else None
        self.periodic = (PeriodicEmbedding(n_cont, periodic_frequencies, periodic_size,
                                           periodic_scale)
                         if periodic_frequencies and n_cont else None)
        size = sum(embedding_sizes) + n_cont * (1 + (cont_bins if self.cont_encoding else 0)
                                                + (periodic_size if self.periodic else 0))
        blocks: list[nn.Module] = []
        for width, p in zip(layers, dropout):
            blocks += [nn.Linear(size, width), nn.ReLU(inplace=True), nn.BatchNorm1d(width)]
            if p:
                blocks.append(nn.Dropout(p))
            size = width
        self.layers = nn.Sequential(*blocks)
        self.n_features = size

    def forward(self, cats: Tensor, conts: Tensor) -> Tensor:
        parts = []
        if len(self.embeddings):
            embedded = [embedding(cats[:, i]) for i, embedding in enumerate(self.embeddings)]
            parts.append(self.embedding_dropout(torch.cat(embedded, dim=1)))
        if self.cont_norm is not None:
            conts = self.cont_norm(conts.float())
            parts.append(self.cont_encoding(conts) if self.cont_encoding is not None else conts)
            if self.periodic is not None:
                parts.append(self.periodic(conts))
        return self.layers(torch.cat(parts, dim=1))


class TabularHead(nn.Module):
    """The output layer: a linear map, then for regression either a scaled sigmoid into
    ``y_range`` or an affine map to the training targets' mean and spread (so the network
    learns standardised values while its outputs stay in the target's units).

    Example:
        >>> import torch
        >>> head = TabularHead(4, 1, y_range=[0.0, 10.0])
        >>> bool(((head(torch.randn(8, 4)) > 0) & (head(torch.randn(8, 4)) < 10)).all())
        True
    """

    def __init__(self, n_in: int, n_out: int, y_range: Sequence[float] | None = None,
                 target_mean: Sequence[float] | None = None,
                 target_std: Sequence[float] | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.y_range = tuple(float(v) for v in y_range) if y_range is not None else None
        self.scale = ember.TargetScale(target_mean, target_std)

    def forward(self, features: Tensor) -> Tensor:
        output = self.linear(features)
        if self.y_range is not None:
            low, high = self.y_range
            return low + (high - low) * torch.sigmoid(output)
        return self.scale(output)


def tabular_mlp(
    cardinalities: Sequence[int],
    n_cont: int,
    n_out: int,
    embedding_sizes: Sequence[int] | None = None,
    layers: Sequence[int] = DEFAULT_LAYERS,
    dropout: float | Sequence[float] = 0.0,
    embedding_dropout: float = 0.0,
    cont_bins: int = 0,
    periodic_frequencies: int = 0,
    periodic_size: int = DEFAULT_PERIODIC_SIZE,
    periodic_scale: float = DEFAULT_PERIODIC_SCALE,
    y_range: Sequence[float] | None = None,
    target_mean: Sequence[float] | None = None,
    target_std: Sequence[float] | None = None,
) -> ember.BodyHead:
    """Build the tabular network (registered as ``tabular_mlp``); every argument is JSON-able.

    Args:
        cardinalities: number of codes of each categorical column (vocabulary + unknown).
        n_cont: number of continuous columns.
        n_out: number of outputs (classes, or regression targets).
        embedding_sizes: width of each embedding; :func:`embedding_size` of the cardinality
            when not given.
        layers: hidden layer widths.
        dropout: dropout after each hidden layer (one value, or one per layer).
        embedding_dropout: dropout on the concatenated embeddings.
        cont_bins: piecewise-linear encoding of each continuous column into this many bins
            (:class:`PiecewiseLinear`); 0 feeds the normalised values only.
        periodic_frequencies / periodic_size / periodic_scale: periodic embeddings of each
            continuous column (:class:`PeriodicEmbedding`), added to the above; 0 frequencies
            turns them off.
        y_range: ``(low, high)`` output range for regression (scaled sigmoid).
        target_mean / target_std: training-target statistics used to scale regression outputs.

    Example:
        >>> model = tabular_mlp([10, 3], n_cont=4, n_out=2, layers=[32])
        >>> [len(group) for group in ember.split_groups(model)]
        [8, 2]
    """
    if embedding_sizes is None:
        embedding_sizes = [embedding_size(n) for n in cardinalities]
    if len(embedding_sizes) != len(cardinalities):
        raise ember.TrainingError(f"{len(embedding_sizes)} embedding sizes given for "
                                  f"{len(cardinalities)} categorical columns")
    dropouts = [float(dropout)] * len(layers) if isinstance(dropout, (int, float)) else list(
        dropout)
    if len(dropouts) != len(layers):
        raise ember.TrainingError(f"{len(dropouts)} dropout values given for {len(layers)} layers")
    body = TabularBody(cardinalities, embedding_sizes, n_cont, layers, dropouts,
                       embedding_dropout, cont_bins, periodic_frequencies, periodic_size,
                       periodic_scale)
    head = TabularHead(body.n_features, n_out, y_range, target_mean, target_std)
    return ember.BodyHead(body, head)


def tabular_config(data: TabularData, **overrides: Any) -> dict[str, Any]:
    """The ``tabular_mlp`` config that fits ``data`` (sizes, range, target statistics), with
    ``overrides`` applied.

    Example:
        >>> # ember.create_model("tabular_mlp", **tabular_config(data, layers=[400, 200]))
    """
    processor = data.processor
    config: dict[str, Any] = {
        "cardinalities": processor.cardinalities,
        "n_cont": len(processor.cont_columns),
        "n_out": data.n_out,
        "layers": list(DEFAULT_LAYERS),
        "dropout": 0.0,
        "embedding_dropout": 0.0,
        "cont_bins": DEFAULT_CONT_BINS,
        "periodic_frequencies": DEFAULT_PERIODIC_FREQUENCIES,
        "periodic_size": DEFAULT_PERIODIC_SIZE,
        "periodic_scale": DEFAULT_PERIODIC_SCALE,
        "y_range": data.y_range,
        "target_mean": data.target_mean,
        "target_std": data.target_std,
    }
    config.update(overrides)
    return config


def tabular_model(data: TabularData, **overrides: Any) -> nn.Module:
    """Build the default tabular network for ``data`` through :func:`ember.create_model`
    (so it can be exported); ``overrides`` change any :func:`tabular_mlp` argument.

    Example:
        >>> # learn = ember.learner(data, model=tabular_model(data, layers=[1000, 500]))
    """
    return ember.create_model("tabular_mlp", **tabular_config(data, **overrides))
