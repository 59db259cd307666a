"""FastAPI assembly: each domain contributes its router."""

from __future__ import annotations

from fastapi import FastAPI

from mobilend import __version__
from mobilend.api import problems
from mobilend.core.clock import Clock, SystemClock
from mobilend.db.session import build_engine, session_factory
from mobilend.ledger.api import router as ledger_router
from mobilend.loans.api import router as loans_router
from mobilend.origination.api import router as borrowers_router
from mobilend.origination.service import cipher_from_settings
from mobilend.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Mobilend",
        version=__version__,
        description="Lending platform for mobile-phone loans: products, quotes, loans, ledger.",
    )
    engine = build_engine(settings.database_url)
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.clock = clock or SystemClock(settings.timezone)
    app.state.credential_cache = {}
    app.state.settings = settings
    # Configured personal-data keys are checked at start; without configuration the
    # development key file is created on first use (origination/pii.py).
    configured = settings.pii_keys or settings.pii_active_key or settings.pii_index_key
    app.state.pii = cipher_from_settings(settings) if configured else None
    problems.install(app)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(loans_router)
    app.include_router(ledger_router)
    app.include_router(borrowers_router)
    return app
