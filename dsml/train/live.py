"""A training curve that redraws itself in place in Jupyter: ``train(..., plot=True)``.

One figure (loss, and validation loss/accuracy when there is validation), shown once and updated after
every epoch through one IPython display handle, so the notebook does not fill with figures. Outside
Jupyter there is nothing to redraw: training prints its epoch lines as always, and
``history.plot()`` draws the curve afterwards.
"""

from __future__ import annotations

import io

from dsml._checks import warn
from dsml._types import Figure
from dsml.plots.history import plot_history
from dsml.train.callbacks import Callback, TrainState
from dsml.train.history import History


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (not a plain terminal IPython, not a script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def figure_png(figure: Figure, dpi: int = 90) -> bytes:
    """A plotnine figure drawn to PNG bytes (and closed, so Jupyter does not show it a second time)."""
    import matplotlib.pyplot as plt

    drawn = figure.draw()
    buffer = io.BytesIO()
    try:
        drawn.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(drawn)
    return buffer.getvalue()


class LivePlot(Callback):
    """Draw the training curve after each epoch into one display that is updated in place."""

    def __init__(self):
        self.handle = None
        self.active = in_jupyter()

    def on_train_begin(self, state: TrainState) -> None:
        if not self.active:
            warn(
                "plot=True draws a live training curve in Jupyter only; here training prints its epoch lines. "
                "Draw the curve afterwards with history.plot()."
            )

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if self.active:
            self.show(
                History(
                    [*state.history.records, record], monitor=state.history.monitor, loss_name=state.history.loss_name
                )
            )

    def show(self, history: History) -> None:
        """Draw ``history`` into the display: made on the first call, updated on the next ones."""
        from IPython.display import Image, display

        image = Image(data=figure_png(plot_history(history.df, history.best_epoch)))
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
