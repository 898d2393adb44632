from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset

import ember

from .helpers import blob_data, regression_data


def test_split_is_seeded_reproducible_and_disjoint():
    train_a, valid_a = ember.split_indices(100, 0.2, seed=3)
    train_b, valid_b = ember.split_indices(100, 0.2, seed=3)
    assert (train_a == train_b).all() and (valid_a == valid_b).all()
    assert len(valid_a) == 20 and not set(train_a) & set(valid_a)
    assert sorted([*train_a, *valid_a]) == list(range(100))
    _, valid_c = ember.split_indices(100, 0.2, seed=4)
    assert set(valid_c) != set(valid_a)


def test_make_loaders_shuffles_training_only_and_keeps_small_sets():
    dataset = TensorDataset(torch.arange(10.0), torch.zeros(10))
    train, valid, test = ember.make_loaders(dataset, dataset, dataset, bs=4)
    assert isinstance(train.sampler, RandomSampler) and train.drop_last
    assert isinstance(valid.sampler, SequentialSampler) and not valid.drop_last
    assert sum(len(b[0]) for b in valid) == 10 and sum(len(b[0]) for b in test) == 10
    small_train, _, _ = ember.make_loaders(dataset, dataset, bs=64)
    assert len(small_train) == 1 and not small_train.drop_last  # never drop the only batch


def test_make_loaders_counts_the_items_a_training_sampler_draws():
    from torch.utils.data import WeightedRandomSampler

    dataset = TensorDataset(torch.randn(100, 3), torch.randint(0, 2, (100,)))
    few = WeightedRandomSampler(torch.ones(100), num_samples=20)  # fewer draws than items
    train, valid, _ = ember.make_loaders(dataset, dataset, bs=32, train_sampler=few)
    assert [len(batch[0]) for batch in train] == [20]  # the only batch is kept
    ember.Data.from_loaders(train, valid)  # and no "yields no batch" error
    some = WeightedRandomSampler(torch.ones(100), num_samples=40)
    train, _, _ = ember.make_loaders(dataset, dataset, bs=32, train_sampler=some)
    assert [len(batch[0]) for batch in train] == [32]  # a full batch remains: the rest drops


def test_from_loaders_reads_target_kind_and_classes():
    data = blob_data(classes=3)
    assert data.target_kind == "single_label" and data.n_out == 3
    assert regression_data().target_kind == "regression"
    assert regression_data().n_out == 1


class _LabelledImages(torch.utils.data.Dataset):
    """Like a torchvision dataset: ``targets`` listed, inputs costly (here: forbidden) to load."""

    def __init__(self, targets: list[int]) -> None:
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        raise AssertionError("from_loaders loaded an input to count the classes")


def test_from_loaders_counts_classes_from_labels_without_loading_inputs():
    train = _LabelledImages([0, 1, 2, 1] * 5)
    valid = torch.utils.data.Subset(_LabelledImages([0, 1, 2, 3, 4]), [0, 3])
    data = ember.Data.from_loaders(DataLoader(train, batch_size=4, shuffle=True),
                                   DataLoader(valid, batch_size=4),
                                   target_kind="single_label")
    assert data.n_out == 4  # class 3 appears only in the validation set, through the Subset


def test_from_loaders_takes_no_validation_loader_as_the_constructor_does():
    """Data(train_dl, None) trains without validation, but from_loaders refused None with
    "valid_dl must be a torch DataLoader, got NoneType"."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    data = ember.Data.from_loaders(train, None)
    assert data.valid_dl is None and data.target_kind == "single_label" and data.n_out == 3
    learn = ember.Learner(data, torch.nn.Linear(4, 3), quiet=True)
    learn.fit(1)
    assert "train_loss" in learn.recorder.values[-1] and "valid_loss" not in \
        learn.recorder.values[-1]
    assert set(learn.validate(DataLoader(TensorDataset(x, y), batch_size=8))) == {
        "valid_loss", "accuracy"}
    with pytest.raises(ember.DataError, match=r"no 'valid' loader; give a loader"):
        learn.validate()


def test_from_loaders_asks_the_kind_of_integer_targets_with_several_values_per_item():
    """Multi-hot 0/1 integer rows were read as single-label classes 0 and 1 (n_out 2), and the
    first batch failed inside the loss with "Expected input batch_size (8) to match target
    batch_size (40)"."""
    x, multi_hot = torch.randn(40, 4), (torch.rand(40, 5) > 0.5).long()
    loader = DataLoader(TensorDataset(x, multi_hot), batch_size=8)
    with pytest.raises(ember.DataError, match=r"rows of 5 zeros and ones.*'multi_label'"):
        ember.Data.from_loaders(loader, loader)
    data = ember.Data.from_loaders(loader, loader, target_kind="multi_label")
    assert data.n_out == 5
    one_column = DataLoader(TensorDataset(x, torch.randint(0, 3, (40, 1))), batch_size=8)
    data = ember.Data.from_loaders(one_column, one_column)  # one label per item: read as ever
    assert data.target_kind == "single_label" and data.n_out == 3
    masks = DataLoader(TensorDataset(x, torch.randint(0, 3, (40, 6, 6))), batch_size=8)
    data = ember.Data.from_loaders(masks, masks)  # a class per pixel: read as ever
    assert data.target_kind == "single_label" and data.n_out == 3


def test_empty_dataset_gets_clear_error():
    empty = TensorDataset(torch.zeros(0, 3), torch.zeros(0))
    with pytest.raises(ember.DataError, match="training set is empty"):
        ember.make_loaders(empty, empty)
    with pytest.raises(ember.DataError, match="train_dl yields no batch"):
        ember.Data.from_loaders(DataLoader(empty, batch_size=4), DataLoader(empty, batch_size=4))


def test_an_empty_test_set_is_refused_like_an_empty_validation_set():
    # an empty test set made a test loader without a batch: the mistake showed only later,
    # at learn.validate("test")
    dataset = TensorDataset(torch.zeros(4, 3), torch.zeros(4))
    empty = TensorDataset(torch.zeros(0, 3), torch.zeros(0))
    with pytest.raises(ember.DataError, match="test set is empty"):
        ember.make_loaders(dataset, dataset, empty)


def test_make_loaders_takes_a_test_sampler_as_it_takes_a_validation_one():
    dataset = TensorDataset(torch.arange(6.0), torch.zeros(6))
    backwards = list(range(5, -1, -1))  # e.g. a sampler that puts the longest texts first
    _, _, test = ember.make_loaders(dataset, dataset, dataset, bs=2,
                                    valid_sampler=backwards, test_sampler=backwards)
    assert test.sampler is backwards and not test.drop_last
    assert torch.cat([b[0] for b in test]).tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    _, _, test = ember.make_loaders(dataset, dataset, dataset, bs=2)
    assert isinstance(test.sampler, SequentialSampler)  # in order without one


def test_find_test_folder_beside_a_split_layout(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / split / "pos").mkdir(parents=True)
    splits = ember.split_folders(tmp_path)
    assert ember.find_test_folder(tmp_path, "test", splits) == tmp_path / "test"
    assert ember.find_test_folder(tmp_path, None, splits) is None  # test=None leaves it out
    assert ember.find_test_folder(tmp_path, "holdout", splits) is None  # no such folder
    # valid="test": the test folder is the validation folder, not a second split
    assert ember.find_test_folder(tmp_path, "test", [tmp_path / "train",
                                                     tmp_path / "test"]) is None
    # loose files without class folders have no labels to score: left out, with a warning
    # that names the kind of item
    (tmp_path / "test" / "pos").rmdir()
    (tmp_path / "test" / "0.txt").write_text("unlabelled review")
    (tmp_path / "test" / ".hidden").mkdir()  # not a class folder
    with pytest.warns(ember.EmberWarning, match=r"test holds no class folders, so its texts "
                                                r"have no labels to score.*test=None"):
        assert ember.find_test_folder(tmp_path, "test", splits, (".txt",), "texts") is None
    # a plugin that reads loose files as a test set without labels asks for them: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ember.find_test_folder(tmp_path, "test", splits, (".txt",), "texts",
                                      loose=True) == tmp_path / "test"
    (tmp_path / "test" / "0.txt").unlink()
    with warnings.catch_warnings():  # an empty folder is not worth a warning
        warnings.simplefilter("error")
        assert ember.find_test_folder(tmp_path, "test", splits, (".txt",), "texts") is None
        assert ember.find_test_folder(tmp_path, "test", splits, (".txt",), "texts",
                                      loose=True) is None  # no files: no test set


def test_batch_larger_than_data_with_drop_last_gets_clear_error():
    dataset = TensorDataset(torch.randn(5, 3), torch.randint(0, 2, (5,)))
    with pytest.raises(ember.DataError, match="smaller batch_size"):
        ember.Data.from_loaders(DataLoader(dataset, batch_size=8, drop_last=True),
                                DataLoader(dataset, batch_size=8))


def test_decode_gives_user_values():
    data = ember.Data(None, None, target_kind="single_label", classes=["cat", "dog"])
    assert data.decode(torch.tensor([[0.1, 2.0], [3.0, 0.0]])) == ["dog", "cat"]
    multi = ember.Data(None, None, target_kind="multi_label", classes=["a", "b", "c"])
    assert multi.decode(torch.tensor([[5.0, -5.0, 5.0]])) == [["a", "c"]]
    assert ember.Data.from_state(data.state()).classes == ["cat", "dog"]
    with pytest.raises(ember.DataError, match="at least two classes"):
        ember.Data(None, None, target_kind="single_label", classes=["only"])


def test_classes_given_as_an_array_or_a_tensor_decode_to_plain_values(tmp_path):
    # np.int64 / tensor classes came back as the predictions themselves: json.dumps refused
    # them, and a tensor's made export fail on its manifest
    import json

    import numpy as np

    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(16, 3), torch.randint(0, 3, (16,)))
    for classes in (np.array([5, 6, 7]), torch.tensor([5, 6, 7]), np.array(["a", "b", "c"])):
        data = ember.Data.from_loaders(DataLoader(dataset, batch_size=8, shuffle=True),
                                       DataLoader(dataset, batch_size=8), classes=classes)
        assert [type(value) for value in data.classes] == [type(classes.tolist()[0])] * 3
        learn = ember.Learner(data, ember.create_model("mlp", n_in=3, n_out=3), device="cpu",
                              quiet=True)
        prediction = learn.predict([0.1, 0.2, 0.3], probs=True)
        json.dumps(prediction)  # the probabilities' keys are the classes too
        assert json.loads(json.dumps(prediction.value)) == prediction.value
        path = learn.export(tmp_path / "model.ember")
        assert ember.load(path).predict([0.1, 0.2, 0.3]) == prediction.value


def test_prediction_options_and_the_refusals_of_probs():
    classes = ember.Data(None, None, target_kind="single_label", classes=["cat", "dog"])
    assert classes.prediction_options() == {"probs": False}
    assert classes.why_no_probabilities() is None
    for kind, says in (("regression", "predicts numbers"), ("sequence", "a sequence per item")):
        data = ember.Data(None, None, target_kind=kind, n_out=4)
        assert data.prediction_options() == {}  # probs is not offered where it is refused
        with pytest.raises(TypeError, match=f"probs=True gives class probabilities, .*{says}"):
            data.predict_batch(torch.nn.Linear(2, 4), [[0.0, 1.0]], probs=True)
    with pytest.raises(TypeError, match=r"unexpected prediction options \['beam'\]"):
        classes.predict_batch(torch.nn.Linear(2, 2), [[0.0, 1.0]], beam=5)


def test_regression_targets_decode_in_the_form_of_predictions(capsys):
    dataset = TensorDataset(torch.randn(8, 3), torch.randn(8, 1))  # targets of shape (n, 1)
    train, valid, _ = ember.make_loaders(dataset, dataset, bs=4)
    data = ember.Data.from_loaders(train, valid)
    targets = torch.tensor([[1.5], [-2.0]])
    assert data.decode_targets(targets) == data.decode(targets) == [1.5, -2.0]
    rows = data.show_results((None, targets), data.decode(targets))
    assert rows == [(1.5, 1.5), (-2.0, -2.0)] and "[" not in capsys.readouterr().out
    pairs = torch.tensor([[1.0, 2.0]])  # two values per item stay a list
    assert data.decode_targets(pairs) == data.decode(pairs) == [[1.0, 2.0]]


def test_split_by_flags_reads_booleans_and_refuses_strings():
    import numpy as np

    train, valid = ember.split_by_flags([True, np.False_, 1, 0.0, float("nan"), None])
    assert train.tolist() == [1, 3, 4, 5] and valid.tolist() == [0, 2]
    # "False" is true to bool(): read as a flag it would put every item in validation
    with pytest.raises(ember.DataError, match=r"valid_col must be boolean.*'False'"):
        ember.split_by_flags(["True", "False", "False"])
    with pytest.raises(ember.DataError, match="leaves 0 training and 3 validation"):
        ember.split_by_flags([True, True, 1])
    with pytest.raises(ember.DataError, match="has 2 entries for 3 items"):
        ember.split_by_flags([True, False], n=3)


def test_loader_by_name_and_its_errors():
    data = blob_data()
    assert data.loader("train") is data.train_dl and data.one_batch("valid")[0].shape[0] > 0
    with pytest.raises(ember.DataError, match="no loader is called 'validation'"):
        data.one_batch("validation")  # was a bare KeyError
    with pytest.raises(ember.DataError, match="this Data has no 'test' loader"):
        data.example_inputs(split="test")
    # it said only that, not how to add test items nor how to predict unlabelled ones
    with pytest.raises(ember.DataError, match=r"no 'test' loader; build the data with its "
                                              r"test items .*predict_batch"):
        ember.learner(data, quiet=True).validate("test")


def test_a_model_with_two_inputs_predicts_an_item_given_as_a_tuple_of_its_inputs():
    class TwoInputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.left, self.right = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)

        def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
            return self.left(left) + self.right(right)

    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(16, 3), torch.randn(16, 2), torch.randint(0, 2, (16,)))
    data = ember.Data.from_loaders(DataLoader(dataset, batch_size=4, shuffle=True),
                                   DataLoader(dataset, batch_size=4))
    learn = ember.Learner(data, TwoInputs(), metrics=["accuracy"])
    left, right, _ = dataset.tensors
    expected = learn.model(left[:3], right[:3]).argmax(dim=1).tolist()
    assert learn.predict_batch([(left[i], right[i]) for i in range(3)]) == expected
    assert learn.predict((left[0].tolist(), right[0].numpy())) == expected[0]
    restored = ember.Data.from_state(data.state())  # what an exported file rebuilds
    assert [x.shape for x in restored.encode([(left[0], right[0])])] == [(1, 3), (1, 2)]
    with pytest.raises(ember.DataError, match="item 1 is not 2 inputs"):
        learn.predict_batch([(left[0], right[0]), left[1]])


def test_first_unseen_class_finds_the_first_class_training_lacks():
    import numpy as np

    assert ember.first_unseen_class(["cat", "dog"], ["dog", "bird", "fish"]) == (1, "bird")
    assert ember.first_unseen_class([np.int64(1), 2], [2, np.int64(1)]) is None  # made plain
    # a multi-label item: each of its classes is checked, split the plugin's way
    assert ember.first_unseen_class(["a;b", "c"], ["c;a", "b;d"],
                                    lambda label: label.split(";")) == (1, "d")
    # generators are read once: one pass over each side
    assert ember.first_unseen_class(iter(["x"]), iter(["x", "y"])) == (1, "y")


def test_warn_unseen_classes_names_each_class_a_random_split_left_out_of_training():
    # one message for every plugin: the class, how many items it has, and the fix
    with pytest.warns(ember.EmberWarning, match=r"every row of classes 'bird' \(2 rows\), "
                                                r"'fish' \(1 row\) in validation.*never trains "
                                                r"on each.*another seed=, a smaller valid_pct="):
        unseen = ember.warn_unseen_classes(["cat", "dog"], ["bird", "dog", "fish", "bird"],
                                           item="row")
    assert unseen == {"bird": 2, "fish": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ember.warn_unseen_classes(["a;b"], ["b;a"], lambda label: label.split(";")) == {}


def test_a_custom_collate_sets_how_many_inputs_a_raw_item_holds():
    """Dataset items (x, label, value) that a collate_fn turns into batches (x, {targets})
    are one input: predict counted the dataset item's entries instead, and refused the
    one-input item a user gives ("item 0 is not 2 inputs")."""
    def collate(items):
        xs, labels, values = zip(*items)
        return torch.stack(xs), {"label": torch.stack(labels), "value": torch.stack(values)}

    dataset = TensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,)), torch.randn(16))
    data = ember.Data.from_loaders(
        DataLoader(dataset, batch_size=4, shuffle=True, collate_fn=collate),
        DataLoader(dataset, batch_size=4, collate_fn=collate), target_kind="single_label",
        n_out=2)
    model = torch.nn.Linear(3, 2)
    x = dataset.tensors[0]
    assert data.predict_batch(model, [x[0], x[1]]) == model(x[:2]).argmax(1).tolist()
    assert data.state()["n_inputs"] == 1


@pytest.mark.parametrize("target", ["dict", "tuple"])
def test_a_target_ember_cannot_read_asks_for_target_kind_and_n_out(target):
    # a dict target was "Could not infer dtype of dict", a tuple of label tensors "only one
    # element tensors can be converted to Python scalars": torch's words, not what to do
    def collate(items):
        xs, labels, values = zip(*items)
        labels, values = torch.stack(labels), torch.stack(values)
        parts = {"label": labels, "value": values} if target == "dict" else (labels, values)
        return torch.stack(xs), parts

    dataset = TensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,)), torch.randn(16))
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate)
    with pytest.raises(ember.DataError, match=rf"target of a training batch is a {target}.*"
                                              r"target_kind=.*n_out="):
        ember.Data.from_loaders(loader, loader)


@pytest.mark.parametrize("kind", ["dict", "tensor"])
def test_a_batch_that_is_not_a_tuple_is_refused_naming_what_it_is(kind):
    """With target_kind and n_out given, from_loaders read no batch: a dict batch reached the
    model as its keys ("must be Tensor, not str"), a bare tensor batch as its rows."""
    class Items(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, index: int):
            x = torch.full((3,), float(index))
            return {"x": x, "y": index % 2} if kind == "dict" else x

    loader = DataLoader(Items(), batch_size=4)
    data = ember.Data.from_loaders(loader, loader, target_kind="single_label", n_out=2)
    learn = ember.Learner(data, torch.nn.Linear(3, 2), quiet=True)
    what = "dict with keys ['x', 'y']" if kind == "dict" else "Tensor"
    for use, name in ((lambda: learn.fit(1), "training"), (learn.validate, "validation")):
        with pytest.raises(ember.DataError, match=rf"each batch must be a tuple .*the {name} "
                                                  rf"loader gave a {re.escape(what)}"):
            use()


def test_predict_takes_a_numpy_item_in_float64_for_a_model_trained_on_float32():
    """np.random.randn and most numpy arithmetic give float64: predict(array) failed with
    "mat1 and mat2 must have the same dtype", though the training inputs say float32."""
    import numpy as np

    x = torch.randn(16, 3)
    dataset = TensorDataset(x, torch.randint(0, 2, (16,)))
    data = ember.Data.from_loaders(DataLoader(dataset, batch_size=4, shuffle=True),
                                   DataLoader(dataset, batch_size=4))
    model = torch.nn.Linear(3, 2)
    items = [x[0].numpy().astype(np.float64), x[1].double()]
    assert data.predict_batch(model, items) == model(x[:2]).argmax(1).tolist()
    restored = ember.Data.from_state(data.state())  # an exported file knows it too
    assert restored.encode(items)[0].dtype == torch.float32


def test_predict_takes_whole_numbers_for_a_model_trained_on_floats():
    # [1, 2, 3] or np.arange(3) is an integer tensor: predict failed "mat1 and mat2 must have
    # the same dtype" and told the user to give items shaped like the training items
    import numpy as np

    x = torch.randn(16, 3)
    dataset = TensorDataset(x, torch.randint(0, 2, (16,)))
    data = ember.Data.from_loaders(DataLoader(dataset, batch_size=4, shuffle=True),
                                   DataLoader(dataset, batch_size=4))
    model = torch.nn.Linear(3, 2)
    items = [[1, 0, 2], np.arange(3), torch.tensor([True, False, True])]
    expected = model(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 2.0], [1.0, 0.0, 1.0]]))
    assert data.predict_batch(model, items) == expected.argmax(1).tolist()
    assert ember.Data.from_state(data.state()).encode(items)[0].dtype == torch.float32
    tokens = TensorDataset(torch.randint(0, 9, (16, 3)), torch.randint(0, 2, (16,)))
    ids = ember.Data.from_loaders(DataLoader(tokens, batch_size=4, shuffle=True),
                                  DataLoader(tokens, batch_size=4))
    assert ids.encode([[1, 0, 2]])[0].dtype == torch.int64  # integer inputs stay integers


def test_reading_the_first_batch_for_raw_items_leaves_the_seeded_order_alone():
    # with a collate_fn of the user's own, encode reads the first training batch to count the
    # inputs; a shuffling loader draws its seed from torch's global generator, so a predict
    # before (or an export between) fits changed every later batch order of a seeded run
    def collate(items):
        xs, ys = zip(*items)
        return torch.stack(xs), torch.stack(ys)

    dataset = TensorDataset(torch.randn(64, 3), torch.randint(0, 2, (64,)))
    data = ember.Data.from_loaders(
        DataLoader(dataset, batch_size=8, shuffle=True, collate_fn=collate),
        DataLoader(dataset, batch_size=8, collate_fn=collate), target_kind="single_label",
        n_out=2)
    torch.manual_seed(0)
    data.encode([torch.zeros(3)])
    after_encode = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after_encode, torch.rand(4))


def test_asking_whether_the_test_set_is_labelled_leaves_torchs_generator_as_it_was():
    # it read a batch of the shuffled training loader, which draws from torch's generator:
    # a validate("test") then changed a seeded run's batch order
    x, y = torch.randn(32, 3), torch.randn(32)
    data = ember.Data(DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True),
                      DataLoader(TensorDataset(x, y), batch_size=8),
                      DataLoader(TensorDataset(x), batch_size=8), target_kind="regression")
    before = torch.random.get_rng_state()
    assert data.test_labelled is False
    assert torch.equal(torch.random.get_rng_state(), before)


def _is_text(part):
    return isinstance(part, (str, bytes))


def test_split_test_reads_a_pair_or_the_inputs_alone_by_one_rule():
    texts, labels = ["good", "dull", "fine"], ["pos", "neg", "pos"]
    # a tuple is (inputs, labels); so is a list of two parts of one length
    assert ember.split_test((texts, labels), _is_text) == (texts, labels)
    assert ember.split_test([texts, labels], _is_text) == (texts, labels)
    assert ember.split_test((torch.zeros(3, 4), torch.arange(3)), _is_text)[1].tolist() == [0, 1, 2]
    # anything else is the inputs alone, labels None
    assert ember.split_test(texts, _is_text) == (texts, None)
    assert ember.split_test(["good"], _is_text) == (["good"], None)
    tensor = torch.zeros(2, 5)  # two rows: inputs, not a pair
    assert ember.split_test(tensor, _is_text)[0] is tensor
    assert ember.split_test(tensor, _is_text)[1] is None
    # two items are two items, in a tuple as in a list, whichever part is the item
    assert ember.split_test(["good", "dull"], _is_text) == (["good", "dull"], None)
    assert ember.split_test(("good", "dull"), _is_text) == (("good", "dull"), None)
    assert ember.split_test(([b"x"], b"pos"), _is_text) == (([b"x"], b"pos"), None)
    # a list of two parts of different lengths is two inputs (two images of two heights)
    images = [torch.zeros(4, 6), torch.zeros(5, 6)]
    assert ember.split_test(images, lambda part: False) == (images, None)
    # parts without a length in a tuple stay a pair for the plugin to read
    numbers = (iter(texts), iter(labels))
    assert ember.split_test(numbers, _is_text) == numbers


def test_split_test_names_both_counts_when_a_tuple_pairs_unequal_parts():
    with pytest.raises(ember.DataError, match=r"^test: 2 texts but 1 labels; give one label "
                                              r"per text$"):
        ember.split_test((["good", "dull"], ["pos"]), _is_text, "text")
    with pytest.raises(ember.DataError, match=r"test: 3 items but 0 labels"):
        ember.split_test((torch.zeros(3, 2), []), _is_text)


def test_class_files_leave_hidden_entries_out_at_any_depth(tmp_path):
    for name in ("b.png", "a.PNG", "notes.txt", "._a.png", "sub/c.png",
                 ".ipynb_checkpoints/b-checkpoint.png", "sub/.cache/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = ember.class_files(tmp_path, [".png"])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "a.PNG", "b.png", "sub/c.png"]


class _MeanOfFeatures(torch.nn.Module):
    """A model that takes items of any length (the mean of their features): it predicts an
    item of the wrong length without failing."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 2)

    def forward(self, x: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        return self.linear(x.float().mean(dim=-1, keepdim=True))


def test_predict_refuses_an_item_of_another_shape_than_the_training_items():
    """7 features where training items had 8: a model that flattens or pools predicted it
    as garbage (one that cannot take it failed inside, naming no shape it expects)."""
    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(16, 8), torch.randint(0, 2, (16,)))
    data = ember.Data.from_loaders(DataLoader(dataset, batch_size=4, shuffle=True),
                                   DataLoader(dataset, batch_size=4))
    learn = ember.Learner(data, _MeanOfFeatures())
    x = dataset.tensors[0]
    with pytest.raises(ember.DataError, match=r"^item 0 has shape \(7,\), but the model was "
                                              r"trained on items of shape \(8,\)"):
        learn.predict(torch.randn(7))
    with pytest.raises(ember.DataError, match=r"^item 1 has shape \(1, 8\)"):
        learn.predict_batch([x[0], x[1:2]])
    assert learn.predict_batch([x[0], x[1].tolist()]) == learn.model(x[:2]).argmax(1).tolist()
    assert data.state()["input_shapes"] == [[8]]
    # each input of a model with several, named by its place
    two = TensorDataset(torch.randn(16, 3), torch.randn(16, 2, 2), torch.randint(0, 2, (16,)))
    data = ember.Data.from_loaders(DataLoader(two, batch_size=4, shuffle=True),
                                   DataLoader(two, batch_size=4))
    left, right, _ = two.tensors
    with pytest.raises(ember.DataError, match=r"^input 1 of item 0 has shape \(4,\), but the "
                                              r"model was trained on items whose input 1 has "
                                              r"shape \(2, 2\)"):
        data.predict_batch(_MeanOfFeatures(), [(left[0], right[0].flatten())])
    assert len(data.predict_batch(_MeanOfFeatures(), [(left[0], right[0])])) == 1


def test_a_bad_item_past_the_first_chunk_is_named_by_its_place_among_all_the_items():
    """predict_batch encodes items in chunks of bs: the 4th item (bs=2) is item 3, not the
    chunk's item 1, in the refusals of encode and of the model."""
    data = ember.Data(None, None, target_kind="single_label", classes=["a", "b"])
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ember.DataError, match=r"^cannot turn item 3 of the items into a tensor"):
        data.predict_batch(model, [[0.5, 1.0]] * 3 + [["not", "numbers"]], bs=2)
    with pytest.raises(ember.DataError, match=r"^item 3 of the items has shape \(3,\), but item "
                                              r"2 has \(2,\)"):
        data.predict_batch(model, [[0.5, 1.0]] * 3 + [[0.5, 1.0, 2.0]], bs=2)
    with pytest.raises(ember.DataError, match=r"^the model cannot take items 2-3 "):
        data.predict_batch(model, [[0.5, 1.0]] * 2 + [[0.5, 1.0, 2.0]] * 2, bs=2)
    assert len(data.predict_batch(model, [[0.5, 1.0]] * 5, bs=2)) == 5


def test_items_of_varying_shape_are_taken_where_the_training_items_may_vary():
    """A padding collate_fn, batches of one or a Data subclass that opts out: the training
    items may differ in shape (the model takes any), so raw items are not checked."""
    lengths = [3, 5, 4, 6] * 4
    items = [(torch.randn(n), torch.tensor(i % 2)) for i, n in enumerate(lengths)]

    def pad(batch):
        xs, ys = zip(*batch)
        return torch.nn.utils.rnn.pad_sequence(xs, batch_first=True), torch.stack(ys)

    padded = ember.Data.from_loaders(DataLoader(items, batch_size=4, shuffle=True,
                                                collate_fn=pad),
                                     DataLoader(items, batch_size=4, collate_fn=pad))
    one_by_one = ember.Data.from_loaders(DataLoader(items, batch_size=1, shuffle=True),
                                         DataLoader(items, batch_size=1), n_out=2)

    class AnyLength(ember.Data):
        def checks_input_shapes(self) -> bool:
            return False

    fixed = TensorDataset(torch.randn(16, 8), torch.randint(0, 2, (16,)))
    opted_out = AnyLength.from_loaders(DataLoader(fixed, batch_size=4, shuffle=True),
                                       DataLoader(fixed, batch_size=4))
    model = _MeanOfFeatures()
    for data in (padded, one_by_one, opted_out):
        assert "input_shapes" not in data.state()
        assert len(data.predict_batch(model, [torch.randn(7)])) == 1
        assert len(ember.Data.from_state(data.state()).predict_batch(
            model, [torch.randn(11)])) == 1


def test_reading_a_validation_loader_leaves_the_next_fits_randomness_alone():
    # each reading of a DataLoader drew its workers' base seed from torch's global generator,
    # so learn.validate() before a fit changed that fit's shuffle and dropout
    def trained(validate_first: bool) -> list[torch.Tensor]:
        ember.seed(0)
        learn = ember.learner(blob_data(n=128), device="cpu", cbs=[])
        if validate_first:
            learn.validate()
            learn.get_preds()
        learn.fit(1, 1e-2)
        return [p.detach().clone() for p in learn.model.parameters()]

    for plain, after in zip(trained(False), trained(True), strict=True):
        assert torch.equal(plain, after)


def test_a_reused_loader_with_workers_draws_what_a_fresh_one_draws():
    # persistent workers draw their base seed once, a fresh loader (a fit resumed in a new
    # process) on its first reading: the global stream, hence the shuffle, parted
    x = torch.arange(32.0)
    ds = TensorDataset(x, x)

    def order(dl: DataLoader) -> list[float]:
        return [float(v) for batch, _ in dl for v in batch]

    ember.seed(0)
    reused, _, _ = ember.make_loaders(ds, ds, bs=8, num_workers=1)
    order(reused)
    state = torch.get_rng_state()
    continued = [order(reused), order(reused)]
    ember.seed(0)
    torch.set_rng_state(state)
    fresh, _, _ = ember.make_loaders(ds, ds, bs=8, num_workers=1)
    assert [order(fresh), order(fresh)] == continued


@pytest.mark.parametrize("valid, match", [
    (TensorDataset(torch.randn(16, 4), torch.arange(16) % 3, torch.arange(16)),
     r"^valid_dl gives batches of 3 element.*train_dl gives 2"),
    (TensorDataset(torch.randint(0, 9, (16, 4))),
     r"^each batch must be a tuple \(\*inputs, target\), but valid_dl gave a list of 1")])
def test_from_loaders_refuses_validation_batches_shaped_unlike_the_training_ones(valid, match):
    """A validation loader that gives (x, y, index) where training gives (x, y) had its last
    element (the indices 0-15) read as labels: n_out became 16, silently; one that gives the
    inputs alone (x,) of integers had them read as labels, or was named only as "a loader"."""
    x, y = torch.randn(32, 4), torch.arange(32) % 3
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    with pytest.raises(ember.DataError, match=match):
        ember.Data.from_loaders(train, DataLoader(valid, batch_size=8))
    with pytest.raises(ember.DataError, match=match):  # a regression's size read off it too
        ember.Data.from_loaders(train, DataLoader(valid, batch_size=8),
                                target_kind="regression")


class _EncodesABareTensor(ember.Data):
    """A plugin's data whose encode forgot the tuple: ``return x`` for ``return (x,)``."""

    def encode(self, items):
        return torch.stack([torch.as_tensor(item, dtype=torch.float32) for item in items])


@pytest.mark.parametrize("n_items", [1, 4])
def test_an_encode_that_returns_no_tuple_is_named_as_the_plugins_bug(n_items):
    # before: the model was called as model(*x), one row per argument: for one item a
    # DataError blaming the items ("Give items shaped like the training items"), for several
    # torch's "forward() takes 2 positional arguments but 5 were given"
    data = _EncodesABareTensor(None, None, target_kind="single_label", classes=["a", "b"])
    with pytest.raises(ember.PluginError, match=(
            r"_EncodesABareTensor.encode gave a Tensor, not a tuple of input tensors; return "
            r"\(x,\) for a model of one input")):
        data.predict_batch(torch.nn.Linear(3, 2), [[0.0, 1.0, 2.0]] * n_items)


class _DecodesOneValue(ember.Data):
    """A plugin's data whose decode answers once per batch, not once per item."""

    def decode(self, outputs, threshold=None):
        return super().decode(outputs, threshold)[:1]


def test_a_decode_that_gives_another_number_of_values_than_items_is_the_plugins_bug():
    # before: predict_batch of four items gave one prediction, without a word
    data = _DecodesOneValue(None, None, target_kind="single_label", classes=["a", "b"])
    with pytest.raises(ember.PluginError, match=(
            r"_DecodesOneValue.decode gave 1 value\(s\) for a batch of 4 items; give one per "
            r"item")):
        data.predict_batch(torch.nn.Linear(3, 2), [[0.0, 1.0, 2.0]] * 4)
