"""Ember's callbacks: the base class, order constants and the built-in callbacks.

Example:
    >>> from ember.callbacks import Callback, Order
    >>> Order.DEFAULT
    0
"""

from ember.callbacks.base import EVENTS, Callback, Order
from ember.callbacks.recorder import ProgressPrinter, Recorder
from ember.callbacks.schedule import CosineSchedule, LRFinder, OneCycle
from ember.callbacks.tracking import Checkpoint, EarlyStopping, SaveBest
from ember.callbacks.training import (
    DivergenceWarning,
    GradientAccumulation,
    GradientClip,
    MixedPrecision,
    NanGuard,
    PreciseBatchNorm,
)

__all__ = [
    "EVENTS",
    "Callback",
    "Checkpoint",
    "CosineSchedule",
    "DivergenceWarning",
    "EarlyStopping",
    "GradientAccumulation",
    "GradientClip",
    "LRFinder",
    "MixedPrecision",
    "NanGuard",
    "OneCycle",
    "Order",
    "PreciseBatchNorm",
    "ProgressPrinter",
    "Recorder",
    "SaveBest",
]
