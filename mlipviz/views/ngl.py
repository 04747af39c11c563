"""3D views with nglview, coloured by any per-atom value, fitted to the canvas, with a legend on the true scale.

nglview receives structures as PDB text written by ASE, whose B-factor column is ``%6.2f``: values of
1000 or more overflow into the next column. So per-atom values are mapped linearly onto [-99, 99], drawn
with NGL's ``bfactor`` colour scheme on a fixed domain, and the legend shows the original values and unit.
Signed values get a diverging colour map centred on zero (:data:`COLOR_SCALE`), one-signed values a sequential
one (:data:`SEQUENTIAL_SCALE`); NGL receives the colour stops of the same matplotlib map, so view and legend match.

NGL's ``autoView`` places the camera ``clipDist`` (10 Å by default) beyond the distance that fits the
molecule, which draws a small molecule small in an empty canvas. :func:`fit_clip_distance` computes the
``clipDist`` that makes the molecule fill a chosen fraction of a canvas of known size, and the view is fitted
after loading. :mod:`mlipviz.views.draw` draws with these pieces, into an existing NGLWidget or a new one; nglview and
ipywidgets are imported inside the functions, so the rest of mlipviz runs without Jupyter.

References:
    Rose et al., Bioinformatics 34, 3755 (2018), doi:10.1093/bioinformatics/bty419 (NGL Viewer).
    Nguyen, Case, Rose, Bioinformatics 34, 1241 (2018), doi:10.1093/bioinformatics/btx789 (nglview).
"""

from __future__ import annotations

import io
import math

import numpy as np
from ase import Atoms

__all__ = [
    "COLOR_SCALE",
    "SEQUENTIAL_SCALE",
    "REPRESENTATIONS",
    "check_frames",
    "colour_legend",
    "colour_stops",
    "face_camera",
    "fit_clip_distance",
    "scale_to_bfactor",
    "visible_half_height",
]

#: Diverging map for signed values (ColorBrewer RdYlBu: red for negative, blue for positive), matplotlib name.
COLOR_SCALE = "RdYlBu"
#: Sequential map for one-signed values (perceptually uniform), matplotlib name.
SEQUENTIAL_SCALE = "viridis"
#: Scaled values live in [-BFACTOR_LIMIT, BFACTOR_LIMIT], inside the PDB column's width.
BFACTOR_LIMIT = 99.0
#: NGL representations that draw a small molecule (``view_structure`` refuses any other name).
REPRESENTATIONS = ("ball+stick", "spacefill", "licorice", "line", "point", "hyperball", "surface", "label")
#: NGL's default camera field of view, degrees (Stage parameter ``cameraFov``).
NGL_FOV_DEG = 40.0
#: Fraction of the canvas the molecule (with its atoms' radii) fills after fitting.
FILL = 0.85
#: Height of the digits of a value label, pixels.
LABEL_PX = 16
#: Height of NGL's label digits as a fraction of the label's size parameter (measured in Chromium).
NGL_GLYPH_HEIGHT = 0.23


def scale_to_bfactor(values, symmetric: bool | None = None,
                     value_range: tuple[float, float] | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """Map per-atom values linearly onto [-99, 99].

    Args:
        values: (n_atoms,) finite values, any unit.
        symmetric: Centre the scale on zero (default: when the values have both signs).
        value_range: The true values ``(low, high)`` at the ends of the scale, in the values' unit, e.g. one range
            shared by the structures of a dataset so that colours compare across them; every value must lie in it.
            Default: the values' own range.

    Returns:
        ``(scaled, (low, high))``: scaled values and the true values at the ends of the scale.

    Raises:
        ValueError: for non-finite values, a non 1-D array, a bad ``value_range`` or values outside it, or both
            ``symmetric`` and ``value_range``.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array with one value per atom, got shape {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values contain NaN or infinity at atom index(es) {np.where(~np.isfinite(v))[0].tolist()}.")
    if value_range is not None:
        if symmetric is not None:
            raise ValueError("give symmetric or value_range, not both: value_range fixes the whole scale.")
        low, high = _check_range(value_range)
        outside = np.flatnonzero((v < low) | (v > high))
        if outside.size:
            raise ValueError(f"values[{outside[0]}] = {float(v[outside[0]])!r} lies outside value_range "
                             f"({low!r}, {high!r}).")
    elif symmetric or symmetric is None and v.min() < 0 < v.max():
        m = float(np.abs(v).max()) or 1.0
        return BFACTOR_LIMIT * (v / m), (-m, m)  # |v / m| <= 1: no overflow for any finite values
    else:  # one-signed: from the minimum to the maximum
        low, high = float(v.min()), float(v.max())
        if high == low:
            big = np.finfo(float).max
            d = 0.5 * max(1.0, abs(low))
            low, high = float(max(low - d, -big)), float(min(high + d, big))
    # Halves first, so that high − low cannot overflow (e.g. for ±1e308).
    frac = (v / 2 - low / 2) / (high / 2 - low / 2)
    return -BFACTOR_LIMIT + 2 * BFACTOR_LIMIT * frac, (low, high)


def _finite_number(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not np.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}.")
    return float(x)


def _check_range(value_range) -> tuple[float, float]:
    try:
        low, high = value_range
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a pair (low, high), got {value_range!r}.") from None
    low, high = _finite_number(low, "value_range[0]"), _finite_number(high, "value_range[1]")
    if not low < high:
        raise ValueError(f"value_range must have low < high, got {value_range!r}.")
    return low, high


def _default_scale(low: float, high: float) -> str:
    return COLOR_SCALE if low < 0 < high and math.isclose(-low, high, rel_tol=1e-9) else SEQUENTIAL_SCALE


def colour_stops(cmap: str, n: int = 11) -> list[str]:
    """``n`` evenly spaced colours of the matplotlib map ``cmap`` as "#rrggbb", low end first (NGL's colour scale)."""
    import matplotlib
    from matplotlib.colors import to_hex

    return [to_hex(c) for c in matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, n))]


def colour_legend(low: float, high: float, label: str = "value", unit: str = "eV", width: float = 4.5,
                  cmap: str | None = None) -> bytes:
    """A horizontal matplotlib colour bar from ``low`` to ``high`` as PNG bytes.

    Args:
        low, high: True values at the ends of the scale (finite, ``low < high``), in ``unit``.
        label: What the values are.
        unit: Their unit ("" for none).
        width: Figure width, inches.
        cmap: matplotlib colour map; default :data:`COLOR_SCALE` for a range symmetric about zero,
            :data:`SEQUENTIAL_SCALE` otherwise (the choice :func:`view_structure` makes).

    Raises:
        ValueError: for a non-finite end, ``low >= high``, or a non-positive width.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    low, high = _finite_number(low, "low"), _finite_number(high, "high")
    if not low < high:
        raise ValueError(f"low must be below high, got low={low!r}, high={high!r}.")
    if _finite_number(width, "width") <= 0:
        raise ValueError(f"width must be a positive size in inches, got {width!r}.")
    fig, ax = plt.subplots(figsize=(width, 0.9), dpi=100)
    fig.subplots_adjust(left=0.04, right=0.96, bottom=0.62, top=0.92)
    sm = plt.cm.ScalarMappable(norm=Normalize(low, high), cmap=cmap or _default_scale(low, high))
    cb = fig.colorbar(sm, cax=ax, orientation="horizontal")
    cb.set_label(f"{label} ({unit})" if unit else label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def check_frames(structure) -> list[Atoms]:
    """One structure or a trajectory as a list of frames, checked for drawing.

    Raises:
        TypeError: for anything that is not an ``ase.Atoms`` or an iterable of them.
        ValueError: for no frames, a frame without atoms, NaN or infinite positions, or frames whose atoms
            differ (in number or element) from the first frame's.
    """
    if isinstance(structure, Atoms):
        frames = [structure]
    elif isinstance(structure, (str, bytes)) or not hasattr(structure, "__iter__"):
        raise TypeError(f"structure must be an ase.Atoms or a list of them, got {type(structure).__name__}.")
    else:
        frames = list(structure)  # a list, a tuple, an ase.io.Trajectory, ...
    if not frames:
        raise ValueError("structure is an empty trajectory.")
    for k, f in enumerate(frames):
        if not isinstance(f, Atoms):
            raise TypeError(f"frame {k} of structure is a {type(f).__name__}, not an ase.Atoms.")
        if len(f) == 0:
            raise ValueError(f"frame {k} of structure has no atoms.")
        pos = f.get_positions()
        if not np.all(np.isfinite(pos)):
            rows = sorted(set(np.argwhere(~np.isfinite(pos))[:, 0].tolist()))
            raise ValueError(f"frame {k} of structure has NaN or infinite positions for atom index(es) {rows}.")
        if len(f) != len(frames[0]):
            raise ValueError(f"frame {k} of structure has {len(f)} atoms but frame 0 has {len(frames[0])}; "
                             "a trajectory needs the same atoms in every frame.")
        if not np.array_equal(f.numbers, frames[0].numbers):
            raise ValueError(f"frame {k} of structure holds other elements than frame 0 (or in another order).")
    return frames


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


def visible_half_height(frames: list[Atoms], width: int, height: int, margin: float, fill: float = FILL) -> float:
    """Half the height (Å) the canvas must show so the frames, widened by ``margin``, fill ``fill`` of it.

    Extents are measured about the centre of the first frame's bounding box (where NGL's ``autoView`` looks).
    """
    if not 0 < fill <= 1:
        raise ValueError(f"fill must lie in (0, 1], got {fill!r}.")
    pos = np.concatenate([f.get_positions() for f in frames])
    centre = 0.5 * (frames[0].positions.min(axis=0) + frames[0].positions.max(axis=0))
    half_x = np.abs(pos[:, 0] - centre[0]).max() + margin
    half_y = np.abs(pos[:, 1] - centre[1]).max() + margin
    return float(max(half_y, half_x * height / width) / fill)


def fit_clip_distance(frames: list[Atoms], width: int, height: int, margin: float, fill: float = FILL) -> float:
    """NGL's ``clipDist`` (Å) that makes ``autoView`` fit the frames to ``fill`` of a ``width`` × ``height`` canvas.

    NGL's ``Stage.getZoomForBox`` puts the camera at D = 0.5 (L + √l) / a / sin(fov/2) + clipDist from the
    centre of the first frame's bounding box (L, l: its largest and smallest edge, Å; a = 1 on a wide canvas,
    width/height on a tall one), and an orthographic camera then shows a height of 2 D tan(fov/2). The
    returned ``clipDist`` places the camera where the x and y extents of all frames, widened by ``margin`` on
    each side, fill ``fill`` of the canvas in the tighter direction. It may be negative (a closer camera).

    Args:
        frames: Frames as drawn (after :func:`face_camera`), Å.
        width, height: Canvas size, pixels.
        margin: Room around each atom centre (the drawn atom radius), Å.
        fill: Fraction of the canvas to fill, (0, 1].

    Returns:
        The clip distance, Å.
    """
    half_height = visible_half_height(frames, width, height, margin, fill)
    aspect = width / height
    tan_half = math.tan(math.radians(NGL_FOV_DEG) / 2)
    sin_half = math.sin(math.radians(NGL_FOV_DEG) / 2)
    box = np.ptp(frames[0].get_positions(), axis=0)
    a = 1.0 if height < width else aspect
    ngl_distance = abs(0.5 * (box.max() + math.sqrt(box.min())) / a / sin_half)
    return float(half_height / tan_half - ngl_distance)


def _atom_radius(frames: list[Atoms], representation: str) -> float:
    """Largest drawn atom radius, Å: van der Waals for space filling; 0.3 Å bounds NGL's ball+stick spheres."""
    from ase.data import vdw_radii

    if representation in ("spacefill", "surface"):
        r = vdw_radii[np.unique(frames[0].numbers)]
        return float(np.nanmax(np.where(np.isnan(r), 2.0, r)))
    return 0.3
