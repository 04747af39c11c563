"""3D views with nglview, coloured by any per-atom value, with a legend on the true scale.

nglview receives structures as PDB text written by ASE, whose B-factor column is ``%6.2f``: values of
1000 or more overflow into the next column. So per-atom values are mapped linearly onto [-99, 99], drawn
with NGL's ``bfactor`` colour scheme on a fixed domain, and the legend shows the original values and unit.
nglview and ipywidgets are imported inside the functions, so the rest of mlipviz runs without Jupyter.
"""

from __future__ import annotations

import io

import numpy as np
from ase import Atoms

__all__ = ["scale_to_bfactor", "colour_legend", "face_camera", "view_structure"]

#: NGL colour scale name; matplotlib knows the same ColorBrewer map, so the legend matches the view.
COLOR_SCALE = "RdYlBu"
#: Scaled values live in [-BFACTOR_LIMIT, BFACTOR_LIMIT], inside the PDB column's width.
BFACTOR_LIMIT = 99.0


def scale_to_bfactor(values, symmetric: bool | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """Map per-atom values linearly onto [-99, 99].

    Args:
        values: (n_atoms,) finite values, any unit.
        symmetric: Centre the scale on zero (default: when the values have both signs).

    Returns:
        ``(scaled, (low, high))``: scaled values and the true values at the ends of the scale.

    Raises:
        ValueError: for non-finite values or a non 1-D array.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array with one value per atom, got shape {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values contain NaN or infinity at atom index(es) {np.where(~np.isfinite(v))[0].tolist()}.")
    if symmetric is None:
        symmetric = v.min() < 0 < v.max()
    if symmetric:
        m = float(np.abs(v).max()) or 1.0
        low, high = -m, m
    else:
        low, high = float(v.min()), float(v.max())
        if high == low:
            low, high = low - 0.5, high + 0.5
    scaled = -BFACTOR_LIMIT + 2 * BFACTOR_LIMIT * (v - low) / (high - low)
    return scaled, (low, high)


def colour_legend(low: float, high: float, label: str, unit: str, width: float = 4.5) -> bytes:
    """A horizontal matplotlib colour bar from ``low`` to ``high`` as PNG bytes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    fig, ax = plt.subplots(figsize=(width, 0.9), dpi=100)
    fig.subplots_adjust(left=0.04, right=0.96, bottom=0.62, top=0.92)
    sm = plt.cm.ScalarMappable(norm=Normalize(low, high), cmap=COLOR_SCALE)
    cb = fig.colorbar(sm, cax=ax, orientation="horizontal")
    cb.set_label(f"{label} ({unit})" if unit else label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def face_camera(frames: list[Atoms]) -> list[Atoms]:
    """Copies of ``frames`` rotated so that the first frame's widest plane faces the viewer.

    The principal axes of the first frame (largest extent first) are mapped onto x, y, z; NGL looks down z,
    so a planar molecule such as water is seen face-on rather than edge-on. One rotation for all frames.
    """
    pos = frames[0].get_positions()
    centre = pos.mean(axis=0)
    _, _, vt = np.linalg.svd(pos - centre)
    if np.linalg.det(vt) < 0:
        vt[2] *= -1
    out = []
    for f in frames:
        g = f.copy()
        g.positions = (f.get_positions() - centre) @ vt.T
        out.append(g)
    return out


def view_structure(
    structure: Atoms | list[Atoms],
    values=None,
    label: str = "value",
    unit: str = "eV",
    symmetric: bool | None = None,
    show_values: bool = True,
    representation: str = "ball+stick",
):
    """An nglview widget of a structure or trajectory, optionally coloured by per-atom values.

    Args:
        structure: One structure or a list of frames (a trajectory; the player walks through them).
        values: (n_atoms,) per-atom values (e.g. attributions in eV), or None for element colours.
        label: What the values are, for the legend.
        unit: Their unit, for the legend.
        symmetric: Centre the colour scale on zero (default: when values have both signs).
        show_values: Write each atom's value next to it.
        representation: NGL representation, e.g. "ball+stick" or "spacefill".

    Returns:
        An ``ipywidgets.VBox`` holding the view and, with values, the legend; ``.view`` is the NGLWidget.
    """
    import ipywidgets as widgets
    import nglview

    frames = [structure] if isinstance(structure, Atoms) else list(structure)
    if not frames:
        raise ValueError("structure is an empty trajectory.")
    frames = face_camera(frames)
    first = frames[0]
    children = []
    if values is not None:
        scaled, (low, high) = scale_to_bfactor(values, symmetric)
        if len(scaled) != len(first):
            raise ValueError(f"values has {len(scaled)} entries but the structure has {len(first)} atoms.")
        first.set_array("bfactor", scaled)
    frames = [first] + frames[1:]
    view = nglview.show_asetraj(frames) if len(frames) > 1 else nglview.show_ase(first)
    view.clear_representations()
    if values is None:
        view.add_representation(representation)
    else:
        view.add_representation(
            representation, colorScheme="bfactor", colorScale=COLOR_SCALE, colorDomain=[-BFACTOR_LIMIT, BFACTOR_LIMIT]
        )
        if show_values:
            view.add_representation(
                "label", labelType="text", labelText=[f"{v:.3g}" for v in np.asarray(values, float)],
                color="black", zOffset=2.0, attachment="middle-center",
                showBackground=True, backgroundColor="white", backgroundOpacity=0.7,
            )
        legend = colour_legend(low, high, label, unit)
        children.append(widgets.Image(value=legend, format="png", layout=widgets.Layout(width="450px")))
    view.camera = "orthographic"
    view.center()  # fit the view to the structure now that the representations are set
    box = widgets.VBox([view, *children])
    box.view = view
    return box
