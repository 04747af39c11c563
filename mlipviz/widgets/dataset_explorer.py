"""A dataset explorer: one point per structure in a clickable scatter plot, the picked structure in 3D beside it.

The scatter plot is a bqplot ``Scatter`` (SVG, one circle per structure); clicking a point selects its structure.
The 3D view is one nglview widget updated in place: its structure component is replaced by the picked structure,
coloured by that structure's per-atom values on one colour scale shared by the whole dataset (so colours compare
across structures), with the legend on the true scale. Under the view a table lists the structure's energy (eV)
and force RMS (eV/Å) at every level of theory stored on it, and any extra columns (e.g. a model's errors).

:func:`dataset_explorer` computes the usual axes from an ASE calculator: the energy error against the reference
energy, or, when the calculator reports calibrated uncertainties, the |energy error| against the uncertainty. The
quantities themselves are computed in :mod:`mlipviz.widgets.dataset_values`.

References:
    Rose et al., Bioinformatics 34, 3755 (2018), doi:10.1093/bioinformatics/bty419 (NGL Viewer).
    Nguyen, Case, Rose, Bioinformatics 34, 1241 (2018), doi:10.1093/bioinformatics/btx789 (nglview).
"""

from __future__ import annotations

import html

import numpy as np
from ase import Atoms

from ..reference.levels import get_level
from ..views.draw import draw_structure
from ..views.ngl import colour_legend, scale_to_bfactor
from .dataset_values import dataset_quantities, level_rows

__all__ = ["DatasetExplorer", "dataset_explorer", "level_rows"]

#: CSS classes a browser finds the parts by (``ipywidgets`` ``add_class``).
CSS_EXPLORER = "mlipviz-explorer"
CSS_SCATTER = "mlipviz-explorer-scatter"
CSS_VIEW = "mlipviz-explorer-view"
CSS_SELECTION = "mlipviz-explorer-label"
CSS_TABLE = "mlipviz-explorer-table"
CSS_LEGEND = "mlipviz-explorer-legend"


def _values(values, name: str, n: int) -> np.ndarray:
    """(n,) finite floats, or ValueError naming ``name``."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, one per structure.") from None
    if v.shape != (n,):
        raise ValueError(f"{name} has shape {v.shape} but images has {n} structures; give one value per structure.")
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {v[bad[0]]} (not finite; {bad.size} such value(s)).")
    return v


class DatasetExplorer:
    """A clickable scatter plot of a dataset (one point per structure) beside a 3D view of the picked structure.

    Args:
        images: The structures, Å (labelled ones show their levels in the table).
        x, y: (n_structures,) finite coordinates of the points, in the units their labels state.
        x_label, y_label: Axis labels with units, e.g. "energy uncertainty (meV)".
        colour: (n_structures,) finite values that colour the points, or None.
        colour_label: Their label with unit, for the colour bar.
        per_atom: One (n_atoms,) array of finite values per structure that colour its atoms, or None (element
            colours). One scale spans all structures: diverging about zero for values of both signs.
        per_atom_label: Their label with unit, for the legend, e.g. "|ΔF| (meV/Å)".
        columns: More ``{name with unit: (n_structures,) values}`` shown in the table (NaN shows as "n/a").
        title: A heading above the explorer.
        levels: Levels of theory to list in the table (default: every level stored on the structure).
        show_values: Write each atom's per-atom value next to it.
        width, height: 3D canvas size, pixels.

    Attributes:
        widget: The top-level ``ipywidgets.VBox`` to display.
        figure, scatter: The bqplot ``Figure`` and its ``Scatter`` mark.
        view: The ``nglview.NGLWidget`` (one for the explorer's lifetime).
        selection: ``ipywidgets.HTML`` saying "structure #i".
        table: ``ipywidgets.HTML`` with the picked structure's levels and columns.
        legend: ``ipywidgets.Image`` of the per-atom colour scale (None without per-atom values).
        drawn: The picked structure as drawn (rotated to face the viewer; ``bfactor`` holds the scaled values).

    Raises:
        ValueError: naming the argument, for no structures, values whose number does not match the structures
            (or a structure's atoms), or non-finite values (naming the first index).
        TypeError: for an item of ``images`` that is not an ``ase.Atoms``.
    """

    def __init__(self, images, x, y, *, x_label: str, y_label: str, colour=None, colour_label: str | None = None,
                 per_atom=None, per_atom_label: str | None = None, columns: dict | None = None,
                 title: str | None = None, levels=None, show_values: bool = True, width: int = 420,
                 height: int = 360):
        self.images = self._check_images(images)
        n = len(self.images)
        self.x, self.y = _values(x, "x", n), _values(y, "y", n)
        self.colour = None if colour is None else _values(colour, "colour", n)
        self.columns = {str(k): self._column(v, k, n) for k, v in (columns or {}).items()}
        self.levels = None if levels is None else [get_level(lv).name for lv in levels]
        self.show_values, self.width, self.height = bool(show_values), int(width), int(height)
        self.x_label, self.y_label = x_label, y_label
        self.per_atom_label = per_atom_label or "per-atom value"
        self.per_atom_range = self._scale(per_atom)
        self.per_atom = None if per_atom is None else [np.asarray(p, dtype=float) for p in per_atom]
        self.selected: int | None = None
        self.drawn: Atoms | None = None
        self._build(title, colour_label)
        self.select(0)

    @staticmethod
    def _check_images(images) -> list[Atoms]:
        if isinstance(images, Atoms) or not hasattr(images, "__iter__"):
            raise TypeError(f"images must be a list of ase.Atoms, got {type(images).__name__}.")
        images = list(images)
        if not images:
            raise ValueError("images is empty; the explorer needs at least one structure.")
        for i, a in enumerate(images):
            if not isinstance(a, Atoms):
                raise TypeError(f"images[{i}] is a {type(a).__name__}, not an ase.Atoms.")
            if len(a) == 0:
                raise ValueError(f"images[{i}] has no atoms.")
        return images

    @staticmethod
    def _column(values, name, n: int) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        if v.shape != (n,):
            raise ValueError(f"columns[{name!r}] has shape {v.shape} but images has {n} structures.")
        return v

    def _scale(self, per_atom) -> tuple[float, float] | None:
        """The true values at the ends of the one colour scale that every structure's per-atom values share."""
        if per_atom is None:
            return None
        if isinstance(per_atom, np.ndarray) and per_atom.ndim != 1 and per_atom.dtype != object:
            per_atom = list(per_atom)
        if len(per_atom) != len(self.images):
            raise ValueError(f"per_atom has {len(per_atom)} arrays but images has {len(self.images)} structures.")
        flat = []
        for i, (p, a) in enumerate(zip(per_atom, self.images)):
            v = np.asarray(p, dtype=float)
            if v.shape != (len(a),):
                raise ValueError(f"per_atom[{i}] has shape {v.shape} but structure {i} has {len(a)} atoms.")
            bad = np.flatnonzero(~np.isfinite(v))
            if bad.size:
                raise ValueError(f"per_atom[{i}] is not finite at atom index {bad[0]} ({v[bad[0]]}).")
            flat.append(v)
        return scale_to_bfactor(np.concatenate(flat))[1]

    def _build(self, title, colour_label) -> None:
        import bqplot as bq
        import ipywidgets as widgets
        import nglview

        scales = {"x": bq.LinearScale(), "y": bq.LinearScale()}
        axes = [bq.Axis(scale=scales["x"], label=self.x_label, tick_format=".3g"),
                bq.Axis(scale=scales["y"], label=self.y_label, side="left", tick_format=".3g",
                        label_offset="50px")]
        extra, heading = {}, ""
        if self.colour is not None:  # the colour bar's own label would overlap the plot: it heads the figure
            scales["color"] = bq.ColorScale(scheme="viridis")
            axes.append(bq.ColorAxis(scale=scales["color"], side="right", num_ticks=5, tick_format=".3g"))
            extra["color"], heading = self.colour, f"colour: {colour_label or 'colour'}"
        self.scatter = bq.Scatter(
            x=self.x, y=self.y, scales=scales, default_size=48, stroke="black",
            tooltip=bq.Tooltip(fields=["index", "x", "y"], formats=["", ".4g", ".4g"]),
            selected_style={"stroke": "red", "stroke-width": 3, "opacity": 1.0},
            unselected_style={"opacity": 0.6}, **extra)
        self.scatter.on_element_click(self._on_click)
        size = {"width": "540px", "min_width": "540px", "height": f"{max(380, self.height + 20)}px"}
        self.figure = bq.Figure(marks=[self.scatter], axes=axes, title=heading, title_style={"font-size": "12px"},
                                fig_margin={"top": 40, "bottom": 50, "left": 75,
                                            "right": 80 if self.colour is not None else 20},
                                layout=widgets.Layout(**size))
        self.figure.add_class(CSS_SCATTER)

        self.view = nglview.NGLWidget()  # drawn in place by select()
        parts = [self.view]
        self.legend = None
        if self.per_atom_range is not None:  # the colour map draw_structure picks for this range
            self.legend = widgets.Image(value=colour_legend(*self.per_atom_range, self.per_atom_label, ""),
                                        format="png", layout=widgets.Layout(width=f"{min(450, self.width)}px"))
            self.legend.add_class(CSS_LEGEND)
            parts.append(self.legend)
        self.view_box = widgets.VBox(parts)
        self.view_box.add_class(CSS_VIEW)
        self.selection = widgets.HTML()
        self.selection.add_class(CSS_SELECTION)
        self.table = widgets.HTML()
        self.table.add_class(CSS_TABLE)
        body = widgets.HBox([self.figure, widgets.VBox([self.selection, self.view_box, self.table])])
        head = [widgets.HTML(f"<h3>{html.escape(title)}</h3>")] if title else []
        self.widget = widgets.VBox([*head, body])
        self.widget.add_class(CSS_EXPLORER)

    def _on_click(self, _mark, content: dict) -> None:
        """bqplot's ``element_click`` handler: ``content["data"]["index"]`` is the clicked point."""
        self.select(content["data"]["index"])

    def select(self, index: int) -> None:
        """Pick structure ``index``: highlight its point, draw it in the 3D view and fill the table (as a click does).

        Raises:
            TypeError: for a non-integer index.
            IndexError: for an index outside the structures.
        """
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}.")
        index = int(index)
        if not 0 <= index < len(self.images):
            raise IndexError(f"index {index} is not a structure (0..{len(self.images) - 1}).")
        if index == self.selected:
            return
        self.selected = index
        if list(self.scatter.selected or []) != [index]:
            self.scatter.selected = [index]
        self._draw(index)
        self.selection.value = (f"<b>structure #{index}</b> of {len(self.images)}: "
                                f"{html.escape(self.x_label)} = {self.x[index]:.4g}, "
                                f"{html.escape(self.y_label)} = {self.y[index]:.4g}")
        self.table.value = self.table_html(index)

    def _draw(self, index: int) -> None:
        """Replace the view's structure by structure ``index``, its atoms coloured on the dataset's shared scale."""
        values = None if self.per_atom is None else self.per_atom[index]
        drawn = draw_structure(self.view, self.images[index], values, replace=True, value_range=self.per_atom_range,
                               show_values=self.show_values, width=self.width, height=self.height)
        self.drawn = drawn.frames[0]

    def table_html(self, index: int) -> str:
        """HTML table of structure ``index``: energy (eV) and force RMS (eV/Å) per level, then the columns."""
        atoms = self.images[index]
        rows = ["<tr><th>level</th><th>energy (eV)</th><th>force RMS (eV/Å)</th></tr>"]
        for name, energy, rms in level_rows(atoms, self.levels):
            rms_text = "n/a" if rms is None else f"{rms:.4f}"
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{energy:.6f}</td><td>{rms_text}</td></tr>")
        if len(rows) == 1:
            rows.append('<tr><td colspan="3">no levels of theory stored</td></tr>')
        for name, values in self.columns.items():
            v = values[index]
            rows.append(f'<tr><td colspan="2">{html.escape(name)}</td>'
                        f"<td>{'n/a' if not np.isfinite(v) else f'{v:.4g}'}</td></tr>")
        caption = f"structure #{index}: {html.escape(atoms.get_chemical_formula())}"
        return f'<table class="{CSS_TABLE}-body"><caption>{caption}</caption>{"".join(rows)}</table>'

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _pick(value, table: dict, name: str):
    """``(values, label)`` for a quantity given by name (looked up in ``table``) or as values (label None)."""
    if isinstance(value, str):
        if value not in table:
            raise ValueError(f"{name}={value!r} is not available here; choose from {sorted(table)} or give values.")
        return table[value]
    return value, None


def dataset_explorer(images, calculator=None, levels=None, x: str | None = None, y: str | None = None, *,
                     level: str = "CCSD(T)/cc-pVDZ", colour="auto", per_atom="auto", columns: dict | None = None,
                     title: str | None = None, **kwargs) -> DatasetExplorer:
    """A :class:`DatasetExplorer` whose axes, colours and table come from a model's predictions on ``images``.

    Quantities (names for ``x``, ``y``, ``colour`` and ``per_atom``), against the reference ``level``:

    - "reference": reference energy relative to the lowest structure, eV;
    - "error", "abs_error": energy error (prediction − reference) and its magnitude, meV;
    - "force_error": force RMSE over a structure's components, meV/Å; per atom, |F_pred − F_ref| of each atom;
    - "uncertainty": the calculator's calibrated energy uncertainty (``keys.ENERGY_UNCERTAINTY``), meV; per atom,
      its ``keys.ATOM_UNCERTAINTY``, meV/Å (only for calculators that implement them).

    Without a calculator, "error" and "force_error" compare the first other level of ``levels`` (default: the
    levels stored on the first structure) with the reference, energies relative to the reference's lowest structure.

    Args:
        images: Structures labelled at ``level``, Å.
        calculator: An ASE calculator (e.g. :class:`mlipviz.potential.MLIPCalculator`), or None.
        levels: Levels listed in the table (and compared without a calculator); default all stored ones.
        x, y: Quantity names or (n_structures,) values (then pass ``x_label``/``y_label``). Default: x =
            "uncertainty", y = "abs_error" when the calculator reports uncertainties, else x = "reference",
            y = "error".
        level: The reference level of theory.
        colour: Quantity name or values colouring the points, None for none; "auto": "force_error" when known.
        per_atom: Quantity name or one array per structure colouring the atoms, None for element colours;
            "auto": "uncertainty" when the calculator reports it, else "force_error" when known.
        columns: More ``{name with unit: values}`` for the table (the error quantities are always listed).
        title: A heading.
        **kwargs: Passed on to :class:`DatasetExplorer` (``x_label``, ``y_label``, ``colour_label``,
            ``per_atom_label``, ``show_values``, ``width``, ``height``).

    Returns:
        The explorer; display it, or its ``.widget``.

    Raises:
        ValueError: for a structure without the reference energy (naming its index), an unknown quantity name,
            or bad values (see :class:`DatasetExplorer`).
    """
    images = DatasetExplorer._check_images(images)
    q, atoms_q = dataset_quantities(images, calculator, level, levels)
    if x is None and y is None:
        x, y = ("uncertainty", "abs_error") if "uncertainty" in q else ("reference", "error")
    x_vals, x_label = _pick("reference" if x is None else x, q, "x")
    y_vals, y_label = _pick("error" if y is None else y, q, "y")
    kwargs.setdefault("x_label", x_label or "x")
    kwargs.setdefault("y_label", y_label or "y")
    if colour == "auto":
        colour = "force_error" if "force_error" in q else None
    if colour is not None:
        colour, colour_label = _pick(colour, q, "colour")
        kwargs.setdefault("colour_label", colour_label)
    if per_atom == "auto":
        per_atom = next((k for k in ("uncertainty", "force_error") if k in atoms_q), None)
    if per_atom is not None:
        per_atom, per_atom_label = _pick(per_atom, atoms_q, "per_atom")
        kwargs.setdefault("per_atom_label", per_atom_label)
    table = {label: values for name, (values, label) in q.items() if name not in ("reference", "abs_error")}
    table.update(columns or {})
    return DatasetExplorer(images, x_vals, y_vals, colour=colour, per_atom=per_atom, columns=table, title=title,
                           levels=levels, **kwargs)
