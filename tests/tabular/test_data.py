"""TabularData: the task from the target, splits, batches, inference-side encoding, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import ember
from ember_tabular import TabularData, items_to_frame
from ember_tabular.datasets import sample_path


def test_string_target_is_classification_with_sorted_classes(lending: pd.DataFrame) -> None:
    data = TabularData.from_df(lending, "Class", verbose=False)
    assert data.target_kind == "single_label" and data.classes == ["bad", "good"]
    cats, conts, target = data.one_batch()
    assert cats.dtype == torch.int64 and conts.dtype == torch.float32
    assert target.dtype == torch.int64 and set(target.tolist()) <= {0, 1}
    assert cats.shape[1] == len(data.processor.cat_columns)
    assert conts.shape[1] == len(data.processor.cont_columns)


def test_float_target_with_log_is_regression_on_log(diamonds: pd.DataFrame) -> None:
    data = TabularData.from_df(diamonds, "price", log_target=True, verbose=False)
    assert data.target_kind == "regression" and data.n_out == 1
    targets = data.valid_dl.dataset.targets
    valid_prices = diamonds["price"].to_numpy()[ember.split_indices(len(diamonds))[1]]
    assert np.allclose(targets.numpy(), np.log(valid_prices), atol=1e-5)
    assert data.decode_targets(targets[:3]) == pytest.approx(valid_prices[:3].tolist(), rel=1e-5)


def test_integer_target_kind_depends_on_cardinality(diamonds: pd.DataFrame) -> None:
    assert TabularData.from_df(diamonds, "price", verbose=False).target_kind == "regression"
    few = diamonds.assign(stars=diamonds["price"] % 3)
    data = TabularData.from_df(few, "stars", cont_names=["carat"], cat_names=[], verbose=False)
    assert data.target_kind == "single_label" and data.classes == [0, 1, 2]
    forced = TabularData.from_df(few, "stars", target_kind="regression", verbose=False)
    assert forced.target_kind == "regression"


def test_bool_and_category_targets_are_classification(diamonds: pd.DataFrame) -> None:
    expensive = diamonds.assign(expensive=diamonds["price"] > 3000)
    data = TabularData.from_df(expensive, "expensive", verbose=False)
    assert data.classes == [False, True]
    by_cut = TabularData.from_df(diamonds, "cut", verbose=False)
    assert by_cut.classes == ["Fair", "Good", "Very Good", "Premium", "Ideal"]  # ordered


def test_several_targets_are_multi_target_regression(diamonds: pd.DataFrame) -> None:
    data = TabularData.from_df(diamonds, ["x", "y"], verbose=False)
    assert data.target_kind == "regression" and data.n_out == 2
    assert data.one_batch()[-1].shape[1] == 2
    assert "x" not in data.processor.cont_names


def test_inferred_kinds_are_printed(diamonds: pd.DataFrame, capsys: pytest.CaptureFixture
                                    ) -> None:
    TabularData.from_df(diamonds, "price")
    printed = capsys.readouterr().out
    assert "categorical (3): cut (5 levels, ordered)" in printed
    assert "continuous (6): carat, depth, table, x, y, z" in printed
    TabularData.from_df(diamonds, "price", cat_names=["cut"], cont_names=["carat"],
                        date_names=[])
    assert capsys.readouterr().out == ""  # nothing inferred, nothing printed


def test_split_is_seeded_and_valid_col_is_honoured(diamonds: pd.DataFrame) -> None:
    first = TabularData.from_df(diamonds, "price", seed=3, verbose=False)
    second = TabularData.from_df(diamonds, "price", seed=3, verbose=False)
    assert torch.equal(first.valid_dl.dataset.targets, second.valid_dl.dataset.targets)
    flagged = diamonds.assign(is_valid=np.arange(len(diamonds)) >= 4000)
    data = TabularData.from_df(flagged, "price", valid_col="is_valid", verbose=False)
    assert len(data.valid_dl.dataset) == 1000 and "is_valid" not in data.processor.input_names


def test_a_series_given_for_the_target_or_valid_col_asks_for_a_column_name(
        diamonds: pd.DataFrame) -> None:
    # as scikit-learn takes y: pandas' "unhashable type: 'Series'" named neither argument
    frame = diamonds.head(200)
    flags = pd.Series(np.arange(200) >= 150, name="is_valid")
    with pytest.raises(ember.DataError, match=r"valid_col takes the name of a column of the "
                                              r"frame, not a Series.*df.assign\(is_valid="):
        TabularData.from_df(frame, "price", valid_col=flags, verbose=False)
    with pytest.raises(ember.DataError, match=r"target takes the name of a column .*"
                                              r"target='price'"):
        TabularData.from_df(frame.drop(columns="price"), frame["price"], verbose=False)


def test_processors_are_fitted_on_training_rows(diamonds: pd.DataFrame) -> None:
    flagged = diamonds.assign(is_valid=np.arange(len(diamonds)) >= 4000)
    data = TabularData.from_df(flagged, "price", valid_col="is_valid", verbose=False)
    assert data.processor.means["carat"] == pytest.approx(diamonds["carat"][:4000].mean())


def test_pandas3_str_and_object_columns_give_identical_batches(lending: pd.DataFrame) -> None:
    as_object = lending.astype({name: object for name in lending.columns
                                if pd.api.types.is_string_dtype(lending[name].dtype)})
    left = TabularData.from_df(lending, "Class", verbose=False).valid_dl.dataset
    right = TabularData.from_df(as_object, "Class", verbose=False).valid_dl.dataset
    assert torch.equal(left.cats, right.cats) and torch.equal(left.conts, right.conts)


def test_from_csv_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch) -> None:
    # "~/loans.csv.gz" was read as a file in a folder named "~": "no CSV file at ~/..."
    (tmp_path / "loans.csv.gz").write_bytes(sample_path("lending_club").read_bytes())
    monkeypatch.setenv("HOME", str(tmp_path))
    data = TabularData.from_csv("~/loans.csv.gz", "Class", verbose=False)
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 5000


def test_from_csv_reads_the_file() -> None:
    data = TabularData.from_csv(sample_path("lending_club"), "Class", verbose=False)
    assert len(data.train_dl.dataset) + len(data.valid_dl.dataset) == 5000
    with pytest.raises(ember.DataError, match="no CSV file"):
        TabularData.from_csv("/nonexistent.csv", "Class")


def test_test_frame_uses_training_statistics(diamonds: pd.DataFrame) -> None:
    data = TabularData.from_df(diamonds.iloc[:4000], "price", test_df=diamonds.iloc[4000:],
                               verbose=False)
    assert len(data.test_dl.dataset) == 1000


def test_encode_accepts_dicts_series_and_frames(diamonds: pd.DataFrame) -> None:
    data = TabularData.from_df(diamonds, "price", verbose=False)
    rows = diamonds.iloc[:3]
    from_frame = data.encode([rows])
    from_dicts = data.encode(rows.to_dict("records"))
    from_series = data.encode([row for _, row in rows.iterrows()])
    for other in (from_dicts, from_series):
        assert torch.equal(from_frame[0], other[0]) and torch.equal(from_frame[1], other[1])
    assert len(items_to_frame([rows, {"carat": 1.0}])) == 4


def test_state_rebuilds_the_same_encoding(diamonds: pd.DataFrame) -> None:
    data = TabularData.from_df(diamonds, "price", log_target=True, verbose=False)
    again = TabularData.from_state(json.loads(json.dumps(data.state())))
    rows = [diamonds.iloc[:50]]
    assert all(torch.equal(a, b) for a, b in zip(data.encode(rows), again.encode(rows)))
    assert again.log_target and again.target_names == ["price"]


@pytest.mark.parametrize(("frame_change", "options", "message"), [
    (lambda f: f.iloc[:0], {}, "empty"),
    (lambda f: f.assign(one="x"), {"target": "one"}, "single class"),
    (lambda f: f.assign(price=f["price"].where(f.index != 7)), {}, "missing in 1 row"),
    (lambda f: f.assign(price=f["price"] - 1000), {"log_target": True}, "positive targets"),
    (lambda f: f, {"target": "nope"}, r"\['nope'\] not in the frame"),
    (lambda f: f, {"cont_names": ["weight"]}, "'weight' is not in the frame"),
    (lambda f: f.assign(carat=f["carat"].astype(object).where(f.index != 5, "heavy")),
     {"cont_names": ["carat"]}, "column 'carat', row 5: 'heavy' is not a number"),
])
def test_bad_frames_get_clear_errors(diamonds: pd.DataFrame, frame_change, options, message
                                     ) -> None:
    options = {"target": "price", "verbose": False, **options}
    with pytest.raises(ember.DataError, match=message):
        TabularData.from_df(frame_change(diamonds), **options)


def test_unknown_item_type_is_reported() -> None:
    with pytest.raises(ember.DataError, match="item 1 is a list"):
        items_to_frame([{"a": 1}, [1, 2]])


def test_a_row_without_an_input_column_is_refused_beside_rows_that_have_it(
        diamonds_learner: ember.Learner, diamonds: pd.DataFrame) -> None:
    # before, a dict row missing a column was predicted when another row of the batch had the
    # column (building the frame filled the gap with NaN, read as "unknown"); alone, the same
    # row was refused. An ember serve client that forgot a field got an answer, not a 422
    row = diamonds.drop(columns="price").iloc[0].to_dict()
    short = {name: value for name, value in row.items() if name != "cut"}
    for items in ([row, short], [short]):
        with pytest.raises(ember.DataError, match=r"'cut'"):
            diamonds_learner.predict_batch(items)
    with pytest.raises(ember.DataError, match=r"^item 1 has no column 'cut'"):
        diamonds_learner.predict_batch([row, short, row])
    unknown = dict(row, cut=None)  # null is how a row says a value is unknown
    assert len(diamonds_learner.predict_batch([row, unknown, dict(row, extra=1)])) == 3


def test_no_rows_give_no_predictions_as_in_every_domain(
        diamonds_learner: ember.Learner, diamonds: pd.DataFrame) -> None:
    # predict_batch([]) raised "no rows to predict on" while a frame of no rows gave [], and
    # vision, text and seq2seq give [] for []: a batch of nothing has nothing to predict
    no_rows = diamonds.drop(columns="price").iloc[:0]
    assert diamonds_learner.predict_batch([]) == []
    assert diamonds_learner.predict_batch(()) == []
    assert diamonds_learner.predict_batch(no_rows) == diamonds_learner.predict_batch([no_rows])
    assert diamonds_learner.predict_batch(no_rows) == []
    with pytest.raises(TypeError, match="probs=True"):  # the options are still checked
        diamonds_learner.predict_batch([], probs=True)  # a regression has no probabilities


@pytest.mark.parametrize(("label", "message"), [
    ("bad_debt", r"^test_df: target 'Class', row 4: 'bad_debt' is not one of the classes "
                 r"\['bad', 'good'\]"),
    # a missing label is mended by dropping it, not by training on every class
    (None, r"^test_df: target 'Class', row 4: the label is missing \(1 such row\(s\)\); drop "
           r"these rows: df.dropna\(subset=\['Class'\]\)$"),
])
def test_test_frame_with_a_class_unseen_in_training_is_reported(lending: pd.DataFrame,
                                                               label, message) -> None:
    # the test frame's labels were coded -1 silently; the loss then failed with "label -1 is
    # out of range ... Size the model's head", which names neither the row nor the cause
    test = lending.iloc[:10].astype({"Class": object})
    test.loc[4, "Class"] = label
    with pytest.raises(ember.DataError, match=message):
        TabularData.from_df(lending.iloc[10:], "Class", test_df=test, verbose=False)


def test_a_validation_class_that_training_lacks_is_refused_when_the_split_is_given(
        lending: pd.DataFrame) -> None:
    # the classes came from the whole frame, so the class got an output the model never
    # trained and its validation rows counted as errors in silence (text and vision refuse it)
    frame = lending.iloc[:200].astype({"Class": object}).assign(is_valid=np.arange(200) >= 150)
    frame.loc[[170, 180], "Class"] = "bad_debt"
    message = r"^target 'Class', row 170 \(validation\): 'bad_debt' never occurs in training; "
    with pytest.raises(ember.DataError, match=message + ".*Categorical"):
        TabularData.from_df(frame, "Class", valid_col="is_valid", verbose=False)
    declared = frame.astype({"Class": pd.CategoricalDtype(["bad", "bad_debt", "good"])})
    kept = TabularData.from_df(declared, "Class", valid_col="is_valid", verbose=False)
    assert kept.classes == ["bad", "bad_debt", "good"]  # declared categories keep it on purpose


def test_errors_in_the_test_frame_say_they_are_in_it(lending: pd.DataFrame) -> None:
    # "column 'int_rate', row 3: 'abc' is not a number": with both frames indexed from 0, the
    # training frame's row 3 was as likely; nothing said the test frame was at fault
    train, test = lending.iloc[10:].reset_index(drop=True), lending.iloc[:10].copy()
    test["int_rate"] = test["int_rate"].astype(object)
    test.loc[3, "int_rate"] = "abc"
    with pytest.raises(ember.DataError, match=r"^test_df: column 'int_rate', row 3: 'abc' is "
                                              r"not a number"):
        TabularData.from_df(train, "Class", test_df=test, verbose=False)
    with pytest.raises(ember.DataError, match=r"^test_df: column\(s\) \['int_rate'\] missing"):
        TabularData.from_df(train, "Class", test_df=test.drop(columns="int_rate"),
                            verbose=False)


def test_input_schema_lists_a_date_column_not_its_derived_parts() -> None:
    # /metadata's schema required 'sold_month', 'sold_day', ... (the parts the processor
    # derives) as inputs a client must send, besides the raw 'sold' column the model reads
    frame = pd.DataFrame({"sold": pd.date_range("2024-01-01", periods=40, freq="D"),
                          "size": np.arange(40.0), "price": np.arange(40.0) * 2.5})
    data = TabularData.from_df(frame, "price", verbose=False)
    schema = data.input_schema()
    assert schema["required"] == ["size", "sold"]
    assert sorted(schema["properties"]) == ["size", "sold"]
    assert schema["properties"]["sold"]["description"] == "a date (ISO 8601)"
    cats, conts = data.encode([{"size": 3.0, "sold": "2024-01-20"}])  # the schema suffices
    assert cats.shape[0] == conts.shape[0] == 1


@pytest.mark.parametrize(("as_text", "message"), [
    (str, "'price' is text that holds numbers"),
    ("${:,}".format, "'price' has a different value in most rows"),
])
def test_a_numeric_target_read_as_text_warns_before_thousands_of_classes(
        diamonds: pd.DataFrame, as_text, message) -> None:
    # prices read as text became a 1,000-class classifier without a word (accuracy near 0)
    frame = diamonds.iloc[:1000].assign(price=diamonds["price"].iloc[:1000].map(as_text))
    with pytest.warns(ember.EmberWarning, match=message + ".*pd.to_numeric"):
        data = TabularData.from_df(frame, "price", verbose=False)
    assert data.target_kind == "single_label"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # asked for, or a real category: no such warning
        TabularData.from_df(frame, "price", target_kind="single_label", verbose=False)
        TabularData.from_df(frame.astype({"price": "category"}), "price", verbose=False)
        TabularData.from_df(diamonds.iloc[:1000], "clarity", verbose=False)
    # (a price seen in one row only is a class the random split left out of training: that
    # warning, ember.warn_unseen_classes, is another one and stays)
    assert not [w for w in caught if "regression" in str(w.message)]


def test_a_test_frame_without_the_target_gives_predictions_and_refuses_validate(
        lending: pd.DataFrame) -> None:
    # a competition's test frame has no target column: from_df refused it ("the test frame
    # lacks the target column(s)"), so its rows could only go through predict_batch
    train, test = lending.iloc[30:], lending.iloc[:30].drop(columns="Class")
    data = TabularData.from_df(train, "Class", test_df=test, verbose=False)
    assert data.test_labelled is False and len(data.test_dl.dataset) == 30
    learn = ember.learner(data, quiet=True, device="cpu")
    probabilities, targets = learn.get_preds("test")
    assert targets is None and probabilities.shape == (30, len(data.classes))
    expected = learn.predict_batch([test], probs=True)
    assert torch.allclose(probabilities, torch.tensor(
        [list(p.probabilities.values()) for p in expected]), atol=1e-5)
    with pytest.raises(ember.DataError, match=r"the test set has no labels.*get_preds"):
        learn.validate("test")
    labelled = TabularData.from_df(train, "Class", test_df=lending.iloc[:30], verbose=False)
    assert labelled.test_labelled is True
    assert set(ember.learner(labelled, quiet=True).validate("test")) >= {"test_loss"}


@pytest.mark.parametrize(("target", "frame"), [("Class", "lending"), ("price", "diamonds")])
def test_a_test_frame_whose_target_column_is_all_missing_is_a_test_set_without_labels(
        request: pytest.FixtureRequest, target: str, frame: str) -> None:
    # training and test rows concatenated, then split on the missing target (a competition's
    # layout): the empty target column was read as labels, and from_df failed with "the label
    # is missing (30 such row(s)); drop these rows", i.e. drop every test row
    table = request.getfixturevalue(frame)
    train, test = table.iloc[30:], table.iloc[:30].assign(**{target: np.nan})
    data = TabularData.from_df(train, target, test_df=test, verbose=False)
    assert data.test_labelled is False and len(data.test_dl.dataset) == 30
    predictions, targets = ember.learner(data, quiet=True, device="cpu").get_preds("test")
    assert targets is None and len(predictions) == 30
    partly = table.iloc[:30].astype({target: object})
    partly.loc[partly.index[4], target] = None  # some labels missing: still an error
    with pytest.raises(ember.DataError, match=rf"^test_df: target '{target}', row 4: "):
        TabularData.from_df(train, target, test_df=partly, verbose=False)
    if frame == "diamonds":  # of two targets, one labelled and one empty: refused by name
        with pytest.raises(ember.DataError, match=r"labels in the target column\(s\) \['x'\] "
                                                  r"but none in \['price'\]"):
            TabularData.from_df(train, ["price", "x"], test_df=test, verbose=False)


def test_predict_refuses_a_frame_of_several_rows_instead_of_answering_for_the_first(
        diamonds_learner: ember.Learner, diamonds: pd.DataFrame, tmp_path) -> None:
    # before, learn.predict(frame) with 3 rows returned the first row's price alone, silently
    rows = diamonds.drop(columns="price").iloc[:3]
    predictor = ember.load(diamonds_learner.export(tmp_path / "diamonds.ember"))
    for model in (diamonds_learner, predictor):
        with pytest.raises(ember.DataError, match=r"predict takes one item.* 3 predictions.*"
                                                  r"predict_batch"):
            model.predict(rows)
        assert model.predict(rows.iloc[[1]]) == model.predict_batch([rows])[1]


def test_duplicate_column_labels_are_reported_by_name(diamonds: pd.DataFrame) -> None:
    # before, a frame with two 'carat' columns (a concat, a merge) failed with pandas'
    # AttributeError "'DataFrame' object has no attribute 'dtype'"
    doubled = pd.concat([diamonds.iloc[:300], diamonds[["carat"]].iloc[:300]], axis=1)
    with pytest.raises(ember.DataError, match=r"column label\(s\) \['carat'\] occur more than "
                                              r"once.*duplicated"):
        TabularData.from_df(doubled, "price", verbose=False)
    data = TabularData.from_df(diamonds.iloc[:300], "price", verbose=False)
    with pytest.raises(ember.DataError, match=r"\['carat'\] occur more than once"):
        data.encode([doubled.drop(columns="price")])


def test_columns_of_several_levels_are_refused_with_how_to_flatten_them(
        diamonds: pd.DataFrame) -> None:
    # a MultiIndex (groupby().agg, pivot_table) trained, then export failed on tuple labels
    frame = diamonds.iloc[:300].copy()
    frame.columns = pd.MultiIndex.from_tuples([("x", name) for name in frame.columns])
    with pytest.raises(ember.DataError, match=r"2 levels \(a MultiIndex.*'_'\.join"):
        TabularData.from_df(frame, ("x", "price"), verbose=False)
    data = TabularData.from_df(diamonds.iloc[:300], "price", verbose=False)
    with pytest.raises(ember.DataError, match=r"2 levels \(a MultiIndex"):
        data.encode([frame.drop(columns=[("x", "price")])])


def test_a_complex_column_is_left_out_or_refused_not_cut_to_its_real_part(
        diamonds: pd.DataFrame) -> None:
    # pandas' astype(float) kept the real part with only a ComplexWarning
    frame = diamonds.iloc[:300].assign(wave=np.arange(300) * (1 + 2j))
    data = TabularData.from_df(frame, "price", verbose=False)
    assert "wave" not in data.processor.input_names
    with pytest.raises(ember.DataError, match=r"column 'wave' holds complex numbers"):
        TabularData.from_df(frame, "price", cont_names=["carat", "wave"], verbose=False)
    real = TabularData.from_df(frame.assign(wave=np.arange(300.0)), "price", verbose=False)
    with pytest.raises(ember.DataError, match=r"column 'wave' holds complex numbers"):
        real.encode([frame.drop(columns="price")])


@pytest.mark.parametrize("options", [
    {"cat_names": ["cut", "carat"], "date_names": ["carat"]},
    {"cont_names": ["carat", "depth"], "date_names": ["depth"]},
    {"cat_names": ["cut", "cut"]},
])
def test_a_column_given_in_two_lists_or_twice_is_refused(diamonds: pd.DataFrame,
                                                         options) -> None:
    # before, a column in cat_names and date_names was used twice (its raw values as
    # categories and its date parts), and one listed twice got two embeddings, silently
    with pytest.raises(ember.DataError, match=r"listed (twice|as both)"):
        TabularData.from_df(diamonds.iloc[:300], "price", verbose=False, **options)


def test_one_column_name_given_as_text_is_one_column(diamonds: pd.DataFrame) -> None:
    # before, cat_names="cut" was read letter by letter: "column 'c' is not in the frame"
    data = TabularData.from_df(diamonds.iloc[:300], "price", cat_names="cut",
                               cont_names="carat", verbose=False)
    assert data.processor.cat_names == ["cut"]
    assert data.processor.cont_names == ["carat"]


def test_the_validation_flag_column_is_refused_as_an_input(diamonds: pd.DataFrame) -> None:
    # before, cat_names=[..., "is_valid"] made the split flag an input: False in every training
    # row (nothing to learn), and every row sent to predict then had to carry the flag
    frame = diamonds.iloc[:300].assign(is_valid=diamonds.index[:300] % 5 == 0)
    with pytest.raises(ember.DataError, match=r"'is_valid' is valid_col.*cannot also be an "
                                              r"input"):
        TabularData.from_df(frame, "price", cat_names=["cut", "is_valid"],
                            valid_col="is_valid", verbose=False)


def test_regression_predictions_have_the_shape_of_the_target_column(
        diamonds: pd.DataFrame) -> None:
    # one numeric target: get_preds gave predictions (n, 1) beside targets (n,), so
    # (predictions - targets).abs().mean() broadcast to (n, n) and measured nothing
    train, test = diamonds.iloc[30:330], diamonds.iloc[:30].drop(columns="price")
    data = TabularData.from_df(train, "price", test_df=test, verbose=False)
    learn = ember.learner(data, quiet=True, device="cpu")
    predictions, targets = learn.get_preds()
    assert predictions.shape == targets.shape == (len(data.valid_dl.dataset),)
    test_predictions, test_targets = learn.get_preds("test")
    assert test_targets is None and test_predictions.shape == (30,)
    assert test_predictions.tolist() == pytest.approx(learn.predict_batch([test]), rel=1e-5)
    # two target columns stay one column each
    two = ember.learner(TabularData.from_df(train, ["price", "x"], verbose=False), quiet=True,
                        device="cpu")
    predictions, targets = two.get_preds()
    assert predictions.shape == targets.shape == (len(targets), 2)


def test_y_range_is_refused_for_a_classifier_and_checked_for_a_regression() -> None:
    # with a class target, y_range squashed the logits into (0, 1): every probability near
    # uniform, silently; a range of three numbers failed inside the model's forward pass
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=50), "size": rng.normal(size=50),
                          "kind": rng.choice(["a", "b"], 50)})
    with pytest.raises(ember.DataError, match=r"y_range.*regression.*'kind'"):
        TabularData.from_df(frame, "kind", y_range=(0, 1), verbose=False)
    for bad in [(1, 0), (0, 1, 2), (0, float("inf")), 5, ("low", "high")]:
        with pytest.raises(ember.DataError, match=r"y_range.*\(low, high\)"):
            TabularData.from_df(frame, "size", cont_names=["x"], y_range=bad, verbose=False)
    data = TabularData.from_df(frame, "size", cont_names=["x"], y_range=(-3, 3), verbose=False)
    assert data.y_range == [-3.0, 3.0]


def test_a_column_of_label_lists_or_several_true_false_columns_is_multi_label(tmp_path) -> None:
    # a target column of lists was "TypeError: unhashable type: 'list'" from deep in pandas,
    # and several true/false target columns were refused as a regression of booleans
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    tags = [["big"] * bool(v > 0) + ["odd"] * (i % 2) for i, v in enumerate(x)]
    frame = pd.DataFrame({"x": x, "tags": tags})
    ember.seed(0)
    data = TabularData.from_df(frame, "tags", verbose=False)
    assert data.target_kind == "multi_label" and data.classes == ["big", "odd"]
    assert data.n_out == 2
    targets = data.train_dl.dataset.targets
    assert targets.dtype == torch.float32 and targets.shape == (240, 2)
    learn = ember.learner(data, quiet=True, device="cpu")
    assert type(learn.loss_func).__name__ == "BCEWithLogitsFlat"
    learn.fit_one_cycle(2)
    assert set(learn.validate()) >= {"valid_loss", "accuracy_multi"}
    rows = frame.drop(columns="tags").iloc[:8]
    predicted = learn.predict_batch([rows])
    assert all(isinstance(labels, list) and set(labels) <= {"big", "odd"}
               for labels in predicted)
    learn.export(tmp_path / "tags.ember")
    assert ember.load(tmp_path / "tags.ember").predict_batch([rows]) == predicted
    flags = pd.DataFrame({"x": x, "big": x > 0, "odd": np.arange(300) % 2 == 1})
    both = TabularData.from_df(flags, ["big", "odd"], verbose=False)
    assert both.target_kind == "multi_label" and both.classes == ["big", "odd"]
    torch.testing.assert_close(both.train_dl.dataset.targets, targets)


def test_multi_label_rows_that_are_not_lists_of_known_labels_are_named() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "tags": [["a"], ["b"]] * 4 + ["a", ["a"]]})
    with pytest.raises(ember.DataError, match=r"target 'tags', row 8: 'a' is not a list"):
        TabularData.from_df(frame, "tags", verbose=False)
    test = pd.DataFrame({"x": [1.0], "tags": [["a", "c"]]})
    frame.loc[8, "tags"] = []
    with pytest.raises(ember.DataError, match=r"test_df: target 'tags', row 0: 'c' is not"):
        TabularData.from_df(frame, "tags", test_df=test, verbose=False)
    numbers = pd.DataFrame({"x": np.arange(10.0), "a": [0, 1] * 5, "b": [0.0, 2.0] * 5})
    with pytest.raises(ember.DataError, match=r"target 'b', row 1: 2.0 is not 0 or 1"):
        TabularData.from_df(numbers, ["a", "b"], target_kind="multi_label", verbose=False)


def test_single_label_with_several_target_columns_is_refused_not_made_regression() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "a": [0, 1] * 5, "b": [1, 0] * 5})
    with pytest.raises(ember.DataError, match=r"'single_label' takes one target column"):
        TabularData.from_df(frame, ["a", "b"], target_kind="single_label", verbose=False)


def test_a_duration_target_is_regression_in_seconds_and_a_date_target_is_refused(
        tmp_path) -> None:
    # a timedelta target became classification into hundreds of timedelta "classes" (with a
    # warning that it was text holding numbers), which no export could write as JSON
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    seconds = 600 + 60 * x
    frame = pd.DataFrame({"x": x, "wait": pd.to_timedelta(seconds, unit="s")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = TabularData.from_df(frame, "wait", verbose=False)
    assert data.target_kind == "regression"
    targets = torch.cat([data.train_dl.dataset.targets, data.valid_dl.dataset.targets])
    np.testing.assert_allclose(np.sort(targets.numpy()), np.sort(seconds), rtol=1e-6)
    learn = ember.learner(data, quiet=True, device="cpu")
    learn.fit_one_cycle(1)
    learn.export(tmp_path / "wait.ember")
    predicted = ember.load(tmp_path / "wait.ember").predict({"x": 0.0})
    assert isinstance(predicted, float) and 300 < predicted < 900  # seconds
    dates = frame.assign(when=pd.date_range("2024-01-01", periods=200))
    with pytest.raises(ember.DataError, match=r"target 'when' holds dates"):
        TabularData.from_df(dates, "when", verbose=False)


def test_classes_that_differ_only_in_case_or_spaces_get_a_warning() -> None:
    # "yes", " yes" and "Yes" (a CSV written by hand, ", yes") became three classes silently
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60),
                          "answer": rng.choice(["yes", " yes", "Yes", "no"], 60)})
    with pytest.warns(ember.EmberWarning, match=r"'answer'.*\[' yes', 'Yes', 'yes'\].*"
                                                r"str\.strip\(\)"):
        data = TabularData.from_df(frame, "answer", verbose=False)
    assert data.classes == [" yes", "Yes", "no", "yes"]  # kept: they may be meant
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TabularData.from_df(frame.assign(answer=frame["answer"].str.strip().str.lower()),
                            "answer", verbose=False)


def test_a_random_split_that_puts_a_whole_class_in_validation_warns_and_keeps_it(
        lending: pd.DataFrame) -> None:
    # the class was kept in silence (an output the model never trains, its rows counted as
    # errors), while a given split refuses it: one rule with text and vision
    frame = lending.iloc[:200].astype({"Class": object})
    _, valid = ember.split_indices(len(frame), 0.2, seed=0)
    frame.iloc[valid[:3], frame.columns.get_loc("Class")] = "bad_debt"
    with pytest.warns(ember.EmberWarning, match=r"every row of class 'bad_debt' \(3 rows\) in "
                                                r"validation.*seed=.*valid_pct="):
        data = TabularData.from_df(frame, "Class", valid_pct=0.2, seed=0, verbose=False)
    assert data.classes == ["bad", "bad_debt", "good"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a split that leaves every class in training is quiet
        TabularData.from_df(lending.iloc[:200], "Class", valid_pct=0.2, seed=0, verbose=False)
