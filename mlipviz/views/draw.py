"""Draw structures into nglview: into an existing NGLWidget (widgets redraw one view in place) or a new one.

:func:`draw_structure` draws checked, camera-facing frames with per-atom colours, labels, force arrows and a clip
distance that fits the canvas (see :mod:`mlipviz.views.ngl`), and can replace what a view showed (trimming
nglview's replay archive, so a redrawn page does not address removed components); :func:`view_structure` makes a
new view with a legend. nglview and ipywidgets are imported inside the functions.

Per-frame values and arrows. nglview moves a trajectory's atoms but colours them by the one set of B-factors
loaded with it, and a shape (an arrow) does not move with the atoms. So values per frame ``(n_frames, n_atoms)``,
or arrows, on a trajectory are drawn one frame at a time: the structure loaded is the frame shown (its positions,
its values on one colour scale over all frames, its arrows), and :func:`view_structure` draws it again when the
view's frame changes (play button, slider, ``view.frame``), keeping the camera; the new drawing is added before
the old one is removed, so the view never goes blank. Arrows (e.g. forces, eV/Å) start at their atom, are
``arrow_scale`` Å long per unit (default: the longest over all frames is :data:`ARROW_LENGTH`), and turn with the
rotation :func:`face_camera` gives the atoms (a vector maps as the difference of the images of its two ends).
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .archive import prune_archive
from .ngl import (BFACTOR_LIMIT, LABEL_PX, NGL_GLYPH_HEIGHT, REPRESENTATIONS, _atom_radius, _check_range,
                  _default_scale, _finite_number, check_frames, colour_legend, colour_stops, face_camera,
                  fit_clip_distance, scale_to_bfactor, visible_half_height)

__all__ = ["ARROW_COLOUR", "ARROW_LENGTH", "ARROW_RADIUS", "DrawnStructure", "draw_structure", "view_structure"]

#: Colour of the arrows (matplotlib colour): dark grey, apart from every colour map and element colour.
ARROW_COLOUR = "#333333"
#: Length of the longest arrow when no ``arrow_scale`` is given, Å.
ARROW_LENGTH = 1.0
#: Radius of an arrow's head, Å (NGL's arrow: a shaft of 2/3 this radius, a head twice this long).
ARROW_RADIUS = 0.08
#: Arrows shorter than this are not drawn (NGL cannot orient an arrow of zero length), Å.
MIN_ARROW_LENGTH = 1e-6


@dataclass(frozen=True)
class DrawnStructure:
    """What :func:`draw_structure` drew.

    Attributes:
        frames: The frames as drawn, Å: rotated to face the viewer (:func:`face_camera`); with values, frame
            ``frame``'s ``bfactor`` array holds its values scaled onto [-99, 99].
        component: The nglview ``ComponentViewer`` of the structure.
        value_range: The true values ``(low, high)`` at the ends of the colour scale; None for element colours.
        cmap: The matplotlib colour map of the atoms (for :func:`colour_legend`); None for element colours.
        frame: The frame drawn: its positions were loaded, its values colour the atoms, its arrows are drawn.
        arrows: The nglview ``ComponentViewer`` of the arrows (one shape); None without arrows (or all of zero
            length).
        arrow_scale: Arrow length per unit of the vectors, Å per (eV/Å) for forces; None without arrows.
    """

    frames: list[Atoms]
    component: object
    value_range: tuple[float, float] | None
    cmap: str | None
    frame: int = 0
    arrows: object = None
    arrow_scale: float | None = None


def check_frame_values(v: np.ndarray, n_frames: int, n_atoms: int, name: str, hint: str) -> None:
    """Refuse per-frame per-atom values ``v`` unless of shape (n_frames, n_atoms) and finite, naming ``name``."""
    if v.shape != (n_frames, n_atoms):
        raise ValueError(f"{name} has shape {v.shape} but the structure has {n_frames} frame(s) of {n_atoms} atoms; "
                         f"{hint}")
    bad = np.argwhere(~np.isfinite(v))
    if len(bad):
        k, i = bad[0]
        raise ValueError(f"{name}[{k}, {i}] is {v[k, i]} (not finite; {len(bad)} such value(s)).")


def _per_frame_values(values, n_frames: int, n_atoms: int, symmetric, value_range):
    """(n_frames, n_atoms) checked values and scaled B-factors, the colour range, and whether they vary by frame."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("values must be numbers: (n_atoms,) or (n_frames, n_atoms).") from None
    if v.ndim == 1:
        scaled, value_range = scale_to_bfactor(v, symmetric, value_range)
        if len(scaled) != n_atoms:
            raise ValueError(f"values has {len(scaled)} entries but the structure has {n_atoms} atoms.")
        return np.broadcast_to(v, (n_frames, n_atoms)), np.broadcast_to(scaled, (n_frames, n_atoms)), value_range, False
    check_frame_values(v, n_frames, n_atoms, "values", f"give ({n_atoms},) values for every frame or "
                       f"({n_frames}, {n_atoms}), one row per frame.")
    if value_range is not None:
        low, high = _check_range(value_range)
        outside = np.argwhere((v < low) | (v > high))
        if len(outside):
            k, i = outside[0]
            raise ValueError(f"values[{k}, {i}] = {float(v[k, i])!r} lies outside value_range ({low!r}, {high!r}).")
    scaled, value_range = scale_to_bfactor(v.ravel(), symmetric, value_range)  # one scale over all frames
    return v, scaled.reshape(v.shape), value_range, True


def _per_frame_arrows(arrows, n_frames: int, n_atoms: int) -> np.ndarray:
    """(n_frames, n_atoms, 3) checked vectors: one set for every frame, or one set per frame."""
    try:
        a = np.asarray(arrows, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("arrows must be numbers: (n_atoms, 3) or (n_frames, n_atoms, 3).") from None
    if a.shape != (n_atoms, 3) and a.shape != (n_frames, n_atoms, 3):
        raise ValueError(f"arrows has shape {a.shape} but the structure has {n_frames} frame(s) of {n_atoms} atoms; "
                         f"give ({n_atoms}, 3), one vector per atom, or ({n_frames}, {n_atoms}, 3), one set per frame.")
    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        where = f"frame {bad[0][0]}, " if a.ndim == 3 else ""
        rows = sorted({int(b[-2]) for b in bad if a.ndim == 2 or b[0] == bad[0][0]})
        raise ValueError(f"arrows has NaN or infinite components ({where}atom index(es) {rows}).")
    return np.broadcast_to(a, (n_frames, n_atoms, 3))


@functools.cache
def _trajectory_class():
    import nglview

    class FrameTrajectory(nglview.ASETrajectory):
        """nglview's ASE trajectory whose loaded structure (the PDB with the B-factors) is frame ``frame``."""

        def __init__(self, frames: list[Atoms], frame: int):
            super().__init__(frames)
            self.loaded_frame = frame

        def get_structure_string(self):
            return nglview.ASEStructure(self.trajectory[self.loaded_frame]).get_structure_string()

    return FrameTrajectory


class _Drawing:
    """Frames, values and arrows checked for drawing, before any view is touched; :meth:`draw` draws one frame."""

    def __init__(self, structure, values, *, symmetric, value_range, cmap, show_values, representation, width,
                 height, arrows, arrow_scale, arrow_colour):
        frames = check_frames(structure)
        if representation not in REPRESENTATIONS:
            raise ValueError(f"representation={representation!r} is not one of {REPRESENTATIONS}.")
        for name, px in (("width", width), ("height", height)):
            if isinstance(px, bool) or not isinstance(px, (int, np.integer)) or not 50 <= px <= 10000:
                raise ValueError(f"{name} must be a canvas size of 50 to 10000 pixels, got {px!r}.")
        n_frames, n_atoms = len(frames), len(frames[0])
        self.values = self.scaled = None
        per_frame = False
        if values is None:
            if value_range is not None or cmap is not None:
                raise ValueError("value_range and cmap set the colours of per-atom values: give values with them.")
        else:
            self.values, self.scaled, value_range, per_frame = _per_frame_values(values, n_frames, n_atoms,
                                                                                 symmetric, value_range)
            if cmap is None:
                cmap = _default_scale(*value_range)
            else:
                import matplotlib

                if not isinstance(cmap, str) or cmap not in matplotlib.colormaps:
                    raise ValueError(f"cmap={cmap!r} is not the name of a matplotlib colour map.")
        self.value_range, self.cmap = value_range, cmap
        self.arrow_scale = self.ends = self.arrow_rgb = None
        if arrows is None:
            if arrow_scale is not None:
                raise ValueError("arrow_scale sets the length of arrows: give arrows with it.")
        else:
            vectors = _per_frame_arrows(arrows, n_frames, n_atoms)
            if arrow_scale is None:
                longest = float(np.linalg.norm(vectors, axis=-1).max())
                arrow_scale = ARROW_LENGTH / longest if longest > 0 else 1.0
            elif _finite_number(arrow_scale, "arrow_scale") <= 0:
                raise ValueError(f"arrow_scale must be a positive length per unit of the arrows (Å per eV/Å for "
                                 f"forces), got {arrow_scale!r}.")
            from matplotlib.colors import to_rgb

            try:
                self.arrow_rgb = [float(c) for c in to_rgb(arrow_colour)]
            except ValueError:
                raise ValueError(f"arrow_colour={arrow_colour!r} is not a matplotlib colour.") from None
            self.arrow_scale = float(arrow_scale)
        # One rotation for all frames; the images of a probe's unit vectors give its action on vectors.
        probe = Atoms(numbers=[0] * 4, positions=np.vstack([np.zeros(3), np.eye(3)]))
        *self.frames, turned = face_camera([*frames, probe])
        if arrows is not None:
            rotation = turned.positions[1:] - turned.positions[0]  # row i: where unit vector i goes; v -> v @ rotation
            starts = np.stack([f.positions for f in self.frames])
            self.ends = starts + self.arrow_scale * (vectors @ rotation)
        self.n_frames = n_frames
        self.follows_frames = n_frames > 1 and (per_frame or arrows is not None)
        self.show_values, self.representation, self.width, self.height = show_values, representation, width, height

    def check_frame(self, frame) -> int:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise TypeError(f"frame must be an integer, got {type(frame).__name__}.")
        if not 0 <= frame < self.n_frames:
            raise ValueError(f"frame={frame} is not a frame of the structure (0..{self.n_frames - 1}).")
        return int(frame)

    def draw(self, view, frame: int = 0, *, fit: bool = True, replace: bool = False) -> DrawnStructure:
        """Draw frame ``frame`` into ``view``; with ``replace``, then remove what the view showed before."""
        import nglview

        old = list(view) if replace else []
        drawn = list(self.frames)
        fit_frames = [drawn[frame], *drawn]  # NGL fits the loaded frame's box; all frames must stay in view
        if self.ends is not None:  # ... and so must the arrows' tips
            fit_frames.append(Atoms(numbers=np.zeros(self.ends[..., 0].size, int), positions=self.ends.reshape(-1, 3)))
        radius = _atom_radius(drawn, self.representation)  # room kept for the drawn atoms (labels sit on them), Å
        view._view_width, view._view_height = f"{self.width}px", f"{self.height}px"  # read by the front end
        if self.scaled is not None:
            drawn[frame] = drawn[frame].copy()
            drawn[frame].set_array("bfactor", self.scaled[frame])
        if len(drawn) > 1:
            component = view.add_trajectory(_trajectory_class()(drawn, frame), default_representation=False)
        else:
            component = view.add_structure(nglview.ASEStructure(drawn[0]), default_representation=False)
        if self.scaled is None:
            component.add_representation(self.representation)
        else:
            component.add_representation(self.representation, colorScheme="bfactor", colorScale=colour_stops(self.cmap),
                                         colorMode="rgb", colorDomain=[-BFACTOR_LIMIT, BFACTOR_LIMIT])
            if self.show_values:  # labels float just in front of the atoms, LABEL_PX pixels tall whatever the molecule
                half = visible_half_height(fit_frames, self.width, self.height, radius)
                component.add_representation(
                    "label", labelType="text", labelText=[f"{v:.3g}" for v in self.values[frame]],
                    radiusType="size", radiusSize=LABEL_PX * 2 * half / self.height / NGL_GLYPH_HEIGHT,
                    radiusScale=1.0, color="black", zOffset=radius + 0.2, attachment="middle-center",
                    showBackground=True, backgroundColor="white", backgroundOpacity=0.7,
                )
        arrows = None
        if self.ends is not None:
            starts, ends = drawn[frame].positions, self.ends[frame]
            keep = np.linalg.norm(ends - starts, axis=1) > MIN_ARROW_LENGTH
            if keep.any():  # one shape component for all arrows (nglview's shape.add_arrow makes one per arrow)
                arrows = view._add_shape([("arrow", s.tolist(), e.tolist(), self.arrow_rgb, ARROW_RADIUS)
                                          for s, e in zip(starts[keep], ends[keep])], name="arrows")
        if fit:
            view.camera = "orthographic"  # fit_clip_distance assumes it
            view.stage.set_parameters(clip_dist=fit_clip_distance(fit_frames, self.width, self.height, radius))
            component.center()  # NGL autoView, after loading: fits the molecule with the clip distance above
        for c in old:  # after the new drawing is in: the view never shows an empty stage
            view.remove_component(c)
        if replace:
            prune_archive(view, shift=len(old), autoview=None if fit else component._index)
        return DrawnStructure(drawn, component, self.value_range, self.cmap, frame, arrows, self.arrow_scale)


def _check_view(view) -> None:
    import nglview

    if not isinstance(view, nglview.NGLWidget):
        raise TypeError(f"view must be an nglview.NGLWidget, got {type(view).__name__}.")


def draw_structure(view, structure: Atoms | list[Atoms], values=None, *, frame: int = 0, fit: bool = True,
                   replace: bool = False, symmetric: bool | None = None,
                   value_range: tuple[float, float] | None = None, cmap: str | None = None,
                   show_values: bool = True, representation: str = "ball+stick", width: int = 640,
                   height: int = 420, arrows=None, arrow_scale: float | None = None,
                   arrow_colour=ARROW_COLOUR) -> DrawnStructure:
    """Draw a structure or one frame of a trajectory into an existing nglview widget, fitted to the canvas.

    The frames are rotated to face the viewer and added as a new component holding frame ``frame``'s positions,
    drawn with ``representation`` (coloured by that frame's ``values`` on NGL's ``bfactor`` scheme, see the
    module notes of :mod:`mlipviz.views.ngl`), optionally labelled with each atom's value, with an arrow from
    each atom (``arrows``); with ``fit`` the orthographic camera is fitted so the molecule (and the arrows' tips,
    over all frames) fills :data:`FILL` of the ``width`` × ``height`` canvas. With ``replace``, the drawing takes
    the place of every component the view had (for widgets that redraw one view in place; the new one is added
    first), and nglview's replay archive (what an embedded page shows) is trimmed of messages about the removed
    ones. The view's ``frame`` is not changed; to redraw as it changes, see :func:`view_structure`.

    Args:
        view: The ``nglview.NGLWidget`` to draw into.
        structure: One structure or a list of frames (a trajectory), Å.
        values: (n_atoms,) per-atom values for every frame (e.g. attributions in eV), (n_frames, n_atoms) values
            per frame, or None for element colours.
        frame: The frame to draw (0 for a single structure).
        fit: Fit the camera to the drawing; False keeps it where it is (e.g. drawing another frame).
        replace: Remove the view's components (after drawing; otherwise they are kept beside the new one).
        symmetric: Centre the colour scale on zero (default: when values have both signs); see
            :func:`scale_to_bfactor`.
        value_range: The true values ``(low, high)`` at the ends of the colour scale, e.g. shared by a whole
            dataset (default: the range of the values of all frames); the values must lie in it.
        cmap: matplotlib colour map (default: :data:`COLOR_SCALE` for a range symmetric about zero,
            :data:`SEQUENTIAL_SCALE` otherwise).
        show_values: Write each atom's value next to it.
        representation: NGL representation, one of :data:`REPRESENTATIONS`.
        width, height: Canvas size, pixels (set on the view).
        arrows: (n_atoms, 3) vectors (e.g. forces, eV/Å) drawn from each atom, for every frame, or
            (n_frames, n_atoms, 3), one set per frame; None for none.
        arrow_scale: Arrow length per unit of the vectors, Å per (eV/Å) for forces (default: the longest arrow
            over all frames is :data:`ARROW_LENGTH`).
        arrow_colour: matplotlib colour of the arrows.

    Returns:
        A :class:`DrawnStructure`: the frames as drawn, the components, the colour range and map (for a legend),
        the frame drawn and the arrow scale.

    Raises:
        TypeError, ValueError: for a view that is not an NGLWidget, bad frames (see :func:`check_frames`), a frame
            outside them, an unknown representation, colour map or arrow colour, a bad canvas size, values or
            arrows whose shape does not match the frames and atoms, non-finite ones, values outside
            ``value_range``, a non-positive ``arrow_scale``, or ``value_range``/``cmap`` without values or
            ``arrow_scale`` without arrows. The view is left as it was then.
    """
    _check_view(view)
    drawing = _Drawing(structure, values, symmetric=symmetric, value_range=value_range, cmap=cmap,
                       show_values=show_values, representation=representation, width=width, height=height,
                       arrows=arrows, arrow_scale=arrow_scale, arrow_colour=arrow_colour)
    return drawing.draw(view, drawing.check_frame(frame), fit=fit, replace=replace)


def view_structure(structure: Atoms | list[Atoms], values=None, label: str = "value", unit: str = "eV",
                   symmetric: bool | None = None, show_values: bool = True, representation: str = "ball+stick",
                   width: int = 640, height: int = 420, *, arrows=None, arrow_scale: float | None = None,
                   arrow_colour=ARROW_COLOUR, arrow_label: str = "force", arrow_unit: str = "eV/Å"):
    """An nglview widget of a structure or trajectory, optionally coloured by per-atom values, fitted to the canvas.

    A new ``NGLWidget`` drawn by :func:`draw_structure`, with a legend of the values on their true scale and a
    line stating the arrows' scale. With values per frame or arrows, a trajectory is drawn again at each frame
    the view moves to (see the module notes), on one colour scale and one arrow scale for all frames.

    Args:
        structure: One structure or a list of frames (a trajectory; the player walks through them), Å.
        values: (n_atoms,) per-atom values (e.g. attributions in eV), (n_frames, n_atoms) values per frame, or
            None for element colours.
        label: What the values are, for the legend.
        unit: Their unit, for the legend.
        symmetric, show_values, representation, width, height: As for :func:`draw_structure` (``symmetric``
            centres the colour scale on zero with a diverging map; otherwise the values span a sequential map
            from their minimum to their maximum over all frames).
        arrows, arrow_scale, arrow_colour: As for :func:`draw_structure`.
        arrow_label, arrow_unit: What the arrows are and their unit, for the line under the view.

    Returns:
        An ``ipywidgets.VBox`` holding the view, with values the legend, with arrows their scale; ``.view`` is the
        NGLWidget, ``.drawn`` the :class:`DrawnStructure` of the frame shown.

    Raises:
        TypeError, ValueError: as for :func:`draw_structure`.
    """
    drawing = _Drawing(structure, values, symmetric=symmetric, value_range=None, cmap=None, show_values=show_values,
                       representation=representation, width=width, height=height, arrows=arrows,
                       arrow_scale=arrow_scale, arrow_colour=arrow_colour)

    import ipywidgets as widgets
    import nglview

    view = nglview.NGLWidget()
    drawn = drawing.draw(view, 0)
    children = []
    if values is not None:
        legend = colour_legend(*drawn.value_range, label, unit, cmap=drawn.cmap)
        children.append(widgets.Image(value=legend, format="png", layout=widgets.Layout(width="450px")))
    if arrows is not None:
        children.append(widgets.HTML(f"<small>arrows: {html.escape(arrow_label)} from each atom; 1 Å of arrow = "
                                     f"{1 / drawn.arrow_scale:.3g} {html.escape(arrow_unit)}</small>"))
    box = widgets.VBox([view, *children])
    box.view, box.drawn = view, drawn
    if drawing.follows_frames:
        def follow(change) -> None:
            frame = change["new"]
            if isinstance(frame, int) and 0 <= frame < drawing.n_frames and frame != box.drawn.frame:
                box.drawn = drawing.draw(view, frame, fit=False, replace=True)

        view.observe(follow, names="frame")
    return box
