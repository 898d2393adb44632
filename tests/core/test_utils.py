"""ember.utils: helpers shared by core and the plugins."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.checks import LoaderWarning


def test_a_warning_raised_deep_in_a_fit_names_the_users_line():
    # the fixed stacklevels pointed inside Ember (learner.py, checks.py), not at the script
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    unshuffled = DataLoader(TensorDataset(x, y), batch_size=16)
    learn = ember.Learner(ember.Data.from_loaders(unshuffled, unshuffled),
                          ember.create_model("mlp", n_in=4, n_out=2), quiet=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit(1)
    shuffle = [w for w in caught if issubclass(w.category, LoaderWarning)]
    assert shuffle and all(w.filename == __file__ for w in shuffle), [
        (w.filename, w.lineno) for w in shuffle]


def test_warn_names_the_caller_outside_ember():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ember.utils.warn("plain words")
    assert caught[0].filename == __file__ and caught[0].category is ember.EmberWarning


# ------------------------------------------------------------------------ plots
def test_plots_return_their_figure_for_pyplot_to_show_and_close():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from .helpers import blob_data

    ember.seed(0)
    learn = ember.Learner(blob_data(n=128), ember.create_model("mlp", n_in=8, n_out=3),
                          quiet=True)
    learn.fit(2, 1e-2)
    curve = ember.LRFindResult.from_curve([1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                                          [1.0, 0.8, 0.5, 0.4, 3.0])
    loss_figure = learn.recorder.plot_loss(skip_start=0)
    lr_figure = curve.plot(skip_end=0)
    try:
        assert isinstance(loss_figure, Figure) and isinstance(lr_figure, Figure)
        # made through pyplot, so plt.show() in a script shows them
        assert {loss_figure.number, lr_figure.number} <= set(plt.get_fignums())
        (loss_axis,) = loss_figure.axes
        assert [line.get_label() for line in loss_axis.lines] == ["train", "valid"]
        assert len(loss_axis.lines[0].get_xdata()) == len(learn.recorder.losses)
        (lr_axis,) = lr_figure.axes
        assert lr_axis.get_xscale() == "log" and len(lr_axis.lines[0].get_xdata()) == 5
        loss_figure.savefig(io.BytesIO(), format="png")
    finally:
        plt.close(loss_figure)
        plt.close(lr_figure)


def test_a_plot_draws_into_the_axes_it_is_given():
    import matplotlib.pyplot as plt

    curve = ember.LRFindResult.from_curve([1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                                          [1.0, 0.8, 0.5, 0.4, 3.0])
    figure, (left, right) = plt.subplots(1, 2)
    try:
        assert curve.plot(skip_end=0, ax=right) is figure
        assert len(right.lines) == 2 and not left.lines  # the curve and the suggestion
    finally:
        plt.close(figure)


def test_new_figure_makes_grids_uses_given_axes_and_leaves_pyplot_alone_when_asked():
    import matplotlib.pyplot as plt

    from ember.utils import new_figure

    before = set(plt.get_fignums())
    figure, axes = new_figure(2, 3, squeeze=False, figsize=(6, 4), pyplot=False)
    assert axes.shape == (2, 3) and len(figure.axes) == 6
    assert tuple(figure.get_size_inches()) == (6, 4) and set(plt.get_fignums()) == before
    mine, axis = plt.subplots()
    try:
        assert new_figure(ax=axis) == (mine, axis)
        with pytest.raises(ValueError, match="grid of 2 x 2 axes, so it cannot draw into one"):
            new_figure(2, 2, ax=axis)
    finally:
        plt.close(mine)
    tracked, _ = new_figure()
    try:
        assert plt.gcf() is tracked
    finally:
        plt.close(tracked)



def test_a_read_only_folder_is_named_not_the_temporary_file(tmp_path):
    # before: PermissionError "[Errno 1] Operation not permitted: '.../.model.ember.
    # 6218cd6cbd17.tmp'", a name the user never gave, and nothing said what to do
    from ember.utils import atomic_write

    from .helpers import read_only

    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "model.ember").write_bytes(b"the model in production")
    with read_only(tmp_path / "shipped") as folder:
        for name in ("model.ember", "new.ember", "sub/model.ember"):
            with pytest.raises(PermissionError, match=(
                    rf"{name} cannot be written: .*shipped does not let this process create "
                    rf"files .*Give a path in a folder you can write to")):
                atomic_write(folder / name, lambda tmp: tmp.write_text("new"))
        assert (folder / "model.ember").read_bytes() == b"the model in production"



def test_check_whole_names_the_option_and_what_it_counts_in_one_message():
    # the count checks of core and the plugins each wrote their own message in one of
    # several shapes ("must be a whole number of at least 1 (meaning)", "…, 1 or more")
    from ember.utils import check_whole

    assert check_whole(np.int64(3), "n", "things") == 3 and type(check_whole(3, "n", "x")) is int
    with pytest.raises(ember.TrainingError, match=r"^epochs \(to train\) must be a whole number "
                                                  r"of at least 2, got 1$"):
        check_whole(1, "epochs", "to train", least=2, error=ember.TrainingError)
    for wrong in (0, -1, 2.0, True, "3"):
        with pytest.raises(ember.DataError, match=rf"^bs \(the batch size\) must be a whole "
                                                  rf"number of at least 1, got {wrong!r}$"):
            ember.data.check_batch_size(wrong)
