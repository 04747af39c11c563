"""Views: nglview 3D structures coloured by per-atom values (imported lazily; needs Jupyter to display)."""

from .ngl import colour_legend, scale_to_bfactor, view_structure

__all__ = ["colour_legend", "scale_to_bfactor", "view_structure"]
