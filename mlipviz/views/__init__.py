"""Views: nglview 3D structures coloured by per-atom values, pair values drawn as coloured bonds, and an MD player
(nglview and ipywidgets are imported lazily; displaying needs Jupyter)."""

from .bonds import pair_colours, pairs_to_draw, plot_pair_values, view_pair_values
from .ngl import colour_legend, fit_clip_distance, scale_to_bfactor, view_structure
from .player import MDPlayer, md_player

__all__ = [
    "MDPlayer",
    "colour_legend",
    "fit_clip_distance",
    "md_player",
    "pair_colours",
    "pairs_to_draw",
    "plot_pair_values",
    "scale_to_bfactor",
    "view_pair_values",
    "view_structure",
]
