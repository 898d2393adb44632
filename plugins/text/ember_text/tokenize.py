"""Text → tokens → ids and back: a blank spaCy tokenizer, ULMFiT rule tokens, and a vocab.

The :class:`Tokenizer` splits text with the rule-based tokenizer of ``spacy.blank(lang)`` (no
trained pipeline, nothing to download) and adds *rule tokens* so that lowercasing loses nothing
a model could use:

=========  ==========================================================================
token      meaning
=========  ==========================================================================
``xxunk``  a word not in the vocab (id 0)
``xxpad``  padding (id 1)
``xxbos``  beginning of a text
``xxeos``  end of a text (used by sequence models)
``xxfld``  a field separator (several text columns joined)
``xxrep``  ``xxrep 4 !`` — the next character was repeated 4 times (``!!!!``)
``xxwrep`` ``xxwrep 3 very`` — the next word was repeated 3 times
``xxup``   the next word was written in capitals (``xxup great`` ← ``GREAT``)
``xxmaj``  the next word started with a capital (``xxmaj paris`` ← ``Paris``)
=========  ==========================================================================

A word of the text that reads as a rule token (a review quoting ``xxbos``, a shouted ``XXMAJ``)
is text, never a rule: it gets one more ``xx`` in front (``xxbos`` → ``xxxxbos``, and a typed
``xxxxbos`` → ``xxxxxxbos``), so no text takes a rule token's id, and detokenising removes it.

:meth:`Tokenizer.detokenize` undoes the rules (case, repetitions) and joins the words back into
readable text. :meth:`Tokenizer.tokenize_many` tokenises a large corpus over several processes
and can cache the result on disk (keyed by the texts and the tokenizer's settings).

:class:`Vocab` maps tokens to ids: the special tokens first (``xxunk`` = 0, ``xxpad`` = 1; the
sequence-to-sequence data uses the same class with its own four), then tokens by decreasing
frequency (ties alphabetical, so the order is stable across runs and machines), filtered by
``min_freq`` and capped at ``max_size``; it saves to and loads from JSON.

Example:
    >>> tokenizer = Tokenizer()
    >>> tokens = tokenizer("The movie was GREAT!!!!")
    >>> tokens
    ['xxbos', 'xxmaj', 'the', 'movie', 'was', 'xxup', 'great', 'xxrep', '4', '!']
    >>> vocab = Vocab.build([tokens], min_freq=1)
    >>> ids = vocab.numericalize(tokens)
    >>> tokenizer.detokenize(vocab.decode(ids))
    'The movie was GREAT!!!!'
"""

from __future__ import annotations

import gzip
import hashlib
import html
import itertools
import json
import multiprocessing
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ember import DataError
from ember.utils import check_whole, is_missing, is_whole, warn

__all__ = [
    "BOS",
    "EOS",
    "FLD",
    "MAJ",
    "PAD",
    "REP",
    "SPECIAL_TOKENS",
    "UNK",
    "UP",
    "WREP",
    "Tokenizer",
    "Vocab",
    "blank_tokenizer",
    "check_text",
    "check_uploaded_text",
    "is_missing",
]

UNK, PAD, BOS, EOS, FLD = "xxunk", "xxpad", "xxbos", "xxeos", "xxfld"
REP, WREP, UP, MAJ = "xxrep", "xxwrep", "xxup", "xxmaj"
#: the most repetitions ``detokenize`` writes for one ``xxrep``/``xxwrep`` (longer runs in
#: tokenised text are rare; a generated count can be any number token in the vocab)
MAX_REPEAT = 1000
#: The rule tokens, in the order they take the first ids of every vocab (``xxunk`` = 0,
#: ``xxpad`` = 1).
SPECIAL_TOKENS = (UNK, PAD, BOS, EOS, FLD, REP, WREP, UP, MAJ)

#: Bumped whenever the rules change, so that cached tokenisations are never reused wrongly.
#: 3: a word of the text that reads as a rule token is escaped (``xxbos`` -> ``xxxxbos``).
#: 4: accents are composed (Unicode NFC) before tokenising.
RULES_VERSION = 4

_CHAR_REPEAT = re.compile(r"(\S)(\1{3,})")
#: a rule token's text with one or more ``xx`` before its name: ``xxbos``, or ``xxxxbos`` (a
#: typed ``xxbos``, escaped), matched in lowercase
_RULE_TEXT = re.compile(r"(?:xx)+(?:unk|pad|bos|eos|fld|rep|wrep|up|maj)")
_WORD_REPEAT = re.compile(r"(?<!\S)(\w+)((?:\s+\1\b){2,})")
#: U+FEFF at the start of a text: a byte-order mark, not content (:func:`check_text` drops it)
_BYTE_ORDER_MARK = "\ufeff"
_WHITESPACE = re.compile(r"\s+")
_HTML_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
# detokenisation: no space before closing punctuation and contractions (with ' or U+2019,
# the typographic apostrophe), none after opening brackets
_NO_SPACE_BEFORE = re.compile(r" (?=[.,!?;:%)\]}»]|n['\u2019]t\b|['\u2019](?:s|re|ve|ll|d|m)\b)")
_NO_SPACE_AFTER = re.compile(r"(?<=[(\[{«$]) ")


def _escape_rule_text(words: list[str]) -> list[str]:
    """spaCy's tokens of a text, with each one that reads as a rule token (``xxbos``,
    ``XXMAJ``, and ``xxxxbos``, which the escape itself writes) given one more ``xx`` in front
    (its first two characters, so its case rules still apply). A text can then never produce a
    rule token, and :func:`_unescape_rule_text` gives the word back."""
    return [word[:2] + word if word[:2].lower() == "xx" and _RULE_TEXT.fullmatch(word.lower())
            else word for word in words]


def _unescape_rule_text(token: str) -> str:
    """The word a text had for ``token``: an escaped rule-token text loses one ``xx``."""
    if token[:4].lower() == "xxxx" and _RULE_TEXT.fullmatch(token.lower()):
        return token[2:]
    return token


def _cased_word(tokens: Sequence[str], index: int) -> tuple[str, int]:
    """The word at ``tokens[index]`` with its case token (``xxup``/``xxmaj``) undone, and the
    index after it. A case token with no word after it (at the end, or before another rule
    token, as a language model may generate) has nothing to apply to: it gives ``""``."""
    token = tokens[index]
    if token in (UP, MAJ):
        if index + 1 >= len(tokens) or tokens[index + 1] in SPECIAL_TOKENS:
            return "", index + 1
        following = _unescape_rule_text(tokens[index + 1])
        word = following.upper() if token == UP else following[:1].upper() + following[1:]
        return word, index + 2
    return _unescape_rule_text(token), index + 1


def _replace_char_repeat(match: re.Match[str]) -> str:
    character, rest = match.groups()
    return f" {REP} {len(rest) + 1} {character} "


def _replace_word_repeat(match: re.Match[str]) -> str:
    word, rest = match.groups()
    return f" {WREP} {len(rest.split()) + 1} {word} "


def check_text(text: Any, name: str = "text", uploaded: bool = False) -> str:
    """Return ``text`` as a non-empty ``str``, or raise a :class:`ember.DataError` that
    names the item: ``None``/NaN, empty strings and bytes that are not UTF-8 are refused.
    A leading byte-order mark (files saved as "UTF-8 with BOM", as Windows editors do) is
    dropped: it is not text, and left in place it would glue itself to the first word.
    ``uploaded``: the item is a file sent to ``ember serve``, and the advice is for its sender.

    Example:
        >>> check_text(b"caf\\xc3\\xa9")
        'café'
        >>> check_text(b"\\xef\\xbb\\xbfHello")
        'Hello'
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{name} is not valid UTF-8 text (byte {error.start}: "
                f"{bytes(text)[error.start:error.start + 4]!r}); "
                + ("save it as UTF-8 and send it again" if uploaded else
                   "decode it with the right encoding first, e.g. data.decode('latin-1')")
            ) from None
    if is_missing(text):
        raise DataError(f"{name} is missing (None/NaN); drop that row or fill it with text")
    if not isinstance(text, str):
        raise DataError(f"{name} must be a string, got {type(text).__name__}: {text!r:.60}")
    text = text.removeprefix(_BYTE_ORDER_MARK)
    if not text.strip():
        raise DataError(f"{name} is empty; " + ("send a file with some text, or leave it out"
                                                if uploaded else
                                                "drop that row or give it some text"))
    return text


def check_uploaded_text(content: bytes, name: str) -> str:
    """The text of a file uploaded to ``ember serve``'s ``/predict/files``, or a
    :class:`ember.DataError` that names the upload (``name``, e.g. ``"file 'review.txt'
    (files[1])"``) and tells its sender what to do: a file that is not UTF-8 or holds no text
    is refused. A leading byte-order mark is dropped, as :func:`check_text` drops it.

    Example:
        >>> check_uploaded_text(b"caf\\xc3\\xa9", "file 'a.txt' (files[0])")
        'café'
    """
    return check_text(content, name, uploaded=True)


def _composed(text: str) -> str:
    """``text`` with its accents composed (Unicode NFC): ``"e"`` + a combining acute accent,
    as macOS file names and some keyboards write it, is the ``"é"`` of most text, so a word
    reads as one token whichever form it came in (ASCII text, the common case, is passed
    through untouched)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)



def blank_tokenizer(lang: str, argument: str = "") -> Any:
    """The rule-based tokenizer of ``spacy.blank(lang)`` (no trained pipeline needed).

    A :class:`DataError` names a language spaCy lacks, and one spaCy has whose tokenizer needs
    a package that is not installed (Japanese: SudachiPy, Thai: PyThaiNLP, Korean: mecab-ko,
    Vietnamese: pyvi) with spaCy's own install hint, rather than calling that language
    missing. ``argument`` names where the caller takes the code (``" as lang="``), for the
    advice.

    Example:
        >>> [token.text for token in blank_tokenizer("en")("don't")]
        ['do', "n't"]
    """
    import spacy

    try:
        language = spacy.util.get_lang_class(lang)
    except (ImportError, KeyError, ValueError) as error:
        raise DataError(
            f"spaCy has no language {lang!r} ({error}); give a spaCy language code such as "
            f"'en', 'fr', 'de' or 'xx' (multilingual){argument}") from None
    try:
        return spacy.blank(lang).tokenizer
    except (ImportError, KeyError, ValueError) as error:
        raise DataError(
            f"spaCy's {language.__name__} tokenizer ({lang!r}) needs a package that is not "
            f"installed ({str(error).strip()}); install it, or give 'xx' (multilingual rules, "
            f"no extra package){argument}") from None


class Tokenizer:
    """Split text into lowercase tokens with rule tokens, using a blank spaCy tokenizer.

    Args:
        lang: a spaCy language code (``"en"``, ``"fr"``, ``"de"``…); only its rule-based
            tokenizer is used, so no model download is needed.
        rules: apply the ULMFiT rules (case and repetition tokens, lowercasing). With
            ``False`` the spaCy tokens are kept as they are.
        bos: start every text with ``xxbos``.
        eos: end every text with ``xxeos``.
        max_chars: cut each text to this many characters before tokenising (``None``: no
            limit). Keeps a pathological document (say 1 MB of one review) from stalling a
            batch; the cut is applied the same way in training and at inference.

    The tokenizer is a small, picklable description (the spaCy object is built lazily in each
    process), and :meth:`state` / :meth:`from_state` carry it into exported models.

    A word that reads as a rule token is escaped, not taken for one (``xxbos`` in the text
    gives ``xxxxbos``), in both modes; :meth:`detokenize` gives the word back.

    Example:
        >>> Tokenizer()("I loved it. Loved it!")
        ['xxbos', 'xxmaj', 'i', 'loved', 'it', '.', 'xxmaj', 'loved', 'it', '!']
        >>> Tokenizer(bos=False)("not xxbos")
        ['not', 'xxxxbos']
    """

    #: Most whitespace-separated pieces remembered (with their tokens) per process.
    memo_size = 500_000

    def __init__(self, lang: str = "en", *, rules: bool = True, bos: bool = True,
                 eos: bool = False, max_chars: int | None = None) -> None:
        self.lang, self.rules, self.bos, self.eos = lang, rules, bos, eos
        self.max_chars = max_chars
        self._spacy: Any = None
        self._memo: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ spaCy
    @property
    def spacy_tokenizer(self) -> Any:
        """The blank spaCy tokenizer for :attr:`lang` (built on first use).

        Example:
            >>> [t.text for t in Tokenizer().spacy_tokenizer("don't")]
            ['do', "n't"]
        """
        if self._spacy is None:
            self._spacy = blank_tokenizer(self.lang)
        return self._spacy

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_spacy": None, "_memo": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_memo": {}, **state})

    # ------------------------------------------------------------------ rules
    def pre_rules(self, text: str) -> str:
        """The rules applied to the raw text before spaCy splits it: HTML entities and line
        breaks, repeated characters (``xxrep``) and words (``xxwrep``); every run of
        whitespace (newlines, tabs, non-breaking spaces) becomes one space.

        Example:
            >>> Tokenizer().pre_rules("so so so good!!!!")
            ' xxwrep 3 so good xxrep 4 ! '
        """
        text = html.unescape(_HTML_BREAK.sub("\n", text))
        text = _CHAR_REPEAT.sub(_replace_char_repeat, text)
        text = _WORD_REPEAT.sub(_replace_word_repeat, text)
        return _WHITESPACE.sub(" ", text)

    def post_rules(self, tokens: list[str]) -> list[str]:
        """The rules applied to spaCy's tokens: ``xxup`` before words in capitals, ``xxmaj``
        before capitalised words, then lowercase everything.

        Example:
            >>> Tokenizer().post_rules(["The", "BEST", "one"])
            ['xxmaj', 'the', 'xxup', 'best', 'one']
        """
        result: list[str] = []
        append = result.append
        for token in tokens:
            lower = token.lower()
            if lower == token:  # most tokens, and every rule token
                append(token)
            elif len(token) > 1 and token.isupper():
                append(UP)
                append(lower)
            elif token[0].isupper():
                append(MAJ)
                append(lower)
            else:
                append(lower)
        return result

    # ------------------------------------------------------------------ tokenise
    def check_text(self, text: Any, name: str = "text") -> str:
        """:func:`check_text`, for the texts this tokenizer is given.

        Example:
            >>> Tokenizer().check_text(b"caf\\xc3\\xa9")
            'café'
        """
        return check_text(text, name)

    def _piece_tokens(self, piece: str) -> list[str]:
        """Final tokens of one whitespace-free piece of text (memoised)."""
        tokens = self._memo.get(piece)
        if tokens is None:
            if _CHAR_REPEAT.search(piece):  # repeated characters: 'xxrep n c' for each run
                tokens, start = [], 0
                for match in _CHAR_REPEAT.finditer(piece):
                    if match.start() > start:
                        tokens += self._piece_tokens(piece[start:match.start()])
                    tokens += [REP, *self._piece_tokens(str(len(match.group()))),
                               *self._piece_tokens(match.group(1))]
                    start = match.end()
                if start < len(piece):
                    tokens += self._piece_tokens(piece[start:])
            else:
                tokens = self.post_rules(_escape_rule_text(
                    [token.text for token in self.spacy_tokenizer(piece)]))
            if len(self._memo) >= self.memo_size:
                self._memo.clear()
            self._memo[piece] = tokens
        return tokens

    def _known_tokens_test(self) -> Any:
        """A function giving spaCy's tokens of a piece of text without asking spaCy, from
        spaCy's own rules, or ``None`` when spaCy must be asked. Asking spaCy costs far more
        than these few regex searches, and most pieces are one of two kinds:

        - *whole*: not a special case, and no prefix, suffix or infix pattern matches anywhere
          in it (any match, even one spaCy would ignore, sends the piece to spaCy): one token;
        - *whole + suffix* (``"handsome,"``, ``"Emma."``): not a special case, no token match,
          no prefix, a non-empty suffix match, and the rest is *whole*. spaCy's affix loop
          strips that suffix first and then treats the rest exactly as it would alone, so the
          tokens are the rest and the suffix (``"Mr."``, a special case, is asked).

        A language whose blank pipeline segments text its own way (``"zh"``: characters) has
        none of these rules, and every piece is asked.
        """
        spacy_tokenizer = self.spacy_tokenizer
        if not hasattr(spacy_tokenizer, "rules"):  # not the rule-based tokenizer: ask it
            return lambda piece: None
        special = frozenset(spacy_tokenizer.rules or ())
        prefix_search = spacy_tokenizer.prefix_search
        suffix_search = spacy_tokenizer.suffix_search
        infix = spacy_tokenizer.infix_finditer
        token_match = spacy_tokenizer.token_match

        def no_infix(piece: str) -> bool:
            return infix is None or next(iter(infix(piece)), None) is None

        def known(piece: str) -> list[str] | None:
            if piece in special or (prefix_search is not None and prefix_search(piece)):
                return None
            suffix = suffix_search(piece) if suffix_search is not None else None
            if suffix is None:
                return [piece] if no_infix(piece) else None
            split = len(piece) - (suffix.end() - suffix.start())
            if not 0 < split < len(piece) or (token_match and token_match(piece)):
                return None
            rest = piece[:split]
            if (rest in special or (prefix_search is not None and prefix_search(rest))
                    or suffix_search(rest) or not no_infix(rest)):
                return None
            return [rest, piece[split:]]

        return known

    def _fill_memo(self, pieces: Iterable[str], block: int = 4000) -> None:
        """Tokenise the pieces not yet remembered: from spaCy's rules where they say what
        spaCy would give (:meth:`_known_tokens_test`), else ``block`` pieces per spaCy call,
        joined by ``" \\n "``. spaCy splits on spaces first, so each piece gets the tokens it
        gets alone, and one ``Doc`` serves thousands of pieces; the newline between them is a
        token of its own, so spaCy's special-case matcher (``''`` from ``'`` ``'``) never
        joins the end of one piece to the start of the next."""
        memo = self._memo
        missing = [piece for piece in dict.fromkeys(pieces) if piece not in memo]
        if len(memo) + len(missing) > self.memo_size:
            memo.clear()
        known_tokens = self._known_tokens_test()
        post_rules = self.post_rules
        simple = []
        for piece in missing:
            if _CHAR_REPEAT.search(piece):
                self._piece_tokens(piece)
                continue
            known = known_tokens(piece)
            if known is None:
                simple.append(piece)
            else:  # spaCy's rules say what it would give: skip spaCy
                memo[piece] = post_rules(_escape_rule_text(known))
        for start in range(0, len(simple), block):
            chunk = simple[start:start + block]
            words: list[list[str]] = [[] for _ in chunk]
            index, end = 0, len(chunk[0])
            for token in self.spacy_tokenizer(" \n ".join(chunk)):
                if token.is_space:  # a separator
                    continue
                while token.idx >= end:  # the next piece (after the separator)
                    index += 1
                    end += 3 + len(chunk[index])
                words[index].append(token.text)
            for piece, piece_words in zip(chunk, words):
                memo[piece] = post_rules(_escape_rule_text(piece_words))

    def _rule_tokens(self, text: str, pieces: list[str]) -> list[str]:
        """The tokens of one text from the tokens of its whitespace-separated ``pieces``.

        This gives exactly the tokens of ``post_rules(spacy(pre_rules(text)))``: spaCy splits
        on spaces first and tokenises each piece on its own, a repeated character never spans
        whitespace, and the case rules look at one token at a time. So each distinct piece
        (``"said,"``, ``"Elizabeth."``…) is tokenised once per process and remembered, and
        the whole-text passes (regex scans, spaCy's ``Doc`` objects) are skipped. The one
        rule that spans pieces, a repeated word, can only apply where two pieces in a row are
        the same or a character repeat was found; only then is its regex run on the text.
        """
        tokens: list[str] = []
        extend, memo = tokens.extend, self._memo
        for piece in pieces:
            cached = memo.get(piece)
            extend(cached if cached is not None else self._piece_tokens(piece))
        if REP in tokens or any(first == second
                                for first, second in itertools.pairwise(pieces)):
            tokens = self._word_repeat_tokens(text) or tokens
        return tokens

    def _word_repeat_tokens(self, text: str) -> list[str] | None:
        """The tokens of ``text`` by :meth:`pre_rules`' repetition rules, or ``None`` when no
        word repeats. The ``xxrep``/``xxwrep`` it puts in become rule tokens directly: the
        same words typed in the text are tokenised (so escaped) like any other. A put-in
        ``xxrep`` is written as ``\\x00`` for the word rule, which never takes it for a word."""
        inserted: set[int] = set()  # where a put-in xxrep starts in `written`
        parts: list[str] = []
        start = length = 0
        for match in _CHAR_REPEAT.finditer(text):
            parts += [text[start:match.start()],
                      f" \x00 {len(match.group())} {match.group(1)} "]
            length += match.start() - start
            inserted.add(length + 1)
            length += len(parts[-1])
            start = match.end()
        parts.append(text[start:])
        written = "".join(parts)
        if not _WORD_REPEAT.search(written):
            return None
        tokens: list[str] = []

        def plain(end: int, begin: int) -> None:
            for piece in re.finditer(r"\S+", written[begin:end]):
                if begin + piece.start() in inserted:
                    tokens.append(REP)
                else:
                    tokens.extend(self._piece_tokens(piece.group()))

        position = 0
        for match in _WORD_REPEAT.finditer(written):
            plain(match.start(), position)
            tokens += [WREP, str(len(match.group(2).split()) + 1),
                       *self._piece_tokens(match.group(1))]
            position = match.end()
        plain(len(written), position)
        return tokens

    def _tokenize_checked(self, texts: Iterable[str], block: int = 4096) -> list[list[str]]:
        results: list[list[str]] = []
        texts = list(texts)
        if self.rules:
            for start in range(0, len(texts), block):
                prepared = []
                for text in texts[start:start + block]:
                    text = _composed(text)
                    if self.max_chars is not None:
                        text = text[: self.max_chars]
                    if "<" in text or "&" in text:
                        text = html.unescape(_HTML_BREAK.sub("\n", text))
                    prepared.append(text)
                split = [text.split() for text in prepared]
                self._fill_memo(piece for pieces in split for piece in pieces)
                results += [self._rule_tokens(text, pieces)
                            for text, pieces in zip(prepared, split)]
        else:
            prepared = [_composed(text)[: self.max_chars] if self.max_chars is not None
                        else _composed(text) for text in texts]
            for doc in self.spacy_tokenizer.pipe(prepared, batch_size=256):
                results.append(_escape_rule_text(["_".join(token.text.split()) for token in doc
                                                  if not token.is_space]))
        for words in results:
            if self.bos:
                words.insert(0, BOS)
            if self.eos:
                words.append(EOS)
        return results

    def _tokenize_joined(self, texts: list[str]) -> str:
        """Tokens of ``texts`` as one string (tokens joined by spaces, texts by newlines):
        what a worker process sends back, far cheaper to pickle than lists of lists."""
        return "\n".join(" ".join(words) for words in self._tokenize_checked(texts))

    def __call__(self, text: Any) -> list[str]:
        """Tokenise one text.

        Example:
            >>> Tokenizer(bos=False)("Hello World")
            ['xxmaj', 'hello', 'xxmaj', 'world']
        """
        return self._tokenize_checked([self.check_text(text)])[0]

    def tokenize_many(self, texts: Sequence[Any], n_workers: int | None = None, *,
                      cache_dir: str | Path | Literal[False] | None = None,
                      names: Sequence[str] | None = None) -> list[list[str]]:
        """Tokenise many texts, over ``n_workers`` processes, optionally cached on disk.

        Every text is checked first (an empty, missing or non-UTF-8 one raises a
        :class:`ember.DataError` naming it, by ``names[i]`` when given, else by its index).
        ``n_workers=None`` uses up to 4 processes for corpora over ~1 MB and one process
        otherwise (starting processes costs more than it saves on small inputs).
        ``cache_dir`` (or the ``EMBER_TEXT_CACHE`` environment variable) stores the result
        keyed by a hash of the texts and the tokenizer's settings; a second call with the same
        texts reads it back instead of tokenising. A path starting with ``~`` is in the home
        folder (``cache_dir="~/.cache/ember-text"``), as in a shell. ``cache_dir=False``
        never caches, whatever the variable says: the data classes tokenise what they predict
        that way (a few texts per call, each call a new file otherwise: a server would fill
        its disk).

        Example:
            >>> Tokenizer(bos=False).tokenize_many(["One.", "Two!"])
            [['xxmaj', 'one', '.'], ['xxmaj', 'two', '!']]
        """
        checked = [
            self.check_text(text, names[index] if names is not None else f"text #{index}")
            for index, text in enumerate(texts)
        ]
        if cache_dir is not False:
            cache_dir = cache_dir or os.environ.get("EMBER_TEXT_CACHE") or None
        cache_file = None
        if cache_dir:
            cache_file = (Path(cache_dir).expanduser()
                          / f"tokens-{self._cache_key(checked)}.json.gz")
            if cache_file.is_file():
                with gzip.open(cache_file, "rt", encoding="utf-8") as handle:
                    return [line.split(" ") if line else [] for line in json.load(handle)]
        if n_workers is None:
            n_chars = sum(len(text) for text in checked)
            n_workers = min(4, os.cpu_count() or 1) if n_chars > 1_000_000 else 1
        if n_workers <= 1 or len(checked) < 2:
            tokens = self._tokenize_checked(checked)
        else:
            tokens = self._tokenize_parallel(checked, n_workers)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
            with gzip.open(temporary, "wt", encoding="utf-8") as handle:
                json.dump([" ".join(words) for words in tokens], handle)
            temporary.replace(cache_file)
        return tokens

    def _tokenize_parallel(self, texts: list[str], n_workers: int) -> list[list[str]]:
        """``n_workers`` processes: this one and ``n_workers - 1`` workers, each on one
        contiguous block of about the same number of characters (a block's distinct pieces
        are tokenised once, so fewer, larger blocks are faster). With ``fork`` the workers
        inherit this tokenizer (its spaCy object and memo) and the texts, so nothing is
        pickled on the way in; tokens come back as one joined string per block."""
        sizes = np.cumsum([len(text) for text in texts])
        bounds = [0] + [int(np.searchsorted(sizes, sizes[-1] * k / n_workers))
                        for k in range(1, n_workers)] + [len(texts)]
        blocks = [(start, end) for start, end in itertools.pairwise(bounds) if end > start]
        if len(blocks) < 2:
            return self._tokenize_checked(texts)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        key = id(self)
        _SHARED[key] = (self, texts)
        try:
            with ProcessPoolExecutor(len(blocks) - 1, mp_context=context) as pool:
                if context.get_start_method() == "fork":
                    futures = [pool.submit(_tokenize_shared, key, start, end)
                               for start, end in blocks[1:]]
                else:
                    futures = [pool.submit(self._tokenize_joined, texts[start:end])
                               for start, end in blocks[1:]]
                start, end = blocks[0]
                tokens = self._tokenize_checked(texts[start:end])
                for future in futures:
                    tokens += [line.split(" ") if line else []
                               for line in future.result().split("\n")]
        finally:
            del _SHARED[key]
        return tokens

    def _cache_key(self, texts: Sequence[str]) -> str:
        digest = hashlib.sha256(json.dumps(self.state(), sort_keys=True).encode())
        digest.update(str(RULES_VERSION).encode())
        import spacy

        digest.update(spacy.__version__.encode())
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()[:32]

    # ------------------------------------------------------------------ back to text
    def detokenize(self, tokens: Sequence[str]) -> str:
        """Undo the rules and join tokens into readable text (the inverse of tokenising, up to
        spacing: spaCy does not keep it, so spaces around punctuation follow English habits).
        Rule tokens that cannot apply (a case token before another rule token or at the end,
        a repetition without its count), as a language model may generate, are dropped, and a
        repetition count above ``MAX_REPEAT`` (a number a model put after ``xxrep``) is cut to
        it, so generated text stays text-sized.

        Example:
            >>> Tokenizer().detokenize(["xxbos", "xxmaj", "it", "is", "xxup", "so", "good",
            ...                         "xxrep", "3", "!"])
            'It is SO good!!!'
        """
        words: list[str] = []
        index, n = 0, len(tokens)
        while index < n:
            token = tokens[index]
            if token in (BOS, EOS, PAD, FLD):
                index += 1
                continue
            if token in (REP, WREP):
                if not (index + 2 < n and tokens[index + 1].isdigit()):
                    index += 1  # no 'count item' after it (generated text): nothing to repeat
                    continue
                # the repeated item keeps its case tokens: 'OOOO' -> xxrep 4 xxmaj o,
                # 'GOOD GOOD GOOD' -> xxwrep 3 xxup good
                count = min(int(tokens[index + 1]), MAX_REPEAT)
                item, index = _cased_word(tokens, index + 2)
                if item and token == REP:
                    words.append(item * count)
                elif item:
                    words.extend([item] * count)
                continue
            word, index = _cased_word(tokens, index)
            if word:
                words.append(word)
        text = " ".join(words)
        text = _NO_SPACE_BEFORE.sub("", text)
        return _NO_SPACE_AFTER.sub("", text)

    # ------------------------------------------------------------------ export
    def state(self) -> dict[str, Any]:
        """JSON-able settings, for exported models and cache keys.

        Example:
            >>> Tokenizer("fr").state()["lang"]
            'fr'
        """
        return {"lang": self.lang, "rules": self.rules, "bos": self.bos, "eos": self.eos,
                "max_chars": self.max_chars, "rules_version": RULES_VERSION}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer from :meth:`state`. A state written under other rules than
        this version's (``rules_version``) cannot be replayed exactly: newer rules raise a
        :class:`ember.DataError`, older ones warn that tokens (and so predictions) may differ
        from training.

        Example:
            >>> Tokenizer.from_state(Tokenizer("de").state()).lang
            'de'
        """
        version = state.get("rules_version", RULES_VERSION)
        if version > RULES_VERSION:
            raise DataError(
                f"this tokenizer was saved by a newer ember-text (rules version {version}; "
                f"this one has {RULES_VERSION}), whose rules it cannot replay; upgrade "
                f"ember-text to load it")
        if version < RULES_VERSION:
            warn(
                f"this tokenizer was saved under rules version {version} and is replayed with "
                f"version {RULES_VERSION}; some texts tokenise differently than in training, "
                f"so predictions may differ (retrain or re-export to match)")
        return cls(state["lang"], rules=state["rules"], bos=state["bos"], eos=state["eos"],
                   max_chars=state.get("max_chars"))

    def __repr__(self) -> str:
        return (f"Tokenizer(lang={self.lang!r}, rules={self.rules}, bos={self.bos}, "
                f"eos={self.eos}, max_chars={self.max_chars})")


#: Tokenizers and texts handed to forked worker processes (inherited, never pickled).
_SHARED: dict[int, tuple[Tokenizer, list[str]]] = {}


def _tokenize_shared(key: int, start: int, end: int) -> str:
    tokenizer, texts = _SHARED[key]
    return tokenizer._tokenize_joined(texts[start:end])


class Vocab:
    """A stable token ↔ id mapping: special tokens first, then tokens by frequency.

    Args:
        itos: the tokens in id order (``itos[i]`` is the token of id ``i``), each once.
        unk: the token that stands for any token not in the vocab (ULMFiT's ``xxunk``,
            id 0 in the text plugin's vocabs; sequence-to-sequence vocabs use ``<unk>``).
        pad: the padding token (``xxpad``, id 1; ``<pad>`` in sequence-to-sequence vocabs).

    Build one from tokenised texts with :meth:`build`; save it with :meth:`save` and read it
    back with :meth:`load` (plain JSON).

    Example:
        >>> vocab = Vocab.build([["xxbos", "a", "b", "a"]], min_freq=1)
        >>> vocab.itos[len(SPECIAL_TOKENS):], vocab.numericalize(["a", "zzz"])
        (['a', 'b'], [9, 0])
    """

    def __init__(self, itos: Sequence[str], *, unk: str = UNK, pad: str = PAD) -> None:
        self.itos = list(itos)
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            repeated = [t for t, c in Counter(self.itos).items() if c > 1][:5]
            raise DataError(f"a vocab lists each token once; repeated: {repeated!r}")
        for role, token in (("unknown", unk), ("padding", pad)):
            if token not in self.stoi:
                raise DataError(f"a vocab must hold its {role} token {token!r}; it starts "
                                f"{self.itos[:4]!r}")
        self.unk, self.pad = unk, pad
        self.unk_id, self.pad_id = self.stoi[unk], self.stoi[pad]

    @staticmethod
    def check_size_options(min_freq: Any, max_size: Any,
                           n_specials: int = len(SPECIAL_TOKENS)) -> None:
        """Refuse a ``min_freq`` that is not a whole number of at least 1, or a cap on the
        vocab's size (``max_vocab``, as the data classes name it) that is not ``None`` or a
        whole number leaving room for the ``n_specials`` special tokens. The
        data classes call it before they tokenise, so a bad option is refused at once, not
        after a pass over the corpus.

        Example:
            >>> Vocab.check_size_options(2, 60000)
            >>> try:
            ...     Vocab.check_size_options(2, 3)
            ... except DataError as error:
            ...     print(str(error)[:44])
            max_vocab=3 leaves no room for the vocab's 9
        """
        check_whole(min_freq, "min_freq", "the times a token is seen to be kept")
        if max_size is not None and not is_whole(max_size, least=n_specials):
            raise DataError(f"max_vocab={max_size!r} leaves no room for the vocab's "
                            f"{n_specials} special tokens: give a whole number above "
                            f"{n_specials} (the specials count towards it), or None for no cap")

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 2,
              max_size: int | None = 60000, specials: Sequence[str] = SPECIAL_TOKENS, *,
              unk: str = UNK, pad: str = PAD) -> Vocab:
        """Count tokens and keep those seen at least ``min_freq`` times, most frequent first
        (ties in alphabetical order), at most ``max_size`` tokens including the specials
        (``None``: no cap). ``specials`` take the first ids, in their order.

        Example:
            >>> Vocab.build([["b", "a"], ["a", "b", "c"]], min_freq=2).itos[-2:]
            ['a', 'b']
            >>> Vocab.build([["b", "a", "b"]], 1, None, ["<pad>", "<unk>"], unk="<unk>",
            ...             pad="<pad>").itos
            ['<pad>', '<unk>', 'b', 'a']
        """
        cls.check_size_options(min_freq, max_size, len(specials))
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        special_set = set(specials)
        kept = sorted(((token, count) for token, count in counts.items()
                       if count >= min_freq and token not in special_set),
                      key=lambda pair: (-pair[1], pair[0]))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        return cls(list(specials) + [token for token, _ in kept], unk=unk, pad=pad)

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, index: Any) -> Any:
        return self.itos[index]

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocab) and self.itos == other.itos
                and (self.unk, self.pad) == (other.unk, other.pad))

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def numericalize(self, tokens: Sequence[str]) -> list[int]:
        """Token ids; unknown tokens get the unknown token's id (``xxunk``, 0).

        Example:
            >>> Vocab(["xxunk", "xxpad", "hi"]).numericalize(["hi", "there"])
            [2, 0]
        """
        get, unk_id = self.stoi.get, self.unk_id
        return [get(token, unk_id) for token in tokens]

    def decode(self, ids: Iterable[int], skip_pad: bool = True) -> list[str]:
        """Tokens of ``ids`` (padding dropped unless ``skip_pad=False``).

        Example:
            >>> Vocab(["xxunk", "xxpad", "hi"]).decode([2, 1, 0])
            ['hi', 'xxunk']
        """
        tokens = []
        for index in ids:
            index = int(index)
            if skip_pad and index == self.pad_id:
                continue
            if not 0 <= index < len(self.itos):
                raise DataError(f"id {index} is outside this vocab of {len(self.itos)} tokens")
            tokens.append(self.itos[index])
        return tokens

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``{"itos": [...]}``, and the unknown and padding tokens when they
        are not ``xxunk`` / ``xxpad``).

        Example:
            >>> Vocab(["xxunk", "xxpad"]).to_dict()
            {'format': 'ember-vocab', 'version': 1, 'itos': ['xxunk', 'xxpad']}
        """
        state: dict[str, Any] = {"format": "ember-vocab", "version": 1, "itos": list(self.itos)}
        if (self.unk, self.pad) != (UNK, PAD):
            state.update(unk=self.unk, pad=self.pad)
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocab:
        """Rebuild from :meth:`to_dict`.

        Example:
            >>> Vocab.from_dict({"itos": ["xxunk", "xxpad"]}).pad_id
            1
        """
        if not isinstance(state, dict) or not isinstance(state.get("itos"), list):
            raise DataError("not a vocab: expected a JSON object with an 'itos' list")
        return cls(state["itos"], unk=state.get("unk", UNK), pad=state.get("pad", PAD))

    def save(self, path: str | Path) -> Path:
        """Write the vocab as JSON.

        Example:
            >>> # vocab.save("vocab.json"); Vocab.load("vocab.json") == vocab
        """
        path = Path(path).expanduser()  # "~/vocab.json" is in the home folder, as in a shell
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocab written by :meth:`save`.

        Example:
            >>> # vocab = Vocab.load("vocab.json")
        """
        path = Path(path).expanduser()
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"cannot read a vocab from {path}: {error}") from None
        return cls.from_dict(state)

    def __repr__(self) -> str:
        specials = SPECIAL_TOKENS if self.unk == UNK else ()
        return f"Vocab({len(self)} tokens: {self.itos[len(specials):][:5]}…)"
