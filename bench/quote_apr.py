"""In-process speed of quoting and APR solving (no database, no HTTP).

Times a 12-period monthly annuity quote (schedule + IRR disclosure, `loans.quoting.quote`) and
the rate solvers of `loans.apr` on the same 12-payment stream: periodic IRR, the disclosure,
Reg Z (Appendix J), EU APRC, the dated IRR, and `solve_request` (the JSON entry point).
Target from the issue: a 12-period quote with its APR in under 1 ms.

    .venv/bin/python bench/quote_apr.py [--seconds 0.3] [--repeats 5] [--write]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from common import fmt_int, machine_lines, table, write_section

from mobilend.loans import apr
from mobilend.loans.quoting import quote, quote_json
from mobilend.loans.schedule import build_schedule
from mobilend.loans.terms import Frequency, LoanTerms, UpfrontFeeTreatment

TARGET_QUOTE_US = 1000.0


@dataclass
class Result:
    name: str
    mean_us: float
    best_us: float
    runs: int


def measure(name: str, fn: Callable[[], object], seconds: float, repeats: int) -> Result:
    """Mean and best time per call over `repeats` rounds of a calibrated number of calls."""
    fn()
    n = 1
    while True:  # calibrate: calls per round so that one round takes about `seconds`
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds / 4 or n >= 1_000_000:
            break
        n *= 2
    n = max(1, int(n * seconds / max(elapsed, 1e-9)))
    per_call = []
    gc.collect()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - t0) / n * 1e6)
    return Result(name, statistics.fmean(per_call), min(per_call), n * repeats)


def scenarios() -> list[tuple[str, Callable[[], object]]]:
    plain = LoanTerms(
        principal=Decimal("5000"),
        annual_rate=Decimal("0.12"),
        periods=12,
        frequency=Frequency.parse("monthly"),
        start=date(2025, 1, 15),
    )
    with_fees = LoanTerms(
        principal=Decimal("5000"),
        annual_rate=Decimal("0.12"),
        periods=12,
        frequency=Frequency.parse("monthly"),
        start=date(2025, 1, 15),
        upfront_fee=Decimal("100"),
        upfront_fee_treatment=UpfrontFeeTreatment.DEDUCTED,
        installment_fee=Decimal("5"),
    )
    schedule = build_schedule(with_fees)
    amounts = [-schedule.disbursed_amount] + [i.total for i in schedule.installments]
    ppy = with_fees.frequency.periods_per_year
    advances = [(with_fees.start, schedule.disbursed_amount)]
    payments = [(i.due_date, i.total) for i in schedule.installments]
    payload = {
        "method": "regz",
        "advances": [{"date": d.isoformat(), "amount": str(a)} for d, a in advances],
        "payments": [{"date": d.isoformat(), "amount": str(a)} for d, a in payments],
    }
    q = quote(plain)
    return [
        ("quote: 12 monthly, no fees (schedule + IRR)", lambda: quote(plain)),
        ("quote: 12 monthly, upfront + installment fee", lambda: quote(with_fees)),
        ("quote + quote_json (what POST /v1/quotes does)", lambda: quote_json(quote(plain))),
        ("(part) build_schedule", lambda: build_schedule(plain)),
        ("(part) quote_json", lambda: quote_json(q)),
        ("apr.periodic_irr (13 flows)", lambda: apr.periodic_irr(amounts)),
        ("apr.irr_disclosure (13 flows, 12/yr)", lambda: apr.irr_disclosure(amounts, ppy)),
        ("apr.regz_apr (dated, unit inferred)", lambda: apr.regz_apr(advances, payments)),
        ("apr.regz_apr (unit_period=month)", lambda: apr.regz_apr(advances, payments, "month")),
        ("apr.eu_aprc (dated)", lambda: apr.eu_aprc(advances, payments)),
        ("apr.dated_irr_apr (dated)", lambda: apr.dated_irr_apr(advances, payments)),
        ("apr.solve_request regz (JSON in/out)", lambda: apr.solve_request(payload)),
        (
            "apr.solve_request eu (JSON in/out)",
            lambda: apr.solve_request({**payload, "method": "eu"}),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time per round (s)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per operation")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    results = [measure(n, fn, args.seconds, args.repeats) for n, fn in scenarios()]
    rows = [
        [
            r.name,
            f"{r.mean_us:,.1f}",
            f"{r.best_us:,.1f}",
            fmt_int(1e6 / r.mean_us),
            fmt_int(r.runs),
        ]
        for r in results
    ]
    out = table(["operation", "mean µs/op", "best µs/op", "ops/s (mean)", "calls"], rows)
    quote_us = max(results[0].mean_us, results[1].mean_us)
    verdict = "met" if quote_us < TARGET_QUOTE_US else "NOT met"
    summary = (
        f"Target: a 12-period quote with its APR under 1 ms: **{verdict}** "
        f"(slowest quote variant {quote_us:,.0f} µs mean, "
        f"{quote_us / TARGET_QUOTE_US:.0%} of the budget)."
    )
    print(out)
    print()
    print(summary)
    if args.write:
        body = "\n".join(
            [
                "## Quotes and APR solves (in-process)",
                "",
                "One thread, no database or HTTP. A 12-period monthly annuity of 5,000 at 12%; "
                "the fee variant deducts 100 up front and adds 5 to each installment, and its "
                "13 cash flows are the stream every APR solver gets. Mean over "
                f"{args.repeats} rounds of about {args.seconds} s each; best is the fastest round.",
                "",
                *machine_lines(),
                "",
                out,
                "",
                summary,
            ]
        )
        print(f"\nwrote {write_section('quote_apr', body)}")


if __name__ == "__main__":
    main()
