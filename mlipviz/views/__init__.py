"""Views: nglview 3D structures coloured by per-atom values (per frame on a trajectory) with force arrows, pair
values drawn as coloured bonds, and an MD player (nglview and ipywidgets are imported lazily; displaying needs
Jupyter)."""

from .bonds import pair_colours, pairs_to_draw, plot_pair_values, view_pair_values
from .draw import DrawnStructure, draw_structure, view_structure
from .ngl import colour_legend, fit_clip_distance, scale_to_bfactor
from .player import MDPlayer, md_player

__all__ = [
    "DrawnStructure",
    "MDPlayer",
    "colour_legend",
    "draw_structure",
    "fit_clip_distance",
    "md_player",
    "pair_colours",
    "pairs_to_draw",
    "plot_pair_values",
    "scale_to_bfactor",
    "view_pair_values",
    "view_structure",
]
