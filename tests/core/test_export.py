from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch

import ember
from ember.export import read_checkpoint

from .helpers import blob_data, read_only


@pytest.fixture
def trained(tmp_path):
    ember.seed(0)
    learn = ember.learner(blob_data(), path=tmp_path, quiet=True)
    learn.fit_one_cycle(1, 1e-2)
    return learn


def test_export_load_round_trip_gives_identical_predictions(trained, tmp_path):
    path = trained.export("model")
    assert path == tmp_path / "models" / "model.ember"
    predictor = ember.load(path)
    x, _ = trained.data.valid_dl.dataset.tensors
    items = list(x[:50])
    assert predictor.predict_batch(items) == trained.predict_batch(items)
    assert predictor.predict(items[0]) == trained.predict(items[0])
    manifest = predictor.manifest
    assert manifest["format_version"] == 1 and manifest["model"]["name"] == "mlp"
    assert manifest["data"]["kind"] == "tensor"


@pytest.mark.parametrize("one", ["great film", b"\x89PNG", Path("photo.png"), 3])
def test_predict_batch_of_one_item_instead_of_a_list_is_an_error_saying_so(trained, one):
    # a string was read one character per item ("item #4 is empty" for the space of
    # "good movie"); a path or a PIL image was a raw TypeError "not iterable"
    predictor = ember.load(trained.export("model"))
    for predict_batch in (trained.predict_batch, predictor.predict_batch):
        with pytest.raises(ember.DataError, match=r"predict_batch takes a collection of items, "
                                                  r"not one .*\[item\] for one item"):
            predict_batch(one)
    x, _ = trained.data.valid_dl.dataset.tensors
    assert predictor.predict_batch(x[:3]) == trained.predict_batch(item for item in x[:3])


@pytest.mark.parametrize("bs", [0, -1, 2.5, "8"])
def test_predict_batch_with_a_batch_size_that_is_not_a_whole_number_above_0_says_so(trained,
                                                                                       bs):
    # bs=-1 returned no predictions at all, bs=0 failed inside range()
    predictor = ember.load(trained.export("model"))
    x, _ = trained.data.valid_dl.dataset.tensors
    for predict_batch in (trained.predict_batch, predictor.predict_batch,
                          lambda items, bs: trained.data.predict_batch(trained.model, items,
                                                                       bs=bs)):
        with pytest.raises(ember.DataError, match=r"bs \(the batch size\) must be a whole "
                                                  r"number of at least 1, got"):
            predict_batch(list(x[:3]), bs=bs)
    assert len(predictor.predict_batch(list(x[:3]), bs=2)) == 3


def test_loaded_model_gives_the_learners_probabilities(trained, tmp_path):
    predictor = ember.load(trained.export("model"))
    x, _ = trained.data.valid_dl.dataset.tensors
    items = list(x[:20])
    expected = trained.predict_batch(items, probs=True)
    got = predictor.predict_batch(items, probs=True)
    assert [p.value for p in got] == [p.value for p in expected]
    for mine, theirs in zip(got, expected):
        assert list(mine.probabilities) == list(theirs.probabilities)
        assert list(mine.probabilities.values()) == pytest.approx(
            list(theirs.probabilities.values()), rel=1e-6, abs=1e-7)
    assert predictor.predict(items[0], probs=True).value == expected[0].value


def test_a_failed_export_leaves_the_model_in_training_mode(trained, tmp_path, monkeypatch):
    import ember.export

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(ember.export, "save_file", full_disk)
    trained.model.train()
    with pytest.raises(OSError, match="No space left"):
        trained.export("model")
    assert trained.model.training
    assert not (tmp_path / "models" / "model.ember").exists()


def _rewrite_manifest(path, change) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    manifest = json.loads(metadata["ember_manifest"])
    change(manifest)
    save_file(tensors, str(path), metadata={"ember_manifest": json.dumps(manifest)})


def test_a_loaded_model_refuses_an_item_of_another_shape(trained, tmp_path):
    # before, 8 features as 2 rows of 4 (the flattening MLP takes them, in another order) were
    # predicted as garbage, and 7 features failed inside the model naming no shape to give
    predictor = ember.load(trained.export("model"))
    assert predictor.manifest["data"]["state"]["input_shapes"] == [[8]]
    x, _ = trained.data.valid_dl.dataset.tensors
    for bad, shape in ((x[0][:7], r"\(7,\)"), (x[0].reshape(2, 4).T, r"\(4, 2\)")):
        with pytest.raises(ember.DataError, match=rf"^item 0 has shape {shape}, but the model "
                                                  rf"was trained on items of shape \(8,\)"):
            predictor.predict(bad)
    assert predictor.predict_batch(list(x[:5])) == trained.predict_batch(list(x[:5]))


def test_a_file_exported_before_item_shapes_were_kept_predicts_as_before(trained, tmp_path):
    path = trained.export(tmp_path / "m.ember")
    _rewrite_manifest(path, lambda m: m["data"]["state"].pop("input_shapes"))
    predictor = ember.load(path)
    x, _ = trained.data.valid_dl.dataset.tensors
    assert predictor.predict_batch(list(x[:5])) == trained.predict_batch(list(x[:5]))
    turned = x[0].reshape(2, 4).T  # unchecked, as before: the model flattens it
    assert predictor.predict(turned) == trained.predict_batch([turned.reshape(-1)])[0]


def test_newer_format_is_refused_clearly(trained, tmp_path):
    path = trained.export(tmp_path / "m.ember")
    _rewrite_manifest(path, lambda m: m.update(format_version=99))
    with pytest.raises(ember.ExportError, match="Upgrade ember"):
        ember.load(path)


@pytest.mark.parametrize("change", [
    lambda m: m.pop("data"), lambda m: m.pop("model"), lambda m: m.update(data=[1]),
    lambda m: m["data"].update(kind=["tensor"]), lambda m: m["data"].pop("state"),
    lambda m: m["data"]["state"].pop("target_kind"), lambda m: m["model"].update(config=[1]),
    lambda m: m["model"]["config"].update(unknown=1), lambda m: m["model"]["config"].pop("n_in"),
    lambda m: m.update(format_version=True)])
def test_a_tampered_manifest_is_an_export_error(trained, tmp_path, change):
    path = trained.export(tmp_path / "m.ember")
    _rewrite_manifest(path, change)
    with pytest.raises(ember.ExportError, match=r"corrupt|model format True"):
        ember.load(path)


def test_missing_plugin_names_the_package(trained, tmp_path):
    path = trained.export(tmp_path / "m.ember")

    def foreign(manifest):
        manifest["data"]["kind"] = "audio"
        manifest["plugin_package"] = "ember-audio"

    _rewrite_manifest(path, foreign)
    with pytest.raises(ember.PluginError, match="pip install ember-audio"):
        ember.load(path)


def test_a_missing_architecture_names_what_provided_it(trained, tmp_path):
    # the fix read "install builtin", the name of core's own plugin, not a package
    path = trained.export(tmp_path / "m.ember")

    def renamed(owner):
        def change(manifest):
            manifest["model"]["name"], manifest["model"]["plugin"] = "retired_mlp", owner
        return change

    _rewrite_manifest(path, renamed("builtin"))
    with pytest.raises(ember.PluginError, match=r"'retired_mlp'.*pip install -U ember"):
        ember.load(path)
    _rewrite_manifest(path, renamed("timeseries"))
    with pytest.raises(ember.PluginError, match=r"install the plugin 'timeseries'"):
        ember.load(path)


def test_truncated_and_foreign_files_are_refused(trained, tmp_path):
    path = trained.export(tmp_path / "m.ember")
    truncated = tmp_path / "cut.ember"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ember.ExportError, match="truncated"):
        ember.load(truncated)
    with pytest.raises(ember.ExportError, match="over the limit"):
        ember.load(path, max_bytes=100)
    other = tmp_path / "plain.bin"
    other.write_bytes(b"\x00" * 64)
    with pytest.raises(ember.ExportError):
        ember.load(other)


class Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_a_checkpoint_carrying_a_pickle_payload_runs_no_code(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ember-checkpoint", "version": 1, "model": Payload()}, evil)
    with pytest.raises(ember.ExportError, match="could not be read"):
        trained.load(evil)
    assert not (tmp_path / "PWNED").exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ember.ExportError):
        trained.load(raw)
    assert not (tmp_path / "PWNED").exists()


def test_crafted_model_files_run_no_code_and_write_nothing(trained, tmp_path, monkeypatch):
    """An .ember file holding a pickle payload, and one whose tensor names and manifest try
    path traversal, are refused with an ExportError; no code runs, no file appears."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    monkeypatch.chdir(tmp_path)
    pickled = tmp_path / "pickled.ember"
    pickled.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ember.ExportError):
        ember.load(pickled)
    path = trained.export(tmp_path / "m.ember")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    manifest = json.loads(metadata["ember_manifest"])
    del manifest["weights_sha256"]  # else refused as damaged before the names are looked at
    manifest["model"]["plugin"] = "../../PWNED"
    tensors["../../PWNED"] = torch.zeros(1)
    traversal = tmp_path / "sub" / "traversal.ember"
    traversal.parent.mkdir()
    save_file(tensors, str(traversal), metadata={"ember_manifest": json.dumps(manifest)})
    with pytest.raises(ember.ExportError, match=r"not in the model: \.\./\.\./PWNED"):
        ember.load(traversal)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path.parent / "PWNED").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ember", "pickled.ember", "sub"]


def test_a_model_not_built_by_name_cannot_be_exported_silently(tmp_path):
    learn = ember.Learner(blob_data(), torch.nn.Linear(8, 3), quiet=True)
    with pytest.raises(ember.ExportError, match="create_model"):
        learn.export(tmp_path / "m.ember")


def test_a_data_kind_no_plugin_registers_is_refused_at_export(tmp_path):
    # before, the file named plugin 'builtin' and ember.load said "pip install ember"
    class SeriesData(ember.Data):
        kind = "series"

    data = blob_data()
    data = SeriesData.from_loaders(data.train_dl, data.valid_dl)
    learn = ember.Learner(data, ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    with pytest.raises(ember.ExportError, match=r"register\('series', SeriesData\).*"
                                                r"ember\.register_plugin"):
        learn.export(tmp_path / "m.ember")
    assert not (tmp_path / "m.ember").exists()


class _Negated(ember.Data):
    """A user's tensor data (kind 'tensor', like the registered ember.Data) with its own
    preprocessing, which a loaded model would not replay."""

    def encode(self, items):
        (x,) = super().encode(items)
        return (-x,)


class _FromRows(ember.Data):
    """A user's tensor data with only a constructor of its own: nothing inference runs."""

    @classmethod
    def from_rows(cls, train, valid):
        return cls.from_loaders(train, valid)


def test_a_subclass_that_changes_inference_is_refused_not_loaded_as_the_registered_class(
        tmp_path):
    # before, the file said kind 'tensor' and ember.load rebuilt plain ember.Data: the
    # subclass's encode was lost and the loaded model predicted differently from the learner
    blobs = blob_data()
    ember.seed(0)
    learn = ember.Learner(_Negated.from_loaders(blobs.train_dl, blobs.valid_dl),
                          ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    learn.fit(1, 1e-2)
    with pytest.raises(ember.ExportError) as refused:
        learn.export(tmp_path / "m.ember")
    message = str(refused.value)
    assert "_Negated overrides encode of Data" in message
    assert "ember.register_plugin" in message and "into the model" in message
    assert not (tmp_path / "m.ember").exists()


def test_a_subclass_with_only_a_constructor_of_its_own_exports_and_predicts_alike(tmp_path):
    blobs = blob_data()
    learn = ember.Learner(_FromRows.from_rows(blobs.train_dl, blobs.valid_dl),
                          ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    predictor = ember.load(learn.export(tmp_path / "m.ember"))
    x, _ = blobs.valid_dl.dataset.tensors
    items = list(x[:16])
    assert predictor.predict_batch(items, probs=True) == learn.predict_batch(items, probs=True)


def test_a_subclass_of_a_plugins_data_that_changes_inference_names_itself(ember_plugins,
                                                                         tmp_path):
    # the registered class is a plugin's, whose __init__ takes arguments of its own: before,
    # the file was written and loaded as _Replayed, without the subclass's scale
    class Rescaled(_Replayed):
        def encode(self, items):
            (x,) = super().encode(items)
            return (x * self.scale,)

    ember_plugins.register(_scaled_plugin(_Replayed))
    blobs = blob_data()
    learn = ember.Learner(Rescaled(blobs.train_dl, blobs.valid_dl, scale=2.0),
                          ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    with pytest.raises(ember.ExportError, match=r"Rescaled overrides encode of _Replayed.*"
                                                r"kind = 'rescaled'"):
        learn.export(tmp_path / "m.ember")


class _ScaledData(ember.Data):
    """A plugin's Data with an __init__ of its own and a scale to replay at inference."""

    kind = "scaled"

    def __init__(self, train_dl, valid_dl, *, scale: float) -> None:
        super().__init__(train_dl, valid_dl, target_kind="single_label", n_out=3)
        self.scale = scale


def _scaled_plugin(data_class):
    import types

    plugin = types.ModuleType("scaled")

    @ember.hookimpl
    def ember_data_kinds(register):
        register("scaled", data_class)

    plugin.ember_data_kinds = ember_data_kinds
    return plugin


class _Forgetful(_ScaledData):  # from_state written, state() not extended
    @classmethod
    def from_state(cls, state):
        return cls(None, None, scale=state["scale"])


@pytest.mark.parametrize(("data_class", "message"), [
    (_ScaledData, r"_ScaledData\.from_state.*override"),  # no from_state of its own
    (_Forgetful, r"KeyError: 'scale'.*state\(\)"),
])
def test_data_that_from_state_cannot_rebuild_is_refused_at_export(ember_plugins, tmp_path,
                                                                 data_class, message):
    # before, the file was written and ember.load failed on it with "the file is corrupt or
    # from another version": the plugin's author was sent looking at the file, not the class
    ember_plugins.register(_scaled_plugin(data_class))
    blobs = blob_data()
    learn = ember.Learner(data_class(blobs.train_dl, blobs.valid_dl, scale=2.0),
                          ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    with pytest.raises(ember.ExportError, match=message):
        learn.export(tmp_path / "m.ember")
    assert not (tmp_path / "m.ember").exists()


class _Replayed(_ScaledData):  # state() and from_state both written: exports and loads
    def state(self):
        return {**super().state(), "scale": self.scale}

    @classmethod
    def from_state(cls, state):
        return cls(None, None, scale=state["scale"])


def test_a_model_from_a_registered_plugin_says_to_register_it_not_to_pip_install(
        ember_plugins, tmp_path):
    # before, a file exported while the plugin was given to ember.register_plugin (a notebook,
    # a plugin in development) was refused by a fresh process with "pip install scaled": the
    # plugin's name, which is no package of it (and may be someone else's on PyPI)
    name = ember_plugins.register(_scaled_plugin(_Replayed))
    blobs = blob_data()
    learn = ember.Learner(_Replayed(blobs.train_dl, blobs.valid_dl, scale=2.0),
                          ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    path = learn.export(tmp_path / "m.ember")
    ember.unregister_plugin(name)  # what a fresh process sees before it registers the plugin
    with pytest.raises(ember.PluginError) as refused:
        ember.load(path)
    message = str(refused.value)
    assert "pip install" not in message
    assert "ember.register_plugin" in message and "module 'scaled'" in message
    ember_plugins.register(_scaled_plugin(_Replayed))
    x, _ = blobs.valid_dl.dataset.tensors
    assert ember.load(path).predict_batch(list(x[:8])) == learn.predict_batch(list(x[:8]))


def test_numpy_classes_and_config_values_export_and_load(tmp_path):
    import numpy as np
    from torch.utils.data import TensorDataset

    ember.seed(0)
    x, y = torch.randn(96, 4), torch.randint(0, 3, (96,))
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:64], y[:64]),
                                               TensorDataset(x[64:], y[64:]), bs=16)
    classes = np.unique(y.numpy())  # np.int64 labels, as most label lists are made
    data = ember.Data.from_loaders(train_dl, valid_dl, classes=classes)
    model = ember.create_model("mlp", n_in=np.int64(4), n_out=len(classes),
                               dropout=np.float32(0.0))
    learn = ember.Learner(data, model, path=tmp_path, quiet=True)
    learn.fit(1, 1e-2)
    predictor = ember.load(learn.export("numpy"))
    items = list(x[64:])
    assert predictor.predict_batch(items) == learn.predict_batch(items)
    assert predictor.classes == [0, 1, 2]


def test_a_state_value_that_is_not_json_names_the_class_and_key(ember_plugins, tmp_path):
    # before: "the preprocessing state is not JSON-able (... tensor(2.))", which named neither
    # the Data class nor which of its state() entries held the tensor
    class TensorState(_Replayed):
        def state(self):
            return {**super().state(), "scale": torch.tensor(self.scale)}

    ember_plugins.register(_scaled_plugin(TensorState))
    blobs = blob_data()
    learn = ember.Learner(TensorState(blobs.train_dl, blobs.valid_dl, scale=2.0),
                          ember.create_model("mlp", n_in=8, n_out=3), quiet=True)
    with pytest.raises(ember.ExportError, match=r"TensorState\.state\(\)\['scale'\].*Tensor"):
        learn.export(tmp_path / "m.ember")


def test_a_model_config_that_is_not_json_is_named_in_the_error(trained, tmp_path):
    trained.model.ember_config["config"]["activation"] = torch.nn.ReLU()
    with pytest.raises(ember.ExportError, match=r"model config .*ReLU"):
        trained.export(tmp_path / "m.ember")


def test_onnx_export_matches_onnxruntime(trained, tmp_path):
    import numpy as np
    import onnxruntime

    path = trained.export_onnx(tmp_path / "model.onnx")
    x, _ = trained.data.valid_dl.dataset.tensors
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 17):  # the batch size is dynamic
        (got,) = session.run(None, {"input0": x[:n].numpy()})
        trained.model.eval()
        with torch.no_grad():
            expected = trained.model(x[:n]).numpy()
        assert np.abs(got - expected).max() <= 1e-4


def test_a_model_the_user_compiled_exports_a_file_that_loads(tmp_path):
    # torch.compile(model) given to the learner: the export stored the wrapper's weight names
    # (_orig_mod.body.1.weight, ...) and ember.load refused the file as edited or corrupt
    ember.seed(0)
    data = blob_data()
    model = torch.compile(ember.create_model("mlp", n_in=8, n_out=3), backend="eager")
    learn = ember.learner(data, model=model, path=tmp_path, quiet=True)
    learn.fit(1, 1e-2)
    predictor = ember.load(learn.export("model"))
    x, _ = data.valid_dl.dataset.tensors
    assert predictor.predict_batch(list(x[:20])) == learn.predict_batch(list(x[:20]))
    assert not any(name.startswith("_orig_mod") for name in predictor.model.state_dict())


def test_check_onnx_on_inputs_the_graph_refuses_is_an_export_error_naming_them(trained,
                                                                              tmp_path):
    # onnxruntime's own error type came through raw ("[ONNXRuntimeError] : 2 :
    # INVALID_ARGUMENT ..."), unlike every other failed check
    pytest.importorskip("onnxruntime")
    from ember.export import check_onnx

    path = trained.export_onnx(tmp_path / "model.onnx", check=False)
    x, _ = trained.data.valid_dl.dataset.tensors
    with pytest.raises(ember.ExportError, match=r"ONNX check failed for .*model\.onnx: "
                                                r"onnxruntime cannot run it on the inputs "
                                                r"\(input0 \(2, 5\)\): .*INVALID_ARGUMENT"):
        check_onnx(path, trained.model, (x[:2, :5],))  # 5 features; the model takes 8
    assert check_onnx(path, trained.model, (x[:2],)) <= 1e-4


def test_an_onnx_export_that_fails_its_check_leaves_the_previous_file(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from ember.export import export_onnx

    path = tmp_path / "deployed.onnx"
    path.write_bytes(b"the model in production")
    with pytest.raises(ember.ExportError, match=r"parity check failed for .*deployed\.onnx.*"
                                                r"was not written"):
        export_onnx(trained, path, atol=-1.0)  # no output is within a negative tolerance
    assert path.read_bytes() == b"the model in production"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployed.onnx"]  # no leftovers
    export_onnx(trained, path)  # a checked export replaces it
    assert path.read_bytes() != b"the model in production"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployed.onnx"]


def test_predict_and_export_leave_each_module_in_its_mode(tmp_path):
    # a BatchNorm kept in eval mode inside a training model (the frozen-BatchNorm policy does
    # this mid-epoch) must stay so after an inference step, not come back in training mode
    from torch import nn

    ember.seed(0)
    model = ember.create_model("mlp", n_in=8, n_out=3, hidden=[16])
    learn = ember.Learner(blob_data(), model, quiet=True, path=tmp_path)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms
    model.train()
    norms[0].eval()
    x, _ = learn.data.valid_dl.dataset.tensors
    learn.predict(x[0])
    learn.export("model")
    assert model.training and not norms[0].training
    assert all(m.training for m in model.modules() if m is not norms[0])


def test_an_exported_file_is_readable_as_open_would_make_it(trained, tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = trained.export("model")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # a server run as another user reads it
        path.chmod(0o640)
        trained.export("model")  # overwriting keeps the permissions the user chose
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        saved = trained.save("stage1")
        assert stat.S_IMODE(saved.stat().st_mode) == 0o644
    finally:
        os.umask(mask)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_loading_an_exported_file_as_a_checkpoint_says_which_is_which(trained, tmp_path):
    # learn.load(export) gave torch's page-long weights_only unpickling error
    path = trained.export(tmp_path / "model.ember")
    with pytest.raises(ember.ExportError, match=r"is an exported model \(learn.export\), not a "
                                                r"checkpoint .*ember.load"):
        trained.load(path)
    trained.model.load_state_dict(ember.load(path).model.state_dict())  # as the message says



def test_loading_a_checkpoint_as_an_exported_model_says_which_is_which(trained, tmp_path):
    # ember.load(learn.save's file) called a good checkpoint "truncated, corrupt, or another
    # format: ... header too large"; ember serve said the same
    saved = trained.save("stage1")
    with pytest.raises(ember.ExportError, match=r"is a PyTorch file \(torch.save: a checkpoint "
                                                r"written by learn.save.*learn.load\(.*"
                                                r"learn.export") as refusal:
        ember.load(saved)
    assert "corrupt" not in str(refusal.value)
    trained.load(saved)  # as the message says: it is a good checkpoint
    zipped = tmp_path / "notes.ember"  # a zip that torch did not write is not called one
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ember.ExportError, match="not a readable Ember model file"):
        ember.load(zipped)

def _data_section(path) -> tuple[int, dict]:
    """Where the tensor data of a safetensors file starts, and its header."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    return 8 + length, json.loads(raw[8:8 + length])


def _flip_byte(path, position: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0x01  # the lowest bit: a float weight changes by a hair, nothing crashes
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_in_the_weights_is_refused_as_damaged(trained, tmp_path, where):
    # before, the file loaded and predicted with the changed weight, saying nothing
    path = trained.export(tmp_path / "m.ember")
    start, header = _data_section(path)
    weight = header["body.1.weight"]["data_offsets"] if where == "middle" else None
    position = {"first": start, "last": path.stat().st_size - 1,
                "middle": start + (weight[0] + weight[1]) // 2 if weight else None}[where]
    _flip_byte(path, position)
    with pytest.raises(ember.ExportError, match=r"m\.ember is damaged: its weights do not match "
                                                r"the SHA-256 digest .*export the model again, "
                                                r"or copy the file again"):
        ember.load(path)


@pytest.mark.parametrize("change, reason", [
    (lambda raw: raw[:-1], "truncated"), (lambda raw: raw[:-1000], "truncated"),
    (lambda raw: raw + b"\n", "appended"), (lambda raw: raw + raw, "appended")])
def test_a_file_cut_short_or_with_bytes_appended_is_refused_as_damaged(trained, tmp_path,
                                                                        change, reason):
    # before, safetensors' own "incomplete metadata, file not fully covered"
    path = trained.export(tmp_path / "m.ember")
    size = path.stat().st_size
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(ember.ExportError, match=rf"m\.ember is damaged: it is {path.stat().st_size}"
                                                rf" bytes long but its header describes {size}.*"
                                                rf"{reason}.*export the model again, or copy"):
        ember.load(path)
    from ember.export import read_manifest

    with pytest.raises(ember.ExportError, match=r"is damaged"):
        read_manifest(path)


def test_a_file_cut_inside_its_header_is_refused_as_damaged(trained, tmp_path):
    path = trained.export(tmp_path / "m.ember")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ember.ExportError, match=r"m\.ember is damaged: it is 40 bytes long but "
                                                r"its header alone is \d+.*truncated"):
        ember.load(path)


def test_the_weights_load_bit_for_bit_and_their_digest_is_in_the_manifest(trained, tmp_path):
    from safetensors.torch import load_file

    from ember.export import weights_digest

    path = trained.export(tmp_path / "m.ember")
    predictor = ember.load(path)
    digest = predictor.manifest["weights_sha256"]
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert weights_digest(load_file(str(path))) == digest
    expected, got = trained.model.state_dict(), predictor.model.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key].cpu(), got[key]) for key in expected)


def test_a_file_exported_before_the_digest_still_loads(trained, tmp_path):
    # what Ember wrote before: save_model with a manifest that has no weights_sha256
    from safetensors.torch import save_model

    from ember.export import read_manifest

    path = trained.export(tmp_path / "m.ember")
    manifest = read_manifest(path)
    assert manifest.pop("weights_sha256")
    old = tmp_path / "old.ember"
    trained.model.eval()
    save_model(trained.model, str(old), metadata={"ember_manifest": json.dumps(manifest)})
    predictor = ember.load(old)
    x, _ = trained.data.valid_dl.dataset.tensors
    items = list(x[:50])
    assert predictor.predict_batch(items) == trained.predict_batch(items)
    assert "weights_sha256" not in predictor.manifest


@pytest.mark.parametrize("digest", [123, "abc", "G" * 64, None])
def test_a_malformed_digest_is_a_corrupt_manifest(trained, tmp_path, digest):
    path = trained.export(tmp_path / "m.ember")
    _rewrite_manifest(path, lambda m: m.update(weights_sha256=digest))
    with pytest.raises(ember.ExportError, match=r"corrupt manifest.*weights_sha256"):
        ember.load(path)


class TiedMLP(torch.nn.Module):
    """Two layers that share one weight matrix, as a language model's embedding and decoder."""

    def __init__(self, n_in: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.first, self.second = torch.nn.Linear(n_in, n_in), torch.nn.Linear(n_in, n_in)
        self.second.weight = self.first.weight
        self.head = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.head(torch.relu(self.second(torch.relu(self.first(x)))))


def _trained_on_blobs(name: str, architecture: type, tmp_path) -> ember.Learner:
    """A learner of the architecture ``architecture``, registered as ``name`` by a plugin of
    the test's own (export needs a registered architecture), fitted one epoch."""
    import types

    plugin = types.ModuleType(f"{name}_plugin")

    @ember.hookimpl
    def ember_architectures(register):
        register(name, architecture)

    plugin.ember_architectures = ember_architectures
    ember.register_plugin(plugin)
    ember.seed(0)
    learn = ember.Learner(blob_data(), ember.create_model(name), path=tmp_path, quiet=True)
    learn.fit(1, 1e-2)
    return learn


def test_tied_weights_are_stored_once_and_checked(tmp_path):
    learn = _trained_on_blobs("tied_mlp", TiedMLP, tmp_path)
    path = learn.export("tied")
    start, header = _data_section(path)
    assert {"first.weight", "second.weight"} & header.keys() == {"first.weight"}
    predictor = ember.load(path)
    assert predictor.model.second.weight is predictor.model.first.weight
    x, _ = learn.data.valid_dl.dataset.tensors
    assert predictor.predict_batch(list(x[:20])) == learn.predict_batch(list(x[:20]))
    offsets = header["first.weight"]["data_offsets"]
    _flip_byte(path, start + offsets[0] + 5)
    with pytest.raises(ember.ExportError, match="is damaged"):
        ember.load(path)


class RowBuffer(torch.nn.Module):
    """A buffer that is a view of part of a parameter (its first row), as a module that keeps
    a handle on a slice of its own weights."""

    def __init__(self, n_in: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)
        self.register_buffer("row", self.linear.weight.data[0])

    def forward(self, x):
        return self.linear(x)


def test_a_buffer_that_is_a_slice_of_a_parameter_exports_and_loads(tmp_path):
    # it was stored as a copy of its own, and safetensors' load_model, which leaves a slice
    # of a tensor it loads out of the names it fills, reported it as unexpected: the export
    # (and safetensors.torch.save_model's before it) could not be loaded
    learn = _trained_on_blobs("row_buffer", RowBuffer, tmp_path)
    path = learn.export("row")
    loaded = ember.load(path).model
    _, header = _data_section(path)
    assert "row" not in header and header["__metadata__"]["row"] == "linear.weight"
    assert torch.equal(loaded.linear.weight, learn.model.linear.weight)
    assert torch.equal(loaded.row, learn.model.linear.weight[0])
    assert loaded.row.data_ptr() == loaded.linear.weight.data_ptr()  # still a view of it


def test_bfloat16_weights_are_checked_byte_for_byte(trained, tmp_path):
    # bfloat16 has no NumPy dtype: the digest reads the raw bytes
    trained.model.to(torch.bfloat16)
    path = trained.export(tmp_path / "m.ember")
    start, header = _data_section(path)
    assert header["body.1.weight"]["dtype"] == "BF16"
    predictor = ember.load(path)
    weights = trained.model.state_dict()
    loaded = predictor.model.state_dict()
    assert all(torch.equal(weights[key].float(), loaded[key].float()) for key in weights)
    offsets = header["body.1.weight"]["data_offsets"]
    _flip_byte(path, start + offsets[0] + 1)  # the high byte of the first weight
    with pytest.raises(ember.ExportError, match="is damaged"):
        ember.load(path)


def _stored_metadata(path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    return metadata, tensors


def _edit_stored_manifest(path, old: str, new: str) -> None:
    """Change ``old`` to ``new`` in the manifest's stored JSON text and write the file again
    with the same weights and every other metadata entry: a careless edit, or a disk that
    changed a character and left the JSON valid."""
    from safetensors.torch import save_file

    metadata, tensors = _stored_metadata(path)
    assert metadata["ember_manifest"].count(old) == 1
    metadata["ember_manifest"] = metadata["ember_manifest"].replace(old, new)
    json.loads(metadata["ember_manifest"])  # still valid JSON
    save_file(tensors, str(path), metadata=metadata)


@pytest.fixture
def named(tmp_path):
    """A classifier whose class names are in its manifest."""
    from .helpers import blobs

    ember.seed(0)
    x, y = blobs(256).tensors
    train_dl, valid_dl, _ = ember.make_loaders(torch.utils.data.TensorDataset(x[:200], y[:200]),
                                               torch.utils.data.TensorDataset(x[200:], y[200:]),
                                               bs=32)
    data = ember.Data.from_loaders(train_dl, valid_dl, classes=["ant", "bee", "cat"])
    learn = ember.learner(data, path=tmp_path, quiet=True)
    learn.fit_one_cycle(1, 1e-2)
    return learn


@pytest.mark.parametrize("old, new", [
    ('"n_out": 3, "input_kind"', '"n_out": 4, "input_kind"'),  # a number of the data's state
    ('"bee"', '"bed"'),  # a class name
    ('"format_version": 1', '"format_version":  1')])  # a space: the text, not its meaning
def test_a_manifest_changed_after_export_is_refused_as_damaged(named, tmp_path, old, new):
    # before, the file loaded and predicted with the changed manifest, saying nothing
    from ember.export import read_manifest

    path = named.export(tmp_path / "m.ember")
    _edit_stored_manifest(path, old, new)
    message = (r"m\.ember is damaged: its manifest .* does not match the SHA-256 digest recorded "
               r"when it was exported, so it was changed after export .*export the model again "
               r"\(load its checkpoint .* or run the training script again\), or copy the file "
               r"again")
    with pytest.raises(ember.ExportError, match=message):
        ember.load(path)
    with pytest.raises(ember.ExportError, match=message):
        read_manifest(path)


def test_an_export_records_the_sha256_of_its_manifest_text(named, tmp_path):
    import hashlib

    path = named.export(tmp_path / "m.ember")
    metadata, _ = _stored_metadata(path)
    text = metadata["ember_manifest"]
    assert metadata["ember_manifest_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    predictor = ember.load(path)  # intact: loads, and predicts as the learner
    x, _ = named.data.valid_dl.dataset.tensors
    items = list(x[:20])
    assert predictor.predict_batch(items) == named.predict_batch(items)
    assert predictor.classes == ["ant", "bee", "cat"]
    assert predictor.manifest == json.loads(text)


def test_a_file_exported_before_the_manifest_digest_still_loads(named, tmp_path):
    # what Ember wrote before: the same file without the ember_manifest_sha256 entry
    from safetensors.torch import save_file

    path = named.export(tmp_path / "m.ember")
    metadata, tensors = _stored_metadata(path)
    assert metadata.pop("ember_manifest_sha256")
    old = tmp_path / "old.ember"
    save_file(tensors, str(old), metadata=metadata)
    predictor = ember.load(old)
    x, _ = named.data.valid_dl.dataset.tensors
    items = list(x[:20])
    assert predictor.predict_batch(items) == named.predict_batch(items)
    assert predictor.manifest == ember.load(path).manifest


def test_the_weights_check_still_refuses_changed_weights_under_an_intact_manifest(named,
                                                                                   tmp_path):
    path = named.export(tmp_path / "m.ember")
    start, _ = _data_section(path)
    _flip_byte(path, start + 4)
    from ember.export import read_manifest

    assert read_manifest(path)["weights_sha256"]  # the manifest itself is intact
    with pytest.raises(ember.ExportError, match=r"m\.ember is damaged: its weights do not match"):
        ember.load(path)


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(trained, tmp_path, monkeypatch):
    # before, learn.export("~/models/m.ember") wrote ./~/models/m.ember under the working
    # folder (a folder named "~"), and ember.load("~/...") found no file from anywhere else
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    path = trained.export("~/models/m.ember")
    assert path == home / "models" / "m.ember" and path.is_file()
    assert not (elsewhere / "~").exists()
    monkeypatch.chdir(tmp_path)
    x, _ = trained.data.valid_dl.dataset.tensors
    assert ember.load("~/models/m.ember").predict_batch(list(x[:5])) == \
        trained.predict_batch(list(x[:5]))
    assert read_checkpoint(trained.save("~/models/stage.pt"))["format"] == \
        "ember-checkpoint"
    assert (home / "models" / "stage.pt").is_file()
    trained.load("~/models/stage.pt")  # and the learner reads it back from there


def test_export_to_a_folder_a_long_name_or_under_a_file_says_what_is_wrong(trained, tmp_path):
    # before: a path that is a folder was "Is a directory: '.../.name.1a2b.tmp' -> ..." (a
    # temporary file the user never named); a valid name of 240 characters failed with "File
    # name too long" (the temporary name is longer); a path under a file was "File exists"
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"models is a folder, not a file"):
        trained.export(folder)
    long_name = tmp_path / ("m" * 240 + ".ember")
    assert ember.load(trained.export(long_name)).manifest["model"]["name"] == "mlp"
    good = trained.export(tmp_path / "good.ember")
    with pytest.raises(NotADirectoryError, match=r"good\.ember is a file, not a folder"):
        trained.export(good / "inside.ember")
    assert ember.load(good).manifest["model"]["name"] == "mlp"  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_onnx_export_to_a_folder_a_long_name_or_under_a_file_says_what_is_wrong(
        trained, tmp_path, monkeypatch):
    # as learn.export above, fixed there only: a folder was "Is a directory: '.../.models.x/
    # models' -> ..." after tracing and the check, and "." was blamed on the model ("BodyHead
    # cannot be exported to ONNX (IsADirectoryError ...)"); a path under a file was "File
    # exists"; a valid name of 250 characters failed "File name too long"
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"models is a folder, not a file"):
        trained.export_onnx(folder)
    monkeypatch.chdir(folder)
    with pytest.raises(IsADirectoryError, match=r"^\. is a folder, not a file"):
        trained.export_onnx(".")
    good = tmp_path / "good.onnx"
    good.write_bytes(b"the model in production")
    with pytest.raises(NotADirectoryError, match=r"good\.onnx is a file, not a folder"):
        trained.export_onnx(good / "inside.onnx")
    assert good.read_bytes() == b"the model in production"
    long_name = trained.export_onnx(tmp_path / ("m" * 250 + ".onnx"))
    assert long_name.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_config_edited_to_build_a_huge_model_is_refused_before_it_is_built(trained,
                                                                             tmp_path):
    # before, ember.load built the model of the config first: 4 TB for this one (a raw
    # "not enough memory" RuntimeError from torch's allocator, or the machine out of memory)
    from ember.export import manifest_digest

    path = trained.export(tmp_path / "m.ember")
    metadata, tensors = _stored_metadata(path)
    manifest = json.loads(metadata["ember_manifest"])
    assert manifest["model"]["config"] == {"n_in": 8, "n_out": 3}  # hidden: the default
    manifest["model"]["config"]["hidden"] = [10**6, 10**6]
    metadata["ember_manifest"] = json.dumps(manifest)
    metadata["ember_manifest_sha256"] = manifest_digest(metadata["ember_manifest"])
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    assert path.stat().st_size < 1024**2
    message = (r"m\.ember: the model its config builds does not fit its weights \(shapes "
               r"differ for .*: \(200, 8\) in the file, \(1000000, 8\) in the model")
    with pytest.raises(ember.ExportError, match=message):
        ember.load(path)


def test_an_exported_regression_keeps_its_targets_shape_for_unlabelled_predictions(tmp_path):
    # a learner on an exported model's data has no training loader to read the targets'
    # shape from: the export records it, so an unlabelled loader's predictions are (N,) as
    # the targets (N,) were, not the model's (N, 1)
    from torch.utils.data import DataLoader, TensorDataset

    from .helpers import regression_data

    learn = ember.learner(regression_data(), path=tmp_path, quiet=True, device="cpu")
    predictor = ember.load(learn.export("model"))
    assert predictor.manifest["data"]["state"]["target_shape"] == []
    assert predictor.data.target_shape == ()
    again = ember.Learner(predictor.data, predictor.model, quiet=True, device="cpu")
    x = learn.data.valid_dl.dataset.tensors[0][:6]
    predictions, targets = again.get_preds(DataLoader(TensorDataset(x), batch_size=4))
    assert targets is None and predictions.shape == (6,)
    assert predictions.tolist() == pytest.approx(predictor.predict_batch(list(x)), abs=1e-6)


class _HandMade(torch.nn.Module):  # a model built without ember.create_model
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.body = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.body(x)


def _hand_made_learner(tmp_path) -> ember.Learner:
    model = _HandMade(8, 3)
    model.ember_config = {"name": "hand_made", "config": {"n_in": 8, "n_out": 3}}
    return ember.Learner(blob_data(), model, path=tmp_path, quiet=True)


def test_a_model_config_nothing_rebuilds_is_refused_at_export(ember_plugins, tmp_path):
    # before, the file was written and ember.load refused it with "needs the architecture
    # 'hand_made', which no installed plugin provides; ... register it again", though the
    # plugin was loaded: what it lacked was an ember_rebuild_model for that name
    learn = _hand_made_learner(tmp_path)
    with pytest.raises(ember.ExportError, match=r"'hand_made'.*ember_rebuild_model"):
        learn.export(tmp_path / "m.ember")
    assert not (tmp_path / "m.ember").exists()
    plugin = type("Rebuilds", (), {})()  # once a plugin rebuilds it, it exports and loads
    plugin.ember_rebuild_model = ember.hookimpl(
        lambda manifest: _HandMade(**manifest["model"]["config"])
        if manifest["model"]["name"] == "hand_made" else None)
    ember_plugins.register(plugin, name="rebuilds")
    path = learn.export(tmp_path / "m.ember")
    x, _ = learn.data.valid_dl.dataset.tensors
    assert ember.load(path).predict_batch(list(x[:8])) == learn.predict_batch(list(x[:8]))


def _misreading_plugin() -> object:
    """A plugin whose ember_rebuild_model reads a config key the manifest does not hold."""
    plugin = type("Misreads", (), {})()
    plugin.ember_rebuild_model = ember.hookimpl(
        lambda manifest: _HandMade(manifest["model"]["config"]["n_inputs"], 3))
    return plugin


def test_an_ember_rebuild_model_that_raises_is_named_at_export(ember_plugins, tmp_path):
    # before: "... no loaded plugin's ember_rebuild_model returns a model for it", though the
    # plugin's hook had raised (it was skipped and listed as broken): the reason was lost
    learn = _hand_made_learner(tmp_path)
    ember_plugins.register(_misreading_plugin(), name="misreads")
    with pytest.raises(ember.ExportError,
                       match=r"'hand_made'.* plugin 'misreads' raised in ember_rebuild_model "
                             r"\(KeyError: 'n_inputs'\).*fix that hook"):
        learn.export(tmp_path / "m.ember")
    assert not (tmp_path / "m.ember").exists()


def test_load_names_an_ember_rebuild_model_that_raised(ember_plugins, tmp_path):
    # before: "needs the architecture 'hand_made', which no installed plugin provides; install
    # ...", with no word of the loaded plugin whose hook had raised on this very file
    learn = _hand_made_learner(tmp_path)
    works = type("Rebuilds", (), {})()
    works.ember_rebuild_model = ember.hookimpl(
        lambda manifest: _HandMade(**manifest["model"]["config"]))
    ember_plugins.register(works, name="rebuilds")
    path = learn.export(tmp_path / "m.ember")
    ember.unregister_plugin("rebuilds")
    ember_plugins.register(_misreading_plugin(), name="misreads")
    with pytest.raises(ember.PluginError,
                       match=r"needs the architecture 'hand_made'.*\(plugin 'misreads' raised "
                             r"in ember_rebuild_model \(KeyError: 'n_inputs'\)\)"):
        ember.load(path)


def test_an_onnx_export_to_a_read_only_folder_names_it_before_tracing(trained, tmp_path):
    # the tracer's temporary folder was named: "Operation not permitted: '.../.m.onnx.p6q79fxz'"
    pytest.importorskip("onnxruntime")
    with read_only(tmp_path / "shipped") as folder:
        with pytest.raises(PermissionError, match=r"m\.onnx cannot be written: .*shipped does "
                                                  r"not let this process create files"):
            trained.export_onnx(folder / "m.onnx")
        with pytest.raises(PermissionError, match=r"m\.ember cannot be written: .*shipped"):
            trained.export(folder / "m.ember")


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps", "gpu", torch.device("cuda", 9)])
def test_a_device_this_machine_lacks_is_refused_naming_it_before_the_file_is_read(
        trained, tmp_path, device):
    # before, ember.load(path, device="cuda") on a machine without a GPU read and rebuilt the
    # whole model, then failed in model.to with torch's "Found no NVIDIA driver on your
    # system" (and device="gpu" with torch's list of every device type it knows)
    if (str(device) == "cuda" and torch.cuda.is_available()) or torch.cuda.device_count() > 9:
        pytest.skip("this machine has that CUDA device")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    path = trained.export("model")
    with pytest.raises(ember.ExportError, match=rf"device={re.escape(repr(device))}.*device="
                                                r"'auto' .*device='cpu'"):
        ember.load(path, device=device)
    with pytest.raises(ember.TrainingError, match=rf"device={re.escape(repr(device))}"):
        ember.Learner(trained.data, torch.nn.Linear(8, 3), device=device)
    assert ember.load(path, device="auto").predict(torch.zeros(8)) in (0, 1, 2)


def test_an_onnx_file_given_to_ember_load_or_learn_load_is_named_as_onnx(trained, tmp_path):
    # before, ember.load said "not a readable Ember model file (truncated, corrupt, or another
    # format): Error while deserializing header: header too large" (a sound file called
    # corrupt), and learn.load passed on torch's advice to load it with weights_only=False
    path = trained.export_onnx(tmp_path / "model.onnx", check=False)
    with pytest.raises(ember.ExportError, match=r"is an ONNX model \(learn.export_onnx\), not "
                                                r"an Ember export; run it with onnxruntime"):
        ember.load(path)
    with pytest.raises(ember.ExportError, match=r"is an ONNX model \(learn.export_onnx\), not "
                                                r"a checkpoint \(learn.save\)"):
        trained.load(path)


def test_a_refused_checkpoint_never_advises_loading_it_with_weights_only_false(trained,
                                                                               tmp_path):
    # before, the error quoted torch's first line: "Re-running `torch.load` with
    # `weights_only` set to `False` will likely succeed, but it can result in arbitrary code
    # execution": advice to run the code of a file crafted to run code
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ember-checkpoint", "version": 1, "model": Payload()}, evil)
    with pytest.raises(ember.ExportError) as refused:
        trained.load(evil)
    message = str(refused.value)
    assert "weights_only" not in message and "False" not in message, message
    assert re.search(r"\(it holds a pickled (builtins\.)?exec, not only tensors", message)
    assert "Ember never unpickles other objects (that could run code)" in message
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(trained.save("stage").read_bytes()[:3000])
    with pytest.raises(ember.ExportError, match=r"cut.pt could not be read as an Ember "
                                                r"checkpoint \(PytorchStreamReader failed "
                                                r"reading zip archive: failed finding central "
                                                r"directory\); it may be truncated"):
        trained.load(truncated)
