"""Train a SchNetPack potential on energies and forces from an extxyz file or a list of structures.

Training goes through SchNetPack's ``AtomisticTask`` and a PyTorch Lightning ``Trainer``: checkpoints,
early stopping, a time budget (``max_time_s``) for CPU sessions, and the GPU when one is present.

The loss is ρ·MSE(E) + (1-ρ)·MSE(F) on per-structure energies (eV) and force components (eV/Å), with
ρ = ``energy_weight``.

References:
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import schnetpack as spk
import schnetpack.transform as trn
import torch
import torchmetrics
from ase import Atoms

from .. import keys
from ..data import load_images
from ..device import resolve_device
from ..reference.levels import get_level
from .model import ModelConfig, build_model, save_model

__all__ = ["TrainResult", "train_potential", "to_spk_dataset"]


@dataclass
class TrainResult:
    """What :func:`train_potential` returns.

    Attributes:
        model: The trained model (best validation loss), eval mode.
        config: Its :class:`ModelConfig`; ``config.metadata`` records level, split, metrics and timing.
        history: Per-epoch validation metrics: ``epoch``, ``val_loss``, ``val_energy_MAE`` (eV),
            ``val_forces_MAE`` (eV/Å).
        directory: Where the model was saved, if anywhere.
    """

    model: torch.nn.Module
    config: ModelConfig
    history: list[dict] = field(default_factory=list)
    directory: Path | None = None


def to_spk_dataset(images: list[Atoms], level: str, path: str | Path) -> spk.data.ASEAtomsData:
    """Write ``images`` labelled at ``level`` into a fresh SchNetPack ``ASEAtomsData`` database.

    Energies go in as ``energy`` (eV) and forces as ``forces`` (eV/Å).

    Raises:
        KeyError: naming the first image that lacks the level's energy or forces.
    """
    lv = get_level(level)
    ek, fk = keys.energy_key(lv.slug), keys.forces_key(lv.slug)
    props = []
    for i, a in enumerate(images):
        if ek not in a.info or fk not in a.arrays:
            raise KeyError(f"image {i} has no {ek!r}/{fk!r}: it was not labelled with forces at {lv.name}.")
        props.append({keys.ENERGY: np.array([a.info[ek]]), keys.FORCES: np.asarray(a.arrays[fk])})
    path = Path(path)
    if path.exists():
        path.unlink()  # a derived file: the extxyz is the source of truth
    db = spk.data.ASEAtomsData.create(
        str(path), distance_unit="Ang", property_unit_dict={keys.ENERGY: "eV", keys.FORCES: "eV/Ang"}
    )
    db.add_systems(props, [Atoms(a.numbers, a.positions) for a in images])
    return db


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
        m["epoch"] = int(trainer.current_epoch)
        self.history.append(m)
        loss = m.get("val_loss", float("inf"))
        if loss < self.best:
            self.best = loss
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}


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
) -> TrainResult:
    """Train a potential on ``level`` labels.

    Args:
        data: An extxyz path, or labelled structures (see :mod:`mlipviz.reference.labelling`).
        level: Which level's energies/forces to learn, e.g. "CCSD(T)/cc-pVDZ".
        config: Architecture; default PaiNN, 64 features, 3 interactions, 5 Å cutoff.
        workdir: Scratch directory for the SchNetPack database, split file and Lightning logs.
        save_to: If given, save the trained model there (``config.json`` + weights-only ``model.pt``).
        n_train: Training structures (count, or fraction of all).
        n_val: Validation structures (count or fraction); the rest is the held-out test set.
        batch_size: Structures per batch.
        lr: AdamW learning rate.
        max_epochs: Epoch limit.
        max_time_s: Wall-clock budget in seconds (Lightning stops cleanly when it runs out).
        energy_weight: ρ in the loss; forces get 1-ρ.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        seed: Seed for the split and the initial weights.
        progress: Show Lightning's progress bar.

    Returns:
        A :class:`TrainResult`. ``config.metadata["split"]`` holds the train/val/test indices into ``data``.
    """
    if not 0 <= energy_weight <= 1:
        raise ValueError(f"energy_weight must lie in [0, 1], got {energy_weight!r}.")
    images = load_images(data) if isinstance(data, (str, Path)) else list(data)
    if len(images) < 3:
        raise ValueError(f"Need at least 3 labelled structures to split into train/val/test, got {len(images)}.")
    config = copy.deepcopy(config) if config is not None else ModelConfig()
    dev = resolve_device(device)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(seed, verbose=False)

    db_path = workdir / "train.db"
    to_spk_dataset(images, level, db_path)
    split_file = workdir / "split.npz"
    if split_file.exists():
        split_file.unlink()
    n_all = len(images)
    n_tr = int(round(n_train * n_all)) if isinstance(n_train, float) else int(n_train)
    n_va = int(round(n_val * n_all)) if isinstance(n_val, float) else int(n_val)
    if n_tr < 1 or n_va < 1 or n_tr + n_va > n_all:
        raise ValueError(f"n_train={n_train!r}, n_val={n_val!r} do not fit {n_all} structures.")
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

    model = build_model(config)
    outputs = [
        spk.task.ModelOutput(
            name=keys.ENERGY, loss_fn=torch.nn.MSELoss(), loss_weight=energy_weight,
            metrics={"MAE": torchmetrics.MeanAbsoluteError()},
        ),
        spk.task.ModelOutput(
            name=keys.FORCES, loss_fn=torch.nn.MSELoss(), loss_weight=1 - energy_weight,
            metrics={"MAE": torchmetrics.MeanAbsoluteError()},
        ),
    ]
    task = spk.task.AtomisticTask(
        model=model,
        outputs=outputs,
        optimizer_cls=torch.optim.AdamW,
        optimizer_args={"lr": lr},
        scheduler_cls=spk.train.ReduceLROnPlateau,
        scheduler_args={"factor": 0.5, "patience": 20, "min_lr": 1e-6},
        scheduler_monitor="val_loss",
    )
    keep = _KeepBest()
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        max_time=timedelta(seconds=max_time_s) if max_time_s else None,
        accelerator="gpu" if dev.type == "cuda" else "cpu",
        devices=1,
        # tqdm rather than Lightning's default rich bar, whose live display swallows later cell output in Jupyter
        callbacks=[keep, pl.callbacks.TQDMProgressBar(refresh_rate=10)] if progress else [keep],
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
    if keep.state is not None:
        model.load_state_dict(keep.state)
    model.eval()

    split = np.load(split_file)
    best = min(keep.history, key=lambda m: m.get("val_loss", np.inf)) if keep.history else {}
    config.metadata.update(
        {
            "level": get_level(level).name,
            "n_structures": n_all,
            "split": {k: split[f"{k}_idx"].astype(int).tolist() for k in ("train", "val", "test")},
            "epochs": int(trainer.current_epoch),  # completed epochs
            "train_wall_time_s": round(wall, 1),
            "device": str(dev),
            "best_val_energy_MAE_eV": best.get(f"val_{keys.ENERGY}_MAE"),
            "best_val_forces_MAE_eV_per_A": best.get(f"val_{keys.FORCES}_MAE"),
            "schnetpack_version": spk.__version__,
            "torch_version": torch.__version__,
        }
    )
    result = TrainResult(model=model, config=config, history=keep.history)
    if save_to is not None:
        result.directory = save_model(model, config, save_to)
        (Path(save_to) / "history.json").write_text(json.dumps(keep.history, indent=1) + "\n")
    return result

