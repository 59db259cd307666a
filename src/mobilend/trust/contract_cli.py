"""`mobilend contracts ...`: verify a signed contract, or any signed PDF with no database.

Output is JSON. Exit codes: 0 every check holds, 1 a check failed (named in the answer),
2 unreadable input or an error.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from mobilend.core.errors import MobilendError

contracts_app = typer.Typer(
    help="E-contracts: verify signatures, stored files and log leaves; the development PKI.",
    no_args_is_help=True,
)


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def _fail(exc: MobilendError) -> None:
    problem = {"type": exc.type, "detail": exc.detail, "field": exc.field, "rule": exc.rule}
    typer.echo(json.dumps({"error": problem}, ensure_ascii=False), err=True)
    raise typer.Exit(2)


@contracts_app.command("verify")
def verify(contract_id: Annotated[int, typer.Argument(help="the contract's id")]) -> None:
    """The contract's PAdES signature (pyHanko, against the trust roots), its stored file's
    SHA-256 against the recorded and logged hash, and its transparency-log leaf."""
    from mobilend.db.session import build_engine, session_factory, unit_of_work
    from mobilend.settings import get_settings
    from mobilend.trust.contracts import ContractConfig, verify_contract

    settings = get_settings()
    engine = build_engine(settings.database_url)
    try:
        config = ContractConfig.from_settings(settings)
        with unit_of_work(session_factory(engine)) as session:
            found = verify_contract(session, contract_id=contract_id, config=config)
    except MobilendError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits
    finally:
        engine.dispose()
    _echo(found.to_json())
    raise typer.Exit(0 if found.ok else 1)


@contracts_app.command("verify-file")
def verify_file(
    pdf: Annotated[Path, typer.Argument(help="a signed PDF")],
    trust_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust-root",
            help="a trusted root certificate (PEM/DER), repeatable; default: the configured "
            "roots, else data_dir/contract-pki/ca-cert.pem",
        ),
    ] = None,
) -> None:
    """Validate a signed PDF's signature with pyHanko; no database needed."""
    from mobilend.settings import get_settings
    from mobilend.trust import pades

    try:
        data = pdf.read_bytes()
    except OSError as exc:
        typer.echo(json.dumps({"error": {"detail": str(exc), "field": "pdf"}}), err=True)
        raise typer.Exit(2) from exc
    try:
        if trust_root:
            roots = pades.load_roots(trust_root)
        else:
            roots = pades.trust_roots(pades.config_from_env(), get_settings().data_dir)
    except MobilendError as exc:
        _fail(exc)
        raise
    if not roots:
        typer.echo(
            json.dumps(
                {"error": {"detail": "no trust root: pass --trust-root", "field": "trust_root"}}
            ),
            err=True,
        )
        raise typer.Exit(2)
    check = pades.validate(data, roots=roots)
    _echo({"file": str(pdf), "sha256": hashlib.sha256(data).hexdigest(), **check.to_json()})
    raise typer.Exit(0 if check.ok else 1)


@contracts_app.command("pki")
def pki() -> None:
    """Make the development CA, lender and TSA certificates in data_dir (if missing); show them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from mobilend.settings import get_settings
    from mobilend.trust import pades

    data_dir = get_settings().data_dir
    made = pades.dev_pki(data_dir, now=datetime.now(UTC))
    out: dict[str, Any] = {"directory": str(made.directory)}
    for name in ("ca", "lender", "tsa"):
        cert = x509.load_pem_x509_certificate(made.path(f"{name}-cert.pem").read_bytes())
        out[name] = {
            "subject": cert.subject.rfc4514_string(),
            "sha256": cert.fingerprint(hashes.SHA256()).hex(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        }
    _echo(out)
