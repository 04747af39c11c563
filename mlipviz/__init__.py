"""mlipviz: a metrology lab for machine-learned interatomic potentials.

The data moves one way::

    reference (PySCF labels) -> dataset -> potential (SchNetPack) -> md -> metrology -> attribution -> views

Each stage is a subpackage; import the one you need, e.g. ``from mlipviz.reference import label``.
Views (nglview, ipywidgets) are imported lazily, so everything else runs without Jupyter or a display.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlipviz")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
