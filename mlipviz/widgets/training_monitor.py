"""A live training monitor: validation loss and energy/force MAE per epoch, redrawn in a notebook while training runs.

:class:`TrainingMonitor` is a PyTorch Lightning callback; pass it to
:func:`mlipviz.potential.train_potential` (``callbacks=[monitor]``) and display ``monitor.widget``. After each
validation epoch it records Lightning's ``val_*`` metrics and redraws a matplotlib figure (at most once every
``min_interval_s`` seconds, and once more when training ends) into its ``ipywidgets.Output`` as a PNG, together
with a status line (epoch, best values, elapsed time). It never calls ``display`` itself, so a headless run
(a script, a test, a batch job) prints nothing extra; Lightning's progress bar is left alone.

References:
    Falcon et al., PyTorch Lightning (2019), doi:10.5281/zenodo.3828935 (callbacks).
"""

from __future__ import annotations

import base64
import html
import io
import math
import time

import numpy as np
import pytorch_lightning as pl

from .. import keys

__all__ = ["TrainingMonitor"]

#: CSS classes a browser finds the parts by.
CSS_MONITOR = "mlipviz-training-monitor"
CSS_PLOT = "mlipviz-training-plot"
CSS_STATUS = "mlipviz-training-status"
#: (history key, name, plotted unit, factor from the recorded unit (eV, eV/Å) to the plotted one) of the MAE panel.
_MAE_SERIES = ((keys.HISTORY_VAL_ENERGY_MAE, "energy MAE", "meV", 1e3),
               (keys.HISTORY_VAL_FORCES_MAE, "force MAE", "meV/Å", 1e3))


class TrainingMonitor(pl.Callback):
    """Live plots of a training run's validation loss, energy MAE (meV) and force MAE (meV/Å) against epoch.

    Args:
        label: A name shown in the status line and the figure title (e.g. "member 2" of an ensemble).
        min_interval_s: Shortest time between two redraws, s (the last epoch is always drawn at train end).
        figsize: Figure size, inches.

    Attributes:
        widget: The ``ipywidgets.VBox`` to display: the plot ``Output`` and the status ``HTML``.
        output: The ``ipywidgets.Output`` holding the figure (a PNG display output).
        status: The status line (``ipywidgets.HTML``).
        figure: The matplotlib ``Figure``: panel 0 the validation loss, panel 1 the MAEs, log y.
        history: One dict per validation epoch (sanity check excluded): :data:`mlipviz.keys.HISTORY_EPOCH` and
            every ``val_*`` metric Lightning reported (loss dimensionless, MAEs in eV and eV/Å).
        elapsed_s: Seconds since training started, at each recorded epoch.
        draws: How many times the figure was redrawn.

    Raises:
        ValueError: for a negative or non-finite ``min_interval_s``.
    """

    def __init__(self, label: str | None = None, min_interval_s: float = 1.0, figsize=(8.0, 3.0)):
        import ipywidgets as widgets
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        if isinstance(min_interval_s, bool) or not isinstance(min_interval_s, (int, float)) \
                or not math.isfinite(min_interval_s) or min_interval_s < 0:
            raise ValueError(f"min_interval_s must be a finite number of seconds >= 0, got {min_interval_s!r}.")
        super().__init__()
        self.label, self.min_interval_s = label, float(min_interval_s)
        self.history: list[dict] = []
        self.elapsed_s: list[float] = []
        self.draws = 0
        self._t0: float | None = None
        self._last_draw = -math.inf
        self._finished = False

        self.figure = Figure(figsize=figsize, dpi=90)
        ax_loss, ax_mae = self.figure.subplots(1, 2)
        (self._loss_line,) = ax_loss.plot([], [], "o-", ms=3, color="tab:blue", label="validation loss")
        self._mae_lines = [ax_mae.plot([], [], "o-", ms=3, label=f"{name} ({unit})")[0]
                           for _, name, unit, _ in _MAE_SERIES]
        for ax, ylabel in ((ax_loss, "validation loss"), (ax_mae, "validation MAE")):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_yscale("log")
            ax.grid(alpha=0.3, which="both")
        ax_mae.legend(fontsize=8)
        if label:
            self.figure.suptitle(label, fontsize=10)
        self.figure.tight_layout()

        self.output = widgets.Output(layout=widgets.Layout(width=f"{int(figsize[0] * 90) + 10}px"))
        self.output.add_class(CSS_PLOT)
        self.status = widgets.HTML(value=self._status_text())
        self.status.add_class(CSS_STATUS)
        self.widget = widgets.VBox([self.output, self.status])
        self.widget.add_class(CSS_MONITOR)

    @classmethod
    def for_members(cls, n: int, **kwargs) -> list[TrainingMonitor]:
        """``n`` monitors labelled "member 0" … "member n-1", one per ensemble member (see :meth:`tabs`).

        Raises:
            ValueError: for ``n`` < 1.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive number of members, got {n!r}.")
        return [cls(label=f"member {k}", **kwargs) for k in range(int(n))]

    @staticmethod
    def tabs(monitors: list[TrainingMonitor]):
        """An ``ipywidgets.Tab`` with one monitor's widget per tab, titled by its label."""
        import ipywidgets as widgets

        tab = widgets.Tab(children=[m.widget for m in monitors])
        for k, m in enumerate(monitors):
            tab.set_title(k, m.label or f"run {k}")
        return tab

    # --- Lightning hooks ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        """A new run: forget any earlier one."""
        self.history, self.elapsed_s, self._finished = [], [], False
        self._t0, self._last_draw = time.perf_counter(), -math.inf

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        """Record this epoch's ``val_*`` metrics (not during Lightning's sanity check) and redraw if due."""
        if trainer.sanity_checking:
            return
        if self._t0 is None:
            self._t0 = time.perf_counter()
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        m[keys.HISTORY_EPOCH] = int(trainer.current_epoch)
        self.history.append(m)
        self.elapsed_s.append(time.perf_counter() - self._t0)
        if time.perf_counter() - self._last_draw >= self.min_interval_s:
            self.redraw()

    def on_train_end(self, trainer, pl_module) -> None:
        """Draw the final state."""
        self._finished = True
        self.redraw()

    # --- drawing ----------------------------------------------------------------------------------------------
    def series(self, key: str, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values × factor) of one history key; NaN where an epoch lacks it."""
        epochs = np.array([h[keys.HISTORY_EPOCH] for h in self.history], dtype=float)
        values = np.array([h.get(key, np.nan) for h in self.history], dtype=float) * factor
        return epochs, values

    def redraw(self) -> None:
        """Update the lines and the status line, and put the figure into the ``Output`` as a PNG."""
        self._loss_line.set_data(*self.series(keys.HISTORY_VAL_LOSS))
        for line, (key, _, _, factor) in zip(self._mae_lines, _MAE_SERIES):
            line.set_data(*self.series(key, factor))
        for ax in self.figure.axes:
            ax.relim()
            ax.autoscale_view()
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png")
        png = base64.b64encode(buf.getvalue()).decode("ascii")
        text = f"training curves, {len(self.history)} epochs"
        # Replace the Output's content directly (no display call): nothing is printed when no notebook is attached.
        self.output.outputs = ({"output_type": "display_data", "data": {"image/png": png, "text/plain": text},
                                "metadata": {}},)
        self.status.value = self._status_text()
        self._last_draw = time.perf_counter()
        self.draws += 1

    def _best(self, key: str) -> tuple[float, int] | None:
        rows = [(h[key], h[keys.HISTORY_EPOCH]) for h in self.history if np.isfinite(h.get(key, np.nan))]
        return min(rows) if rows else None

    def _status_text(self) -> str:
        head = f"<b>{html.escape(self.label)}</b>: " if self.label else ""
        if not self.history:
            return head + "waiting for the first validation epoch"
        parts = [f"epoch {self.history[-1][keys.HISTORY_EPOCH]}" + (" (finished)" if self._finished else "")]
        best = self._best(keys.HISTORY_VAL_LOSS)
        if best:
            parts.append(f"best val loss {best[0]:.4g} (epoch {best[1]})")
        for key, name, unit, factor in _MAE_SERIES:
            best = self._best(key)
            if best:
                parts.append(f"best {name} {factor * best[0]:.4g} {unit} (epoch {best[1]})")
        parts.append(f"elapsed {time.perf_counter() - self._t0:.1f} s")
        return head + " · ".join(parts)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
