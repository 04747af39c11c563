"""Pair values (for example n-body pair relevances, eV) drawn as coloured bonds: matplotlib and nglview.

Both views use the lab's diverging colour scale (:data:`mlipviz.views.ngl.COLOR_SCALE`, ColorBrewer
RdYlBu) centred on zero, so a pair that lowers the energy and one that raises it by the same amount sit
at the two ends, red for negative and blue for positive, with a colour bar on the true scale.
nglview is imported inside :func:`view_pair_values`, so the matplotlib view needs no Jupyter.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..geometry import bonds_of, check_atoms
from .ngl import COLOR_SCALE, colour_legend, face_camera

__all__ = ["plot_pair_values", "view_pair_values", "pair_colours", "pairs_to_draw"]


def _check_pairs(atoms: Atoms, pair) -> np.ndarray:
    check_atoms(atoms)
    p = np.asarray(pair, dtype=float)
    n = len(atoms)
    if p.shape != (n, n):
        raise ValueError(f"pair must be an ({n}, {n}) array for {n} atoms, got shape {p.shape}.")
    if not np.all(np.isfinite(p)):
        bad = sorted({tuple(sorted(ij)) for ij in np.argwhere(~np.isfinite(p)).tolist()})
        raise ValueError(f"pair holds NaN or infinity for atom pair(s) {bad[:5]}.")
    asym = np.abs(p - p.T).max()
    if asym > 1e-9 * max(1.0, np.abs(p).max()):
        raise ValueError(f"pair must be symmetric; pair[i, j] and pair[j, i] differ by up to {asym:.3g}.")
    return p


def pairs_to_draw(atoms: Atoms, pair, min_fraction: float = 0.02) -> np.ndarray:
    """Pairs (i < j), shape (n, 2): the covalent bonds, and every other pair whose |value| is at least
    ``min_fraction`` of the largest |off-diagonal value|.

    Raises:
        ValueError: for bad ``atoms``, a non-square, non-finite or asymmetric ``pair``, or ``min_fraction``
            outside [0, 1].
    """
    p = _check_pairs(atoms, pair)
    if not 0 <= min_fraction <= 1:
        raise ValueError(f"min_fraction must lie in [0, 1], got {min_fraction!r}.")
    iu = np.triu_indices(len(atoms), 1)
    vmax = np.abs(p[iu]).max() if len(iu[0]) else 0.0
    keep = {tuple(b) for b in bonds_of(atoms).tolist()}
    if vmax > 0:
        keep |= {(int(i), int(j)) for i, j in zip(*iu) if abs(p[i, j]) >= min_fraction * vmax and p[i, j] != 0}
    return np.array(sorted(keep), dtype=int).reshape(-1, 2)


def pair_colours(values, vmax: float | None = None):
    """RGBA colours (n, 4) of ``values`` on the diverging scale from −vmax to vmax, and the norm used."""
    import matplotlib
    from matplotlib.colors import Normalize

    v = np.asarray(values, dtype=float)
    if vmax is None:
        vmax = float(np.abs(v).max()) if v.size else 0.0
    vmax = vmax if vmax > 0 else 1.0
    norm = Normalize(-vmax, vmax)
    return matplotlib.colormaps[COLOR_SCALE](norm(v)), norm


def plot_pair_values(
    atoms: Atoms,
    pair,
    label: str = "pair relevance",
    unit: str = "eV",
    min_fraction: float = 0.02,
    annotate: bool = True,
    ax=None,
):
    """A 2D projection of the molecule with its pairs coloured by value, and a colour bar.

    The molecule is rotated so that its widest plane faces the viewer (the view of
    :func:`mlipviz.views.ngl.face_camera`). Lines join the pairs of :func:`pairs_to_draw`; their colour maps
    the value on the diverging scale centred on zero, and their width grows with |value|.

    Args:
        atoms: The molecule, Å.
        pair: (n_atoms, n_atoms) symmetric values, e.g. ``NBodyRelevance.pair`` (eV); the diagonal is ignored.
        label: What the values are, for the colour bar.
        unit: Their unit.
        min_fraction: Non-bonded pairs below this fraction of the largest |value| are not drawn.
        annotate: Write each drawn pair's value at its midpoint.
        ax: A matplotlib Axes to draw into (default: a new figure).

    Returns:
        The matplotlib Figure. Its first ``LineCollection`` holds the pairs, in the order of
        :func:`pairs_to_draw`, with their values as the collection's array.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from ase.data import covalent_radii
    from ase.data.colors import jmol_colors

    p = _check_pairs(atoms, pair)
    drawn = pairs_to_draw(atoms, p, min_fraction)
    xy = face_camera([atoms])[0].positions[:, :2]
    values = p[drawn[:, 0], drawn[:, 1]] if len(drawn) else np.zeros(0)
    iu = np.triu_indices(len(atoms), 1)
    vmax = float(np.abs(p[iu]).max()) if len(iu[0]) else 0.0
    _, norm = pair_colours(values, vmax)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
    else:
        fig = ax.figure
    widths = 1.5 + 4.0 * np.abs(values) / (norm.vmax or 1.0)
    lines = LineCollection(xy[drawn] if len(drawn) else np.zeros((0, 2, 2)), cmap=COLOR_SCALE, norm=norm,
                           linewidths=widths if len(drawn) else 1.0, zorder=1)
    lines.set_array(values)
    ax.add_collection(lines)
    ax.scatter(xy[:, 0], xy[:, 1], s=900 * covalent_radii[atoms.numbers] ** 2, c=jmol_colors[atoms.numbers],
               edgecolors="black", linewidths=0.8, zorder=2)
    for k, (x, y) in enumerate(xy):
        ax.annotate(f"{atoms.get_chemical_symbols()[k]}{k}", (x, y), ha="center", va="center", fontsize=7, zorder=3)
    if annotate:
        for (i, j), v in zip(drawn, values):
            mid = xy[[i, j]].mean(axis=0)
            ax.annotate(f"{v:.3g}", mid, fontsize=7, ha="center", va="bottom", zorder=3,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    fig.colorbar(lines, ax=ax, label=f"{label} ({unit})" if unit else label)
    ax.set_aspect("equal")
    ax.margins(0.15)
    ax.autoscale_view()
    ax.set_axis_off()
    return fig


def view_pair_values(
    atoms: Atoms,
    pair,
    label: str = "pair relevance",
    unit: str = "eV",
    min_fraction: float = 0.02,
    radius: float = 0.12,
):
    """An nglview widget: the molecule as small spheres, its pairs as cylinders coloured by value, a legend.

    Args:
        atoms: The molecule, Å.
        pair: (n_atoms, n_atoms) symmetric values (eV for relevances); the diagonal is ignored.
        label: What the values are, for the legend.
        unit: Their unit.
        min_fraction: As in :func:`pairs_to_draw`.
        radius: Base cylinder radius, Å; it grows with |value| up to twice this.

    Returns:
        An ``ipywidgets.VBox`` of the view and the legend; ``.view`` is the NGLWidget.
    """
    import ipywidgets as widgets
    import nglview

    p = _check_pairs(atoms, pair)
    if not radius > 0:
        raise ValueError(f"radius must be a positive length in Å, got {radius!r}.")
    drawn = pairs_to_draw(atoms, p, min_fraction)
    faced = face_camera([atoms])[0]
    iu = np.triu_indices(len(atoms), 1)
    vmax = float(np.abs(p[iu]).max()) if len(iu[0]) else 0.0
    values = p[drawn[:, 0], drawn[:, 1]] if len(drawn) else np.zeros(0)
    colours, norm = pair_colours(values, vmax)
    view = nglview.show_ase(faced)
    view.clear_representations()
    view.add_representation("spacefill", radiusScale=0.25)
    pos = faced.positions
    if len(drawn):
        radii = radius * (1.0 + np.abs(values) / norm.vmax)
        rgb = colours[:, :3]
        view.shape.add_buffer(
            "cylinder",
            position1=pos[drawn[:, 0]].ravel().tolist(),
            position2=pos[drawn[:, 1]].ravel().tolist(),
            color=rgb.ravel().tolist(),
            color2=rgb.ravel().tolist(),
            radius=radii.tolist(),
        )
    view.camera = "orthographic"
    view.center()
    legend = colour_legend(norm.vmin, norm.vmax, label, unit)
    box = widgets.VBox([view, widgets.Image(value=legend, format="png", layout=widgets.Layout(width="450px"))])
    box.view = view
    return box
