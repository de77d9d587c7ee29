"""Training and evaluating model versions: the workflow behind ``manage.py train``, ``manage.py
evaluate`` and the admin's "Train a new model" (the ``train_model`` task on the ``training`` queue).

It spans several models (a DatasetVersion in, a ModelVersion, Painting.mislabel_score and a
TrainingRun's progress out), hence a services module rather than a model method.

- ``materialize`` lays a dataset version out as the study's ``{train,val,test}/{class}/`` folders,
  the layout ``ml`` reads, with hard links to the paintings' files;
- ``train_model_version`` trains with ``ml.train``, evaluates with ``ml.evaluate`` on the version's
  test split, computes the out-of-fold mislabel scores and registers the ModelVersion;
- ``run_training`` does the same for a TrainingRun row, recording its state, epochs and error;
- ``evaluate_model_version`` evaluates a version again (``manage.py evaluate``).

This module is imported by the web process (the admin's form validates TrainOptions): torch, ml.train,
ml.evaluate and ml.inference are imported inside the functions that need them, which only
management commands and the worker call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from classifier.models import ModelVersion, TrainingRun
from gallery.models import LABEL_RE, DatasetVersion, Painting
from ml.config import ARCHS, PRESETS, TrainConfig
from ml.data import IMAGE_EXTENSIONS, SPLITS

log = logging.getLogger(__name__)

# progress(message, epoch_row): a line for a person, and after each epoch ml.train's history row.
Progress = Callable[[str, dict | None], None]
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MISLABEL_FOLDS = 5
EMBED_CHUNK = 64  # images decoded and embedded at a time: memory stays flat on a large gallery


class TrainingError(ValueError):
    """Training cannot start or go on; the message says why, in words for the person who asked."""


@dataclass
class TrainOptions:
    """What a person chooses for a training; stored in TrainingRun.options."""

    arch: str = "resnet18"
    weights: str = "none"  # "imagenet", "none" or the path of a state dict / checkpoint
    epochs: int = 10
    preset: str = "robust"
    seed: int = 0
    image_size: int = 224
    batch_size: int = 32
    name: str = ""  # the model version's name; made up from arch, dataset and time when empty
    activate: bool = False
    device: str = ""  # "" = cuda when available, else cpu

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise TrainingError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.preset not in PRESETS:
            raise TrainingError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.weights not in ("imagenet", "none") and not Path(self.weights).is_file():
            raise TrainingError(f"weights: no such file {self.weights!r} (or use 'imagenet' or 'none')")
        for key in ("epochs", "batch_size", "image_size"):
            if int(getattr(self, key)) < 1:
                raise TrainingError(f"{key} must be at least 1")
        if self.name and not NAME_RE.fullmatch(self.name):
            raise TrainingError(
                "a model version's name is 1-100 letters, digits, '.', '-' or '_' (it names its folder)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            arch=self.arch,
            weights=self.weights,
            preset=self.preset,
            epochs=int(self.epochs),
            seed=int(self.seed),
            image_size=int(self.image_size),
            batch_size=int(self.batch_size),
        )


# --- dataset versions ------------------------------------------------------------------------------


def freeze_dataset_version(
    name: str = "", seed: int = 0, val: float = 0.15, test: float = 0.15, by=None
) -> DatasetVersion:
    """Freeze the curated set now (gallery.datasets.freeze), with a name made up from the time when
    none is given. A refusal (a leaking duplicate group, nothing labelled...) becomes a TrainingError
    carrying freeze's own words."""
    from gallery.datasets import freeze

    name = name or f"dataset-{timezone.now():%Y%m%d-%H%M%S}"
    try:
        return freeze(name=name, seed=seed, val=val, test=test, by=by)
    except ValidationError as exc:
        raise TrainingError(" ".join(exc.messages)) from exc
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc


def split_counts(dataset_version: DatasetVersion) -> dict[str, dict[str, int]]:
    """{split: {class: n}} of the version's items, counted from the rows."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = dataset_version.items.order_by().values_list("split", "label")
    for (split, label), n in Counter(rows).items():
        counts[split][label] = n
    return dict(counts)


def check_trainable(counts: dict[str, dict[str, int]], what: str) -> list[str]:
    """The class names, or a TrainingError saying why ``counts`` ({split: {class: n}}) cannot train and
    evaluate a classifier: at least 2 classes, each in the train split, and non-empty val and test."""
    classes = sorted({c for split in SPLITS for c, n in counts.get(split, {}).items() if n})
    if not classes:
        raise TrainingError(f"{what} holds no painting in a train, val or test split")
    if len(classes) < 2:
        raise TrainingError(
            f"{what} has {len(classes)} class ({classes[0]}); a classifier needs at least 2 classes"
        )
    missing = [c for c in classes if not counts.get("train", {}).get(c)]
    if missing:
        raise TrainingError(f"the train split of {what} has no painting of class {', '.join(missing)}")
    for split, role in (("val", "pick the best epoch"), ("test", "evaluate")):
        if not sum(counts.get(split, {}).values()):
            raise TrainingError(f"the {split} split of {what} is empty: there is nothing to {role} on")
    return classes


def check_dataset_version(dataset_version: DatasetVersion) -> list[str]:
    return check_trainable(split_counts(dataset_version), f"dataset version {dataset_version.name!r}")


@dataclass
class Materialized:
    folder: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # {split: {class: n}} laid out
    skipped: list[str] = field(default_factory=list)  # "painting 12 (...): why", one per item left out
    paths: dict[int, Path] = field(default_factory=dict)  # painting id -> its file in the layout


def _place(painting: Painting, dst: Path) -> None:
    """Hard link the painting's file (no copy: same file system as MEDIA_ROOT); copy when linking
    is impossible (another file system, a storage without local paths)."""
    try:
        src = painting.image.path
    except NotImplementedError:  # a storage with no local files
        with painting.image.open("rb") as f, dst.open("wb") as out:
            shutil.copyfileobj(f, out)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def materialize(dataset_version: DatasetVersion, folder: Path) -> Materialized:
    """Lay the dataset version out in the study's layout ``folder/{split}/{label}/<painting id>.<ext>``
    with the labels and splits frozen in it (not the paintings' current ones).

    Nothing is skipped silently: an item whose file is missing, whose split is not train/val/test or
    whose file type ml does not read is left out, logged, and listed in the result's ``skipped``."""
    folder = Path(folder)
    for split in SPLITS:  # all three, even empty: ml recognises the study's layout by its folders
        (folder / split).mkdir(parents=True, exist_ok=True)
    result = Materialized(folder=folder)
    counts: dict[str, Counter] = defaultdict(Counter)
    items = dataset_version.items.select_related("painting").order_by("painting_id")
    for item in items.iterator(chunk_size=500):
        painting = item.painting
        ext = Path(painting.image.name).suffix.lower() or ".jpg"
        why = ""
        if item.split not in SPLITS:
            why = f"its split is {item.split!r}, not one of {', '.join(SPLITS)}"
        elif not LABEL_RE.fullmatch(item.label or ""):
            why = f"its label {item.label!r} is not a class name"
        elif ext not in IMAGE_EXTENSIONS:
            why = f"ml does not read {ext} files"
        elif not painting.image or not painting.image.storage.exists(painting.image.name):
            why = f"its file {painting.image.name or '(none)'} is missing"
        if why:
            result.skipped.append(f"painting {painting.pk} ({painting}): {why}")
            continue
        dst = folder / item.split / item.label / f"{painting.pk}{ext}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        _place(painting, dst)
        counts[item.split][item.label] += 1
        result.paths[painting.pk] = dst
    result.counts = {split: dict(sorted(c.items())) for split, c in counts.items()}
    for line in result.skipped:
        log.warning("left out of %s: %s", folder, line)
    return result


# --- training -------------------------------------------------------------------------------------


def _report(progress: Progress | None, run: TrainingRun | None, message: str, row: dict | None = None):
    if row is None:  # ml.train logs each epoch itself
        log.info("%s", message)
    if run is not None:
        fields: dict[str, Any] = {"message": message[:300]}
        if row is not None:
            run.history = [*run.history, row]
            run.epoch = row["epoch"]
            fields.update(history=run.history, epoch=run.epoch)
        TrainingRun.objects.filter(pk=run.pk).update(**fields)
    if progress is not None:
        progress(message, row)


def _default_name(options: TrainOptions, dataset_version: DatasetVersion) -> str:
    stem = slugify(dataset_version.name)[:40] or f"dataset{dataset_version.pk}"
    return f"{options.arch}-{stem}-{timezone.now():%Y%m%d-%H%M%S}"


def _daemonic() -> bool:
    """Inside a Celery prefork child: a daemonic process may not start DataLoader workers."""
    return bool(multiprocessing.current_process().daemon)


def _scrub_paths(folder: Path, data: Path, replacements: dict[str, Any]) -> dict:
    """The evaluation names the temporary layout it read; point its files at what lasts instead: the
    paths in predictions.csv become relative to the layout (``test/cn/123.jpg``: split, class,
    painting id) and metrics.json names the dataset version and the kept checkpoint."""
    prefix = str(data) + os.sep
    for name in ("predictions.csv", "classification_report.txt"):
        path = folder / name
        if path.is_file():
            path.write_text(path.read_text().replace(prefix, ""))
    metrics_path = folder / "metrics.json"
    result = json.loads(metrics_path.read_text())
    result.update(replacements)
    result["skipped_files"] = [s.replace(prefix, "") for s in result.get("skipped_files", [])]
    metrics_path.write_text(json.dumps(result, indent=2))
    return result


def mislabel_scores(
    checkpoint: Path, layout: Materialized, labels: dict[int, str], device: str | None = None, seed: int = 0
) -> tuple[dict[int, float], dict]:
    """Confident-learning scores: for each painting, 1 - its out-of-fold probability of its label.

    The out-of-fold probabilities come from a stratified k-fold (k = 5, fewer when a class has fewer
    paintings) cross-validation of a logistic regression over the NEW model's penultimate embeddings
    of every painting in the dataset version. That is k-fold on frozen features, not k full trainings
    of the network: k trainings would cost hours on a CPU, while this costs one pass of embedding.
    The price is honesty about what it measures: the network saw the training paintings (with their
    labels) while learning those features, so a mislabelled training painting can have been pulled
    towards its wrong class and scores lower than it would under k full trainings. The ranking is a
    reviewing order for a curator, not a verdict.

    Returns ({painting id: score}, a summary for the model version's metrics)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ml.data import BadFile, try_load
    from ml.inference import Predictor

    ids = sorted(layout.paths)
    features, kept = [], []
    with Predictor.from_checkpoint(checkpoint, device or None) as predictor:
        classes = predictor.class_names
        for start in range(0, len(ids), EMBED_CHUNK):
            chunk, images = [], []
            for pk in ids[start : start + EMBED_CHUNK]:
                image = try_load(layout.paths[pk], 448)
                if isinstance(image, BadFile):  # training skipped it too (skipped_files.txt)
                    continue
                chunk.append(pk)
                images.append(image)
            if images:
                features.append(predictor.probabilities(images)[1])
                kept += chunk
    y = np.array([classes.index(labels[pk]) for pk in kept])
    per_class = np.bincount(y, minlength=len(classes))
    present = per_class[per_class > 0]
    k = int(min(MISLABEL_FOLDS, present.min())) if len(present) else 0
    summary: dict[str, Any] = {
        "method": f"{k}-fold stratified cross-validation of a logistic regression on the model's "
        "penultimate embeddings (frozen features, not k trainings); score = 1 - p_oof(label)",
        "k": k,
        "n": len(kept),
    }
    if len(present) < 2 or k < 2:
        summary["skipped"] = "every class needs at least 2 paintings for a stratified k-fold"
        log.warning("mislabel scores not computed: %s", summary["skipped"])
        return {}, summary
    x = np.concatenate(features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    oof = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
    # cross_val_predict orders columns by the labels present; map them back onto the model's classes.
    p = np.zeros((len(y), len(classes)))
    p[:, np.unique(y)] = oof
    scores = 1.0 - p[np.arange(len(y)), y]
    summary.update(
        oof_accuracy=float((p.argmax(1) == y).mean()),
        mean_score=float(scores.mean()),
        flagged=int((scores > 0.5).sum()),  # the out-of-fold model prefers another class
    )
    return {pk: float(s) for pk, s in zip(kept, scores, strict=True)}, summary


def train_model_version(
    options: TrainOptions,
    dataset_version: DatasetVersion,
    run: TrainingRun | None = None,
    progress: Progress | None = None,
) -> ModelVersion:
    """Train a model on ``dataset_version`` and register it as a ModelVersion.

    The version is laid out (hard links) in a temporary folder under MEDIA_ROOT; ``ml.train`` trains
    into the run folder ``MEDIA_ROOT/models/<name>/`` (checkpoint, history, curves), ``ml.evaluate``
    scores the best checkpoint on the version's test split into ``<run folder>/eval/`` (report,
    metrics, predictions.csv, confusion matrix, t-SNE, Grad-CAM, correct/wrong grids), and the
    mislabel scores are written to every painting of the version. ``run`` (optional) gets each
    epoch's row and a message at each step; ``progress`` gets the same."""
    from ml.evaluate import evaluate_checkpoint
    from ml.train import train

    config = options.train_config()
    if _daemonic() and config.num_workers != 0:
        config.num_workers = 0  # a Celery prefork child is daemonic: no DataLoader worker processes
    name = options.name or _default_name(options, dataset_version)
    if ModelVersion.objects.filter(name=name).exists():
        raise TrainingError(f"a model version named {name!r} exists; choose another name")
    relative = f"models/{name}"
    media = Path(settings.MEDIA_ROOT)
    out = media / relative
    if out.exists():
        # Left by a training that never registered a version (no version owns this name).
        shutil.rmtree(out)
    try:
        scratch = media / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        device = options.device or None
        # Under MEDIA_ROOT, so that the layout is hard links to the paintings, not copies.
        with tempfile.TemporaryDirectory(dir=scratch, prefix="train-") as tmp:
            data = Path(tmp) / "data"
            _report(progress, run, f"laying out dataset version {dataset_version.name}")
            layout = materialize(dataset_version, data)
            classes = check_trainable(layout.counts, f"dataset version {dataset_version.name!r}")
            sizes = ", ".join(f"{s} {sum(layout.counts.get(s, {}).values())}" for s in SPLITS)
            _report(
                progress,
                run,
                f"training {options.arch} on {', '.join(classes)} ({sizes}) for {config.epochs} epoch(s)",
            )

            def on_epoch_end(row: dict) -> None:
                _report(
                    progress,
                    run,
                    f"epoch {row['epoch']}/{config.epochs}: train loss {row['train_loss']:.4f}, "
                    f"val loss {row['val_loss']:.4f}, val accuracy {100 * row['val_accuracy']:.1f}%",
                    row,
                )

            best = train(data, out, config, device=device, on_epoch_end=on_epoch_end)
            # last.pt is for resuming from the command line, and as large as best.pt: not kept.
            (out / "last.pt").unlink(missing_ok=True)
            _report(progress, run, "evaluating the best checkpoint on the test split")
            evaluate_checkpoint(best, data, out / "eval", device=device)
            metrics = _scrub_paths(
                out / "eval",
                data,
                {
                    "checkpoint": f"{relative}/best.pt",
                    "data": f"dataset version {dataset_version.name} (id {dataset_version.pk})",
                },
            )
            config_path = out / "config.json"
            if config_path.is_file():
                config_path.write_text(config_path.read_text().replace(str(data), metrics["data"]))
            _report(progress, run, "scoring likely mislabelled paintings (out-of-fold, 5-fold)")
            labels = dict(dataset_version.items.values_list("painting_id", "label"))
            scores, mislabel = mislabel_scores(best, layout, labels, device, seed=options.seed)

        history = json.loads((out / "history.json").read_text())
        metrics.update(
            dataset_version=dataset_version.pk,
            dataset_version_name=dataset_version.name,
            dataset_counts=layout.counts,
            artifacts_dir=relative,
            history=history,
            train_options=options.to_dict() | {"name": name},
            mislabel=mislabel,
            left_out=layout.skipped,
            evaluated_at=timezone.now().isoformat(),
        )
        with transaction.atomic():
            version = ModelVersion(
                name=name, arch=options.arch, class_names=metrics["class_names"], metrics=metrics
            )
            version.checkpoint.name = f"{relative}/best.pt"  # already in place under MEDIA_ROOT
            version.save()
            paintings = Painting.objects.in_bulk(list(scores))
            for pk, painting in paintings.items():
                painting.mislabel_score = scores[pk]
            Painting.objects.bulk_update(list(paintings.values()), ["mislabel_score"], batch_size=500)
            if run is not None:
                TrainingRun.objects.filter(pk=run.pk).update(model_version=version)
                run.model_version = version
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no version owns it: do not leave 45 MB behind
        raise
    _report(
        progress,
        run,
        f"registered {version}: test accuracy {100 * metrics['accuracy']:.1f}%, "
        f"balanced {100 * metrics['balanced_accuracy']:.1f}%, macro-F1 {100 * metrics['macro_f1']:.1f}%",
    )
    if options.activate:
        queued = version.activate_and_reclassify()
        _report(progress, run, f"activated {version.name}; {queued} painting(s) queued for classification")
    return version


def queue_training(run: TrainingRun) -> None:
    """Send the run to the worker's ``training`` queue once the transaction commits. With the broker
    unreachable the run fails at once, saying so, rather than waiting in "queued" for ever."""

    def send() -> None:
        from classifier.tasks import train_model

        try:
            train_model.apply_async((run.pk,), retry=False)
        except Exception as exc:  # noqa: BLE001 - kombu raises several kinds of connection errors
            log.warning("training run %s not queued: %s", run.pk, exc)
            TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.QUEUED).update(
                state=TrainingRun.State.FAILED,
                error=f"The worker's broker could not be reached ({exc}); nothing was trained. "
                "Start the training again once the broker is up.",
                message="not queued: broker unreachable",
                finished=timezone.now(),
            )

    transaction.on_commit(send)


class Heartbeat:
    """While the ``with`` block runs, a thread refreshes the run's ``heartbeat`` every
    ``interval`` seconds. It dies with the process, which is the point: a run whose heartbeat
    stops is one whose process was killed, and the sweep marks it failed."""

    def __init__(self, run_pk: int, interval: float) -> None:
        self.run_pk, self.interval = run_pk, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_pk}", daemon=True)

    def _beat(self) -> None:
        try:
            while True:
                try:
                    TrainingRun.objects.filter(pk=self.run_pk, state=TrainingRun.State.RUNNING).update(
                        heartbeat=timezone.now()
                    )
                except Exception as exc:  # noqa: BLE001 - e.g. SQLite busy: try again next beat
                    log.warning("training run %s: heartbeat not written (%s)", self.run_pk, exc)
                    connection.close()  # a broken connection is reopened on the next query
                if self._stop.wait(self.interval):
                    return
        finally:
            connection.close()  # this thread's own database connection

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run_training(
    run: TrainingRun | int, progress: Progress | None = None, worker: str = ""
) -> ModelVersion | None:
    """Carry out a queued TrainingRun: its state goes queued -> running -> done (with the model
    version) or failed (with the error). Returns None without doing anything when the run is not
    queued any more (a second delivery of the task): safe to call twice. ``worker``: the Celery node
    name running it, recorded so that the same worker starting again can fail it at once."""
    pk = run.pk if isinstance(run, TrainingRun) else run
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=pk).first()
        if run is None or run.state != TrainingRun.State.QUEUED:
            return None
        run.state, run.started = TrainingRun.State.RUNNING, timezone.now()
        run.heartbeat, run.worker = run.started, worker
        run.save(update_fields=["state", "started", "heartbeat", "worker"])
    try:
        if run.dataset_version is None:
            raise TrainingError("its dataset version was deleted")
        with Heartbeat(run.pk, settings.TRAINING_HEARTBEAT_SECONDS):
            version = train_model_version(
                TrainOptions.from_dict(run.options), run.dataset_version, run=run, progress=progress
            )
    except BaseException as exc:
        if isinstance(exc, TrainingError):
            error = str(exc)
        else:
            log.exception("training run %s failed", run.pk)
            error = traceback.format_exc()[-4000:]
        TrainingRun.objects.filter(pk=run.pk).update(
            state=TrainingRun.State.FAILED,
            error=error,
            message=f"failed: {type(exc).__name__}: {exc}"[:300],
            finished=timezone.now(),
        )
        raise
    TrainingRun.objects.filter(pk=run.pk).update(
        state=TrainingRun.State.DONE, model_version=version, finished=timezone.now()
    )
    return version


# --- evaluating again -----------------------------------------------------------------------------


def evaluate_model_version(
    version: ModelVersion, dataset_version: DatasetVersion | None = None, progress: Progress | None = None
) -> ModelVersion:
    """Evaluate ``version`` again on the test split of ``dataset_version`` (default: the one it was
    trained on) and update its metrics and the artifacts in its run folder (``models/<name>/eval``;
    made for a version imported with ``import_model``, which has none)."""
    from ml.evaluate import evaluate_checkpoint

    if dataset_version is None:
        pk = version.metrics.get("dataset_version")
        dataset_version = DatasetVersion.objects.filter(pk=pk).first() if pk else None
        if dataset_version is None:
            raise TrainingError(
                f"{version.name} was not trained on a dataset version the site knows; "
                "name one with --dataset-version ID"
            )
    checkpoint = Path(version.checkpoint.path)
    if not checkpoint.is_file():
        raise TrainingError(f"the checkpoint of {version.name} is missing: {checkpoint}")
    relative = version.artifacts_dir or f"models/{version.name}"
    out = Path(settings.MEDIA_ROOT) / relative
    what = f"dataset version {dataset_version.name!r}"
    scratch = Path(settings.MEDIA_ROOT) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="evaluate-") as tmp:
        data = Path(tmp) / "data"
        _report(progress, None, f"laying out {what}")
        layout = materialize(dataset_version, data)
        if not sum(layout.counts.get("test", {}).values()):
            raise TrainingError(f"the test split of {what} is empty: there is nothing to evaluate on")
        unknown = sorted(
            {c for split in SPLITS for c in layout.counts.get(split, {})} - set(version.class_names)
        )
        if unknown:
            raise TrainingError(
                f"{what} has class(es) {', '.join(unknown)} that {version.name} does not know "
                f"(its classes: {', '.join(version.class_names)})"
            )
        _report(progress, None, f"evaluating {version.name} on the test split of {what}")
        try:
            evaluate_checkpoint(checkpoint, data, out / "eval", device=None)
        except ValueError as exc:
            raise TrainingError(str(exc)) from exc
        result = _scrub_paths(
            out / "eval",
            data,
            {
                "checkpoint": version.checkpoint.name,
                "data": f"dataset version {dataset_version.name} (id {dataset_version.pk})",
            },
        )
    # Keep what training recorded (history, options, mislabel summary); replace the evaluation.
    metrics = {**version.metrics, **result}
    metrics.update(
        dataset_version=dataset_version.pk,
        dataset_version_name=dataset_version.name,
        artifacts_dir=relative,
        left_out=layout.skipped,
        evaluated_at=timezone.now().isoformat(),
    )
    version.metrics = metrics
    version.save(update_fields=["metrics"])
    _report(
        progress,
        None,
        f"{version.name} on {what}: test accuracy {100 * metrics['accuracy']:.1f}%, "
        f"balanced {100 * metrics['balanced_accuracy']:.1f}%, macro-F1 {100 * metrics['macro_f1']:.1f}%",
    )
    return version
