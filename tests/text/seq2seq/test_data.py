"""Seq2SeqData: tokenising, vocabs, bucketing, clear errors, export state."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import ember
from ember_text.data import SortishSampler
from ember_text.seq2seq import Seq2SeqData, load_sample
from ember_text.seq2seq.data import EOS, IGNORE_INDEX, PAD, UNK

PAIRS = load_sample("fr_numbers")[:300]


def test_char_level_default_separate_vocabs_and_batch_layout() -> None:
    data = Seq2SeqData.from_pairs(PAIRS, bs=16)
    assert data.src_level == "char" and data.kind == "seq2seq"
    assert data.target_kind == "sequence" and data.n_out == len(data.tgt_vocab)
    assert set(data.tgt_vocab.itos[4:]) == set("0123456789")  # digits only on the target side
    assert "q" in data.src_vocab.stoi and "q" not in data.tgt_vocab.stoi
    src, tgt, target = data.one_batch()
    assert (src[:, -1] == PAD).any() or (src != PAD).all()
    # target is tgt with padding turned into the ignore index; every row ends with <eos>
    assert torch.equal(target, tgt.masked_fill(tgt == PAD, IGNORE_INDEX))
    for row in tgt.tolist():
        assert 2 in row
    assert data.decode_targets(target)[0] in {t for _, t in PAIRS}


def test_shared_vocab_and_data_frame_input() -> None:
    frame = pd.DataFrame({"words": [s for s, _ in PAIRS], "digits": [t for _, t in PAIRS]})
    data = Seq2SeqData.from_pairs(frame, shared_vocab=True, bs=16)
    assert data.src_vocab is data.tgt_vocab and "7" in data.src_vocab.stoi
    named = Seq2SeqData.from_pairs(frame.assign(other=1), source_col="words",
                                   target_col="digits", bs=16)
    assert len(named.train_dl.dataset) + len(named.valid_dl.dataset) == len(PAIRS)


def test_word_level_round_trips_text_exactly() -> None:
    pairs = load_sample("en_fr_numbers")[:300]
    data = Seq2SeqData.from_pairs(pairs, level="word", bs=16)
    assert "vingt" in data.tgt_vocab.stoi and "-" in data.tgt_vocab.stoi
    texts = [data.detokenize(ids) for ids in data.train_dl.dataset.targets]
    assert len(texts) == 270 and set(texts) <= {t for _, t in pairs}  # every one exactly


def test_split_is_seeded_and_reproducible() -> None:
    first = Seq2SeqData.from_pairs(PAIRS, seed=3, bs=16)
    second = Seq2SeqData.from_pairs(PAIRS, seed=3, bs=16)
    other = Seq2SeqData.from_pairs(PAIRS, seed=4, bs=16)
    assert first.valid_dl.dataset.sources == second.valid_dl.dataset.sources
    assert first.valid_dl.dataset.sources != other.valid_dl.dataset.sources


def test_bucketing_cuts_padding() -> None:
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers"), bs=32)
    assert isinstance(data.train_dl.sampler, SortishSampler)
    lengths = [len(s) for s in data.train_dl.dataset.sources]
    ember.seed(0)
    order = list(data.train_dl.sampler)
    assert sorted(order) == list(range(len(lengths)))

    def padding(indices: list[int]) -> int:
        batches = [indices[i:i + 32] for i in range(0, len(indices), 32)]
        return sum(max(lengths[j] for j in b) * len(b) - sum(lengths[j] for j in b)
                   for b in batches)

    shuffled = torch.randperm(len(lengths)).tolist()
    assert padding(order) < padding(shuffled) / 4


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("un", "1"), ("", "2")], "item 1"),
        ([("un", "1"), ("deux", "   ")], "target is empty"),
        ([("un", "1"), ("deux", "2", "extra")], "not a (source, target) pair"),
        ([("un", "1"), ("deux", 2)], "target must be a string, got int"),
        ([("un", "1"), ("deux", None)], "item 1 ('deux', None): the target is missing"),
        ([("un", "1")], "at least 2"),
    ],
)
def test_bad_pairs_give_clear_errors_naming_the_item(pairs: list, expected: str) -> None:
    with pytest.raises(ember.DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Seq2SeqData.from_pairs(pairs)


def test_bad_level_is_refused() -> None:
    with pytest.raises(ember.DataError, match="level must be one of"):
        Seq2SeqData.from_pairs(PAIRS, level="bytes")


def test_a_bad_target_level_is_refused_by_its_own_name() -> None:
    # before, tgt_level="chars" was refused as "level must be one of ...", naming the
    # argument the user had got right
    with pytest.raises(ember.DataError, match=r"^tgt_level must be one of \('char', 'word'\), "
                                              r"got 'chars'$"):
        Seq2SeqData.from_pairs(PAIRS, level="word", tgt_level="chars")


def test_one_column_named_takes_the_other_of_the_first_two_as_its_partner() -> None:
    # before, a frame with columns (digits, words) and source_col="words" also took "words"
    # (the second column) as the target: the model learned to copy its source, silently
    frame = pd.DataFrame({"digits": [t for _, t in PAIRS], "words": [s for s, _ in PAIRS]})
    for data in (Seq2SeqData.from_pairs(frame, source_col="words", bs=16),
                 Seq2SeqData.from_pairs(frame[["words", "digits"]], target_col="digits",
                                        bs=16)):
        assert data.train_dl.dataset.targets == Seq2SeqData.from_pairs(PAIRS, bs=16
                                                                       ).train_dl.dataset.targets
        assert "7" in data.tgt_vocab.stoi and "7" not in data.src_vocab.stoi
    with pytest.raises(ember.DataError, match=r"pairs: source_col and target_col are both "
                                              r"'words'; name two different columns"):
        Seq2SeqData.from_pairs(frame, source_col="words", target_col="words")


def test_state_is_json_and_rebuilds_identical_encoding() -> None:
    data = Seq2SeqData.from_pairs(PAIRS, level="word", tgt_level="char", bs=16)
    state = json.loads(json.dumps(data.state()))
    rebuilt = Seq2SeqData.from_state(state)
    sources = [s for s, _ in PAIRS[:40]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few sources hold words only in validation
        assert torch.equal(rebuilt.encode(sources)[0], data.encode(sources)[0])
    assert rebuilt.tgt_level == "char" and rebuilt.default_max_len() == data.default_max_len()


@pytest.mark.parametrize("level", ["char", "word"])
def test_stray_whitespace_reads_as_the_text_seen_in_training(level: str) -> None:
    data = Seq2SeqData.from_pairs(PAIRS, level=level, bs=16)
    source = next(s for s, _ in PAIRS[:200] if " " in s)  # seen in training, with a space
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no token is unknown
        padded = data.encode([f"  {source.replace(' ', '   ')} \t"])[0]
    assert torch.equal(padded, data.encode([source])[0])


def test_encode_flags_unseen_tokens_and_empty_sources() -> None:
    data = Seq2SeqData.from_pairs(PAIRS, bs=16)
    with pytest.warns(ember.EmberWarning, match=r"source 0 .*never seen.*'Ω'"):
        (src,) = data.encode(["deux Ω"])
    assert 3 in src.tolist()[0]  # <unk>
    with pytest.raises(ember.DataError, match=r"source 1 .*is empty"):
        data.encode(["deux", "  "])
    with pytest.raises(ember.DataError, match=r"source 0 .* is missing"):
        data.encode([None])
    with pytest.raises(ember.DataError, match=r"source 0 .*must be a string, got int"):
        data.encode([7])
    assert torch.equal(data.encode([b"deux"])[0], data.encode(["deux"])[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.encode(["deux"])  # a known source warns about nothing


@pytest.mark.parametrize("max_len", [0, -1])
def test_a_decoding_limit_below_one_is_refused(max_len: int) -> None:
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    for beam in (1, 3):
        with pytest.raises(ember.DataError,
                           match=r"max_len \(tokens to decode\) must be a whole number of at "
                                 r"least 1"):
            learn.predict("deux", beam=beam, max_len=max_len)
    assert len(learn.predict("deux", max_len=1)) <= 1


def test_a_beam_or_decoding_limit_that_is_not_a_whole_number_is_refused() -> None:
    # before, beam=2.5 failed inside torch ("topk(): argument 'k' must be int, not float") and
    # max_len=3.5 with "'float' object cannot be interpreted as an integer"
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    beam = r"beam \(hypotheses kept; 1 decodes greedily\) must be a whole number of at least 1"
    for options, expected in (({"beam": 2.5}, beam + r", got 2\.5"),
                              ({"beam": "5"}, beam + r", got '5'"),
                              ({"beam": True}, beam + r", got True"),
                              ({"max_len": 3.5}, r"max_len \(tokens to decode\) must be a whole "
                                                 r"number of at least 1, got 3\.5")):
        with pytest.raises(ember.DataError, match=expected):
            learn.predict("deux", **options)
    assert learn.predict("deux", beam=np.int64(2), max_len=np.int64(4)) == learn.predict(
        "deux", beam=2, max_len=4)


def test_probs_is_refused_saying_a_translation_is_text() -> None:
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    with pytest.raises(TypeError, match="sequence-to-sequence model predicts a decoded string"):
        learn.predict("deux", probs=True)
    assert "probs" not in learn.data.prediction_options()
    assert learn.predict("deux", max_len=3, probs=False) == learn.predict("deux", max_len=3)


def test_utf8_bytes_predict_with_attention_like_the_same_text() -> None:
    ember.seed(0)
    data = Seq2SeqData.from_pairs(PAIRS[:60], bs=16, level="word", tgt_level="char")
    learn = ember.learner(data, quiet=True)
    source = "quatre-vingt-deux"
    for beam in (1, 3):
        as_text = learn.predict(source, beam=beam, with_attention=True)
        as_bytes = learn.predict(source.encode("utf-8"), beam=beam, with_attention=True)
        assert as_bytes.text == as_text.text and as_bytes.source_tokens == as_text.source_tokens
        assert (as_bytes.attention == as_text.attention).all()


def test_attention_rows_are_labelled_by_the_tokens_the_model_emitted() -> None:
    # an untrained model may put out <pad> or <bos>: their rows were dropped from the labels
    # (and an <eos> never emitted was added), so show_attention labelled the wrong rows
    ember.seed(0)
    data = Seq2SeqData.from_pairs(PAIRS[:60], bs=16)
    learn = ember.learner(data, quiet=True)
    with torch.no_grad():
        learn.model.output.weight.zero_()
        learn.model.output.bias.zero_()
        learn.model.output.bias[PAD] = 5.0  # always <pad>: never ends
    for beam in (1, 3):
        translation = learn.predict("deux", beam=beam, max_len=4, with_attention=True)
        assert translation.text == ""
        assert translation.tokens == ["<pad>"] * 4 and translation.attention.shape[0] == 4
    with torch.no_grad():
        learn.model.output.bias[PAD] = 0.0
        learn.model.output.bias[data.tgt_vocab.stoi["2"]] = 5.0
    translation = learn.predict("deux", max_len=3, with_attention=True)
    assert translation.text == "222" and translation.tokens == ["2", "2", "2"]  # cut, no <eos>


def test_test_pairs_are_read_like_validation_pairs_and_scored_by_the_same_metrics(tmp_path
                                                                                 ) -> None:
    from torch.utils.data import SequentialSampler

    train, valid = PAIRS[:250], PAIRS[250:]
    odd = ("zéro@", "0")  # "@" never occurs in training
    ember.seed(0)
    plain = Seq2SeqData.from_pairs(train, valid_pairs=valid, bs=16)
    plain_order = [batch[0].tolist() for batch in plain.train_dl]
    ember.seed(0)
    data = Seq2SeqData.from_pairs(train, valid_pairs=valid, test_pairs=[*valid, odd], bs=16)
    # nothing else changes: the vocabs of the training pairs, the seeded batch order
    assert data.src_vocab == plain.src_vocab and data.tgt_vocab == plain.tgt_vocab
    assert "@" not in data.src_vocab.stoi
    assert [batch[0].tolist() for batch in data.train_dl] == plain_order
    assert (data.max_src_len, data.max_tgt_len) == (plain.max_src_len, plain.max_tgt_len)
    test_set, valid_set = data.test_dl.dataset, data.valid_dl.dataset
    assert test_set.sources[:-1] == valid_set.sources
    assert test_set.targets[:-1] == valid_set.targets
    assert test_set.sources[-1][-2:] == [UNK, EOS]  # "@" read as <unk>
    # batched like validation: in order, the validation batch size, the same collation
    assert isinstance(data.test_dl.sampler, SequentialSampler)
    assert data.test_dl.batch_size == data.valid_dl.batch_size
    assert data.test_dl.collate_fn is data.valid_dl.collate_fn
    # a real learner scores it with the validation metrics; the validation pairs as test
    # pairs give the validation scores
    same = Seq2SeqData.from_pairs(train, valid_pairs=valid, test_pairs=valid, bs=16)
    learn = ember.learner(same, quiet=True)  # TokenAccuracy, ExactMatch, Bleu
    learn.fit(1, 1e-2)
    scores = learn.validate("test")
    assert set(scores) >= {"test_loss", "test_token_accuracy", "test_exact_match", "test_bleu"}
    assert scores == {("test_loss" if name == "valid_loss" else f"test_{name}"): value
                      for name, value in learn.validate().items()}
    predictions, targets = learn.get_preds("test")
    assert predictions.shape[0] == targets.shape[0] == len(valid)
    # the test loader is no part of an export: the loaded model translates the same
    loaded = ember.load(learn.export(tmp_path / "numbers.ember"))
    sources = ["quarante-deux", "sept"]
    assert loaded.predict_batch(sources) == learn.predict_batch(sources)


def test_test_pairs_from_a_data_frame_and_their_errors() -> None:
    frame = pd.DataFrame({"words": [s for s, _ in PAIRS[:40]],
                          "digits": [t for _, t in PAIRS[:40]], "other": 1})
    data = Seq2SeqData.from_pairs(frame, source_col="words", target_col="digits", bs=8,
                                  test_pairs=frame.iloc[:5])
    assert len(data.test_dl.dataset) == 5
    with pytest.raises(ember.DataError, match=r"test_pairs item 1 \('deux', None\): the target "
                                              r"is missing"):
        Seq2SeqData.from_pairs(PAIRS, test_pairs=[("un", "1"), ("deux", None)])
    with pytest.raises(ember.DataError, match=r"test_pairs item 0 .* is not a \(source, "
                                              r"target\) pair"):
        Seq2SeqData.from_pairs(PAIRS, test_pairs=[("un", "1", "one")])
    with pytest.raises(ember.DataError, match="the test set is empty"):
        Seq2SeqData.from_pairs(PAIRS, test_pairs=[])


def test_test_sources_alone_are_a_test_set_without_labels_predicted_in_item_order() -> None:
    train, valid = PAIRS[:250], PAIRS[250:]
    sources = [source for source, _ in valid]
    labelled = Seq2SeqData.from_pairs(train, valid_pairs=valid, test_pairs=valid, bs=16)
    data = Seq2SeqData.from_pairs(train, valid_pairs=valid, test_pairs=sources, bs=16)
    assert labelled.test_labelled and not data.test_labelled
    # read like the validation sources (training vocab, in order), batches of inputs only
    assert data.test_dl.dataset.sources == labelled.test_dl.dataset.sources
    batch = data.one_batch("test")
    assert len(batch) == 1 and torch.equal(batch[0], labelled.one_batch("test")[0])
    ember.seed(0)
    learn = ember.learner(data, quiet=True)
    learn.fit(1, 1e-2)
    predictions, targets = learn.get_preds("test")
    assert targets is None and predictions.shape[0] == len(sources)
    # the same kind of predictions as the labelled test set: token probabilities that the
    # data decodes into the greedy translations, row i for source i
    assert predictions.shape[-1] == len(data.tgt_vocab)
    assert data.decode(predictions) == learn.predict_batch(sources)
    with pytest.raises(ember.DataError, match=r"the test set has no labels .* validate needs "
                                              r"labels"):
        learn.validate("test")
    with pytest.raises(ember.DataError, match="the test set has no labels"):
        learn.show_results(split="test")
    rows = data.show_batch(3, split="test")
    assert rows == [(source, None) for source in sources[:3]]
    assert learn.show_results(3)  # the validation set still shows its targets


def test_test_sources_from_a_data_frame_without_the_target_column_and_their_errors() -> None:
    frame = pd.DataFrame({"words": [s for s, _ in PAIRS[:40]],
                          "digits": [t for _, t in PAIRS[:40]]})
    named = Seq2SeqData.from_pairs(frame, source_col="words", target_col="digits", bs=8,
                                   test_pairs=frame[["words"]].iloc[:5])
    assert not named.test_labelled and len(named.test_dl.dataset) == 5
    assert Seq2SeqData.from_pairs(frame, source_col="words", target_col="digits", bs=8,
                                  test_pairs=frame.iloc[:5]).test_labelled
    # unnamed: a frame of one column holds sources alone, two or more (source, target)
    one_column = Seq2SeqData.from_pairs(frame, bs=8, test_pairs=frame[["words"]].iloc[:5])
    assert not one_column.test_labelled
    assert one_column.test_dl.dataset.sources == named.test_dl.dataset.sources
    series = Seq2SeqData.from_pairs(frame, bs=8, test_pairs=frame["words"].iloc[:5])
    assert series.test_dl.dataset.sources == named.test_dl.dataset.sources
    with pytest.raises(ember.DataError, match=r"test_pairs: no column 'words'"):
        Seq2SeqData.from_pairs(frame, source_col="words", target_col="digits",
                               test_pairs=frame[["digits"]].rename(columns={"digits": "x"}))
    with pytest.raises(ember.DataError, match=r"test_pairs item 1 \(None\): the source is "
                                              r"missing"):
        Seq2SeqData.from_pairs(PAIRS, test_pairs=["un", None])
    with pytest.raises(ember.DataError, match=r"test_pairs item 2 \(\('trois', '3'\)\) is a "
                                              r"\(source, target\) pair, but item 0 is a source "
                                              r"alone"):
        Seq2SeqData.from_pairs(PAIRS, test_pairs=["un", "deux", ("trois", "3")])
    with pytest.raises(ember.DataError, match=r"test_pairs item 1 \('deux'\) is a source "
                                              r"alone, but item 0 is a \(source, target\) pair"):
        Seq2SeqData.from_pairs(PAIRS, test_pairs=[("un", "1"), "deux"])


def _always(learn: ember.Learner, token: str) -> None:
    """Make ``learn``'s untrained model emit ``token`` at every step (output bias only)."""
    output = learn.model.output
    with torch.no_grad():
        output.weight.zero_()
        output.bias.fill_(-10.0)
        output.bias[learn.data.tgt_vocab.stoi[token]] = 10.0


def test_word_level_predictions_end_without_the_last_tokens_trailing_space(tmp_path) -> None:
    # "cent " (with its space) is a target token; a model that stops after it returned
    # 'cent ' from predict, predict_batch and a loaded export
    pairs = [("hundred", "cent"), ("one hundred and one", "cent un")] * 5
    data = Seq2SeqData.from_pairs(pairs, valid_pct=0.2, level="word", bs=4)
    assert "cent " in data.tgt_vocab.stoi
    ember.seed(0)
    learn = ember.learner(data, quiet=True)
    _always(learn, "cent ")
    assert data.detokenize([data.tgt_vocab.stoi["cent "], EOS]) == "cent"
    assert learn.predict("hundred", max_len=1) == "cent"
    assert learn.predict_batch(["hundred", "one hundred and one"], max_len=2) == [
        "cent cent", "cent cent"]
    loaded = ember.load(learn.export(tmp_path / "cent.ember"))
    assert loaded.predict_batch(["hundred"], max_len=1) == ["cent"]
    assert data.decode_targets(torch.tensor([[data.tgt_vocab.stoi["cent "], EOS]])) == ["cent"]


@pytest.mark.parametrize("level", ["char", "word"])
def test_every_bundled_target_round_trips_exactly_through_ids(level: str) -> None:
    # hyphens (quatre-vingt-dix, cent-vingt-mille), "et", accents (zéro) and commas: the text
    # a prediction gives back is the target as written, at both levels, in both languages
    from ember_text.seq2seq.datasets import read_numbers

    rows = read_numbers()
    for source, target in (("en", "fr"), ("fr", "en"), ("fr", "number")):
        pairs = [(row[source], row[target]) for row in rows]
        data = Seq2SeqData.from_pairs(pairs, valid_pairs=pairs[:2], level=level,
                                      tgt_lang=target if target != "number" else "xx", bs=64)
        targets = data.train_dl.dataset.targets
        assert all(UNK not in ids for ids in targets)
        assert [data.detokenize(ids) for ids in targets] == [t for _, t in pairs]


def test_max_vocab_counts_the_special_tokens_as_text_data_does() -> None:
    # one name, one meaning: TextData's max_vocab (and fastai's) counts the special tokens
    data = Seq2SeqData.from_pairs(PAIRS, max_vocab=10, bs=16)
    assert len(data.src_vocab) == len(data.tgt_vocab) == 10
    assert data.tgt_vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    shared = Seq2SeqData.from_pairs(PAIRS, max_vocab=10, shared_vocab=True, bs=16)
    assert len(shared.src_vocab) == 10
    with pytest.raises(ember.DataError,
                       match="max_vocab=3 leaves no room for the vocab's 4 special"):
        Seq2SeqData.from_pairs(PAIRS, max_vocab=3, bs=16)


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_decomposed_accent_reads_as_the_composed_one_seen_in_training(level: str) -> None:
    # "é" as "e" + U+0301 (NFD) read as two unknown-ish tokens: a new "e" and an <unk>
    pairs = [("zéro", "0"), ("un", "1"), ("dix-sept", "17"), ("deux", "2")] * 3
    composed = Seq2SeqData.from_pairs(pairs, valid_pct=0.25, level=level, bs=4)
    decomposed = Seq2SeqData.from_pairs([(s.replace("é", "e\u0301"), t) for s, t in pairs],
                                        valid_pct=0.25, level=level, bs=4)
    assert composed.src_vocab == decomposed.src_vocab
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no token is unknown
        assert torch.equal(composed.encode(["ze\u0301ro"])[0], composed.encode(["zéro"])[0])
        assert torch.equal(decomposed.encode(["zéro"])[0], composed.encode(["zéro"])[0])


def test_predict_of_several_sources_points_to_predict_batch() -> None:
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    for several in (["deux", "trois"], ("deux", "trois")):
        with pytest.raises(ember.DataError, match=r"give several to predict_batch"):
            learn.predict(several)
    assert len(learn.predict_batch(["deux", "trois"], max_len=3)) == 2


def test_a_frame_cell_that_is_not_text_names_its_column_and_the_fix() -> None:
    # read_csv reads a column of digits as numbers: the error says how to make it text
    frame = pd.DataFrame({"words": ["un", "deux", "trois"], "digits": [1, 2, 3]})
    with pytest.raises(ember.DataError, match=r"item 0 .*the target \(column 'digits'\) is a "
                                              r"int.*frame\['digits'\]\.astype\(str\)"):
        Seq2SeqData.from_pairs(frame)
    # an id column first: the message says to name the text columns
    frame = pd.DataFrame({"id": [7, 8, 9], "words": ["un", "deux", "trois"],
                          "digits": ["1", "2", "3"]})
    with pytest.raises(ember.DataError, match=r"the source \(column 'id'\) .*source_col="):
        Seq2SeqData.from_pairs(frame)
    data = Seq2SeqData.from_pairs(frame, source_col="words", target_col="digits")
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 3


def test_one_training_pair_is_enough_with_explicit_validation_pairs() -> None:
    data = Seq2SeqData.from_pairs([("un", "1")], valid_pairs=[("deux", "2")])
    assert len(data.train_dl.dataset) == 1 and len(data.valid_dl.dataset) == 1
    with pytest.raises(ember.DataError, match=r"at least 2 to split .* or give the "
                                              r"validation set as valid_pairs="):
        Seq2SeqData.from_pairs([("un", "1")])
    with pytest.raises(ember.DataError, match=r"pairs: got no pairs"):
        Seq2SeqData.from_pairs([], valid_pairs=[("deux", "2")])


def test_the_doctor_finds_every_validation_pair_duplicated_in_training() -> None:
    # duplicates padded to other lengths in their batches than in training were missed
    data = Seq2SeqData.from_pairs(PAIRS[:100], bs=16, valid_pairs=PAIRS[50:70])
    learn = ember.learner(data, quiet=True)
    leaks = [finding for finding in learn.doctor(verbose=False)
             if finding.kind is ember.checks.LeakageWarning]
    assert leaks and "20 of 20 validation items" in leaks[0].message


def test_test_pairs_from_a_generator_are_read_like_a_list() -> None:
    # the check for sources alone read the generator, which then gave no pairs: "empty"
    data = Seq2SeqData.from_pairs(PAIRS[:60], bs=16, test_pairs=(pair for pair in PAIRS[:7]))
    assert data.test_labelled and len(data.test_dl.dataset) == 7
    data = Seq2SeqData.from_pairs(PAIRS[:60], bs=16,
                                  test_pairs=(source for source, _ in PAIRS[:5]))
    assert not data.test_labelled and len(data.test_dl.dataset) == 5


@pytest.mark.parametrize("languages", [{"lang": "zz"}, {"src_lang": "french"},
                                       {"tgt_lang": "zz"}])
def test_a_language_spacy_lacks_is_a_data_error_naming_it(languages: dict) -> None:
    name = next(iter(languages.values()))
    with pytest.raises(ember.DataError, match=rf"spaCy has no language '{name}' .* 'xx'"):
        Seq2SeqData.from_pairs(PAIRS[:20], level="word", **languages)


def test_a_length_penalty_that_is_not_a_finite_number_is_refused() -> None:
    # before, "1" and None failed inside beam search ("'>' not supported between 'str' and
    # 'int'") and NaN ranked every hypothesis NaN, returning an arbitrary one
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    for penalty in ("1", None, float("nan"), float("inf"), True):
        with pytest.raises(ember.DataError, match=r"length_penalty must be a finite number"):
            learn.predict("deux", beam=3, max_len=4, length_penalty=penalty)
    assert learn.predict("deux", beam=3, max_len=4, length_penalty=np.float32(0.5)) == (
        learn.predict("deux", beam=3, max_len=4, length_penalty=0.5))


def test_a_test_frame_of_ids_and_sources_says_how_to_give_the_sources_alone() -> None:
    # a competition's test file: an id column beside the sources, read as (source, target)
    frame = pd.DataFrame({"text": ["un", "deux"], "id": [7, 8]})
    with pytest.raises(ember.DataError, match=r"test_pairs item 0 .*column 'id'.*sources alone, "
                                              r"e\.g\. test_pairs=frame\['text'\]"):
        Seq2SeqData.from_pairs(PAIRS[:20], test_pairs=frame)
    data = Seq2SeqData.from_pairs(PAIRS[:20], test_pairs=frame["text"])
    assert not data.test_labelled and len(data.test_dl.dataset) == 2


def test_a_long_source_is_warned_about_with_the_decoding_limit_in_use() -> None:
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    long_source = "deux " * 30
    with pytest.warns(ember.EmberWarning, match=r"decoding is capped at 7 tokens"):
        learn.predict(long_source, max_len=7)
    default = learn.data.default_max_len()
    with pytest.warns(ember.EmberWarning, match=rf"decoding is capped at {default} tokens"):
        learn.predict(long_source, beam=2)


def test_a_word_seen_only_inside_a_text_is_known_at_the_end_of_one() -> None:
    # word tokens keep their trailing space: training on "deux mille un" only gave "mille ",
    # so "deux mille" read its "mille" as <unk> (with a warning, in predict and validation),
    # and a reference "deux mille" was scored as "deux <unk>"
    train = [("deux mille un", "two thousand one"), ("trois mille deux", "three thousand two"),
             ("un", "one"), ("deux", "two")] * 3
    valid = [("deux mille", "two thousand")]
    data = Seq2SeqData.from_pairs(train, valid_pairs=valid, level="word", bs=4)
    assert "mille" not in data.src_vocab.stoi and "thousand" not in data.tgt_vocab.stoi
    (source_ids,), (target_ids,) = data.valid_dl.dataset.sources, data.valid_dl.dataset.targets
    assert UNK not in source_ids and UNK not in target_ids
    assert data.decode_targets(torch.tensor([target_ids])) == ["two thousand"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "never seen in training" warning
        (src,) = data.encode(["deux  mille"])
    assert src[0].tolist() == source_ids
    with pytest.warns(ember.EmberWarning, match=r"never seen in training: \['cent'\]"):
        data.encode(["deux cent"])  # a word training never saw in either form
    # character level is left as it is: a space is a token of its own there
    chars = Seq2SeqData.from_pairs(train, valid_pairs=valid, bs=4)
    assert chars.valid_dl.dataset.sources[0] == [*chars.src_vocab.numericalize(
        list("deux mille")), EOS]


def test_a_prediction_batch_size_below_one_is_refused() -> None:
    # bs=-1 returned no predictions at all, bs=0 failed inside range()
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    for bs, expected in ((0, r"bs \(the batch size\) must be a whole number of at least 1"),
                         (-1, r"bs \(the batch size\) must be a whole number of at least 1"),
                         (2.5, r"bs \(the batch size\) must be a whole number")):
        with pytest.raises(ember.DataError, match=expected):
            learn.predict_batch(["deux", "trois"], bs=bs, max_len=3)
    assert len(learn.predict_batch(["deux", "trois", "un"], bs=2, max_len=3)) == 3


def test_a_min_freq_that_keeps_no_token_is_refused_naming_the_side() -> None:
    # every token read as <unk>: the model trained on nothing, silently
    pairs = [("a", f"w{i}") for i in range(12)]  # word level: "a" 12 times, each target once
    with pytest.raises(ember.DataError, match=r"min_freq=2 keeps no token of the target vocab"
                                              r".* appears 1 time.* give min_freq=1 or less"):
        Seq2SeqData.from_pairs(pairs, valid_pairs=pairs[:2], level="word", min_freq=2)
    with pytest.raises(ember.DataError, match=r"min_freq=13 keeps no token of the source vocab"
                                              r".* appears 12 time"):
        Seq2SeqData.from_pairs(pairs, valid_pairs=pairs[:2], level="word", min_freq=13)
    data = Seq2SeqData.from_pairs(pairs, valid_pairs=pairs[:2], level="word", tgt_level="char",
                                  min_freq=2)
    assert data.src_vocab.itos[4:] == ["a"] and "w" in data.tgt_vocab.stoi


def test_unseen_words_are_named_as_typed_without_their_token_space() -> None:
    data = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 3, level="word", bs=2)
    with pytest.warns(ember.EmberWarning, match=r"never seen in training: \['qqq', 'zzz'\]"):
        data.encode(["zzz qqq"])
    chars = Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 3, bs=2)
    with pytest.warns(ember.EmberWarning, match=r"never seen in training: \[' ', 'z'\]"):
        chars.encode(["un z"])


@pytest.mark.parametrize("languages", [{"lang": "th"}, {"src_lang": "th"}])
def test_a_language_whose_tokenizer_needs_a_package_says_to_install_it(languages: dict
                                                                        ) -> None:
    # spaCy has Thai; its tokenizer needs PyThaiNLP. The message said "spaCy has no language
    # 'th'" and advised another language code, not the package to install
    import importlib.util

    if importlib.util.find_spec("pythainlp") is not None:
        pytest.skip("PyThaiNLP is installed: spaCy's Thai tokenizer works")
    with pytest.raises(ember.DataError) as error:
        Seq2SeqData.from_pairs(PAIRS[:20], level="word", **languages)
    message = str(error.value)
    assert "has no language" not in message
    assert message.startswith("spaCy's Thai tokenizer ('th') needs a package that is not "
                              "installed (The Thai tokenizer requires the PyThaiNLP library")
    assert "install it" in message and "'xx'" in message and "src_lang=" in message


def test_a_dict_of_source_to_target_is_read_as_its_pairs() -> None:
    # a glossary {source: target} was refused as "item 0 ('zéro') is not a (source, target)
    # pair", and as test_pairs it became a test set of its sources alone, without labels
    glossary = dict(PAIRS[:40])
    data = Seq2SeqData.from_pairs(glossary, bs=8, valid_pairs=dict(PAIRS[40:50]),
                                  test_pairs=dict(PAIRS[50:55]))
    listed = Seq2SeqData.from_pairs(PAIRS[:40], bs=8, valid_pairs=PAIRS[40:50],
                                    test_pairs=PAIRS[50:55])
    assert data.src_vocab.itos == listed.src_vocab.itos
    for split in ("train", "valid", "test"):
        ours, theirs = data.loader(split).dataset, listed.loader(split).dataset
        assert (ours.sources, ours.targets) == (theirs.sources, theirs.targets), split
    assert data.test_labelled
    assert data.show_batch(1, split="test")[0][1] is not None


def _learner_that_ends_with(token: int) -> ember.Learner:
    """An untrained learner whose decoder always emits ``token`` (its output bias dominates)."""
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs(PAIRS[:60], bs=16), quiet=True)
    with torch.no_grad():
        learn.model.output.weight.zero_()
        learn.model.output.bias.fill_(-10.0)
        learn.model.output.bias[token] = 10.0
    return learn


@pytest.mark.parametrize("beam", [1, 3])
def test_a_translation_cut_at_max_len_is_warned_about_naming_its_sources(beam: int) -> None:
    # a decoding that reached max_len without <eos> returned the first max_len tokens as if
    # they were the whole translation, without a word
    looping = _learner_that_ends_with(5)  # never <eos>
    sources = ["deux", "trois", "quatre"]
    with pytest.warns(ember.EmberWarning) as caught:
        texts = looping.predict_batch(sources, beam=beam, max_len=4, bs=2)
    assert all(len(text) == 4 for text in texts)
    (message,) = [str(w.message) for w in caught if "without <eos>" in str(w.message)]
    assert message.startswith(
        "3 of 3 translations reached the decoding limit, max_len=4, without <eos> and are cut: "
        "source 0 ('deux'), source 1 ('trois'), source 2 ('quatre'); pass a larger max_len=")
    ending = _learner_that_ends_with(EOS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ending.predict_batch(sources, beam=beam, max_len=4) == ["", "", ""]
