"""An MD player: the trajectory in nglview beside its energy, temperature and bond plots, kept at the same frame.

Moving the player's frame (its play button or slider) moves a marker on every plot, and a slider under the plots
moves the 3D view: both follow one frame index. The plots are matplotlib figures redrawn into an ipywidgets
``Output``, so they work in JupyterLab, Binder and a static export alike. Per-atom values per frame (e.g. an
uncertainty along the run) colour the atoms of the frame shown, on one colour scale over all frames with one
legend: the view draws the frame again as it changes (see :mod:`mlipviz.views.draw`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MDPlayer", "md_player"]


class MDPlayer:
    """The widgets and state of :func:`md_player`.

    Attributes:
        widget: The ``ipywidgets.HBox`` to display (3D view | plots and slider).
        view: The ``nglview.NGLWidget``.
        slider: The frame slider under the plots.
        time_fs: (n_frames,) time of each frame, fs.
        series: {title: (values (n_frames,), unit)} drawn in the plots.
        frame: The frame shown now.
        markers: The marker line of each plot (its x is the time of the frame shown).
        atom_values: (n_frames, n_atoms) values colouring the atoms, or None (element colours).
        value_range: The true values ``(low, high)`` at the ends of their colour scale (all frames); None without.
        legend: The ``ipywidgets.Image`` of that scale; None without values.
    """

    def __init__(self, frames, time_fs, series: dict, width: int, height: int, atom_values=None,
                 atom_label: str = "value", atom_unit: str = "eV", show_values: bool = False):
        import ipywidgets as widgets
        import matplotlib.pyplot as plt

        from .draw import view_structure

        self.time_fs, self.series, self.frame = time_fs, series, 0
        box = view_structure(frames, atom_values, label=atom_label, unit=atom_unit, show_values=show_values,
                             width=width, height=height)  # with values per frame it redraws as view.frame moves
        self.view, self.atom_values = box.view, atom_values
        self.value_range = box.drawn.value_range
        self.legend = box.children[1] if atom_values is not None else None
        self.output = widgets.Output(layout={"width": f"{max(360, width)}px"})
        self.slider = widgets.IntSlider(0, min=0, max=len(frames) - 1, description="frame", continuous_update=True,
                                        layout={"width": f"{max(360, width)}px"})
        n = len(series)
        self.figure, axes = plt.subplots(n, 1, figsize=(5.2, 1.7 * n), sharex=True, squeeze=False)
        plt.close(self.figure)  # drawn into the Output widget only
        self.markers = []
        for ax, (title, (values, unit)) in zip(axes[:, 0], series.items()):
            ax.plot(time_fs, values, lw=0.8)
            ax.set_ylabel(f"{title} ({unit})" if unit else title, fontsize=8)
            self.markers.append(ax.axvline(time_fs[0], color="tab:red", lw=1.2))
        axes[-1, 0].set_xlabel("time (fs)")
        self.figure.tight_layout()
        self.widget = widgets.HBox([box, widgets.VBox([self.output, self.slider])])
        self.view.observe(self._follow, names="frame")  # the play button
        self.slider.observe(self._follow, names="value")
        self._draw()

    def _follow(self, change) -> None:
        self.show_frame(change["new"])

    def show_frame(self, frame: int) -> None:
        """Show frame ``frame`` in the 3D view and mark it on every plot (either control calls this)."""
        frame = int(frame)
        if not 0 <= frame < len(self.time_fs):
            raise IndexError(f"frame {frame} is not in 0..{len(self.time_fs) - 1}.")
        if frame == self.frame and self.view.frame == frame and self.slider.value == frame:
            return
        self.frame = frame
        if self.view.frame != frame:
            self.view.frame = frame
        if self.slider.value != frame:
            self.slider.value = frame
        for marker in self.markers:
            marker.set_xdata([self.time_fs[frame], self.time_fs[frame]])
        self._draw()

    def _draw(self) -> None:
        from IPython.display import display

        self.output.clear_output(wait=True)
        with self.output:
            display(self.figure)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def md_player(frames, time_fs=None, energy_eV=None, temperature_K=None, bonds=None, series: dict | None = None,
              width: int = 420, height: int = 380, atom_values=None, atom_label: str = "value",
              atom_unit: str = "eV", show_values: bool = False) -> MDPlayer:
    """The trajectory in nglview beside its energy, temperature and bond-length plots, at one shared frame.

    Args:
        frames: The trajectory, a list of ``ase.Atoms`` (Å).
        time_fs: (n_frames,) time of each frame, fs (default: the frame index).
        energy_eV: (n_frames,) an energy to plot (e.g. the total energy), eV; drawn relative to its first value.
        temperature_K: (n_frames,) kinetic temperature, K.
        bonds: Pairs (i, j) whose lengths to plot, Å (default: none).
        series: More {title: (values (n_frames,), unit)} to plot.
        width, height: 3D canvas size, pixels.
        atom_values: (n_frames, n_atoms) finite per-atom values of each frame (e.g. an atom's force uncertainty,
            eV/Å), colouring the atoms of the frame shown; one colour scale spans all frames (diverging about
            zero for values of both signs, else from their minimum to their maximum), with one legend.
        atom_label: What the values are, for the legend.
        atom_unit: Their unit, for the legend.
        show_values: Write each atom's value next to it.

    Returns:
        An :class:`MDPlayer` (display it, or its ``.widget``).

    Raises:
        ValueError: naming a series whose length is not the number of frames, a bond outside the atoms, or
            ``atom_values`` of another shape than (n_frames, n_atoms) or with a value that is not finite.
    """
    from .ngl import check_frames

    frames = check_frames(frames)
    n = len(frames)
    time_fs = np.arange(n, dtype=float) if time_fs is None else np.asarray(time_fs, dtype=float)
    if time_fs.shape != (n,):
        raise ValueError(f"time_fs has shape {time_fs.shape}; the trajectory has {n} frames.")
    plots: dict[str, tuple[np.ndarray, str]] = {}
    if energy_eV is not None:
        e = np.asarray(energy_eV, dtype=float)
        plots["ΔE"] = (1e3 * (e - e[0]) if e.ndim == 1 and len(e) else e, "meV")
    if temperature_K is not None:
        plots["T"] = (np.asarray(temperature_K, dtype=float), "K")
    for i, j in bonds if bonds is not None else []:
        if not (0 <= i < len(frames[0]) and 0 <= j < len(frames[0])) or i == j:
            raise ValueError(f"bond ({i}, {j}) is not a pair of the {len(frames[0])} atoms.")
        sym = frames[0].get_chemical_symbols()
        plots[f"{sym[i]}{i}–{sym[j]}{j}"] = (np.array([f.get_distance(i, j) for f in frames]), "Å")
    plots.update(series or {})
    if not plots:
        raise ValueError("nothing to plot: pass energy_eV, temperature_K, bonds or series.")
    for title, (values, _unit) in plots.items():
        if np.shape(values) != (n,):
            raise ValueError(f"series {title!r} has shape {np.shape(values)}; the trajectory has {n} frames.")
    if atom_values is not None:
        atom_values = _check_atom_values(atom_values, n, len(frames[0]))
    return MDPlayer(frames, time_fs, plots, width, height, atom_values, atom_label, atom_unit, show_values)


def _check_atom_values(atom_values, n_frames: int, n_atoms: int) -> np.ndarray:
    from .draw import check_frame_values

    try:
        v = np.asarray(atom_values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"atom_values must be numbers, shape ({n_frames}, {n_atoms}).") from None
    check_frame_values(v, n_frames, n_atoms, "atom_values", f"give ({n_frames}, {n_atoms}): one value per atom for "
                       f"each of the {n_frames} frames.")
    return v
