"""The ``ember`` command: a user's mistake is one line on stderr and exit status 1."""

from __future__ import annotations

import pytest

from ember.cli import main


def test_a_missing_model_file_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.ember")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ember serve: error: no model file at ")
    assert "Traceback" not in err and "missing.ember" in err


def test_a_bad_plugin_name_is_reported_and_writes_nothing(tmp_path, capsys):
    assert main(["new-plugin", "Bad-Name", "--path", str(tmp_path)]) == 1
    assert "must be a lowercase Python identifier" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_quickstart_runs_every_demo_and_fails_at_the_end_if_one_failed(monkeypatch, capsys):
    import types

    import ember

    ran = []

    def broken(smoke=False):
        ran.append("broken")
        raise RuntimeError("no data\nsecond line")

    def working(smoke=False):
        ran.append("working")
        return {"accuracy": 0.5}

    plugin = types.ModuleType("toy_demos")

    @ember.hookimpl
    def ember_quickstart(register):
        register(ember.Demo(domain="toy", name="broken", run=broken))
        register(ember.Demo(domain="toy", name="working", run=working))

    plugin.ember_quickstart = ember_quickstart
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    ember.register_plugin(plugin)
    assert main(["quickstart", "toy", "--smoke"]) == 1
    assert ran == ["broken", "working"]
    out = capsys.readouterr().out
    assert "| toy/broken | FAILED: RuntimeError: no data |" in out
    assert "| toy/working | accuracy=0.5000 |" in out
    assert main(["quickstart", "working", "--smoke"]) == 0


def test_quickstart_fails_a_demo_that_returns_no_metrics(monkeypatch, capsys):
    import types

    import ember

    plugin = types.ModuleType("toy_silent")

    @ember.hookimpl
    def ember_quickstart(register):
        register(ember.Demo(domain="toy", name="silent", run=lambda smoke=False: {}))

    plugin.ember_quickstart = ember_quickstart
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    ember.register_plugin(plugin)
    assert main(["quickstart", "toy", "--smoke"]) == 1
    assert "| toy/silent | FAILED: ValueError: run() returned no metrics" in capsys.readouterr().out


def test_quickstart_refuses_an_unknown_name_among_known_ones(monkeypatch, capsys):
    import types

    import ember

    ran = []
    plugin = types.ModuleType("toy_demo")

    @ember.hookimpl
    def ember_quickstart(register):
        register(ember.Demo(domain="toy", name="working",
                            run=lambda smoke=False: ran.append(smoke) or {"accuracy": 1.0}))

    plugin.ember_quickstart = ember_quickstart
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    ember.register_plugin(plugin)
    assert main(["quickstart", "toy", "tyo", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "no quick-start demo for ['tyo']; installed demos: toy" in err and ran == []


def test_quickstart_names_a_plugin_that_did_not_load_instead_of_saying_install_one(
        tmp_path, monkeypatch, capsys):
    # a broken or blocked plugin's demo was "no quick-start demo ...; pip install ember-vision"
    from .test_plugins import install_fake_plugin

    install_fake_plugin(tmp_path, monkeypatch, "broken", "raise ImportError('needs foo')\n")
    assert main(["quickstart", "broken", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "ember quickstart: error: no quick-start demo for ['broken']" in err
    assert "plugin 'broken' is broken: ImportError: needs foo" in err
    assert "pip install" not in err
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    import ember

    ember.reset_plugins()
    assert main(["quickstart"]) == 2
    assert "install a domain plugin, e.g. pip install ember-vision" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_status_130_not_a_traceback(monkeypatch, capsys):
    import types

    import ember

    def interrupted(smoke=False):
        raise KeyboardInterrupt

    plugin = types.ModuleType("toy_interrupted")

    @ember.hookimpl
    def ember_quickstart(register):
        register(ember.Demo(domain="toy", name="long", run=interrupted))

    plugin.ember_quickstart = ember_quickstart
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    ember.register_plugin(plugin)
    assert main(["quickstart", "toy"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "ember quickstart: interrupted" and "Traceback" not in err


def test_serve_takes_option_limits_name_equals_value(monkeypatch, tmp_path, capsys):
    import pytest

    import ember.serve

    calls = []
    monkeypatch.setattr(ember.serve, "serve", lambda path, **options: calls.append(options))
    model = str(tmp_path / "model.ember")
    assert main(["serve", model, "--option-limit", "beam=32",
                 "--option-limit", "max_len=none"]) == 0
    assert calls[0]["option_limits"] == {"beam": 32, "max_len": None}
    assert main(["serve", model]) == 0 and not calls[1]["option_limits"]
    for bad in ("beam", "beam=many", "beam=-1", "=3"):
        with pytest.raises(SystemExit):
            main(["serve", model, "--option-limit", bad])
        assert "--option-limit" in capsys.readouterr().err
    assert "NAME=VALUE" in _serve_help(capsys)


def test_serve_refuses_a_port_or_batching_setting_out_of_range(tmp_path, capsys):
    # before, --port 99999 loaded the model and then died with an OverflowError traceback
    # from the socket layer; --max-batch 0 and --max-wait-ms -5 were taken without a word
    import pytest

    model = str(tmp_path / "model.ember")
    for option, value in (("--port", "99999"), ("--port", "-1"), ("--port", "http"),
                          ("--max-batch", "0"), ("--max-wait-ms", "-5"),
                          ("--max-wait-ms", "nan")):
        with pytest.raises(SystemExit) as exit_info:
            main(["serve", model, option, value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {option}" in err and value in err, err


def test_serve_takes_max_items_and_max_body_bytes_and_the_server_applies_them(
        monkeypatch, tmp_path):
    # before, `ember serve` had neither option: the 1,024 items and 16 MiB that
    # create_app(max_items=, max_body_bytes=) takes were fixed for a server started here
    import uvicorn
    from fastapi.testclient import TestClient

    import ember

    from .helpers import blob_data

    ember.seed(0)
    learn = ember.learner(blob_data(), quiet=True, path=tmp_path)
    path = learn.export("model")
    items = [row.tolist() for row in learn.data.valid_dl.dataset.tensors[0][:3]]
    apps = []  # the app the command serves, taken where uvicorn would run it for ever
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: apps.append(app))
    assert main(["serve", str(path), "--max-items", "2", "--max-body-bytes", "1000"]) == 0
    client = TestClient(apps[0])
    metadata = client.get("/metadata").json()
    assert metadata["max_items"] == 2 and metadata["max_body_bytes"] == 1000
    assert client.post("/predict", json={"inputs": items[:2]}).status_code == 200
    assert client.post("/predict", json={"inputs": items}).status_code == 422
    large = client.post("/predict", content=b" " * 1001,
                        headers={"content-type": "application/json"})
    assert large.status_code == 413 and "limit of 1000" in large.json()["detail"]
    assert main(["serve", str(path)]) == 0  # the defaults stay those of create_app
    assert TestClient(apps[1]).get("/metadata").json()["max_items"] == 1024


def test_serve_refuses_max_items_or_max_body_bytes_that_are_not_counts(tmp_path, capsys):
    import pytest

    model = str(tmp_path / "model.ember")
    for option in ("--max-items", "--max-body-bytes"):
        for value in ("0", "-3", "2.5", "lots", "\N{SUPERSCRIPT TWO}"):
            with pytest.raises(SystemExit) as exit_info:
                main(["serve", model, option, value])
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            assert f"argument {option}" in err and "whole number" in err, err
    shown = _serve_help(capsys)
    assert "--max-items" in shown and "--max-body-bytes" in shown and "1024" in shown


def _serve_help(capsys) -> str:
    import pytest

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    return capsys.readouterr().out


def test_python_dash_m_ember_is_the_ember_command():
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ember", "plugins", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "builtin" in [plugin["name"] for plugin in json.loads(done.stdout)]


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn"])
def test_serve_without_the_serving_stack_says_what_to_install_in_one_line(
        monkeypatch, tmp_path, capsys, missing):
    # before, a traceback ending in "No module named 'fastapi'" (or 'uvicorn')
    import sys

    monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    assert main(["serve", str(tmp_path / "model.ember")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ember serve: error: serving a model needs {missing}: pip install "
                          f"'ember[serve]'") and "Traceback" not in err, err
