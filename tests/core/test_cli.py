"""The ``ember`` command: a user's mistake is one line on stderr and exit status 1."""

from __future__ import annotations

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
