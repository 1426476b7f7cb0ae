"""The admin reliability dashboard: SLOs and error budgets, system health, the domain tabs of the
original design, alerts (with acknowledgement) and trace waterfalls, over any ``Store``.

Needs the ``dashboard`` extra (``pip install 'avalo-otel[dashboard]'``: Starlette, Jinja2, uvicorn,
python-multipart); importing this package does not import them, ``create_app`` does.

    server = start_dashboard(store)              # uvicorn in a background thread
    print(server.url, server.admin_token)        # the token is generated when none is given
    server.stop()
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

if TYPE_CHECKING:
    from ..slo import SLO
    from ..store.base import Store
    from .server import DashboardServer

_MISSING = ("the dashboard needs its extra: pip install 'avalo-otel[dashboard]' "
            "(starlette, jinja2, uvicorn, python-multipart)")


def _require() -> None:
    try:
        import jinja2  # noqa: F401
        import python_multipart  # noqa: F401  (the login and acknowledge forms)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{_MISSING}; missing: {exc.name}") from None


def create_app(store: "Store", *, slos: Optional[Sequence["SLO"]] = None, admin_token: str,
               clock: Callable[[], float] = time.time) -> Any:
    """The dashboard as a Starlette (ASGI) app reading ``store``; ``slos=None`` means
    ``avalo_otel.slo.configured_slos()``. Every route needs ``admin_token`` (a login session or
    ``Authorization: Bearer``); ``clock`` (epoch seconds) is for tests and replays."""
    _require()
    from .app import create_app as _create

    return _create(store, slos=slos, admin_token=admin_token, clock=clock)


def start_dashboard(store: "Store", *, slos: Optional[Sequence["SLO"]] = None, host: str = "127.0.0.1",
                    port: int = 0, admin_token: Optional[str] = None,
                    clock: Callable[[], float] = time.time) -> "DashboardServer":
    """Serve the dashboard on ``host:port`` (0: a free port) from a background thread. Returns the
    server: ``.url``, ``.admin_token`` (generated with ``secrets.token_urlsafe`` when None) and
    ``.stop()`` (idempotent). ``clock`` (epoch seconds) is "now" for the windows: the demo passes
    its simulated clock."""
    _require()
    from .auth import new_token
    from .server import DashboardServer

    token = admin_token or new_token()
    app = create_app(store, slos=slos, admin_token=token, clock=clock)
    return DashboardServer(app, host=host, port=port, admin_token=token)


__all__ = ["create_app", "start_dashboard"]
