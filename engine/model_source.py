"""Which scorer the worker uses now: a pinned artifact, the promoted model, or the rule.

``CHURNWATCH_MODEL`` pins one artifact folder for the life of the process.
Otherwise the store's registry is asked, at most every ``check_every_s``
seconds, which model is current; a newly promoted one is loaded once and used
from the next batch on, without a restart. A registered model is loaded only
from a folder under ``models_dir`` (``CHURNWATCH_MODELS_DIR``) and only if its
file has the SHA-256 recorded at training: a row pointing elsewhere, or a
file swapped since, is refused (a pickle runs code as it loads). With no promoted model the rule
scores, and says so in ``model_version``. A model that cannot be loaded is
logged and the previous scorer stays in use until the next check; with
``strict`` (the notebook API) it raises instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.models.registry import ModelIntegrityError
from churnwatch.models.rule import RuleScorer
from churnwatch.models.scoring import Scorer
from churnwatch.models.trained_scorer import load_scorer

log = logging.getLogger(__name__)


class ModelSource:
    """Callable that returns the scorer to use now."""

    def __init__(
        self,
        engine: Engine,
        *,
        models_dir: Path,
        pinned: Path | None = None,
        check_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        strict: bool = False,
    ) -> None:
        self.engine = engine
        self.models_dir = Path(models_dir).resolve()
        self.check_every_s = check_every_s
        self.clock = clock
        self._checked_at: float | None = None
        self._scorer: Scorer = RuleScorer()
        self._pinned = pinned is not None
        self._strict = strict
        if pinned is not None:
            self._scorer = load_scorer(pinned)  # a bad pinned path fails the start

    def __call__(self) -> Scorer:
        if self._pinned:
            return self._scorer
        now = self.clock()
        if self._checked_at is None or now - self._checked_at >= self.check_every_s:
            self._checked_at = now
            self._refresh()
        return self._scorer

    def _refresh(self) -> None:
        with self.engine.connect() as conn:
            current = store.current_model_entry(conn)
        if current is None or current[0] == self._scorer.version:
            return
        version, path, sha256 = current
        try:
            folder = Path(path).resolve()
            if not folder.is_relative_to(self.models_dir):
                raise ModelIntegrityError(f"{folder} is not under {self.models_dir}")
            if sha256 is None:
                raise ModelIntegrityError(f"model {version} has no recorded SHA-256")
            self._scorer = load_scorer(folder, sha256=sha256)
        except Exception:
            if self._strict:
                raise
            log.exception(
                "cannot load model %s from %s; still scoring with %s",
                version,
                path,
                self._scorer.version,
            )
        else:
            log.info("scoring with model %s from %s", version, path)
