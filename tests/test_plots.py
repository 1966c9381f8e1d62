"""DSImage.plot_image_grid and the history plot: figures, not side effects."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from plotnine import ggplot

from dsml import DSImage, History
from dsml.plots.history import epoch_breaks
from dsml.plots.images import plot_confusion


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


# ---------------------------------------------------------------- hints: a titles column that is not there


def test_a_missing_label_column_warns_with_the_columns_there_are(grey_table):
    table = grey_table.with_columns(prediction_=pl.col("label"))
    with pytest.warns(
        UserWarning,
        match=r"no column 'prediction' for the titles.*'label', 'filepath', 'index', "
        r"'prediction_'.*Did you mean label_name='prediction_'\?",
    ) as caught:
        fig = table.pipe(DSImage.plot_image_grid, label_name="prediction")
    assert caught[0].filename == __file__  # the warning points at the caller's line, through pipe
    shown = [t.get_text() for t in fig.draw().findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert shown == []  # no titles, as before


def test_the_books_calls_give_no_warning(grey_table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DSImage.plot_image_grid(grey_table)  # titles from "label"
        DSImage.plot_image_grid(grey_table.drop("label"))  # the book: no titles when the table has no labels
        grey_table.with_columns(prediction_=pl.col("label")).pipe(DSImage.plot_image_grid, label_name="prediction_")
        DSImage.plot_image_grid(grey_table, label_name=None)


# ---------------------------------------------------------------- readable figures


def rendered(fig):
    """The matplotlib figure of a plotnine figure, laid out as when saved, and its renderer."""
    figure = fig.draw()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return figure, canvas.get_renderer()


def texts_outside(fig) -> list[str]:
    """The texts of a drawn figure that stick out of it (clipped in the saved PNG)."""
    figure, renderer = rendered(fig)
    box = figure.bbox
    outside = []
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1:
            outside.append(text.get_text())
    plt.close(figure)
    return outside


LONG = [f"a rather long class name {i:02d}" for i in range(26)]
FASHION = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def confusion(cn):
    return pl.DataFrame(
        {
            "target_": np.repeat(cn, len(cn)),
            "prediction_": np.tile(cn, len(cn)),
            "count": np.arange(len(cn) ** 2) % 50,
        }
    )


@pytest.mark.parametrize(
    "cn",
    [
        pytest.param(["fresh", "rotten"], id="2"),
        pytest.param(LONG[:2], id="2 long"),
        pytest.param([str(i) for i in range(10)], id="10"),
        pytest.param(FASHION, id="fashion"),
        pytest.param(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), id="26", marks=pytest.mark.slow),  # 676 cells: seconds
        pytest.param(LONG, id="26 long", marks=pytest.mark.slow),
    ],
)
def test_the_confusion_matrix_title_and_labels_fit(cn):
    fig = plot_confusion(confusion(cn))
    assert texts_outside(fig) == []
    assert fig.labels.title == "Confusion matrix"


def test_long_titles_in_a_grid_wrap_and_do_not_overlap(make_images):
    table = make_images([(name, "test", np.full((8, 8), 9 * i)) for i, name in enumerate(LONG[:6])])
    fig = DSImage.plot_image_grid(table, ncol=3)
    figure, renderer = rendered(fig)
    boxes = [t.get_window_extent(renderer) for t in figure.findobj(Text) if t.get_text().startswith("a rather")]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert texts_outside(fig) == []


def history_with(best_epoch, validation=True):
    """Ten epochs whose validation loss is lowest at ``best_epoch``."""
    records = []
    for e in range(1, 11):
        record = {"epoch": e, "loss": 2 / e, "accuracy": 1 - 0.5 / e, "lr": 0.1, "seconds": 0.1}
        if validation:
            record.update(val_loss=0.5 + 0.05 * (e - best_epoch) ** 2, val_accuracy=0.8)
        records.append(record)
    history = History(records)
    history.monitor = "val_loss" if validation else "loss"  # where History derives best_epoch from the records
    if not isinstance(getattr(History, "best_epoch", None), property):
        history.best_epoch = best_epoch if validation else 10  # where train sets it
    return history


def test_the_history_plot_has_a_y_label_whole_epochs_and_marks_the_best_epoch():
    fig = history_with(4).plot()
    assert fig.labels.y == "Loss / accuracy"
    figure = fig.draw()
    texts = [t.get_text() for t in figure.findobj(Text)]
    assert texts.count("best epoch 4") + texts.count(" best epoch 4") == 2  # one mark per panel
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks and all(t.isdigit() for t in ticks)
    assert texts_outside(history_with(4).plot()) == []  # a fresh figure: plotnine figures draw once


def test_a_best_epoch_near_the_end_is_labelled_inside_the_panel():
    assert texts_outside(history_with(10).plot()) == []


def test_without_validation_the_last_epoch_is_not_marked():
    texts = [t.get_text() for t in history_with(10, validation=False).plot().draw().findobj(Text)]
    assert not any("best epoch" in t for t in texts)


def test_epoch_ticks_are_whole_numbers():
    assert epoch_breaks((1, 10)) == list(range(1, 11))
    assert epoch_breaks((1, 40)) == [5, 10, 15, 20, 25, 30, 35, 40]
    assert epoch_breaks((0.55, 1.45)) == [1]
    assert epoch_breaks((1.2, 1.8)) == []
    assert len(epoch_breaks((1, 50_000))) <= 11
