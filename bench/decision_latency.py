"""Credit-decision latency in-process and over HTTP, batch scoring speed, server memory.

1. in-process: per application, the identity checks (resident-ID validation, phone
   normalization, blind index), the SIMULATED bureau report, device signals (the sample
   document), features, both models (champion and challenger), the policy, the risk price, the
   limit, the capped offer with its schedule and APR, and the record hash. No database and no
   OCR (ID-card OCR takes seconds per image: see docs/ocr.md).
2. HTTP: `mobilend serve` as a subprocess on a scratch SQLite file (models loaded at start
   from the registry); `--http` applications POSTed one after another, each with its own
   borrower (registered with consents beforehand) and Idempotency-Key. The latency includes
   the consent check, the database writes and the idempotency record.
3. batch: `--rows` German-credit rows (the data resampled) scored through our model wrapper
   (`model.predict`: pd and score, reasons not asked for) against the raw model on the same
   rows (LightGBM `booster.predict` on the prepared matrix; the scorecard's points sum), and
   the overhead ratio.
4. the server's resident memory with both models loaded, after the HTTP run.

Targets from issue 3: in-process p99 < 20 ms, HTTP p99 < 50 ms, batch >= 100,000 rows/s, the
server < 400 MB.

    .venv/bin/python bench/decision_latency.py [--decisions 2000] [--http 500] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import ROOT, fmt_int, machine_lines, percentile, table, write_section
from repayments import cli, free_port, rss_mb, server

from mobilend.decisioning.default_models import load_models
from mobilend.decisioning.engine import ApplicationInput, EngineConfig, Product, decide
from mobilend.decisioning.features import build_features
from mobilend.decisioning.service import canonical_json, record_hash
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.decisioning.sources.bureau import SimulatedBureau
from mobilend.decisioning.sources.device import parse_device_signals
from mobilend.loans.schemas import ProductConfig
from mobilend.origination.pii import PiiCipher
from mobilend.origination.validation import normalize_phone, parse_id_number

TODAY = date(2025, 6, 30)
TARGETS = {"inproc_p99_ms": 20.0, "http_p99_ms": 50.0, "batch_rows_s": 100_000.0, "rss_mb": 400.0}


def id_number(rng: random.Random) -> str:
    birth = date(1975, 1, 1) + timedelta(days=rng.randrange(365 * 25))
    first17 = f"110105{birth:%Y%m%d}{rng.randrange(1000):03d}"
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]
    return first17 + check


def application_body(rng: random.Random) -> dict[str, Any]:
    return {
        "amount": str(rng.choice([1500, 3000, 4500, 6000, 8000])),
        "periods": rng.choice([3, 6, 12]),
        "purpose": "phone",
        "income_monthly": str(rng.choice([3000, 5000, 8000, 12000])),
        "employment": rng.choice(["employee", "skilled", "management", "self_employed"]),
        "employment_years": str(rng.choice([1, 3, 5, 8])),
        "housing": rng.choice(["rent", "own"]),
        "dependents": rng.choice([0, 1, 2]),
    }


# ---------------------------------------------------------------- in-process


def in_process(model_dir: Path, n: int) -> dict[str, float]:
    models = load_models(model_dir)
    cipher = PiiCipher({"k": bytes(32)}, "k", bytes(range(32)))
    bureau = SimulatedBureau(0)
    device_doc = json.loads((SAMPLES_DIR / "device.json").read_text())
    product = Product("PHONE", "CNY", ProductConfig())
    config = EngineConfig()
    rng = random.Random(1)
    cases = [
        (id_number(rng), f"139{rng.randrange(10**8):08d}", application_body(rng)) for _ in range(n)
    ]
    outcomes: dict[str, int] = {}
    times = []
    for k, (number, phone, body) in enumerate([cases[0], *cases]):  # the first one warms up
        t0 = time.perf_counter()
        ident = parse_id_number(number, today=TODAY)
        normalize_phone(phone)
        subject = cipher.blind_index(ident.number, context="id_number")
        report = bureau.fetch(subject, as_of=TODAY)
        device = parse_device_signals(device_doc, imei_key=b"bench-imei-key")
        features: dict[str, Any] = dict(
            build_features(
                applicant={
                    "birth_date": ident.birth_date,
                    "income_monthly": body["income_monthly"],
                },
                bureau=report,
                device=device,
                social=None,
                as_of=TODAY,
            )
        )
        features.update(consent_scoring=True, id_ocr_mismatch=False, merchant=False)
        decision = decide(
            key=str(k),
            application=ApplicationInput(
                amount=Decimal(body["amount"]),
                periods=body["periods"],
                purpose=body["purpose"],
                income_monthly=Decimal(body["income_monthly"]),
                employment=body["employment"],
                employment_years=Decimal(body["employment_years"]),
                housing=body["housing"],
                dependents=body["dependents"],
            ),
            features=features,
            product=product,
            models=models,
            config=config,
            business_date=TODAY,
        )
        record = json.loads(canonical_json(decision.record()))
        record_hash(record)
        if k:
            times.append(time.perf_counter() - t0)
            outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1
    times.sort()
    print(f"in-process outcomes: {outcomes}", flush=True)
    return {
        "p50_ms": percentile(times, 50) * 1e3,
        "p99_ms": percentile(times, 99) * 1e3,
        "n": float(n),
        **{f"outcome_{k}": float(v) for k, v in outcomes.items()},
    }


# ---------------------------------------------------------------- batch


def batch(model_dir: Path, rows: int) -> list[dict[str, float | str]]:
    from mobilend.decisioning.datasets import german_credit
    from mobilend.decisioning.german_map import DROPPED

    models = load_models(model_dir)
    X, _ = german_credit()
    X = X.drop(columns=list(DROPPED))
    big = X.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    out: list[dict[str, float | str]] = []
    for loaded in (models.champion, models.challenger):
        if loaded is None:
            continue
        model: Any = loaded.model
        Xc = model.schema.coerce(big)
        if loaded.kind == "gbdt":
            matrix = model._matrix(Xc)

            def raw(matrix: Any = matrix, model: Any = model) -> Any:
                return model.booster.predict(matrix, raw_score=True)
        else:

            def raw(Xc: Any = Xc, model: Any = model) -> Any:
                return model._points_matrix(Xc).sum(axis=1)

        wrapped_s = best_of(lambda model=model: model.predict(big).pd, 3)
        raw_s = best_of(raw, 3)
        out.append(
            {
                "model": f"{loaded.kind} {loaded.version}",
                "wrapper_rows_s": rows / wrapped_s,
                "raw_rows_s": rows / raw_s,
                "overhead": wrapped_s / raw_s,
            }
        )
        print(
            f"batch {loaded.kind}: {rows / wrapped_s:,.0f} rows/s wrapped, {rows / raw_s:,.0f} raw",
            flush=True,
        )
    return out


def best_of(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        assert len(np.asarray(result)) > 0
    return best


# ---------------------------------------------------------------- HTTP


def over_http(model_dir: Path, n: int) -> dict[str, float]:
    rng = random.Random(2)
    with tempfile.TemporaryDirectory(prefix="mobilend-decisions-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "MOBILEND_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
            "MOBILEND_DATA_DIR": str(work / "data"),
            "MOBILEND_MODEL_DIR": str(model_dir),
            "MOBILEND_BOOTSTRAP_ADMIN": "false",
            "MOBILEND_PRELOAD_MODELS": "true",  # a decision server: models loaded at start
        }
        cli(env, "db", "upgrade")
        token = json.loads(cli(env, "credentials", "create", "--name", "bench", "--role", "admin"))[
            "token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        port = free_port()
        with server(env, port, work / "server.log") as proc:
            base = f"http://127.0.0.1:{port}"
            rss_start = rss_mb(proc.pid)
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                client.post(
                    "/v1/products", json={"code": "PHONE", "name": "Phone loan"}
                ).raise_for_status()
                borrowers = []
                for _ in range(n + 1):
                    r = client.post(
                        "/v1/borrowers",
                        json={
                            "name": "王五",
                            "id_number": id_number(rng),
                            "phone": f"139{rng.randrange(10**8):08d}",
                        },
                    )
                    if r.status_code == 409:
                        continue
                    r.raise_for_status()
                    bid = r.json()["id"]
                    for purpose in ("credit_bureau", "scoring"):
                        client.post(
                            f"/v1/borrowers/{bid}/consents",
                            json={
                                "purpose": purpose,
                                "scope": "loan application",
                                "text_version": "v1",
                            },
                        ).raise_for_status()
                    borrowers.append(bid)
                times, outcomes = [], {}
                for k, bid in enumerate(borrowers):
                    body = {"borrower_id": bid, "product_code": "PHONE", **application_body(rng)}
                    t0 = time.perf_counter()
                    r = client.post(
                        "/v1/applications", json=body, headers={"Idempotency-Key": f"bench-{k}"}
                    )
                    elapsed = time.perf_counter() - t0
                    r.raise_for_status()
                    if k:  # the first one warms up
                        times.append(elapsed)
                        outcome = r.json()["decision"]
                        outcomes[outcome] = outcomes.get(outcome, 0) + 1
            rss_end = rss_mb(proc.pid)
    times.sort()
    print(f"HTTP outcomes: {outcomes}", flush=True)
    return {
        "p50_ms": percentile(times, 50) * 1e3,
        "p99_ms": percentile(times, 99) * 1e3,
        "n": float(len(times)),
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
    }


# ---------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=2000, help="in-process decisions")
    parser.add_argument("--http", type=int, default=500, help="applications over HTTP")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for batch scoring")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()

    t0 = time.perf_counter()
    load_models(args.model_dir)  # trains the default models on the very first run
    print(f"models ready in {time.perf_counter() - t0:.1f} s", flush=True)
    inproc = in_process(args.model_dir, args.decisions)
    print(f"in-process p50 {inproc['p50_ms']:.2f} ms, p99 {inproc['p99_ms']:.2f} ms", flush=True)
    scored = batch(args.model_dir, args.rows)
    http = over_http(args.model_dir, args.http)
    print(
        f"HTTP p50 {http['p50_ms']:.2f} ms, p99 {http['p99_ms']:.2f} ms, "
        f"RSS {http['rss_end_mb']:.0f} MB",
        flush=True,
    )

    slowest_batch = min(float(b["wrapper_rows_s"]) for b in scored)
    rows = [
        [
            "decision in-process (p50 / p99)",
            f"{inproc['p50_ms']:.2f} / {inproc['p99_ms']:.2f} ms",
            "p99 < 20 ms",
            verdict(inproc["p99_ms"] < TARGETS["inproc_p99_ms"]),
        ],
        [
            "decision over HTTP (p50 / p99)",
            f"{http['p50_ms']:.2f} / {http['p99_ms']:.2f} ms",
            "p99 < 50 ms",
            verdict(http["p99_ms"] < TARGETS["http_p99_ms"]),
        ],
        *[
            [
                f"batch scoring, {b['model']}",
                f"{fmt_int(float(b['wrapper_rows_s']))} rows/s",
                ">= 100,000 rows/s",
                verdict(float(b["wrapper_rows_s"]) >= TARGETS["batch_rows_s"]),
            ]
            for b in scored
        ],
        [
            "server RSS, both models loaded (start / after run)",
            f"{http['rss_start_mb']:.0f} / {http['rss_end_mb']:.0f} MB",
            "< 400 MB",
            verdict(http["rss_end_mb"] < TARGETS["rss_mb"]),
        ],
    ]
    overhead = table(
        ["model", "wrapper rows/s", "raw rows/s", "overhead (wrapper time / raw time)"],
        [
            [
                b["model"],
                fmt_int(float(b["wrapper_rows_s"])),
                fmt_int(float(b["raw_rows_s"])),
                f"{float(b['overhead']):.2f}x",
            ]
            for b in scored
        ],
    )
    body = "\n".join(
        [
            "## Credit decisions: latency, batch scoring, memory",
            "",
            *machine_lines(),
            f"- Runs: {args.decisions:,} decisions in-process, {int(http['n']):,} applications "
            f"over HTTP (one client, sequential, SQLite, simulated bureau), {args.rows:,} rows "
            "in batch.",
            "",
            table(["measure", "result", "target", ""], rows),
            "",
            "In-process: identity checks, simulated bureau, device signals, features, both models, "
            "policy, price, limit, capped offer with schedule and APR, record hash; no database, "
            "no OCR. HTTP adds the consent check, the writes (application, decision record, "
            "idempotency record) and the JSON. Batch: pd and score without reasons; raw = "
            "LightGBM `booster.predict` on the prepared matrix / the scorecard's points sum.",
            "",
            overhead,
            "",
            f"Slowest batch path: {fmt_int(slowest_batch)} rows/s.",
        ]
    )
    print(body)
    if args.write:
        print(f"wrote {write_section('decisions', body)}")


if __name__ == "__main__":
    sys.exit(main())
