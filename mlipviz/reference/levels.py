"""Named levels of theory: the registry of electronic-structure methods mlipviz can label with.

A :class:`Level` is a method (HF, a DFT functional, MP2, CCSD, CCSD(T)) plus a Gaussian basis set,
a frozen-core choice, the total charge and the spin. Levels are written as ``"METHOD/basis"``,
for example ``"CCSD(T)/cc-pVDZ"``. A Level is canonical: spellings that PySCF runs as the same
computation ("HF/STO-3G", "hf/sto-3g", "HF/sto3g") build equal Levels, with one name, slug and record key.

References:
    Raghavachari, Trucks, Pople, Head-Gordon, Chem. Phys. Lett. 157, 479 (1989),
    doi:10.1016/S0009-2614(89)87395-6 (CCSD(T)).
    Stephens, Devlin, Chabalowski, Frisch, J. Phys. Chem. 98, 11623 (1994), doi:10.1021/j100096a001 (B3LYP).
    Vosko, Wilk, Nusair, Can. J. Phys. 58, 1200 (1980), doi:10.1139/p80-159 (VWN correlation, RPA and V fits).
    Hertwig, Koch, Chem. Phys. Lett. 268, 345 (1997), doi:10.1016/S0009-2614(97)00207-8 (the two B3LYPs).
    Lehtola, Steigemann, Oliveira, Marques, SoftwareX 7, 1 (2018), doi:10.1016/j.softx.2017.11.002 (libxc).
    Sun et al., J. Chem. Phys. 153, 024109 (2020), doi:10.1063/5.0006074 (PySCF).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np

__all__ = [
    "Level",
    "METHODS",
    "MethodSpec",
    "canonical_basis",
    "check_basis",
    "get_level",
    "get_levels",
    "known_methods",
]


@dataclass(frozen=True)
class MethodSpec:
    """How PySCF runs one method.

    Attributes:
        name: Canonical display name, e.g. "CCSD(T)".
        kind: One of "hf", "dft", "mp2", "ccsd", "ccsd_t".
        xc: Exchange-correlation string for PySCF's ``mf.xc`` (DFT only), recorded in each label's provenance.
        disp: Empirical dispersion correction for PySCF's ``mf.disp`` (e.g. "d3bj"), from the
            pyscf-dispersion package; energies and gradients both include it.
        correlated: Whether the method correlates electrons beyond the mean field (frozen core applies).
        open_shell_gradient: Whether PySCF's analytic gradient for the open-shell (unrestricted) variant
            is trustworthy. UCCSD(T) gradients disagree with finite differences (pyscf issue 3305).
        builtin: False for levels added with :func:`mlipviz.reference.functionals.register_dft_level`.
    """

    name: str
    kind: str
    xc: str | None = None
    disp: str | None = None
    correlated: bool = False
    open_shell_gradient: bool = True
    builtin: bool = True


#: Registered methods, keyed by upper-case name.
#:
#: B3LYP exists in two forms that differ in the 19 % local correlation term (Hertwig & Koch 1997): VWN with
#: the RPA fit (libxc ``HYB_GGA_XC_B3LYP``, which PySCF names Gaussian's) or VWN5 (Turbomole's and ORCA's).
#: Plain "B3LYP" (xc "b3lyp") is PySCF's meaning since PySCF 2.3, the VWN-RPA form, as in every stored B3LYP
#: label; :func:`mlipviz.reference.pyscf_driver.check_xc_definition` refuses it if PySCF is configured
#: (``B3LYP_WITH_VWN5``) to read "b3lyp" as VWN5. "B3LYP-VWN-RPA" (xc "b3lypg", libxc ``HYB_GGA_XC_B3LYP``) and
#: "B3LYP-VWN5" (xc "b3lyp5" = ``.2*HF + .08*SLATER + .72*B88, .81*LYP + .19*VWN``, VWN being libxc's
#: ``LDA_C_VWN``, the VWN5 fit) name one form whatever the configuration. PySCF's alias "VWN3" is libxc's
#: ``LDA_C_VWN_RPA``, not libxc's ``LDA_C_VWN_3``.
METHODS: dict[str, MethodSpec] = {
    "HF": MethodSpec("HF", "hf"),
    "B3LYP": MethodSpec("B3LYP", "dft", xc="b3lyp"),
    "B3LYP-VWN-RPA": MethodSpec("B3LYP-VWN-RPA", "dft", xc="b3lypg"),
    "B3LYP-VWN5": MethodSpec("B3LYP-VWN5", "dft", xc="b3lyp5"),
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


def _basis_slug(basis: str) -> str:
    # '*' and '+' are part of a Pople name: 6-31G* is not 6-31G (PySCF itself spells '*' as 's' in file names).
    return _slugify(basis.replace("*", "s").replace("+", "p"))


# --- basis names --------------------------------------------------------------------------------------------


def _pyscf_basis_key(name: str) -> str:
    # PySCF's pyscf.gto.basis._format_basis_name, copied so that record keys never move with PySCF's version
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


_SUFFIXES = {"dk": "DK", "pp": "PP", "ri": "RI", "jkfit": "JKFIT"}


def _pople(m: re.Match) -> str:
    polarisation = m[4] or ""
    if polarisation.startswith("s"):  # PySCF reads 6-31Gs as 6-31G*, 6-31Gss as 6-31G**
        polarisation = "*" * len(polarisation)
    return f"{m[1]}-{m[2]}{m[3]}G{polarisation}"


def _dunning(m: re.Match) -> str:
    core = {"c": "C", "wc": "wC"}.get(m[2], "")
    return f"{'aug-' if m[1] else ''}cc-p{core}V{m[3].upper()}Z{'-' + _SUFFIXES[m[4]] if m[4] else ''}"


_BASIS_RULES = (  # on PySCF's normal form; sto-nG stays lower case, as stored labels spell it (hf_sto3g)
    (re.compile(r"sto(\d)g"), lambda m: f"sto-{m[1]}g"),
    (re.compile(r"(\d)(\d{2,3})(\+{0,2})g(\*{1,2}|s{1,2}|\(.*\))?"), _pople),
    (re.compile(r"(aug)?ccp(c|wc)?v([dtq56])z(dk|pp|ri|jkfit)?"), _dunning),
    (re.compile(r"def2(svpd?|tzvpp?d?|qzvpp?d?)(ri|jkfit)?"),
     lambda m: f"def2-{m[1].upper()}{'-' + _SUFFIXES[m[2]] if m[2] else ''}"),
    (re.compile(r"(aug)?pc(seg)?([0-4])"), lambda m: f"{'aug-' if m[1] else ''}pc{'seg' if m[2] else ''}-{m[3]}"),
)


def canonical_basis(basis: str) -> str:
    """The one spelling of a basis-set name that PySCF reads as the same basis.

    PySCF compares basis names after lower-casing and removing '-', '_' and spaces, so "STO-3G", "sto-3g"
    and "sto3g" are one basis. Common families get their usual spelling (sto-3g, 6-31G**, 6-311++G**,
    cc-pVDZ, aug-cc-pVTZ, cc-pCVDZ, cc-pwCVTZ, def2-SVP, def2-TZVPP, pcseg-1, ...); other names in PySCF's
    basis library keep PySCF's normal form (e.g. "lanl2dz"); a name PySCF does not list is kept as given,
    because PySCF hands it on unchanged (to a file or to basis-set-exchange).

    Args:
        basis: A basis-set name.

    Returns:
        The canonical spelling.
    """
    name = basis.strip()
    if "/" in name or "\n" in name or "\\" in name:  # a file or an inline basis, not a name
        return name
    key = _pyscf_basis_key(name)
    for pattern, spell in _BASIS_RULES:
        match = pattern.fullmatch(key)
        if match:
            return spell(match)
    from pyscf.gto import basis as pyscf_basis

    known = (pyscf_basis.ALIAS, pyscf_basis.GTH_ALIAS, pyscf_basis.USER_BASIS_ALIAS, pyscf_basis.USER_GTH_ALIAS)
    return key if any(key in table for table in known) else name


# --- levels -------------------------------------------------------------------------------------------------


def _as_int(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {type(value).__name__} {value!r}.")
    return int(value)


@dataclass(frozen=True)
class Level:
    """A level of theory.

    Every field is stored in canonical form (method and basis spelling, Python ``int``/``bool``), so equal
    computations give equal Levels, equal :meth:`as_dict` and equal record keys.

    Attributes:
        method: Method name from :data:`METHODS` (case-insensitive on input, canonical once built).
        basis: Gaussian basis-set name known to PySCF, e.g. "cc-pVDZ" (any spelling PySCF accepts on input,
            canonical once built, see :func:`canonical_basis`).
        frozen_core: Freeze core orbitals in MP2/CC (PySCF's ``chemcore``). Ignored for HF/DFT.
        charge: Total charge, e (Python or NumPy integer).
        spin: Number of unpaired electrons 2S (Python or NumPy integer). ``None`` means a closed shell,
            which requires an even electron count.

    Raises:
        ValueError: for an unknown method, an empty basis, a non-bool frozen_core, a non-integer charge or a
            negative or non-integer spin.
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
        object.__setattr__(self, "basis", canonical_basis(self.basis))
        if not isinstance(self.frozen_core, (bool, np.bool_)):
            raise ValueError(f"frozen_core must be True or False, got {type(self.frozen_core).__name__} "
                             f"{self.frozen_core!r}.")
        object.__setattr__(self, "frozen_core", bool(self.frozen_core))
        object.__setattr__(self, "charge", _as_int(self.charge, "charge"))
        if self.spin is not None:
            spin = _as_int(self.spin, "spin (2S, unpaired electrons)")
            if spin < 0:
                raise ValueError(f"spin (2S, unpaired electrons) must be non-negative or None, got {spin}.")
            object.__setattr__(self, "spin", spin)

    @property
    def spec(self) -> MethodSpec:
        """The :class:`MethodSpec` of this level's method."""
        return _method_spec(self.method)

    @property
    def name(self) -> str:
        """Display name "METHOD/basis", with "(fc)" when the core is frozen in a correlated method."""
        fc = " (fc)" if self.frozen_core and self.spec.correlated else ""
        return f"{self.method}/{self.basis}{fc}"

    @property
    def slug(self) -> str:
        """Key-safe identifier, e.g. ``ccsdt_ccpvdz``; used in dataset keys (see :mod:`mlipviz.keys`)."""
        fc = "_fc" if self.frozen_core and self.spec.correlated else ""
        return f"{_slugify(self.method)}_{_basis_slug(self.basis)}{fc}"

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
    """One level or several (strings or :class:`Level`) as a list of validated levels, in order.

    Raises:
        ValueError: naming ``levels`` when it is neither a level nor a list of levels, or the first entry
            that is not a string or a :class:`Level`.
    """
    if isinstance(levels, (str, Level)):
        levels = [levels]
    elif levels is None or isinstance(levels, (bytes, Mapping)) or not isinstance(levels, Iterable):
        raise ValueError(f"levels must be a level such as 'CCSD(T)/cc-pVDZ', a Level, or a list of them; "
                         f"got {type(levels).__name__} {levels!r}.")
    out = []
    for i, lv in enumerate(levels):
        if not isinstance(lv, (str, Level)):
            raise ValueError(f"levels[{i}] must be a string such as 'CCSD(T)/cc-pVDZ' or a Level, "
                             f"got {type(lv).__name__} {lv!r}.")
        out.append(get_level(lv))
    return out


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
            if "Unknown basis" in str(err) or isinstance(err, KeyError):
                raise ValueError(f"Unknown basis set {basis!r}: PySCF has no basis of that name.") from None
            missing.append(symbol)
    if missing:
        raise ValueError(f"Basis set {basis!r} has no functions for element(s) {', '.join(missing)}.")


# --- user-defined DFT levels --------------------------------------------------------------------------------
