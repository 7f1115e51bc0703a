"""The worker loads only the model files the registry vouches for, from the models folder."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.model_source import ModelSource
from churnwatch.models import registry
from tests.integration.test_training import END, trained_once


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _listed(engine: sa.Engine, version: str, folder: Path, sha256: str | None) -> None:
    with engine.begin() as conn:
        store.register_model(conn, version, str(folder), {"version": version}, sha256)
        store.promote_model(conn, version)


def test_a_tampered_or_outside_model_is_refused_and_the_old_scorer_kept(
    tmp_path: Path, engine: sa.Engine
) -> None:
    models = tmp_path / "models"
    trained = trained_once()
    card = registry.make_card(
        trained, horizon_days=90, trained_from=None, trained_to=END, seed=0, now=END
    )
    good = registry.save(models, trained, card)
    now = [0.0]
    source = ModelSource(engine, models_dir=models, check_every_s=1, clock=lambda: now[0])
    _listed(engine, card.version, good, registry.digest(good))
    assert source().version == card.version

    marker = tmp_path / "marker"
    # a promoted model whose file was swapped after training, digest as recorded
    swapped = models / "gbm-swapped"
    shutil.copytree(good, swapped)
    (swapped / "model.joblib").write_bytes(pickle.dumps(_Payload(marker)))
    _listed(engine, "gbm-swapped", swapped, registry.digest(good))
    # a folder outside the models folder, however well its digest matches
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "model.joblib").write_bytes(pickle.dumps(_Payload(marker)))
    shutil.copy(good / "card.json", outside / "card.json")
    # a row that records no digest at all
    for version, folder, sha256 in (
        ("gbm-swapped", swapped, registry.digest(good)),
        ("gbm-outside", outside, registry.digest(outside)),
        ("gbm-nodigest", swapped, None),
        ("gbm-escape", models / ".." / "elsewhere", registry.digest(outside)),
    ):
        if version != "gbm-swapped":
            _listed(engine, version, folder, sha256)
        now[0] += 1
        assert source().version == card.version, version  # logged; the old scorer stays
        assert not marker.exists(), version  # and no code of the file ran
