"""Sequence-to-sequence data: pairs of strings → padded, length-bucketed batches of token ids.

A batch is ``(src, tgt, target)``:

- ``src`` (``N x S`` long): source token ids, each sequence ended by ``<eos>``, padded with
  ``<pad>`` (id 0);
- ``tgt`` (``N x T`` long): target token ids ended by ``<eos>`` and padded with ``<pad>``; the
  model reads it for teacher forcing (and for the number of steps to decode);
- ``target`` (``N x T`` long): the same ids with padding replaced by ``-100``, so the default
  loss (:class:`ember.CrossEntropyFlat`) and the metrics ignore it.

Tokens are characters by default (no spaCy needed), or words (spaCy's rule-based tokenizer of a
blank pipeline, keeping each token's trailing whitespace so that joining tokens gives back the
exact text). Whitespace runs count as one space and the ends of a text are stripped, on both
sides, in training and at inference, and accents are read in their composed form (NFC), so a
decomposed ``"é"`` (``"e"`` + U+0301, as macOS file names and some keyboards write it) is the
``"é"`` of training, not a new token; decoded text is stripped the same way, so a last word
token's trailing space never reaches the user. The special ids are fixed: ``<pad>`` 0,
``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3.

Example:
    >>> data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2"), ("trois", "3")] * 4, bs=4)
    >>> data.target_kind, data.src_vocab[:6]
    ('sequence', ['<pad>', '<bos>', '<eos>', '<unk>', 'u', 'd'])
    >>> src, tgt, target = data.one_batch()
    >>> src.shape[0], tgt.shape[1]
    (4, 2)
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

import ember
from ember.data import check_batch_size
from ember.model import evaluating
from ember.utils import check_whole, is_missing, warn
from ember_text.data import SortishSampler, TextData, _one_text, pad_ids
from ember_text.tokenize import Vocab, _composed, blank_tokenizer, check_text

__all__ = [
    "BOS",
    "EOS",
    "IGNORE_INDEX",
    "PAD",
    "SPECIALS",
    "UNK",
    "Seq2SeqData",
    "Translation",
    "Vocab",
    "build_vocab",
    "normalise_space",
    "seq2seq_vocab",
    "tokens_of",
]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
#: The special tokens, at ids 0 … 3 of every vocab.
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
#: Target value that the loss and the metrics ignore (padding).
IGNORE_INDEX = -100
LEVELS = ("char", "word")


def seq2seq_vocab(itos: Sequence[str]) -> Vocab:
    """A :class:`ember_text.Vocab` with the sequence-to-sequence specials at their fixed ids
    (``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3), e.g. from an export's token list.

    Example:
        >>> seq2seq_vocab(["<pad>", "<bos>", "<eos>", "<unk>", "a"]).numericalize(["a", "z"])
        [4, 3]
    """
    if tuple(itos[: len(SPECIALS)]) != SPECIALS:
        raise ember.DataError(f"a seq2seq vocab must start with the special tokens {SPECIALS}")
    return Vocab(itos, unk=SPECIALS[UNK], pad=SPECIALS[PAD])


def build_vocab(sequences: Sequence[Sequence[str]], min_freq: int = 1,
                max_size: int | None = None) -> Vocab:
    """Count tokens and keep those seen ``min_freq`` times, at most ``max_size`` tokens in all,
    the four specials included (as :meth:`ember_text.Vocab.build` and ``TextData``'s
    ``max_vocab`` count them; most frequent first, ties in alphabetical order, so the same
    data always gives the same vocab).

    Example:
        >>> build_vocab([["b", "a", "b"]]).itos
        ['<pad>', '<bos>', '<eos>', '<unk>', 'b', 'a']
        >>> build_vocab([["b", "a", "b"]], max_size=5).itos
        ['<pad>', '<bos>', '<eos>', '<unk>', 'b']
    """
    return Vocab.build(sequences, min_freq, max_size, SPECIALS,
                       unk=SPECIALS[UNK], pad=SPECIALS[PAD])


def tokens_of(vocab: Vocab, ids: Sequence[int]) -> list[str]:
    """Tokens of ``ids`` up to the first ``<eos>``, without padding or ``<bos>`` (an id outside
    the vocab reads as ``<unk>``).

    Example:
        >>> tokens_of(build_vocab([["x"]]), [4, 4, 2, 4])
        ['x', 'x']
    """
    out: list[str] = []
    for index in ids:
        if index == EOS:
            break
        if index in (PAD, BOS, IGNORE_INDEX):
            continue
        out.append(vocab.itos[index] if 0 <= index < len(vocab.itos) else SPECIALS[UNK])
    return out


def _source_ids(vocab: Vocab, tokens: Sequence[str], level: str) -> list[int]:
    """Source tokens → ids. At word level a token keeps its trailing space, so one word has two
    forms, ``"mille "`` inside a text and ``"mille"`` at its end (or before punctuation); on
    the source side that space does not change the word, so a form never seen in training
    reads as the other form where training saw that one (``"deux mille"`` after training on
    ``"deux mille un"`` only), not as ``<unk>``.

    Example:
        >>> vocab = build_vocab([["deux ", "mille ", "un"]])
        >>> _source_ids(vocab, ["deux ", "mille"], "word") == vocab.numericalize(["deux ",
        ...                                                                     "mille "])
        True
    """
    ids = vocab.numericalize(tokens)
    if level != "word":
        return ids
    for position, (token, index) in enumerate(zip(tokens, ids)):
        if index == UNK and token != SPECIALS[UNK]:
            other = token[:-1] if token.endswith(" ") else f"{token} "
            ids[position] = vocab.stoi.get(other, UNK) if other.strip() else UNK
    return ids


def _target_ids(vocab: Vocab, tokens: Sequence[str], level: str) -> list[int]:
    """Target tokens → ids. At word level the last token of a (stripped) target has no
    trailing space; where training saw that word only inside a text (``"mille "``), it reads
    as that form, which decodes to the same text (decoded text is stripped), not as
    ``<unk>``: a reference ``"deux mille"`` stays ``"deux mille"`` for the metrics.

    Example:
        >>> vocab = build_vocab([["deux ", "mille ", "un"]])
        >>> _target_ids(vocab, ["deux ", "mille"], "word") == vocab.numericalize(["deux ",
        ...                                                                     "mille "])
        True
    """
    ids = vocab.numericalize(tokens)
    if level == "word" and ids and ids[-1] == UNK and tokens[-1] != SPECIALS[UNK]:
        ids[-1] = vocab.stoi.get(f"{tokens[-1]} ", UNK)
    return ids


class _WordSplitter:
    """Words by spaCy's rule-based tokenizer of a blank pipeline; each token keeps its trailing
    whitespace, so ``"".join(tokens)`` is the text again.

    Not :class:`ember_text.Tokenizer`: its ULMFiT rules lowercase words behind case tokens and
    its detokenisation re-spaces punctuation by rule, while a translation must come back
    exactly as its target was written.
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._tokenizer: Callable[[str], Any] | None = None

    def __call__(self, text: str) -> list[str]:
        if self._tokenizer is None:
            self._tokenizer = blank_tokenizer(
                self.lang, " as lang= (or src_lang= / tgt_lang= for one side)")
        return [token.text_with_ws for token in self._tokenizer(text)]


def normalise_space(text: str) -> str:
    """``text`` with its whitespace runs made one space and its ends stripped, so that
    ``"vingt  deux "`` reads as the ``"vingt deux"`` seen in training (word tokens carry their
    trailing space, and a stray space would make an unknown token).

    Example:
        >>> normalise_space(" quarante-deux\t mille ")
        'quarante-deux mille'
    """
    return " ".join(text.split())


class _Splitter:
    """The tokenizer of one side: Unicode composed (NFC: ``"e"`` + a combining acute accent
    reads as the ``"é"`` typed on most keyboards, whichever form training used) and whitespace
    normalised, then characters or words."""

    def __init__(self, level: str, lang: str, argument: str = "level") -> None:
        if level not in LEVELS:
            raise ember.DataError(f"{argument} must be one of {LEVELS}, got {level!r}")
        self.split: Callable[[str], list[str]] = list if level == "char" else _WordSplitter(lang)

    def __call__(self, text: str) -> list[str]:
        return self.split(normalise_space(_composed(text)))


class _PairDataset(Dataset):
    """Source ids and target ids, item by item; ``targets`` ``None`` (a test set without
    labels): items are ``(source ids,)``."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]] | None) -> None:
        self.sources, self.targets = sources, targets

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[list[int], ...]:
        if self.targets is None:
            return (self.sources[index],)
        return self.sources[index], self.targets[index]


def collate_pairs(batch: Sequence[tuple[list[int], ...]]) -> tuple[Tensor, ...]:
    """Pad a list of ``(source ids, target ids)`` into ``(src, tgt, target)``; items of
    ``(source ids,)`` alone (a test set without labels) give ``(src,)``.

    Example:
        >>> src, tgt, target = collate_pairs([([5, 2], [6, 2]), ([5, 5, 2], [2])])
        >>> target.tolist()
        [[6, 2], [2, -100]]
        >>> [src.tolist() for src in collate_pairs([([5, 2],), ([5, 5, 2],)])]
        [[[5, 2, 0], [5, 5, 2]]]
    """
    columns = list(zip(*batch))
    if len(columns) == 1:  # sources alone
        return (pad_ids(columns[0], PAD),)
    sources, targets = columns
    tgt = pad_ids(targets, PAD)
    return pad_ids(sources, PAD), tgt, tgt.masked_fill(tgt == PAD, IGNORE_INDEX)


@dataclass
class Translation:
    """One decoded prediction with what :func:`show_attention` draws.

    ``tokens`` labels every decoding step as the model emitted it (``<eos>`` last when it was
    reached; an output cut at ``max_len`` has none), and ``attention`` has one row per entry of
    ``tokens`` and one column per source token (``<eos>`` included); ``score`` is the summed
    log-probability.

    Example:
        >>> Translation("42", ["4", "2"], ["q"], None, -0.1).text
        '42'
    """

    text: str
    tokens: list[str]
    source_tokens: list[str]
    attention: np.ndarray | None
    score: float


class Seq2SeqData(ember.Data):
    """Pairs of texts (source → target) for sequence-to-sequence models.

    Build it with :meth:`from_pairs`. ``src_vocab`` and ``tgt_vocab`` may be the same object
    (``shared_vocab=True``). ``max_src_len`` / ``max_tgt_len`` are the longest training
    sequences in tokens (``<eos>`` included); decoding stops at ``max_len`` steps, by default
    twice the longest training target plus 10, so an odd input never hangs.

    Example:
        >>> data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 5, bs=2)
        >>> data.n_out == len(data.tgt_vocab)
        True
    """

    kind = "seq2seq"

    def input_schema(self) -> dict[str, Any]:
        """One raw item for ``ember serve``'s ``/metadata``: a source text, as a string.

        Example:
            >>> Seq2SeqData.input_schema(None)["type"]
            'string'
        """
        return {"type": "string", "description": "one source text, to translate"}

    from_upload = TextData.from_upload  # a text file, read and checked as TextData does

    def predict_one(self, model: torch.nn.Module, item: Any, device: Any = None,
                    **options: Any) -> Any:
        """The translation of one source text (``learn.predict(text)``); a list or tuple of
        sources is a :class:`ember.DataError` that points to ``predict_batch``, as for
        ``TextData``.

        Example:
            >>> # learn.predict("quarante-deux", beam=5) -> '42'
            >>> # learn.predict(["un", "deux"])  # DataError: give several to predict_batch
        """
        _one_text(item)
        return super().predict_one(model, item, device, **options)

    def __init__(
        self,
        train_dl: Any,
        valid_dl: Any,
        test_dl: Any = None,
        *,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        level: str = "char",
        tgt_level: str | None = None,
        src_lang: str = "xx",
        tgt_lang: str = "xx",
        max_src_len: int = 1,
        max_tgt_len: int = 1,
    ) -> None:
        super().__init__(train_dl, valid_dl, test_dl, target_kind="sequence",
                         n_out=len(tgt_vocab), input_kind="text")
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.src_level, self.tgt_level = level, tgt_level or level
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self._split_source = _Splitter(self.src_level, src_lang)
        self._split_target = _Splitter(self.tgt_level, tgt_lang)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pairs(
        cls,
        pairs: Any,
        valid_pct: float = 0.1,
        seed: int = 0,
        *,
        valid_pairs: Any = None,
        test_pairs: Any = None,
        level: str = "char",
        tgt_level: str | None = None,
        lang: str = "xx",
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        shared_vocab: bool = False,
        min_freq: int = 1,
        max_vocab: int | None = None,
        bs: int = 64,
        bucket: bool = True,
        num_workers: int = 0,
        source_col: str | None = None,
        target_col: str | None = None,
    ) -> Seq2SeqData:
        """Tokenise, build vocabs on the training pairs only, split and batch.

        Args:
            pairs: a sequence of ``(source, target)`` strings, a dict ``{source: target}``,
                or a data frame whose first two columns (or ``source_col`` / ``target_col``)
                hold them; one column named alone takes the other of the first two as its
                partner.
            valid_pct, seed: the seeded random validation split (ignored with ``valid_pairs``).
            valid_pairs: an explicit validation set (same forms as ``pairs``).
            test_pairs: a test set for the test loader (``learn.validate("test")``,
                ``learn.get_preds("test")``), read like the validation pairs: the training
                vocabs (tokens they lack read as ``<unk>``), batches in order. Errors name a
                bad one ``test_pairs item 3``. Pairs (the forms of ``pairs``) make a labelled
                test set; sources alone make a test set without labels (a competition's),
                whose batches are ``(src,)``: ``data.test_labelled`` is False,
                ``learn.get_preds("test")`` gives row ``i`` for source ``i`` (targets
                ``None``) and ``learn.validate("test")`` refuses it. Sources alone are a list
                (or Series) of strings, or a data frame without the target column: the
                ``target_col`` named, or, with no names, a frame of one column. The first
                item decides: a string means every item is a source, a 2-tuple means every
                item is a ``(source, target)`` pair (so a list of 2-tuples is always pairs);
                a mix is an error naming the item.
            level: ``"char"`` (default; no spaCy needed) or ``"word"`` (spaCy blank tokenizer).
            tgt_level: the target side's level when it differs (e.g. words → digits as
                characters: ``level="word", tgt_level="char"``).
            lang, src_lang, tgt_lang: spaCy language codes for word level (``"xx"``: generic).
            shared_vocab: one vocab for both sides (e.g. to copy tokens).
            min_freq, max_vocab: vocab size controls (rarer tokens become ``<unk>``):
                each vocab keeps tokens seen ``min_freq`` times, at most ``max_vocab`` tokens
                in all, the four special tokens included (as ``TextData``'s ``max_vocab``
                counts them, and fastai's); ``None``: no cap.
            bs: training batch size (validation uses twice this).
            bucket: batch training pairs of similar source length together.

        Example:
            >>> data = Seq2SeqData.from_pairs([("deux", "2"), ("trois", "3")] * 5, bs=4)
            >>> len(data.train_dl.dataset), len(data.valid_dl.dataset)
            (9, 1)
            >>> data = Seq2SeqData.from_pairs([("deux", "2"), ("trois", "3")] * 5, bs=4,
            ...                               test_pairs=[("trois", "3")])
            >>> len(data.test_dl.dataset)
            1
            >>> data = Seq2SeqData.from_pairs([("deux", "2"), ("trois", "3")] * 5, bs=4,
            ...                               test_pairs=["trois", "deux", "trois"])
            >>> data.test_labelled, len(data.test_dl.dataset), len(data.one_batch("test"))
            (False, 3, 1)
        """
        src_lang, tgt_lang = src_lang or lang, tgt_lang or lang
        tgt_level = tgt_level or level
        Vocab.check_size_options(min_freq, max_vocab, len(SPECIALS))
        split_source = _Splitter(level, src_lang)
        split_target = _Splitter(tgt_level, tgt_lang, "tgt_level")
        all_pairs = _as_pairs(pairs, source_col, target_col, "pairs")
        if valid_pairs is None:
            if len(all_pairs) < 2:
                raise ember.DataError(
                    f"pairs: got {len(all_pairs)} pair; give at least 2 to split into training "
                    f"and validation, or give the validation set as valid_pairs=")
            train_index, valid_index = ember.split_indices(len(all_pairs), valid_pct, seed)
            train = [all_pairs[i] for i in train_index]
            valid = [all_pairs[i] for i in valid_index]
        else:
            train, valid = all_pairs, _as_pairs(valid_pairs, source_col, target_col,
                                                "valid_pairs")
        groups = {"train": train, "valid": valid}
        tokens = {name: ([split_source(s) for s, _ in group], [split_target(t) for _, t in group])
                  for name, group in groups.items()}
        test_tokens: tuple[list[list[str]], list[list[str]] | None] | None = None
        test_labelled = True
        if test_pairs is not None:
            if isinstance(test_pairs, Mapping):  # {source: target}: pairs, not its keys
                test_pairs = list(test_pairs.items())
            elif (not _is_frame(test_pairs) and not isinstance(test_pairs, (str, bytes))
                    and hasattr(test_pairs, "__iter__")):
                # read twice (sources alone, or pairs?), and a generator reads once
                test_pairs = list(test_pairs)
            test_sources = _as_sources(test_pairs, source_col, target_col, "test_pairs")
            if test_sources is None:
                test = _as_pairs(test_pairs, source_col, target_col, "test_pairs")
                test_tokens = ([split_source(s) for s, _ in test],
                               [split_target(t) for _, t in test])
            else:  # a test set without labels: sources alone
                test_labelled = False
                test_tokens = ([split_source(s) for s in test_sources], None)
        train_sources, train_targets = tokens["train"]
        if shared_vocab:
            src_vocab = tgt_vocab = build_vocab(train_sources + train_targets, min_freq,
                                                max_vocab)
        else:
            src_vocab = build_vocab(train_sources, min_freq, max_vocab)
            tgt_vocab = build_vocab(train_targets, min_freq, max_vocab)
        for side, vocab, sequences in (("source", src_vocab, train_sources),
                                       ("target", tgt_vocab, train_targets)):
            if len(vocab) == len(SPECIALS):  # every token would read as <unk>
                most = max(Counter(t for tokens in sequences for t in tokens).values())
                raise ember.DataError(
                    f"min_freq={min_freq} keeps no token of the {side} vocab: the most "
                    f"frequent {side} token appears {most} time(s) in the training pairs, so "
                    f"every {side} token would read as <unk>; give min_freq={most} or less")

        def dataset(sources: list[list[str]], targets: list[list[str]] | None) -> _PairDataset:
            return _PairDataset([[*_source_ids(src_vocab, s, level), EOS] for s in sources],
                                None if targets is None else
                                [[*_target_ids(tgt_vocab, t, tgt_level), EOS] for t in targets])

        train_ds, valid_ds = dataset(*tokens["train"]), dataset(*tokens["valid"])
        test_ds = dataset(*test_tokens) if test_tokens is not None else None
        sampler = None
        if bucket:
            sampler = SortishSampler([len(s) for s in train_ds.sources], bs)
        train_dl, valid_dl, test_dl = ember.make_loaders(
            train_ds, valid_ds, test_ds, bs=bs, collate_fn=collate_pairs, train_sampler=sampler,
            num_workers=num_workers)
        data = cls(train_dl, valid_dl, test_dl, src_vocab=src_vocab, tgt_vocab=tgt_vocab,
                   level=level, tgt_level=tgt_level, src_lang=src_lang, tgt_lang=tgt_lang,
                   max_src_len=max(len(s) for s in train_ds.sources),
                   max_tgt_len=max(len(t) for t in train_targets) + 1)  # <eos> included
        data.test_labelled = test_labelled
        return data

    # ------------------------------------------------------------------ inference side
    def default_max_len(self) -> int:
        """Decoding length limit when none is given: twice the longest training target + 10.

        Example:
            >>> # data.default_max_len() -> 26 when the longest training target has 8 tokens
        """
        return 2 * self.max_tgt_len + 10

    def option_limits(self) -> dict[str, int]:
        """The most ``ember serve`` lets a client ask for (see :meth:`ember.Data.option_limits`):
        ``beam`` 16 and ``max_len`` four times :meth:`default_max_len`.

        Beam search costs ``beam`` model steps per decoded token, per item; the gain of a
        wider beam is gone by about 10 (and a very wide one tends to prefer short, worse
        outputs), so 16 leaves room without letting ``beam=10000`` hold the server.
        ``max_len`` bounds the decoding steps of a model that never emits ``<eos>``; the
        default already allows twice the longest training target + 10, and four times that
        still serves sources much longer than any seen in training, while
        ``max_len=100000000`` cannot run for hours. Direct calls are not limited.

        Example:
            >>> data = Seq2SeqData.from_pairs([("ab", "1"), ("ba", "2")] * 3, bs=2)
            >>> data.default_max_len(), data.option_limits()
            (14, {'beam': 16, 'max_len': 56})
        """
        return {"beam": 16, "max_len": 4 * self.default_max_len()}

    def encode(self, items: Sequence[Any], *, max_len: int | None = None
               ) -> tuple[Tensor, ...]:
        """Source texts → a padded ``src`` batch (characters never seen become ``<unk>``, with
        a warning naming them; a source longer than any in training is warned about with the
        decoding limit, ``max_len`` or by default :meth:`default_max_len`).

        Example:
            >>> data = Seq2SeqData.from_pairs([("ab", "1"), ("ba", "2")] * 3, bs=2)
            >>> data.encode(["ab"])[0].tolist()
            [[4, 5, 2]]
        """
        sequences = []
        for position, item in enumerate(items):
            position = ember.item_number(position)  # its place among all the items given
            text = check_text(item, f"source {position} ({item!r:.60})")
            tokens = self._split_source(text)
            ids = _source_ids(self.src_vocab, tokens, self.src_level)
            # a word token's trailing space is not part of the word the user typed
            unknown = sorted({t.strip() or t for t, i in zip(tokens, ids) if i == UNK}
                             - {SPECIALS[UNK]})
            if unknown:
                warn(
                    f"source {position} ({text!r}) has tokens never seen in training: "
                    f"{unknown}; they are read as <unk>, so the prediction may be wrong")
            if len(ids) + 1 > self.max_src_len:
                warn(
                    f"source {position} ({text[:40]!r}) has {len(ids) + 1} tokens, more than any "
                    f"training source ({self.max_src_len}); decoding is capped at "
                    f"{max_len or self.default_max_len()} tokens (pass max_len= to change it)")
            sequences.append([*ids, EOS])
        if not sequences:
            raise ember.DataError("no source text given; pass a list of strings")
        return (pad_ids(sequences, PAD),)

    def detokenize(self, ids: Sequence[int]) -> str:
        """Target ids → text (stops at ``<eos>``), with its ends stripped as training targets
        are: a word token keeps its trailing space, so a last token such as ``"cent "``
        would otherwise end the text with a space no target has.

        Example:
            >>> data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 3, bs=2)
            >>> data.detokenize(data.tgt_vocab.numericalize(["2", "1"]) + [2, 5])
            '21'
        """
        return "".join(tokens_of(self.tgt_vocab, ids)).strip()

    def decode(self, outputs: Tensor, threshold: float = 0.5) -> list[Any]:
        """Logits ``N x T x V`` → strings (greedy choice per step, cut at ``<eos>``).

        Example:
            >>> # data.decode(model(src, tgt)) -> ['42', '1984']
        """
        ids = outputs.detach().argmax(dim=-1).cpu().tolist()
        return [self.detokenize(row) for row in ids]

    def decode_targets(self, targets: Tensor) -> list[Any]:
        """Targets of a batch (padding ``-100``) → strings.

        Example:
            >>> # data.decode_targets(batch[-1]) -> ['42', '7']
        """
        return [self.detokenize(row) for row in targets.detach().cpu().tolist()]

    def target_words(self, ids: Sequence[int]) -> list[str]:
        """Target ids → whitespace-separated words of the decoded text (for word BLEU).

        Example:
            >>> # data.target_words(ids) -> ['quarante', 'deux']
        """
        return self.detokenize(ids).split()

    def predict_batch(self, model: torch.nn.Module, items: Sequence[Any], device: Any = None,
                      bs: int = 64, *, beam: int = 1, max_len: int | None = None,
                      length_penalty: float = 1.0, with_attention: bool = False,
                      probs: bool = False, **options: Any) -> list[Any]:
        """Translate source texts: greedy (``beam=1``) or beam search.

        Returns strings, or :class:`Translation` objects with ``with_attention=True``.
        Decoding stops at ``<eos>`` or after ``max_len`` tokens (default
        :meth:`default_max_len`), so it always ends; translations cut at ``max_len`` (no
        ``<eos>`` reached) are named in one warning. Decoded text has no class
        probabilities: ``probs=True`` is refused (see :meth:`why_no_probabilities`).

        Example:
            >>> # learn.predict_batch(["quarante-deux", "sept"], beam=5) -> ['42', '7']
        """
        from ember_text.seq2seq.decoding import beam_search, greedy_decode

        self.check_options(options, probs)
        bs = check_batch_size(bs)
        beam = check_whole(beam, "beam", "hypotheses kept; 1 decodes greedily")
        max_len = (self.default_max_len() if max_len is None
                   else check_whole(max_len, "max_len", "tokens to decode"))
        if (isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real)
                or not math.isfinite(length_penalty)):
            raise ember.DataError(
                f"length_penalty must be a finite number (the exponent of the length that beam "
                f"search divides a score by; 1.0 by default, 0 for raw scores), got "
                f"{length_penalty!r}")
        items = list(items)
        results: list[Any] = []
        cut: list[str] = []  # the sources whose decoding reached max_len without <eos>
        with evaluating(model) as model_device:
            device = device or model_device
            for start in range(0, len(items), bs):
                chunk = items[start:start + bs]
                with ember.numbering_items_from(start):
                    (src,) = self.encode(chunk, max_len=max_len)
                src = src.to(device)
                if beam == 1:
                    decoded = greedy_decode(model, src, max_len)
                else:
                    decoded = [beam_search(model, src[i:i + 1], beam, max_len,
                                           length_penalty)[0] for i in range(len(chunk))]
                for offset, (item, (ids, attention, score)) in enumerate(zip(chunk, decoded)):
                    text = self.detokenize(ids)
                    if EOS not in ids:
                        source = check_text(item)
                        cut.append(f"source {ember.item_number(start + offset)} "
                                   f"({source[:40]!r})")
                    if not with_attention:
                        results.append(text)
                        continue
                    source = check_text(item)  # bytes decoded, as encode read them
                    source_tokens = [*self._split_source(source), SPECIALS[EOS]]
                    # one label per decoded step, as the model emitted it: <eos> only where
                    # it was emitted, and a <pad> or <bos> the model put out keeps its row
                    tokens = self.tgt_vocab.decode(ids, skip_pad=False)
                    results.append(Translation(text, tokens, source_tokens,
                                               attention[:, : len(source_tokens)], score))
        if cut:
            shown = ", ".join(cut[:5]) + (f" and {len(cut) - 5} more" if len(cut) > 5 else "")
            warn(f"{len(cut)} of {len(items)} translations reached the decoding limit, "
                 f"max_len={max_len}, without <eos> and are cut: {shown}; pass a larger "
                 f"max_len= (the default is twice the longest training target + 10), or train "
                 f"the model longer if it repeats itself")
        return results

    def why_no_probabilities(self) -> str:
        """A translation is text, not a class: ``probs=True`` is refused with this reason.

        Example:
            >>> Seq2SeqData.why_no_probabilities(None)[:40]
            'a sequence-to-sequence model predicts a '
        """
        return ("a sequence-to-sequence model predicts a decoded string per source, not "
                "classes; with_attention=True adds the attention and the log-probability score")

    def show_results(self, batch: Sequence[Any], predictions: list[Any], n: int = 9) -> Any:
        """Print ``n`` rows of source, target and prediction; returns them.

        Example:
            >>> # learn.show_results(5)
        """
        sources = self.decode_sources(batch[0])
        targets = self.decode_targets(batch[-1])
        rows = list(zip(sources, targets, predictions))[:n]
        for source, target, prediction in rows:
            mark = "✓" if target == prediction else "✗"
            print(f"{mark} {source!s:>40} → {prediction!s:<20} (target {target})")
        return rows

    def decode_sources(self, src: Tensor) -> list[str]:
        """Source ids of a batch (``N x S``, ended by ``<eos>``, padded) → texts.

        Example:
            >>> data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 3, bs=2)
            >>> data.decode_sources(data.encode(["deux", "un"])[0])
            ['deux', 'un']
        """
        return ["".join(tokens_of(self.src_vocab, row)) for row in src.detach().cpu().tolist()]

    def show_batch(self, n: int = 6, split: str = "train") -> list[tuple[str, str | None]]:
        """Print ``n`` sources of the first batch of ``split`` with their targets, and return
        them as ``(source, target)``; the target is ``None`` for a test set without labels
        (its batches hold the sources alone).

        Example:
            >>> data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 3, bs=2,
            ...                               test_pairs=["deux"])
            >>> data.show_batch(1, split="test")
            deux → None
            [('deux', None)]
        """
        batch = self.one_batch(split)
        sources = self.decode_sources(batch[0][:n])
        targets: list[str | None] = (
            list(self.decode_targets(batch[-1][:n])) if len(batch) > 1 else [None] * len(sources))
        rows = list(zip(sources, targets))
        for source, target in rows:
            print(f"{source} → {target}")
        return rows

    # ------------------------------------------------------------------ export
    def state(self) -> dict[str, Any]:
        """JSON-able state: vocabs, tokenisation level and languages, training lengths.

        Example:
            >>> # json.dumps(data.state())
        """
        state = super().state()
        state.update({
            "src_vocab": self.src_vocab.itos,
            "tgt_vocab": self.tgt_vocab.itos,
            "level": self.src_level,
            "tgt_level": self.tgt_level,
            "src_lang": self.src_lang,
            "tgt_lang": self.tgt_lang,
            "max_src_len": self.max_src_len,
            "max_tgt_len": self.max_tgt_len,
        })
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Seq2SeqData:
        """Rebuild an inference-only Seq2SeqData (no loaders) from :meth:`state`.

        Example:
            >>> data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 3, bs=2)
            >>> Seq2SeqData.from_state(data.state()).encode(["un"])[0].tolist()
            [[4, 5, 2]]
        """
        src_vocab = seq2seq_vocab(state["src_vocab"])
        tgt_vocab = (src_vocab if state["tgt_vocab"] == state["src_vocab"]
                     else seq2seq_vocab(state["tgt_vocab"]))
        return cls(None, None, src_vocab=src_vocab, tgt_vocab=tgt_vocab,
                   level=state.get("level", "char"), tgt_level=state.get("tgt_level"),
                   src_lang=state.get("src_lang", "xx"),
                   tgt_lang=state.get("tgt_lang", "xx"), max_src_len=state["max_src_len"],
                   max_tgt_len=state["max_tgt_len"])


def _is_frame(items: Any) -> bool:
    return hasattr(items, "columns") and hasattr(items, "iloc")  # a pandas data frame


def _as_sources(items: Any, source_col: str | None, target_col: str | None, what: str
                ) -> list[str] | None:
    """The checked source texts of a test set without labels, or ``None`` when ``items``
    holds pairs: a data frame without the target column (``target_col``, or with no names
    a frame of one column), or a sequence whose first item is a string."""
    if _is_frame(items):
        columns = list(items.columns)
        if target_col in columns or (target_col is None and len(columns) >= 2):
            return None
        source_col = source_col if source_col is not None else columns[0] if columns else None
        if source_col not in columns:
            raise ember.DataError(f"{what}: no column {source_col!r}; columns are {columns}")
        items = items[source_col].tolist()
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        return None  # _as_pairs refuses it
    items = list(items)
    if not items or not isinstance(items[0], (str, bytes)):
        return None
    sources = []
    for index, item in enumerate(items):
        if not isinstance(item, (str, bytes)) and hasattr(item, "__len__") and len(item) == 2:
            raise ember.DataError(
                f"{what} item {index} ({item!r:.60}) is a (source, target) pair, but item 0 is "
                f"a source alone; give every item as a source string (a test set without "
                f"labels) or every item as a pair")
        sources.append(check_text(item, f"{what} item {index} ({item!r:.60}): the source"))
    return sources


def _check_frame_cells(what: str, index: int, pair: Any, columns: tuple[Any, Any]) -> None:
    """A DataError for a data frame's cell that holds a value other than text (a number, as
    ``read_csv`` reads a column of digits), naming the row, the column and the fix."""
    for side, value, column in zip(("source", "target"), pair, columns):
        if isinstance(value, (str, bytes)) or is_missing(value):
            continue  # text, or a missing cell check_text refuses by itself
        raise ember.DataError(
            f"{what} item {index} {tuple(pair)!r:.60}: the {side} (column {column!r}) is a "
            f"{type(value).__name__}, {value!r:.40}, not text; convert the column to text "
            f"first, e.g. frame[{column!r}] = frame[{column!r}].astype(str) (read_csv(..., "
            f"dtype=str) keeps leading zeros), or name the text columns with source_col= and "
            f"target_col="
            + (f"; for a test set without labels give its sources alone, e.g. "
               f"test_pairs=frame[{columns[0] if side == 'target' else columns[1]!r}]"
               if what == "test_pairs" else ""))


def _as_pairs(pairs: Any, source_col: str | None, target_col: str | None, what: str
              ) -> list[tuple[str, str]]:
    """Check and normalise ``pairs`` (sequence of 2-tuples or a data frame)."""
    frame_columns: tuple[Any, Any] | None = None  # a data frame's (source, target) columns
    if isinstance(pairs, Mapping):  # {source: target}, e.g. a glossary
        pairs = list(pairs.items())
    if _is_frame(pairs):
        columns = list(pairs.columns)
        if len(columns) < 2 and (source_col is None or target_col is None):
            raise ember.DataError(f"{what}: the data frame needs two columns (source, target), "
                                  f"it has {columns}")
        for name in (source_col, target_col):
            if name is not None and name not in columns:
                raise ember.DataError(f"{what}: no column {name!r}; columns are {columns}")
        # a column left unnamed is the other of the first two (not the named one again)
        if source_col is None:
            source_col = next(c for c in columns[:2] if c != target_col)
        if target_col is None:
            target_col = next(c for c in columns[:2] if c != source_col)
        if source_col == target_col:
            raise ember.DataError(f"{what}: source_col and target_col are both {source_col!r}; "
                                  f"name two different columns")
        pairs = list(zip(pairs[source_col].tolist(), pairs[target_col].tolist()))
        frame_columns = (source_col, target_col)
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
        raise ember.DataError(f"{what} must be a list of (source, target) strings, a dict "
                              f"{{source: target}} or a data frame, got {type(pairs).__name__}")
    out: list[tuple[str, str]] = []
    for index, pair in enumerate(pairs):
        if what == "test_pairs" and index > 0 and isinstance(pair, (str, bytes)):
            raise ember.DataError(
                f"{what} item {index} ({pair!r:.60}) is a source alone, but item 0 is a "
                f"(source, target) pair; give every item as a pair or every item as a source "
                f"string (a test set without labels)")
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise ember.DataError(
                f"{what} item {index} ({pair!r}) is not a (source, target) pair; give exactly "
                f"two strings per item")
        source, target = pair
        if frame_columns is not None:
            _check_frame_cells(what, index, pair, frame_columns)
        out.append((check_text(source, f"{what} item {index} {pair!r:.60}: the source"),
                    check_text(target, f"{what} item {index} {pair!r:.60}: the target")))
    if not out and what == "pairs":
        raise ember.DataError(f"{what}: got no pairs; give at least one (source, target) pair "
                              f"to train on")
    return out
