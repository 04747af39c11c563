"""Named levels of theory: the registry of electronic-structure methods mlipviz can label with.

A :class:`Level` is a method (HF, a DFT functional, MP2, CCSD, CCSD(T)) plus a Gaussian basis set,
a frozen-core choice, the total charge and the spin. Levels are written as ``"METHOD/basis"``,
for example ``"CCSD(T)/cc-pVDZ"``.

References:
    Raghavachari, Trucks, Pople, Head-Gordon, Chem. Phys. Lett. 157, 479 (1989),
    doi:10.1016/S0009-2614(89)87395-6 (CCSD(T)).
    Sun et al., J. Chem. Phys. 153, 024109 (2020), doi:10.1063/5.0006074 (PySCF).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, replace

__all__ = ["Level", "METHODS", "get_level", "get_levels", "known_methods", "check_basis"]


@dataclass(frozen=True)
class MethodSpec:
    """How PySCF runs one method.

    Attributes:
        name: Canonical display name, e.g. "CCSD(T)".
        kind: One of "hf", "dft", "mp2", "ccsd", "ccsd_t".
        xc: Exchange-correlation functional string for PySCF (DFT only).
        disp: Empirical dispersion correction for PySCF's ``mf.disp`` (e.g. "d3bj"), from the
            pyscf-dispersion package; energies and gradients both include it.
        correlated: Whether the method correlates electrons beyond the mean field (frozen core applies).
        open_shell_gradient: Whether PySCF's analytic gradient for the open-shell (unrestricted) variant
            is trustworthy. UCCSD(T) gradients disagree with finite differences (pyscf issue 3305).
    """

    name: str
    kind: str
    xc: str | None = None
    disp: str | None = None
    correlated: bool = False
    open_shell_gradient: bool = True


#: Registered methods, keyed by upper-case name.
METHODS: dict[str, MethodSpec] = {
    "HF": MethodSpec("HF", "hf"),
    "B3LYP": MethodSpec("B3LYP", "dft", xc="b3lyp"),
    "PBE0": MethodSpec("PBE0", "dft", xc="pbe0"),
    # Grimme's D3 with Becke–Johnson damping: Grimme, Ehrlich, Goerigk, J. Comput. Chem. 32, 1456 (2011),
    # doi:10.1002/jcc.21759.
    "B3LYP-D3BJ": MethodSpec("B3LYP-D3BJ", "dft", xc="b3lyp", disp="d3bj"),
    "PBE0-D3BJ": MethodSpec("PBE0-D3BJ", "dft", xc="pbe0", disp="d3bj"),
    "PBE": MethodSpec("PBE", "dft", xc="pbe"),
    "MP2": MethodSpec("MP2", "mp2", correlated=True),
    "CCSD": MethodSpec("CCSD", "ccsd", correlated=True),
    "CCSD(T)": MethodSpec("CCSD(T)", "ccsd_t", correlated=True, open_shell_gradient=False),
}


def known_methods() -> list[str]:
    """Names of every registered method, in registry order."""
    return [spec.name for spec in METHODS.values()]


def _method_spec(method: str) -> MethodSpec:
    if not isinstance(method, str) or not method.strip():
        raise ValueError(f"Level-of-theory method must be a non-empty string, got {method!r}.")
    spec = METHODS.get(method.strip().upper())
    if spec is None:
        raise ValueError(
            f"Unknown level of theory {method!r}. Known methods: {', '.join(known_methods())}."
        )
    return spec


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass(frozen=True)
class Level:
    """A level of theory.

    Attributes:
        method: Method name from :data:`METHODS` (case-insensitive on input, canonical once built).
        basis: Gaussian basis-set name known to PySCF, e.g. "cc-pVDZ".
        frozen_core: Freeze core orbitals in MP2/CC (PySCF's ``chemcore``). Ignored for HF/DFT.
        charge: Total charge, e.
        spin: Number of unpaired electrons 2S. ``None`` means a closed shell, which requires an even
            electron count.
    """

    method: str
    basis: str = "cc-pVDZ"
    frozen_core: bool = False
    charge: int = 0
    spin: int | None = None

    def __post_init__(self):
        spec = _method_spec(self.method)
        object.__setattr__(self, "method", spec.name)
        if not isinstance(self.basis, str) or not self.basis.strip():
            raise ValueError(f"basis must be a non-empty basis-set name, got {self.basis!r}.")
        if isinstance(self.charge, bool) or not isinstance(self.charge, int):
            raise ValueError(f"charge must be an integer, got {self.charge!r}.")
        if self.spin is not None and (isinstance(self.spin, bool) or not isinstance(self.spin, int) or self.spin < 0):
            raise ValueError(f"spin (2S, unpaired electrons) must be a non-negative integer or None, got {self.spin!r}.")

    @property
    def spec(self) -> MethodSpec:
        """The :class:`MethodSpec` of this level's method."""
        return METHODS[self.method.upper()]

    @property
    def name(self) -> str:
        """Display name "METHOD/basis", with "(fc)" when the core is frozen in a correlated method."""
        fc = " (fc)" if self.frozen_core and self.spec.correlated else ""
        return f"{self.method}/{self.basis}{fc}"

    @property
    def slug(self) -> str:
        """Key-safe identifier, e.g. ``ccsdt_ccpvdz``; used in dataset keys (see :mod:`mlipviz.keys`)."""
        fc = "_fc" if self.frozen_core and self.spec.correlated else ""
        return f"{_slugify(self.method)}_{_slugify(self.basis)}{fc}"

    def with_(self, **changes) -> Level:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """Plain-dict form, for JSON provenance."""
        return asdict(self)


def get_level(level: str | Level, **overrides) -> Level:
    """Parse a level of theory.

    Args:
        level: A :class:`Level`, or a string "METHOD/basis" such as "CCSD(T)/cc-pVDZ" or "b3lyp/def2-svp".
            A bare method name uses cc-pVDZ.
        **overrides: Field values to set on the result (``frozen_core``, ``charge``, ``spin``, ``basis``).

    Returns:
        The validated :class:`Level`.

    Raises:
        ValueError: for an unknown method, an empty basis or malformed string.
    """
    if isinstance(level, Level):
        return replace(level, **overrides) if overrides else level
    if not isinstance(level, str):
        raise ValueError(f"level must be a string like 'CCSD(T)/cc-pVDZ' or a Level, got {type(level).__name__}.")
    parts = level.strip().split("/")
    if len(parts) > 2 or not parts[0].strip():
        raise ValueError(f"Cannot parse level {level!r}; write it as 'METHOD/basis', e.g. 'CCSD(T)/cc-pVDZ'.")
    fields = {"method": parts[0].strip()}
    if len(parts) == 2:
        fields["basis"] = parts[1].strip()
    fields.update(overrides)
    return Level(**fields)


def get_levels(levels) -> list[Level]:
    """One level or several (strings or :class:`Level`) as a list of validated levels, in order."""
    if isinstance(levels, (str, Level)):
        levels = [levels]
    return [get_level(lv) for lv in levels]


def check_basis(basis: str, symbols) -> None:
    """Check that PySCF knows ``basis`` and that it covers every element in ``symbols``.

    Raises:
        ValueError: naming the unknown basis, or the elements the basis lacks.
    """
    from pyscf.gto import basis as pyscf_basis

    missing = []
    for symbol in sorted(set(symbols)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pyscf_basis.load(basis, symbol)
        except Exception as err:  # PySCF raises BasisNotFoundError or KeyError depending on the path
            if "Unknown basis" in str(err):
                raise ValueError(f"Unknown basis set {basis!r}: PySCF has no basis of that name.") from err
            missing.append(symbol)
    if missing:
        raise ValueError(f"Basis set {basis!r} has no functions for element(s) {', '.join(missing)}.")
