"""The ``mdlearn`` command line: one entry point for every long job of the book.

Introduced in Chapter 1. ``mdlearn --help`` lists the commands; each has its own ``--help``.
Impossible arguments print one line ``mdlearn: error: ...`` and exit with status 2; a failure
while working (an unreadable file, say) exits with status 1 and names the file.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import numpy as np

from .errors import MdlearnError, UsageError

__all__ = ["main", "build_parser"]


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# ------------------------------------------------------------------------------------ synth


def _cmd_synth_indoor(args: argparse.Namespace) -> int:
    from .synthetic.nyu_sync import IndoorSpec, write_indoor_dataset

    spec = IndoorSpec(rooms=args.rooms, views_per_room=args.views_per_room, seed=args.seed,
                      test_fraction=args.test_fraction, resolution=args.resolution, rgb_format=args.rgb_format)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    out = write_indoor_dataset(args.out, spec, workers=args.workers, overwrite=args.overwrite,
                               progress=not args.quiet)
    from .synthetic.nyu_sync import read_index

    counts = read_index(out)["counts"]
    print(f"wrote {counts['views']} views of {counts['rooms']} rooms to {out} "
          f"({counts['train_views']} train, {counts['test_views']} test in {counts['test_rooms']} test rooms)")
    return 0


def _cmd_synth_kitti_raw(args: argparse.Namespace) -> int:
    from .synthetic.kitti_raw import KittiRawSpec, write_kitti_raw

    spec = KittiRawSpec(drives=args.drives, frames_per_drive=args.frames_per_drive, seed=args.seed,
                        resolution=args.resolution, azimuth_steps=args.azimuth_steps)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    out = write_kitti_raw(args.out, spec, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {spec.drives} drives x {spec.frames_per_drive} frames in the KITTI raw layout to {out}")
    return 0


def _cmd_prepare_kitti_raw(args: argparse.Namespace) -> int:
    from .data.kitti_prepare import prepare_kitti_raw

    report = prepare_kitti_raw(args.raw_dir, args.out, variant=args.variant, rule=args.rule, pixel=args.pixel,
                               workers=args.workers, stationary_threshold=args.stationary_speed,
                               overwrite=args.overwrite, progress=not args.quiet)
    print(f"{report.summary()}\n(depth maps in proj_depth/{args.variant}_{args.rule})")
    return report.exit_code


def _cmd_synth_nyu_raw(args: argparse.Namespace) -> int:
    from .synthetic.nyu_raw import KinectSpec, write_nyu_raw

    spec = KinectSpec(scenes=args.scenes, frames_per_scene=args.frames_per_scene, seed=args.seed,
                      resolution=args.resolution)
    out = write_nyu_raw(args.out, spec, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {spec.scenes} scenes x {spec.frames_per_scene} depth frames in the NYU raw layout to {out}")
    return 0


def _cmd_prepare_nyu_raw(args: argparse.Namespace) -> int:
    from .data.nyu_prepare import prepare_nyu_raw

    report = prepare_nyu_raw(args.raw_dir, args.out, workers=args.workers, overwrite=args.overwrite,
                             min_max_mask=not args.no_min_max_mask, rgb_format=args.rgb_format,
                             progress=not args.quiet)
    print(report.summary())
    return report.exit_code


def _cmd_prepare_nyu_labeled(args: argparse.Namespace) -> int:
    from .data.nyu_prepare import prepare_nyu_labeled
    from .jobs import MANIFEST_NAME

    m = prepare_nyu_labeled(args.labeled_mat, args.splits_mat, args.out, rgb_format=args.rgb_format,
                            overwrite=args.overwrite, progress=not args.quiet)
    c = m["counts"]
    print(f"extracted {c['train']} train and {c['test']} test pairs of {c['labeled']} to {args.out} "
          f"({len(m['files'])} files, hashes in {MANIFEST_NAME})")
    return 0


# ------------------------------------------------------------------------------------- data


def _cmd_data_ensure(args: argparse.Namespace) -> int:
    from .datasets import get_dataset

    datasets = [get_dataset(name) for name in (args.names or ["indoor"])]  # all names checked first
    for d in datasets:
        if d.is_ready(args.root):
            print(f"{d.name}: up to date in {d.path(args.root)}")
            continue
        out = d.ensure(args.root, workers=args.workers, progress=not args.quiet)
        print(f"{d.name}: generated in {out}")
    return 0


def _cmd_data_list(args: argparse.Namespace) -> int:
    from .datasets import DATASETS

    width = max(map(len, DATASETS))
    for name, d in DATASETS.items():
        state = "ready" if d.is_ready(args.root) else "not generated"
        print(f"{name:{width}s}  {d.summary()}  [{state}]")
    return 0


# ---------------------------------------------------------------------------------- chapter


def _cmd_chapter_list(args: argparse.Namespace) -> int:
    from .course.chapters import list_chapters, parameters_of

    for c in list_chapters():
        params = parameters_of(c)
        print(f"{c.stem}  (parameters: {', '.join(params)})")
    return 0


def _cmd_chapter_run(args: argparse.Namespace) -> int:
    from .course.chapters import run_chapter

    params = {k: _literal(v) for k, v in (args.param or [])}
    out = run_chapter(args.name, args.preset, output=args.output, params=params, progress=not args.quiet)
    print(f"executed {args.name} with preset {args.preset!r}: {out}")
    return 0


def _cmd_chapter_prepare(args: argparse.Namespace) -> int:
    from .course.chapters import find_chapter, list_chapters, prepare_chapter

    paths = [find_chapter(n) for n in args.names] if args.names else list_chapters()
    for p in paths:
        print(prepare_chapter(p, args.preset, args.out))
    return 0


def _cmd_chapter_check_clean(args: argparse.Namespace) -> int:
    from .course.chapters import list_chapters, notebooks_with_outputs, strip_outputs

    paths = list_chapters()
    if args.fix:
        for p in strip_outputs(paths):
            print(f"stripped outputs from {p}")
        return 0
    bad = notebooks_with_outputs(paths)
    if bad:
        raise MdlearnError("notebooks must be committed without outputs: " + ", ".join(bad)
                           + " (run `mdlearn chapter check-clean --fix`)")
    print(f"{len(paths)} chapters, none with outputs")
    return 0


def _cmd_book_build(args: argparse.Namespace) -> int:
    from .course.book import build_book

    print(f"built {build_book(preset=args.preset, out=args.out)}")
    return 0


def _cmd_book_check(args: argparse.Namespace) -> int:
    import json

    from .course.browser import check_book, format_report
    from .paths import project_root

    if args.html is None:
        root = project_root()
        if root is None:
            raise UsageError("--html is needed outside a clone of the mdlearn repository")
        html = root / "_build" / "html"
    else:
        html = Path(args.html)
    if not (html / "index.html").is_file():
        raise UsageError(f"--html {html}: no built book there (no index.html; run `mdlearn book build`)")
    report = check_book(html, toc=args.toc, min_scale=args.min_scale, screenshots=args.screenshots)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(report.to_dict(), indent=1) + "\n")
        except OSError as e:
            raise MdlearnError(f"--json {args.json}: cannot write ({e.strerror})") from None
    print(format_report(report))
    return 0 if report.ok else 1


# ------------------------------------------------------------------------------ assignments


def _cmd_assignments_build(args: argparse.Namespace) -> int:
    from .course.assignments import build_assignments, read_manifest_summary

    out = build_assignments(args.out, chapters=args.chapters, overwrite=args.overwrite)
    print(read_manifest_summary(out))
    return 0


def _cmd_assignments_grade(args: argparse.Namespace) -> int:
    from .course.assignments import grade_notebook, write_report

    if args.out is not None and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: is a folder; give the JSON file to write")
    report = grade_notebook(args.notebook, source=args.source, chapter=args.chapter,
                            preset=None if args.preset == "own" else args.preset,
                            timeout=args.timeout, cell_timeout=args.cell_timeout, executed=args.executed)
    if args.out is not None:
        try:
            write_report(report, args.out)
        except OSError as e:
            raise MdlearnError(f"--out {args.out}: cannot write ({e.strerror})") from None
    print(report.summary())
    return 0


# ------------------------------------------------------------------------------------ train


def _cmd_train(args: argparse.Namespace) -> int:
    from . import recipes
    from .runs import PRESET_RECIPES, data_family, train_run

    over = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects FIELD=VALUE, got {item!r}")
        over[key.strip()] = _literal(value)
    family = data_family(args.dataset, args.data)
    if args.dataset is not None and args.dataset not in PRESET_RECIPES:  # a named dataset, not a family
        from .datasets import get_dataset

        get_dataset(args.dataset)  # a clear error for an unknown name
        over["dataset"] = args.dataset
    recipe = recipes.get_recipe(PRESET_RECIPES[family][args.preset], **over)
    out = Path(args.out) if args.out else Path("runs") / f"{recipe.name}-{args.stage}"
    final = train_run(out, recipe, args.stage, data_root=args.data, init=args.init, resume=args.resume,
                      checkpoint_every=args.checkpoint_every, progress=not args.quiet, device=args.device)
    from .train import distributed_context

    if distributed_context()[0] == 0:  # under torchrun: one report, from process 0
        print(f"{out}: finished {args.stage} stage -> {final} (curves: tensorboard --logdir {out / 'tensorboard'})")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from .assess import evaluate_network
    from .evaluation import PROTOCOLS
    from .runs import init_distributed

    if args.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {args.protocol!r}; known: {', '.join(PROTOCOLS)}")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.overwrite:
        raise UsageError(f"{out}: exists; refusing to replace it (pass --overwrite)")
    data = args.data
    if data is None:
        from .datasets import ensure_dataset
        from .train import read_checkpoint

        recipe = (read_checkpoint(args.checkpoint).get("meta") or {}).get("recipe") or {}
        name = args.dataset or recipe.get("dataset")
        if not name:
            raise UsageError(f"{args.checkpoint}: records no dataset; pass --data DIR or --dataset NAME")
        data = ensure_dataset(name, progress=not args.quiet)
        if name.startswith("kitti"):  # the drives' sparse depth, as chapter 3 prepares it
            from .data.kitti_prepare import ensure_prepared

            data = ensure_prepared(data, data.with_name(f"{data.name}-prepared"), progress=not args.quiet)
    rank, world = init_distributed()  # under torchrun: each process evaluates its share of the images
    device = args.device
    if world > 1 and device is None:
        import torch

        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    ev = evaluate_network(args.checkpoint, data, args.protocol, split=args.split, scale=args.scale,
                          device=device, progress=not args.quiet)
    if rank != 0:  # every process holds the merged result; process 0 reports and writes
        return 0
    print(ev.result)
    ci = ev.result.confidence_intervals(1000, 0.95, seed=0)
    print("95 % bootstrap intervals over test images: "
          + ", ".join(f"{k} {lo:.3f}-{hi:.3f}" for k, (lo, hi) in ci.items()))
    print(f"{100 * ev.region_in_crop:.1f} % of the network region lies inside the protocol's crop "
          f"(the paper: 86 % on NYU); ground truth: {ev.ground_truth}"
          + (f"; {ev.missing_ground_truth} listed images have none" if ev.missing_ground_truth else ""))
    if out is not None:
        from .jobs import write_json_atomically

        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(out, ev.to_json())
        print(f"wrote {out}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .course.reproduce import reproduce

    table = reproduce(args.dataset, args.preset, args.out, train_data=args.train_data, test_data=args.test_data,
                      overwrite=args.overwrite, progress=not args.quiet,
                      log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table.read_text())
    print(f"wrote {table.parent} (executed chapters in {table.parent / 'notebooks'})")
    return 0


# ------------------------------------------------------------------------- predict / export


def _checkpoint_model(path: str, device: str | None = None):
    from .train import model_from_checkpoint, read_checkpoint

    state = read_checkpoint(path)
    return model_from_checkpoint(path, device=device), state


def _cmd_predict(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .inference import (DOMAIN_NOTE, check_image, checkpoint_intrinsics, load_image, parse_intrinsics,
                            predict_image, write_prediction)

    k = parse_intrinsics(args.intrinsics) if args.intrinsics is not None else None
    stems: dict[str, str] = {}
    for name in args.images:  # check every input before writing anything
        path = Path(name)
        check_image(path)
        if path.stem in stems:
            raise UsageError(f"{path} and {stems[path.stem]} would write the same outputs ({path.stem}.*)")
        stems[path.stem] = str(path)
    model, state = _checkpoint_model(args.checkpoint, args.device)
    scale = args.scale or state["stage"]
    train_k = checkpoint_intrinsics(state)
    if k is None and train_k is None:
        print(f"{args.checkpoint}: records no camera and --intrinsics was not given: no point clouds",
              file=sys.stderr)
    for name in tqdm(args.images, unit="image", disable=args.quiet or len(args.images) < 2):
        pred = predict_image(model, load_image(name), scale=scale, intrinsics=k, input_intrinsics=train_k,
                             source=name)
        written = write_prediction(pred, args.out, Path(name).stem, overwrite=args.overwrite)
        files = ", ".join(str(v) for key, v in written.items() if key != "clipped")
        valid = pred.depth[pred.depth > 0]
        line = f"{name}: {files}"
        if valid.size:
            line += f" (depth {valid.min():.2f}-{valid.max():.2f} m, median {np.median(valid):.2f} m)"
        if "clipped" in written:
            line += f"; {written['clipped']} pixels beyond 65.535 m are 0 in the PNG (kept in the .npy)"
        print(line)
    print(DOMAIN_NOTE)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .inference import export_model

    model, state = _checkpoint_model(args.checkpoint, "cpu")
    scale = args.scale or state["stage"]
    ext = {"onnx": ".onnx", "torchscript": ".pt"}[args.format]
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(f".{scale}{ext}")
    report = export_model(model, out, args.format, scale=scale, overwrite=args.overwrite)
    h, w = report["input"]
    print(f"wrote {out} ({args.format}, {scale} scale, input (B, 3, {h}, {w}) in [0, 1] -> log depth); "
          f"its runtime matches PyTorch within {report['max_abs_diff']:.1e}")
    return 0


# ----------------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_synth_command(sub, name: str, help: str, func, sizes: list[tuple[str, str]],
                       resolution: tuple[float, str] = (1.0, "image size relative to 640x480"),
                       workers: tuple[int | None, str] = (None, "processes (default: one per core)")):
    """A ``synth`` subcommand with the arguments every synthetic world shares."""
    p = sub.add_parser(name, help=help)
    p.add_argument("out", help="output folder (created; must not exist or be empty unless --overwrite)")
    for flag, text in sizes:
        p.add_argument(flag, type=int, required=True, help=text)
    p.add_argument("--seed", type=int, default=0, help="world seed (same seed, same data)")
    p.add_argument("--resolution", type=float, default=resolution[0], help=resolution[1])
    p.add_argument("--workers", type=int, default=workers[0], help=workers[1])
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of this command")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mdlearn`` command (Chapter 1)."""
    from .course.presets import PRESETS
    from .jobs import EXIT_STATUS_HELP

    p = _Parser(prog="mdlearn", description="mdlearn: monocular depth prediction, reproduced and taught.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    synth = sub.add_parser("synth", help="render a synthetic world in a real dataset's on-disk format")
    synth_sub = synth.add_subparsers(dest="world", required=True, parser_class=_Parser)
    ind = _add_synth_command(synth_sub, "indoor", "indoor rooms in the NYU Depth v2 sync layout (Chapter 1)",
                             _cmd_synth_indoor, [("--rooms", "number of distinct rooms"),
                                                 ("--views-per-room", "camera views rendered in each room")])
    ind.add_argument("--test-fraction", type=float, default=0.1, help="fraction of rooms in the test split")
    ind.add_argument("--rgb-format", choices=["png", "jpg"], default="png", help="RGB file format")
    kr = _add_synth_command(synth_sub, "kitti-raw",
                            "street drives with a simulated Velodyne in the KITTI raw layout (Chapter 3)",
                            _cmd_synth_kitti_raw, [("--drives", "number of drives (streets)"),
                                                   ("--frames-per-drive", "frames per drive (10 per second)")],
                            resolution=(0.5, "image size relative to 1242x375"))
    kr.add_argument("--azimuth-steps", type=int, default=2000, help="scanner columns per revolution")
    _add_synth_command(synth_sub, "nyu-raw", "a simulated hand-held Kinect in the NYU Depth v2 raw layout (Chapter 2)",
                       _cmd_synth_nyu_raw, [("--scenes", "number of scenes (rooms)"),
                                            ("--frames-per-scene", "depth frames per scene (about 22 per second)")],
                       workers=(1, "processes (default: 1)"))

    prepare = sub.add_parser("prepare", help="turn raw downloads into training targets")
    prepare_sub = prepare.add_subparsers(dest="dataset", required=True, parser_class=_Parser)
    pk = prepare_sub.add_parser("kitti-raw", help="sparse depth PNGs from the Velodyne scans of KITTI raw drives (Chapter 3)",
                                epilog=EXIT_STATUS_HELP)
    pk.add_argument("raw_dir", help="folder holding DATE/DATE_drive_XXXX_sync drives")
    pk.add_argument("out", help="output folder (resumable per drive: finished drives are kept)")
    pk.add_argument("--variant", choices=["camz", "velx"], default="camz", help="camera z-depth or Velodyne x")
    pk.add_argument("--rule", choices=["time", "nearest"], default="time", help="conflict rule per pixel")
    pk.add_argument("--pixel", choices=["round", "floor", "monodepth2"], default="round", help="pixel rounding")
    pk.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    pk.add_argument("--stationary-speed", type=float, default=0.5, help="m/s below which a frame is flagged stationary")
    pk.add_argument("--overwrite", action="store_true",
                    help="redo every drive (needed to change the settings of an existing output)")
    pk.add_argument("--quiet", action="store_true", help="no progress bar")
    pk.set_defaults(func=_cmd_prepare_kitti_raw)
    pn = prepare_sub.add_parser("nyu-raw", help="NYU raw scene dumps -> the aligned sync layout (Chapter 2)",
                                epilog=EXIT_STATUS_HELP)
    pn.add_argument("raw_dir", help="folder of raw scene folders (r-*.ppm, d-*.pgm, a-*.dump)")
    pn.add_argument("out", help="output folder (resumable: finished scenes are kept)")
    pn.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    pn.add_argument("--no-min-max-mask", action="store_true",
                    help="keep each frame's minimum and maximum depths (the paper masks them)")
    pn.add_argument("--rgb-format", choices=["jpg", "png"], default="jpg", help="RGB file format")
    pn.add_argument("--overwrite", action="store_true",
                    help="redo every scene (needed to change the settings of an existing output)")
    pn.add_argument("--quiet", action="store_true", help="no progress bar")
    pn.set_defaults(func=_cmd_prepare_nyu_raw)
    pl = prepare_sub.add_parser("nyu-labeled", help="the labeled .mat -> 795 train / 654 test sync pairs (Chapter 2)")
    pl.add_argument("labeled_mat", help="nyu_depth_v2_labeled.mat (MATLAB v7.3)")
    pl.add_argument("splits_mat", help="the official splits.mat")
    pl.add_argument("out", help="output folder (must not exist or be empty unless --overwrite)")
    pl.add_argument("--rgb-format", choices=["jpg", "png"], default="jpg", help="RGB file format")
    pl.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    pl.add_argument("--quiet", action="store_true", help="no progress bar")
    pl.set_defaults(func=_cmd_prepare_nyu_labeled)

    data = sub.add_parser("data", help="the book's named datasets")
    data_sub = data.add_subparsers(dest="action", required=True, parser_class=_Parser)
    ens = data_sub.add_parser("ensure", help="generate named datasets unless already up to date")
    ens.add_argument("names", nargs="*", help="dataset names (default: indoor)")
    ens.add_argument("--root", default=None, help="data folder (default: <repo>/data or $MDLEARN_DATA)")
    ens.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    ens.add_argument("--quiet", action="store_true", help="no progress bar")
    ens.set_defaults(func=_cmd_data_ensure)
    dl = data_sub.add_parser("list", help="list the named datasets and whether they are generated")
    dl.add_argument("--root", default=None, help="data folder (default: <repo>/data or $MDLEARN_DATA)")
    dl.set_defaults(func=_cmd_data_list)

    ch = sub.add_parser("chapter", help="run the book's chapters")
    ch_sub = ch.add_subparsers(dest="action", required=True, parser_class=_Parser)
    cl = ch_sub.add_parser("list", help="list chapters and their parameters")
    cl.set_defaults(func=_cmd_chapter_list)
    run = ch_sub.add_parser("run", help="execute a chapter with papermill")
    run.add_argument("name", help="chapter number or name, e.g. 1 or 01_depth_from_a_single_image")
    run.add_argument("--preset", choices=PRESETS, default="book", help="run size (default: book)")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="override one parameter (Python literal), repeatable")
    run.add_argument("-o", "--output", default=None, help="executed notebook (default: _build/runs/NAME-PRESET.ipynb)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_chapter_run)
    prep = ch_sub.add_parser("prepare", help="write copies with a preset injected, unexecuted (for nbval)")
    prep.add_argument("names", nargs="*", help="chapters (default: all)")
    prep.add_argument("--preset", choices=PRESETS, required=True)
    prep.add_argument("--out", required=True, help="folder for the prepared copies")
    prep.set_defaults(func=_cmd_chapter_prepare)
    cc = ch_sub.add_parser("check-clean", help="fail if a committed chapter carries outputs")
    cc.add_argument("--fix", action="store_true", help="strip the outputs instead")
    cc.set_defaults(func=_cmd_chapter_check_clean)

    tr = sub.add_parser("train", help="train one stage of the network into a run folder (Chapter 8)")
    tr.add_argument("--stage", choices=("coarse", "fine"), required=True)
    tr.add_argument("--preset", choices=PRESETS, default="book",
                    help="smoke, book or full (the paper's recipe); default book")
    tr.add_argument("--dataset", default=None,
                    help="nyu, kitti, or a named dataset of `mdlearn data list` (default: the preset's NYU one, or the "
                         "family of the --data folder)")
    tr.add_argument("--data", default=None,
                    help="a dataset folder: the NYU sync layout, or a `prepare kitti-raw` output (KITTI)")
    tr.add_argument("--init", default=None, help="fine stage: the coarse checkpoint or finished coarse run folder")
    tr.add_argument("--out", default=None, help="run folder (default: runs/RECIPE-STAGE)")
    tr.add_argument("--resume", action="store_true", help="continue the unfinished run in --out exactly")
    tr.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a recipe field, e.g. --set coarse_samples=20000 (repeatable)")
    tr.add_argument("--checkpoint-every", type=int, default=200, help="optimiser steps between checkpoints")
    tr.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="a checkpoint on a test set at full resolution under a protocol (Chapter 9)")
    ev.add_argument("--checkpoint", required=True, help="a trained mdlearn checkpoint (.pt)")
    ev.add_argument("--data", default=None,
                    help="the test set: an NYU sync-layout folder, or a `prepare kitti-raw` output (KITTI)")
    ev.add_argument("--dataset", default=None, help="a named dataset (default: the checkpoint's training set)")
    ev.add_argument("--protocol", default="nyu_paper", help="a protocol of mdlearn.evaluation (default: nyu_paper)")
    ev.add_argument("--split", default="test", help="which split's list to evaluate (default: test)")
    ev.add_argument("--scale", choices=("coarse", "fine"), default=None,
                    help="network output to evaluate (default: the checkpoint's stage)")
    ev.add_argument("--out", default=None, help="write the metrics, protocol card and counts as JSON")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    ev.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_cmd_evaluate)

    rp = sub.add_parser("reproduce", help="the paper's Table 1 or 2 end to end: the chapters executed with papermill "
                        "(prepare, coarse, fine, evaluate), the table beside the paper's (Chapter 9)")
    rp.add_argument("--dataset", choices=("nyu", "kitti", "indoor", "street"), required=True,
                    help="indoor: the synthetic rooms; nyu: real NYU Depth v2 from --train-data / --test-data "
                         "(Table 1); street: the synthetic street drives; kitti: a `prepare kitti-raw` output as "
                         "--train-data (Table 2)")
    rp.add_argument("--preset", choices=PRESETS, default="book", help="run size of every chapter (default: book)")
    rp.add_argument("--out", required=True, help="output folder (new, empty, or an earlier reproduce with --overwrite)")
    rp.add_argument("--train-data", default=None,
                    help="--dataset nyu: the training folder `mdlearn prepare nyu-raw` wrote; --dataset kitti: "
                         "the folder `mdlearn prepare kitti-raw` wrote")
    rp.add_argument("--test-data", default=None,
                    help="--dataset nyu: the test folder `mdlearn prepare nyu-labeled` wrote; --dataset kitti: "
                         "a `prepare kitti-raw` output with a test split (default: --train-data)")
    rp.add_argument("--overwrite", action="store_true", help="replace an earlier output of mdlearn reproduce")
    rp.add_argument("--quiet", action="store_true", help="no progress bars (the step lines still print)")
    rp.set_defaults(func=_cmd_reproduce)

    pr = sub.add_parser("predict", help="depth, preview and point cloud for your own photos (Chapter 9)")
    pr.add_argument("images", nargs="+", help="image files (anything Pillow reads)")
    pr.add_argument("--checkpoint", required=True, help="a trained mdlearn checkpoint (.pt)")
    pr.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                    help="the photos' camera in pixels (default: the training camera rescaled to each photo)")
    pr.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    pr.add_argument("--scale", choices=("coarse", "fine"), default=None,
                    help="network output to use (default: the checkpoint's stage)")
    pr.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    pr.add_argument("--overwrite", action="store_true", help="replace existing outputs of the same names")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=_cmd_predict)

    ex = sub.add_parser("export", help="export a trained network to ONNX or TorchScript, checked by its runtime")
    ex.add_argument("--checkpoint", required=True, help="a trained mdlearn checkpoint (.pt)")
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="(default: onnx)")
    ex.add_argument("--out", default=None, help="output file (default: next to the checkpoint)")
    ex.add_argument("--scale", choices=("coarse", "fine"), default=None,
                    help="network output to export (default: the checkpoint's stage)")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ex.set_defaults(func=_cmd_export)

    bk = sub.add_parser("book", help="the HTML book")
    bk_sub = bk.add_subparsers(dest="action", required=True, parser_class=_Parser)
    bb = bk_sub.add_parser("build", help="execute the chapters (book preset) and build _build/html")
    bb.add_argument("--preset", choices=PRESETS, default="book",
                    help="run size of the chapters (default: book; another preset builds a separate "
                         "project, _build/book-PRESET, into its _build/html)")
    bb.add_argument("--out", default=None, metavar="DIR",
                    help="the project folder of a build at another preset (default: _build/book-PRESET)")
    bb.set_defaults(func=_cmd_book_build)
    bc = bk_sub.add_parser("check", help="open the built pages in headless Chromium: scrolling code, "
                           "missing or shrunken images, untypeset math, blank widgets, missing local "
                           "files, requests off the local files (exit 1 on any but shrunken images)")
    bc.add_argument("--html", default=None, help="the built book (default: <repo>/_build/html)")
    bc.add_argument("--json", default=None, metavar="OUT", help="also write the full report as JSON to OUT")
    bc.add_argument("--toc", default=None,
                    help="table of contents listing the pages (default: the build's project _toc.yml; "
                         "without one, every page)")
    bc.add_argument("--screenshots", default=None, metavar="DIR",
                    help="keep a full-page screenshot of every page in DIR")
    bc.add_argument("--min-scale", type=float, default=0.75,
                    help="report images shown below this fraction of their natural width (default: 0.75)")
    bc.set_defaults(func=_cmd_book_check)

    asg = sub.add_parser("assignments", help="graded assignments from the chapters and their autograder")
    asg_sub = asg.add_subparsers(dest="action", required=True, parser_class=_Parser)
    ab = asg_sub.add_parser("build", help="student notebooks (solutions stubbed, hidden tests removed) "
                            "and the autograder's copies")
    ab.add_argument("--chapters", nargs="+", default=None, metavar="N",
                    help="chapter numbers or names (default: every chapter with graded questions)")
    ab.add_argument("--out", required=True,
                    help="output folder: student/ to hand out, autograder/ to keep private")
    ab.add_argument("--overwrite", action="store_true", help="replace an earlier build in --out")
    ab.set_defaults(func=_cmd_assignments_build)
    ag = asg_sub.add_parser("grade", help="run a submitted notebook in a fresh kernel and score its questions "
                            "(exit 0 whatever the score)")
    ag.add_argument("notebook", help="the student's .ipynb")
    ag.add_argument("--chapter", default=None,
                    help="which assignment (number or name; default: the id stored in the notebook)")
    ag.add_argument("--source", default=None,
                    help="a build folder, a folder of chapters or the instructor notebook "
                         "(default: the book's chapters)")
    ag.add_argument("--preset", choices=(*PRESETS, "own"), default="smoke",
                    help="run size injected into the notebook (default: smoke; own: keep the notebook's)")
    ag.add_argument("--timeout", type=float, default=1200, help="seconds for the whole run (default: 1200)")
    ag.add_argument("--cell-timeout", type=float, default=300,
                    help="seconds for one cell, which is then interrupted (default: 300)")
    ag.add_argument("--out", default=None, help="write the grades as JSON to this file")
    ag.add_argument("--executed", default=None, help="write the executed notebook here (feedback)")
    ag.set_defaults(func=_cmd_assignments_grade)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mdlearn`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"mdlearn: error: {e}", file=sys.stderr)
        return 2
    except MdlearnError as e:
        print(f"mdlearn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mdlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
