"""Accuracy calibration of a training recipe: train both stages, print Table 1 against the Mean baseline.

Not a speed benchmark (``run_all.py`` runs only ``bench_*.py``): it answers whether a recipe reaches
the chapters' target (Coarse+Fine better than Mean on every metric, by >= 35 % on average) and how
fast it trains here. Checkpoints go to a temporary folder; the recipe's cached ones are untouched.

Run: .venv/bin/python benchmarks/calibrate_recipe.py --coarse 22000 --fine 12000 [--recipe book]
     [--set lr=0.001] [--set aug_degrees=0]        (any Recipe field, as a Python literal)
"""

from __future__ import annotations

import argparse
import ast
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="book")
    ap.add_argument("--coarse", type=int, required=True, help="coarse-stage samples")
    ap.add_argument("--fine", type=int, required=True, help="fine-stage samples (0: coarse only)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a Recipe field")
    args = ap.parse_args()
    from mdlearn import recipes
    from mdlearn.train import model_from_checkpoint

    over = {}
    for item in args.set:
        k, _, v = item.partition("=")
        over[k] = ast.literal_eval(v)
    rec = recipes.get_recipe(args.recipe, name=f"{args.recipe}-calibration", coarse_samples=args.coarse,
                             fine_samples=args.fine, **over)
    test = recipes.training_data(rec, "test")
    gts = recipes.targets(test)
    mean = np.broadcast_to(recipes.mean_log_depth(recipes.training_data(rec, "train", augment=False)), gts.shape)
    results = {"Mean": recipes.evaluate(mean, gts)}
    with tempfile.TemporaryDirectory() as tmp:
        init = None
        for stage, n in (("coarse", args.coarse), ("fine", args.fine)):
            if n == 0:  # --fine 0: the coarse stage only
                continue
            out = Path(tmp) / f"{stage}.pt"
            t = time.perf_counter()
            recipes.train_stage(rec, stage, out, init=init, progress=False)
            dt = time.perf_counter() - t
            print(f"{stage}: {n} samples in {dt:.0f} s = {n / dt:.1f} samples/s", flush=True)
            pred = recipes.predict(model_from_checkpoint(out), test, scale=stage)
            results["Coarse" if stage == "coarse" else "Coarse+Fine"] = recipes.evaluate(pred, gts)
            init = out
    print(recipes.format_results(results))
    for k in [k for k in ("Coarse", "Coarse+Fine") if k in results]:
        gain = recipes.relative_improvement(results[k], results["Mean"])
        worse = [m for m, v in gain.items() if v <= 0]
        print(f"{k}: average improvement over Mean {100 * np.mean(list(gain.values())):+.1f} %"
              + (f"; not better on {', '.join(worse)}" if worse else "; better on all eight"))


if __name__ == "__main__":
    main()
