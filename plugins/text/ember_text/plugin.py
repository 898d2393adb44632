"""The text plugin's hooks: data kinds, architectures, defaults, metrics, callbacks, demo.

Example:
    >>> import ember
    >>> "awd_lstm_classifier" in ember.get_registry().architectures
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable

import ember
from ember_text import models
from ember_text.callbacks import ResetState
from ember_text.data import LanguageModelData, TextData
from ember_text.metrics import Perplexity

EMBER_CONTRACT = 1


def _text_sample() -> ember.Sample:
    from ember_text.datasets import load_rotten_tomatoes

    texts, labels, _ = load_rotten_tomatoes()
    data = TextData.from_texts(texts[:400], labels[:400], valid_pct=0.2, seed=0, bs=32)
    return ember.Sample(data, items=list(texts[400:406]))


def _language_model_sample() -> ember.Sample:
    from ember_text.datasets import load_rotten_tomatoes

    texts, _, _ = load_rotten_tomatoes()
    data = LanguageModelData.from_texts(texts[:400], valid_pct=0.2, seed=0, bs=16, bptt=20)
    return ember.Sample(data, items=["It is a truth", "The film"],
                        options={"n_words": 5, "temperature": 0})


@ember.hookimpl
def ember_samples(register: Callable[..., None]) -> None:
    register("text", _text_sample)
    register("language_model", _language_model_sample)


@ember.hookimpl
def ember_data_kinds(register: Callable[..., None]) -> None:
    register("text", TextData)
    register("language_model", LanguageModelData)


@ember.hookimpl
def ember_architectures(register: Callable[..., None]) -> None:
    register("awd_lstm_lm", models.awd_lstm_lm,
             description="AWD-LSTM language model with a tied decoder (ULMFiT)")
    register("awd_lstm_classifier", models.awd_lstm_classifier,
             description="AWD-LSTM encoder + masked concat-pooling head (ULMFiT classifier)")
    register("transformer_lm", models.transformer_lm,
             description="causal transformer language model (scaled-dot-product attention)")
    register("transformer_classifier", models.transformer_classifier,
             description="transformer encoder + masked concat-pooling head")


@ember.hookimpl
def ember_metrics(register: Callable[..., None]) -> None:
    register("perplexity", Perplexity)


@ember.hookimpl
def ember_callbacks(register: Callable[..., None]) -> None:
    register("ResetState", ResetState)


@ember.hookimpl
def ember_defaults(data: ember.Data) -> ember.Defaults | None:
    from ember_text.ulmfit import language_model, text_classifier

    if isinstance(data, LanguageModelData):
        return ember.Defaults(model=lambda: language_model(data),
                              metrics=[ember.Accuracy(), Perplexity()], cbs=[ResetState()],
                              lr=3e-3)
    if isinstance(data, TextData):
        return ember.Defaults(model=lambda: text_classifier(data), lr=3e-3)
    return None


def rotten_tomatoes_demo(smoke: bool = False) -> dict[str, float]:
    """Train the default AWD-LSTM classifier on the bundled Rotten Tomatoes sample (4,000
    review snippets, fresh vs rotten; the majority class is 0.567 of it) and return the
    validation accuracy.

    Example:
        >>> # rotten_tomatoes_demo(smoke=True)["accuracy"]
    """
    from ember_text.datasets import load_rotten_tomatoes

    ember.seed(0)
    texts, labels, _ = load_rotten_tomatoes()
    if smoke:
        texts, labels = texts[:600], labels[:600]
    start = time.perf_counter()
    data = TextData.from_texts(texts, labels, valid_pct=0.2, seed=0, bs=64)
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(1 if smoke else 4, 3e-3)
    result = learn.validate()
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    return {"accuracy": result["accuracy"], "majority_class": majority,
            "seconds": time.perf_counter() - start}


@ember.hookimpl
def ember_quickstart(register: Callable[..., None]) -> None:
    register(ember.Demo(domain="text", name="rotten_tomatoes", run=rotten_tomatoes_demo,
                        description="AWD-LSTM classifier on 4,000 Rotten Tomatoes snippets"))
