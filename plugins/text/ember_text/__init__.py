"""Ember's text plugin: spaCy tokenisation, vocabularies and text models.

Sequence-to-sequence lives in :mod:`ember_text.seq2seq`.

Example:
    >>> from ember_text.seq2seq import Seq2SeqData
"""

__version__ = "0.1.0"
