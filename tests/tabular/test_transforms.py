"""The processors: kind inference, fitting on training rows only, exact replay, bad input."""

from __future__ import annotations

import datetime
import io
import json

import numpy as np
import pandas as pd
import pytest

import ember
from ember_tabular import TabularProcessor, add_date_parts, infer_column_kinds
from ember_tabular.transforms import (
    QUANTILE_SAMPLE,
    QuantileMap,
    _normal_references,
    _sample_quantiles,
    factorize_objects,
)


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "text": pd.Series(["a", "b", "a", "c"], dtype="str"),
        "objects": pd.Series(["x", "y", "x", "y"], dtype=object),
        "grade": pd.Categorical(["lo", "hi", "mid", "lo"], ["lo", "mid", "hi"], ordered=True),
        "flag": [True, False, True, True],
        "small_int": [1, 2, 1, 3],
        "big_int": list(range(100, 104)),
        "value": [0.5, 1.5, np.nan, 2.5],
        "when": pd.to_datetime(["2024-01-31", "2024-02-29", None, "2023-12-25"]),
        "target": [1.0, 2.0, 3.0, 4.0],
    })


def test_kinds_are_inferred_for_pandas3_str_object_category_bool_ints_and_dates() -> None:
    cats, conts, dates, _ = infer_column_kinds(mixed_frame(), exclude=["target"], max_card=3)
    assert cats == ["text", "objects", "grade", "flag", "small_int"]
    assert conts == ["big_int", "value"]
    assert dates == ["when"]


def test_text_that_looks_numeric_gets_a_note() -> None:
    frame = pd.DataFrame({"amount": pd.Series(["1.5", "2", "3"], dtype=object)})
    notes = infer_column_kinds(frame)[3]
    assert any("looks numeric" in note and "amount" in note for note in notes)


def test_booleans_with_blanks_get_no_note_to_make_them_continuous() -> None:
    # read_csv gives a boolean column with blanks as True/False/NaN objects; the note said
    # "'paid' is text but looks numeric; pass it in cont_names=" (pd.to_numeric reads booleans)
    frame = pd.read_csv(io.StringIO("paid,rate\n" + "True,1.5\nFalse,2.5\n,3.5\n" * 40))
    assert frame["paid"].dtype == object
    cats, conts, _, notes = infer_column_kinds(frame)
    assert cats == ["paid"] and conts == ["rate"] and notes == []
    numbers = pd.DataFrame({"amount": pd.Series(["1.5", "2", None], dtype=object)})
    assert "looks numeric" in infer_column_kinds(numbers)[3][0]  # numbers as text still noted


def test_a_saved_row_index_is_left_out_and_integer_identifiers_get_a_note(tmp_path) -> None:
    # to_csv writes the index; read_csv brings it back as 'Unnamed: 0', which was used as a
    # continuous input: the row number leaked the file's order (diamonds is sorted by price in
    # blocks) and every row to predict on then needed an 'Unnamed: 0' value
    frame = pd.DataFrame({"order_id": np.arange(1000, 1200)[::-1], "size": np.arange(200) % 7,
                          "weight": np.linspace(0, 1, 200)})
    frame.to_csv(tmp_path / "saved.csv")
    cats, conts, _, notes = infer_column_kinds(pd.read_csv(tmp_path / "saved.csv"))
    assert "Unnamed: 0" not in cats + conts
    assert cats == ["size"] and conts == ["order_id", "weight"]
    assert any("'Unnamed: 0' is a saved row index" in note for note in notes)
    assert any("'order_id' holds a different integer in every row" in note for note in notes)
    assert infer_column_kinds(frame.iloc[:100])[3] == []  # too few rows to tell


def test_ordered_categories_keep_their_order() -> None:
    processor = TabularProcessor(["grade"]).fit(mixed_frame())
    assert processor.vocabs["grade"] == ["lo", "mid", "hi"]
    assert processor.ordered["grade"]
    cats, _ = processor.transform(pd.DataFrame({"grade": ["lo", "mid", "hi"]}))
    assert cats[:, 0].tolist() == [1, 2, 3]


def test_statistics_come_from_training_rows_only() -> None:
    train = pd.DataFrame({"value": [1.0, 2.0, 3.0, np.nan], "kind": ["a", "b", "a", "b"]})
    valid = pd.DataFrame({"value": [1000.0, np.nan], "kind": ["zzz", "a"]})
    processor = TabularProcessor(["kind"], ["value"], normalize="standard").fit(train)
    assert processor.medians["value"] == 2.0
    assert processor.means["value"] == pytest.approx(2.0)  # filled with the median first
    assert processor.vocabs["kind"] == ["a", "b"]
    cats, conts = processor.transform(valid)
    assert cats.tolist() == [[0, 1], [1, 2]]  # unseen 'zzz' -> 0; value_na: 1 present, 2 missing
    assert conts[1, 0] == pytest.approx(0.0)  # NaN -> training median -> normalised 0


def test_missing_values_get_median_and_indicator() -> None:
    processor = TabularProcessor([], ["value"]).fit(mixed_frame())
    assert processor.na_names == ["value"]
    assert processor.cat_columns == ["value_na"]
    cats, conts = processor.transform(mixed_frame())
    assert cats[:, 0].tolist() == [1, 1, 2, 1]
    assert processor.decode(cats, conts)["value"][2] == pytest.approx(1.5)


def test_nan_at_inference_in_a_column_complete_in_training_is_filled_silently() -> None:
    processor = TabularProcessor([], ["big_int"]).fit(mixed_frame())
    assert processor.na_names == []
    cats, conts = processor.transform(pd.DataFrame({"big_int": [np.nan]}))
    assert processor.decode(cats, conts)["big_int"][0] == pytest.approx(101.5)


def test_infinite_values_are_treated_as_missing_with_a_warning() -> None:
    processor = TabularProcessor([], ["value"]).fit(mixed_frame())
    with pytest.warns(ember.EmberWarning, match="'value'.*infinite"):
        cats, conts = processor.transform(pd.DataFrame({"value": [np.inf, -np.inf, 2.5]}))
    assert cats[:, 0].tolist() == [2, 2, 1]
    assert np.isfinite(conts).all()


def test_unseen_and_missing_categories_map_to_the_unknown_level() -> None:
    processor = TabularProcessor(["text", "small_int", "flag"]).fit(mixed_frame())
    rows = pd.DataFrame({"text": ["never", None, "b"], "small_int": [99, None, 2],
                         "flag": [None, False, True]})
    cats, _ = processor.transform(rows)
    assert cats.tolist() == [[0, 0, 0], [0, 0, 1], [2, 2, 2]]


def test_integer_categories_match_floats_and_text_at_inference() -> None:
    processor = TabularProcessor(["small_int"]).fit(mixed_frame())
    as_float = processor.transform(pd.DataFrame({"small_int": [1.0, 3.0]}))[0]
    text = pd.Series(["1", "3"], dtype=object)
    as_text = processor.transform(pd.DataFrame({"small_int": text}))[0]
    assert as_float.tolist() == as_text.tolist() == [[1], [3]]


def test_a_true_false_column_reads_text_and_one_or_zero_as_its_booleans() -> None:
    # JSON from `ember serve` and read_csv(dtype=str) give "True"/"False", and a number column
    # 1.0/0.0: each was the unknown level 0, so predictions silently differed from True/False
    processor = TabularProcessor(["flag"]).fit(mixed_frame())
    exported = TabularProcessor.from_state(json.loads(json.dumps(processor.state())))
    rows = pd.DataFrame({"flag": pd.Series(
        [True, False, "True", "false", "TRUE", 1.0, 0.0, 1, 0, np.True_], dtype=object)})
    for replayed in (processor, exported):
        assert replayed.transform(rows)[0][:, 0].tolist() == [2, 1, 2, 1, 2, 2, 1, 2, 1, 2]
    # anything else means neither, and stays the unknown level, as any unseen category
    others = pd.DataFrame({"flag": pd.Series(["yes", "1", "", 2, 0.5, None], dtype=object)})
    assert processor.transform(others)[0][:, 0].tolist() == [0] * 6
    # the same mapping at training time: a 1.0 among the booleans is the level True
    frame = pd.DataFrame({"flag": pd.Series([True, False, 1.0, 0], dtype=object)})
    cats, _ = TabularProcessor(["flag"]).fit_transform(frame)
    assert cats[:, 0].tolist() == [2, 1, 2, 1]
    # a column trained on the text "True"/"False" (read_csv(dtype=str)) takes 1/0 and any case
    text = TabularProcessor(["flag"]).fit(pd.DataFrame({"flag": ["True", "False", "True"]}))
    rows = pd.DataFrame({"flag": pd.Series([1.0, 0, "false", True], dtype=object)})
    assert text.transform(rows)[0][:, 0].tolist() == [2, 1, 1, 2]


def test_object_and_str_columns_give_the_same_codes() -> None:
    frame = mixed_frame()
    processor = TabularProcessor(["text"]).fit(frame)
    as_object = frame.assign(text=frame["text"].astype(object))
    assert (processor.transform(as_object)[0] == processor.transform(frame)[0]).all()


def test_a_missing_column_is_named() -> None:
    processor = TabularProcessor(["text"], ["value"]).fit(mixed_frame())
    with pytest.raises(ember.DataError, match=r"\['value'\] missing"):
        processor.transform(pd.DataFrame({"text": ["a"]}))


def test_a_whole_number_too_large_for_a_float_names_column_and_row() -> None:
    # before, 10**400 (which JSON, and so an ember serve client, can send) in a continuous
    # column raised pandas' OverflowError: a 500 from ember serve, naming neither
    processor = TabularProcessor([], ["value"]).fit(mixed_frame())
    rows = pd.DataFrame({"value": [1.5, 10**400, 2**70]}, index=[10, 11, 12], dtype=object)
    with pytest.raises(ember.DataError,
                       match=r"column 'value', row 11: 1000\d*\.\.\. is too large for a number"):
        processor.transform(rows)
    _, conts = processor.transform(rows.drop(index=11))  # 2**70 is a number like any other
    assert conts.shape == (2, 1) and np.isfinite(conts).all()


def test_text_inside_a_numeric_column_names_column_and_row() -> None:
    processor = TabularProcessor([], ["value"]).fit(mixed_frame())
    rows = pd.DataFrame({"value": ["1.5", "oops", "2"]}, index=[10, 11, 12])
    with pytest.raises(ember.DataError, match=r"column 'value', row 11: 'oops' is not a number"):
        processor.transform(rows)


def test_empty_frame_cannot_be_fitted() -> None:
    with pytest.raises(ember.DataError, match="empty"):
        TabularProcessor(["text"]).fit(mixed_frame().iloc[:0])


def test_dates_are_expanded_into_parts() -> None:
    parts = add_date_parts(mixed_frame(), ["when"])
    assert parts.loc[0, "when_month"] == 1 and parts.loc[1, "when_day"] == 29
    assert parts.loc[3, "when_year"] == 2023 and np.isnan(parts.loc[2, "when_elapsed"])
    processor = TabularProcessor([], [], ["when"]).fit(mixed_frame())
    assert "when_month" in processor.cat_columns and "when_elapsed_na" in processor.cat_columns
    assert sorted(processor.feature_groups()) == ["when"]
    with pytest.raises(ember.DataError, match="'when', row 1: 'soon' is not a date"):
        processor.transform(pd.DataFrame({"when": ["2024-01-01", "soon"]}))
    labelled = pd.DataFrame({"when": ["2024-01-01", "soon"]}, index=pd.Index([10, 11]))
    with pytest.raises(ember.DataError, match="'when', row 11: 'soon'"):  # not np.int64(11)
        processor.transform(labelled)


def test_a_column_named_like_a_part_of_a_date_column_is_refused() -> None:
    # a column "when_year" beside the date "when": the part replaced it in the layout, so the
    # model trained, then refused every frame at predict (a BatchNorm of the wrong width)
    frame = mixed_frame().assign(when_year=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ember.DataError, match=r"\['when_year'\] have the name of a part that "
                                              r"the date column\(s\) \['when'\]"):
        TabularProcessor([], ["when_year"], ["when"])
    from ember_tabular import TabularData

    with pytest.raises(ember.DataError, match="rename them"):
        TabularData.from_df(pd.concat([frame] * 5, ignore_index=True), "target",
                            cat_names=[], cont_names=["value", "when_year"], date_names=["when"])


def test_a_missing_indicator_is_grouped_with_its_column_beside_a_column_of_its_name() -> None:
    # a categorical "value_na" of the user's beside "value" with missing values: the
    # indicator was looked up by name, so the importance of "value" shuffled the user's column
    frame = mixed_frame().assign(value_na=["p", "q", "p", "q"])
    processor = TabularProcessor(["value_na"], ["value"]).fit(frame)
    assert processor.cat_columns == ["value_na", "value_na"]
    groups = processor.feature_groups()
    assert groups["value_na"] == ([0], []) and groups["value"] == ([1], [0])


def test_numbers_in_a_date_column_are_refused_not_read_as_1970() -> None:
    # pd.to_datetime reads numbers as nanoseconds since 1970: a date column of 20240301-style
    # integers (or a JSON row sending epoch seconds) became 1970-01-01 in every row, silently
    ints = pd.DataFrame({"when": [20240301, 20231225, 20220704]})
    with pytest.raises(ember.DataError, match=r"'when', row 0: 20240301 is a number, not a date"
                                              r" \(3 such row\(s\)\).*format='%Y%m%d'"):
        TabularProcessor([], [], ["when"]).fit(ints)
    processor = TabularProcessor([], [], ["when"]).fit(mixed_frame())
    with pytest.raises(ember.DataError, match="'when', row 1: 1709251200 is a number"):
        processor.transform(pd.DataFrame({"when": ["2024-03-01", 1709251200]}, dtype=object))
    as_text = processor.transform(pd.DataFrame({"when": ["20240301", None]}))  # text is parsed
    assert np.array_equal(as_text[1][0], processor.transform(
        pd.DataFrame({"when": pd.to_datetime(["2024-03-01"])}))[1][0])


def test_time_zone_aware_dates_are_expanded_into_local_parts() -> None:
    # a tz-aware column (inferred as a date) crashed in fit with pandas' "Cannot use .astype
    # to convert from timezone-aware dtype to timezone-naive dtype", and so did date strings
    # with an offset at inference; strings with mixed offsets failed with "Mixed timezones"
    when = pd.to_datetime(["2024-01-01 22:00", "2024-03-01 09:30"]).tz_localize(
        "America/New_York")
    frame = pd.DataFrame({"when": when})
    assert infer_column_kinds(frame)[2] == ["when"]
    parts = add_date_parts(frame, ["when"])
    assert parts["when_day"].tolist() == [1.0, 1.0]  # the local day, not the UTC one
    assert parts["when_elapsed"].tolist() == [19724 + 3 / 24, 19783 + 14.5 / 24]  # UTC
    processor = TabularProcessor([], [], ["when"], normalize="standard").fit(frame)
    same = processor.transform(pd.DataFrame({"when": ["2024-01-02T03:00:00Z",
                                                      "2024-03-01T15:30:00+01:00"]}))
    assert np.array_equal(same[1][:, 2], processor.transform(frame)[1][:, 2])


def test_interval_and_date_categories_export_and_replay() -> None:
    # pd.cut bins (Interval categories) and an object column of dates put Interval and date
    # objects into the vocabulary, so state() was not JSON-able and learn.export failed with
    # "the preprocessing state is not JSON-able (Object of type Interval ...)"
    days = pd.Series([datetime.date(2024, 1, 1 + i % 3) for i in range(12)], dtype=object)
    frame = pd.DataFrame({"age": pd.cut(np.arange(12) * 7.0, [-1, 30, 50, 100]),
                          "day": days, "stamp": pd.to_datetime(days).astype("datetime64[ns]")})
    processor = TabularProcessor(["age", "day", "stamp"]).fit(frame)
    again = TabularProcessor.from_state(json.loads(json.dumps(processor.state())))
    assert again.vocabs["age"] == ["(-1, 30]", "(30, 50]", "(50, 100]"]
    cats = processor.transform(frame)[0]
    assert (cats > 0).all() and np.array_equal(again.transform(frame)[0], cats)
    # a served row names the levels by their text
    row = pd.DataFrame([{"age": "(30, 50]", "day": "2024-01-02", "stamp": "2024-01-02 00:00:00"}])
    assert again.transform(row)[0].tolist() == [[2, 2, 2]]


def test_whole_numbers_read_as_floats_match_a_text_vocabulary() -> None:
    # zip codes trained as text ("10001"); at inference a blank in the column makes pandas
    # read the numbers as floats, and 10001.0 was looked up as "10001.0": every row silently
    # became the unknown level
    processor = TabularProcessor(["zip"]).fit(pd.DataFrame({"zip": ["10001", "10002", "2.5"]}))
    rows = pd.DataFrame([{"zip": 10002}, {"zip": None}, {"zip": 2.5}, {"zip": 10003}])
    assert rows["zip"].dtype == np.float64
    assert processor.transform(rows)[0].ravel().tolist() == [2, 0, 3, 0]


def test_state_is_json_and_replays_exactly() -> None:
    frame = mixed_frame()
    processor = TabularProcessor(["text", "grade", "flag", "small_int"], ["value", "big_int"],
                                 ["when"]).fit(frame)
    again = TabularProcessor.from_state(json.loads(json.dumps(processor.state())))
    for left, right in zip(processor.transform(frame), again.transform(frame)):
        assert np.array_equal(left, right)
    assert again.cardinalities == processor.cardinalities


def test_a_column_cannot_be_both_kinds() -> None:
    with pytest.raises(ember.DataError, match="both categorical and continuous"):
        TabularProcessor(["a"], ["a"])


def test_quantile_normalisation_is_robust_to_outliers() -> None:
    train = pd.DataFrame({"size": [*np.linspace(1.0, 2.0, 99), 1000.0]})
    quantile = TabularProcessor([], ["size"]).fit(train)
    standard = TabularProcessor([], ["size"], normalize="standard").fit(train)
    rows = pd.DataFrame({"size": [1.0, 1.5, 2.0, 1000.0, 1e9]})
    scaled = quantile.transform(rows)[1][:, 0]
    assert np.all(np.diff(scaled) >= 0) and np.abs(scaled).max() < 5.3
    assert scaled[2] - scaled[0] > 3  # the bulk of the values stays spread out
    assert np.ptp(standard.transform(rows)[1][:3, 0]) < 0.02  # squashed by the outlier
    decoded = quantile.decode(*quantile.transform(rows.iloc[:3]))["size"]
    assert decoded.tolist() == pytest.approx([1.0, 1.5, 2.0], abs=0.01)


def reference_quantile_map(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """The definition: the average of the forward and backward linear interpolation through
    the quantiles onto standard-normal values (scikit-learn's QuantileTransformer rule)."""
    references = _normal_references(len(quantiles))
    forward = np.interp(values, quantiles, references)
    backward = -np.interp(-values, -quantiles[::-1], -references[::-1])
    return 0.5 * (forward + backward)


@pytest.mark.parametrize("kind", ["normal", "discrete", "heavy_tail", "outlier", "constant",
                                  "large_offset", "single_row"])
def test_the_fast_quantile_map_equals_the_interpolation_it_replaces(kind: str) -> None:
    generator = np.random.default_rng(0)
    train = {
        "normal": generator.standard_normal(3000),
        "discrete": generator.integers(0, 5, 3000).astype(float),  # ties at many quantiles
        "heavy_tail": np.exp(3 * generator.standard_normal(3000)),
        "outlier": np.r_[generator.standard_normal(3000), 1e9],
        "constant": np.full(50, 3.0),
        "large_offset": 1e15 + generator.integers(0, 3, 3000).astype(float),
        "single_row": np.array([7.0]),
    }[kind]
    quantiles = np.quantile(train, np.linspace(0, 1, min(1000, len(train))))
    # the training values, values just beside each quantile, and far outside the range
    values = np.r_[train, quantiles, np.nextafter(quantiles, np.inf),
                   np.nextafter(quantiles, -np.inf), -1e12, 1e12, -1e300, 1e300]
    mapped = QuantileMap(quantiles)(values)
    assert np.allclose(mapped, reference_quantile_map(values, quantiles), rtol=0, atol=1e-9)


def test_the_quantile_map_writes_float32_output_in_blocks() -> None:
    generator = np.random.default_rng(1)
    values = generator.standard_normal(3 * QuantileMap.BLOCK + 5)
    quantiles = np.quantile(values[:5000], np.linspace(0, 1, 1000))
    out = np.empty(len(values), dtype=np.float32)
    QuantileMap(quantiles)(values, out=out)
    expected = reference_quantile_map(values, quantiles)
    assert np.allclose(out, expected, atol=1e-6)


def test_large_columns_take_quantiles_from_a_seeded_sample_and_exact_medians() -> None:
    generator = np.random.default_rng(2)
    rows = QUANTILE_SAMPLE + 50_000
    values = np.exp(generator.standard_normal(rows))
    values[generator.random(rows) < 0.01] = np.nan
    frame = pd.DataFrame({"size": values})
    first = TabularProcessor([], ["size"]).fit(frame)
    second = TabularProcessor([], ["size"]).fit(frame)
    assert first.quantiles == second.quantiles  # deterministic
    assert first.medians["size"] == np.nanmedian(values)  # every row, exactly
    filled = np.sort(np.where(np.isnan(values), np.nanmedian(values), values))
    quantiles = first.quantiles["size"]
    # a 100,000-row sample places every quantile within 0.01 of its level among all rows
    levels = np.searchsorted(filled, quantiles) / rows
    assert np.abs(levels - np.linspace(0, 1, 1000)).max() < 0.01


def test_outputs_are_built_column_major_with_the_documented_dtypes() -> None:
    frame = mixed_frame()
    processor = TabularProcessor(["text", "small_int"], ["value", "big_int"]).fit(frame)
    cats, conts = processor.transform(frame)
    assert cats.dtype == np.int64 and conts.dtype == np.float32
    assert cats.flags.f_contiguous and conts.flags.f_contiguous
    assert cats.shape == (4, 3) and conts.shape == (4, 2)
    assert cats[:, 0].tolist() == [1, 2, 1, 3] and cats[:, 2].tolist() == [1, 1, 2, 1]


def test_vocabularies_skip_every_kind_of_missing_value() -> None:
    frame = pd.DataFrame({
        "objects": pd.Series(["b", None, np.nan, "a", pd.NA, "b"], dtype=object),
        "nullable": pd.array([3, None, 1, 3, 1, None], dtype="Int64"),
        "flags": [True, False, True, True, False, True],
    })
    processor = TabularProcessor(["objects", "nullable", "flags"]).fit(frame)
    assert processor.vocabs == {"objects": ["a", "b"], "nullable": [1, 3],
                                "flags": [False, True]}
    cats, _ = processor.transform(frame)
    assert cats.tolist() == [[2, 2, 2], [0, 0, 1], [0, 1, 2], [1, 2, 2], [0, 1, 1], [2, 0, 2]]


def test_date_parts_match_with_and_without_expanding_the_frame_first() -> None:
    frame = mixed_frame()
    by_date = TabularProcessor([], [], ["when"], normalize="standard").fit(frame)
    expanded = add_date_parts(frame, ["when"])
    part_cats = ["when_month", "when_day", "when_dayofweek"]
    part_conts = ["when_year", "when_dayofyear", "when_elapsed"]
    by_parts = TabularProcessor(part_cats, part_conts, normalize="standard").fit(expanded)
    for left, right in zip(by_date.transform(frame), by_parts.transform(expanded)):
        assert np.array_equal(left, right)


@pytest.mark.parametrize("kind", ["normal", "discrete", "sorted", "constant"])
def test_the_bracketed_median_of_a_long_column_is_exact(kind: str) -> None:
    from ember_tabular.transforms import _median

    generator = np.random.default_rng(3)
    rows = QUANTILE_SAMPLE + 20_001
    values = {"normal": generator.standard_normal(rows),
              "discrete": generator.integers(0, 3, rows).astype(float),
              "sorted": np.sort(generator.standard_normal(rows)),
              "constant": np.full(rows, 2.0)}[kind]
    values[generator.random(rows) < 0.3] = np.nan
    present = int(np.count_nonzero(~np.isnan(values)))
    assert _median(values.copy(), present) == np.nanmedian(values)


def test_factorize_objects_codes_rows_by_object_and_keeps_every_distinct_value() -> None:
    shared = np.array(["b", "a", "b", None, "a", np.nan], dtype=object)
    codes, objects = factorize_objects(shared)
    assert codes.tolist() == [0, 1, 0, 2, 1, 3]
    assert objects[:3].tolist() == ["b", "a", None] and np.isnan(objects[3])
    # equal strings held by different objects (a column built row by row): the rows still
    # read back their own values, whichever path is taken
    built = np.array(["level_" + str(k % 7) for k in range(10_000)], dtype=object)
    codes, objects = factorize_objects(built)
    assert (objects[codes] == built).all()
    assert len(set(objects.tolist())) == 7


def test_distinct_objects_with_equal_values_share_one_code_after_processing() -> None:
    values = np.array(["red", "blue"] * 50, dtype=object)
    # two new objects equal to "red" and "blue", each held by 50 rows
    rebuilt = np.array(["".join(list(v)) for v in ["red", "blue"]] * 50, dtype=object)
    assert rebuilt[0] is not values[0] and rebuilt[0] is rebuilt[2]
    frame = pd.DataFrame({"colour": np.r_[values, rebuilt]})
    processor = TabularProcessor(["colour"])
    cats, _ = processor.fit_transform(frame)
    assert processor.vocabs["colour"] == ["blue", "red"]
    assert cats[:, 0].tolist() == [2, 1] * 100


def test_fit_transform_equals_fit_then_transform() -> None:
    frame = mixed_frame()
    names = (["text", "objects", "grade", "flag", "small_int"], ["big_int", "value"], ["when"])
    for normalize in ("quantile", "standard"):
        together = TabularProcessor(*names, normalize=normalize)
        cats, conts = together.fit_transform(frame)
        apart = TabularProcessor(*names, normalize=normalize).fit(frame)
        expected_cats, expected_conts = apart.transform(frame)
        assert together.state() == apart.state()
        np.testing.assert_array_equal(cats, expected_cats)
        np.testing.assert_array_equal(conts, expected_conts)
        np.testing.assert_array_equal(together.transform(frame)[0], cats)


def test_sampled_quantiles_equal_numpys_linear_quantiles() -> None:
    generator = np.random.default_rng(3)
    for values in (generator.standard_normal(2500), generator.integers(0, 4, 999).astype(float),
                   np.array([5.0]), generator.standard_normal(QUANTILE_SAMPLE + 7)):
        sample = values if len(values) <= QUANTILE_SAMPLE else values[
            np.random.default_rng(0).integers(0, len(values), QUANTILE_SAMPLE)]
        expected = np.quantile(sample, np.linspace(0, 1, min(1000, len(values))))
        assert _sample_quantiles(values, 1000) == expected.tolist()


def test_a_list_in_a_category_cell_is_named_by_column_and_row() -> None:
    # a JSON row such as {"a": [1]} got "unhashable type: 'list'", naming neither
    frame = pd.DataFrame({"a": ["x", "y", "x", "z"], "b": [1.0, 2.0, 3.0, 4.0]})
    processor = TabularProcessor(["a"], ["b"]).fit(frame)
    bad = pd.DataFrame({"a": ["y", ["x"]], "b": [1.0, 2.0]}, index=[10, 11])
    with pytest.raises(ember.DataError, match=r"column 'a', row 11: \['x'\] is a list"):
        processor.transform(bad)
    with pytest.raises(ember.DataError, match=r"column 'a', row 11"):
        TabularProcessor(["a"], ["b"]).fit(bad)


def test_a_list_in_a_text_column_of_many_rows_is_named_when_kinds_are_inferred() -> None:
    # past 100 rows the identifier check counted distinct values: pandas' "unhashable type:
    # 'list'" came from inside infer_column_kinds, naming neither column nor row
    frame = pd.DataFrame({"a": [["x", "y"]] * 120, "b": np.arange(120.0)})
    assert infer_column_kinds(frame)[0] == ["a"]
    from ember_tabular import TabularData

    with pytest.raises(ember.DataError, match=r"column 'a', row 0: \['x', 'y'\] is a list"):
        TabularData.from_df(frame.assign(y=np.arange(120.0)), "y")


def test_a_duration_column_is_continuous_in_seconds_whatever_its_unit() -> None:
    # a timedelta column was "ignored" when inferred, and given in cont_names= it was read in
    # its storage unit: microseconds in training, then nanoseconds (1000 times larger) from a
    # frame of timedelta64[ns], silently
    seconds = np.arange(0, 2000, 20)
    frame = pd.DataFrame({"wait": pd.to_timedelta(seconds, unit="s").astype("timedelta64[us]"),
                          "target": np.arange(100.0)})
    _, conts, _, notes = infer_column_kinds(frame, exclude=["target"])
    assert conts == ["wait"] and notes == []
    processor = TabularProcessor([], ["wait"], normalize="standard").fit(frame)
    assert processor.means["wait"] == pytest.approx(seconds.mean())
    rows = pd.DataFrame({"wait": pd.to_timedelta([60, None], unit="s")})
    expected = processor.transform(pd.DataFrame({"wait": [60.0, np.nan]}))[1]
    for unit in ("s", "ms", "us", "ns"):
        same = processor.transform(rows.astype(f"timedelta64[{unit}]"))[1]
        np.testing.assert_array_equal(same, expected)
