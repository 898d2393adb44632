"""Vision models: a compact CNN and torchvision architectures cut into body + pooled head.

Every model here is an :class:`ember.BodyHead` (``body`` → features, ``head`` → outputs), so
``learn.freeze()`` trains the head alone, and :class:`VisionModel` splits the body in two more
parameter groups for discriminative learning rates (early layers, late layers, head).

The head pools the body's feature map two ways and concatenates them (average + max, as in
fastai), then BatchNorm → dropout → linear → ReLU → BatchNorm → dropout → linear.

Pretrained weights are used only when asked for: ``pretrained="DEFAULT"`` (or a torchvision
weights name such as ``"IMAGENET1K_V1"``) fetches them through torchvision, which downloads on
first use; ``pretrained="/path/weights.pth"`` reads a local state dict (``.pth``/``.pt``,
read with ``weights_only=True``, or ``.safetensors``) of the torchvision model.

Example:
    >>> import torch
    >>> model = compact_cnn(n_channels=1, n_out=10)
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import ember
from ember.utils import is_safetensors

__all__ = [
    "TORCHVISION_ARCHITECTURES",
    "ConcatPool2d",
    "VisionModel",
    "compact_cnn",
    "conv_block",
    "pooled_head",
    "torchvision_model",
    "vision_model",
]

#: torchvision architectures registered by name (any other torchvision classifier works through
#: ``torchvision_model(arch=...)``).
TORCHVISION_ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "efficientnet_b0",
                             "convnext_tiny", "mobilenet_v3_small", "regnet_y_400mf")


class ConcatPool2d(nn.Module):
    """Adaptive average and max pooling to 1x1, concatenated: (N, C, H, W) → (N, 2C).

    Example:
        >>> import torch
        >>> ConcatPool2d()(torch.ones(2, 3, 4, 4)).shape
        torch.Size([2, 6])
    """

    def forward(self, features: Tensor) -> Tensor:
        return torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)


class VisionModel(ember.BodyHead):
    """A :class:`ember.BodyHead` whose body splits into ``n_body_groups`` parameter groups
    (by its top-level children, evenly), followed by the head: early → late → head.

    Example:
        >>> import torch
        >>> model = VisionModel(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3),
        ...                     torch.nn.Conv2d(4, 4, 3)), pooled_head(4, 2))
        >>> len(model.param_groups())
        3
    """

    def __init__(self, body: nn.Module, head: nn.Module, n_body_groups: int = 2) -> None:
        super().__init__(body, head)
        self.n_body_groups = n_body_groups

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Body groups (early → late) then the head's parameters."""
        children = [c for c in self.body.children() if any(True for _ in c.parameters())]
        if len(children) < self.n_body_groups:
            body_groups = [list(self.body.parameters())]
        else:
            bounds = torch.linspace(0, len(children), self.n_body_groups + 1).round().long()
            body_groups = [
                [p for child in children[int(a):int(b)] for p in child.parameters()]
                for a, b in itertools.pairwise(bounds.tolist())
            ]
        return [g for g in body_groups if g] + [list(self.head.parameters())]


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias) → BatchNorm → ReLU.

    Example:
        >>> import torch
        >>> conv_block(1, 8, stride=2)(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 8, 4, 4])
    """
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def pooled_head(n_features: int, n_out: int, hidden: int | None = 512,
                dropout: float = 0.25) -> nn.Sequential:
    """The pooled head: concat pool → BatchNorm → dropout → (linear → ReLU → BatchNorm →
    dropout →) linear to ``n_out``. ``hidden=None`` drops the middle layer.

    Example:
        >>> import torch
        >>> pooled_head(8, 3, hidden=16).eval()(torch.zeros(2, 8, 5, 5)).shape
        torch.Size([2, 3])
    """
    layers: list[nn.Module] = [ConcatPool2d(), nn.BatchNorm1d(2 * n_features)]
    size = 2 * n_features
    if hidden:
        layers += [nn.Dropout(dropout / 2), nn.Linear(size, hidden), nn.ReLU(inplace=True),
                   nn.BatchNorm1d(hidden)]
        size = hidden
    layers += [nn.Dropout(dropout), nn.Linear(size, n_out)]
    return nn.Sequential(*layers)


def compact_cnn(n_channels: int = 1, n_out: int = 10, widths: Sequence[int] = (16, 32, 64),
                dropout: float = 0.1) -> VisionModel:
    """A small, fast CNN for small images (MNIST-sized to ~64 px): one full-resolution block,
    then one stride-2 block per extra width, each followed by a second 3x3 block; pooled
    head without a hidden layer. About 70 k parameters (5.5 M multiply-adds per 28x28 image)
    with the default widths.

    Example:
        >>> import torch
        >>> compact_cnn(3, 5)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 5])
    """
    if not widths:
        raise ValueError("compact_cnn needs at least one width")
    blocks: list[nn.Module] = [conv_block(n_channels, widths[0])]
    for c_in, c_out in itertools.pairwise(widths):
        blocks.append(nn.Sequential(conv_block(c_in, c_out, stride=2), conv_block(c_out, c_out)))
    return VisionModel(nn.Sequential(*blocks), pooled_head(widths[-1], n_out, hidden=None,
                                                           dropout=dropout))


# ------------------------------------------------------------------------ torchvision
def _read_state(path: Path) -> dict[str, Tensor]:
    path = path.expanduser()  # "~/weights.pth" is in the home folder, as in a shell
    if not path.is_file():
        raise ember.DataError(f"no weights file at {path}; give the path of a state dict")
    try:
        if is_safetensors(path):  # an export (.ember) or a .safetensors file, by content
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ember.DataError(f"cannot read weights from {path} ({error}); give a state dict "
                              f"saved with torch.save(model.state_dict()) or safetensors"
                              ) from None
    if isinstance(state, dict) and state.get("format") == "ember-checkpoint":
        state = state.get("model")  # a checkpoint written by learn.save
    elif isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ember.DataError(f"{path} does not hold a state dict")
    return state


def _weights_file(pretrained: Any) -> Path | None:
    """``pretrained`` as the path of a local weights file, or None for a weights name
    (``"DEFAULT"``, ``"IMAGENET1K_V1"``): a ``Path``, or a string with a weights file's suffix,
    a folder in it or a leading ``~``. One rule for torchvision's weights and Ember's."""
    if isinstance(pretrained, Path):
        return pretrained
    if isinstance(pretrained, str) and (
            Path(pretrained).suffix in (".pth", ".pt", ".safetensors", ".bin", ".ember")
            or "/" in pretrained or "\\" in pretrained or pretrained.startswith("~")):
        return Path(pretrained)
    return None


def _pretrained_state(arch: str, pretrained: Any) -> dict[str, Tensor] | None:
    if pretrained in (None, False):
        return None
    file = _weights_file(pretrained)
    if file is not None:
        return _read_state(file)
    import torchvision

    name = "DEFAULT" if pretrained is True else str(pretrained)
    try:
        weights = torchvision.models.get_model_weights(arch)[name]
    except (KeyError, ValueError):
        raise ember.DataError(
            f"torchvision has no weights {name!r} for {arch}; use 'DEFAULT', a name from "
            f"torchvision.models.get_model_weights({arch!r}), or a local file path") from None
    return weights.get_state_dict(progress=True)  # downloads on first use (only when asked)


def _first_conv(module: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, child in module.named_modules():
        if isinstance(child, nn.Conv2d):
            parent_name, _, attribute = name.rpartition(".")
            return module.get_submodule(parent_name) if parent_name else module, attribute, child
    raise ValueError("the body has no Conv2d layer")


def _adapt_channels(body: nn.Module, n_channels: int) -> None:
    parent, attribute, conv = _first_conv(body)
    if conv.in_channels == n_channels:
        return
    new = nn.Conv2d(n_channels, conv.out_channels, conv.kernel_size, conv.stride,  # type: ignore[arg-type]
                    conv.padding, conv.dilation, conv.groups, conv.bias is not None)  # type: ignore[arg-type]
    with torch.no_grad():
        summed = conv.weight.sum(dim=1, keepdim=True)
        new.weight.copy_(summed.repeat(1, n_channels, 1, 1) / n_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)  # type: ignore[union-attr]
    setattr(parent, attribute, new)


def _cut(arch: str, model: nn.Module) -> nn.Module:
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):  # efficientnet, convnext, mobilenet, vgg, densenet
        return features
    children = list(model.named_children())
    for index, (_, child) in enumerate(children):
        if isinstance(child, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return nn.Sequential(*(c for _, c in children[:index]))
    raise ValueError(f"cannot find where to cut {arch} into body and head; build the body "
                     f"yourself and wrap it: VisionModel(body, pooled_head(n_features, n_out))")


def torchvision_model(arch: str = "resnet18", n_out: int = 10, n_channels: int = 3,
                      pretrained: Any = None, hidden: int | None = 512,
                      dropout: float = 0.25) -> VisionModel:
    """A torchvision classifier cut into its feature body and Ember's pooled head.

    ``pretrained``: ``None`` (random), ``"DEFAULT"`` / a torchvision weights name (downloads
    through torchvision on first use), or a local state-dict file of the full torchvision model
    (its classifier is dropped). With ``n_channels`` other than 3 the first convolution is
    rebuilt and its pretrained weights averaged over the colour channels.

    Example:
        >>> import torch
        >>> model = torchvision_model("resnet18", n_out=4, n_channels=1)
        >>> model.eval()(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 4])
    """
    import torchvision

    try:
        full = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        raise ember.DataError(f"torchvision has no architecture {arch!r}; see "
                              f"torchvision.models.list_models()") from None
    state = _pretrained_state(arch, pretrained)
    if state is not None:
        expected = full.state_dict()
        body_keys = {k for k in expected if not k.startswith(("fc.", "classifier."))}
        missing = sorted(k for k in body_keys if k not in state)
        wrong = sorted(k for k in body_keys if k in state and state[k].shape != expected[k].shape)
        if missing or wrong:
            raise ember.DataError(
                f"the pretrained weights do not fit torchvision's {arch}: missing "
                f"{missing[:3]}, wrong shape {wrong[:3]}; give weights of that architecture")
        full.load_state_dict({k: state[k] for k in body_keys}, strict=False)
    body = _cut(arch, full)
    _adapt_channels(body, n_channels)
    body.eval()
    with torch.no_grad():
        n_features = int(body(torch.zeros(1, n_channels, 64, 64)).shape[1])
    body.train()
    return VisionModel(body, pooled_head(n_features, n_out, hidden, dropout))


def vision_model(arch: str, /, data: Any = None, *, n_out: int | None = None,
                 n_channels: int | None = None, pretrained: Any = None,
                 **config: Any) -> nn.Module:
    """Build a registered vision architecture sized to ``data`` (or to ``n_out`` and
    ``n_channels``) through :func:`ember.create_model`, so an export can rebuild it; pretrained
    weights are loaded here and never named in the exported config (the file has the weights).

    ``pretrained`` is a torchvision weights name or file (see :func:`torchvision_model`), or a
    file of an Ember model you trained yourself — a ``learn.save`` checkpoint, a
    ``learn.export`` file or ``torch.save(learn.model.state_dict(), path)`` — whose body is
    loaded and whose head is
    left new (so a body pretrained on some classes can be fine-tuned on others). Other
    options go to the architecture: ``vision_model("torchvision", data, arch="resnet101")``.

    Example:
        >>> model = vision_model("compact_cnn", n_out=3, n_channels=1)
        >>> model.ember_config["name"]
        'compact_cnn'
    """
    if data is not None:
        n_out = n_out if n_out is not None else data.n_out
        n_channels = n_channels if n_channels is not None else data.n_channels
    if n_out is None or n_channels is None:
        raise ember.DataError("give data= or both n_out= and n_channels=")
    model = ember.create_model(arch, n_out=n_out, n_channels=n_channels, **config)
    if pretrained in (None, False):
        return model
    body_state = _ember_body_state(pretrained)
    if body_state is not None:
        expected = model.body.state_dict()
        wrong = sorted(k for k in expected if k not in body_state
                       or body_state[k].shape != expected[k].shape)
        if wrong:
            raise ember.DataError(
                f"the body in {pretrained} does not fit this {arch} {config or ''}: "
                f"{wrong[:3]} missing or of another shape; build the model with the "
                f"architecture and widths it was trained with")
        model.body.load_state_dict({k: body_state[k] for k in expected})
    elif "pretrained" not in inspect.signature(ember.get_registry().architectures[arch]
                                               ).parameters:
        if _weights_file(pretrained) is not None:
            raise ember.DataError(
                f"{pretrained} holds no Ember model's body (no 'body.' weights: another "
                f"model's state dict, such as a torchvision classifier's); give {arch} the "
                f"file of an Ember model you trained (learn.save, learn.export or its state "
                f"dict), or give these weights to a torchvision architecture such as "
                f"'resnet18'")
        raise ember.DataError(f"{arch} has no published weights; give the file of an "
                              f"Ember model you trained (learn.save, learn.export or its state "
                              f"dict), or use a torchvision architecture such as 'resnet18'")
    else:  # the same architecture built with the weights (arch= and other options kept)
        source = ember.create_model(arch, n_out=n_out, n_channels=n_channels,
                                    pretrained=pretrained, **config)
        model.body.load_state_dict(source.body.state_dict())
    # where the body came from, beside the config (which an export rebuilds from): fit_auto
    # reads it to train a pretrained body with the fine_tune recipe
    model.ember_config["pretrained"] = str(pretrained)
    return model


def _ember_body_state(pretrained: Any) -> dict[str, Tensor] | None:
    """The body weights of an Ember vision model saved in a local file (``learn.save``
    checkpoint, ``learn.export`` file or a state dict with ``body.`` keys); ``None`` for
    anything else."""
    file = _weights_file(pretrained)
    if file is None:
        return None
    state = _read_state(file)
    body = {k.removeprefix("body."): v for k, v in state.items() if k.startswith("body.")}
    return body or None
