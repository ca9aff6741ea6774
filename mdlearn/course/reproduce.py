"""``mdlearn reproduce``: the whole chain of the paper's Table 1 or 2, run as the book's chapters (Chapter 9).

The chain is the chapters themselves, executed with papermill and kept as the record::

    prepare   the data: --dataset indoor generates the synthetic rooms unless current, --dataset
              street the synthetic street drives (and prepares them as `prepare kitti-raw`
              would); --dataset nyu takes the folders `mdlearn prepare nyu-raw` (training) and
              `mdlearn prepare nyu-labeled` (test) wrote from the real downloads, --dataset kitti
              a `mdlearn prepare kitti-raw` output (its train and test splits)
    coarse    chapters/06_the_coarse_network   (trains or loads the coarse stage)
    fine      chapters/07_the_fine_network     (trains or loads the fine stage)
    evaluate  chapters/09_evaluation           (writes results.json: metrics, per-image statistics,
                                               bootstrap intervals over test images)

The KITTI datasets run the same chapters with the family's recipe of the preset
(:data:`mdlearn.runs.PRESET_RECIPES`): chapters 6 and 7 with ``recipe``, chapter 9 with
``kitti_recipe`` (its Table 1 half still runs the preset's NYU recipe; at ``smoke`` that costs
seconds). Then ``table1.md`` / ``table1.json`` (NYU family) or ``table2.md`` / ``table2.json``
(KITTI): the paper's published columns beside this book's Mean, Coarse and Coarse+Fine with their
95 % intervals and the difference to the paper per metric
(:func:`mdlearn.reproduction.comparison_table`), computed from ``results.json``'s per-image
statistics. The output folder::

    OUT/index.json           manifest (format mdlearn-reproduce): settings, steps, wall times
    OUT/notebooks/*.ipynb    the executed chapters, with every output
    OUT/results.json         what chapter 9 measured
    OUT/table1.md, .json     the comparison (table2.md, .json for kitti and street)

``OUT`` is written complete or not at all (staged as ``OUT.partial-<pid>``), and an existing
``OUT`` is replaced only if this command wrote it and ``--overwrite`` is given.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MdlearnError, UsageError
from .presets import PRESETS

__all__ = ["REPRODUCE_FORMAT", "DATASETS", "CHAIN", "reproduce"]

#: The ``format`` of the manifest ``mdlearn reproduce`` writes.
REPRODUCE_FORMAT = "mdlearn-reproduce"
#: What each ``--dataset`` is, and whether it runs yet (None) or why not.
DATASETS: dict[str, dict[str, Any]] = {
    "indoor": {"family": "nyu", "synthetic": True, "table": "nyu", "missing": None},
    "nyu": {"family": "nyu", "synthetic": False, "table": "nyu", "missing": None},
    "street": {"family": "kitti", "synthetic": True, "table": "kitti", "missing": None},
    "kitti": {"family": "kitti", "synthetic": False, "table": "kitti", "missing": None},
}
#: The chapters that make the chain, in order, with the step each stands for.
CHAIN = (("coarse", "06_the_coarse_network"), ("fine", "07_the_fine_network"), ("evaluate", "09_evaluation"))


def _say(log: Callable[[str], None] | None, text: str) -> None:
    if log is not None:
        log(text)


def _prepared_folders(dataset: str, train_data, test_data) -> tuple[Path | None, Path | None]:
    """The training and test folders of ``--dataset nyu`` or ``kitti`` (absolute: the chapters run
    elsewhere). A ``prepare kitti-raw`` output holds both splits: ``--test-data`` defaults to it."""
    if dataset not in ("nyu", "kitti"):
        if train_data is not None or test_data is not None:
            raise UsageError(f"--train-data / --test-data are for --dataset nyu or kitti, not {dataset}")
        return None, None
    if dataset == "kitti":
        from ..runs import check_data_folder

        if train_data is None:
            raise UsageError("--dataset kitti needs --train-data (the folder `mdlearn prepare kitti-raw` wrote; "
                             "its test split is the test set unless --test-data names another)")
        train = Path(train_data).resolve()
        test = Path(test_data).resolve() if test_data is not None else train
        for folder, split, flag in ((train, "train", "--train-data"), (test, "test", "--test-data")):
            try:
                check_data_folder("kitti", folder, split)
            except UsageError as e:
                raise UsageError(f"{flag} {e}") from None
        return train, test
    if train_data is None or test_data is None:
        raise UsageError("--dataset nyu needs --train-data (a folder of `mdlearn prepare nyu-raw`) and "
                         "--test-data (the test folder of `mdlearn prepare nyu-labeled`)")
    train, test = Path(train_data).resolve(), Path(test_data).resolve()
    if not ((train / "train_files_with_gt.txt").is_file() or (train / "files_with_gt.txt").is_file()):
        raise UsageError(f"--train-data {train_data}: no train_files_with_gt.txt or files_with_gt.txt there "
                         "(run `mdlearn prepare nyu-raw` first)")
    if not (test / "test_files_with_gt.txt").is_file():
        raise UsageError(f"--test-data {test_data}: no test_files_with_gt.txt there (pass the test folder "
                         "`mdlearn prepare nyu-labeled` wrote)")
    return train, test


def reproduce(dataset: str, preset: str, out: str | os.PathLike, *, train_data: str | os.PathLike | None = None,
              test_data: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True,
              log: Callable[[str], None] | None = None) -> Path:
    """Run the chain for ``dataset`` at ``preset`` into the folder ``out``; return ``out/table1.md``
    (``out/table2.md`` for ``kitti`` and ``street``).

    ``--dataset nyu`` trains on ``train_data`` (a folder of ``mdlearn prepare nyu-raw``, or any
    NYU sync-layout folder with a training list) and tests on ``test_data`` (a folder with a
    ``test_files_with_gt.txt``: the test folder of ``mdlearn prepare nyu-labeled``).
    ``--dataset kitti`` trains on the train split of ``train_data`` (a ``mdlearn prepare
    kitti-raw`` output) and tests on the test split of ``test_data`` (default: the same folder).

    Raises :class:`~mdlearn.errors.UsageError` for an unknown or not yet available dataset, an
    unknown preset, or an ``out`` that holds anything this command did not write (or that it
    wrote, without ``overwrite``); :class:`~mdlearn.errors.MdlearnError` when a chapter fails:
    ``out`` is left as it was, and the failed notebook is kept as ``OUT.failed-<chapter>.ipynb``
    (the message names it and gives papermill's last line).
    """
    from .. import recipes
    from ..datasets import ensure_dataset
    from ..jobs import check_output_folder, staged_folder, write_atomically, write_json_atomically, write_manifest
    from ..reproduction import comparison_table, read_results, recipe_data_root
    from ..runs import PRESET_RECIPES
    from .book import package_hash
    from .chapters import run_chapter

    if dataset not in DATASETS:
        raise UsageError(f"unknown --dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    info = DATASETS[dataset]
    if info["missing"]:
        raise UsageError(f"reproduce --dataset {dataset}: not available yet: {info['missing']}")
    train_root, test_root = _prepared_folders(dataset, train_data, test_data)
    out = check_output_folder(out, REPRODUCE_FORMAT, overwrite)
    recipe = recipes.get_recipe(PRESET_RECIPES[info["family"]][preset])
    kitti = info["family"] == "kitti"
    name = "table2" if kitti else "table1"
    steps: list[dict[str, Any]] = []
    start = time.perf_counter()
    n = len(CHAIN) + 2

    def done(step: str, what: str, t0: float) -> None:
        steps.append({"step": step, "what": what, "seconds": round(time.perf_counter() - t0, 1)})
        _say(log, f"[{len(steps)}/{n}] {step}: {what} ({time.perf_counter() - t0:.0f} s; "
                  f"{time.perf_counter() - start:.0f} s in all)")

    with staged_folder(out) as tmp:
        t0 = time.perf_counter()
        if train_root is None:
            root = recipe_data_root(recipe) if kitti else ensure_dataset(recipe.dataset, progress=progress)
            done("prepare", f"dataset {recipe.dataset} ready in {root}", t0)
        else:
            done("prepare", f"prepared folders: training {train_root}, test {test_root}", t0)
        results = tmp / "results.json"
        data_params = {} if train_root is None else {"data_root": str(train_root), "test_root": str(test_root)}
        for step, chapter in CHAIN:
            t0 = time.perf_counter()
            params = dict(data_params)
            if kitti and step != "evaluate":
                params["recipe"] = recipe.name
            elif kitti:  # chapter 9: Table 2 from the KITTI recipe; its Table 1 half keeps the NYU default
                params = {"kitti_recipe": recipe.name, "table2_file": str(results),
                          "kitti_synthetic": info["synthetic"]}
                if train_root is not None:
                    params.update(kitti_root=str(train_root), kitti_test_root=str(test_root))
            elif step == "evaluate":  # Table 1 only: chapter 9's Table 2 half (KITTI) is not trained
                params.update(results_file=str(results), synthetic=info["synthetic"], kitti_recipe="")
            nb = tmp / "notebooks" / f"{chapter}.ipynb"
            _say(log, f"[{len(steps) + 1}/{n}] {step}: executing {chapter} (preset {preset})")
            try:
                run_chapter(chapter, preset, output=nb, params=params, progress=progress)
            except Exception as e:  # papermill's PapermillExecutionError and kernel failures
                if isinstance(e, (UsageError, MdlearnError)):
                    raise
                reason = str(e).strip().splitlines()
                kept = out.with_name(f"{out.name}.failed-{chapter}.ipynb")
                if nb.is_file():
                    shutil.copyfile(nb, kept)
                raise MdlearnError(f"reproduce: chapter {chapter} failed at preset {preset} (executed notebook: "
                                   f"{kept}): {reason[-1] if reason else type(e).__name__}") from None
            done(step, f"{chapter} executed -> notebooks/{nb.name}", t0)
        if not results.is_file():
            raise MdlearnError(f"reproduce: {CHAIN[-1][1]} wrote no {results.name}")
        t0 = time.perf_counter()
        data, methods = read_results(results)
        md, js = comparison_table(methods, table=info["table"], synthetic=info["synthetic"],
                                  data_label=data["data_label"], n_resamples=data["bootstrap"]["n_resamples"],
                                  seed=data["bootstrap"]["seed"])
        js.update({"dataset": dataset, "preset": preset, "results": "results.json"})
        write_atomically(tmp / f"{name}.md", lambda p: p.write_text(md + "\n"))
        write_json_atomically(tmp / f"{name}.json", js)
        done("table", f"{name}.md and {name}.json written from results.json", t0)
        spec = {"dataset": dataset, "preset": preset, "recipe": recipe.name,
                "train_data": str(train_root) if train_root else None,
                "test_data": str(test_root) if test_root else None}
        write_manifest(tmp, REPRODUCE_FORMAT, spec,
                       package_hash(), steps=steps, seconds=round(time.perf_counter() - start, 1),
                       chapters=[c for _, c in CHAIN])
    return out / f"{name}.md"

