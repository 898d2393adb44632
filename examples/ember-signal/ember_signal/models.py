"""A compact 1-D CNN for multichannel signals, split into body and head.

Example:
    >>> import torch
    >>> signal_cnn(n_channels=3, n_out=4)(torch.zeros(2, 3, 50)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from torch import nn

import ember

__all__ = ["signal_cnn"]


def signal_cnn(n_channels: int, n_out: int, width: int = 64) -> ember.BodyHead:
    """Three Conv1d, BatchNorm, ReLU blocks, global average pooling, a linear head
    (after dropout).

    Example:
        >>> signal_cnn(1, 2).head[-1].out_features
        2
    """
    def block(n_in: int, n_out_channels: int) -> list[nn.Module]:
        return [nn.Conv1d(n_in, n_out_channels, 5, padding=2, bias=False),
                nn.BatchNorm1d(n_out_channels), nn.ReLU(inplace=True)]

    body = nn.Sequential(*block(n_channels, width), *block(width, width), *block(width, width),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten())
    return ember.BodyHead(body, nn.Sequential(nn.Dropout(0.2), nn.Linear(width, n_out)))
