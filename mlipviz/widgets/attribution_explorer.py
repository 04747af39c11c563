"""An attribution explorer: pick a structure, a method and a target; see per-atom values in 3D and as bars, with the
sanity checks that say how far to trust them.

Methods (see :mod:`mlipviz.attribution`):

* ``"ig"``: Integrated Gradients on positions from a baseline (the model's minimum by default), eV, with its
  completeness gap; for a force target, IG of F_i · n̂ (eV/Å), n̂ the direction of F_i at the structure;
* ``"saliency"``: |∂E/∂r_k| = |F_k| (eV/Å), or |∂(F_i · n̂)/∂r_k| (eV/Å²) for a force target;
* ``"decomposition"``: the model's per-atom energies minus their isolated-atom energies (eV); they add up to the
  model's atomisation energy, E − Σ E(isolated atom);
* ``"embedding"``: IG on the atom-type embedding (eV), with its completeness gap;
* ``"uncertainty"``: any per-atom values from a callable, e.g. an ensemble's per-atom force uncertainty.

Signed values are drawn on the diverging map centred on zero, one-signed ones on the sequential map, with a legend
on the true scale. One nglview widget is kept and its structure reloaded in place; the bars are a matplotlib figure
in an ``Output``. The sanity panel runs the model-randomisation check (Adebayo et al. 2018) and the symmetry check
on the Integrated-Gradients energy attributions of the structure shown.

References:
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (Integrated Gradients).
    Adebayo et al., NeurIPS 2018, arXiv:1810.03292 (sanity checks for saliency maps).
"""

from __future__ import annotations

import contextlib
import html
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ..attribution import (binding_contributions, completeness_check, embedding_attributions, integrated_gradients,
                           model_randomisation, saliency, symmetry_check)
from ..attribution.force import check_atom_index, force_attributions
from ..geometry import check_atoms
from ..potential import MLIPCalculator
from ..potential.chemistry import check_chemistry, embedding_size
from ..views.draw import draw_structure
from ..views.ngl import COLOR_SCALE, SEQUENTIAL_SCALE, colour_legend

__all__ = ["METHODS", "AttributionExplorer"]

#: Methods offered by default, in order.
METHODS = ("ig", "saliency", "decomposition", "embedding")
#: The extra method offered when a per-atom uncertainty callable is given.
UNCERTAINTY = "uncertainty"
#: Methods that also attribute a force component (the others attribute the energy only).
FORCE_METHODS = ("ig", "saliency")
METHOD_NAMES = {"ig": "Integrated Gradients", "saliency": "saliency", "decomposition": "energy decomposition",
                "embedding": "IG on the atom-type embedding", UNCERTAINTY: "uncertainty"}


@dataclass
class _Shown:
    values: np.ndarray
    label: str
    unit: str
    signed: bool
    result: object
    note: str


class AttributionExplorer:
    """Structure, method and target controls over a 3D view, per-atom bars and a sanity panel.

    Args:
        images: Structures to explore, Å (an ``ase.Atoms`` or a non-empty list).
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model` (or loaded).
        config: Its :class:`~mlipviz.potential.ModelConfig` (cutoff, elements).
        methods: Methods to offer, from :data:`METHODS`.
        uncertainty: Optional ``f(atoms) -> (n_atoms,)`` per-atom values, offered as the method "uncertainty".
        uncertainty_unit: Their unit (eV/Å for ``keys.ATOM_UNCERTAINTY``).
        baseline: The IG baseline: "minimum" (the model's minimum nearest each structure), "training-minimum",
            "dissociated" or an ``ase.Atoms`` (see :func:`mlipviz.attribution.integrated_gradients`).
        seeds: Re-initialisations of the model-randomisation check.
        width, height: Size of the 3D canvas, pixels.

    Attributes:
        widget: The box to display; ``values`` the per-atom values shown; ``result`` the attribution result
            behind them (None for the callable); ``checks`` the sanity-check results per structure.

    Raises:
        ValueError: for empty images, a structure the model cannot predict (elements outside
            ``config.elements``, NaN positions), an unknown method, or a bad baseline.
        TypeError: for an ``uncertainty`` that is not callable.
    """

    def __init__(self, images, model: torch.nn.Module, config, *, methods=METHODS,
                 uncertainty: Callable[[Atoms], np.ndarray] | None = None, uncertainty_unit: str = "eV/Å",
                 baseline: Atoms | str = "minimum", seeds=(0, 1, 2), width: int = 420, height: int = 360):
        import ipywidgets as widgets
        import nglview

        images = [images] if isinstance(images, Atoms) else list(images)
        if not images:
            raise ValueError("images is empty: give at least one structure to explore.")
        max_z = embedding_size(model)
        for k, a in enumerate(images):
            check_atoms(a, f"images[{k}]")
            check_chemistry(a, getattr(config, "elements", None), max_z, f"images[{k}]")
        if isinstance(methods, str):
            methods = (methods,)
        methods = tuple(methods)
        bad = [m for m in methods if m not in METHODS]
        if not methods or bad:
            raise ValueError(f"methods holds unknown method(s) {bad or methods!r}; known: {METHODS}.")
        if uncertainty is not None:
            if not callable(uncertainty):
                raise TypeError("uncertainty must be a callable atoms -> per-atom values, got "
                                f"{type(uncertainty).__name__}.")
            methods += (UNCERTAINTY,)
        if not (isinstance(baseline, Atoms) or isinstance(baseline, str)):
            raise ValueError(f"baseline must be a baseline name or an ase.Atoms, got {type(baseline).__name__}.")
        self.images, self.model, self.config, self.methods = images, model.eval(), config, methods
        self.uncertainty, self.uncertainty_unit = uncertainty, uncertainty_unit
        self.baseline, self.seeds = baseline, seeds
        self._cache: dict[tuple, _Shown] = {}
        self._ig: dict[int, object] = {}
        self._calc = None
        self.checks: dict[int, dict[str, object]] = {}
        self.structure, self.method, self.target = 0, methods[0], "energy"
        self.values = np.zeros(0)
        self.result = self.figure = None
        self._syncing = False

        self.structure_slider = widgets.IntSlider(0, min=0, max=len(images) - 1, description="structure",
                                                  continuous_update=False)
        self.method_dropdown = widgets.Dropdown(options=[(METHOD_NAMES[m], m) for m in methods], value=methods[0],
                                                description="method")
        self.target_dropdown = widgets.Dropdown(options=self._target_options(0), value="energy", description="target")
        self.view = nglview.NGLWidget()  # drawn in place by set()
        self._size = (width, height)
        self.legend = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px"))
        self.bars = widgets.Output(layout={"width": "420px"})
        self.sanity = widgets.HTML()
        self.status = widgets.HTML()
        self.randomisation_button = widgets.Button(
            description="model randomisation", tooltip=f"Re-initialise the weights (seeds {tuple(seeds)}) and compare "
            "the IG energy attributions by rank correlation; takes seconds")
        self.symmetry_button = widgets.Button(
            description="symmetry check", tooltip="Recompute IG after a rotation and a translation; takes seconds")
        self.randomisation_button.on_click(lambda _b: self._guarded(self.run_randomisation))
        self.symmetry_button.on_click(lambda _b: self._guarded(self.run_symmetry))
        controls = widgets.VBox([self.structure_slider, self.method_dropdown, self.target_dropdown, self.status])
        controls.add_class("mlipviz-attribution-controls")
        view_box = widgets.VBox([self.view, self.legend])
        view_box.add_class("mlipviz-attribution-view")
        sanity_box = widgets.VBox([self.sanity, widgets.HBox([self.randomisation_button, self.symmetry_button])])
        sanity_box.add_class("mlipviz-attribution-sanity")
        self.widget = widgets.VBox([controls, widgets.HBox([view_box, widgets.VBox([self.bars, sanity_box])])])
        for w in (self.structure_slider, self.method_dropdown, self.target_dropdown):
            w.observe(self._on_control, names="value")
        self.set(structure=0, method=methods[0], target="energy")

    # --- state ------------------------------------------------------------------------------------------------

    def _target_options(self, s: int) -> list[tuple[str, object]]:
        symbols = self.images[s].get_chemical_symbols()
        return [("energy", "energy")] + [(f"force on {sym}{i}", i) for i, sym in enumerate(symbols)]

    def set(self, structure: int | None = None, method: str | None = None, target=None) -> np.ndarray:
        """Show ``structure`` (index into images) with ``method`` and ``target`` ("energy" or an atom index).

        Arguments left out keep their current value; a force target carried over to a method that attributes the
        energy only, or to a structure without that atom, falls back to "energy".

        Returns:
            The per-atom values shown, (n_atoms,).

        Raises:
            ValueError: naming an index out of range, an unknown method, or a force target for an energy-only method.
        """
        s = self.structure if structure is None else self._structure_index(structure)
        m = self.method if method is None else method
        if m not in self.methods:
            raise ValueError(f"method={m!r} is not one of {self.methods}.")
        n = len(self.images[s])
        if target is None:
            t = self.target
            if t != "energy" and (m not in FORCE_METHODS or t >= n):
                t = "energy"
        elif isinstance(target, str):
            if target != "energy":
                raise ValueError(f"target={target!r} is not 'energy' or an atom index of structure {s}.")
            t = target
        else:
            t = check_atom_index(target, n, f"target (a force on an atom of structure {s})")
            if m not in FORCE_METHODS:
                raise ValueError(f"method {m!r} attributes the energy only; target must be 'energy', got {t}. "
                                 f"Force targets work with {FORCE_METHODS}.")
        shown = self._compute(s, m, t)
        self.structure, self.method, self.target = s, m, t
        self.values, self.result = shown.values, shown.result
        self.label, self.unit = shown.label, shown.unit
        self._sync_controls()
        self._draw_view(shown)
        self._draw_bars(shown)
        self._draw_sanity(shown)
        self.status.value = ""
        return self.values

    def _structure_index(self, structure) -> int:
        n = len(self.images)
        if isinstance(structure, bool) or not isinstance(structure, (int, np.integer)) or not 0 <= structure < n:
            raise ValueError(f"structure must be an index into images, 0..{n - 1}, got {structure!r}.")
        return int(structure)

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            self.structure_slider.value = self.structure
            self.method_dropdown.value = self.method
            options = self._target_options(self.structure)
            if list(self.target_dropdown.options) != options:
                self.target_dropdown.options = options
            self.target_dropdown.value = self.target
            self.target_dropdown.disabled = self.method not in FORCE_METHODS
        finally:
            self._syncing = False

    def _on_control(self, _change) -> None:
        if self._syncing:
            return
        method = self.method_dropdown.value
        target = self.target_dropdown.value if method in FORCE_METHODS else "energy"
        if target != "energy" and target >= len(self.images[self.structure_slider.value]):
            target = "energy"
        self._guarded(lambda: self.set(structure=self.structure_slider.value, method=method, target=target))

    def _guarded(self, action) -> None:
        """Run a control's action; show an error in the status line instead of losing it in the front end."""
        try:
            action()
        except Exception as err:  # shown to the user, who can change the controls
            text = html.escape(f"{type(err).__name__}: {err}")
            self.status.value = f"<span style='color:#b2182b'>{text}</span>"
            self._sync_controls()

    # --- attribution ------------------------------------------------------------------------------------------

    def _calculator(self) -> MLIPCalculator:
        if self._calc is None:
            self._calc = MLIPCalculator(self.model, self.config, device=str(next(self.model.parameters()).device))
        return self._calc

    def energy_ig(self, structure: int):
        """The Integrated-Gradients energy attribution of a structure (cached), an ``AttributionResult``."""
        if structure not in self._ig:
            self._ig[structure] = integrated_gradients(self.model, self.images[structure], cutoff=self.config.cutoff,
                                                       baseline=self.baseline)
        return self._ig[structure]

    def _compute(self, s: int, m: str, t) -> _Shown:
        key = (s, m, t)
        if key in self._cache:
            return self._cache[key]
        atoms = self.images[s]
        if t != "energy":
            work = atoms.copy()
            work.calc = self._calculator()
            force = work.get_forces()[t]
            if np.linalg.norm(force) < 1e-6:
                raise ValueError(f"the force on atom {t} of structure {s} is zero ({np.linalg.norm(force):.1e} eV/Å): "
                                 "it has no direction to attribute.")
            name = f"{atoms[t].symbol}{t}"
            if m == "ig":
                r = force_attributions(self.model, atoms, t, direction=force, baseline=self.energy_ig(s).baseline)
                shown = _Shown(r.atom_attributions, f"IG of F·n̂ on {name}", "eV/Å", True, r, str(r))
            else:
                r = force_attributions(self.model, atoms, t, direction=force, method="saliency")
                shown = _Shown(r.atom_attributions, f"|∂(F·n̂)/∂r| on {name}", "eV/Å²", False, r, str(r))
        elif m == "ig":
            r = self.energy_ig(s)
            shown = _Shown(r.atom_attributions, "IG energy attribution", "eV", True, r, str(completeness_check(r)))
        elif m == "saliency":
            shown = _Shown(saliency(self.model, atoms), "saliency |∂E/∂r|", "eV/Å", False, None,
                           "saliency is a local gradient: no baseline, no completeness property.")
        elif m == "decomposition":
            calc = self._calculator()
            b = binding_contributions(atoms, calc)
            work = atoms.copy()
            work.calc = calc
            shown = _Shown(b, "binding contribution", "eV", True, None,
                           f"Σ contributions {b.sum():+.4f} eV = E − Σ E(isolated atoms); E = "
                           f"{work.get_potential_energy():.4f} eV (exact by construction).")
        elif m == "embedding":
            r = embedding_attributions(self.model, atoms)
            shown = _Shown(r.atom_attributions, "embedding IG attribution", "eV", True, r, str(completeness_check(r)))
        else:
            v = np.asarray(self.uncertainty(atoms.copy()), dtype=float)
            if v.shape != (len(atoms),) or not np.all(np.isfinite(v)):
                raise ValueError(f"uncertainty returned shape {v.shape} (or non-finite values) for structure {s}; "
                                 f"it must give {len(atoms)} finite per-atom values.")
            shown = _Shown(v, "uncertainty", self.uncertainty_unit, False, None,
                           "per-atom uncertainty from the given callable; no attribution checks apply.")
        self._cache[key] = shown
        return shown

    # --- sanity checks ----------------------------------------------------------------------------------------

    def run_randomisation(self):
        """Model randomisation on the IG energy attributions of the structure shown; fills the sanity panel.

        Returns:
            A :class:`~mlipviz.attribution.RandomisationCheck`.
        """
        s = self.structure
        r = self.energy_ig(s)
        with self._busy(self.randomisation_button), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check = model_randomisation(self.model, [self.images[s]], [r.baseline], seeds=self.seeds)
        n_warn = sum(1 for w in caught if "completeness" in str(w.message))
        self.checks.setdefault(s, {})["randomisation"] = (check, n_warn)
        self._draw_sanity(self._compute(s, self.method, self.target))
        return check

    def run_symmetry(self):
        """The symmetry check (rotation, translation, equivalent atoms) of the IG energy attributions shown.

        Returns:
            A :class:`~mlipviz.attribution.SymmetryCheck`.
        """
        s = self.structure
        with self._busy(self.symmetry_button):
            check = symmetry_check(self.model, self.images[s], self.energy_ig(s))
        self.checks.setdefault(s, {})["symmetry"] = (check, 0)
        self._draw_sanity(self._compute(s, self.method, self.target))
        return check

    @staticmethod
    @contextlib.contextmanager
    def _busy(button):
        text = button.description
        button.disabled, button.description = True, "running…"
        try:
            yield
        finally:
            button.disabled, button.description = False, text

    # --- drawing ----------------------------------------------------------------------------------------------

    def _draw_view(self, shown: _Shown) -> None:
        width, height = self._size
        drawn = draw_structure(self.view, self.images[self.structure], shown.values, replace=True,
                               symmetric=shown.signed, width=width, height=height)
        self.shown_atoms = drawn.frames[0]
        self.legend.value = colour_legend(*drawn.value_range, shown.label, shown.unit, cmap=drawn.cmap)

    def _draw_bars(self, shown: _Shown) -> None:
        import matplotlib
        import matplotlib.pyplot as plt
        from IPython.display import display
        from matplotlib.colors import Normalize

        atoms, v = self.images[self.structure], shown.values
        if shown.signed:
            m = float(np.abs(v).max()) or 1.0
            norm, cmap = Normalize(-m, m), COLOR_SCALE
        else:
            low, high = float(v.min()), float(v.max())
            norm, cmap = Normalize(low, high if high > low else low + 1.0), SEQUENTIAL_SCALE
        fig, ax = plt.subplots(figsize=(4.2, 2.6))
        ax.bar(np.arange(len(v)), v, color=matplotlib.colormaps[cmap](norm(v)), edgecolor="black", linewidth=0.5)
        ax.set_xticks(np.arange(len(v)), [f"{sym}{i}" for i, sym in enumerate(atoms.get_chemical_symbols())],
                      fontsize=7 if len(v) > 12 else 9)
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_ylabel(f"{shown.label} ({shown.unit})", fontsize=8)
        ax.set_title(f"structure {self.structure}: {METHOD_NAMES[self.method]}", fontsize=9)
        fig.tight_layout()
        plt.close(fig)
        self.figure = fig
        self.bars.clear_output(wait=True)
        with self.bars:
            display(fig)

    def _draw_sanity(self, shown: _Shown) -> None:
        lines = [f"<b>{html.escape(METHOD_NAMES[self.method])}</b>: {html.escape(shown.note)}"]
        for name, (check, n_warn) in self.checks.get(self.structure, {}).items():
            extra = f" ({n_warn} re-initialised run(s) did not meet the completeness tolerance)" if n_warn else ""
            lines.append(f"<b>{name}</b> (IG energy attributions): {html.escape(str(check))}{extra}")
        self.sanity.value = "<br>".join(lines)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
