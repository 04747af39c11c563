"""Training with Lightning's DDP on two CPU processes (gloo), and the placement arguments."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mlipviz.potential.distributed import trainer_placement

SCRIPT = textwrap.dedent('''
    import hashlib, os, sys
    import torch
    from mlipviz.dataset import load_images, water_dataset_path
    from mlipviz.potential import ModelConfig, train_potential

    out = sys.argv[1]
    images = load_images(water_dataset_path())[:40]
    result = train_potential(images, config=ModelConfig(n_atom_basis=8, n_interactions=1), workdir=out + "/work",
                             save_to=out + "/model", max_epochs=3, batch_size=4, lr=1e-3, progress=False,
                             device="cpu", devices=2)
    rank = os.environ.get("LOCAL_RANK", "0")
    digest = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes()
                                     for k, v in sorted(result.model.state_dict().items())
                                     if not k.startswith("postprocessors"))).hexdigest()
    with open(f"{out}/rank_{rank}.txt", "w") as f:
        f.write(digest + " " + str(bool(result.config.metadata)))
''')


def test_placement_picks_ddp_only_for_several_processes():
    cpu = torch.device("cpu")
    assert trainer_placement(cpu)["strategy"] == "auto"
    assert trainer_placement(cpu, devices=2) == {"accelerator": "cpu", "devices": 2, "num_nodes": 1, "strategy": "ddp"}
    assert trainer_placement(cpu, devices=1, num_nodes=2)["strategy"] == "ddp"
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="devices must be a positive integer"):
            trainer_placement(cpu, devices=bad)
    with pytest.raises(ValueError, match="num_nodes must be a positive integer"):
        trainer_placement(cpu, num_nodes=0)
    if not torch.cuda.is_available():
        assert trainer_placement(cpu, devices=4)["accelerator"] == "cpu"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_keeps_the_ranks_in_step(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = {r: (tmp_path / f"rank_{r}.txt").read_text().split() for r in ("0", "1")}
    # Both processes trained: their weights agree (averaged gradients, one learning rate), and only rank 0
    # measured, refitted and saved (its config carries metadata, rank 1's does not).
    assert ranks["0"][0] == ranks["1"][0]
    assert ranks["0"][1] == "True" and ranks["1"][1] == "False"
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert "DDP" in config["metadata"]["device"] and config["metadata"]["epochs"] == 3
    from mlipviz.potential import load_model

    model, _ = load_model(tmp_path / "model", device="cpu")
    saved = hashlib.sha256(b"".join(v.numpy().tobytes() for k, v in sorted(model.state_dict().items())
                                    if not k.startswith("postprocessors"))).hexdigest()
    assert saved == ranks["0"][0]


def test_synced_task_averages_only_the_validation_loss_over_ranks(monkeypatch):
    import pytorch_lightning as pl

    from mlipviz.potential import ModelConfig, build_model
    from mlipviz.potential.distributed import SyncedTask

    seen = {}
    monkeypatch.setattr(pl.LightningModule, "log", lambda self, name, value, *a, **k: seen.__setitem__(name, k))
    task = SyncedTask(model=build_model(ModelConfig(n_atom_basis=4, n_interactions=1)), outputs=[],
                      optimizer_cls=torch.optim.AdamW, optimizer_args={"lr": 1e-3})
    task.log("val_loss", torch.tensor(1.0), on_epoch=True)
    task.log("train_loss", torch.tensor(1.0), on_step=True)
    assert seen["val_loss"]["sync_dist"] is True
    assert "sync_dist" not in seen["train_loss"]
