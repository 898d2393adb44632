"""Ember's text plugin: spaCy tokenisation, vocab, language models and ULMFiT classification.

torchtext is not used (its last release cannot load with modern torch); this package owns the
whole path from text to tensors: :class:`Tokenizer` (a blank spaCy tokenizer plus rule
tokens), :class:`Vocab`, :class:`TextData` (classification and regression) and
:class:`LanguageModelData` (BPTT streams). Sequence-to-sequence with attention and dynamic
teacher forcing lives in :mod:`ember_text.seq2seq`.

Example:
    >>> from ember_text import Tokenizer, Vocab
    >>> tokens = Tokenizer()("Hello there")
    >>> Vocab.build([tokens], min_freq=1).numericalize(tokens)[:1]
    [2]
"""

from __future__ import annotations

from ember_text.callbacks import ResetState
from ember_text.data import LanguageModelData, TextData
from ember_text.datasets import load_rotten_tomatoes
from ember_text.metrics import Perplexity
from ember_text.tokenize import SPECIAL_TOKENS, Tokenizer, Vocab
from ember_text.ulmfit import (
    average_preds,
    fine_tune_classifier,
    language_model,
    load_encoder,
    map_embedding,
    save_encoder,
    text_classifier,
)

__version__ = "0.1.0"

__all__ = [
    "SPECIAL_TOKENS",
    "LanguageModelData",
    "Perplexity",
    "ResetState",
    "TextData",
    "Tokenizer",
    "Vocab",
    "average_preds",
    "fine_tune_classifier",
    "language_model",
    "load_encoder",
    "load_rotten_tomatoes",
    "map_embedding",
    "save_encoder",
    "text_classifier",
]
