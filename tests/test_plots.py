"""DSImage.plot_image_grid and the history plot: figures, not side effects."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.text import Text
from plotnine import ggplot

from dsml import DSImage, History


def draw(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.save(path, verbose=False)
    return path.stat().st_size


def test_grid_with_titles(grey_table, tmp_path):
    fig = DSImage.plot_image_grid(grey_table, ncol=4)
    assert isinstance(fig, ggplot)
    assert draw(fig, tmp_path) > 1000
    texts = {t.get_text() for t in fig.draw().findobj(Text)}
    assert set(map(str, grey_table["label"].to_list())) <= texts


def test_grid_without_a_label_column(grey_table, tmp_path):
    fig = DSImage.plot_image_grid(grey_table.drop("label"), limit=5)
    assert draw(fig, tmp_path) > 1000


def test_grid_limit_and_pipe(grey_table):
    fig = grey_table.pipe(DSImage.plot_image_grid, label_name="index", limit=3)
    assert fig.data["panel"].nunique() == 3


def test_rgb_and_non_square_images_are_letterboxed(make_images, tmp_path):
    table = make_images([(0, "train", np.full((4, 10, 3), 200)), (1, "test", np.full((6, 6), 50))])
    fig = DSImage.plot_image_grid(table)
    first = fig.data[fig.data["panel"] == 0]
    assert first["x"].max() == first["y"].max() == 9  # a 10x4 image drawn in a 10x10 cell
    second = fig.data[fig.data["panel"] == 1]
    assert second["x"].max() == 9  # the 6x6 image enlarged to the same cell size
    assert draw(fig, tmp_path) > 500


def test_missing_file_column(grey_table):
    with pytest.raises(ValueError, match="no column 'path'"):
        DSImage.plot_image_grid(grey_table, filepath="path")


def test_history_plot_and_repr(tmp_path):
    history = History(
        [
            {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4, "lr": 0.1, "seconds": 0.1},
            {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.9, "val_accuracy": 0.6, "lr": 0.1, "seconds": 0.1},
        ]
    )
    history.monitor = "val_loss"
    assert repr(history) == (
        "History(2 epochs, loss 1.0000 -> 0.5000, val_loss 0.9000, val_accuracy 0.6000, best epoch 2)"
    )
    assert isinstance(history.df, pl.DataFrame) and history.df.shape == (2, 7)
    assert draw(history.plot(), tmp_path) > 1000
