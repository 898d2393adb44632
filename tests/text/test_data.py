"""TextData / LanguageModelData: targets, splits, bucketing, bad input, LM streams."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

import ember
from ember_text.data import (
    LanguageModelData,
    LMBatchSampler,
    LMStream,
    SortedSampler,
    SortishSampler,
    TextData,
)
from ember_text.datasets import load_rotten_tomatoes
from ember_text.tokenize import Tokenizer, Vocab
from ember_text.ulmfit import text_classifier


@pytest.fixture(scope="module")
def reviews() -> dict[str, list[str]]:
    texts, labels, movies = load_rotten_tomatoes()
    return {"text": texts[:400], "label": labels[:400], "movie": movies[:400]}


def test_single_label_from_df_split_and_batches(reviews) -> None:
    data = TextData.from_df(reviews, "text", "label", valid_pct=0.2, seed=0, bs=32)
    assert data.kind == "text" and data.target_kind == "single_label"
    assert data.classes == ["fresh", "rotten"] and data.n_out == 2
    assert len(data.train_dl.dataset) == 320 and len(data.valid_dl.dataset) == 80
    again = TextData.from_df(reviews, "text", "label", valid_pct=0.2, seed=0, bs=32)
    assert again.vocab == data.vocab  # same seed, same split, same vocab
    xb, yb = data.one_batch()
    assert xb.dtype == torch.long and xb.shape[0] == 32 and yb.shape == (32,)
    # padding is at the end: every row starts with xxbos, pads only follow real tokens
    assert bool((xb[:, 0] == data.vocab.stoi["xxbos"]).all())
    pads = xb == data.vocab.pad_id
    assert bool((pads[:, 1:] | ~pads[:, :-1]).all())


def test_predictions_on_the_training_texts_cover_every_text_in_order(reviews) -> None:
    # the length-bucketing training sampler was read as it is: get_preds("train") gave 288 of
    # the 320 training texts (the short last batch dropped), in a new random order each call
    data = TextData.from_df(reviews, "text", "label", valid_pct=0.2, seed=0, bs=32)
    learn = ember.learner(data, quiet=True)
    probs, targets = learn.get_preds("train")
    assert probs.shape == (320, 2)
    assert torch.equal(targets, data.train_dl.dataset.targets)
    assert torch.equal(learn.get_preds("train")[0], probs)
    texts = [reviews["text"][i] for i in ember.split_indices(400, 0.2, 0)[0][:3]]
    for text, row in zip(texts, probs):
        predicted = learn.predict(text, probs=True).probabilities
        assert torch.allclose(torch.tensor([predicted[c] for c in data.classes]), row,
                              atol=1e-5)


def test_vocab_comes_from_training_texts_only(reviews) -> None:
    texts = list(reviews["text"])
    is_valid = [i % 5 == 0 for i in range(len(texts))]
    texts[0] = "zzyzx zzyzx zzyzx appears only in validation"
    data = TextData.from_texts(texts, reviews["label"], is_valid=is_valid, min_freq=1)
    assert "zzyzx" not in data.vocab
    assert len(data.valid_dl.dataset) == sum(is_valid)


def test_valid_col_multi_label_and_regression() -> None:
    frame = {"text": ["good fun", "dull plot", "fun but dull", "great"] * 10,
             "tags": ["fun", "dull", "fun|dull", "fun"] * 10,
             "score": [4.5, 1.0, 2.5, 5.0] * 10,
             "is_valid": [False, False, False, True] * 10}
    multi = TextData.from_df(frame, "text", "tags", valid_col="is_valid", label_delim="|",
                             min_freq=1, bs=8)
    assert multi.target_kind == "multi_label" and multi.classes == ["dull", "fun"]
    assert len(multi.valid_dl.dataset) == 10
    yb = multi.one_batch()[1]
    assert yb.dtype == torch.float32 and yb.shape[1] == 2
    as_strings = {**frame, "is_valid": [str(flag) for flag in frame["is_valid"]]}
    with pytest.raises(ember.DataError, match="must be boolean"):  # not all rows validation
        TextData.from_df(as_strings, "text", "score", valid_col="is_valid", min_freq=1)
    # the errors named "is_valid", an argument of from_texts the user never gave
    split = {**as_strings, "split": as_strings["is_valid"]}
    with pytest.raises(ember.DataError, match=r"^valid_col 'split' must be boolean"):
        TextData.from_df(split, "text", "score", valid_col="split", min_freq=1)
    none_valid = {**frame, "split": [False] * 40}
    with pytest.raises(ember.DataError, match=r"^valid_col 'split' leaves 40 training and 0"):
        TextData.from_df(none_valid, "text", "score", valid_col="split", min_freq=1)
    regression = TextData.from_df(frame, "text", "score", min_freq=1, bs=8)
    assert regression.target_kind == "regression" and regression.n_out == 1
    assert regression.one_batch()[1].dtype == torch.float32


def test_pandas_frame_and_errors_name_the_row() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"text": ["fine film", "bad film", "", "ok"] * 3,
                              "label": ["a", "b", "a", "b"] * 3},
                             index=[f"r{i}" for i in range(12)])
    with pytest.raises(ember.DataError, match=r"row 'r2' \(column 'text'\) is empty"):
        TextData.from_df(frame, "text", "label")
    frame.loc["r2", "text"] = None
    with pytest.raises(ember.DataError, match=r"row 'r2'.*missing"):
        TextData.from_df(frame, "text", "label")
    with pytest.raises(ember.DataError, match="no column 'review'"):
        TextData.from_df(frame, "review", "label")
    # a column of numbers (the ids, the stars, or the columns swapped) said only "must be a
    # string, got int: 4", not what to do
    numbers = frame.assign(stars=[4, 2, 5, 1] * 3)
    with pytest.raises(ember.DataError, match=r"row 'r0' \(column 'stars'\) must be a string, "
                                              r"got int: 4; .*astype\(str\).*text_col="):
        TextData.from_df(numbers, "stars", "label")
    frame.loc["r2", "text"] = "fixed"
    frame.loc["r3", "label"] = None
    with pytest.raises(ember.DataError, match=r"label of row 'r3'.*missing"):
        TextData.from_df(frame, "text", "label")


def test_errors_about_a_label_name_the_label_column_not_the_text_column() -> None:
    frame = {"review": ["fine film", "bad film", "ok", "meh"] * 3,
             "stars": ["a", "b", None, "b"] * 3}
    with pytest.raises(ember.DataError,
                       match=r"the label of row 2 \(column 'stars'\) is missing"):
        TextData.from_df(frame, "review", "stars", min_freq=1)
    frame["stars"] = [1.5, 2.0, "three", 4.0] * 3
    with pytest.raises(ember.DataError, match=r"row 2 \(column 'stars'\) is 'three'"):
        TextData.from_df(frame, "review", "stars", min_freq=1, target_kind="regression")
    frame["stars"] = ["a", "b", "c", "b"] * 3
    with pytest.raises(ember.DataError, match=r"'c' of row 2 \(column 'stars'\) is not among"):
        TextData.from_df(frame, "review", "stars", min_freq=1, classes=["a", "b"])


def test_numbers_with_a_float_among_them_are_a_regression_target() -> None:
    texts = ["a", "b", "c", "d"] * 3
    mixed = TextData.from_texts(texts, [1, 2.5, 3, 4] * 3, min_freq=1)  # as pandas reads it
    assert mixed.target_kind == "regression"
    assert TextData.from_texts(texts, [1, 2, 3, 4] * 3, min_freq=1).target_kind == "single_label"


def test_texts_and_labels_given_as_generators_are_read() -> None:
    # texts without a length were a raw TypeError (LanguageModelData took them)
    texts = ["good film", "bad film"] * 6
    data = TextData.from_texts((text for text in texts), (label for label in "ab" * 6),
                               min_freq=1)
    assert data.classes == ["a", "b"]
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 12


def test_labels_given_as_tensors_are_read_as_their_values() -> None:
    # a tensor's elements are tensors, which hash by identity: every label was its own class
    texts = ["good film", "bad film"] * 6
    data = TextData.from_texts(texts, torch.tensor([1, 0] * 6), min_freq=1,
                               test=(["good", "bad"], torch.tensor([1, 0])))
    assert data.target_kind == "single_label" and data.classes == [0, 1]
    assert data.test_dl.dataset.targets.tolist() == [1, 0]
    scores = TextData.from_texts(texts, torch.tensor([0.5, 1.5] * 6), min_freq=1)
    assert scores.target_kind == "regression" and scores.n_out == 1


def test_labels_given_as_arrays_of_classes_are_multi_label() -> None:
    # a list column read from Parquet holds one array of strings per row
    pandas = pytest.importorskip("pandas")
    tags = [np.array(["fun", "dull"], dtype=object), np.array(["fun"])] * 6
    frame = pandas.DataFrame({"text": ["good film", "bad film"] * 6, "tags": tags})
    data = TextData.from_df(frame, "text", "tags", min_freq=1, bs=4)
    assert data.target_kind == "multi_label" and data.classes == ["dull", "fun"]


@pytest.mark.parametrize("labels", [
    np.eye(2)[[0, 1] * 6],                 # a multi-hot matrix (sklearn's MultiLabelBinarizer)
    list(np.eye(2)[[0, 1] * 6]),           # its rows
    np.array([["fun", "dull"], ["fun", "fun"]] * 6),  # a 2-D array of strings
    np.random.default_rng(0).random((12, 2)),  # several regression outputs
    torch.rand(12, 2),
    [{"a"}, {"b"}] * 6,
])
def test_a_label_that_is_no_value_nor_list_of_classes_is_an_error_naming_it(labels) -> None:
    with pytest.raises(ember.DataError, match=r"label of text #0 is (an array of shape \(2,\)"
                                              r"|a set); a text's label is one class"):
        TextData.from_texts(["good film", "bad film"] * 6, labels, min_freq=1)


@pytest.mark.parametrize("max_len", [0, -3, 2.5])
def test_max_len_that_is_no_whole_positive_number_is_refused(max_len) -> None:
    # -3 silently cut three tokens off the end of every text; 0 left every text empty
    with pytest.raises(ember.DataError, match=r"max_len \(the tokens kept of each text\)"):
        TextData.from_texts(["good film", "bad film"] * 6, ["a", "b"] * 6, min_freq=1,
                            max_len=max_len)


@pytest.mark.parametrize("bptt", [0, -1])
def test_bptt_that_is_no_whole_positive_number_is_refused(bptt) -> None:
    # 0 divided by zero counting the batches
    with pytest.raises(ember.DataError, match=r"bptt \(the tokens of each training"):
        LanguageModelData.from_texts(["one two three four five six"] * 20, bs=2, bptt=bptt,
                                     min_freq=1)


def test_infinite_regression_targets_are_refused() -> None:
    scores = [1.0, 2.0, float("inf"), 3.0] * 3
    with pytest.raises(ember.DataError, match=r"label of text #2 is inf.*finite"):
        TextData.from_texts(["a", "b", "c", "d"] * 3, scores, min_freq=1)


def test_pandas_missing_markers_are_refused() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"text": ["fine film", "bad film", "ok", "meh"] * 3,
                              "label": pandas.array([1, 2, 1, None] * 3, dtype="Int64"),
                              "note": pandas.array(["a", None, "b", "c"] * 3, dtype="string")},
                             index=[f"r{i}" for i in range(12)])
    with pytest.raises(ember.DataError, match=r"label of row 'r3'.*missing"):
        TextData.from_df(frame, "text", "label", min_freq=1)
    with pytest.raises(ember.DataError, match=r"row 'r1' \(column 'note'\) is missing"):
        TextData.from_df(frame, "note", "text", min_freq=1)


def test_the_callers_tokenizer_is_not_changed() -> None:
    # the classifier's character cut must not leak into a language model built with the
    # same tokenizer afterwards (it cut every document to max_len * 20 characters)
    tokenizer = Tokenizer()
    data = TextData.from_texts(["a good film", "a bad film"] * 10, ["p", "n"] * 10,
                               tokenizer=tokenizer, max_len=5, min_freq=1)
    assert tokenizer.max_chars is None and data.tokenizer.max_chars == 100
    document = " ".join(f"w{i}" for i in range(300))
    lm = LanguageModelData.from_texts([document] * 20, tokenizer=tokenizer, bs=2, bptt=10,
                                      min_freq=1, valid_pct=0.1)
    assert len(lm.train_dl.dataset.ids) == 18 * 301


def test_classes_given_as_a_numpy_array_export_as_plain_values(tmp_path) -> None:
    import numpy as np

    labels = np.array([3, 7, 3, 7] * 6)  # e.g. a frame's column: numpy integers
    data = TextData.from_texts(["good", "bad", "fine", "awful"] * 6, list(labels),
                               classes=np.unique(labels), min_freq=1, bs=8)
    assert data.classes == [3, 7] and all(type(c) is int for c in data.classes)
    learn = ember.learner(data, quiet=True)
    learn.export(tmp_path / "model.ember")  # the manifest is JSON: numpy ints used to fail
    loaded = ember.load(tmp_path / "model.ember")
    assert loaded.predict_batch(["good", "bad"]) == learn.predict_batch(["good", "bad"])
    assert loaded.data.classes == [3, 7]


def test_from_folder_and_non_utf8_file(tmp_path) -> None:
    for split, count in (("train", 6), ("valid", 2)):
        for label in ("neg", "pos"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}.txt").write_text(f"A {label} review number {i}.", "utf-8")
    data = TextData.from_folder(tmp_path, min_freq=1, bs=4)
    assert data.classes == ["neg", "pos"]
    assert len(data.train_dl.dataset) == 12 and len(data.valid_dl.dataset) == 4
    bad = tmp_path / "train" / "pos" / "bad.txt"
    bad.write_bytes(b"caf\xe9 au lait")
    with pytest.raises(ember.DataError, match=r"file .*bad\.txt is not valid UTF-8"):
        TextData.from_folder(tmp_path, min_freq=1)
    bad.unlink()
    # an empty file was told to "drop that row", advice for a data frame
    for content in (b"", b"\xef\xbb\xbf \r\n"):
        (tmp_path / "valid" / "neg" / "empty.txt").write_bytes(content)
        with pytest.raises(ember.DataError, match=r"^file .*empty\.txt is empty; delete the "
                                                  r"file or give it some text$"):
            TextData.from_folder(tmp_path, min_freq=1)


def test_from_folder_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch) -> None:
    # "~/reviews" was read as a folder named "~" in the working directory: "no folder at"
    for split in ("train", "valid"):
        for label in ("neg", "pos"):
            folder = tmp_path / "reviews" / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}.txt").write_text(f"A {label} review number {i}.", "utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "reviews")
    data = TextData.from_folder("~/reviews", min_freq=1, bs=4)
    assert data.classes == ["neg", "pos"] and len(data.train_dl.dataset) == 6


def test_an_empty_class_folder_is_left_out_with_a_warning_naming_it(tmp_path) -> None:
    # it used to drop the class without a word (images warned)
    for split in ("train", "valid"):
        for label in ("neg", "pos"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                (tmp_path / split / label / f"{i}.txt").write_text(f"A {label} review {i}.")
    (tmp_path / "train" / "neutral").mkdir()
    (tmp_path / "train" / "neutral" / "0.text").write_text("A review with another ending.")
    with pytest.warns(ember.EmberWarning, match=r"train: class folder\(s\) \['neutral'\] hold "
                                                r"no \.txt files"):
        data = TextData.from_folder(tmp_path, min_freq=1, bs=4)
    assert data.classes == ["neg", "pos"]


def test_a_validation_folder_without_files_is_an_error_naming_it(tmp_path) -> None:
    # it said "is_valid leaves 8 training and 0 validation items", an argument never given
    for label in ("neg", "pos"):
        (tmp_path / "valid" / label).mkdir(parents=True)
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "train" / label / f"{i}.txt").write_text(f"A {label} review {i}.")
    with pytest.raises(ember.DataError, match=r"no \.txt files in the class folders of "
                                              r".*valid; expected"):
        TextData.from_folder(tmp_path, min_freq=1)


def test_from_folder_with_a_training_folder_but_no_validation_folder(tmp_path) -> None:
    # the IMDB layout: train/ and test/, with loose .txt files beside the class folders
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                (tmp_path / split / label / f"{i}.txt").write_text(f"A {label} review {i}.")
        (tmp_path / split / "urls_pos.txt").write_text("http://example.com/review/1")
    # it used to read train/ and test/ as two classes of the loose files (urls_pos.txt)
    with pytest.raises(ember.DataError, match=r"no validation folder 'valid' .*'test'"):
        TextData.from_folder(tmp_path, min_freq=1)
    data = TextData.from_folder(tmp_path, valid="test", min_freq=1, bs=4)
    assert data.classes == ["neg", "pos"] and len(data.valid_dl.dataset) == 6
    data = TextData.from_folder(tmp_path / "train", min_freq=1, bs=4)  # split by valid_pct
    assert data.classes == ["neg", "pos"]
    vehicles = tmp_path / "vehicles"  # a class that happens to be called "train" still reads
    for label in ("bus", "train"):
        (vehicles / label).mkdir(parents=True)
        for i in range(3):
            (vehicles / label / f"{i}.txt").write_text(f"A {label} ride {i}.")
    assert TextData.from_folder(vehicles, min_freq=1, bs=2).classes == ["bus", "train"]


@pytest.mark.parametrize("extensions", [".md", "md", ["md", ".MD"]])
def test_from_folder_extensions_as_one_string_or_without_the_dot(tmp_path, extensions) -> None:
    # extensions=".md" was read letter by letter ("no ./m/d files"), "md" matched no file, and
    # the error said to expect <name>.txt whatever the extensions
    for split in ("train", "valid"):
        for label in ("neg", "pos"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                (tmp_path / split / label / f"{i}.md").write_text(f"A {label} review {i}.")
    data = TextData.from_folder(tmp_path, extensions=extensions, min_freq=1, bs=4)
    assert len(data.train_dl.dataset) == 6 and len(data.valid_dl.dataset) == 6
    with pytest.raises(ember.DataError, match=r"no \.rst files .*expected .*/<class>/<name>\.rst"):
        TextData.from_folder(tmp_path, extensions="rst", min_freq=1)
    with pytest.raises(ember.DataError, match=r"extensions=\[\] names no file ending"):
        TextData.from_folder(tmp_path, extensions=[], min_freq=1)


def test_hidden_files_in_class_folders_are_not_texts(tmp_path) -> None:
    # a copy on macOS leaves ._<name> resource files beside each text, which are not UTF-8:
    # from_folder used to refuse the folder over them (or, when they decoded, read them as
    # reviews); Jupyter's .ipynb_checkpoints copies inside a class folder were never read
    for label in ("neg", "pos"):
        folder = tmp_path / label
        (folder / ".ipynb_checkpoints").mkdir(parents=True)
        for i in range(4):
            (folder / f"{i}.txt").write_text(f"A {label} review {i}.")
            (folder / f"._{i}.txt").write_bytes(b"\x00\x05\x16\x07\xff\xfe Mac OS X")
        (folder / ".ipynb_checkpoints" / "0-checkpoint.txt").write_text("A copy.")
    data = TextData.from_folder(tmp_path, min_freq=1, bs=4, valid_pct=0.25)
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 8
    assert "copy" not in data.vocab.stoi


def test_from_folder_files_saved_with_a_byte_order_mark(tmp_path) -> None:
    for label in ("neg", "pos"):
        (tmp_path / label).mkdir()
        for i in range(4):
            text = f"Great {label} review {i}."
            (tmp_path / label / f"{i}.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    data = TextData.from_folder(tmp_path, min_freq=1, bs=4)
    assert not any(token.startswith("\ufeff") for token in data.vocab.itos)
    # the first word of every file is the word typed at inference
    assert data.encode(["Great"])[0].tolist() == [[data.vocab.stoi[t] for t in
                                                   ("xxbos", "xxmaj", "great")]]


def test_long_document_is_truncated_and_unknown_words_still_predictable(reviews) -> None:
    texts = list(reviews["text"])
    texts[1] = "endless " * 150_000  # ~1 MB in one review
    data = TextData.from_texts(texts, reviews["label"], max_len=64, bs=16)
    assert max(data.train_dl.dataset.lengths + data.valid_dl.dataset.lengths) <= 64
    ids = data.encode(["qwxz vbnm plokij"])[0]
    assert ids.shape == (1, 4) and ids[0, 1:].tolist() == [0, 0, 0]  # xxbos + 3 xxunk
    with pytest.raises(ember.DataError, match="item #1 is empty"):
        data.encode(["fine", "   "])


def test_a_bad_text_past_the_first_chunk_is_named_by_its_place_among_all_the_texts(
        reviews) -> None:
    # before, predict_batch encoded bs texts at a time, each chunk counting from 0: the 4th
    # text (bs=2) was "item #1"
    data = TextData.from_texts(reviews["text"][:100], reviews["label"][:100], bs=16)
    model = text_classifier(data, emb_size=8, hidden_size=8, n_layers=1)
    with pytest.raises(ember.DataError, match=r"^item #3 is empty"):
        data.predict_batch(model, ["fine", "good", "dull", "   "], bs=2)
    assert len(data.predict_batch(model, ["fine", "good", "dull"], bs=2)) == 3


def test_predict_given_a_list_of_texts_points_to_predict_batch(reviews) -> None:
    # before, it said "item #0 must be a string, got list", not what to do
    data = TextData.from_texts(reviews["text"][:100], reviews["label"][:100], bs=16)
    learn = ember.learner(data, model=text_classifier(data, emb_size=8, hidden_size=8,
                                                      n_layers=1), quiet=True)
    for several in (["a", "b"], ("a", "b")):
        with pytest.raises(ember.DataError, match=r"^predict takes one text, not a "
                                                  r"(list|tuple) of 2; give several to "
                                                  r"predict_batch\(\[\.\.\.\]\)"):
            learn.predict(several)
    assert learn.predict("a fine film") in data.classes
    corpus = LanguageModelData.from_texts(["It is a truth universally acknowledged."] * 40,
                                          bs=4, bptt=8, min_freq=1)
    with pytest.raises(ember.DataError, match=r"^predict takes one text"):
        corpus.predict_one(torch.nn.Linear(1, 1), ["It is", "a truth"])


def test_samplers_bucket_by_length() -> None:
    lengths = torch.randint(1, 200, (1000,)).tolist()
    ember.seed(0)
    order = list(SortishSampler(lengths, bs=50))
    assert sorted(order) == list(range(1000))
    batches = [order[i:i + 50] for i in range(0, 1000, 50)]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / 20
    assert spread < 40  # random batches would spread over ~190 tokens
    ember.seed(0)
    assert list(SortishSampler(lengths, bs=50)) == order  # seeded, reproducible
    assert list(SortishSampler(lengths, bs=50)) != order  # and reshuffled each epoch
    valid = list(SortedSampler(lengths))
    assert [lengths[i] for i in valid] == sorted(lengths, reverse=True)


def test_sortish_sampler_puts_a_full_batch_with_the_longest_item_first() -> None:
    # 10 items, batches of 4, chunks of 8: a tail of 2 random items that may hold the longest
    lengths = [3, 9, 1, 7, 5, 2, 8, 4, 6, 10]
    sampler = SortishSampler(lengths, bs=4, chunk_batches=2)
    ember.seed(0)
    for _ in range(30):
        order = list(sampler)
        assert sorted(order) == list(range(10))
        first, last = order[:4], order[8:]
        assert max(lengths[i] for i in first) == 10  # the longest batch, and a full one, first
        assert max(lengths[i] for i in last) <= min(lengths[i] for i in first)  # short last


def test_state_round_trip_replays_encoding(reviews) -> None:
    data = TextData.from_df(reviews, "text", "label", bs=16)
    rebuilt = TextData.from_state(data.state())
    items = ["A wonderful, WITTY film!!!", "Dull."]
    assert torch.equal(rebuilt.encode(items)[0], data.encode(items)[0])
    assert rebuilt.classes == data.classes and rebuilt.vocab == data.vocab


def test_lm_stream_batches_continue_across_rows() -> None:
    stream = LMStream(torch.arange(1001), bs=4)
    keys = list(LMBatchSampler(stream.row_len, bptt=20, shuffle=False))
    first, second = stream[keys[0]], stream[keys[1]]
    assert first[0].shape == (4, 20)
    assert torch.equal(second[0][:, 0], first[0][:, -1] + 1)  # row r continues
    assert torch.equal(first[1], first[0] + 1)
    ember.seed(0)
    sampler = LMBatchSampler(stream.row_len, bptt=20, shuffle=True, n_tokens=1001)
    lengths = [length for _, _, length in sampler]
    assert len(lengths) == len(sampler) and sum(lengths) == stream.row_len
    assert len(set(lengths)) > 3  # variable BPTT


def test_language_model_data_from_texts_and_df() -> None:
    texts, _, _ = load_rotten_tomatoes()
    data = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16)
    assert data.target_kind == "sequence" and data.n_out == len(data.vocab)
    xb, yb = data.one_batch()
    assert xb.shape[0] == 8 and torch.equal(xb[:, 1:], yb[:, :-1])
    frame = {"review": texts[:300]}
    from_df = LanguageModelData.from_texts(frame, text_col="review", bs=8, bptt=16)
    assert from_df.vocab == data.vocab
    shared = LanguageModelData.from_texts(texts[300:400], bs=4, bptt=8, vocab=data.vocab)
    assert shared.vocab is data.vocab
    assert isinstance(Vocab.from_dict(data.state()["vocab"]), Vocab)


def test_a_corpus_read_line_by_line_keeps_its_blank_lines_out_of_the_stream() -> None:
    # the blank lines between a book's paragraphs were refused ("text #1 is empty")
    texts, _, _ = load_rotten_tomatoes()
    lines = [line for text in texts[:300] for line in (text, "", "   ")]
    data = LanguageModelData.from_texts(lines, bs=8, bptt=16)
    plain = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16)
    assert data.vocab == plain.vocab
    with pytest.raises(ember.DataError, match="the corpus holds no text"):
        LanguageModelData.from_texts(["", " \n"], bs=8, bptt=16)


def test_backwards_reverses_each_text_and_replays_after_reload(reviews) -> None:
    forward = TextData.from_df(reviews, "text", "label", bs=16)
    backward = TextData.from_df(reviews, "text", "label", bs=16, vocab=forward.vocab,
                                backwards=True)
    for split in ("train_dl", "valid_dl"):
        ours, theirs = getattr(backward, split).dataset, getattr(forward, split).dataset
        assert all(torch.equal(a, b.flip(0)) for a, b in zip(ours.ids, theirs.ids))
        assert torch.equal(ours.targets, theirs.targets)
    # the validation order is the same both ways (lengths are), so predictions line up
    assert list(backward.valid_dl.sampler) == list(forward.valid_dl.sampler)
    items = ["A wonderful, WITTY film!!!", "Dull."]
    ids, forward_ids = backward.encode(items)[0], forward.encode(items)[0]
    length = int(forward_ids[1].ne(forward.vocab.pad_id).sum())  # "Dull." is the shorter
    assert ids[1, :length].tolist() == forward_ids[1, :length].flip(0).tolist()
    assert ids[1, length:].eq(backward.vocab.pad_id).all()  # padding stays at the end
    assert backward.decode_inputs(ids) == forward.decode_inputs(forward.encode(items)[0])
    rebuilt = TextData.from_state(backward.state())
    assert rebuilt.backwards and torch.equal(rebuilt.encode(items)[0], ids)


def test_backward_language_model_stream_is_reversed() -> None:
    texts, _, _ = load_rotten_tomatoes()
    forward = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16)
    backward = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16, vocab=forward.vocab,
                                            backwards=True)
    assert torch.equal(backward.train_dl.dataset.ids, forward.train_dl.dataset.ids.flip(0))
    assert torch.equal(backward.valid_dl.dataset.ids, forward.valid_dl.dataset.ids.flip(0))
    ids = backward.encode(["It is a truth"])[0][0]
    assert ids.tolist() == forward.encode(["It is a truth"])[0][0].flip(0).tolist()
    assert backward.decode_targets(ids[None]) == forward.decode_targets(ids.flip(0)[None])
    assert LanguageModelData.from_state(backward.state()).backwards


@pytest.mark.parametrize("backwards", [False, True])
def test_generation_continues_the_prompt_not_a_new_text(backwards) -> None:
    # a prompt is unfinished text: a forward model must not read an end-of-text token after
    # it, nor a backward model a beginning-of-text token before it (it used to write the end
    # of the previous text: "five six three four")
    from ember_text.ulmfit import language_model

    ember.seed(0)
    data = LanguageModelData.from_texts(["one two three four five six"] * 120, bs=8, bptt=12,
                                        min_freq=1, backwards=backwards,
                                        tokenizer=Tokenizer(eos=True))
    learn = ember.learner(data, model=language_model(data, emb_size=16, hidden_size=32,
                                                     n_layers=1), quiet=True)
    learn.fit_one_cycle(4, 3e-2)
    assert learn.validate()["accuracy"] > 0.9  # the model knows the corpus
    if backwards:
        assert learn.predict("three four", n_words=2, temperature=0) == "one two three four"
    else:
        assert learn.predict("three four", n_words=2, temperature=0) == "three four five six"


def test_a_language_model_refuses_probs_and_unknown_options_saying_what_it_takes() -> None:
    from ember_text.ulmfit import language_model

    data = LanguageModelData.from_texts(["one two three four five six"] * 40, bs=4, bptt=8,
                                        min_freq=1)
    learn = ember.learner(data, model=language_model(data, emb_size=8, hidden_size=16,
                                                     n_layers=1), quiet=True)
    with pytest.raises(TypeError, match=r"a language model predicts text .*next-token"):
        learn.predict("one two", n_words=2, probs=True)
    with pytest.raises(TypeError, match=r"unexpected prediction options \['beam'\] for "
                                        r"language_model data; use n_words=, temperature="):
        learn.predict("one two", beam=3)  # was Python's "unexpected keyword argument"
    assert data.prediction_options() == {"n_words": 20, "temperature": 1.0, "top_k": None,
                                         "seed": None, "no_unk": True}
    assert learn.predict("one two", n_words=2, seed=0, probs=False) == learn.predict(
        "one two", n_words=2, seed=0)


# ------------------------------------------------------------------------------ test split
def test_a_test_split_is_processed_like_the_validation_split(reviews, tmp_path) -> None:
    texts, labels = list(reviews["text"]), list(reviews["label"])
    is_valid = [i < 80 for i in range(len(texts))]
    test_texts = [*texts[:80]]
    test_texts[0] = "zzyzx zzyzx appears only in the test texts"  # a word training lacks
    ember.seed(0)
    plain = TextData.from_texts(texts, labels, is_valid=is_valid, min_freq=1, bs=16)
    plain_order = [batch[0].tolist() for batch in plain.train_dl]
    ember.seed(0)
    data = TextData.from_texts(texts, labels, is_valid=is_valid, min_freq=1, bs=16,
                               test=(test_texts, labels[:80]))
    # nothing else changes: vocab from the training texts only, the seeded batch order
    assert data.vocab == plain.vocab and "zzyzx" not in data.vocab
    assert [batch[0].tolist() for batch in data.train_dl] == plain_order
    test_set, valid_set = data.test_dl.dataset, data.valid_dl.dataset
    assert data.test_dl is data.loader("test") and len(test_set) == 80
    assert all(torch.equal(a, b) for a, b in zip(test_set.ids[1:], valid_set.ids[1:]))
    assert torch.equal(test_set.targets, valid_set.targets)  # the training classes
    assert test_set.ids[0][1:3].tolist() == [data.vocab.unk_id] * 2  # unknown words: xxunk
    # batched like the validation loader: same batch size and sampler, longest first, in order
    assert isinstance(data.test_dl.sampler, SortedSampler)
    assert data.test_dl.batch_size == data.valid_dl.batch_size
    order = [test_set.lengths[i] for i in data.test_dl.sampler]
    assert order == sorted(test_set.lengths, reverse=True)
    # a real learner scores it: the same items give the same scores as validation
    same = TextData.from_texts(texts, labels, is_valid=is_valid, min_freq=1, bs=16,
                               test=(texts[:80], labels[:80]))
    learn = ember.learner(same, model=text_classifier(same, emb_size=8, hidden_size=16,
                                                      n_layers=1), quiet=True)
    assert learn.validate("test") == _as_test(learn.validate())
    probabilities, targets = learn.get_preds("test")
    valid_probabilities, valid_targets = learn.get_preds()
    assert probabilities.shape == (80, 2) and torch.equal(targets, valid_targets)
    assert torch.allclose(probabilities, valid_probabilities)
    # row i is test item i, though the loader reads them longest first
    assert torch.equal(targets, same.test_dl.dataset.targets)
    assert torch.equal(targets, torch.tensor([same.classes.index(v) for v in labels[:80]]))
    # the test loader is no part of an export: the loaded model predicts the same
    items = ["A triumph, FUNNY and moving!!!", "Dull."]
    loaded = ember.load(learn.export(tmp_path / "model.ember"))
    assert loaded.predict_batch(items) == learn.predict_batch(items)


def test_test_items_with_bad_texts_or_labels_are_errors_naming_the_item() -> None:
    texts, labels = ["a good film", "a bad film", "fine", "awful"] * 5, ["pos", "neg"] * 10

    def build(test, **options):
        return TextData.from_texts(texts, labels, min_freq=1, test=test, **options)

    with pytest.raises(ember.DataError, match="test item 1 is empty"):
        build((["good", " "], ["pos", "neg"]))
    with pytest.raises(ember.DataError, match=r"test item 0 is missing"):
        build(([None], ["pos"]))
    with pytest.raises(ember.DataError, match=r"the label of test item 1 is missing"):
        build((["good", "bad"], ["pos", None]))
    # a class that training lacks, as validation's is refused against classes=
    with pytest.raises(ember.DataError, match=r"label 'meh' of test item 1 is not among the "
                                              r"classes \['neg', 'pos'\]"):
        build((["good", "so-so"], ["pos", "meh"]))
    with pytest.raises(ember.DataError, match=r"label \['pos', 'neg'\] of test item 0 is not "
                                              r"among the classes"):
        build((["good"], [["pos", "neg"]]))
    with pytest.raises(ember.DataError, match=r"label 'ok' of test item 0 is not among"):
        TextData.from_texts(texts, ["pos|neg", "pos"] * 10, min_freq=1, label_delim="|",
                            test=(["good"], ["pos|ok"]))
    scores = [1.5, 2.5] * 10
    with pytest.raises(ember.DataError, match=r"label of test item 0 is 'high', not a number"):
        TextData.from_texts(texts, scores, min_freq=1, test=(["good"], ["high"]))
    with pytest.raises(ember.DataError, match=r"label of test item 0 is inf"):
        TextData.from_texts(texts, scores, min_freq=1, test=(["good"], [float("inf")]))
    # the form of test=
    with pytest.raises(ember.DataError, match=r"test: 2 texts but 1 labels"):
        build((["good", "bad"], ["pos"]))
    with pytest.raises(ember.DataError, match=r"test= takes a list of texts, not one text"):
        build("a good film")
    with pytest.raises(ember.DataError, match="the test set is empty"):
        build(([], []))
    regression = TextData.from_texts(texts, scores, min_freq=1, test=(["good"], [3]))
    assert regression.test_dl.dataset.targets.tolist() == [3.0]


def test_from_df_takes_a_test_frame() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"review": ["a good film", "a bad film", "fine", "awful"] * 5,
                              "stars": ["pos", "neg"] * 10})
    test_frame = pandas.DataFrame({"review": ["good", "bad", "fine"],
                                   "stars": ["pos", "neg", "pos"]}, index=["t0", "t1", "t2"])
    data = TextData.from_df(frame, "review", "stars", min_freq=1, bs=4, test_df=test_frame)
    assert data.test_dl.dataset.targets.tolist() == [1, 0, 1]
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 20
    as_dict = TextData.from_df(frame, "review", "stars", min_freq=1, bs=4,
                               test_df={"review": ["good"], "stars": ["pos"]})
    assert as_dict.test_dl.dataset.targets.tolist() == [1]
    test_frame.loc["t1", "review"] = ""
    with pytest.raises(ember.DataError, match=r"test row 't1' \(column 'review'\) is empty"):
        TextData.from_df(frame, "review", "stars", min_freq=1, test_df=test_frame)
    test_frame.loc["t1", "review"] = "bad"
    test_frame.loc["t2", "stars"] = "meh"
    with pytest.raises(ember.DataError, match=r"label 'meh' of test row 't2' \(column "
                                              r"'stars'\) is not among the classes"):
        TextData.from_df(frame, "review", "stars", min_freq=1, test_df=test_frame)
    with pytest.raises(ember.DataError, match=r"no column 'review' in test_df"):
        TextData.from_df(frame, "review", "stars", min_freq=1,
                         test_df=test_frame.drop(columns="review"))
    with pytest.raises(ember.DataError, match="as test_df= or as test=, not both"):
        TextData.from_df(frame, "review", "stars", min_freq=1, test_df=test_frame,
                         test=(["good"], ["pos"]))


def _review_folders(root, splits: dict[str, int]) -> None:
    for split, count in splits.items():
        for label in ("neg", "pos"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                (root / split / label / f"{i}.txt").write_text(f"A {label} {split} review {i}.")


def test_from_folder_reads_a_test_folder_beside_train_and_valid(tmp_path) -> None:
    # a test/ folder beside train/ and valid/ was ignored: learn.validate("test") said
    # "this Data has no 'test' loader"
    _review_folders(tmp_path, {"train": 6, "valid": 2, "test": 3})
    (tmp_path / "test" / "urls_pos.txt").write_text("http://example.com/1")  # IMDB's loose file
    data = TextData.from_folder(tmp_path, min_freq=1, bs=4)
    assert [len(dl.dataset) for dl in data.loaders] == [12, 4, 6]
    assert data.test_dl.dataset.targets.tolist() == [0, 0, 0, 1, 1, 1]
    learn = ember.learner(data, quiet=True)
    assert set(learn.validate("test")) >= {"test_loss", "test_accuracy"}
    assert learn.get_preds("test")[0].shape == (6, 2)
    assert TextData.from_folder(tmp_path, min_freq=1, test=None).test_dl is None
    assert TextData.from_folder(tmp_path, min_freq=1, test="holdout").test_dl is None
    # IMDB's layout read with valid="test": the test folder is the validation one
    assert TextData.from_folder(tmp_path, valid="test", min_freq=1).test_dl is None
    # a test class that training lacks is an error naming the file
    (tmp_path / "test" / "meh").mkdir()
    (tmp_path / "test" / "meh" / "0.txt").write_text("So-so.")
    with pytest.raises(ember.DataError, match=r"label 'meh' of file .*0\.txt is not among"):
        TextData.from_folder(tmp_path, min_freq=1)
    shutil.rmtree(tmp_path / "test" / "meh")
    (tmp_path / "test" / "neg" / "1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ember.DataError, match=r"file .*test/neg/1\.txt is not valid UTF-8"):
        TextData.from_folder(tmp_path, min_freq=1)
    for folder in ("neg", "pos"):
        shutil.rmtree(tmp_path / "test" / folder)
    (tmp_path / "test" / "pos").mkdir()  # class folders without texts
    with pytest.raises(ember.DataError, match=r"no \.txt files in the class folders of "
                                              r".*test; .*test=None"):
        TextData.from_folder(tmp_path, min_freq=1)


def test_hidden_folders_are_not_classes_of_a_split_text_folder(tmp_path) -> None:
    # Jupyter's .ipynb_checkpoints/ (a copy of a text edited in it) beside the class folders
    # was read as a class: in test/ an error, "the label '.ipynb_checkpoints' ... is not
    # among the classes", in train/ a class of its own
    _review_folders(tmp_path, {"train": 6, "valid": 2, "test": 3})
    for split in ("train", "test"):
        hidden = tmp_path / split / ".ipynb_checkpoints"
        hidden.mkdir()
        (hidden / "0-checkpoint.txt").write_text("A fine film.")
    data = TextData.from_folder(tmp_path, min_freq=1, bs=4)
    assert data.classes == ["neg", "pos"]
    assert [len(dl.dataset) for dl in data.loaders] == [12, 4, 6]


def test_test_texts_are_cached_apart_from_the_training_texts(tmp_path) -> None:
    texts, labels = ["a good film", "a bad film", "fine", "awful"] * 5, ["pos", "neg"] * 10
    test = (["a good test film", "an awful test"], ["pos", "neg"])
    cache = tmp_path / "cache"
    TextData.from_texts(texts, labels, min_freq=1, cache_dir=cache)  # without test items
    assert len(list(cache.iterdir())) == 1
    cached = TextData.from_texts(texts, labels, min_freq=1, cache_dir=cache, test=test)
    assert len(list(cache.iterdir())) == 2  # the training texts' cache reused, the test's new
    again = TextData.from_texts(texts, labels, min_freq=1, cache_dir=cache, test=test)
    fresh = TextData.from_texts(texts, labels, min_freq=1, test=test)
    for data in (cached, again):
        assert data.vocab == fresh.vocab
        assert all(torch.equal(a, b) for a, b in zip(data.test_dl.dataset.ids,
                                                     fresh.test_dl.dataset.ids))
    # as inference reads them: the training vocab, words it lacks as xxunk
    assert [ids.tolist() for ids in fresh.test_dl.dataset.ids] == [
        ids.tolist() for ids in fresh.numericalize(test[0])]


def test_language_model_test_texts_make_a_test_stream_read_like_validation(tmp_path) -> None:
    from ember_text.ulmfit import language_model

    texts, _, _ = load_rotten_tomatoes()
    held_out = texts[300:340]
    ember.seed(0)
    plain = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16)
    plain_keys = list(plain.train_dl.sampler)
    ember.seed(0)
    data = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16,
                                        test=["", *held_out, "zzyzx qqvv"])
    # nothing else changes: the vocab of the training texts, the seeded stream and batches
    assert data.vocab == plain.vocab and "zzyzx" not in data.vocab
    assert list(data.train_dl.sampler) == plain_keys
    assert torch.equal(data.train_dl.dataset.ids, plain.train_dl.dataset.ids)
    # the test stream is the held-out texts (blank ones skipped) with the training vocab,
    # in fixed bptt chunks from offset 0, like the validation stream
    stream = data.test_dl.dataset.ids
    expected = [i for text in [*held_out, "zzyzx qqvv"]
                for i in data.vocab.numericalize(data.tokenizer(text))]
    assert stream.tolist() == expected and stream[-2:].tolist() == [data.vocab.unk_id] * 2
    keys = list(data.test_dl.sampler)
    assert keys == list(data.test_dl.sampler) and {offset for offset, _, _ in keys} == {0}
    assert {length for _, _, length in keys[:-1]} == {16}
    learn = ember.learner(data, model=language_model(data, emb_size=8, hidden_size=16,
                                                     n_layers=1), quiet=True)
    scores = learn.validate("test")
    assert set(scores) >= {"test_loss", "test_perplexity"}
    predictions, targets = learn.get_preds("test")
    assert predictions.shape[-1] == len(data.vocab) and targets.numel() > 0
    loaded = ember.load(learn.export(tmp_path / "lm.ember"))  # the test stream is not in it
    assert loaded.predict("The film", n_words=4, temperature=0) == learn.predict(
        "The film", n_words=4, temperature=0)
    # the same texts as validation and as test give the same scores
    valid_texts = [texts[i] for i in ember.split_indices(300, 0.1, 0)[1]]
    same = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16, vocab=data.vocab,
                                        test=valid_texts)
    learn = ember.learner(same, model=learn.model, quiet=True)
    assert learn.validate("test") == _as_test(learn.validate())
    backward = LanguageModelData.from_texts(texts[:300], bs=8, bptt=16, vocab=data.vocab,
                                            backwards=True, test=held_out)
    assert torch.equal(backward.test_dl.dataset.ids,
                       LanguageModelData.from_texts(texts[:300], bs=8, bptt=16,
                                                    vocab=data.vocab, test=held_out
                                                    ).test_dl.dataset.ids.flip(0))


def test_language_model_bad_texts_are_named_by_their_place_in_what_was_given() -> None:
    corpus = ["one two three four five"] * 20
    with pytest.raises(ember.DataError, match=r"test item 2 is missing"):
        LanguageModelData.from_texts(corpus, bs=2, bptt=4, min_freq=1,
                                     test=["one two", "", None])
    # a training text is named by its place in the texts given, blank lines counted
    # (it said "text #1", the place among the texts left after the blank ones)
    with pytest.raises(ember.DataError, match=r"text #2 is missing"):
        LanguageModelData.from_texts(["one two", "", None, *corpus], bs=2, bptt=4, min_freq=1)
    with pytest.raises(ember.DataError, match=r"test= holds no text"):
        LanguageModelData.from_texts(corpus, bs=2, bptt=4, min_freq=1, test=["", " "])
    with pytest.raises(ember.DataError, match=r"test= takes a list of texts"):
        LanguageModelData.from_texts(corpus, bs=2, bptt=4, min_freq=1, test="one two three")
    with pytest.raises(ember.DataError, match=r"the test texts: a stream of 2 tokens"):
        LanguageModelData.from_texts(corpus, bs=2, bptt=4, min_freq=1, test=["one"])
    frame = {"body": corpus}
    data = LanguageModelData.from_texts(frame, "body", bs=2, bptt=4, min_freq=1,
                                        test={"body": corpus[:4]})
    assert len(data.test_dl.dataset.ids) == 4 * 6
    listed = LanguageModelData.from_texts(frame, "body", bs=2, bptt=4, min_freq=1,
                                          test=corpus[:4])  # a frame's column, test as a list
    assert torch.equal(listed.test_dl.dataset.ids, data.test_dl.dataset.ids)
    with pytest.raises(ember.DataError, match=r"no column 'body' in test"):
        LanguageModelData.from_texts(frame, "body", bs=2, bptt=4, min_freq=1,
                                     test={"text": corpus[:4]})


def test_a_validation_class_that_training_lacks_is_refused_when_the_split_is_given(tmp_path
                                                                                   ) -> None:
    # it became a class of its own, one the model could never learn (vision refuses it)
    texts, labels = ["good film", "bad film", "fine film", "odd film"], ["pos", "neg", "pos", "meh"]
    flags = [False, False, True, True]
    with pytest.raises(ember.DataError, match=r"label 'meh' of text #3 \(validation\) never "
                                              r"occurs in training.*classes="):
        TextData.from_texts(texts, labels, is_valid=flags, min_freq=1)
    kept = TextData.from_texts(texts, labels, is_valid=flags, min_freq=1,
                               classes=["meh", "neg", "pos"])
    assert kept.classes == ["meh", "neg", "pos"]  # classes= keeps it on purpose
    with pytest.raises(ember.DataError, match=r"'c' of text #3 .validation. never occurs"):
        TextData.from_texts(texts, ["a b", "b", "b a", "a c"], is_valid=flags, min_freq=1,
                            label_delim=" ")
    for split, label, name in (("train", "pos", "1"), ("train", "neg", "2"),
                               ("valid", "pos", "3"), ("valid", "meh", "4")):
        (tmp_path / split / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / split / label / f"{name}.txt").write_text("a film")
    with pytest.raises(ember.DataError, match=r"label 'meh' of file .*4.txt \(validation\)"):
        TextData.from_folder(tmp_path, min_freq=1)


def test_language_model_test_texts_may_be_a_frames_column_beside_a_frame() -> None:
    # test=frame["body"] (a pandas Series) beside a frame read by text_col was read as a frame
    # (a Series has keys), and refused: "no column 'body' in test; the columns are [0, 1, ...]"
    pandas = pytest.importorskip("pandas")
    corpus = ["one two three four five"] * 20
    frame, test = pandas.DataFrame({"body": corpus}), pandas.DataFrame({"body": corpus[:4]})
    read = LanguageModelData.from_texts(frame, "body", bs=2, bptt=4, min_freq=1, test=test)
    column = LanguageModelData.from_texts(frame, "body", bs=2, bptt=4, min_freq=1,
                                          test=test["body"])
    assert torch.equal(column.test_dl.dataset.ids, read.test_dl.dataset.ids)
    series = LanguageModelData.from_texts(frame["body"], "body", bs=2, bptt=4, min_freq=1)
    assert torch.equal(series.valid_dl.dataset.ids, column.valid_dl.dataset.ids)


def _as_test(scores: dict[str, float]) -> dict[str, float]:
    """Validation scores named as ``validate("test")`` names the same scores on a test set."""
    return {("test_loss" if name == "valid_loss" else f"test_{name}"): value
            for name, value in scores.items()}


def _check_unlabelled_test(data, test_texts) -> None:
    """Batches of ids alone, predictions for every text in the order given (though the
    loader reads them longest first), targets None, validate("test") refused."""
    assert data.test_labelled is False and len(data.test_dl.dataset) == len(test_texts)
    assert all(len(batch) == 1 for batch in data.test_dl)
    lengths = data.test_dl.dataset.lengths
    assert list(data.test_dl.sampler) != list(range(len(lengths)))  # read longest first
    learn = ember.learner(data, model=text_classifier(data, emb_size=8, hidden_size=16,
                                                      n_layers=1), quiet=True, device="cpu")
    probabilities, targets = learn.get_preds("test")
    assert targets is None and probabilities.shape == (len(test_texts), len(data.classes))
    expected = learn.predict_batch(test_texts, probs=True)
    assert torch.allclose(probabilities, torch.tensor(
        [list(p.probabilities.values()) for p in expected]), atol=1e-5)
    with pytest.raises(ember.DataError, match=r"the test set has no labels.*get_preds"):
        learn.validate("test")


def test_texts_alone_make_a_test_set_without_labels(reviews) -> None:
    # a competition's test texts have no labels: test= took only (texts, labels) pairs
    texts, labels = list(reviews["text"]), list(reviews["label"])
    test_texts = ["Dull.", *texts[:9], "A long, winding, FUNNY and moving film " * 3]
    data = TextData.from_texts(texts[40:], labels[40:], min_freq=1, bs=4, test=test_texts)
    _check_unlabelled_test(data, test_texts)
    # two texts are two texts, in a list as in a tuple (a tuple of two texts was an error
    # while vision read a tuple of two paths as two images); an (texts, labels) pair stays
    # labelled
    for two in (["good", "bad"], ("a good film", "pos")):
        two_texts = TextData.from_texts(texts, labels, min_freq=1, test=two)
        assert two_texts.test_labelled is False and len(two_texts.test_dl.dataset) == 2
    labelled = TextData.from_texts(texts, labels, min_freq=1, test=(texts[:4], labels[:4]))
    assert labelled.test_labelled is True and len(next(iter(labelled.test_dl))) == 2
    with pytest.raises(ember.DataError, match="test item 1 is empty"):
        TextData.from_texts(texts, labels, min_freq=1, test=["good", " "])


def test_show_batch_and_show_results_of_a_test_set_without_labels(reviews) -> None:
    # show_batch indexed a target the batch does not hold; show_results took the inputs for
    # targets
    texts, labels = list(reviews["text"]), list(reviews["label"])
    data = TextData.from_texts(texts[40:], labels[40:], min_freq=1, bs=4,
                               test=["Dull.", "A moving film.", "Fine."])
    rows = data.show_batch(3, split="test")
    assert len(rows) == 3 and all(target is None for _, target in rows)
    learn = ember.learner(data, quiet=True)
    with pytest.raises(ember.DataError, match="test set has no labels"):
        learn.show_results(split="test")


def test_a_test_df_that_is_no_frame_is_an_error_saying_what_to_give() -> None:
    # a list was a raw AttributeError ("no attribute 'keys'"); a Series read its index as
    # the columns ("no column 'text' in test_df; the columns are [0, 1]")
    pandas = pytest.importorskip("pandas")
    frame = {"text": ["good film", "bad film"] * 6, "label": ["a", "b"] * 6}
    for test_df in (["fine film", "awful"], pandas.Series(["fine film", "awful"])):
        with pytest.raises(ember.DataError, match=r"test_df must be a data frame \(or a dict "
                                                  r"of lists\) with a column 'text'"):
            TextData.from_df(frame, min_freq=1, test_df=test_df)
    with pytest.raises(ember.DataError, match=r"^df must be a data frame"):
        TextData.from_df(frame["text"], min_freq=1)


def test_a_test_frame_without_the_label_column_gives_predictions() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"review": ["a good film", "a bad film", "fine", "awful"] * 5,
                              "stars": ["pos", "neg"] * 10})
    test_frame = pandas.DataFrame({"review": ["good", "a bad bad film", "fine"]},
                                  index=["t0", "t1", "t2"])
    data = TextData.from_df(frame, "review", "stars", min_freq=1, bs=4, test_df=test_frame)
    _check_unlabelled_test(data, list(test_frame["review"]))
    test_frame.loc["t1", "review"] = ""
    with pytest.raises(ember.DataError, match=r"test row 't1' \(column 'review'\) is empty"):
        TextData.from_df(frame, "review", "stars", min_freq=1, test_df=test_frame)


def test_a_test_folder_of_loose_files_is_a_test_set_without_labels(tmp_path) -> None:
    # bare files without class folders were left out with a warning
    _review_folders(tmp_path, {"train": 6, "valid": 2})
    (tmp_path / "test").mkdir()
    test_texts = ["Dull.", "A long, winding, funny and moving review " * 2, "Fine."]
    for index, text in enumerate(test_texts):
        (tmp_path / "test" / f"{index}.txt").write_text(text)
    (tmp_path / "test" / "notes.md").write_text("not a .txt file")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ember.EmberWarning)
        data = TextData.from_folder(tmp_path, min_freq=1, bs=4)
    _check_unlabelled_test(data, test_texts)
    assert TextData.from_folder(tmp_path, min_freq=1, test=None).test_dl is None
    (tmp_path / "test" / "1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ember.DataError, match=r"file .*test/1\.txt is not valid UTF-8"):
        TextData.from_folder(tmp_path, min_freq=1)


def test_one_string_given_as_the_texts_is_refused_not_read_character_by_character() -> None:
    # a whole book as one string was read as one text per character: a vocab of letters
    book = "It is a truth universally acknowledged. " * 50
    with pytest.raises(ember.DataError, match=r"texts= takes a list of texts, not one text"):
        LanguageModelData.from_texts(book, bs=2, bptt=4, min_freq=1)
    with pytest.raises(ember.DataError, match=r"texts= takes a list of texts, not one text"):
        LanguageModelData.from_texts(book.encode(), bs=2, bptt=4, min_freq=1)
    with pytest.raises(ember.DataError, match=r"texts= takes a list of texts, not one text"):
        TextData.from_texts("abab", ["x", "y", "x", "y"], min_freq=1)
    # the way out the message gives works
    data = LanguageModelData.from_texts(book.split(". "), bs=2, bptt=4, min_freq=1)
    assert "truth" in data.vocab.itos


def test_from_folder_reads_files_in_another_encoding_and_says_how(tmp_path) -> None:
    # a latin-1 corpus was refused with "decode it ... e.g. data.decode('latin-1')", advice a
    # user of from_folder cannot follow: the files are read by from_folder, not by them
    for split in ("train", "valid"):
        for label, word in (("neg", "fade"), ("pos", "café")):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(4):
                (folder / f"{i}.txt").write_bytes(f"Un {word} numéro {i}".encode("latin-1"))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "0.txt").write_bytes("Très café".encode("latin-1"))
    with pytest.raises(ember.DataError, match=r"file .*0\.txt is not valid UTF-8 text .*"
                                              r"encoding='latin-1'"):
        TextData.from_folder(tmp_path, min_freq=1)
    data = TextData.from_folder(tmp_path, min_freq=1, encoding="latin-1")
    assert "café" in data.vocab.itos and "numéro" in data.vocab.itos
    assert data.test_labelled is False and len(data.test_dl.dataset) == 1
    with pytest.raises(ember.DataError, match=r"encoding='klingon' is not a text encoding"):
        TextData.from_folder(tmp_path, encoding="klingon")


def test_language_model_data_shows_a_batch_as_input_and_next_token_text(capsys) -> None:
    texts, _, _ = load_rotten_tomatoes()
    data = LanguageModelData.from_texts(texts[:100], bs=8, bptt=12)
    xb, yb = data.one_batch("valid")
    rows = data.show_batch(3, split="valid")
    assert len(rows) == 3
    for (text, target), x, y in zip(rows, xb, yb):
        inputs, targets = data.vocab.decode(x.tolist()), data.vocab.decode(y.tolist())
        assert text == data.tokenizer.detokenize(inputs)
        assert target == data.tokenizer.detokenize(targets)
        assert inputs[1:] == targets[:-1]  # the target is the input one token on
    printed = capsys.readouterr().out
    assert printed.count("input:  ") == 3 and rows[0][1][:100] in printed


def test_a_training_stream_too_short_for_the_batch_rows_names_the_training_texts() -> None:
    with pytest.raises(ember.DataError, match=r"the training texts: a stream of .* 64 rows"):
        LanguageModelData.from_texts(["one two three"] * 10, bs=64, bptt=4, valid_pct=0.2)


@pytest.mark.parametrize("options, message", [
    ({"max_vocab": 5}, r"max_vocab=5 leaves no room for the vocab's 9 special tokens"),
    ({"min_freq": 0}, r"min_freq \(the times a token is seen to be kept\) must be a whole "
                      r"number of at least 1, got 0"),
    ({"min_freq": 1.5}, r"min_freq \(the times a token is seen to be kept\) must be a whole "
                        r"number of at least 1, got 1\.5"),
])
def test_vocab_size_options_are_refused_by_their_own_name_before_tokenising(options,
                                                                            message) -> None:
    # max_vocab=5 was refused as "max_size 5 ...", a name the user never gave, and only
    # after every text was tokenised
    calls = []

    class Counting(Tokenizer):
        def tokenize_many(self, *args, **kwargs):
            calls.append(1)
            return super().tokenize_many(*args, **kwargs)

    for build in (lambda: TextData.from_texts(["good film", "bad film"] * 10, ["pos", "neg"] * 10,
                                              tokenizer=Counting(), **options),
                  lambda: LanguageModelData.from_texts(["one two three"] * 20,
                                                       tokenizer=Counting(), **options)):
        with pytest.raises(ember.DataError, match=message):
            build()
    assert calls == []


def test_text_and_seq2seq_count_options_are_refused_in_one_message_shape() -> None:
    # text's max_len said "max_len (the tokens kept ...) must be a whole number of at least 1",
    # seq2seq's beam "beam must be a whole number of at least 1 (hypotheses kept)", and
    # BLEU's max_order "must be a whole number, 1 or more (...)", a plain ValueError
    from ember_text.seq2seq import Seq2SeqData
    from ember_text.seq2seq.metrics import corpus_bleu

    shape = r"^{} \(.+\) must be a whole number of at least 1, got {}$"
    with pytest.raises(ember.DataError, match=shape.format("max_len", "0")):
        TextData.from_texts(["good", "bad"] * 4, ["p", "n"] * 4, max_len=0)
    with pytest.raises(ember.DataError, match=shape.format("max_order", "0")):
        corpus_bleu([[["a"]]], [["a"]], max_order=0)
    ember.seed(0)
    learn = ember.learner(Seq2SeqData.from_pairs([("un", "1"), ("deux", "2")] * 10, bs=4),
                          quiet=True)
    with pytest.raises(ember.DataError, match=shape.format("beam", r"2\.5")):
        learn.predict("un", beam=2.5)


def test_predictions_write_no_tokenisation_cache(tmp_path, monkeypatch) -> None:
    # with EMBER_TEXT_CACHE set (the README's way to cache a corpus), every predict, generated
    # text and served request wrote one more cache file: a server filled its disk
    from ember_text.ulmfit import language_model

    monkeypatch.setenv("EMBER_TEXT_CACHE", str(tmp_path))
    texts = [f"film {i} was {'good' if i % 2 else 'bad'}" for i in range(40)]
    data = TextData.from_texts(texts, [text.split()[-1] for text in texts], min_freq=1, bs=8)
    corpus = LanguageModelData.from_texts(texts * 3, min_freq=1, bs=4, bptt=5)
    cached = sorted(tmp_path.iterdir())
    assert len(cached) == 2  # the training corpora are cached
    classifier = ember.learner(data, model=text_classifier(
        data, emb_size=8, hidden_size=8, n_layers=1), quiet=True)
    generator = ember.learner(corpus, model=language_model(
        corpus, emb_size=8, hidden_size=8, n_layers=1), quiet=True)
    for index in range(3):
        classifier.predict(f"film {index} was fine")
        classifier.predict_batch([f"film {index}", "good"])
        generator.predict(f"film {index}", n_words=2)
    assert sorted(tmp_path.iterdir()) == cached


def test_a_random_split_that_puts_a_whole_class_in_validation_warns_and_keeps_it() -> None:
    # the class was kept in silence (an output the model never trains, its texts counted as
    # errors), while a given split refuses it: one rule with vision and tabular
    _, valid = ember.split_indices(20, 0.2, seed=0)
    labels = ["pos", "neg"] * 10
    for index in valid[:2]:
        labels[index] = "meh"
    texts = [f"film number {i}" for i in range(20)]
    with pytest.warns(ember.EmberWarning, match=r"every text of class 'meh' \(2 texts\) in "
                                                r"validation.*seed=.*valid_pct="):
        data = TextData.from_texts(texts, labels, valid_pct=0.2, seed=0, min_freq=1)
    assert data.classes == ["meh", "neg", "pos"]
    tags = ["a b", "b"] * 10
    tags[valid[0]] = "a c"  # multi-label: class by class
    with pytest.warns(ember.EmberWarning, match=r"class 'c' \(1 text\)"):
        TextData.from_texts(texts, tags, valid_pct=0.2, seed=0, min_freq=1, label_delim=" ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a split that leaves every class in training is quiet
        TextData.from_texts(texts, ["pos", "neg"] * 10, valid_pct=0.2, seed=0, min_freq=1)
