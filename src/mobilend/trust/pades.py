"""The lender's PAdES signature on contracts: keys, timestamps, signing and validation (pyHanko).

- **Development PKI** (`dev_pki`): on first use, data_dir/contract-pki/ gets a development CA
  (EC P-256), the lender's signing certificate issued by it (EC P-256, digitalSignature and
  nonRepudiation) and a time-stamping authority's certificate (RSA 2048, as pyHanko's
  `DummyTimeStamper` signs only with RSA; extended key usage timeStamping). Private keys are
  PKCS#8 files of mode 0600. The files are made in a temporary directory renamed into place,
  so two processes starting together end up with the same PKI. Certificates are valid from a
  year before `now` to ten years after it: development only.
- **Real certificate** (`PadesConfig`, read from the environment by `config_from_env` until
  these move into Settings): `MOBILEND_CONTRACT_SIGNER_P12` (+ `..._P12_PASSWORD`), or
  `MOBILEND_CONTRACT_SIGNER_KEY` + `MOBILEND_CONTRACT_SIGNER_CERT` (PEM or DER; `..._KEY_PASSWORD`),
  with `MOBILEND_CONTRACT_SIGNER_CHAIN` (intermediate certificates, paths separated by the
  OS path separator); `MOBILEND_CONTRACT_TSA_URL` an RFC 3161 time-stamping service; and
  `MOBILEND_CONTRACT_TRUST_ROOTS`, the roots verification trusts. With no roots configured,
  verification trusts the development CA only.
- **Signing** (`sign`): PAdES baseline (subfilter ETSI.CAdES.detached), SHA-256, a signature
  timestamp from the TSA (the development TSA stamps the caller's `now`), as an incremental
  update: the signed file begins with the exact bytes of the draft.
- **Validation** (`validate`): pyHanko's `validate_pdf_signature` against the given roots with
  no network fetching; the verdict is pyHanko's `bottom_line` (intact, valid, trusted, and the
  timestamp likewise), never `valid` alone.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.keys import (
    load_cert_from_pemder,
    load_certs_from_pemder,
    load_private_key_from_pemder,
)
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import DummyTimeStamper, HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from mobilend.core.errors import Conflict, ValidationFailed

PKI_DIR = "contract-pki"
FIELD_NAME = "MobilendLender"
ENV_PREFIX = "MOBILEND_CONTRACT_"
_PKI_FILES = (
    "ca-cert.pem",
    "ca-key.pem",
    "lender-cert.pem",
    "lender-key.pem",
    "tsa-cert.pem",
    "tsa-key.pem",
)
_LOCK = threading.Lock()


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call one of pyHanko's unannotated functions (mypy sees it as untyped)."""
    return fn(*args, **kwargs)


# pyHanko logs a full traceback at WARNING for every untrusted path; our report carries it.
logging.getLogger("pyhanko.sign.validation.generic_cms").setLevel(logging.ERROR)


# -- configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class PadesConfig:
    """Where the lender's real key, certificate, TSA and trust roots are; empty: development."""

    signer_p12: Path | None = None
    signer_p12_password: str | None = None
    signer_key: Path | None = None
    signer_cert: Path | None = None
    signer_key_password: str | None = None
    signer_chain: tuple[Path, ...] = ()
    tsa_url: str | None = None
    trust_roots: tuple[Path, ...] = field(default=())

    @property
    def real_signer(self) -> bool:
        return self.signer_p12 is not None or self.signer_key is not None


def _paths(text: str | None) -> tuple[Path, ...]:
    return tuple(Path(p) for p in (text or "").split(os.pathsep) if p.strip())


def config_from_env(environ: Mapping[str, str] | None = None) -> PadesConfig:
    """The MOBILEND_CONTRACT_* variables (see the module docstring); unset means development."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(ENV_PREFIX + name, "").strip()
        return value or None

    def path(name: str) -> Path | None:
        value = get(name)
        return Path(value) if value else None

    config = PadesConfig(
        signer_p12=path("SIGNER_P12"),
        signer_p12_password=get("SIGNER_P12_PASSWORD"),
        signer_key=path("SIGNER_KEY"),
        signer_cert=path("SIGNER_CERT"),
        signer_key_password=get("SIGNER_KEY_PASSWORD"),
        signer_chain=_paths(get("SIGNER_CHAIN")),
        tsa_url=get("TSA_URL"),
        trust_roots=_paths(get("TRUST_ROOTS")),
    )
    if config.signer_p12 is not None and config.signer_key is not None:
        raise ValidationFailed(
            "signer", "one-of", "set MOBILEND_CONTRACT_SIGNER_P12 or ..._SIGNER_KEY, not both"
        )
    if (config.signer_key is None) != (config.signer_cert is None):
        raise ValidationFailed(
            "signer", "key-and-cert", "MOBILEND_CONTRACT_SIGNER_KEY needs ..._SIGNER_CERT"
        )
    return config


# -- development PKI ---------------------------------------------------------------------


@dataclass(frozen=True)
class DevPki:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca-cert.pem")


def dev_pki(data_dir: Path, *, now: datetime) -> DevPki:
    """data_dir/contract-pki, made on first use (see the module docstring)."""
    target = Path(data_dir) / PKI_DIR
    with _LOCK:
        if not (target / _PKI_FILES[-1]).exists():
            _create_pki(target, now)
    missing = [name for name in _PKI_FILES if not (target / name).exists()]
    if missing:
        raise Conflict(f"{target} lacks {', '.join(missing)}", field="pki", rule="incomplete")
    return DevPki(target)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mobilend development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, sign: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    subject: str,
    key: Any,
    issuer: x509.Certificate | None,
    issuer_key: Any,
    now: datetime,
    *,
    ca: bool = False,
    tsa: bool = False,
) -> x509.Certificate:
    start = now.astimezone(UTC) - timedelta(days=365)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * 11))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_usage(sign=not ca, ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if tsa:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: Any) -> bytes:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _create_pki(target: Path, now: datetime) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Mobilend development CA", ca_key, None, ca_key, now, ca=True)
    lender_key = ec.generate_private_key(ec.SECP256R1())
    lender = _certificate("Mobilend lender (development)", lender_key, ca, ca_key, now)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = _certificate("Mobilend TSA (development)", tsa_key, ca, ca_key, now, tsa=True)
    pem = serialization.Encoding.PEM
    files = {
        "ca-cert.pem": (ca.public_bytes(pem), 0o644),
        "ca-key.pem": (_pem_key(ca_key), 0o600),
        "lender-cert.pem": (lender.public_bytes(pem), 0o644),
        "lender-key.pem": (_pem_key(lender_key), 0o600),
        "tsa-cert.pem": (tsa.public_bytes(pem), 0o644),
        "tsa-key.pem": (_pem_key(tsa_key), 0o600),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    staging.mkdir(mode=0o700)
    try:
        for name in _PKI_FILES:  # the last one written marks a complete directory
            data, mode = files[name]
            _write(staging / name, data, mode)
        try:
            os.rename(staging, target)  # atomic; fails if another process got there first
        except OSError:
            if not (target / _PKI_FILES[-1]).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- signer, timestamper, roots ----------------------------------------------------------


def _password(text: str | None) -> bytes | None:
    return text.encode("utf-8") if text is not None else None


def signer_for(config: PadesConfig, data_dir: Path, *, now: datetime) -> signers.SimpleSigner:
    """The lender's signer: the configured certificate, else the development one."""
    if config.signer_p12 is not None:
        loaded = _call(
            signers.SimpleSigner.load_pkcs12,
            str(config.signer_p12),
            ca_chain_files=[str(p) for p in config.signer_chain] or None,
            passphrase=_password(config.signer_p12_password),
        )
        where = str(config.signer_p12)
    elif config.signer_key is not None and config.signer_cert is not None:
        loaded = _call(
            signers.SimpleSigner.load,
            str(config.signer_key),
            str(config.signer_cert),
            ca_chain_files=[str(p) for p in config.signer_chain] or None,
            key_passphrase=_password(config.signer_key_password),
        )
        where = f"{config.signer_key} and {config.signer_cert}"
    else:
        pki = dev_pki(data_dir, now=now)
        loaded = _call(
            signers.SimpleSigner.load,
            str(pki.path("lender-key.pem")),
            str(pki.path("lender-cert.pem")),
            ca_chain_files=[str(pki.ca_cert)],
        )
        where = str(pki.directory)
    if not isinstance(loaded, signers.SimpleSigner):  # pyHanko returns None on error
        raise Conflict(f"cannot load the contract signing key from {where}", field="signer")
    return loaded


def timestamper_for(config: PadesConfig, data_dir: Path, *, now: datetime) -> TimeStamper:
    """The configured RFC 3161 service, else the development TSA stamping `now`."""
    if config.tsa_url:
        return HTTPTimeStamper(config.tsa_url, timeout=10)
    pki = dev_pki(data_dir, now=now)
    return DummyTimeStamper(
        tsa_cert=_call(load_cert_from_pemder, str(pki.path("tsa-cert.pem"))),
        tsa_key=_call(load_private_key_from_pemder, str(pki.path("tsa-key.pem")), None),
        certs_to_embed=_call(SimpleCertificateStore.from_certs, [_ca(pki)]),
        fixed_dt=now.astimezone(UTC),
    )


def _ca(pki: DevPki) -> asn1_x509.Certificate:
    cert: asn1_x509.Certificate = _call(load_cert_from_pemder, str(pki.ca_cert))
    return cert


def load_roots(paths: Iterable[Path]) -> list[asn1_x509.Certificate]:
    """Certificates from PEM or DER files (a PEM file may hold several)."""
    roots: list[asn1_x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(_call(load_certs_from_pemder, [str(path)]))
        except (OSError, ValueError) as exc:
            raise ValidationFailed(
                "trust_root", "certificate", f"cannot read {path}: {exc}"
            ) from exc
    return roots


def trust_roots(config: PadesConfig, data_dir: Path) -> list[asn1_x509.Certificate]:
    """The configured roots, else the development CA (if it exists; never made here)."""
    if config.trust_roots:
        return load_roots(config.trust_roots)
    ca = Path(data_dir) / PKI_DIR / "ca-cert.pem"
    return load_roots([ca]) if ca.exists() else []


# -- signing and validation --------------------------------------------------------------


def sign(
    pdf: bytes,
    *,
    signer: signers.Signer,
    timestamper: TimeStamper,
    reason: str,
    location: str,
) -> bytes:
    """Add the lender's PAdES signature (with a signature timestamp) as an incremental update."""
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        out = signers.sign_pdf(writer, meta, signer=signer, timestamper=timestamper)
    except (PdfError, SigningError, OSError) as exc:
        raise Conflict(f"cannot sign the contract: {exc}", field="signature") from exc
    signed: bytes = out.getvalue()
    return signed


@dataclass(frozen=True)
class SignatureCheck:
    """pyHanko's verdict on the (last) signature of a PDF. `bottom_line` is pyHanko's own;
    `ok` also requires the signature timestamp a contract must carry."""

    present: bool
    intact: bool
    valid: bool
    trusted: bool
    timestamp_ok: bool
    bottom_line: bool
    covers_whole_file: bool
    signer: str | None = None
    timestamp: datetime | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bottom_line and self.timestamp_ok

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "present": self.present,
            "intact": self.intact,
            "valid": self.valid,
            "trusted": self.trusted,
            "timestamp_ok": self.timestamp_ok,
            "bottom_line": self.bottom_line,
            "covers_whole_file": self.covers_whole_file,
            "signer": self.signer,
            "timestamp": self.timestamp.astimezone(UTC).isoformat() if self.timestamp else None,
            "problem": self.problem,
        }


def _failed(problem: str, *, present: bool) -> SignatureCheck:
    return SignatureCheck(present, False, False, False, False, False, False, problem=problem)


def validate(
    pdf: bytes, *, roots: list[asn1_x509.Certificate], moment: datetime | None = None
) -> SignatureCheck:
    """Validate the last signature against `roots` only (no fetching, no OS trust store)."""
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    unreadable = (PdfError, ValueError, KeyError, TypeError, OSError)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        fields = reader.root["/AcroForm"]["/Fields"] if "/AcroForm" in reader.root else []
    except unreadable as exc:
        return _failed(f"not a readable PDF: {exc}", present=False)
    try:
        embedded = reader.embedded_signatures
    except unreadable as exc:  # e.g. a damaged /Contents: the CMS object does not parse
        return _failed(f"a signature cannot be read: {exc}", present=len(fields) > 0)
    if not embedded:
        return _failed("the PDF has no signature", present=False)
    context = ValidationContext(
        trust_roots=list(roots),
        allow_fetching=False,
        moment=moment.astimezone(UTC) if moment else None,
    )
    try:
        status = validate_pdf_signature(embedded[-1], context)
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        return _failed(f"the signature cannot be validated: {exc}", present=True)
    ts = status.timestamp_validity
    timestamp_ok = ts is not None and ts.intact and ts.valid and ts.trusted
    problem = None
    if not status.bottom_line:
        indication = status.trust_problem_indic
        problem = str(indication) if indication is not None else "not intact or not valid"
    return SignatureCheck(
        present=True,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        timestamp_ok=timestamp_ok,
        bottom_line=status.bottom_line,
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer=status.signing_cert.subject.human_friendly,
        timestamp=ts.timestamp if ts is not None else None,
        problem=problem,
    )
