"""Tokenizer rules, vocab ordering and round trips, parallel tokenisation and its cache."""

from __future__ import annotations

import pytest

import ember
from ember_text.tokenize import MAX_REPEAT, PAD, SPECIAL_TOKENS, UNK, Tokenizer, Vocab


def test_rule_tokens_keep_what_lowercasing_would_lose() -> None:
    tokens = Tokenizer()("The movie was GREAT!!!! Very good.")
    assert tokens == ["xxbos", "xxmaj", "the", "movie", "was", "xxup", "great", "xxrep", "4",
                      "!", "xxmaj", "very", "good", "."]
    assert all(token == token.lower() for token in tokens)


def test_detokenize_restores_case_and_repetitions() -> None:
    tokenizer = Tokenizer()
    text = "The film is GREAT!!!! I loved it, truly."
    assert tokenizer.detokenize(tokenizer(text)) == text


def test_word_repetition() -> None:
    tokens = Tokenizer(bos=False)("it is so so so so good")
    assert tokens == ["it", "is", "xxwrep", "4", "so", "good"]
    assert Tokenizer().detokenize(tokens) == "it is so so so so good"


def test_detokenize_keeps_the_case_of_repeated_characters_and_words() -> None:
    tokenizer = Tokenizer()
    for text in ("I I I think so.", "GOOD GOOD GOOD news", "AAAA!", "Oh no no no NO NO NO"):
        assert tokenizer.detokenize(tokenizer(text)) == text
    shout = tokenizer.detokenize(tokenizer("NOOOOO way"))  # the repeat splits the word
    assert "OOOOO" in shout and "xx" not in shout


def test_detokenize_drops_rule_tokens_that_cannot_apply() -> None:
    # what an undertrained language model generates: case tokens in a row, at the end, a
    # repetition without its count
    tokenizer = Tokenizer()
    assert tokenizer.detokenize(["xxmaj", "xxmaj", "the", "end", "xxup"]) == "The end"
    assert tokenizer.detokenize(["xxup", "xxbos", "a", "xxrep", "b", "xxwrep"]) == "a b"
    assert tokenizer.detokenize(["xxrep", "3", "xxmaj"]) == ""
    # a number token after xxrep, as a model may generate, is cut to MAX_REPEAT
    assert tokenizer.detokenize(["xxrep", "99999999999", "!"]) == "!" * MAX_REPEAT
    assert len(tokenizer.detokenize(["xxwrep", "99999999999", "no"]).split()) == MAX_REPEAT


def test_typed_rule_token_words_are_text_never_rule_tokens() -> None:
    # a review that quotes "xxbos" or shouts "XXMAJ" is text: before, the words took the rule
    # tokens' ids (xxbos began a second text, xxunk read as an unknown word, xxpad as padding)
    # and detokenize dropped or applied them
    tokenizer = Tokenizer()
    texts = ["I typed xxbos here", "XXMAJ and xxunk, xxpad.", "say xxrep 3 a xxwrep 2 b",
             "(xxbos)!!!! xxbos's Xxeos xxfld xxup", "xxrep xxrep xxrep aaaa"]
    tokens = tokenizer.tokenize_many(texts, n_workers=1)
    assert tokens[0] == ["xxbos", "xxmaj", "i", "typed", "xxxxbos", "here"]
    assert tokens[2] == ["xxbos", "say", "xxxxrep", "3", "a", "xxxxwrep", "2", "b"]
    assert tokens[4] == ["xxbos", "xxwrep", "3", "xxxxrep", "xxrep", "4", "a"]
    assert tokenizer.tokenize_many(texts, n_workers=2) == tokens
    assert [Tokenizer()(text) for text in texts] == tokens
    vocab = Vocab.build(tokens, min_freq=1)
    for text, words in zip(texts, tokens):
        ids = vocab.numericalize(words)
        assert [i for i in ids if i < len(SPECIAL_TOKENS)] == \
            [vocab.stoi[t] for t in words if t in SPECIAL_TOKENS]  # only the rules' own
        assert words.count("xxbos") == 1
        assert tokenizer.detokenize(vocab.decode(ids)) == text
    plain = Tokenizer(rules=False, bos=False)
    assert plain("xxbos xxxxpad") == ["xxxxbos", "xxxxxxpad"]
    assert plain.detokenize(plain("xxbos xxxxpad")) == "xxbos xxxxpad"


def test_a_byte_order_mark_is_not_part_of_the_first_word() -> None:
    tokenizer = Tokenizer()
    # "UTF-8 with BOM", as Windows editors save: the mark used to glue onto the first word
    # ('\ufeffgreat', and no xxmaj), a token no text typed at inference ever matches
    assert tokenizer(b"\xef\xbb\xbfGreat film") == tokenizer("Great film")
    assert tokenizer("\ufeffGreat film") == ["xxbos", "xxmaj", "great", "film"]
    assert tokenizer.tokenize_many([b"\xef\xbb\xbfGreat"]) == [["xxbos", "xxmaj", "great"]]
    with pytest.raises(ember.DataError, match="empty"):
        tokenizer(b"\xef\xbb\xbf  ")


def test_bad_texts_name_the_item() -> None:
    tokenizer = Tokenizer()
    with pytest.raises(ember.DataError, match="empty"):
        tokenizer("   ")
    with pytest.raises(ember.DataError, match="missing"):
        tokenizer(None)
    with pytest.raises(ember.DataError, match="missing"):
        tokenizer(float("nan"))
    with pytest.raises(ember.DataError, match="review 7 is not valid UTF-8"):
        tokenizer.tokenize_many([b"ok", b"\xff\xfe bad"], names=["review 6", "review 7"])
    with pytest.raises(ember.DataError, match="text #1 is empty"):
        tokenizer.tokenize_many(["fine", ""])
    assert tokenizer(b"caf\xc3\xa9") == ["xxbos", "café"]


def test_max_chars_truncates_a_huge_document() -> None:
    tokens = Tokenizer(max_chars=1000)("word " * 200_000)  # 1 MB
    assert len(tokens) < 1000


def test_vocab_order_is_stable_and_filtered() -> None:
    token_lists = [["b", "a", "c"], ["a", "b", "d"], ["a"]]
    vocab = Vocab.build(token_lists, min_freq=2)
    assert vocab.itos[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert vocab.itos[len(SPECIAL_TOKENS):] == ["a", "b"]
    assert vocab.stoi[UNK] == 0 and vocab.pad_id == vocab.stoi[PAD] == 1
    assert Vocab.build(list(reversed(token_lists)), min_freq=2) == vocab
    capped = Vocab.build(token_lists, min_freq=1, max_size=len(SPECIAL_TOKENS) + 1)
    assert capped.itos[-1] == "a" and len(capped) == len(SPECIAL_TOKENS) + 1


def test_numericalize_decode_and_json_round_trip(tmp_path) -> None:
    tokenizer = Tokenizer()
    texts = ["A good film.", "A bad film!", "Not GOOD at all"]
    token_lists = tokenizer.tokenize_many(texts)
    vocab = Vocab.build(token_lists, min_freq=1)
    ids = vocab.numericalize(token_lists[0])
    assert tokenizer.detokenize(vocab.decode(ids)) == "A good film."
    assert vocab.numericalize(["never-seen"]) == [0]
    loaded = Vocab.load(vocab.save(tmp_path / "vocab.json"))
    assert loaded == vocab and loaded.numericalize(token_lists[2]) == vocab.numericalize(
        token_lists[2])
    with pytest.raises(ember.DataError, match="cannot read a vocab"):
        Vocab.load(tmp_path / "missing.json")


def test_parallel_matches_serial_and_cache_is_used(tmp_path) -> None:
    tokenizer = Tokenizer()
    texts = [f"Text number {i}: it's REALLY fine!!!!" for i in range(300)]
    serial = tokenizer.tokenize_many(texts, n_workers=1)
    parallel = Tokenizer().tokenize_many(texts, n_workers=2, cache_dir=tmp_path)
    assert parallel == serial
    cached = list(tmp_path.glob("tokens-*.json.gz"))
    assert len(cached) == 1
    assert tokenizer.tokenize_many(texts, cache_dir=tmp_path) == serial
    assert Tokenizer(bos=False).tokenize_many(texts, cache_dir=tmp_path) != serial


def test_cache_dir_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch) -> None:
    # the README's cache_dir="~/.cache/ember-text" made a folder named "~" in the working
    # directory instead of using the home folder (export, save and load expand "~" too)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    texts = ["A fine film.", "Dull!"]
    tokens = Tokenizer().tokenize_many(texts, cache_dir="~/.cache/ember-text")
    assert len(list((home / ".cache" / "ember-text").glob("tokens-*.json.gz"))) == 1
    assert not (work / "~").exists()
    monkeypatch.setenv("EMBER_TEXT_CACHE", "~/env-cache")
    assert Tokenizer().tokenize_many(texts) == tokens
    assert len(list((home / "env-cache").glob("tokens-*.json.gz"))) == 1
    assert not (work / "~").exists()


def test_state_round_trip() -> None:
    tokenizer = Tokenizer("fr", eos=True, max_chars=50)
    rebuilt = Tokenizer.from_state(tokenizer.state())
    assert rebuilt.state() == tokenizer.state()
    assert rebuilt("Bonjour à tous") == tokenizer("Bonjour à tous")
    with pytest.raises(ember.DataError, match="spaCy has no language"):
        Tokenizer("zz-nope")("hello")


def test_a_model_tokenised_under_other_rules_is_not_replayed_silently(tmp_path) -> None:
    import warnings

    from ember_text.data import TextData
    from ember_text.tokenize import RULES_VERSION

    state = Tokenizer().state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Tokenizer.from_state(state).state() == state  # same rules: silent
    older = {**state, "rules_version": RULES_VERSION - 1}
    with pytest.warns(ember.EmberWarning, match=f"rules version {RULES_VERSION - 1}"):
        Tokenizer.from_state(older)
    newer = {**state, "rules_version": RULES_VERSION + 1}
    with pytest.raises(ember.DataError, match="newer ember-text"):
        Tokenizer.from_state(newer)
    data = TextData.from_texts(["good", "bad"] * 10, ["p", "n"] * 10, min_freq=1)
    with pytest.raises(ember.DataError, match="newer ember-text"):  # an exported model's state
        TextData.from_state({**data.state(), "tokenizer": newer})


TRICKY = [
    "so so so good!!!!", "4444 4 4", "aaaa a a", "no no no.", "ha ha ha ha!", "the the the",
    "&amp;lt;br&gt; x", "a<br/>b  c\u00a0d\u2003e\tf\ng", "The BEST one EVER!!!",
    "  lead and trail  ", "Hmm.... really?? REALLY???", "oooooh my my my",
    "don't can't U.S.A. e-mail http://x.com/a?b=c :) :-( $8 (yes) \"quoted\" -- end",
    "Mr. Darcy's ----regiment D---- it", "\x1c a \x1f b \x85 c", "SOOOOO tired", "iPhone",
    # a word and one suffix (the fast path) next to special cases and emoticons that are not
    "Mr. Mrs. Dr. St. A. l. U.S. e.g., etc., a.m.; p.m.! Emma. Emma, EMMA. can't, cannot.",
    "word:) word:-( x:) :), (:, it's. you're! 5km. 10$, $10. 3.5. 1,000. ... yes... no?! ok?)",
    "end.\" \"start 'quote' [note] {set}, <tag>, ¿qué? ¡sí! naïve, café. Zürich; 5%, 50%.",
]


def reference_tokens(tokenizer: Tokenizer, text: str) -> list[str]:
    """The rules' definition: pre-rules on the text, spaCy on all of it, post-rules."""
    words = [token.text for token in tokenizer.spacy_tokenizer(tokenizer.pre_rules(text))
             if not token.is_space]
    return ["xxbos", *tokenizer.post_rules(words)]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_piecewise_tokenisation_equals_whole_text_rules(lang) -> None:
    """The fast path (spaCy once per distinct whitespace-separated piece, remembered) gives
    exactly the tokens of the rules applied to the whole text, serially and over processes."""
    from ember_text.datasets import load_rotten_tomatoes

    texts = TRICKY + load_rotten_tomatoes()[0]
    reference = Tokenizer(lang)
    expected = [reference_tokens(reference, text) for text in texts]
    assert Tokenizer(lang).tokenize_many(texts, n_workers=1) == expected
    assert Tokenizer(lang).tokenize_many(texts, n_workers=2) == expected
    tokenizer = Tokenizer(lang)
    assert [tokenizer(text) for text in TRICKY] == expected[: len(TRICKY)]


def test_rules_off_keeps_spacy_tokens() -> None:
    tokens = Tokenizer(rules=False, bos=False).tokenize_many(["The BEST!!!!  one", "Yes."])
    assert tokens == [["The", "BEST", "!", "!", "!", "!", "one"], ["Yes", "."]]


def test_pieces_tokenised_together_do_not_join() -> None:
    """Pieces sent to spaCy in one call stay apart: spaCy's special-case matcher would turn
    the ``'`` ending one piece and the ``'`` starting the next into ``''``."""
    texts = ["(a'", "''b", "(with'", "''independent film''"]
    reference = Tokenizer()
    assert Tokenizer().tokenize_many(texts, n_workers=1) == [
        reference_tokens(reference, text) for text in texts]


@pytest.mark.parametrize("rules", [True, False])
def test_a_decomposed_accent_is_the_composed_word(rules) -> None:
    # "e" + U+0301 (macOS file names, some keyboards) was another token than the "é" of
    # training, so a classifier read a known word as unknown
    tokenizer = Tokenizer(rules=rules, bos=False)
    composed, decomposed = "Un film très réussi", "Un film tre\u0300s re\u0301ussi"
    assert composed != decomposed
    assert tokenizer(decomposed) == tokenizer(composed)
    assert tokenizer.tokenize_many([decomposed, composed]) == [tokenizer(composed)] * 2
    vocab = Vocab.build([tokenizer(composed)], min_freq=1)
    assert UNK not in vocab.numericalize(tokenizer(decomposed)) or UNK not in vocab.itos


def test_a_language_with_its_own_segmenter_tokenises() -> None:
    # spacy.blank("zh") splits characters with a segmenter of its own, which has none of the
    # rule-based tokenizer's prefix/suffix/special-case rules: Tokenizer("zh") raised an
    # AttributeError ('ChineseTokenizer' object has no attribute 'rules') on any text
    tokenizer = Tokenizer("zh")
    texts = ["我爱北京 天安门!", "Hello 世界", "我爱北京 天安门!"]
    expected = [reference_tokens(tokenizer, text) for text in texts]
    assert expected[0] == ["xxbos", "我", "爱", "北", "京", "天", "安", "门", "!"]
    assert tokenizer.tokenize_many(texts, n_workers=1) == expected
    assert Tokenizer("zh").tokenize_many(texts, n_workers=2) == expected
    assert tokenizer("好!!!!") == ["xxbos", "好", "xxrep", "4", "!"]  # the rules still apply


def test_detokenize_joins_contractions_written_with_a_typographic_apostrophe() -> None:
    # a sixth of the bundled reviews write "doesn\u2019t"; spaCy splits it as "doesn't", but
    # show_batch, show_results and generated text read "does n\u2019t", "it \u2019s"
    tokenizer = Tokenizer()
    text = "He doesn't know it's fine, we're sure they've I'm you'll he'd. Can't!"
    for written in (text, text.replace("'", "\u2019")):
        assert tokenizer.detokenize(tokenizer(written)) == written


def test_a_language_whose_tokenizer_needs_a_package_says_to_install_it() -> None:
    # spaCy has Thai; its tokenizer needs PyThaiNLP: "spaCy has no language 'th'" was wrong
    import importlib.util

    if importlib.util.find_spec("pythainlp") is not None:
        pytest.skip("PyThaiNLP is installed: spaCy's Thai tokenizer works")
    with pytest.raises(ember.DataError, match=r"^spaCy's Thai tokenizer \('th'\) needs a "
                                              r"package that is not installed \(.*PyThaiNLP"):
        Tokenizer("th")("hello")
