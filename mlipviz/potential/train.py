"""Train a SchNetPack potential on energies and forces from an extxyz file or a list of structures.

Training goes through SchNetPack's ``AtomisticTask`` and a PyTorch Lightning ``Trainer``: early stopping on
a time budget (``max_time_s``) for CPU sessions, and the GPU when one is present.

The loss is ρ·MSE(E) + (1-ρ)·MSE(F) on per-structure energies (eV) and force components (eV/Å), with
ρ = ``energy_weight``. After training the per-atom energy offset is refitted to the trained network
(:func:`mlipviz.potential.bias.refit_energy_offset`): the loss barely constrains a constant energy shift, and
without the refit every prediction carried the same bias of one to ten meV.

Bad input is refused before training starts: data without the requested level, an empty or overlapping
split, a split whose training part shares a geometry with its validation or test part, and starting weights
(``init_from``) of another architecture.

References:
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import schnetpack as spk
import schnetpack.data.stats as spk_stats
import schnetpack.transform as trn
import torch
import torchmetrics
from ase import Atoms

from .. import keys
from ..dataset.spk import write_spk_database
from ..device import resolve_device
from ..reference.levels import get_level
from ..structure_io import load_images
from .bias import MeanSignedError, refit_energy_offset, split_errors
from .chemistry import elements_of
from .distributed import SyncedTask, trainer_placement
from .files import check_state_dict
from .model import ModelConfig, build_model, load_model, save_model
from .provenance import data_file_name, dataset_sha256, levels_in, require_level
from .splits import SPLIT_NAMES, check_no_leak, check_split

__all__ = ["TrainResult", "train_potential"]

#: The architecture fields two configs must share for weights to move between them.
_ARCHITECTURE = ("representation", "n_atom_basis", "n_interactions", "n_rbf", "cutoff", "lmax")


@dataclass
class TrainResult:
    """What :func:`train_potential` returns.

    Attributes:
        model: The trained model (best validation loss, energy offset refitted), eval mode.
        config: Its :class:`ModelConfig`; ``config.metadata`` records level, data provenance, split, errors
            and timing, and ``config.elements`` the elements of the training data.
        history: Per-epoch validation metrics under :data:`mlipviz.keys.HISTORY_EPOCH`,
            ``HISTORY_VAL_LOSS``, ``HISTORY_VAL_ENERGY_MAE`` and ``HISTORY_VAL_ENERGY_SIGNED`` (eV),
            ``HISTORY_VAL_FORCES_MAE`` and ``HISTORY_VAL_FORCES_SIGNED`` (eV/Å); measured during training,
            before the offset refit.
        directory: Where the model was saved, if anywhere.
    """

    model: torch.nn.Module
    config: ModelConfig
    history: list[dict] = field(default_factory=list)
    directory: Path | None = None


class _KeepBest(pl.Callback):
    """Keep the best-validation weights in memory and a per-epoch history (no pickled checkpoints)."""

    def __init__(self):
        self.best = float("inf")
        self.state = None
        self.history: list[dict] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        m[keys.HISTORY_EPOCH] = int(trainer.current_epoch)
        self.history.append(m)
        loss = m.get(keys.HISTORY_VAL_LOSS, float("inf"))
        if loss < self.best:
            self.best = loss
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}


def _images(data) -> list[Atoms]:
    images = load_images(data) if isinstance(data, (str, Path)) else list(data)
    bad = [i for i, a in enumerate(images) if not isinstance(a, Atoms)]
    if bad:
        raise ValueError(f"data[{bad[0]}] is a {type(images[bad[0]]).__name__}, not an ase.Atoms.")
    return images


def _counts(n_train, n_val, n_all: int) -> tuple[int, int]:
    n_tr = int(round(n_train * n_all)) if isinstance(n_train, float) else int(n_train)
    n_va = int(round(n_val * n_all)) if isinstance(n_val, float) else int(n_val)
    if n_tr < 1 or n_va < 1 or n_tr + n_va > n_all:
        raise ValueError(f"n_train={n_train!r}, n_val={n_val!r} do not fit {n_all} structures "
                         f"(each split needs at least one structure).")
    return n_tr, n_va


def _initial_state(init_from, config: ModelConfig, model: torch.nn.Module) -> dict:
    """Weights to start from, checked against ``config``'s architecture."""
    if isinstance(init_from, Mapping):
        return check_state_dict(dict(init_from), model, "init_from", config.describe())
    if not isinstance(init_from, (str, Path)):
        raise ValueError(f"init_from must be a saved model directory or a state_dict, got {type(init_from).__name__}.")
    start, start_config = load_model(init_from, device="cpu")
    if any(getattr(start_config, f) != getattr(config, f) for f in _ARCHITECTURE):
        raise ValueError(f"init_from={str(init_from)!r} is a {start_config.describe()}, but config asks for a "
                         f"{config.describe()}; weights cannot move between architectures.")
    return start.state_dict()


#: Lightning's and SchNetPack's messages that say nothing a user of mlipviz can act on (hidden with progress=False).
_HARMLESS_WARNINGS = (
    r".*is an instance of `nn.Module` and is already saved during checkpointing.*",
    r"Skipping 'outputs' parameter.*",
    r".*LeafSpec.*",
    r".*torch\.jit\.script.* is deprecated.*",
)
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


@contextlib.contextmanager
def _quiet(quiet: bool):
    """With ``quiet``, silence SchNetPack's "calculating statistics" bar, Lightning's INFO lines ("GPU available",
    tips) and its known harmless warnings; the previous settings are restored afterwards.

    SchNetPack's statistics loop calls the ``tqdm`` of its ``schnetpack.data.stats`` module, which is swapped for one
    made with ``disable=True`` while training runs. Warnings mlipviz itself raises still show.
    """
    if not quiet:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    old_levels = [lg.level for lg in loggers]
    old_tqdm = spk_stats.tqdm
    spk_stats.tqdm = functools.partial(old_tqdm, disable=True)
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        spk_stats.tqdm = old_tqdm
        for lg, level in zip(loggers, old_levels):
            lg.setLevel(level)


def train_potential(
    data: str | Path | list[Atoms],
    level: str = "CCSD(T)/cc-pVDZ",
    config: ModelConfig | None = None,
    workdir: str | Path = "runs/train",
    save_to: str | Path | None = None,
    n_train: int | float = 0.8,
    n_val: int | float = 0.1,
    batch_size: int = 16,
    lr: float = 5e-4,
    max_epochs: int = 200,
    max_time_s: float | None = None,
    energy_weight: float = 0.05,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    split: Mapping | None = None,
    init_from: str | Path | Mapping | None = None,
    callbacks: list[pl.Callback] | None = None,
    devices: int = 1,
    num_nodes: int = 1,
) -> TrainResult:
    """Train a potential on ``level`` labels.

    Args:
        data: An extxyz path, or labelled structures (see :mod:`mlipviz.reference.labelling`).
        level: Which level's energies/forces to learn, e.g. "CCSD(T)/cc-pVDZ".
        config: Architecture; default PaiNN, 64 features, 3 interactions, 5 Å cutoff. Its ``elements`` are
            filled in from the data (a different value given here is refused).
        workdir: Scratch directory for the SchNetPack database, split file and Lightning logs.
        save_to: If given, save the trained model there (``config.json`` with checksums + weights-only
            ``model.pt``) and the history as ``history.json``.
        n_train: Training structures (count, or fraction of all); ignored when ``split`` is given.
        n_val: Validation structures (count or fraction); the rest is the held-out test set.
        batch_size: Structures per batch.
        lr: AdamW learning rate.
        max_epochs: Epoch limit.
        max_time_s: Wall-clock budget in seconds (Lightning stops cleanly when it runs out).
        energy_weight: ρ in the loss; forces get 1-ρ.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        seed: Seed for the split and the initial weights.
        progress: Show Lightning's progress bar.
        split: Explicit ``{"train": [...], "val": [...], "test": [...]}`` indices into ``data`` (train and val
            non-empty, no index or geometry shared); default a random split by ``n_train``/``n_val``.
        init_from: Start from these weights instead of random ones: a saved model directory of the same
            architecture, or a state_dict.
        callbacks: Extra Lightning callbacks (for example :class:`mlipviz.widgets.TrainingMonitor`, a live
            plot in a notebook); they see every validation epoch's ``val_*`` metrics.
        devices: Processes per node (GPUs on a GPU node); more than one process trains with Lightning's DDP
            (see :mod:`mlipviz.potential.distributed`, which also shows a SLURM launch). Only rank 0 then refits
            the offset, measures the errors and saves; the other ranks return the bare trained network.
        num_nodes: Nodes, for DDP across machines.

    Returns:
        A :class:`TrainResult`. ``config.metadata`` holds the split (indices into ``data``), the data's
        levels and SHA-256, and the final model's MAE and mean signed error on every split.

    Raises:
        ValueError: for data without ``level`` energies and forces, an empty or leaking split, or
            ``init_from`` weights of another architecture, before any training.
    """
    if not 0 <= energy_weight <= 1:
        raise ValueError(f"energy_weight must lie in [0, 1], got {energy_weight!r}.")
    level_name = get_level(level).name
    images = _images(data)
    if len(images) < 3:
        raise ValueError(f"Need at least 3 labelled structures to split into train/val/test, got {len(images)}.")
    require_level(images, level_name)
    config = copy.deepcopy(config) if config is not None else ModelConfig()
    elements = elements_of(images)
    if config.elements is not None and config.elements != elements:
        raise ValueError(f"config.elements={config.elements} but the training data holds {elements}; leave it "
                         f"None, training fills it in.")
    config.elements = elements
    n_all = len(images)
    fixed = check_split(split, n_all) if split is not None else None
    if fixed is not None:
        check_no_leak(fixed, images)
        n_tr, n_va = len(fixed[keys.SPLIT_TRAIN]), len(fixed[keys.SPLIT_VAL])
    else:
        n_tr, n_va = _counts(n_train, n_val, n_all)
    extra = list(callbacks or [])
    bad = [type(c).__name__ for c in extra if not isinstance(c, pl.Callback)]
    if bad:
        raise ValueError(f"callbacks must be Lightning callbacks (pytorch_lightning.Callback), got {bad}.")
    dev = resolve_device(device)
    placement = trainer_placement(dev, devices, num_nodes)
    torch.manual_seed(seed)  # the initial weights follow the seed, not whatever ran before in the process
    model = build_model(config)
    start = _initial_state(init_from, config, model) if init_from is not None else None
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(seed, verbose=False)

    db_path = workdir / "train.db"
    write_spk_database(images, db_path, level_name, target=True, overwrite=True)
    split_file = workdir / "split.npz"
    if split_file.exists():
        split_file.unlink()
    if fixed is not None:
        np.savez(split_file, **{f"{k}_idx": np.asarray(fixed[k], dtype=int) for k in SPLIT_NAMES})
    with _quiet(not progress):
        dm = spk.data.AtomsDataModule(
            str(db_path),
            batch_size=batch_size,
            num_train=n_tr,
            num_val=n_va,
            num_test=n_all - n_tr - n_va,
            split_file=str(split_file),
            transforms=[
                trn.MatScipyNeighborList(cutoff=config.cutoff),
                trn.RemoveOffsets(keys.ENERGY, remove_mean=True, remove_atomrefs=False),
                trn.CastTo32(),
            ],
            num_workers=0,
            pin_memory=dev.type == "cuda",
        )
        with contextlib.chdir(workdir):  # SchNetPack writes its "splitting.lock" into the working directory
            dm.prepare_data()
            dm.setup()
        used = np.load(split_file)
        used_split = {k: used[f"{k}_idx"].astype(int).tolist() for k in SPLIT_NAMES}
        check_no_leak(used_split, images)

        if start is not None:
            model.load_state_dict(start)
        outputs = [
            spk.task.ModelOutput(
                name=name, loss_fn=torch.nn.MSELoss(), loss_weight=weight,
                metrics={"MAE": torchmetrics.MeanAbsoluteError(), "MeanSignedError": MeanSignedError()},
            )
            for name, weight in ((keys.ENERGY, energy_weight), (keys.FORCES, 1 - energy_weight))
        ]
        task = SyncedTask(
            model=model,
            outputs=outputs,
            optimizer_cls=torch.optim.AdamW,
            optimizer_args={"lr": lr},
            scheduler_cls=spk.train.ReduceLROnPlateau,
            scheduler_args={"factor": 0.5, "patience": 20, "min_lr": 1e-6},
            scheduler_monitor=keys.HISTORY_VAL_LOSS,
        )
        keep = _KeepBest()
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            max_time=timedelta(seconds=max_time_s) if max_time_s else None,
            **placement,
            # tqdm rather than Lightning's default rich bar, whose live display swallows later cell output in Jupyter
            callbacks=[keep, *extra] + ([pl.callbacks.TQDMProgressBar(refresh_rate=10)] if progress else []),
            logger=pl.loggers.CSVLogger(str(workdir), name="lightning"),
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            log_every_n_steps=1,
            inference_mode=False,  # forces need autograd during validation
        )
        t0 = time.perf_counter()
        with contextlib.chdir(workdir):
            trainer.fit(task, datamodule=dm)
    wall = time.perf_counter() - t0
    if not trainer.is_global_zero:  # DDP: rank 0 refits, evaluates and saves
        return TrainResult(model=model.eval(), config=config, history=keep.history)
    if keep.state is not None:
        model.load_state_dict(keep.state)
    model.eval()
    shift = refit_energy_offset(model, dm.train_dataloader())
    loaders = {keys.SPLIT_TRAIN: dm.train_dataloader, keys.SPLIT_VAL: dm.val_dataloader,
               keys.SPLIT_TEST: dm.test_dataloader}
    errors = {k: split_errors(model, loaders[k](), shift) for k in SPLIT_NAMES if used_split[k]}

    best = min(keep.history, key=lambda m: m.get(keys.HISTORY_VAL_LOSS, np.inf)) if keep.history else {}
    config.metadata.update(
        {
            keys.META_LEVEL: level_name,
            keys.META_LEVELS: levels_in(images),
            keys.META_DATA_FILE: data_file_name(data),
            keys.META_DATASET_SHA256: dataset_sha256(images, level_name),
            keys.META_N_STRUCTURES: n_all,
            keys.META_SPLIT: used_split,
            keys.META_EPOCHS: int(trainer.current_epoch),  # completed epochs
            keys.META_TRAIN_WALL_TIME: round(wall, 1),
            keys.META_DEVICE: str(dev) if devices * num_nodes == 1 else f"{dev} × {devices * num_nodes} (DDP)",
            keys.META_BEST_VAL_ENERGY_MAE: best.get(keys.HISTORY_VAL_ENERGY_MAE),
            keys.META_BEST_VAL_ENERGY_SIGNED: best.get(keys.HISTORY_VAL_ENERGY_SIGNED),
            keys.META_BEST_VAL_FORCES_MAE: best.get(keys.HISTORY_VAL_FORCES_MAE),
            keys.META_BEST_VAL_FORCES_SIGNED: best.get(keys.HISTORY_VAL_FORCES_SIGNED),
            keys.META_ENERGY_OFFSET_REFIT: shift,
            keys.META_ERRORS: errors,
            keys.META_SCHNETPACK_VERSION: spk.__version__,
            keys.META_TORCH_VERSION: torch.__version__,
        }
    )
    result = TrainResult(model=model, config=config, history=keep.history)
    if save_to is not None:
        result.directory = save_model(model, config, save_to)
        (Path(save_to) / "history.json").write_text(json.dumps(keep.history, indent=1) + "\n")
    return result
