"""The benchmark behind BENCHMARKS.md.

``python -m ml.bench [--data ../shared/datasets/sansuha-v1] [--out bench_runs/DATE] [--epochs 10]``

1. splits the data (``ml.split``, duplicates merged into one split, seed 0);
2. trains and evaluates ``resnet18 --weights none`` and ``efficientnet_lite0 --weights imagenet``
   (default robust preset), ``resnet18`` with the study's own transforms for comparison, and the
   colour baseline, all scored by ``ml.evaluate`` on the test split;
3. measures, in the same process: seconds per training epoch; the data pipeline's share of an
   epoch (batches from the real loader + forward/backward/step, against forward/backward/step
   alone over the very same batches held in memory); inference ms per image at batch 1 and
   images/s at batch 32 in eager mode, eager channels_last and ONNX Runtime;
4. prints one Markdown table and writes it with every number to OUT/bench.json and OUT/bench.md.

All timings are medians of repeated runs; this machine is shared, so compare ratios from one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.baseline import run_baseline
from ml.config import TrainConfig
from ml.evaluate import evaluate_checkpoint
from ml.models import build_model, load_checkpoint, pick_device
from ml.split import split_dataset
from ml.train import _workers, class_weights, make_loader, prepare_data, train

log = logging.getLogger("ml.bench")

# (arch, weights, preset). The study-preset run shows what the delivery augmentation buys.
RUNS = (
    ("resnet18", "none", "robust"),
    ("efficientnet_lite0", "imagenet", "robust"),
    ("resnet18", "none", "study"),
)


def _median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def data_pipeline_ratio(
    data: Path, config: TrainConfig, device: torch.device, n_batches: int = 8, repeats: int = 3
) -> dict:
    """Epoch slice through the real DataLoader vs. the same batches with the data already made."""
    prepared = prepare_data(data, config)
    loader = make_loader(prepared.train, config.batch_size, True, config.seed, _workers(config, device))
    model = build_model(config.arch, len(prepared.class_names), "none").to(device).train()
    criterion = nn.CrossEntropyLoss(
        weight=class_weights(prepared.train.labels, len(prepared.class_names)).to(device)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step(x, y):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    held = []
    for i, batch in enumerate(loader):
        held.append(batch)
        if i + 1 == n_batches:
            break

    def through_loader():
        for i, (x, y) in enumerate(loader):
            step(x, y)
            if i + 1 == n_batches:
                break

    def model_only():
        for x, y in held:
            step(x, y)

    step(*held[0])  # warm-up
    full, bare = [], []
    for _ in range(repeats):  # interleaved, so that load on the machine hits both alike
        full.append(_median_time(through_loader, 1, 0))
        bare.append(_median_time(model_only, 1, 0))
    return {
        "batches": n_batches,
        "batch_size": config.batch_size,
        "epoch_slice_s": statistics.median(full),
        "model_only_s": statistics.median(bare),
        "ratio": statistics.median(full) / statistics.median(bare),
    }


def inference_speed(checkpoint: Path, out: Path, repeats_b1: int = 30, repeats_b32: int = 5) -> dict:
    """ms/image at batch 1 and images/s at batch 32: eager, eager channels_last, ONNX Runtime."""
    model, ckpt = load_checkpoint(checkpoint, "cpu")
    size = ckpt["config"].get("image_size", 224)
    x1, x32 = torch.randn(1, 3, size, size), torch.randn(32, 3, size, size)
    results = {}

    def eager(m, x):
        with torch.inference_mode():
            m(x)

    results["eager"] = (
        _median_time(lambda: eager(model, x1), repeats_b1, 3),
        _median_time(lambda: eager(model, x32), repeats_b32, 1),
    )
    cl = model.to(memory_format=torch.channels_last)
    x1c, x32c = x1.to(memory_format=torch.channels_last), x32.to(memory_format=torch.channels_last)
    results["channels_last"] = (
        _median_time(lambda: eager(cl, x1c), repeats_b1, 3),
        _median_time(lambda: eager(cl, x32c), repeats_b32, 1),
    )
    model = model.to(memory_format=torch.contiguous_format)
    # What the product ships: the Predictor's own forward pass (runtime "auto": ONNX Runtime on
    # CPU when installed), logits and embeddings, on the same tensors.
    from ml.inference import Predictor

    with Predictor.from_checkpoint(checkpoint, "cpu") as predictor:
        predictor.forward(x1)  # builds (or reads the cached) ONNX graph outside the timing
        used = "onnxruntime" if predictor.onnx_runner() is not None else "torch"
        results[f"Predictor ({used})"] = (
            _median_time(lambda: predictor.forward(x1), repeats_b1, 3),
            _median_time(lambda: predictor.forward(x32), repeats_b32, 1),
        )
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        sessions = {}
        for batch, x in ((1, x1), (32, x32)):
            path = out / f"{ckpt['arch']}_b{batch}.onnx"
            torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"], dynamo=True)
            sessions[batch] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            expected = model(x1).numpy()
        got = sessions[1].run(None, {"x": x1.numpy()})[0]
        max_diff = float(np.abs(expected - got).max())
        results["onnxruntime"] = (
            _median_time(lambda: sessions[1].run(None, {"x": x1.numpy()}), repeats_b1, 3),
            _median_time(lambda: sessions[32].run(None, {"x": x32.numpy()}), repeats_b32, 1),
        )
    except Exception as exc:  # noqa: BLE001 - report, keep the other runtimes
        log.warning("ONNX Runtime measurement failed: %s", exc)
        max_diff = None
    table = {
        name: {"batch1_ms_per_image": 1000 * b1, "batch32_images_per_s": 32 / b32}
        for name, (b1, b32) in results.items()
    }
    fastest = max(v["batch32_images_per_s"] for v in table.values())
    for v in table.values():
        v["batch32_vs_fastest"] = fastest / v["batch32_images_per_s"]
    return {"runtimes": table, "onnx_max_abs_diff": max_diff, "threads": torch.get_num_threads()}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown_table(rows: list[dict]) -> str:
    """One row per model: accuracy with its interval, the shortcut check, speed."""
    header = [
        "model",
        "test accuracy % [95% CI]",
        "balanced acc. %",
        "macro-F1 %",
        "reduced 224 + JPEG q75: acc. % (drop)",
        "upscaled 640 + sharpened: acc. % (drop)",
        "greyscale (colour check): acc. % (drop)",
        "s / train epoch",
        "ms / image, batch 1",
        "images / s, batch 32",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        m = r["metrics"]
        low, high = m["accuracy_ci95"]
        red = m["shortcut_check"]["reduced_224_jpeg75"]
        up = m["shortcut_check"]["upscaled_640_sharpened"]
        grey = m.get("colour_check", {}).get("greyscale")
        eager = r["speed"]["runtimes"]["eager"] if r.get("speed") else None
        cells = [
            r["name"],
            f"{_pct(m['accuracy'])} [{_pct(low)}, {_pct(high)}]",
            _pct(m["balanced_accuracy"]),
            _pct(m["macro_f1"]),
            f"{_pct(red['accuracy'])} ({red['accuracy_drop_points']:+.1f})",
            f"{_pct(up['accuracy'])} ({up['accuracy_drop_points']:+.1f})",
            f"{_pct(grey['accuracy'])} ({grey['accuracy_drop_points']:+.1f})" if grey else "-",
            f"{r['epoch_s']:.1f}" if r.get("epoch_s") else "-",
            f"{eager['batch1_ms_per_image']:.1f}" if eager else "-",
            f"{eager['batch32_images_per_s']:.1f}" if eager else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speed_table(name: str, speed: dict) -> str:
    lines = [
        f"Inference runtimes for {name} ({speed['threads']} threads; ONNX max |diff| vs eager: "
        f"{speed['onnx_max_abs_diff']}):",
        "",
        "| runtime | ms / image, batch 1 | images / s, batch 32 | batch 32: fastest / this |",
        "|---|---|---|---|",
    ]
    for runtime, v in speed["runtimes"].items():
        lines.append(
            f"| {runtime} | {v['batch1_ms_per_image']:.1f} | {v['batch32_images_per_s']:.1f} "
            f"| {v['batch32_vs_fastest']:.2f}x |"
        )
    return "\n".join(lines)


def speed_only(out: Path) -> int:
    """The inference tables alone: minutes instead of the full benchmark's hour."""
    from ml.models import save_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    tables = []
    for arch, weights, preset in RUNS:
        if preset != "robust":
            continue  # same architecture as another run: same speed
        run = out / f"{arch}-{weights}-{preset}"
        checkpoint = run / "best.pt"
        if not checkpoint.is_file():
            checkpoint = out / f"{arch}-untrained.pt"
            imagenet = "imagenet" if weights == "imagenet" else "none"
            save_checkpoint(
                checkpoint,
                model_state_dict=build_model(arch, 2, imagenet).state_dict(),
                class_names=["cn", "jp"],
                arch=arch,
                config=TrainConfig(arch=arch).to_dict(),
                epoch=0,
            )
        speed = inference_speed(checkpoint, checkpoint.parent)
        tables.append(speed_table(f"{arch} ({checkpoint})", speed))
    env = f"Environment: date {dt.date.today()}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    report = "\n\n".join([*tables, env])
    (out / "speed.md").write_text(report + "\n")
    print(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m ml.bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/sansuha-v1"
    )
    p.add_argument("--out", type=Path, default=Path("bench_runs") / dt.date.today().isoformat())
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--speed-only",
        action="store_true",
        help="only the inference-runtime tables, on each run's best.pt when OUT has one, else on an "
        "untrained checkpoint of the same architecture (speed does not depend on the weights' values)",
    )
    args = p.parse_args(argv)
    if args.speed_only:
        return speed_only(args.out)
    if not args.data.is_dir():
        print(f"error: dataset not found at {args.data}; pass --data", file=sys.stderr)
        return 2
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    device = pick_device(args.device)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    split = args.out / "data"
    if not (split / "manifest.csv").is_file():
        split_dataset(args.data, split, 0.15, 0.15, args.seed, merge_duplicates=True)

    rows = []
    for arch, weights, preset in RUNS:
        name = f"{arch} --weights {weights} --preset {preset}"
        run = args.out / f"{arch}-{weights}-{preset}"
        config = TrainConfig(arch=arch, weights=weights, preset=preset, epochs=args.epochs, seed=args.seed)
        if (
            not (run / "history.json").is_file()
            or len(json.loads((run / "history.json").read_text())) < args.epochs
        ):
            train(split, run, config, device=str(device))
        history = json.loads((run / "history.json").read_text())
        metrics = evaluate_checkpoint(run / "best.pt", split, run / "eval", str(device))
        speed = inference_speed(run / "best.pt", run)
        rows.append(
            {
                "name": name,
                "metrics": metrics,
                "speed": speed,
                "epoch_s": statistics.median(h["train_seconds"] for h in history),
                "best_epoch": metrics.get("checkpoint_epoch"),
            }
        )
        log.info("%s done: %s", name, markdown_table(rows[-1:]).splitlines()[-1])
    pipeline = data_pipeline_ratio(split, TrainConfig(seed=args.seed), device)
    baseline = run_baseline(split, args.out / "baseline", args.seed)
    rows.append({"name": "colour histogram + logistic regression", "metrics": baseline})

    env = {
        "date": dt.date.today().isoformat(),
        "torch": torch.__version__,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "command": "python -m ml.bench " + " ".join(argv or sys.argv[1:]),
        "data": str(args.data),
        "epochs": args.epochs,
        "minutes": (time.perf_counter() - started) / 60,
    }
    report = "\n\n".join(
        [
            markdown_table(rows),
            f"Data pipeline: {pipeline['batches']} batches of {pipeline['batch_size']} through the real "
            f"DataLoader took {pipeline['epoch_slice_s']:.1f} s; forward+backward+step alone over the same "
            f"batches took {pipeline['model_only_s']:.1f} s: ratio {pipeline['ratio']:.2f}x"
            " (target <= 1.3x).",
            *[speed_table(r["name"], r["speed"]) for r in rows if r.get("speed")],
            "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        ]
    )
    (args.out / "bench.md").write_text(report + "\n")
    (args.out / "bench.json").write_text(
        json.dumps({"env": env, "rows": rows, "pipeline": pipeline}, indent=2, default=str)
    )
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
