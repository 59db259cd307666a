"""FastAPI assembly: each domain contributes its router."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import time, timedelta

from fastapi import FastAPI

from mobilend import __version__
from mobilend.analytics.api import router as portfolio_router
from mobilend.api import audit_api, problems
from mobilend.collateral.api import router as collateral_router
from mobilend.collateral.device_api import router as devices_router
from mobilend.collections.api import router as collections_router
from mobilend.core.clock import Clock, SystemClock
from mobilend.db.session import build_engine, session_factory
from mobilend.decisioning.api import models_for
from mobilend.decisioning.api import router as applications_router
from mobilend.ledger.api import router as ledger_router
from mobilend.loans.api import router as loans_router
from mobilend.notify.api import router as notifications_router
from mobilend.origination.api import router as borrowers_router
from mobilend.origination.ocr_api import router as ocr_router
from mobilend.origination.service import cipher_from_settings
from mobilend.servicing import schedule as close_schedule
from mobilend.servicing.api import router as close_router
from mobilend.settings import Settings, get_settings
from mobilend.trust import schedule
from mobilend.trust.api import router as log_router
from mobilend.trust.contract_api import router as contracts_router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load (on the very first start: train) the decision models; run the log's timetable."""
    settings: Settings = app.state.settings
    if settings.preload_models and app.state.models is None:
        app.state.models = models_for(settings)
    stop = threading.Event()
    worker = None
    if settings.log_schedule:
        worker = threading.Thread(
            target=schedule.run_forever,
            kwargs={
                "engine": app.state.engine,
                "sessions": app.state.sessions,
                "clock": app.state.clock.now,
                "data_dir": settings.data_dir,
                "sth_every": timedelta(seconds=settings.log_sth_interval_seconds),
                "audit_every": timedelta(seconds=settings.log_audit_interval_seconds),
                "stop": stop.wait,
            },
            name="log-schedule",
            daemon=True,
        )
        worker.start()
    closer = None
    if settings.close_schedule and app.state.engine.dialect.name == "sqlite":
        closer = threading.Thread(
            target=close_schedule.run_forever,
            kwargs={
                "sessions": app.state.sessions,
                "clock": app.state.clock.now,
                "timezone": settings.timezone,
                "at": time.fromisoformat(settings.close_time),
                "data_dir": settings.data_dir,
                "partition_size": settings.close_partition_size,
                "stop": stop.wait,
            },
            name="close-schedule",
            daemon=True,
        )
        closer.start()
    yield
    stop.set()
    for thread in (worker, closer):
        if thread is not None:
            thread.join(timeout=30)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Mobilend",
        version=__version__,
        description="Lending platform for mobile-phone loans: products, quotes, loans, ledger.",
        lifespan=_lifespan,
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
    app.state.models = None  # the decision models, loaded at startup or on first decision
    problems.install(app)
    audit_api.install(app)  # who did what from where (docs/audit-trail.md)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in ROUTERS:
        app.include_router(router)
    return app


# Each domain contributes its router; every route in them declares its permission (tested).
ROUTERS = (
    loans_router,
    ledger_router,
    borrowers_router,
    ocr_router,
    applications_router,
    collateral_router,
    devices_router,
    log_router,
    audit_api.router,
    contracts_router,
    collections_router,
    notifications_router,
    portfolio_router,
    close_router,
)
