"""Ember: train world-class PyTorch models in a few lines; every stage stays plain Python.

The shortest program is three lines::

    import ember
    learn = ember.learner(data)        # defaults from the installed plugins
    learn.fit_one_cycle(3)

Example:
    >>> import ember
    >>> ember.Order.RECORDER > ember.Order.DEFAULT
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.callbacks import (
    Callback,
    Checkpoint,
    CosineSchedule,
    DivergenceWarning,
    EarlyStopping,
    GradientAccumulation,
    GradientClip,
    MixedPrecision,
    NanGuard,
    OneCycle,
    Order,
    PreciseBatchNorm,
    ProgressPrinter,
    Recorder,
    SaveBest,
)
from ember.data import (
    TARGET_KINDS,
    Data,
    InputSpec,
    Prediction,
    class_files,
    find_test_folder,
    first_unseen_class,
    item_number,
    loose_files,
    make_loaders,
    numbering_items_from,
    split_by_flags,
    split_folders,
    split_indices,
    split_label,
    split_test,
    warn_unseen_classes,
)
from ember.errors import (
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidateException,
    DataError,
    EmberError,
    EmberWarning,
    ExportError,
    PluginError,
    TrainingError,
)
from ember.hookspecs import CONTRACT_VERSION, hookimpl
from ember.learner import Learner, LRFindResult, learner
from ember.losses import BCEWithLogitsFlat, CrossEntropyFlat, MSEFlat, loss_for
from ember.metrics import (
    MAE,
    R2,
    RMSE,
    Accuracy,
    AccuracyMulti,
    Dice,
    ErrorRate,
    FBeta,
    Metric,
    RocAuc,
    TopKAccuracy,
)
from ember.model import BodyHead, TargetScale, mlp, split_groups, target_scale
from ember.plugins import (
    Defaults,
    Demo,
    PluginInfo,
    Sample,
    create_model,
    get_plugin_manager,
    get_registry,
    plugin_infos,
    register_plugin,
    reset_plugins,
    unregister_plugin,
)
from ember.utils import default_device, seed

if TYPE_CHECKING:
    from ember.export import Predictor

__version__ = "0.1.0"


def load(path: Any, device: Any = "cpu", **options: Any) -> Predictor:
    """Rebuild a predictor from a file written by :meth:`Learner.export` (safe: no pickle).

    Example:
        >>> # predictor = ember.load("model.ember"); predictor.predict(item)
    """
    from ember.export import load as load_export

    return load_export(path, device=device, **options)


__all__ = [
    "CONTRACT_VERSION",
    "MAE",
    "R2",
    "RMSE",
    "TARGET_KINDS",
    "Accuracy",
    "AccuracyMulti",
    "BCEWithLogitsFlat",
    "BodyHead",
    "Callback",
    "CancelBackwardException",
    "CancelBatchException",
    "CancelEpochException",
    "CancelFitException",
    "CancelStepException",
    "CancelTrainException",
    "CancelValidateException",
    "Checkpoint",
    "CosineSchedule",
    "CrossEntropyFlat",
    "Data",
    "DataError",
    "Defaults",
    "Demo",
    "Dice",
    "DivergenceWarning",
    "EarlyStopping",
    "EmberError",
    "EmberWarning",
    "ErrorRate",
    "ExportError",
    "FBeta",
    "GradientAccumulation",
    "GradientClip",
    "InputSpec",
    "LRFindResult",
    "Learner",
    "MSEFlat",
    "Metric",
    "MixedPrecision",
    "NanGuard",
    "OneCycle",
    "Order",
    "PluginError",
    "PluginInfo",
    "PreciseBatchNorm",
    "Prediction",
    "ProgressPrinter",
    "Recorder",
    "RocAuc",
    "Sample",
    "SaveBest",
    "TargetScale",
    "TopKAccuracy",
    "TrainingError",
    "class_files",
    "create_model",
    "default_device",
    "find_test_folder",
    "first_unseen_class",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "item_number",
    "learner",
    "load",
    "loose_files",
    "loss_for",
    "make_loaders",
    "mlp",
    "numbering_items_from",
    "plugin_infos",
    "register_plugin",
    "reset_plugins",
    "seed",
    "split_by_flags",
    "split_folders",
    "split_groups",
    "split_indices",
    "split_label",
    "split_test",
    "target_scale",
    "unregister_plugin",
    "warn_unseen_classes",
]
