"""Training on several GPUs (or CPU processes) with Lightning's DDP, and the one change SchNetPack's task needs there.

:func:`mlipviz.potential.train_potential` takes ``devices`` and ``num_nodes``; with more than one process it trains
with Lightning's ``DDPStrategy``: each process holds a copy of the model, sees its share of every batch, and the
gradients are averaged before each step. No distributed code of mlipviz's own runs; Lightning starts the processes
(or finds them started by SLURM) and sets up the process group.

SchNetPack's ``AtomisticTask`` logs ``val_loss`` without ``sync_dist``, so under DDP every rank would see the loss of
its own share of the validation set. The learning-rate schedule (``ReduceLROnPlateau`` on ``val_loss``) would then
halve the rate on different ranks at different epochs, and the ranks' weights would drift apart although their
gradients are averaged. :class:`SyncedTask` logs ``val_loss`` averaged over ranks instead; the other metrics are
torchmetrics objects, which Lightning already reduces over ranks.

A SLURM launch on one node with four GPUs::

    #!/bin/bash
    #SBATCH --nodes=1
    #SBATCH --ntasks-per-node=4      # one task per GPU: Lightning reads SLURM's variables
    #SBATCH --gpus-per-node=4
    #SBATCH --cpus-per-task=8
    #SBATCH --time=04:00:00
    srun .venv/bin/python train.py   # train.py calls train_potential(..., devices=4, num_nodes=1)

With several nodes, set ``--nodes=N`` and ``num_nodes=N``. Only rank 0 refits the energy offset, measures the
splits' errors and writes the model; the other ranks return their copy of the trained network without them.

References:
    Li et al., PyTorch Distributed, VLDB 13, 3005 (2020), arXiv:2006.15704 (DDP).
"""

from __future__ import annotations

import schnetpack as spk
import torch

from .. import keys

__all__ = ["SyncedTask", "trainer_placement"]


class SyncedTask(spk.task.AtomisticTask):
    """SchNetPack's ``AtomisticTask`` whose validation loss is averaged over DDP ranks (a no-op with one process)."""

    def log(self, name, value, *args, **kwargs):
        if name == keys.HISTORY_VAL_LOSS:
            kwargs["sync_dist"] = True
        return super().log(name, value, *args, **kwargs)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def trainer_placement(device: torch.device, devices: int = 1, num_nodes: int = 1) -> dict:
    """Lightning ``Trainer`` arguments that place training on ``devices`` processes per node and ``num_nodes`` nodes.

    Args:
        device: The resolved torch device ("cuda" trains on GPUs, one per process; "cpu" on CPU processes).
        devices: Processes (GPUs) per node.
        num_nodes: Nodes.

    Returns:
        ``accelerator``, ``devices``, ``num_nodes`` and ``strategy`` ("ddp" with more than one process).

    Raises:
        ValueError: for a count that is not a positive integer, or more GPUs per node than this node has.
    """
    devices, num_nodes = _positive_int(devices, "devices"), _positive_int(num_nodes, "num_nodes")
    if device.type == "cuda" and devices > torch.cuda.device_count():
        raise ValueError(f"devices={devices} GPUs per node, but this node has {torch.cuda.device_count()}.")
    many = devices * num_nodes > 1
    return {"accelerator": "gpu" if device.type == "cuda" else "cpu", "devices": devices, "num_nodes": num_nodes,
            "strategy": "ddp" if many else "auto"}
