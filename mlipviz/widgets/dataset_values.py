"""The per-structure and per-atom quantities a dataset explorer plots, computed from stored levels or a calculator.

Named quantities, against a reference level of theory:

- "reference": reference energy relative to the lowest structure, eV;
- "error", "abs_error": energy error (prediction − reference) and its magnitude, meV;
- "force_error": force RMSE over a structure's components, meV/Å; per atom, |F_pred − F_ref| of each atom;
- "uncertainty": the calculator's calibrated energy uncertainty (``keys.ENERGY_UNCERTAINTY``), meV; per atom,
  its ``keys.ATOM_UNCERTAINTY``, meV/Å (only for calculators that implement them).

Without a calculator, "error" and "force_error" compare another stored level with the reference, energies relative
to the reference's lowest structure (absolute energies of two methods differ by a constant). :func:`level_rows`
lists the levels stored on one structure, for the explorer's table.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .. import keys
from ..reference.levels import get_level

__all__ = ["dataset_quantities", "level_rows"]


def level_rows(atoms: Atoms, levels=None) -> list[tuple[str, float, float | None]]:
    """The levels of theory stored on a structure: ``(name, energy (eV), force RMS (eV/Å) or None)``.

    A level is an ``atoms.info`` entry ``energy_<slug>`` (:func:`mlipviz.keys.energy_key`); its name is the recorded
    provenance level (``<slug>_level``), else the slug. The force RMS is sqrt(mean over atoms of |F_i|²) of the
    ``forces_<slug>`` array.

    Args:
        atoms: The structure.
        levels: Level names to list (default: every level found, in key order); a level missing on the
            structure is left out.
    """
    if levels is None:
        slugs = [k[len(keys.ENERGY) + 1:] for k in atoms.info
                 if k.startswith(keys.ENERGY + "_") and k != keys.ENERGY_UNCERTAINTY]
    else:
        slugs = [get_level(lv).slug for lv in levels]
    rows = []
    for slug in slugs:
        energy = atoms.info.get(keys.energy_key(slug))
        if isinstance(energy, bool) or not isinstance(energy, (int, float, np.integer, np.floating)):
            continue
        forces = atoms.arrays.get(keys.forces_key(slug))
        rms = None if forces is None else float(np.sqrt(np.mean(np.sum(np.asarray(forces, float) ** 2, axis=1))))
        rows.append((str(atoms.info.get(keys.provenance_key(slug, keys.LEVEL), slug)), float(energy), rms))
    return rows


def _predict(calculator, images: list[Atoms]) -> dict:
    """Energies (eV), forces (eV/Å) and, where the calculator implements them, calibrated uncertainties."""
    props = set(getattr(calculator, "implemented_properties", ()))
    out = {keys.ENERGY: [], keys.FORCES: []}
    wanted = [k for k in (keys.ENERGY_UNCERTAINTY, keys.ATOM_UNCERTAINTY) if k in props]
    out.update({k: [] for k in wanted})
    for a in images:
        b = a.copy()
        b.calc = calculator
        out[keys.ENERGY].append(float(b.get_potential_energy()))
        out[keys.FORCES].append(np.array(b.get_forces(), dtype=float))
        for k in wanted:
            out[k].append(np.array(calculator.get_property(k, b), dtype=float))
    return out


def _known_level(name: str):
    """The Level called ``name``, or None where only a slug was recorded (no provenance to parse)."""
    try:
        return get_level(name)
    except ValueError:
        return None


def dataset_quantities(images: list[Atoms], calculator, level: str, levels=None) -> tuple[dict, dict]:
    """Named per-structure quantities ``{name: (values, label)}`` and per-atom ones ``{name: (arrays, label)}``.

    See the module docstring for the names and units; a quantity that cannot be computed here is absent.

    Args:
        images: Structures labelled with ``level`` energies, Å.
        calculator: An ASE calculator, or None to compare the levels stored on the structures.
        level: The reference level of theory, e.g. "CCSD(T)/cc-pVDZ".
        levels: Without a calculator, the levels to compare with the reference (the first other level found on
            every structure is used); default the levels stored on the first structure.

    Returns:
        ``(per_structure, per_atom)``: values are (n_structures,) arrays, per-atom values one (n_atoms,) array per
        structure; each comes with its axis label, unit included.

    Raises:
        ValueError: naming the first structure without the ``level`` energy.
    """
    ref = get_level(level)
    ek, fk = keys.energy_key(ref.slug), keys.forces_key(ref.slug)
    lacking = [i for i, a in enumerate(images) if ek not in a.info]
    if lacking:
        raise ValueError(f"level={ref.name!r}: structure {lacking[0]} ({len(lacking)} in all) has no {ref.name} "
                         f"energy ({ek!r}).")
    e_ref = np.array([a.info[ek] for a in images], dtype=float)
    f_ref = [np.asarray(a.arrays[fk], float) for a in images] if all(fk in a.arrays for a in images) else None
    q = {"reference": (e_ref - e_ref.min(), f"{ref.name} energy − minimum (eV)")}
    atoms_q = {}
    if calculator is not None:
        pred = _predict(calculator, images)
        err, f_pred, what = np.array(pred[keys.ENERGY]) - e_ref, pred[keys.FORCES], f"model − {ref.name}"
        if keys.ENERGY_UNCERTAINTY in pred:
            q["uncertainty"] = (1e3 * np.array(pred[keys.ENERGY_UNCERTAINTY]), "energy uncertainty σ_E (meV)")
        if keys.ATOM_UNCERTAINTY in pred:
            atoms_q["uncertainty"] = ([1e3 * u for u in pred[keys.ATOM_UNCERTAINTY]], "atom uncertainty (meV/Å)")
    else:
        names = [get_level(lv).name for lv in levels] if levels else [r[0] for r in level_rows(images[0])]
        others = [lv for lv in map(_known_level, names) if lv is not None and lv.name != ref.name
                  and all(keys.energy_key(lv.slug) in a.info for a in images)]
        if not others:
            return q, atoms_q  # nothing to compare the reference with
        other = others[0]
        e_other = np.array([a.info[keys.energy_key(other.slug)] for a in images], dtype=float)
        anchor = int(np.argmin(e_ref))  # relative energies: absolute ones of two methods differ by a constant
        err, what = (e_other - e_other[anchor]) - (e_ref - e_ref[anchor]), f"{other.name} − {ref.name}, relative"
        ok = all(keys.forces_key(other.slug) in a.arrays for a in images)
        f_pred = [np.asarray(a.arrays[keys.forces_key(other.slug)], float) for a in images] if ok else None
    q["error"] = (1e3 * err, f"energy error, {what} (meV)")
    q["abs_error"] = (1e3 * np.abs(err), f"|energy error|, {what} (meV)")
    if f_pred is not None and f_ref is not None:
        diff = [p - r for p, r in zip(f_pred, f_ref)]
        q["force_error"] = (np.array([1e3 * np.sqrt(np.mean(d ** 2)) for d in diff]), f"force RMSE, {what} (meV/Å)")
        atoms_q["force_error"] = ([1e3 * np.linalg.norm(d, axis=1) for d in diff], "|ΔF| (meV/Å)")
    return q, atoms_q
