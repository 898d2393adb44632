"""Model builders sized to the data, encoder transfer and ULMFiT fine-tuning.

The ULMFiT route in four calls::

    lm_data = LanguageModelData.from_texts(corpus)
    lm = ember.learner(lm_data)                      # AWD-LSTM language model
    lm.fit_one_cycle(5, 3e-3)
    save_encoder(lm, "encoder.safetensors")

    data = TextData.from_df(df, "text", "label", vocab=lm_data.vocab)   # same ids
    learn = ember.learner(data, model=text_classifier(data, pretrained="encoder.safetensors"))
    fine_tune_classifier(learn, epochs=4)            # gradual unfreezing, discriminative LRs

The encoder file is safetensors (no pickle) with the architecture, its config and the vocab in
its header, so :func:`load_encoder` refuses an encoder of another size and maps the embedding
rows by token when the classifier's vocab differs from the language model's.

Example:
    >>> # model = text_classifier(data, arch="transformer", d_model=128)
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

import ember
from ember import DataError, TrainingError
from ember.export import manifest_digest, weights_digest
from ember.utils import is_whole, warn
from ember_text.data import LanguageModelData, TextData
from ember_text.tokenize import Vocab

__all__ = [
    "ARCHITECTURES",
    "average_preds",
    "default_config",
    "fine_tune_classifier",
    "language_model",
    "load_encoder",
    "map_embedding",
    "save_encoder",
    "text_classifier",
]

#: Encoder names → the registered classifier and language-model architectures.
ARCHITECTURES = {
    "awd_lstm": ("awd_lstm_classifier", "awd_lstm_lm"),
    "transformer": ("transformer_classifier", "transformer_lm"),
}
#: Header keys of an encoder file's SHA-256 digests: of its weights and of its other header
#: entries. A file saved before they were recorded has neither and is read unchecked.
WEIGHTS_KEY, HEADER_KEY = "weights_sha256", "header_sha256"
#: Config keys that define an encoder's shape (must match between a language model and the
#: classifier that reuses its encoder).
ENCODER_KEYS = {
    "awd_lstm": ("vocab_size", "emb_size", "hidden_size", "n_layers"),
    "transformer": ("vocab_size", "d_model", "n_heads", "n_layers", "max_len"),
}


def _n_train_tokens(data: ember.Data) -> int:
    dataset = data.train_dl.dataset if data.train_dl is not None else None
    if dataset is None:
        return 0
    if hasattr(dataset, "lengths"):
        return int(sum(dataset.lengths))
    return len(getattr(dataset, "ids", []))


def default_config(data: TextData | LanguageModelData, arch: str = "awd_lstm") -> dict[str, Any]:
    """Encoder sizes for ``data``: small for a few hundred thousand training tokens (a
    quick-start trains in seconds on a CPU), ULMFiT-like for large corpora.

    Example:
        >>> # default_config(data)  -> {'emb_size': 64, 'hidden_size': 192, 'n_layers': 2}
    """
    if arch not in ARCHITECTURES:
        raise TrainingError(f"unknown text architecture {arch!r}; choose from "
                            f"{sorted(ARCHITECTURES)}")
    n_tokens = _n_train_tokens(data)
    if arch == "awd_lstm":
        if n_tokens < 300_000:
            return {"emb_size": 64, "hidden_size": 192, "n_layers": 2}
        if n_tokens < 3_000_000:
            return {"emb_size": 200, "hidden_size": 600, "n_layers": 3}
        return {"emb_size": 400, "hidden_size": 1152, "n_layers": 3}
    if n_tokens < 300_000:
        return {"d_model": 64, "n_heads": 4, "n_layers": 2}
    return {"d_model": 256, "n_heads": 4, "n_layers": 4}


def _target_scale(data: TextData) -> dict[str, list[float]]:
    """A regressor's ``target_mean`` / ``target_std`` (per output) from the training targets,
    which :class:`TextClassifier` maps its output to; nothing for classes or without them."""
    dataset = data.train_dl.dataset if data.train_dl is not None else None
    targets = getattr(dataset, "targets", None)
    if data.target_kind != "regression" or targets is None or len(targets) == 0:
        return {}
    mean, std = ember.target_scale(targets)
    return {"target_mean": mean, "target_std": std}


def text_classifier(data: TextData, arch: str = "awd_lstm", pretrained: str | Path | None = None,
                    **config: Any) -> nn.Module:
    """A classifier (or regressor) for ``data``, built by name with ``ember.create_model`` so
    it exports. ``arch`` is ``"awd_lstm"`` or ``"transformer"``; ``config`` overrides the sizes
    of :func:`default_config`. A regressor's output is mapped to the mean and spread of the
    training targets (``target_mean`` / ``target_std`` in its config), so it starts at their
    scale. ``pretrained`` is a file from :func:`save_encoder`: the
    classifier takes its encoder's shape and weights (embedding rows mapped by token when
    ``data`` has another vocab, see :func:`load_encoder`).

    Example:
        >>> # learn = ember.learner(data, model=text_classifier(data, arch="transformer"))
    """
    if not isinstance(data, TextData):
        raise DataError(f"text_classifier needs a TextData, got {type(data).__name__}")
    name = ARCHITECTURES.get(arch, (None, None))[0]
    if name is None:
        raise TrainingError(f"unknown text architecture {arch!r}; choose from "
                            f"{sorted(ARCHITECTURES)}")
    settings: dict[str, Any] = default_config(data, arch)
    if pretrained is not None:
        header = read_encoder_header(pretrained)
        if header["arch"] != arch:
            raise TrainingError(f"{pretrained} holds a {header['arch']} encoder; build the "
                                f"classifier with arch={header['arch']!r}")
        settings = {k: v for k, v in header["config"].items() if k != "vocab_size"}
        if arch == "transformer":
            settings["causal"] = True
    settings.update(_target_scale(data))
    settings.update(config)
    if arch == "transformer":
        settings.setdefault("max_len", max(data.max_len, 16))
    model = ember.create_model(name, vocab_size=len(data.vocab), n_out=data.n_out, **settings)
    if pretrained is not None:
        load_encoder(model, pretrained, vocab=data.vocab, backwards=data.backwards)
        # beside the config, which an export rebuilds from: fit_auto reads it (fine_tune recipe)
        model.ember_config["pretrained"] = str(pretrained)
    return model


def language_model(data: LanguageModelData, arch: str = "awd_lstm", *,
                   unigram_bias: bool = True, **config: Any) -> nn.Module:
    """A language model for ``data`` (``"awd_lstm"`` or ``"transformer"``), sized by
    :func:`default_config` unless ``config`` says otherwise. With ``unigram_bias`` the
    decoder's bias starts at the log frequencies of the training tokens
    (:meth:`~ember_text.models.LanguageModel.init_output_bias`), which keeps the recurrent
    cells from saturating early in training (an encoder saturated that way does not transfer).

    Example:
        >>> # learn = ember.learner(lm_data, model=language_model(lm_data, arch="transformer"))
    """
    if not isinstance(data, LanguageModelData):
        raise DataError(f"language_model needs a LanguageModelData, got {type(data).__name__}")
    name = ARCHITECTURES.get(arch, (None, None))[1]
    if name is None:
        raise TrainingError(f"unknown text architecture {arch!r}; choose from "
                            f"{sorted(ARCHITECTURES)}")
    settings = {**default_config(data, arch), **config}
    if arch == "transformer":
        settings.setdefault("max_len", max(512, 2 * data.bptt))
    model = ember.create_model(name, vocab_size=len(data.vocab), **settings)
    stream = getattr(getattr(data.train_dl, "dataset", None), "ids", None)
    if unigram_bias and stream is not None:
        model.init_output_bias(torch.bincount(stream, minlength=len(data.vocab)))
    return model


def _model_of(learn_or_model: Any) -> nn.Module:
    return learn_or_model.model if isinstance(learn_or_model, ember.Learner) else learn_or_model


def _arch_of(model: nn.Module) -> tuple[str, dict[str, Any]]:
    config = getattr(model, "ember_config", None)
    if not isinstance(config, dict) or "name" not in config:
        raise TrainingError("the model was not built with ember.create_model (or "
                            "text_classifier / language_model), so its encoder cannot be "
                            "described; build it by name")
    for arch, names in ARCHITECTURES.items():
        if config["name"] in names:
            keys = ENCODER_KEYS[arch]
            return arch, {k: v for k, v in config["config"].items() if k in keys}
    raise TrainingError(f"{config['name']!r} has no text encoder to save")


def _direction_of(learn_or_model: Any, backwards: bool | None) -> bool | None:
    if backwards is None and isinstance(learn_or_model, ember.Learner):
        backwards = getattr(learn_or_model.data, "backwards", None)
    return None if backwards is None else bool(backwards)


def _direction(backwards: bool) -> str:
    return "backward" if backwards else "forward"


def save_encoder(learn_or_model: Any, path: str | Path, vocab: Vocab | None = None,
                 backwards: bool | None = None) -> Path:
    """Write the encoder of a language model (or classifier) to a safetensors file with its
    architecture, config, vocab and reading direction in the header, and SHA-256 digests of
    the header and the weights, which reading the file checks (the same digests as an
    exported model's, :func:`ember.export.weights_digest` and
    :func:`ember.export.manifest_digest`).

    ``vocab`` and ``backwards`` default to the learner's data's (a bare model gives none, and
    its direction is then not checked when the encoder is read).

    Example:
        >>> # save_encoder(lm_learn, "austen_encoder.safetensors")
    """
    model = _model_of(learn_or_model)
    arch, config = _arch_of(model)
    if vocab is None and isinstance(learn_or_model, ember.Learner):
        vocab = getattr(learn_or_model.data, "vocab", None)
    backwards = _direction_of(learn_or_model, backwards)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items()}
    metadata = {"format": "ember-text-encoder", "arch": arch, "config": json.dumps(config),
                "vocab": json.dumps(vocab.itos if vocab is not None else None),
                "backwards": json.dumps(backwards), WEIGHTS_KEY: weights_digest(tensors)}
    metadata[HEADER_KEY] = _header_digest(metadata)
    path = Path(path).expanduser()  # "~/encoder.safetensors" is in the home folder
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_encoder_header(path: str | Path) -> dict[str, Any]:
    """Architecture, config, vocab and direction (``backwards``: ``True``, ``False``, or
    ``None`` when it was not recorded) of an encoder file (no weights read).

    Example:
        >>> # read_encoder_header("encoder.safetensors")["arch"] -> 'awd_lstm'
    """
    path = Path(path).expanduser()  # "~/encoder.safetensors" is in the home folder
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own types for unreadable files
        raise TrainingError(f"cannot read an encoder from {path}: {error}") from None
    if metadata.get("format") != "ember-text-encoder":
        raise TrainingError(f"{path} is not an encoder written by ember_text.save_encoder")
    recorded = metadata.get(HEADER_KEY)  # encoders saved before it have none: unchecked
    if recorded is not None and _header_digest(metadata) != recorded:
        raise TrainingError(
            f"{path} is damaged: its header (architecture, config, vocab, direction) does not "
            f"match the SHA-256 digest recorded when it was saved, so it was changed after "
            f"(a damaged copy or disk, or an edit); a changed vocab would give words other "
            f"words' rows. Save the encoder again from its language model, or copy the file "
            f"again")
    return {"arch": metadata["arch"], "config": json.loads(metadata["config"]),
            "vocab": json.loads(metadata["vocab"]),
            "backwards": json.loads(metadata.get("backwards", "null")),
            "weights_sha256": metadata.get(WEIGHTS_KEY)}


def _header_digest(metadata: dict[str, str]) -> str:
    """SHA-256 of an encoder file's header entries but the digest's own: each name and its
    exact stored text, in name order."""
    entries = {name: text for name, text in metadata.items() if name != HEADER_KEY}
    return manifest_digest(json.dumps(entries, sort_keys=True))


def load_encoder(learn_or_model: Any, path: str | Path, vocab: Vocab | None = None,
                 backwards: bool | None = None) -> None:
    """Load an encoder written by :func:`save_encoder` into a model of the same shape.

    When the model's vocab (``vocab``, or the learner's data's) differs from the one the
    encoder was trained with, the embedding rows are mapped by token: a token both vocabs
    know keeps its trained row, a token the encoder never saw starts at the mean of the
    trained rows (ULMFiT's rule). The model's embedding must then have one row per token of
    ``vocab``. An encoder trained in the other direction than the model reads its texts
    (``backwards``, or the learner's data's) raises ``TrainingError``: a backward encoder
    in a forward classifier trains without complaint, on texts it reads back to front.

    Example:
        >>> # load_encoder(classifier_learn, "austen_encoder.safetensors")
    """
    path = Path(path).expanduser()  # "~/encoder.safetensors" is in the home folder
    model = _model_of(learn_or_model)
    if vocab is None and isinstance(learn_or_model, ember.Learner):
        vocab = getattr(learn_or_model.data, "vocab", None)
    header = read_encoder_header(path)
    backwards = _direction_of(learn_or_model, backwards)
    if header["backwards"] is not None and backwards is not None \
            and header["backwards"] != backwards:
        raise TrainingError(
            f"{path} holds a {_direction(header['backwards'])} encoder (its language model "
            f"was trained with backwards={header['backwards']}), but this model reads texts "
            f"{_direction(backwards)}; give it the {_direction(backwards)} language model's "
            f"encoder, or build the data with backwards={header['backwards']}")
    arch, config = _arch_of(model)
    remap = vocab is not None and header["vocab"] is not None and header["vocab"] != vocab.itos
    same_shape = {k: v for k, v in header["config"].items() if k != "vocab_size" or not remap}
    if header["arch"] != arch or same_shape != {k: v for k, v in config.items()
                                                if k != "vocab_size" or not remap}:
        raise TrainingError(
            f"{path} holds a {header['arch']} encoder {header['config']}, this model's is "
            f"{arch} {config}; build the model with text_classifier(data, pretrained=path)")
    if vocab is not None and header["vocab"] is None:
        warn(
            f"{path} was saved without its vocab, so its embedding rows are read in this "
            f"model's vocab order; if the encoder learned another vocab, words get other "
            f"words' rows. Save it with save_encoder(..., vocab=) (a Learner gives its data's)")
    state = load_file(str(path))
    if header["weights_sha256"] is not None and weights_digest(state) != header["weights_sha256"]:
        raise TrainingError(
            f"{path} is damaged: its weights do not match the SHA-256 digest recorded when it "
            f"was saved, so they were changed after (a damaged copy or disk). Save the encoder "
            f"again from its language model, or copy the file again")
    if remap and vocab is not None:
        for name in _embedding_names(state):
            state[name] = map_embedding(state[name], header["vocab"], vocab.itos)
    device = next(model.parameters()).device
    model.encoder.load_state_dict({k: v.to(device) for k, v in state.items()})


def _embedding_names(state: dict[str, torch.Tensor]) -> list[str]:
    return [name for name in state if name.split(".")[0] == "embedding"
            and name.endswith("weight")]


def map_embedding(weight: torch.Tensor, old_itos: list[str], new_itos: list[str]
                  ) -> torch.Tensor:
    """Embedding rows for ``new_itos`` from rows trained for ``old_itos``: a shared token
    keeps its row, a new token gets the mean of the trained rows.

    Example:
        >>> weight = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 5.0]])
        >>> map_embedding(weight, ["xxunk", "xxpad", "good"], ["xxunk", "xxpad", "new", "good"])
        tensor([[0., 0.],
                [1., 1.],
                [1., 2.],
                [2., 5.]])
    """
    old_index = {token: index for index, token in enumerate(old_itos)}
    mapped = weight.mean(dim=0, keepdim=True).repeat(len(new_itos), 1)
    pairs = [(new, old_index[token]) for new, token in enumerate(new_itos) if token in old_index]
    if pairs:
        new_rows, old_rows = (torch.tensor(part) for part in zip(*pairs))
        mapped[new_rows] = weight[old_rows]
    return mapped


def fine_tune_classifier(learn: ember.Learner, epochs: int = 4, lr: float = 4e-3,
                         factor: float = 2.6**4) -> None:
    """ULMFiT fine-tuning with gradual unfreezing and discriminative learning rates: one
    epoch with only the head training at ``lr``; one with the top encoder layer too at
    ``slice(lr/2/factor, lr/2)``; one with the top two at ``slice(lr/4/factor, lr/4)``; then
    ``epochs - 3`` (at least one) with everything at ``slice(lr/8/factor, lr/8)``. Each
    stage is a one-cycle fit; ``slice(low, high)`` spreads rates geometrically from the
    embedding to the head (each lower group 2.6 times slower in ULMFiT's setting).
    ``epochs`` is a whole number, 0 or more; 0 trains nothing, as ``learn.fit(0)``. ``lr`` is
    one number, the head's rate (a ``slice`` or a list is refused: the stages spread it).

    Example:
        >>> # fine_tune_classifier(learn, epochs=5)
    """
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TrainingError(
            f"fine_tune_classifier(lr={lr!r}): give one learning rate, the head's (a number "
            f"such as 4e-3); each stage spreads it over the layer groups itself "
            f"(slice(lr / 2 / factor, lr / 2) in the second)")
    learn.lr_for_groups(lr)  # a bad rate is refused here, not after the first stage trained
    if not is_whole(epochs):
        raise ember.TrainingError(
            f"fine_tune_classifier(epochs={epochs!r}): give a whole number of epochs, 0 or more "
            f"(every stage trains one epoch at least, so 1 to 4 train four)")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 1:
        raise ember.TrainingError(
            f"fine_tune_classifier(factor={factor!r}): each lower layer group trains factor "
            f"times slower than the one above it, so give a number of 1 or more (1 trains "
            f"every group at one rate; ULMFiT's is 2.6**4 over the four stages' spans)")
    if epochs == 0:  # nothing to train, as fit(0); the stages below train one epoch each
        return
    learn.freeze()
    learn.fit_one_cycle(1, lr)
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, slice(lr / 2 / factor, lr / 2))
    learn.freeze_to(-3)
    learn.fit_one_cycle(1, slice(lr / 4 / factor, lr / 4))
    learn.unfreeze()
    learn.fit_one_cycle(max(1, epochs - 3), slice(lr / 8 / factor, lr / 8))


def average_preds(learners: list[ember.Learner], dl: str = "valid",
                  weights: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Averaged probabilities of several learners over the same items, and the targets: the
    ensemble of ULMFiT's forward and backward classifiers (``TextData.from_texts(...,
    backwards=True)`` orders each split exactly as the forward data does, since reversing a
    text keeps its length). ``weights`` (default equal) weight each learner's probabilities.
    Raises ``TrainingError`` when the learners' targets differ (other items or another order).

    Example:
        >>> # probs, targets = average_preds([forward_learn, backward_learn])
        >>> # accuracy = (probs.argmax(1) == targets).float().mean()
    """
    if not learners:
        raise TrainingError("average_preds needs at least one learner")
    weights = list(weights) if weights is not None else [1.0] * len(learners)
    if len(weights) != len(learners):
        raise TrainingError(f"{len(weights)} weights for {len(learners)} learners; give one "
                            f"weight per learner")
    total, targets = None, None
    for index, (learn, weight) in enumerate(zip(learners, weights)):
        probs, these = learn.get_preds(dl)
        if targets is None:
            targets = these
        elif these.shape != targets.shape or not torch.equal(these, targets):
            raise TrainingError(
                f"learner #{index} has other {dl} targets than learner #0 (other items or "
                f"another order); build every learner's data from the same texts and split")
        total = probs * weight if total is None else total + probs * weight
    assert total is not None and targets is not None
    return total / sum(weights), targets
