"""Nearest paintings by embedding cosine, for a painting's "similar works".

Reading every embedding of a model version on each detail page costs O(n) database traffic (at
10,000 EfficientNet embeddings: 51 MB and ~0.3 s a page). Instead each web process keeps one
``EmbeddingIndex`` per model version: the unit-normalised embeddings as float16 (2.5 KB a
painting) and brings it up to date on each use with one small query, reading only the
predictions finished since its last look. When the counts do not add up (a deletion, a
prediction redone, rows committed out of order) it reloads in full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

import numpy as np
from django.db.models import Count, Max

from classifier.models import Prediction, Status

_CHUNK = 4096  # rows per float16 -> float32 conversion: bounds the temporary memory


def _unit(rows: list[tuple[int, int, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction ids, painting ids, unit-normalised float16 matrix) of (pk, painting, bytes) rows."""
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 0), np.float16)
    matrix = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.float32).reshape(len(rows), -1)
    matrix = matrix / (np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12)
    return (
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], np.int64),
        matrix.astype(np.float16),
    )


class EmbeddingIndex:
    def __init__(self, version_id: int) -> None:
        self.version_id = version_id
        self.prediction_ids = np.empty(0, np.int64)
        self.painting_ids = np.empty(0, np.int64)
        self.matrix = np.empty((0, 0), np.float16)
        self.seen_until: datetime | None = None
        self.full_loads = 0  # how often it read everything (tests and curiosity)
        self._lock = threading.Lock()

    def _rows(self):
        return Prediction.objects.filter(
            model_version_id=self.version_id, status=Status.DONE, embedding__isnull=False
        ).order_by()

    def refresh(self) -> None:
        with self._lock:
            state = self._rows().aggregate(n=Count("pk"), last=Max("finished_at"))
            if state["n"] == len(self.prediction_ids) and state["last"] == self.seen_until:
                return
            if self.seen_until is not None and state["last"] is not None:
                new = list(
                    self._rows()
                    .filter(finished_at__gt=self.seen_until)
                    .values_list("pk", "painting_id", "embedding")
                )
                known = set(self.prediction_ids.tolist())
                fresh = [r for r in new if r[0] not in known]
                if fresh and len(fresh) == len(new) and len(self.prediction_ids) + len(fresh) == state["n"]:
                    ids, paintings, matrix = _unit(fresh)
                    if matrix.shape[1] == self.matrix.shape[1]:
                        self.prediction_ids = np.concatenate([self.prediction_ids, ids])
                        self.painting_ids = np.concatenate([self.painting_ids, paintings])
                        self.matrix = np.concatenate([self.matrix, matrix])
                        self.seen_until = state["last"]
                        return
            self._load_all()

    def _load_all(self) -> None:
        rows = list(self._rows().values_list("pk", "painting_id", "embedding", "finished_at"))
        self.prediction_ids, self.painting_ids, self.matrix = _unit([r[:3] for r in rows])
        self.seen_until = max((r[3] for r in rows if r[3] is not None), default=None)
        self.full_loads += 1

    def nearest(
        self, vector: np.ndarray, k: int, exclude_painting: int | None = None
    ) -> list[tuple[int, float]]:
        """(painting id, cosine similarity) of the ``k`` nearest, nearest first."""
        self.refresh()
        with self._lock:
            matrix, paintings = self.matrix, self.painting_ids
        if not len(paintings) or matrix.shape[1] != len(vector):
            return []
        unit = (vector / (np.linalg.norm(vector) + 1e-12)).astype(np.float32)
        sims = np.concatenate(
            [matrix[i : i + _CHUNK].astype(np.float32) @ unit for i in range(0, len(matrix), _CHUNK)]
        )
        if exclude_painting is not None:
            sims[paintings == exclude_painting] = -np.inf
        take = min(k, len(sims))
        top = np.argpartition(-sims, take - 1)[:take] if take else []
        top = sorted(top, key=lambda i: -sims[i])
        return [(int(paintings[i]), float(sims[i])) for i in top if np.isfinite(sims[i])]


_indexes: OrderedDict[int, EmbeddingIndex] = OrderedDict()
_indexes_lock = threading.Lock()
KEEP = 2  # versions held per process: the active one, and one being compared or activated


def index_for(version_id: int) -> EmbeddingIndex:
    with _indexes_lock:
        index = _indexes.pop(version_id, None) or EmbeddingIndex(version_id)
        _indexes[version_id] = index
        while len(_indexes) > KEEP:
            _indexes.popitem(last=False)
        return index
