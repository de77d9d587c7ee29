"""Command line: ``python -m ml {split,train,evaluate,predict,baseline} ...``"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ml.config import ARCHS, IMBALANCE, PRESETS, TrainConfig


def _split(args: argparse.Namespace) -> int:
    from ml.split import SplitRefused, split_dataset

    try:
        report = split_dataset(
            args.src,
            args.out,
            args.val,
            args.test,
            args.seed,
            args.merge_duplicates,
            args.dry_run,
            args.hold_out_source,
        )
    except SplitRefused as exc:
        print(f"split refused: {exc}", file=sys.stderr)
        return 2
    print(f"{'split':<8}" + "".join(f"{c:>10}" for c in report["class_names"]))
    for split, counts in report["counts"].items():
        print(f"{split:<8}" + "".join(f"{counts[c]:>10}" for c in report["class_names"]))
    print(f"duplicates found: {len(report['duplicates'])} (each set inside one split)")
    for d in report["left_out_as_duplicates_of_held_out"]:
        print(f"  left out, {d['kind']} duplicate of held-out {d['heldout']}: {d['kept_out']}")
    for d in report["duplicates"]:
        print(f"  {d['kind']:<5} d={d['distance']:<2} {d['a']}  ~  {d['b']}  [{d['split']}]")
    if report["skipped_files"]:
        print(f"unreadable files skipped: {len(report['skipped_files'])}")
        for b in report["skipped_files"]:
            print(f"  {b}")
    print("dry run: nothing written" if args.dry_run else f"written to {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ml.train import train

    config = TrainConfig(
        arch=args.arch,
        weights=args.weights,
        preset=args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        imbalance=args.imbalance,
        image_size=args.image_size,
        num_workers=args.workers,
        greyscale_p=args.greyscale,
    )
    best = train(args.data, args.out, config, device=args.device, resume=args.resume)
    print(f"best checkpoint: {best}")
    print(f"next: python -m ml evaluate --checkpoint {best} --data {args.data} --out {args.out}/eval")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.evaluate import evaluate_checkpoint

    evaluate_checkpoint(args.checkpoint, args.data, args.out, args.device, args.split)
    print((Path(args.out) / "classification_report.txt").read_text())
    print(f"artifacts in {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ml.data import Sample, load_samples
    from ml.inference import Predictor

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    samples = [Sample(Path(p), -1, "") for p in args.images]
    samples, images, bad = load_samples(samples)
    names = predictor.class_names
    print(f"{'file':<50}{'predicted':>12}{'confidence':>12}" + "".join(f"{'p_' + c:>10}" for c in names))
    for s, im in zip(samples, images, strict=True):
        (p,) = predictor.predict([im])
        print(
            f"{str(s.path):<50}{p.label:>12}{p.confidence:>12.3f}"
            + "".join(f"{p.probabilities[c]:>10.3f}" for c in names)
        )
    for b in bad:
        print(f"{str(b.path):<50}  unreadable: {b.reason}")
    return 1 if bad and not samples else 0


def _baseline(args: argparse.Namespace) -> int:
    from ml.baseline import run_baseline

    run_baseline(args.data, args.out, args.seed)
    print((Path(args.out) / "classification_report.txt").read_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("split", help="stratified, group- and duplicate-aware train/val/test split")
    s.add_argument("src", type=Path, help="flat DATA/{class}/ tree (manifest.csv optional)")
    s.add_argument("out", type=Path, help="new folder for OUT/{train,val,test}/{class}/")
    s.add_argument("--val", type=float, default=0.15)
    s.add_argument("--test", type=float, default=0.15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--merge-duplicates",
        action="store_true",
        help="keep each set of (near) duplicates inside one split instead of refusing",
    )
    s.add_argument("--dry-run", action="store_true", help="report the split, write nothing")
    s.add_argument(
        "--hold-out-source",
        action="append",
        default=[],
        metavar="SOURCE",
        help="put every image of this manifest source in OUT/heldout/ instead (repeatable): a test "
        "on a source the model never saw, with python -m ml evaluate --split heldout",
    )
    s.set_defaults(func=_split)

    t = sub.add_parser("train", help="train as the study; best-validation checkpoint")
    t.add_argument("--data", type=Path, required=True, help="DATA/{train,val,test}/{class}/")
    t.add_argument("--out", type=Path, required=True, help="run folder")
    t.add_argument("--arch", choices=ARCHS, default="resnet18")
    t.add_argument("--weights", default="none", help="imagenet | none | PATH (state dict or checkpoint)")
    t.add_argument(
        "--preset",
        choices=PRESETS,
        default="robust",
        help="robust (default): delivery augmentation; study: the original transforms",
    )
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--image-size", type=int, default=224)
    t.add_argument("--imbalance", choices=IMBALANCE, default="weighted_loss")
    t.add_argument(
        "--greyscale",
        type=float,
        default=TrainConfig.greyscale_p,
        metavar="P",
        help="robust preset: share of training images shown in greyscale (default %(default)s)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=-1, help="DataLoader workers (-1: auto)")
    t.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    t.add_argument("--resume", type=Path, default=None, help="a last.pt to continue from")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="test-split metrics, shortcut check and every figure")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument(
        "--split",
        default="test",
        help="test (default); val for a look during development; all for a flat DATA/{class}/ folder "
        "of paintings from elsewhere",
    )
    e.add_argument("--device", default=None)
    e.set_defaults(func=_evaluate)

    r = sub.add_parser("predict", help="print a table of predictions for image files")
    r.add_argument("checkpoint", type=Path)
    r.add_argument("images", nargs="+")
    r.add_argument("--device", default=None)
    r.set_defaults(func=_predict)

    b = sub.add_parser("baseline", help="colour histogram + logistic regression, same evaluation")
    b.add_argument("--data", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_baseline)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
