"""Which Firestore / gRPC / auth failures a retry may fix."""

from __future__ import annotations

import grpc
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exc

from avalo_otel.store.base import StoreError

# Never retry inside the client: the exporter above owns retry and backoff, and a dead backend
# must fail within ``timeout`` instead of after the client's 60 s default retry deadline. (A
# Retry that retries nothing rather than ``retry=None``, because Query.stream dereferences it.)
NO_RETRY = Retry(predicate=lambda exc: False)

_TRANSIENT_API = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.GatewayTimeout,
    gexc.BadGateway,
    gexc.InternalServerError,
    gexc.Aborted,
    gexc.TooManyRequests,  # includes ResourceExhausted: Firestore's "slow down"
    gexc.RetryError,
)
_TRANSIENT_GRPC = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_API):
        return True
    if isinstance(exc, gexc.GoogleAPIError):
        return False
    if isinstance(exc, grpc.RpcError):
        code = getattr(exc, "code", None)
        try:
            return callable(code) and code() in _TRANSIENT_GRPC
        except Exception:  # a bare RpcError has no usable code(): treat as a broken connection
            return True
    if isinstance(exc, auth_exc.RefreshError):
        return bool(getattr(exc, "retryable", False))
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return False
    # Token fetches and raw sockets failing are network trouble, not bad input.
    return isinstance(exc, (auth_exc.TransportError, OSError))


def store_error(exc: BaseException, what: str) -> StoreError:
    """``exc`` as a ``StoreError`` (transient when a retry may succeed)."""
    if isinstance(exc, StoreError):
        return exc
    text = str(exc).splitlines()[0] if str(exc) else ""
    error = StoreError(f"firestore {what} failed: {type(exc).__name__}: {text}"[:500], transient=is_transient(exc))
    error.__cause__ = exc
    return error
