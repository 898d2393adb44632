"""Compact CNN and torchvision architectures: body/head split, pooled head, pretrained weights
from local files (never the network), freezing and discriminative learning rates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData
from ember_vision.models import (
    ConcatPool2d,
    VisionModel,
    compact_cnn,
    torchvision_model,
    vision_model,
)


def test_compact_cnn_is_a_small_body_head_with_three_groups():
    model = compact_cnn(1, 10)
    assert isinstance(model, ember.BodyHead) and isinstance(model, VisionModel)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) < 100_000
    groups = ember.split_groups(model)
    assert len(groups) == 3
    assert {id(p) for p in groups[-1]} == {id(p) for p in model.head.parameters()}


def test_concat_pool_is_average_and_max():
    features = torch.arange(8.0).reshape(1, 2, 2, 2)
    assert ConcatPool2d()(features).tolist() == [[1.5, 5.5, 3.0, 7.0]]


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0", "convnext_tiny"])
def test_torchvision_architectures_cut_into_body_and_pooled_head(arch):
    model = ember.create_model(arch, n_out=3, n_channels=3)
    assert isinstance(model.head[0], ConcatPool2d)
    model.eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)
    assert len(ember.split_groups(model)) == 3


def test_pretrained_weights_come_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model = torchvision_model("resnet18", n_out=5, pretrained=tmp_path / "resnet18.pth")
    assert torch.equal(model.body[0].weight, source.conv1.weight)
    assert torch.equal(model.body[4][0].conv1.weight, source.layer1[0].conv1.weight)
    grey = torchvision_model("resnet18", n_out=5, n_channels=1,
                             pretrained=str(tmp_path / "resnet18.pth"))
    assert torch.allclose(grey.body[0].weight, source.conv1.weight.sum(1, keepdim=True))
    fresh = torchvision_model("resnet18", n_out=5)
    assert not torch.equal(fresh.body[0].weight, source.conv1.weight)


def test_a_pretrained_file_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    # "~/resnet18.pth" was read as a file under a folder named "~": "no weights file"
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    monkeypatch.setenv("HOME", str(tmp_path))
    for pretrained in ("~/resnet18.pth", Path("~/resnet18.pth")):
        model = torchvision_model("resnet18", n_out=5, pretrained=pretrained)
        assert torch.equal(model.body[0].weight, source.conv1.weight)


def test_pretrained_safetensors_weights_are_read_by_content_not_by_name(tmp_path):
    # a safetensors state dict saved under a .pth name (what many hubs hand out) went to
    # torch.load, which cannot read it
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    save_file(source.state_dict(), tmp_path / "resnet18.pth")
    model = torchvision_model("resnet18", n_out=5, pretrained=tmp_path / "resnet18.pth")
    assert torch.equal(model.body[0].weight, source.conv1.weight)


def test_bad_pretrained_weights_get_clear_errors(tmp_path):
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "other.pth")
    with pytest.raises(ember.DataError, match="do not fit torchvision's resnet18"):
        torchvision_model("resnet18", pretrained=tmp_path / "other.pth")
    with pytest.raises(ember.DataError, match="no weights file"):
        torchvision_model("resnet18", pretrained=tmp_path / "missing.pth")
    with pytest.raises(ember.DataError, match="no weights 'NOT_A_NAME'"):
        torchvision_model("resnet18", pretrained="NOT_A_NAME")  # checked before any download
    with pytest.raises(ember.DataError, match="no architecture 'resnet9000'"):
        torchvision_model("resnet9000")


def test_vision_model_sizes_to_data_and_keeps_pretrained_out_of_the_config(tmp_path, fashion):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "weights.pth")
    (x, y), _ = fashion
    data = ImageData.from_arrays(x[:40], y[:40], bs=8)
    model = vision_model("resnet18", data, pretrained=tmp_path / "weights.pth")
    assert model.ember_config["config"] == {"n_out": 10, "n_channels": 1}
    state = torch.load(tmp_path / "weights.pth", weights_only=True)
    assert torch.allclose(model.body[0].weight, state["conv1.weight"].sum(1, keepdim=True))


def test_freeze_trains_the_head_only_and_fine_tune_uses_discriminative_lrs(fashion):
    (x, y), _ = fashion
    ember.seed(0)
    data = ImageData.from_arrays(x[:256], y[:256], bs=32, augment=False)
    learn = ember.learner(data)
    body_conv = learn.model.body[0][0].weight.detach().clone()
    head_linear = learn.model.head[-1].weight.detach().clone()
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    assert torch.equal(learn.model.body[0][0].weight, body_conv)
    assert not torch.equal(learn.model.head[-1].weight, head_linear)
    lrs = learn.lr_for_groups(slice(1e-5, 1e-3))
    assert len(lrs) == 3 and lrs[0] < lrs[1] < lrs[2]

    seen = []

    class Record(ember.Callback):
        def before_fit(self):
            seen.append(sorted({g["lr"] for g in self.learn.opt.param_groups
                                if g["params"][0].requires_grad}))

    learn.fine_tune(1, base_lr=2e-3, freeze_epochs=1, cbs=[Record()])
    assert not torch.equal(learn.model.body[0][0].weight, body_conv)
    assert len(seen) == 2


def test_body_pretrained_by_ember_is_loaded_from_a_checkpoint(fashion, tmp_path):
    (x, y), _ = fashion
    source = ImageData.from_arrays(x[:200], y[:200], classes=FASHION_MNIST_CLASSES, bs=32)
    learn = ember.learner(source, quiet=True)
    learn.fit(1, 1e-3)
    checkpoint = learn.save(tmp_path / "source.pt")
    parity = ["even" if v % 2 == 0 else "odd" for v in y[200:300]]
    target = ImageData.from_arrays(x[200:300], parity)
    model = vision_model("compact_cnn", target, pretrained=checkpoint, widths=[16, 32, 64])
    for key, value in learn.model.body.state_dict().items():
        assert torch.equal(model.body.state_dict()[key], value)
    assert model.head[-1].out_features == 2  # a new head for the new classes
    assert "pretrained" not in model.ember_config["config"]
    with pytest.raises(ember.DataError, match="does not fit this compact_cnn"):
        vision_model("compact_cnn", target, pretrained=checkpoint, widths=[8, 16])
    with pytest.raises(ember.DataError, match="no published weights"):
        vision_model("compact_cnn", target, pretrained="DEFAULT")


def test_body_pretrained_by_ember_is_loaded_from_an_exported_file(fashion, tmp_path):
    # an exported model.ember (safetensors + manifest) was not taken as a file: compact_cnn
    # said it "has no published weights", resnet18 that torchvision has no weights of that name
    (x, y), _ = fashion
    source = ember.learner(ImageData.from_arrays(x[:100], y[:100], bs=32), quiet=True)
    exported = source.export(tmp_path / "source.ember")
    target = ImageData.from_arrays(x[100:200], ["even" if v % 2 == 0 else "odd"
                                                for v in y[100:200]])
    for pretrained in (exported, str(exported)):
        model = vision_model("compact_cnn", target, pretrained=pretrained)
        for key, value in source.model.body.state_dict().items():
            assert torch.equal(model.body.state_dict()[key], value)
        assert model.head[-1].out_features == 2


def test_a_pretrained_file_is_one_rule_and_a_foreign_one_is_named(fashion, tmp_path):
    # a file was told apart from a weights name two ways: the body of an Ember model in
    # "body.bin" or "models/body" was not read as one ("compact_cnn has no published
    # weights"; resnet18 said the file did not fit torchvision's resnet18), and a torchvision
    # state dict given to compact_cnn was answered "has no published weights; give the file
    # of an Ember model", though a file had been given
    (x, y), _ = fashion
    target = ImageData.from_arrays(x[:100], y[:100], bs=32)
    for arch in ("compact_cnn", "resnet18"):
        source = vision_model(arch, target)
        for name in ("body.bin", "models/body"):
            (tmp_path / name).parent.mkdir(exist_ok=True)
            torch.save(source.state_dict(), tmp_path / name)
            model = vision_model(arch, target, pretrained=str(tmp_path / name))
            for key, value in source.body.state_dict().items():
                assert torch.equal(model.body.state_dict()[key], value), (arch, name, key)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ember.DataError, match=r"resnet18\.pth holds no Ember model's body.*"
                                              r"torchvision architecture"):
        vision_model("compact_cnn", target, pretrained=tmp_path / "resnet18.pth")


def test_vision_model_loads_weights_for_any_torchvision_arch_and_the_resnet_unet(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model = vision_model("torchvision", n_out=4, n_channels=3, arch="resnet18",
                         pretrained=tmp_path / "resnet18.pth")
    assert torch.equal(model.body[0].weight, source.conv1.weight)
    assert model.ember_config["config"] == {"n_out": 4, "n_channels": 3, "arch": "resnet18"}
    unet = vision_model("resnet_unet", n_out=3, n_channels=3,
                        pretrained=tmp_path / "resnet18.pth")
    assert torch.equal(unet.body[0][0].weight, source.conv1.weight)
    assert torch.equal(unet.body[4][0].conv1.weight, source.layer4[0].conv1.weight)
    with pytest.raises(ember.DataError, match="compact_unet has no published weights"):
        vision_model("compact_unet", n_out=3, n_channels=3, pretrained="DEFAULT")


def _body_pretrained_elsewhere(fashion, folder):
    """Data of two classes and a compact CNN whose body was saved by a learner on ten."""
    (x, y), _ = fashion
    source = ImageData.from_arrays(x[:100], y[:100], classes=FASHION_MNIST_CLASSES, bs=32)
    checkpoint = ember.learner(source, quiet=True).save(folder / "source.pt")
    target = ImageData.from_arrays(x[100:200], ["even" if v % 2 == 0 else "odd"
                                                for v in y[100:200]], bs=32)
    return target, vision_model("compact_cnn", target, pretrained=checkpoint)


def test_fit_auto_fine_tunes_a_body_loaded_by_vision_model(fashion, tmp_path):
    # vision_model keeps pretrained= out of the exported config, and fit_auto looked only
    # there: a pretrained body was trained from the start like a random one (one-cycle, all
    # groups at the full rate) instead of with the fine_tune recipe
    target, model = _body_pretrained_elsewhere(fashion, tmp_path)
    assert "pretrained" not in model.ember_config["config"]  # the export stays rebuildable
    learn = ember.learner(target, model=model, quiet=True)
    report = learn.fit_auto(epochs=2, verbose=False)
    assert report["schedule"] == "fine_tune", report


def test_fit_auto_reports_the_epochs_run_of_a_fine_tune_on_the_clock(fashion, tmp_path):
    # the clock's fine_tune ran on budgets of its own, and the report read an unused one:
    # epochs_run and slowdown were missing for every pretrained body
    torch.set_num_threads(1)
    target, model = _body_pretrained_elsewhere(fashion, tmp_path)
    learn = ember.learner(target, model=model, quiet=True)
    learn.candidates = {}  # no race: the rows are the fine-tune's alone
    report = learn.fit_auto(minutes=0.1, verbose=False)
    assert report["schedule"] == "fine_tune (clock)", report
    rows = len(learn.recorder.values)  # one per epoch, the last perhaps cut short by the clock
    assert rows - 2 <= report["epochs_run"] <= rows, (report, rows)
    assert report["slowdown"] > 0, report
