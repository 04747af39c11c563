"""rMD17 energy and force errors of mlipviz's PaiNN beside the published table and SchNetPack's own ``spktrain``.

For each molecule (``--molecules``, default ethanol, malonaldehyde and aspirin) the 1,000 frames of rMD17's
train split 01 are split at random (seed 0) into 950 for training and 50 for validation, the protocol of the
PaiNN paper, and both trainers learn the same PaiNN architecture on them:

* mlipviz: :func:`mlipviz.potential.train_potential` (AdamW, lr 5e-4, batch 10, loss 0.05·MSE(E) + 0.95·MSE(F)
  in eV and eV/Å, learning rate halved after 20 epochs without improvement, energy offset refitted);
* SchNetPack: ``spktrain experiment=rmd17`` as SchNetPack ships it (AdamW, lr 1e-3, batch 10, loss
  0.01·MSE(E) + 0.99·MSE(F) in kcal/mol and kcal/mol/Å, exponential moving average of the weights), given the
  same split as a split file, the same architecture and the same training time.

Both models are then measured with mlipviz's ASE calculator on the test split: the first ``--n-test`` frames
(default 1,000, the whole of rMD17's test split 01) in file order. Each row also shows the trainer's own figure
on the same test frames (``train_potential``'s batched test errors; ``spktrain``'s ``trainer.test``) as a check
of the evaluation, and the published PaiNN and MACE errors beside it.

Modes:
    (default)   per-molecule CPU budget: ``--budget-min`` minutes of training for each trainer (default 30),
                PaiNN 128 features × 3 interactions, cutoff 5 Å;
    --full      the published protocol length: no time limit, ``--max-epochs`` (default 3000), on the GPU when
                one is present (``--device auto``);
    --quick     ethanol only, 2 min per trainer, PaiNN 32 × 2: proves the pipeline on 2 cores (6-9 min).

rMD17 is read from ``--data DIR``, never downloaded: either the files of one split,
``rmd17_<molecule>_{train,test}_01.npz``, or the figshare archive unpacked (``npz_data/rmd17_<molecule>.npz`` with
``splits/index_{train,test}_01.csv``, directly in DIR or in ``DIR/rmd17``).

    python benchmarks/rmd17.py [--data DIR] [--molecules ethanol,aspirin] [--budget-min 30 | --full | --quick]
                               [--no-spktrain] [--device auto] [--workdir DIR] [--json PATH] [--dry-run]

``spktrain`` writes its best model as a pickled torch module; it is read with
``mlipviz.potential.load_model(path, trust=True)``, which runs code from that file (the one this run wrote).
SchNetPack 2.2's ``spktrain`` reloads its own Lightning checkpoint (which holds the pickled model) for its test
stage after training; torch >= 2.6 refuses that by default, so it runs with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.

References:
    Christensen, von Lilienfeld, Mach. Learn.: Sci. Technol. 1, 045018 (2020), arXiv:2007.09593 (rMD17).
    Schütt, Unke, Gastegger, ICML 2021, arXiv:2102.03150 (PaiNN).
    Batatia et al., NeurIPS 2022, arXiv:2206.07697 (MACE; Table 1 lists the rMD17 errors of PaiNN and MACE
    printed here, meV and meV/Å, 950 training frames).
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0, spktrain).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)  # TorchScript deprecation from schnetpack's import

import torch  # noqa: E402
from ase import Atoms  # noqa: E402

from mlipviz import keys  # noqa: E402
from mlipviz.dataset import RMD17_LEVEL, RMD17_MOLECULES, load_rmd17, write_spk_database  # noqa: E402
from mlipviz.device import resolve_device  # noqa: E402
from mlipviz.potential import MLIPCalculator, ModelConfig, load_model, train_potential  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _model_errors beside this script, also when imported
from _model_errors import error_summary_meV, test_set_errors  # noqa: E402,F401  (error_summary_meV: re-exported)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"
DEFAULT_MOLECULES = ("ethanol", "malonaldehyde", "aspirin")
#: Published rMD17 test errors (energy meV, force meV/Å), Batatia et al. 2022, Table 1.
PUBLISHED = {
    "ethanol": {"PaiNN": (2.7, 10.0), "MACE": (0.4, 2.1)},
    "malonaldehyde": {"PaiNN": (3.9, 13.8), "MACE": (0.8, 4.1)},
    "aspirin": {"PaiNN": (6.9, 16.1), "MACE": (2.2, 6.6)},
}
#: SchNetPack's rMD17 data module names salicylic acid differently.
SPK_MOLECULE = {"salicylic": "salicylic_acid"}
OVERHEAD_S = 60.0  # rough per trainer and molecule on 2 cores: database, start-up, 1000-frame evaluation
ARM_MLIPVIZ, ARM_SPK = "mlipviz train_potential", "spktrain experiment=rmd17"


@dataclass
class Plan:
    """What one run trains: molecules, architecture, time or epoch limit, split."""

    mode: str  # "quick", "budget" or "full"
    molecules: list[str]
    n_atom_basis: int
    n_interactions: int
    budget_s: float | None  # training time per trainer and molecule; None: no limit
    max_epochs: int
    spktrain: bool = True
    n_val: int = 50
    n_test: int = 1000
    split: int = 1
    seed: int = 0
    batch_size: int = 10
    lr: float = 5e-4
    energy_weight: float = 0.05
    cutoff: float = 5.0
    n_rbf: int = 20

    def describe(self) -> str:
        limit = f"{self.budget_s / 60:g} min per trainer" if self.budget_s else f"up to {self.max_epochs} epochs"
        return (f"{self.mode}: PaiNN {self.n_atom_basis} features × {self.n_interactions} interactions, cutoff "
                f"{self.cutoff:g} Å, {limit}; split {self.split:02d}: {1000 - self.n_val} train / {self.n_val} val "
                f"(seed {self.seed}) from the train split, test = first {self.n_test} frames of the test split")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory holding rMD17 (see above)")
    p.add_argument("--molecules", help=f"comma-separated, default {','.join(DEFAULT_MOLECULES)}")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="ethanol, 2 min per trainer, small model (2 cores)")
    mode.add_argument("--full", action="store_true", help="published protocol length, no time limit (GPU)")
    p.add_argument("--budget-min", type=float, default=30.0, help="training minutes per trainer and molecule")
    p.add_argument("--max-epochs", type=int, default=3000, help="epoch limit of --full")
    p.add_argument("--n-test", type=int, default=1000, help="test frames: the first N of the test split")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split and of both trainers")
    p.add_argument("--no-spktrain", action="store_true", help="train only mlipviz's PaiNN")
    p.add_argument("--device", default="auto", help="auto (the GPU when present), cpu or cuda")
    p.add_argument("--workdir", type=Path, help="keep models and logs here (default: a temporary directory)")
    p.add_argument("--json", type=Path, help="also write the figures here (rewritten after every trainer)")
    p.add_argument("--dry-run", action="store_true", help="find the data and print the plan; train nothing")
    args = p.parse_args(argv)
    if args.molecules is not None:
        names = [m.strip() for m in args.molecules.split(",") if m.strip()]
        bad = [m for m in names if m not in RMD17_MOLECULES]
        if not names or bad:
            p.error(f"--molecules {args.molecules!r}: {bad or 'none given'} not among rMD17's {RMD17_MOLECULES}")
        args.molecules = names
    if not args.budget_min > 0:
        p.error(f"--budget-min must be positive, got {args.budget_min}")
    if args.max_epochs < 1 or args.n_test < 1:
        p.error(f"--max-epochs and --n-test must be at least 1, got {args.max_epochs} and {args.n_test}")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    """The :class:`Plan` of the chosen mode (``--quick``, ``--full`` or the CPU budget)."""
    common = dict(spktrain=not args.no_spktrain, n_test=args.n_test, seed=args.seed)
    if args.quick:
        return Plan("quick", args.molecules or ["ethanol"], 32, 2, 120.0, 100_000, **common)
    if args.full:
        return Plan("full", args.molecules or list(DEFAULT_MOLECULES), 128, 3, None, args.max_epochs, **common)
    return Plan("budget", args.molecules or list(DEFAULT_MOLECULES), 128, 3, 60.0 * args.budget_min, 100_000,
                **common)


def estimate_wall_s(plan: Plan) -> float | None:
    """Rough wall time of a time-limited run, s (None for ``--full``, which stops on epochs)."""
    if plan.budget_s is None:
        return None
    arms = 2 if plan.spktrain else 1
    return len(plan.molecules) * arms * (plan.budget_s + OVERHEAD_S)


# ---------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SplitSource:
    """One part of an rMD17 split: an ``.npz`` and, for a whole-molecule file, rMD17's index file into it."""

    path: Path
    index_file: Path | None = None


def locate_rmd17(directory: Path, molecule: str, split: int = 1) -> dict[str, SplitSource]:
    """Find the train and test part of rMD17 split ``split`` for ``molecule`` under ``directory``.

    Raises:
        FileNotFoundError: listing every file looked for, and where rMD17 comes from.
    """
    directory = Path(directory)
    per_split = {part: directory / f"rmd17_{molecule}_{part}_{split:02d}.npz" for part in ("train", "test")}
    if all(p.is_file() for p in per_split.values()):
        return {part: SplitSource(p) for part, p in per_split.items()}
    tried = list(per_split.values())
    for root in (directory, directory / "rmd17"):
        npz = root / "npz_data" / f"rmd17_{molecule}.npz"
        index = {part: root / "splits" / f"index_{part}_{split:02d}.csv" for part in ("train", "test")}
        if npz.is_file() and all(p.is_file() for p in index.values()):
            return {part: SplitSource(npz, index[part]) for part in ("train", "test")}
        tried += [npz, *index.values()]
    looked = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(f"no rMD17 {molecule} split {split:02d} under {directory}; looked for:\n  {looked}\n"
                            "rMD17 is not shipped with mlipviz: download it (figshare record 12672038) and pass "
                            "--data DIR.")


def load_split(sources: dict[str, SplitSource], n_test: int) -> tuple[list[Atoms], list[Atoms]]:
    """The train-split frames and the first ``n_test`` test-split frames, eV and Å."""
    train = load_rmd17(sources["train"].path, split_file=sources["train"].index_file)
    test = load_rmd17(sources["test"].path, split_file=sources["test"].index_file, max_frames=n_test)
    return train, test


def train_val_split(n_frames: int, n_val: int = 50, seed: int = 0) -> dict[str, list[int]]:
    """A seeded random split of ``n_frames`` train-split frames into train and val (sorted indices).

    Raises:
        ValueError: if ``n_val`` leaves no frame for training or is below 1.
    """
    if not 1 <= n_val < n_frames:
        raise ValueError(f"n_val={n_val} must lie in 1..{n_frames - 1} for {n_frames} train-split frames.")
    perm = np.random.default_rng(seed).permutation(n_frames)
    return {keys.SPLIT_TRAIN: sorted(perm[n_val:].tolist()), keys.SPLIT_VAL: sorted(perm[:n_val].tolist())}


def write_spktrain_database(frames: list[Atoms], path: Path, molecule: str) -> Path:
    """An ASE database that ``spktrain experiment=rmd17`` reads instead of downloading rMD17.

    Energies (eV) and forces (eV/Å) are written with their units by :func:`mlipviz.dataset.write_spk_database`;
    SchNetPack converts them to the experiment's kcal/mol and kcal/mol/Å on loading. The ``molecule`` metadata
    is what SchNetPack's rMD17 data module checks before it uses an existing file.
    """
    import schnetpack as spk

    write_spk_database(frames, path, RMD17_LEVEL, target=True, overwrite=True)
    spk.data.ASEAtomsData(str(path)).update_metadata(molecule=SPK_MOLECULE.get(molecule, molecule))
    return path


# ---------------------------------------------------------------------------------------------- measuring


def run_mlipviz(plan: Plan, train, test, split, workdir: Path, dev: torch.device) -> dict:
    """Train with :func:`train_potential` on ``split`` of ``train`` and measure on ``test``."""
    t0 = time.perf_counter()
    data = train + test
    full = {**split, keys.SPLIT_TEST: list(range(len(train), len(data)))}
    config = ModelConfig(representation="painn", n_atom_basis=plan.n_atom_basis,
                         n_interactions=plan.n_interactions, n_rbf=plan.n_rbf, cutoff=plan.cutoff)
    res = train_potential(data, level=RMD17_LEVEL, config=config, workdir=workdir / "train",
                          save_to=workdir / "model", split=full, batch_size=plan.batch_size, lr=plan.lr,
                          max_epochs=plan.max_epochs, max_time_s=plan.budget_s, energy_weight=plan.energy_weight,
                          device=str(dev), seed=plan.seed, progress=False)
    errors = test_set_errors(MLIPCalculator(workdir / "model", device=dev), test, RMD17_LEVEL)  # the saved model, read back
    own = res.config.metadata[keys.META_ERRORS][keys.SPLIT_TEST]
    return {**errors, "epochs": int(res.config.metadata[keys.META_EPOCHS]),
            "train_s": float(res.config.metadata[keys.META_TRAIN_WALL_TIME]), "wall_s": time.perf_counter() - t0,
            "n_params": sum(p.numel() for p in res.model.parameters()),
            "own_test": {"energy_mae_meV": 1e3 * own[keys.ERR_ENERGY_MAE],
                         "forces_mae_meV_per_A": 1e3 * own[keys.ERR_FORCES_MAE], "by": "train_potential"},
            "model": str(workdir / "model")}


def _hydra(value) -> str:
    """A Hydra override value, quoted when it holds characters outside Hydra's plain values (spaces, '=', ...)."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spktrain_overrides(plan: Plan, molecule: str, database: Path, split_file: Path, root: Path, n_train: int,
                       device: torch.device) -> list[str]:
    """Hydra overrides of ``spktrain experiment=rmd17``: our database and split, ``plan``'s model and limits."""
    ov = [
        "experiment=rmd17",
        f"run.work_dir={_hydra(root)}", f"run.data_dir={_hydra(root / 'data')}", f"run.path={_hydra(root)}",
        f"run.id={molecule}",
        f"data.datapath={_hydra(database)}", f"data.molecule={SPK_MOLECULE.get(molecule, molecule)}",
        f"+data.split_file={_hydra(split_file)}", f"data.num_train={n_train}", f"data.num_val={plan.n_val}",
        f"data.batch_size={plan.batch_size}", "data.num_workers=0",
        f"globals.cutoff={plan.cutoff}", f"model.representation.n_atom_basis={plan.n_atom_basis}",
        f"model.representation.n_interactions={plan.n_interactions}",
        f"model.representation.radial_basis.n_rbf={plan.n_rbf}",
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}", f"trainer.max_epochs={plan.max_epochs}",
        "logger=csv", f"+seed={plan.seed}", "print_config=False", "+trainer.enable_progress_bar=false",
    ]
    if plan.budget_s is not None:
        ov.append(f"+trainer.max_time={{seconds:{int(round(plan.budget_s))}}}")
    return ov


def find_spktrain() -> str | None:
    """The ``spktrain`` beside this Python, or on the PATH."""
    here = Path(sys.executable).with_name("spktrain")
    return str(here) if here.is_file() else shutil.which("spktrain")


def _spktrain_log(run_dir: Path) -> dict:
    """Epochs and the test metrics (kcal/mol, kcal/mol/Å) from spktrain's CSV log."""
    files = sorted(run_dir.glob("csv/version_*/metrics.csv"))
    out = {"epochs": 0}
    if not files:
        return out
    with open(files[-1], newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("val_loss"):
                out["epochs"] = max(out["epochs"], int(row["epoch"]) + 1)
            if row.get("test_energy_mae"):
                out["test_energy_mae"], out["test_forces_mae"] = float(row["test_energy_mae"]), float(
                    row["test_forces_mae"])
    return out


def spktrain_fit_s(log_text: str) -> float | None:
    """Seconds between spktrain's "Starting training." and "Starting testing." log lines (its fit), if both."""
    stamps = {}
    for line in log_text.splitlines():
        for key in ("Starting training.", "Starting testing."):
            if line.rstrip().endswith(key) and line.startswith("["):
                with contextlib.suppress(ValueError):
                    stamps[key] = time.mktime(time.strptime(line[1:20], "%Y-%m-%d %H:%M:%S")) + float(
                        "0." + line[21:24])
    if len(stamps) < 2:
        return None
    return stamps["Starting testing."] - stamps["Starting training."]


def run_spktrain(plan: Plan, molecule: str, train, test, split, root: Path, dev: torch.device, exe: str) -> dict:
    """Train with ``spktrain experiment=rmd17`` on the same split and time; measure its best model on ``test``."""
    import schnetpack as spk
    from omegaconf import OmegaConf

    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    database = write_spktrain_database(train + test, root / f"rmd17_{molecule}.db", molecule)
    split_file = root / f"split_{molecule}.npz"
    np.savez(split_file, train_idx=np.asarray(split[keys.SPLIT_TRAIN]), val_idx=np.asarray(split[keys.SPLIT_VAL]),
             test_idx=np.arange(len(train), len(train) + len(test)))
    run_dir = root / molecule
    if run_dir.exists():  # spktrain would resume an existing run; keep it under another name instead
        k = 1
        while run_dir.with_name(f"{molecule}.{k}").exists():
            k += 1
        run_dir.rename(run_dir.with_name(f"{molecule}.{k}"))
    cmd = [exe, *spktrain_overrides(plan, molecule, database, split_file, root, len(split[keys.SPLIT_TRAIN]), dev)]
    env = dict(os.environ, PWD=str(root), HYDRA_FULL_ERROR="1", TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    log_path = root / f"spktrain_{molecule}.log"
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=None if plan.budget_s is None else plan.budget_s + 900)
    spk_s = time.perf_counter() - t0
    out = {"command": shlex.join(cmd), "log": str(log_path), "returncode": proc.returncode, "spktrain_s": spk_s}
    log_text = log_path.read_text(errors="replace")
    tail = [ln for ln in log_text.splitlines() if ln.strip()][-3:]
    best = run_dir / "best_model"
    if not best.is_file():
        return {**out, "not_measured": f"spktrain exited {proc.returncode} without a best_model; log ends: {tail}"}
    if proc.returncode != 0:
        out["note"] = f"spktrain exited {proc.returncode} after saving best_model; log ends: {tail}"
    print(f"  reading spktrain's pickled {best} with load_model(path, trust=True): this runs code from the file, "
          "which this run's spktrain wrote", flush=True)
    model, config = load_model(best, device=dev, trust=True)
    energy_unit = OmegaConf.load(run_dir / "config.yaml").data.property_units.energy
    to_eV = spk.units.convert_units(energy_unit, "eV")
    errors = test_set_errors(MLIPCalculator(model, config, device=dev), test, RMD17_LEVEL, to_eV=to_eV)
    own = _spktrain_log(run_dir)
    if "test_energy_mae" in own:
        out["own_test"] = {"energy_mae_meV": 1e3 * to_eV * own["test_energy_mae"],
                           "forces_mae_meV_per_A": 1e3 * to_eV * own["test_forces_mae"], "by": "spktrain test"}
    return {**out, **errors, "epochs": own["epochs"], "train_s": spktrain_fit_s(log_text),
            "wall_s": time.perf_counter() - t0, "n_params": sum(p.numel() for p in model.parameters()),
            "model_energy_unit": energy_unit,
            "model": str(best)}


# ------------------------------------------------------------------------------------------------ report


def machine_line(device: torch.device) -> str:
    """CPU model and cores, torch threads, the GPU when used, and the versions that matter."""
    import schnetpack

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU used"
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {gpu}; Python "
            f"{platform.python_version()}, torch {torch.__version__}, schnetpack {schnetpack.__version__}")


def _pair(x: tuple | None, fmt: str = "{:.1f} / {:.1f}") -> str:
    return "—" if x is None else fmt.format(*x)


def format_table(rows: list[dict]) -> str:
    """One line per molecule and trainer: test errors, signed energy error, the trainer's own check, published."""
    head = (f"{'molecule':14s} {'trainer':26s} {'E MAE':>7s} {'F MAE':>7s} {'E signed':>8s} {'epochs':>6s} "
            f"{'train min':>9s} {'params':>7s}  {'own check E / F':>16s}  {'PaiNN pub.':>11s}  {'MACE pub.':>10s}")
    lines = [head, f"{'':14s} {'':26s} {'meV':>7s} {'meV/Å':>7s} {'meV':>8s}", "-" * len(head)]
    for r in rows:
        pub = PUBLISHED.get(r["molecule"], {})
        tail = f"  {_pair(pub.get('PaiNN')):>11s}  {_pair(pub.get('MACE')):>10s}"
        if "not_measured" in r:
            lines.append(f"{r['molecule']:14s} {r['trainer']:26s} not measured: {r['not_measured']}{tail}")
            continue
        own = r.get("own_test")
        own_s = _pair((own["energy_mae_meV"], own["forces_mae_meV_per_A"]), "{:.2f} / {:.2f}") if own else "—"
        train_min = "—" if r.get("train_s") is None else f"{r['train_s'] / 60:.1f}"
        lines.append(f"{r['molecule']:14s} {r['trainer']:26s} {r['energy_mae_meV']:7.2f} "
                     f"{r['forces_mae_meV_per_A']:7.2f} {r['energy_signed_meV']:+8.2f} {r['epochs']:6d} "
                     f"{train_min:>9s} {r.get('n_params', '—'):>7}  {own_s:>16s}{tail}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    plan = make_plan(args)
    dev = resolve_device(args.device)
    t_start = time.perf_counter()
    try:
        sources = {m: locate_rmd17(args.data, m, plan.split) for m in plan.molecules}
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from None
    exe = find_spktrain() if plan.spktrain else None
    report = {"benchmark": "rMD17", "machine": machine_line(dev), "device": str(dev), "plan": asdict(plan),
              "protocol": plan.describe(), "published": PUBLISHED, "estimated_wall_s": estimate_wall_s(plan),
              "data": {m: {k: str(s.path) + (f" [{s.index_file.name}]" if s.index_file else "")
                           for k, s in src.items()} for m, src in sources.items()},
              "spktrain": exe, "rows": []}
    print(f"rMD17 — {report['protocol']}\nmachine: {report['machine']}\ndevice: {dev}")
    for m, src in report["data"].items():
        print(f"  {m}: train {src['train']}, test {src['test']}")
    if plan.spktrain and exe is None:
        print("  spktrain not found beside this Python nor on the PATH: its rows are not measured")
    est = report["estimated_wall_s"]
    print(f"estimated wall time: {'open (epoch limit)' if est is None else f'{est / 60:.0f} min (rough)'}")
    if args.dry_run:
        if plan.spktrain:
            m, root = plan.molecules[0], (args.workdir or Path("WORKDIR")) / "spktrain"
            cmd = [exe or "spktrain", *spktrain_overrides(plan, m, root / f"rmd17_{m}.db", root / f"split_{m}.npz",
                                                          root, 1000 - plan.n_val, dev)]
            report["spktrain_command"] = shlex.join(cmd)
            print(f"spktrain for {m} (env TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, cwd {root}):\n"
                  f"  {report['spktrain_command']}")
        return report

    if args.json:  # fail now rather than after hours of training
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")

    def save():
        report["wall_s"] = time.perf_counter() - t_start
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")

    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rmd17_")))
        for m in plan.molecules:
            train, test = load_split(sources[m], plan.n_test)
            split = train_val_split(len(train), plan.n_val, plan.seed)
            print(f"[{time.perf_counter() - t_start:6.0f} s] {m}: {len(train)} train-split frames "
                  f"({len(split[keys.SPLIT_TRAIN])} train / {len(split[keys.SPLIT_VAL])} val), {len(test)} test",
                  flush=True)
            row = {"molecule": m, "trainer": ARM_MLIPVIZ, **run_mlipviz(plan, train, test, split, work / "mlipviz" / m,
                                                                         dev)}
            report["rows"].append(row)
            save()
            print(f"[{time.perf_counter() - t_start:6.0f} s]   mlipviz: E {row['energy_mae_meV']:.2f} meV, "
                  f"F {row['forces_mae_meV_per_A']:.2f} meV/Å, {row['epochs']} epochs", flush=True)
            if not plan.spktrain:
                continue
            if exe is None:
                row = {"molecule": m, "trainer": ARM_SPK, "not_measured": "spktrain is not installed"}
            else:
                row = {"molecule": m, "trainer": ARM_SPK,
                       **run_spktrain(plan, m, train, test, split, work / "spktrain", dev, exe)}
            report["rows"].append(row)
            save()
            print(f"[{time.perf_counter() - t_start:6.0f} s]   spktrain: "
                  + (row["not_measured"] if "not_measured" in row else
                     f"E {row['energy_mae_meV']:.2f} meV, F {row['forces_mae_meV_per_A']:.2f} meV/Å, "
                     f"{row['epochs']} epochs"), flush=True)
    save()
    print()
    print(format_table(report["rows"]))
    print("E and F: mlipviz's ASE calculator on the test frames; own check: the same test frames measured by the "
          "trainer itself (train_potential's batched errors, spktrain's trainer.test).")
    print("spktrain's best_model was read with mlipviz.potential.load_model(path, trust=True) (a pickle: it runs "
          "code from the file); spktrain ran with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 for its own checkpoint reload.")
    print(f"published: Batatia et al. 2022 (MACE), Table 1. Wall time {report['wall_s'] / 60:.1f} min.")
    if args.workdir:
        print(f"models and logs kept in {args.workdir}")
    return report


if __name__ == "__main__":
    main()
