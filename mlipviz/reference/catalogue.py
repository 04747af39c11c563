"""Ready-made systems spanning covalent and non-covalent chemistry.

Monomers come from ASE's G2 set (``ase.build.molecule``); the water dimer is the S22 geometry
(Jurečka et al., Phys. Chem. Chem. Phys. 8, 1985 (2006), doi:10.1039/B600027D). The water trimer and the
water–methanol cluster are built here from monomers with linear hydrogen bonds at an O···O distance of
2.85 Å: sensible starting points for sampling, not minima — optimise them at a level of your choice first
if you need one.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from ase import Atoms

from .. import keys

__all__ = [
    "AMMONIA",
    "CATALOGUE",
    "FORMALDEHYDE",
    "METHANE",
    "METHANOL",
    "WATER",
    "WATER_DIMER",
    "WATER_METHANOL",
    "WATER_TRIMER",
    "get_system",
    "system_names",
]

#: System names, named once: ``get_system(WATER)``; ``atoms.info["system"]`` holds them.
WATER: Final[str] = "water"
WATER_DIMER: Final[str] = "water_dimer"
WATER_TRIMER: Final[str] = "water_trimer"
METHANE: Final[str] = "methane"
AMMONIA: Final[str] = "ammonia"
FORMALDEHYDE: Final[str] = "formaldehyde"
METHANOL: Final[str] = "methanol"
WATER_METHANOL: Final[str] = "water_methanol"

#: O···O distance of the hydrogen bonds in the built clusters, Å.
HBOND_OO = 2.85
_R_OH, _HOH = 0.96, np.deg2rad(104.5)


def _water(o: np.ndarray, donor_dir: np.ndarray, plane_normal: np.ndarray) -> Atoms:
    """A water with O at ``o``, one H along ``donor_dir``, the other in the plane ⟂ ``plane_normal``."""
    d = donor_dir / np.linalg.norm(donor_dir)
    n = plane_normal - np.dot(plane_normal, d) * d
    n /= np.linalg.norm(n)
    h2 = np.cos(_HOH) * d + np.sin(_HOH) * n
    return Atoms("OH2", positions=[o, o + _R_OH * d, o + _R_OH * h2])


def _g2(name: str) -> Atoms:
    """A molecule of ASE's G2 set (imported on use: ``ase.build`` costs half a second, paid by every worker)."""
    from ase.build import molecule

    return molecule(name)


def _s22(name: str) -> Atoms:
    from ase.collections import s22

    return s22[name].copy()


def water_trimer() -> Atoms:
    """Cyclic water trimer: each water donates one hydrogen bond to the next, free H's out of the ring."""
    r = HBOND_OO / np.sqrt(3)
    oxy = [r * np.array([np.cos(t), np.sin(t), 0.0]) for t in np.deg2rad([90, 210, 330])]
    out = Atoms()
    for k in range(3):
        donor = oxy[(k + 1) % 3] - oxy[k]
        up = np.array([0.0, 0.0, 1.0 if k % 2 == 0 else -1.0])
        out += _water(oxy[k], donor, up)
    return out


def water_methanol() -> Atoms:
    """Methanol donating a hydrogen bond from its OH to a water oxygen."""
    meoh = _g2("CH3OH")
    sym = meoh.get_chemical_symbols()
    o = sym.index("O")
    h = min((i for i, s in enumerate(sym) if s == "H"), key=lambda i: meoh.get_distance(o, i))
    d = meoh.positions[h] - meoh.positions[o]
    d /= np.linalg.norm(d)
    ow = meoh.positions[o] + HBOND_OO * d
    # water accepts: its H's point away from methanol, plane tilted off the O-H axis
    away = d + 0.6 * np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [1.0, 0.0, 0.0])
    return meoh + _water(ow, away, np.cross(d, away) + 0.3 * d)


#: name -> (builder, short description)
CATALOGUE = {
    WATER: (lambda: _g2("H2O"), "H2O monomer, covalent"),
    WATER_DIMER: (lambda: _s22("Water_dimer"), "S22 water dimer, one hydrogen bond"),
    WATER_TRIMER: (water_trimer, "cyclic water trimer, three hydrogen bonds"),
    METHANE: (lambda: _g2("CH4"), "CH4, covalent"),
    AMMONIA: (lambda: _g2("NH3"), "NH3, covalent, lone pair"),
    FORMALDEHYDE: (lambda: _g2("H2CO"), "H2CO, C=O double bond"),
    METHANOL: (lambda: _g2("CH3OH"), "CH3OH, covalent, rotor"),
    WATER_METHANOL: (water_methanol, "CH3OH···H2O, hydrogen-bonded mixture cluster"),
}


def system_names() -> list[str]:
    """Names in :data:`CATALOGUE`."""
    return list(CATALOGUE)


def get_system(name: str) -> Atoms:
    """A fresh copy of a catalogue system, positions in Å.

    Raises:
        ValueError: naming the unknown system and listing the known ones.
    """
    if name not in CATALOGUE:
        raise ValueError(f"Unknown system {name!r}; the catalogue has: {', '.join(CATALOGUE)}.")
    atoms = CATALOGUE[name][0]()
    atoms.info[keys.SYSTEM] = name
    return atoms
