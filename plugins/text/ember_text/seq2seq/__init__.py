"""Sequence-to-sequence with attention and dynamic teacher forcing.

Example:
    >>> import ember
    >>> from ember_text.seq2seq import Seq2SeqData, load_sample
    >>> data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:200], bs=32)
    >>> data.kind, data.target_kind
    ('seq2seq', 'sequence')
"""

from ember_text.seq2seq.callbacks import SCHEDULES, TeacherForcing, schedule_value
from ember_text.seq2seq.data import Seq2SeqData, Translation, Vocab, build_vocab, tokens_of
from ember_text.seq2seq.datasets import load_sample
from ember_text.seq2seq.decoding import beam_search, greedy_decode
from ember_text.seq2seq.metrics import Bleu, ExactMatch, TokenAccuracy, corpus_bleu
from ember_text.seq2seq.models import AdditiveAttention, MultiplicativeAttention, Seq2SeqRNN
from ember_text.seq2seq.show import show_attention

__all__ = [
    "SCHEDULES",
    "AdditiveAttention",
    "Bleu",
    "ExactMatch",
    "MultiplicativeAttention",
    "Seq2SeqData",
    "Seq2SeqRNN",
    "TeacherForcing",
    "TokenAccuracy",
    "Translation",
    "Vocab",
    "beam_search",
    "build_vocab",
    "corpus_bleu",
    "greedy_decode",
    "load_sample",
    "schedule_value",
    "show_attention",
    "tokens_of",
]
