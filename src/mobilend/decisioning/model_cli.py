"""`mobilend model ...`: train, score and report on credit models.

    mobilend model train --data FILE.csv --target COL --bad VALUE --kind scorecard --out DIR
    mobilend model score --model DIR --data FILE.csv --out SCORES.csv
    mobilend model report [--out docs/model-report.md]

Scores file: one row per input row, in input order, columns
    pd       probability of default, 6 decimals
    score    points (600 at 50:1 good:bad odds, PDO 20), 2 decimals
    reasons  up to four reason codes, most important first, joined by ";" ("" when none)
Errors exit with status 2 and name the option at fault (--data, --target, --bad, --model).
Run as `python -m mobilend.decisioning.model_cli` too.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mobilend.core.errors import MobilendError

model_app = typer.Typer(help="Credit models: train, score, report.", no_args_is_help=True)
err = Console(stderr=True)
OPTION = {"data": "--data", "target": "--target", "bad": "--bad", "model": "--model"}
DEFAULT_CHUNK = 50_000


class KindOpt(StrEnum):
    scorecard = "scorecard"
    gbdt = "gbdt"
    logistic = "logistic"


def _fail(exc: MobilendError) -> None:
    option = OPTION.get(exc.field or "", f"--{exc.field}" if exc.field else "")
    err.print(f"[red]error[/red] {option}: {exc.detail}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@model_app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option(help="Training data (CSV with a header row)")],
    target: Annotated[str, typer.Option(help="Outcome column")],
    bad: Annotated[str, typer.Option(help="Value of the outcome column that means bad")],
    out: Annotated[Path, typer.Option(help="Directory to write the model artifact to")],
    kind: Annotated[KindOpt, typer.Option(help="Model kind")] = KindOpt.scorecard,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed (folds, model)")] = 0,
    trained_by: Annotated[str | None, typer.Option(help="Who trains (default: OS user)")] = None,
    name: Annotated[str | None, typer.Option(help="Model name (default: the kind)")] = None,
) -> None:
    """Cross-validate, fit on all rows and write a versioned artifact to --out."""
    from mobilend.decisioning import registry
    from mobilend.decisioning.datasets import FeatureSchema, file_sha256, load_csv
    from mobilend.decisioning.training import train

    try:
        X, y = load_csv(data, target, bad)
    except MobilendError as exc:
        _fail(exc)
        return
    schema = FeatureSchema.infer(X)
    err.print(
        f"{len(X)} rows, {int(y.sum())} bad ({y.mean():.1%}); "
        f"{len(schema.categorical)} categorical, {len(schema.numeric)} numeric features"
    )
    model = train(
        kind.value,
        X,
        y,
        folds=folds,
        seed=seed,
        name=name,
        trained_by=trained_by,
        data_sha256=file_sha256(data),
        schema=schema,
    )
    path = registry.save(model, out, trained_by=trained_by)
    Console().print(cv_table([model.metadata["cv"]]))
    Console().print(f"saved {model.kind} version {model.metadata['version']} to {path}")


def cv_table(reports: list[dict[str, Any]]) -> Table:
    table = Table(title="Cross-validation (held-out folds)")
    for col in ("model", "fold", "AUC", "KS", "Gini"):
        table.add_column(col, justify="right")
    for r in reports:
        for f in r["per_fold"]:
            table.add_row(
                r["kind"], str(f["fold"]), *(f"{f[m]:.4f}" for m in ("auc", "ks", "gini"))
            )
        mean, std = r["mean"], r["std"]
        table.add_row(
            r["kind"],
            "mean ± sd",
            *(f"{mean[m]:.4f} ± {std[m]:.4f}" for m in ("auc", "ks", "gini")),
            style="bold",
        )
    return table


@model_app.command("score")
def score_cmd(
    model: Annotated[Path, typer.Option(help="Model artifact directory")],
    data: Annotated[Path, typer.Option(help="Applications to score (CSV with a header row)")],
    out: Annotated[Path, typer.Option(help="Scores CSV to write")],
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows per chunk")] = DEFAULT_CHUNK,
) -> None:
    """Score every row of --data into --out (pd, score, reasons), in input order."""
    from mobilend.core.errors import ValidationFailed
    from mobilend.decisioning import registry

    try:
        if not model.is_dir():
            raise ValidationFailed("model", "artifact", f"no model directory {model}")
        m = registry.load(model)
        if not data.is_file():
            raise ValidationFailed("data", "file-exists", f"no such file: {data}")
        rows = score_file(m, data, out, chunk_size)
    except MobilendError as exc:
        _fail(exc)
        return
    err.print(f"scored {rows} rows with {m.kind} {m.metadata.get('version')} into {out}")


def score_file(model: Any, data: Path, out: Path, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Chunked scoring with a progress bar on stderr; returns the number of rows written."""
    import pandas as pd
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    total = _count_rows(data)
    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=total < chunk_size,
        ) as progress,
        open(out, "w", newline="", encoding="utf-8") as fh,
    ):
        task = progress.add_task("scoring", total=total)
        for chunk in pd.read_csv(data, chunksize=chunk_size):
            p = model.predict(chunk)
            frame = pd.DataFrame(
                {"pd": p.pd.round(6), "score": p.score.round(2), "reasons": p.reason_codes()}
            )
            frame.to_csv(fh, index=False, header=written == 0, lineterminator="\n")
            written += len(frame)
            progress.update(task, advance=len(frame))
        if written == 0:
            fh.write("pd,score,reasons\n")
    return written


def _count_rows(path: Path) -> int:
    """Data rows (newlines minus the header); quoted newlines would overcount (bar only)."""
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return max(n - 1, 0)


@model_app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option(help="Markdown file to write")] = Path(
        "docs/model-report.md"
    ),
    folds: Annotated[int, typer.Option(min=2)] = 5,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Cross-validate scorecard, gbdt and the one-hot logistic baseline on German credit."""
    from mobilend.decisioning.training import write_report

    reports = write_report(out, folds=folds, seed=seed)
    Console().print(cv_table(reports))
    Console().print(f"wrote {out}")


@model_app.command("monitor")
def monitor_cmd(
    model: Annotated[Path, typer.Option(help="Model artifact directory")],
    baseline: Annotated[Path, typer.Option(help="Reference sample, e.g. the training data (CSV)")],
    recent: Annotated[Path, typer.Option(help="Recent applications to compare (CSV)")],
    bins: Annotated[int, typer.Option(min=2, help="Quantile bins for numeric values")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Population stability: the PSI of the model's score and of every feature, recent against
    baseline (under 0.10 stable, 0.10-0.25 watch, over 0.25 act)."""
    import json

    from mobilend.core.errors import ValidationFailed
    from mobilend.decisioning import registry

    try:
        if not model.is_dir():
            raise ValidationFailed("model", "artifact", f"no model directory {model}")
        for name, path in (("baseline", baseline), ("recent", recent)):
            if not path.is_file():
                raise ValidationFailed(name, "file-exists", f"no such file: {path}")
        report = stability_report(registry.load(model), baseline, recent, bins)
    except MobilendError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table(title=f"Population stability ({report['rows']['recent']} recent rows)")
    for col in ("variable", "PSI", "status"):
        table.add_column(col)
    table.add_row("score", f"{report['score']['psi']:.4f}", report["score"]["status"])
    for feature, row in report["features"].items():
        table.add_row(feature, f"{row['psi']:.4f}", row["status"])
    Console().print(table)


def stability_report(model: Any, baseline: Path, recent: Path, bins: int = 10) -> dict[str, Any]:
    """Score PSI (the model scores both samples) and per-feature PSI over the model's features."""
    import pandas as pd

    from mobilend.core.errors import ValidationFailed
    from mobilend.decisioning.metrics import feature_psi, psi, stability

    base, rec = pd.read_csv(baseline), pd.read_csv(recent)
    names = list(model.schema.names)
    for label, frame in (("baseline", base), ("recent", rec)):
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValidationFailed(label, "columns", f"{label} lacks model features {missing}")
    score_psi = psi(model.predict(base).score, model.predict(rec).score, bins)
    per_feature = feature_psi(
        base[names], rec[names], categorical=list(model.schema.categorical), bins=bins
    )
    return {
        "model": model.metadata.get("version"),
        "rows": {"baseline": len(base), "recent": len(rec)},
        "score": {"psi": score_psi, "status": stability(score_psi)},
        "features": {
            k: {"psi": v, "status": stability(v)}
            for k, v in sorted(per_feature.items(), key=lambda kv: -kv[1])
        },
    }


@model_app.command("init")
def init_command() -> None:
    """Make sure the model registry (MOBILEND_MODEL_DIR, default var/models) has a champion:
    on first use train the default scorecard and LightGBM challenger from the bundled German
    credit data (seed 0, about 15 s). Prints the registry state as JSON."""
    import json

    from mobilend.decisioning.default_models import ensure_default_models
    from mobilend.settings import get_settings

    settings = get_settings()
    registry = ensure_default_models(
        settings.models_path, challenger_share=settings.challenger_share
    )
    typer.echo(json.dumps({"registry": str(settings.models_path), **registry.state}))


if __name__ == "__main__":
    model_app()
