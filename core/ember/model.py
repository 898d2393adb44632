"""The model contract: any ``nn.Module`` plus a split into parameter groups (body → head).

Freezing and discriminative learning rates work on these groups. A model states its split in
one of three ways, checked in this order: a ``splitter`` given to the Learner, a
``param_groups()`` method on the model, or ``body`` and ``head`` attributes. Otherwise the whole
model is one group.

BatchNorm in frozen groups is handled deliberately by ``bn_policy``:

- ``"train"`` (default): BatchNorm layers of frozen groups keep training — their affine weights
  get gradients and their running statistics adapt to the new data. This is what makes a body
  pretrained on other data transfer well (fastai's finding, shown again in
  ``tests/core/test_learner.py``, where it gains accuracy on shifted inputs).
- ``"freeze"``: frozen groups are frozen entirely; their BatchNorm layers run in eval mode, so
  running statistics stay exactly as pretrained. Choose it when the new data looks like the
  pretraining data and batches are small.

Example:
    >>> import torch
    >>> model = BodyHead(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    >>> [len(group) for group in split_groups(model)]
    [2, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

__all__ = [
    "BN_POLICIES",
    "BodyHead",
    "TargetScale",
    "apply_bn_policy",
    "bn_types",
    "evaluating",
    "freeze_to",
    "mlp",
    "split_groups",
    "target_scale",
]

BN_POLICIES = ("train", "freeze")
bn_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class BodyHead(nn.Module):
    """A model made of a ``body`` (features) and a ``head`` (task); two parameter groups.

    Example:
        >>> import torch
        >>> model = BodyHead(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
        >>> model(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(*inputs))


def split_groups(
    model: nn.Module,
    splitter: Callable[[nn.Module], Sequence[Sequence[nn.Parameter]]] | None = None,
) -> list[list[nn.Parameter]]:
    """Split ``model``'s parameters into groups, body first and head last. A parameter that
    several groups list (weights tied between body and head) belongs to the first of them.

    Example:
        >>> import torch
        >>> len(split_groups(torch.nn.Linear(2, 2)))
        1
    """
    if splitter is not None:
        groups = [list(group) for group in splitter(model)]
    elif hasattr(model, "param_groups") and callable(model.param_groups):
        groups = [list(group) for group in model.param_groups()]
    elif isinstance(getattr(model, "body", None), nn.Module) and isinstance(
        getattr(model, "head", None), nn.Module
    ):
        groups = [list(model.body.parameters()), list(model.head.parameters())]
    else:
        groups = [list(model.parameters())]
    # a shared (tied) parameter stays in its first group: an optimiser refuses one in two
    seen: set[int] = set()
    for index, group in enumerate(groups):
        unique = []
        for param in group:
            if id(param) not in seen:
                seen.add(id(param))
                unique.append(param)
        groups[index] = unique
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:  # parameters the split forgot still train, with the head
        groups[-1].extend(rest)
    return [group for group in groups if group]


def _is_bn_param(model: nn.Module) -> set[int]:
    return {id(p) for m in model.modules() if isinstance(m, bn_types) for p in m.parameters()}


def _check_bn_policy(bn_policy: object) -> None:
    """Refuse anything but one of :data:`BN_POLICIES`, naming them and what each does."""
    if not isinstance(bn_policy, str) or bn_policy not in BN_POLICIES:
        raise ValueError(
            f"bn_policy={bn_policy!r} is not a BatchNorm policy; give one of "
            f"{', '.join(map(repr, BN_POLICIES))} ('train': frozen groups' BatchNorm layers "
            f"keep training; 'freeze': they keep their pretrained statistics)")


def freeze_to(model: nn.Module, groups: list[list[nn.Parameter]], n: int, bn_policy: str) -> None:
    """Freeze parameter groups before index ``n`` (negative counts from the head), train the rest.

    With ``bn_policy="train"`` the BatchNorm parameters of frozen groups stay trainable.

    Example:
        >>> import torch
        >>> model = BodyHead(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
        >>> freeze_to(model, split_groups(model), -1, "train")
        >>> model.body.weight.requires_grad, model.head.weight.requires_grad
        (False, True)
    """
    _check_bn_policy(bn_policy)
    start = n if n >= 0 else max(len(groups) + n, 0)
    bn_ids = _is_bn_param(model) if bn_policy == "train" else set()
    for index, group in enumerate(groups):
        frozen = index < start
        for param in group:
            param.requires_grad_(not frozen or id(param) in bn_ids)


def frozen_bn_modules(model: nn.Module, groups: list[list[nn.Parameter]], n_frozen: int
                      ) -> list[nn.Module]:
    """The BatchNorm modules whose parameters lie in the first ``n_frozen`` groups. One
    without parameters (``affine=False``) lies where the closest module before it with
    parameters does (the convolution it normalises), in the model's module order.

    Example:
        >>> import torch
        >>> model = BodyHead(torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
        >>> len(frozen_bn_modules(model, split_groups(model), 1))
        1
    """
    frozen_ids = {id(p) for group in groups[:n_frozen] for p in group}
    frozen, before_frozen = [], n_frozen > 0  # nothing before it: the first group's
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if own:
            before_frozen = any(id(p) in frozen_ids for p in own)
        if isinstance(module, bn_types) and (
                any(id(p) in frozen_ids for p in module.parameters())
                or (not own and before_frozen)):
            frozen.append(module)
    return frozen


def apply_bn_policy(modules: list[nn.Module], bn_policy: str) -> None:
    """Put frozen BatchNorm ``modules`` in eval mode under ``bn_policy="freeze"`` (call after
    ``model.train()``); under ``"train"`` they keep training.

    Example:
        >>> import torch
        >>> bn = torch.nn.BatchNorm1d(3)
        >>> apply_bn_policy([bn], "freeze")
        >>> bn.training
        False
    """
    if bn_policy == "freeze":
        for module in modules:
            module.eval()


@contextmanager
def evaluating(model: nn.Module) -> Iterator[torch.device]:
    """Run ``model`` for inference: eval mode and no gradients inside, its previous mode
    restored after, module by module (a BatchNorm kept in eval mode inside a training model,
    as the frozen-BatchNorm policy does, stays so). Yields the device of its parameters (CPU
    for a model without any).

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 2)
        >>> with evaluating(model) as device:
        ...     _ = model(torch.zeros(1, 2, device=device))
        >>> model.training
        True
    """
    device = next(iter(model.parameters()), torch.zeros(())).device
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield device
    finally:
        model.train(modes[0][1])  # the model's own train() first: some models act on it
        for module, training in modes:
            module.training = training


def mlp(n_in: int, n_out: int, hidden: Sequence[int] = (200, 100), dropout: float = 0.1
        ) -> BodyHead:
    """A multilayer perceptron with BatchNorm and dropout, split into body and head.

    Example:
        >>> import torch
        >>> mlp(4, 3)(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """
    layers: list[nn.Module] = []
    size = n_in
    for width in hidden:
        layers += [nn.Linear(size, width), nn.ReLU(inplace=True), nn.BatchNorm1d(width)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        size = width
    return BodyHead(nn.Sequential(nn.Flatten(), *layers), nn.Linear(size, n_out))


def target_scale(targets: torch.Tensor | Sequence[float]) -> tuple[list[float], list[float]]:
    """The mean and spread (sample standard deviation) of regression targets, per output, for
    :class:`TargetScale`: a network then learns standardised values while its outputs stay in
    the targets' units, and an untrained one already predicts near their mean. A constant
    output (or a single target) gets a spread of 1.

    Example:
        >>> target_scale(torch.tensor([10.0, 20.0, 30.0]))
        ([20.0], [10.0])
        >>> target_scale([[1.0, 5.0], [3.0, 5.0]])
        ([2.0, 5.0], [1.4142135623730951, 1.0])
    """
    values = torch.as_tensor(targets).double()
    values = values.reshape(len(values), -1)
    spread = values.std(0)  # NaN for a single target: read as constant below
    return values.mean(0).tolist(), [s if s > 1e-12 else 1.0 for s in spread.tolist()]


class TargetScale(nn.Module):
    """The last step of a regressor: ``output * std + mean``, with the statistics of
    :func:`target_scale`. They are model config, not weights (non-persistent buffers), so a
    model rebuilt from its config by an export has them; without them it passes outputs on.

    Example:
        >>> scale = TargetScale([20.0], [10.0])
        >>> scale(torch.tensor([[0.0], [1.0]])).flatten().tolist()
        [20.0, 30.0]
        >>> TargetScale()(torch.ones(1)).tolist()
        [1.0]
    """

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
                 ) -> None:
        super().__init__()
        given = bool(mean) and bool(std)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32)
                             if given else None, persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32)
                             if given else None, persistent=False)

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            return output
        return output * self.std + self.mean
