"""Model artifacts: a folder per version with the fitted model, its card and plot.

    <models dir>/<version>/model.joblib     the fitted candidate (scikit-learn style)
    <models dir>/<version>/card.json        version, features, window, horizon, and every
                                            candidate's metrics with their intervals
    <models dir>/<version>/calibration.png  every candidate on the held-out cutoffs

The store lists every version and which one is current (``models`` table).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import orjson

from churnwatch.models.training import Trained


@dataclass(frozen=True)
class ModelCard:
    """What a model is, what it learned from and how well it did."""

    version: str
    created_at: str
    features: list[str]
    horizon_days: float
    trained_from: str | None
    trained_to: str | None
    train_cutoffs: list[str]
    valid_cutoffs: list[str]
    n_train: int
    n_valid: int
    metrics: dict[str, dict[str, float]]
    calibration: dict[str, list[list[float]]]
    seed: int
    #: the reference customer of the reason codes (see :class:`Trained`)
    reference: dict[str, float | None]
    #: how the held-out metrics were obtained and what the saved model was fitted on
    validation: str = ""
    n_refit: int = 0
    warm_up_days: float | None = None
    #: the events learned from, and how that window was chosen (given, or where the
    #: stored history is dense), in words
    window: str = ""
    #: the value model's parameters (:class:`~churnwatch.models.clv.CLVModel`, or
    #: :class:`~churnwatch.models.contractual.RetentionModel` with ``kind: contractual``)
    clv: dict[str, Any] | None = None
    #: why there is no CLV model, or which fallback it uses and why
    clv_note: str | None = None
    #: which candidate this is (:mod:`churnwatch.models.candidates`); ``learned_btyd``
    #: for cards written before candidates were compared
    candidate: str = "learned_btyd"
    #: the candidate with the best held-out ROC AUC in the same training run
    champion: str | None = None
    #: candidate → metric → bootstrap interval over customers ``[low, high]``
    intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: this candidate's ROC AUC against the best other baseline, with its interval
    evidence: dict[str, Any] = field(default_factory=dict)
    #: ``contractual`` or ``non-contractual`` (``None`` on cards written before it was told)
    history_kind: str | None = None
    #: the evidence for ``history_kind``, in words
    history_note: str = ""

    def to_json(self) -> bytes:
        """The card as indented JSON."""
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def make_card(
    trained: Trained,
    *,
    horizon_days: float,
    trained_from: datetime | None,
    trained_to: datetime | None,
    seed: int,
    now: datetime,
    warm_up_days: float | None = None,
    window: str = "",
) -> ModelCard:
    """The card of ``trained``; its version names the model kind, time and content."""
    digest = hashlib.sha256(joblib.hash(trained.model).encode()).hexdigest()[:8]
    return ModelCard(
        version=f"{trained.candidate}-{now.strftime('%Y%m%dT%H%M%S')}-{digest}",
        created_at=now.isoformat(),
        features=list(trained.features),
        horizon_days=horizon_days,
        trained_from=trained_from.isoformat() if trained_from else None,
        trained_to=trained_to.isoformat() if trained_to else None,
        train_cutoffs=[_iso(t) for t in trained.train_cutoffs],
        valid_cutoffs=[_iso(t) for t in trained.valid_cutoffs],
        n_train=trained.n_train,
        n_valid=trained.n_valid,
        metrics=trained.metrics,
        calibration={k: [list(p) for p in v] for k, v in trained.calibration.items()},
        seed=seed,
        reference=trained.reference,
        validation=trained.validation,
        n_refit=trained.n_refit,
        warm_up_days=warm_up_days,
        window=window,
        clv=trained.clv,
        clv_note=trained.clv_note,
        candidate=trained.candidate,
        champion=trained.champion,
        intervals=trained.intervals,
        evidence=trained.evidence,
        history_kind=trained.history.kind if trained.history else None,
        history_note=trained.history.why if trained.history else "",
    )


def _plot_calibration(card: ModelCard, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    for name, points in card.calibration.items():
        auc = card.metrics[name]["roc_auc"]
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, ys, marker="o", label=f"{name} (ROC AUC {auc:.3f})")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title(f"{card.version}\nheld-out cutoffs, horizon {card.horizon_days:g} days")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save(models_dir: Path, trained: Trained, card: ModelCard) -> Path:
    """Write the artifact folder for ``card.version``; return it."""
    folder = Path(models_dir) / card.version
    folder.mkdir(parents=True, exist_ok=False)
    joblib.dump(trained.model, folder / "model.joblib")
    (folder / "card.json").write_bytes(card.to_json())
    _plot_calibration(card, folder / "calibration.png")
    return folder


class ModelIntegrityError(ValueError):
    """An artifact is not the one the registry recorded, or lies outside the models folder."""


def digest(folder: Path) -> str:
    """Hex SHA-256 of the fitted model file in ``folder``, as the registry records it."""
    return hashlib.sha256((Path(folder) / "model.joblib").read_bytes()).hexdigest()


def load(folder: Path, *, sha256: str | None = None) -> tuple[Any, ModelCard]:
    """The fitted model and card saved in ``folder``.

    With ``sha256``, the model file is read once, and unpickled only if those
    very bytes have that digest: a file swapped in later is never loaded.
    """
    folder = Path(folder)
    card = ModelCard(**orjson.loads((folder / "card.json").read_bytes()))
    data = (folder / "model.joblib").read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelIntegrityError(
            f"{folder / 'model.joblib'}: its SHA-256 is not the one recorded at training"
        )
    return joblib.load(io.BytesIO(data)), card
