"""Mistake guards: the errors practitioners keep making, caught before they cost a run.

Two levels:

- **Errors** that make training impossible (an empty loader, a loss of the wrong kind, float
  targets for cross-entropy, labels out of range, outputs or metrics that do not fit the
  targets) are raised before the first optimiser step as :class:`ember.DataError` /
  :class:`ember.TrainingError`.
- **Findings** — likely mistakes — are warnings of one class, :class:`ember.EmberWarning`, with a
  subclass per kind, so they can be filtered or turned into errors with :mod:`warnings`. Cheap
  ones run at the start of every ``fit`` (the :class:`Guard` callback, on by default); the full
  set runs on demand with ``learn.doctor()``, which returns them as a report.

Example:
    >>> import warnings, ember
    >>> warnings.simplefilter("error", ember.checks.LoaderWarning)  # make one kind fatal
    >>> warnings.resetwarnings()
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ember.callbacks.base import Callback, Order
from ember.data import n_batches, require_batches
from ember.errors import CancelFitException, DataError, EmberWarning, TrainingError
from ember.losses import (
    BCEWithLogitsFlat,
    CrossEntropyFlat,
    MSEFlat,
    ignored_target,
    loss_family,
    loss_name,
)
from ember.model import bn_types, evaluating
from ember.utils import warn

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from ember.learner import Learner

__all__ = [
    "BatchNormWarning",
    "Finding",
    "Guard",
    "ImbalanceWarning",
    "LeakageWarning",
    "LearningRateWarning",
    "LoaderWarning",
    "ModelStateWarning",
    "NormalisationWarning",
    "ValidationSizeWarning",
    "check_first_batch",
    "check_metrics",
    "check_setup",
    "doctor",
    "first_forward",
    "first_loss",
]


class LoaderWarning(EmberWarning):
    """The training loader does not shuffle, or the validation loader shuffles, augments or
    drops items."""


class LeakageWarning(EmberWarning):
    """The same items appear in the training and the validation set."""


class ImbalanceWarning(EmberWarning):
    """A heavily imbalanced target is trained without a weighted loss or a fitting metric."""


class NormalisationWarning(EmberWarning):
    """Inputs are far from normalised for a model that expects normalised inputs."""


class LearningRateWarning(EmberWarning):
    """The learning rate is far above the finder's suggestion, or the loss rises sharply."""


class BatchNormWarning(EmberWarning):
    """Frozen BatchNorm layers behave against the learner's fine-tuning policy."""


class ValidationSizeWarning(EmberWarning):
    """The validation set is too small to tell two models apart."""


class ModelStateWarning(EmberWarning):
    """The model is in eval mode while it trains."""


@dataclass
class Finding:
    """One likely mistake: its kind, what it means, and how to fix it.

    Example:
        >>> print(Finding(LoaderWarning, "training loader does not shuffle", "shuffle=True"))
        LoaderWarning: training loader does not shuffle. Fix: shuffle=True
    """

    kind: type[EmberWarning]
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.kind.__name__}: {self.message}. Fix: {self.fix}"

    def warn(self) -> None:
        """Emit this finding as a warning of its kind."""
        warn(f"{self.message}. Fix: {self.fix}", self.kind)


# ------------------------------------------------------------------------------------ errors
def check_setup(learn: Learner) -> None:
    """Errors that need no batch: a missing or empty training loader, a loss of the wrong kind.

    Example:
        >>> # check_setup(learn)  # raises ember.TrainingError with what to do
    """
    train_dl = learn.data.train_dl
    if train_dl is None:
        raise DataError("this Data has no training loader (it was rebuilt for inference)")
    require_batches(train_dl, "the training loader")
    if learn.data.valid_dl is not None and learn.distributed is None:
        # (under torchrun a rank's share may be empty while the others' are not)
        # an empty one (Data's constructor takes it; from_loaders refuses it) scored every
        # epoch NaN, and SaveBest or EarlyStopping watched NaN
        require_batches(learn.data.valid_dl, "the validation loader")
    if n_batches(train_dl) is None:
        dataset = type(train_dl.dataset).__name__
        raise DataError(
            f"the training loader cannot say how many batches it yields: its dataset "
            f"({dataset}) is an IterableDataset without __len__, and the learning-rate "
            f"schedules, lr_find and progress need the number of training steps. Give "
            f"{dataset} a __len__ that returns the number of items it yields per epoch")
    if not torch.is_grad_enabled():
        raise TrainingError(
            "gradients are disabled: fit was called inside torch.no_grad() or "
            "torch.inference_mode(); call it outside that block"
        )
    if not any(p.requires_grad for p in learn.model.parameters()):
        raise TrainingError(
            "no parameter of the model requires gradients, so nothing can train; set "
            "requires_grad=True on the parameters to train (learn.unfreeze() unfreezes only "
            "what learn.freeze() froze, never a parameter frozen by hand)"
        )
    _check_single_item_batch(learn, train_dl)
    kind, family, name = learn.data.target_kind, loss_family(learn.loss_func), loss_name(
        learn.loss_func)
    if kind == "regression" and family == "classification":
        raise TrainingError(
            f"the targets are regression values but the loss is {name}, which needs class "
            f"indices; drop loss_func= to get the regression default (MSE) or pass a "
            f"regression loss"
        )
    if kind in ("single_label", "sequence") and family == "regression":
        raise TrainingError(
            f"the targets are class labels but the loss is {name}; drop loss_func= to get "
            f"cross-entropy, or build the data as regression"
        )


def _check_single_item_batch(learn: Learner, train_dl: DataLoader) -> None:
    """A training batch of one item stops a BatchNorm1d that trains on one value per channel
    per item (inputs ``(N, C)``): torch cannot take the statistics of one value, and stops the
    fit mid-epoch when it is the last batch (33 items in batches of 16 leave one). Said
    before the first step instead. A BatchNorm1d over sequences ``(N, C, L)`` with ``L > 1``
    takes one item, so the layers' inputs are read off one training item run in eval mode
    (no statistics change, no random draw); a layer the frozen-BatchNorm policy keeps in eval
    is exempt."""
    from torch.utils.data import BatchSampler

    batches = train_dl.batch_sampler
    if not isinstance(batches, BatchSampler):
        return
    try:
        n_items = len(batches.sampler)  # type: ignore[arg-type]
    except TypeError:  # a sampler without a length
        return
    # drop_last drops a last batch of one, not batches of one (batch_size=1 escaped the check)
    last_of_one = not batches.drop_last and n_items % batches.batch_size == 1
    if not last_of_one and batches.batch_size != 1:
        return
    frozen = learn.frozen_bn_modules() if learn.bn_policy == "freeze" else []
    kept_in_eval = set(map(id, frozen))  # the frozen-BatchNorm policy keeps these in eval
    norms = [(name, module) for name, module in learn.model.named_modules()
             if isinstance(module, nn.BatchNorm1d) and id(module) not in kept_in_eval]
    flat = _flat_norm_inputs(learn, train_dl, norms) if norms else []
    if flat and n_items == 1:
        raise TrainingError(f"the training loader holds one item, and BatchNorm1d "
                            f"({flat[0]!r}) cannot train on one item; give more training data")
    if flat and batches.batch_size == 1:
        raise TrainingError(f"the training batches hold one item each (batch_size=1), and "
                            f"BatchNorm1d ({flat[0]!r}) cannot train on one item; use a batch "
                            f"size of at least 2")
    if flat:
        raise TrainingError(
            f"the training loader's last batch holds one item ({n_items} items in batches of "
            f"{batches.batch_size}), and BatchNorm1d ({flat[0]!r}) cannot train on one item; "
            f"build the loader with drop_last=True, or pick a batch size that leaves no single "
            f"item over")


def _flat_norm_inputs(learn: Learner, train_dl: DataLoader,
                      norms: list[tuple[str, nn.Module]]) -> list[str]:
    """The names among ``norms`` whose input has one value per channel per item, read off one
    training item run through the model in eval mode; none when that run fails (the first
    batch then says what is wrong)."""
    flat: list[str] = []

    def watch(name: str, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if isinstance(x, Tensor) and x.ndim >= 2 and x.numel() == x.shape[0] * x.shape[1]:
            flat.append(name)

    handles = [module.register_forward_pre_hook(partial(watch, name)) for name, module in norms]
    try:
        # read as the loader reads a batch: a dataset with __getitems__ (torch's batched
        # fetch, the tabular plugin's) gives its batch there, and its collate takes that
        dataset = train_dl.dataset
        getitems = getattr(dataset, "__getitems__", None)
        batch = train_dl.collate_fn(getitems([0]) if getitems is not None
                                    else [dataset[0]])  # type: ignore[index]
        inputs = tuple(x.to(learn.device) if isinstance(x, Tensor) else x for x in batch[:-1])
        with evaluating(learn.model):  # eval mode and no gradients
            learn.model(*inputs)
    except Exception:
        return []
    finally:
        for handle in handles:
            handle.remove()
    return flat


def check_first_batch(learn: Learner, pred: Any, target: Any) -> None:
    """Errors visible on the first batch: batch sizes, target dtype and range, output shape.

    Example:
        >>> # check_first_batch(learn, learn.pred, learn.yb)
    """
    loss_func, name, family = learn.loss_func, loss_name(learn.loss_func), loss_family(
        learn.loss_func)
    if family is not None and isinstance(target, Tensor) and not isinstance(pred, Tensor):
        # a loss Ember knows takes one tensor; a model that returns several (a tuple of logits
        # and features, a dict as Hugging Face models do) failed deep inside it instead
        raise TrainingError(
            f"the model returns {_parts(pred)}, but {name} needs one tensor of outputs; make the "
            f"model's forward return the output tensor alone (for example wrap it in a module "
            f"whose forward returns model(x)[0] or model(x)['logits']), or pass a loss_func "
            f"that takes what the model returns"
        )
    if not (isinstance(pred, Tensor) and isinstance(target, Tensor)):
        return
    if pred.shape[0] != target.shape[0]:
        raise TrainingError(
            f"the model returns {pred.shape[0]} outputs for a batch of {target.shape[0]} targets "
            f"(output shape {tuple(pred.shape)}); the first dimension must be the batch"
        )
    if family == "classification":
        if target.is_floating_point():
            raise TrainingError(
                f"the targets are floats (dtype {target.dtype}) but {name} needs integer "
                f"class indices; for regression build the data with target_kind='regression', "
                f"for multi-hot targets use target_kind='multi_label', or convert labels with "
                f".long()"
            )
        labels = target[target != ignored_target(loss_func)]
        n_classes = pred.shape[_class_dim(loss_func, pred)]
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
            worst = int(labels.max()) if int(labels.max()) >= n_classes else int(labels.min())
            raise TrainingError(
                f"label {worst} is out of range for a model with {n_classes} outputs; labels "
                f"must be 0 … {n_classes - 1}. Size the model's head to data.n_out "
                f"({learn.data.n_out})"
            )
        if pred.ndim < 2 or n_classes == 1:
            # softmax over one score is 1 whatever the score: the loss is 0 and nothing trains
            advice = ("the data holds a single class (data.n_out = 1): check the labels, a "
                      "classifier needs at least two" if learn.data.n_out == 1 else
                      f"size the model's head to data.n_out ({learn.data.n_out})")
            raise TrainingError(
                f"the model gives one output per item (output shape {tuple(pred.shape)}), and "
                f"{name} over a single class is always 0, so nothing would train; {advice}. "
                f"For a yes/no target with one output use a binary loss "
                f"(nn.BCEWithLogitsLoss on float targets)"
            )
    elif family == "regression" and pred.numel() != target.numel():
        raise TrainingError(
            f"the model gives {tuple(pred.shape[1:])} outputs per item but the targets have "
            f"shape {tuple(target.shape[1:])} per item; {name} needs one output per target "
            f"value (data.n_out = {learn.data.n_out})"
        )
    elif (family == "regression" and pred.shape != target.shape
          and not isinstance(loss_func, (MSEFlat, BCEWithLogitsFlat))):
        # torch's own losses broadcast: outputs (N, 1) against targets (N,) give an (N, N)
        # loss of every output against every target, which trains towards the mean, silently
        raise TrainingError(
            f"the model's outputs have shape {tuple(pred.shape)} but the targets "
            f"{tuple(target.shape)}; {name} needs the same shape on both sides (it would "
            f"broadcast them against each other and train on the wrong pairs). Reshape the "
            f"outputs to the targets' shape in the model, or use Ember's loss, which flattens "
            f"both (ember.losses.MSEFlat, BCEWithLogitsFlat)"
        )


def check_metrics(learn: Learner, pred: Any, target: Any) -> None:
    """Each of ``learn.metrics`` on the first training batch, so a metric that does not fit
    the targets (accuracy on regression values, RMSE on class labels, top-5 of 3 classes) is
    an error before the first step, not at the first validation, a whole epoch later. The
    metrics are reset afterwards (as each validation pass begins), so nothing of the
    training batch is scored. Once per learner, with the other first-batch checks: a batch
    after it pays nothing. Outputs that are no tensor (a model that gives more in training
    mode, such as auxiliary logits, than in eval mode) are left to the validation.

    Example:
        >>> # check_metrics(learn, learn.pred, learn.yb)  # raises ember.TrainingError
    """
    if not (isinstance(pred, Tensor) and isinstance(target, Tensor)):
        return
    pred = pred.detach()
    for metric in learn.metrics:
        try:
            metric.update(pred, target)
        except TrainingError:
            raise
        except Exception as error:  # a metric of the user's: torch's words, named
            raise metric_error(learn, metric, error, "the first training batch", pred,
                               target) from error
        finally:
            metric.reset()


def metric_error(learn: Learner, metric: Any, error: Exception, where: str,
                 pred: Any = None, target: Any = None) -> TrainingError:
    """The :class:`~ember.TrainingError` for ``metric`` failing with ``error`` on the batch
    ``where`` names (``"validation batch 1"``): torch's words, named, with the outputs and
    targets (``learn.pred`` and ``learn.yb`` unless given) and what to do. Outputs in parts
    (a model that returns a dict or a tuple), which the first training batch's check leaves
    to the validation, are named as such: Ember's metrics score one tensor.

    Example:
        >>> # raise metric_error(learn, metric, error, "validation batch 3") from error
    """
    pred = learn.pred if pred is None else pred
    target = learn.yb if target is None else target
    advice = (f"Ember's metrics score one tensor of outputs: pass metrics= that read "
              f"{_parts(pred)} (a subclass of ember.Metric), or metrics=[]"
              if not isinstance(pred, Tensor) else
              f"check that it fits the targets (data.target_kind is "
              f"{learn.data.target_kind!r})")
    if learn.training:
        advice = f"it would have failed at the first validation; {advice}"
    return TrainingError(
        f"metric {metric.name!r} ({type(metric).__name__}) failed on {where}, outputs "
        f"{_parts(pred)} and targets {_parts(target)}: {type(error).__name__}: {error}. "
        f"{advice[0].upper()}{advice[1:]}")


def _parts(value: Any) -> str:
    """``value`` (a batch's outputs or targets) in a few words: a tensor by its shape, a
    dict by its keys, a tuple or list by its length."""
    if isinstance(value, Tensor):
        return f"of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        return f"a dict (keys {', '.join(map(repr, value))})"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} values"
    return f"a {type(value).__name__}"


def first_forward(model: Callable[..., Any], inputs: tuple[Any, ...]) -> Any:
    """Run ``model`` on a first batch's ``inputs``; an error in it becomes a TrainingError that
    names the inputs' shapes, instead of a deep torch trace.

    Example:
        >>> import torch
        >>> first_forward(torch.nn.Linear(2, 1), (torch.zeros(3, 2),)).shape
        torch.Size([3, 1])
    """
    shapes = ", ".join(str(tuple(x.shape)) for x in inputs if isinstance(x, Tensor))
    try:
        return model(*inputs)
    except TrainingError:
        raise
    except (RuntimeError, TypeError, ValueError, IndexError) as error:
        advice = ("Check that the model's input size fits the data (Data.one_batch() shows a "
                  "batch)")
        integers = [x.dtype for x in inputs if isinstance(x, Tensor)
                    and not (x.is_floating_point() or x.is_complex())]
        modules = list(model.modules()) if isinstance(model, nn.Module) else []
        floats = [p.dtype for p in modules[0].parameters() if p.is_floating_point()] if (
            modules) else []
        embeds = any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in modules)
        other_floats = [x.dtype for x in inputs if isinstance(x, Tensor)
                        and x.is_floating_point() and floats and x.dtype != floats[0]]
        if other_floats and "dtype" in str(error):  # numpy's float64 into a float32 model
            advice = (f"The inputs are {other_floats[0]} but the model computes in "
                      f"{floats[0]}: convert them in the data (x.float(), or "
                      f"array.astype(np.float32) before torch.from_numpy)")
        elif integers and floats and not embeds:  # integer pixels into a Linear/Conv
            advice = (f"The inputs are integers ({integers[0]}) but the model computes in "
                      f"{floats[0]}: convert them to floats in the data (x.float(), and "
                      f"normalise them), or start the model with an nn.Embedding if they are "
                      f"codes or token ids")
        raise TrainingError(
            f"the model failed on the first batch (inputs of shape {shapes}): {error}. {advice}"
        ) from error


def first_loss(learn: Learner, pred: Any, target: Any) -> Any:
    """``learn.loss_func`` on a first batch; an error in it becomes a TrainingError that names
    the loss and the shapes of outputs and targets.

    Example:
        >>> # loss = first_loss(learn, learn.pred, learn.yb)
    """
    try:
        loss = learn.loss_func(pred, target)
    except TrainingError:
        raise
    except (RuntimeError, TypeError, ValueError, IndexError) as error:
        raise TrainingError(
            f"{loss_name(learn.loss_func)} failed on model outputs of shape "
            f"{tuple(getattr(pred, 'shape', ()))} and targets of shape "
            f"{tuple(getattr(target, 'shape', ()))}: {error}"
        ) from error
    # one number to back-propagate and average: a loss per item (reduction="none") or a
    # Python float (computed off the graph) would fail later with torch's own words
    if not isinstance(loss, Tensor):
        raise TrainingError(
            f"{loss_name(learn.loss_func)} returned a {type(loss).__name__}, not a tensor: "
            f"compute the loss with torch operations on the model's outputs so it can be "
            f"back-propagated (no float(), .item() or NumPy inside it)")
    if loss.numel() != 1:
        raise TrainingError(
            f"{loss_name(learn.loss_func)} returned a tensor of shape {tuple(loss.shape)}, "
            f"not one number: reduce it to the batch's loss (reduction='mean' for a torch "
            f"loss, or end your function with .mean())")
    return loss


def _class_dim(loss_func: object, pred: Tensor) -> int:
    """Where ``loss_func`` reads the class scores in ``pred``: Ember's CrossEntropyFlat on the
    last dimension (sequences ``(N, T, C)``); torch's cross-entropy and NLL losses on the
    second, ``(N, C)`` or ``(N, C, d1, ...)`` (torch's layout for sequences and masks)."""
    return -1 if isinstance(loss_func, CrossEntropyFlat) else min(1, pred.ndim - 1)


# ---------------------------------------------------------------------------------- findings
def _loader_findings(learn: Learner) -> list[Finding]:
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    findings = []
    train_dl, valid_dl = learn.data.train_dl, learn.data.valid_dl
    # what orders the training items: torch's BatchSampler reads its sampler; a batch sampler
    # of the user's own (length bucketing) orders them itself, which cannot be told from here
    batches = train_dl.batch_sampler if train_dl is not None else None
    order = batches.sampler if isinstance(batches, BatchSampler) else (
        train_dl.sampler if train_dl is not None and batches is None else None)
    if isinstance(order, SequentialSampler):
        findings.append(Finding(
            LoaderWarning, "the training loader does not shuffle, so every epoch sees the "
            "batches in the same order (and sorted data gives one-class batches)",
            "build it with shuffle=True, or use ember.make_loaders"))
    if valid_dl is not None:
        if isinstance(valid_dl.sampler, RandomSampler):
            findings.append(Finding(
                LoaderWarning, "the validation loader shuffles; harmless for the metrics but it "
                "makes get_preds and show_results come in a different order every time",
                "build it with shuffle=False, or use ember.make_loaders"))
        if valid_dl.drop_last:
            findings.append(Finding(
                LoaderWarning, "the validation loader drops its last incomplete batch, so some "
                "validation items are never scored", "build it with drop_last=False"))
    return findings


def _lr_findings(learn: Learner) -> list[Finding]:
    suggestion = learn.lr_suggestion
    if suggestion is None or not learn.planned_lr:
        return []
    planned = max(learn.planned_lr)
    if planned > 10 * float(suggestion):
        return [Finding(
            LearningRateWarning, f"the learning rate {planned:.2e} is more than 10x the "
            f"lr_find suggestion {float(suggestion):.2e}; training is likely to diverge",
            f"use lr={float(suggestion):.2e} (learn.lr_find())")]
    return []


def _model_state_findings(learn: Learner) -> list[Finding]:
    if learn.training and not learn.model.training:
        return [Finding(
            ModelStateWarning, "the model is in eval mode during training (a callback or the "
            "model itself called .eval()), so dropout is off and BatchNorm statistics are "
            "frozen", "do not call model.eval() while training; Learner switches modes itself")]
    return []


def _bn_findings(learn: Learner) -> list[Finding]:
    frozen_bn = learn.frozen_bn_modules()
    if not frozen_bn:
        return []
    if learn.bn_policy == "freeze" and learn.training and any(m.training for m in frozen_bn):
        return [Finding(
            BatchNormWarning, f"{len(frozen_bn)} frozen BatchNorm layer(s) are in training "
            f"mode, so their running statistics change although bn_policy='freeze' promises "
            f"to keep them", "do not call model.train() from a callback, or use "
            "bn_policy='train'")]
    if learn.bn_policy == "train" and any(
            not p.requires_grad for m in frozen_bn for p in m.parameters()):
        return [Finding(
            BatchNormWarning, "BatchNorm layers in frozen groups have requires_grad=False "
            "although bn_policy='train' trains them", "let learn.freeze() set requires_grad, "
            "or choose bn_policy='freeze'")]
    return []


def _normalisation_findings(learn: Learner, inputs: tuple[Any, ...]) -> list[Finding]:
    first = next((m for m in learn.model.modules() if not list(m.children())), None)
    if first is None or isinstance(first, (*bn_types, nn.Embedding, nn.LayerNorm)):
        return []
    findings = []
    for position, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.is_floating_point() and x.numel() > 1):
            continue
        sample = x.detach().float()
        mean, std = float(sample.mean()), float(sample.std())
        if abs(mean) > 3 or std > 10 or std < 0.05:
            findings.append(Finding(
                NormalisationWarning, f"input {position} has mean {mean:.3g} and std {std:.3g} "
                f"in the first batch; {type(first).__name__} layers train best on inputs with "
                f"mean near 0 and std near 1", "normalise the inputs (subtract the training "
                "mean, divide by the training std) or start the model with a BatchNorm layer"))
    return findings


def _validation_size_findings(learn: Learner, metrics: dict[str, float]) -> list[Finding]:
    n_valid = _dataset_length(learn.data.valid_dl)
    accuracy = metrics.get("accuracy")
    if n_valid is None or accuracy is None or math.isnan(accuracy):
        return []
    half_width = 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 0.25 / n_valid) / n_valid)
    if half_width > 0.05:
        return [Finding(
            ValidationSizeWarning, f"with {n_valid} validation items, accuracy "
            f"{accuracy:.3f} has a 95% interval of ±{half_width:.3f}; differences between two "
            f"models smaller than that are noise", "use a larger validation set (valid_pct) "
            "or cross-validation before comparing models")]
    return []


def _dataset_length(loader: DataLoader | None) -> int | None:
    """The number of items ``loader`` reads, None when unknown: a dataset that yields whole
    batches (``batch_size=None``, no batch sampler) has a length in batches, not items."""
    if loader is None or (loader.batch_size is None and loader.batch_sampler is None):
        return None
    try:
        return len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        return None


def _items_alone(loader: DataLoader) -> Iterator[Any]:
    """The items of ``loader`` in its sampler's order, each collated alone (a batch of one),
    so an item's inputs do not depend on the batch it lands in: a collate that pads to the
    longest of the batch (text, sequence pairs) would give one item as many hashes as there
    are padded lengths. A loader without batches of items (an iterable dataset, or no
    batching) gives its own batches."""
    from torch.utils.data import IterableDataset

    dataset = loader.dataset
    if (loader.batch_sampler is None or isinstance(dataset, IterableDataset)
            or not hasattr(dataset, "__getitem__")):
        yield from loader
        return
    for index in loader.sampler:
        yield loader.collate_fn([dataset[index]])


def _item_hashes(loader: DataLoader, limit: int) -> set[str]:
    """Hashes of the inputs of the first ``limit`` items of ``loader``, each item collated
    alone (:func:`_items_alone`). Items read, not distinct hashes, count towards the limit:
    data with many repeated items would otherwise be read to its end."""
    hashes: set[str] = set()
    seen = 0
    for batch in _items_alone(loader):
        inputs = [x for x in batch[:-1] if isinstance(x, Tensor)]
        if not inputs:
            return hashes
        for row in range(len(inputs[0])):
            digest = hashlib.blake2b(digest_size=16)
            for x in inputs:
                digest.update(x[row].detach().cpu().contiguous().numpy().tobytes())
            hashes.add(digest.hexdigest())
        seen += len(inputs[0])
        if seen >= limit:
            break
    return hashes


def _leakage_findings(learn: Learner, sample: int) -> list[Finding]:
    from torch.utils.data import DataLoader, SequentialSampler

    train_dl, valid_dl = learn.data.train_dl, learn.data.valid_dl
    if train_dl is None or valid_dl is None:
        return []
    ordered = DataLoader(train_dl.dataset, batch_size=train_dl.batch_size or 64,
                         sampler=SequentialSampler(train_dl.dataset),  # type: ignore[arg-type]
                         collate_fn=train_dl.collate_fn)
    valid = _item_hashes(valid_dl, sample)
    train = _item_hashes(ordered, 10 * sample)
    shared = valid & train
    if shared:
        return [Finding(
            LeakageWarning, f"{len(shared)} of {len(valid)} validation items checked also "
            f"appear in the training set; validation scores will be too optimistic",
            "split before augmenting or duplicating, and remove duplicates across the split")]
    return []


def _target_sample(learn: Learner, limit: int = 20000) -> Tensor | None:
    targets, seen = [], 0
    for batch in learn.data.train_dl or []:
        if not isinstance(batch[-1], Tensor):
            return None  # a target in parts (a dict, a tuple): no classes to count
        targets.append(batch[-1].reshape(-1) if learn.data.target_kind == "single_label"
                       else batch[-1])
        seen += len(batch[-1])
        if seen >= limit:
            break
    return torch.cat(targets) if targets else None


def _imbalance_findings(learn: Learner) -> list[Finding]:
    if learn.data.target_kind != "single_label":
        return []
    targets = _target_sample(learn)
    if targets is None or not targets.numel():
        return []
    counts = torch.bincount(targets.long(), minlength=learn.data.n_out).float()
    share, majority = float(counts.min() / counts.sum()), float(counts.max() / counts.sum())
    if float(counts.min()) >= 0.2 * float(counts.max()):  # heavily: the largest class > 5x
        return []
    weighted = getattr(learn.loss_func, "weight", None) is not None
    names = {m.name for m in learn.metrics}
    fitting = bool(names & {"roc_auc", "f1", "f1_binary", "f1_micro"}) or any(
        n.startswith("f") and n[1:2].isdigit() for n in names)
    if weighted or fitting:
        return []
    return [Finding(
        ImbalanceWarning, f"the rarest class is {share:.1%} of the training targets and the "
        f"metrics are {sorted(names) or 'none'}: a model that always predicts the largest "
        f"class scores {majority:.1%} accuracy",
        "add ember.RocAuc() or ember.FBeta() to metrics, and/or pass a class-weighted loss "
        "(ember.CrossEntropyFlat(weight=...))")]


def doctor(learn: Learner, sample: int = 2000, verbose: bool = True) -> list[Finding]:
    """Run every check on ``learn`` and return the findings (also printed as a report).

    Checks the loaders, train/validation overlap (hashes of up to ``sample`` decoded validation
    items), target balance against loss and metrics, one batch through model and loss,
    input normalisation, BatchNorm against the fine-tuning policy, the learning rate against
    ``lr_find``, gradients, and the validation set's size (95 % interval of accuracy).

    Example:
        >>> # for finding in learn.doctor(): print(finding)
    """
    check_setup(learn)
    findings = _loader_findings(learn) + _bn_findings(learn)
    findings += _lr_findings(learn) + _imbalance_findings(learn)
    findings += _leakage_findings(learn, sample)
    batch = learn.data.one_batch()
    inputs = tuple(x.to(learn.device) if isinstance(x, Tensor) else x for x in batch[:-1])
    target = batch[-1].to(learn.device) if isinstance(batch[-1], Tensor) else batch[-1]
    with evaluating(learn.model):
        pred = first_forward(learn.model, inputs)
        check_first_batch(learn, pred, target)
        first_loss(learn, pred, target)
    findings += _normalisation_findings(learn, inputs)
    if learn.data.valid_dl is not None:
        findings += _validation_size_findings(learn, learn.validate())
    if verbose:
        print("learn.doctor(): " + ("no problem found" if not findings else
                                    f"{len(findings)} finding(s)"))
        for finding in findings:
            print(f"  - {finding}")
    return findings


class Guard(Callback):
    """The cheap checks, at the start of every fit (on by default; ``Learner(checks=False)``
    removes it): loaders, gradients, learning rate against ``lr_find``, BatchNorm policy,
    input normalisation on the first batch, and a loss that rises sharply in the first batches
    (training stops and ``lr_find`` is suggested). The costlier checks (overlap between
    training and validation, class balance, validation size) run in :func:`doctor`.

    Example:
        >>> Guard().order == Order.GUARD
        True
    """

    order = Order.GUARD
    #: batches watched for a rising loss, batches averaged at each end, and the rise that
    #: counts: the recent average above ``rise_factor`` times the first one and up by at
    #: least ``rise_min`` (so one noisy batch, or a tiny loss tripling, does not count)
    rise_window, rise_average, rise_factor, rise_min = 40, 5, 3.0, 1.0
    watching = False  # set by each fit (a validate() alone has nothing to watch)

    def before_fit(self) -> None:
        self.first_train_batch = True
        self.early_losses: list[float] = []
        self.watching = True  # until the rise window is full; then every batch returns at once
        for finding in _loader_findings(self.learn) + _lr_findings(self.learn):
            finding.warn()

    def after_loss(self) -> None:
        if not (self.watching and self.learn.training):
            return
        if self.first_train_batch:
            self.first_train_batch = False
            for finding in (_normalisation_findings(self.learn, self.learn.xb)
                            + _model_state_findings(self.learn) + _bn_findings(self.learn)):
                finding.warn()
        losses = self.early_losses
        if len(losses) >= self.rise_window:
            self.watching = False
            return
        loss = float(self.learn.loss)
        if not math.isfinite(loss):
            return  # a NaN/inf loss is the NaN guard's to report (it also restores weights)
        losses.append(loss)
        if len(losses) < 2 * self.rise_average:
            return
        first = sum(losses[: self.rise_average]) / self.rise_average
        recent = sum(losses[-self.rise_average:]) / self.rise_average
        if recent > self.rise_factor * first and recent - first > self.rise_min:
            Finding(LearningRateWarning, f"the loss rose from {first:.3g} to {recent:.3g} "
                    f"(averages of {self.rise_average} batches) within the first {len(losses)} "
                    f"batches; the learning rate is very likely too high, so training was "
                    f"stopped", "run learn.lr_find() and train with its suggestion").warn()
            raise CancelFitException

