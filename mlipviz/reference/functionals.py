"""User-defined DFT levels: any exchange-correlation string PySCF accepts, under a name of your choice.

The name becomes a method of the registry in :mod:`mlipviz.reference.levels` ("MY-HYBRID/cc-pVDZ"), and each
label records the exact xc string. Campaign records carry the xc string too
(:func:`mlipviz.reference.store.level_record`), so a Dask worker process registers the level itself and a
record key can never stand for two functionals.
"""

from __future__ import annotations

import re

from .levels import METHODS, MethodSpec, _slugify

__all__ = ["check_xc", "register_dft_level"]


def check_xc(xc: str, disp: str | None = None) -> None:
    """Check a DFT exchange-correlation string and dispersion correction with PySCF, without any SCF.

    Parses ``xc`` with PySCF's dispersion-aware parser and libxc, then sets up ``disp`` (or a dispersion that
    ``xc`` implies, as in "b3lyp-d3bj") for H2 in STO-3G, which fails for a correction without parameters.

    Raises:
        ValueError: naming the xc string or dispersion that PySCF cannot use, and why.
    """
    from pyscf.dft import libxc
    from pyscf.scf import dispersion

    try:
        functional, _, implied_disp = dispersion.parse_dft(xc)
        libxc.parse_xc(functional)
    except Exception as err:  # PySCF raises KeyError, ValueError or NotImplementedError for bad names
        raise ValueError(f"xc {xc!r} is not an exchange-correlation functional PySCF/libxc can parse "
                         f"({type(err).__name__}: {err}).") from None
    if disp and implied_disp:
        raise ValueError(f"xc {xc!r} already asks for dispersion {implied_disp!r}; pass disp=None or a plain xc.")
    if not (disp or implied_disp):
        return
    if dispersion.dftd3 is None:
        raise ValueError(f"disp {disp or implied_disp!r} needs PySCF's dispersion interface: "
                         "pip install pyscf-dispersion.")
    from pyscf import dft, gto

    mf = dft.RKS(gto.M(atom="H 0 0 0; H 0 0 0.74", basis="sto-3g", verbose=0))
    mf.xc = xc
    if disp:
        mf.disp = disp
    try:
        dispersion.get_dispersion(mf)
    except Exception as err:  # simple-dftd3/dftd4 raise RuntimeError for unknown parameters
        raise ValueError(f"PySCF cannot set up dispersion {disp or implied_disp!r} for xc {xc!r} "
                         f"({type(err).__name__}: {err}).") from None


_BUILTIN = frozenset(METHODS)


def register_dft_level(name: str, xc: str, disp: str | None = None) -> MethodSpec:
    """Add a DFT level for any exchange-correlation string PySCF accepts, under a name of your choice.

    The xc string (and the dispersion correction) are checked with PySCF before anything runs; a label at the
    new level records the exact xc string in its provenance. Registering the same name again with the same
    xc and disp is allowed (a notebook cell run twice); with different ones it is refused, because the name
    is what record keys hash. The registry lives in this process: register the level again in each new
    process (for example on every Dask worker) before using it there.

    Args:
        name: The method name, e.g. "wB97X-V-custom"; used case-insensitively as the METHOD in "METHOD/basis".
            Letters, digits and ``( ) + * , . _ -``; no '/' or spaces.
        xc: PySCF exchange-correlation string for ``mf.xc``, e.g. "wb97x_v" or ".2*HF + .08*SLATER + .72*B88,
            .81*LYP + .19*VWN_RPA" (see ``pyscf.dft.libxc.parse_xc``).
        disp: Dispersion correction for ``mf.disp`` ("d3bj", "d3zero", "d4", ...), or None.

    Returns:
        The registered :class:`MethodSpec`.

    Raises:
        ValueError: for a malformed name, a name or slug taken by a built-in or another registered level, an
            xc string PySCF/libxc cannot parse, or a dispersion correction PySCF cannot set up for that xc.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9()+*,._-]*", name.strip()):
        raise ValueError(f"name must be letters, digits and ( ) + * , . _ - (no '/' or spaces), got {name!r}.")
    name = name.strip()
    if name.upper() in _BUILTIN:
        raise ValueError(f"name {name!r} is a built-in level of theory ({METHODS[name.upper()].name}); "
                         "choose another name.")
    if not isinstance(xc, str) or not xc.strip():
        raise ValueError(f"xc must be a non-empty PySCF exchange-correlation string, got {xc!r}.")
    if disp is not None and (not isinstance(disp, str) or not disp.strip()):
        raise ValueError(f"disp must be a dispersion correction such as 'd3bj', or None, got {disp!r}.")
    spec = MethodSpec(name, "dft", xc=xc.strip(), disp=disp.strip() if disp else None, builtin=False)
    old = METHODS.get(name.upper())
    if old is not None:
        if (old.xc, old.disp) != (spec.xc, spec.disp):
            raise ValueError(f"name {name!r} is already registered with xc={old.xc!r}, disp={old.disp!r}; "
                             "a name stands for one functional, so choose another name.")
        return old
    slug = _slugify(name)
    clash = [s.name for s in METHODS.values() if _slugify(s.name) == slug]
    if clash:
        raise ValueError(f"name {name!r} has the key slug {slug!r} of the registered level {clash[0]!r}; "
                         "choose a name that differs in more than case and punctuation.")
    check_xc(spec.xc, spec.disp)
    METHODS[name.upper()] = spec
    return spec

