"""Fu et al.'s stability protocol on rMD17 ethanol: force error against time to collapse, on mlipviz's batched MD.

Trains a PaiNN on the 1,000-frame rMD17 ethanol train split (50 of them for validation) for a wall-time budget,
measures its energy and force MAE on the 1,000-frame test split, then runs Fu et al.'s protocol with
:func:`mlipviz.md.fu_protocol`: N replicas in one batch, Nosé–Hoover at 500 K, 0.5 fs, each stopped at the first
frame where a bond leaves its mean over the training frames by more than 0.5 Å. It reports the survival at the
horizon, the time to failure of each replica and the h(r) MAE of the frames each replica ran against the rMD17 test
frames (themselves from a 500 K MD).

Fu et al. ran 300 ps; on a CPU the default horizon is shorter, and the table says which one ran. rMD17 is read
from ``--data`` (a directory with ``rmd17_ethanol_{train,test}_01.npz``); the script refuses to run without it.

    python benchmarks/fu_stability.py --data DIR [--quick] [--train-minutes 20] [--horizon-ps 20]
                                      [--replicas 8] [--device auto] [--json PATH]

Reference:
    Fu et al., "Forces are not enough", TMLR 2023, arXiv:2210.07237 (DimeNet on aspirin: force MAE 9.95 meV/Å,
    collapse at 37.65 ps).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)

from mlipviz.dataset import RMD17_LEVEL, load_rmd17, rmd17_split_file  # noqa: E402
from mlipviz.device import resolve_device  # noqa: E402
from mlipviz.md import fu_protocol, h_r, h_r_mae  # noqa: E402
from mlipviz.potential import MLIPCalculator, ModelConfig, train_potential  # noqa: E402

from md_throughput import machine_line  # noqa: E402  (beside this script)
from _model_errors import test_set_errors  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with rmd17_ethanol_*_01.npz")
    p.add_argument("--quick", action="store_true", help="3 min of training, 4 replicas, 2 ps (2 cores: ~8 min)")
    p.add_argument("--train-minutes", type=float, default=20.0)
    p.add_argument("--horizon-ps", type=float, default=20.0)
    p.add_argument("--replicas", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.quick:
        args.train_minutes, args.horizon_ps, args.replicas = 3.0, 2.0, 4
    if not args.data.is_dir():
        raise SystemExit(f"no rMD17 data at {args.data}: pass --data DIR (rMD17 is downloaded by the user).")
    dev = resolve_device(args.device)
    t_start = time.perf_counter()
    train = load_rmd17(rmd17_split_file(args.data, "ethanol", "train"))
    test = load_rmd17(rmd17_split_file(args.data, "ethanol", "test"))

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "painn_ethanol"
        t0 = time.perf_counter()
        res = train_potential(train, level=RMD17_LEVEL, config=ModelConfig(n_atom_basis=64, n_interactions=3),
                              workdir=Path(tmp) / "train", save_to=model_dir, n_train=950, n_val=50,
                              max_epochs=10_000, max_time_s=60 * args.train_minutes, device=str(dev),
                              progress=False)
        train_s = time.perf_counter() - t0
        errors = test_set_errors(MLIPCalculator(model_dir, device=dev), test, RMD17_LEVEL)
        t0 = time.perf_counter()
        run = fu_protocol(model_dir, train[0], train, horizon_ps=args.horizon_ps, n_replicas=args.replicas,
                          device=str(dev), progress=False)
        md_s = time.perf_counter() - t0
    epochs = len(res.history)
    hr_ref = h_r(test)
    alive = [k for k, r in enumerate(run.reports) if r.n_frames > 1]
    hr_mae = [h_r_mae(h_r(run.result.trajectory(k)), hr_ref) for k in alive]
    ttf = run.time_to_failure_ps
    out = {
        "machine": machine_line(),
        "device": str(dev),
        "quick": args.quick,
        "model": "PaiNN 64 features × 3 interactions, cutoff 5 Å",
        "train_minutes_budget": args.train_minutes, "train_s": train_s, "epochs": epochs,
        **errors,
        "protocol": f"Nosé–Hoover 500 K, 0.5 fs, {args.replicas} replicas, horizon {run.horizon_ps:g} ps "
                    "(Fu et al.: 300 ps), tolerance 0.5 Å",
        "horizon_ps": run.horizon_ps, "replicas": args.replicas, "failed": run.n_failed,
        "survival_at_horizon": run.survival.at(run.horizon_ps * 1e3),
        "time_to_failure_ps": [None if np.isnan(t) else float(t) for t in ttf],
        "failures": {int(k): v[1] for k, v in run.result.stopped.items()},
        "mlipaudit_scores": None if run.audit is None else [a.score for a in run.audit],
        "h_r_mae_vs_rmd17_test": float(np.mean(hr_mae)) if hr_mae else None,
        "md_s": md_s, "ms_per_replica_step": run.result.ms_per_replica_step,
        "wall_s": time.perf_counter() - t_start,
    }
    print(f"\nFu et al. stability, rMD17 ethanol — {out['machine']}, device {out['device']}")
    print(f"  training: {train_s / 60:.1f} min, {epochs} epochs (budget {args.train_minutes:g} min)")
    print(f"  test split (1000 frames): energy MAE {errors['energy_mae_meV']:.2f} meV "
          f"(signed {errors['energy_signed_meV']:+.2f}), force MAE {errors['forces_mae_meV_per_A']:.2f} meV/Å "
          "(published PaiNN: 2.7 / 10.0)")
    print(f"  {out['protocol']}")
    print(f"  {run.summary()}")
    print(f"  survival at {run.horizon_ps:g} ps: {out['survival_at_horizon']:.2f}; time to failure (ps): "
          + ", ".join("—" if t is None else f"{t:.2f}" for t in out["time_to_failure_ps"]))
    if out["h_r_mae_vs_rmd17_test"] is not None:
        print(f"  h(r) MAE against the rMD17 test frames: {out['h_r_mae_vs_rmd17_test']:.4f}")
    print(f"  MD: {md_s:.0f} s, {out['ms_per_replica_step']:.2f} ms per replica-step; total {out['wall_s'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
