"""Forking (gunicorn pre-fork) while a store's gRPC calls are running.

A child forked while another thread of the parent is inside a gRPC call can find gRPC's internals
locked for good: its first call on a brand-new channel then hangs until its deadline (seen here:
one child in a dozen under load). gRPC's own fork support (``GRPC_ENABLE_FORK_SUPPORT``) skips
its handlers in exactly that case ("Other threads are currently calling into gRPC") and made
every child hang. So the stores hold a fork until their calls in flight have returned, and let no
new call start until the fork is done. The wait is bounded by the calls' own timeout.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Iterable


class CallsInFlight:
    """A context manager around each gRPC call of one store; ``hold`` and ``release`` bracket a
    fork."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._forking = False

    def __enter__(self) -> None:
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._running += 1

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self._running -= 1
            if not self._running:
                self._cond.notify_all()

    def hold(self, deadline: float) -> None:
        """Wait (until ``deadline``, monotonic) for the running calls to return; returns with the
        lock held, so none starts until ``release``."""
        self._cond.acquire()
        self._forking = True
        self._cond.wait_for(lambda: self._running == 0, max(0.0, deadline - time.monotonic()))

    def release(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()


def register(stores: Iterable[Any]) -> None:
    """At-fork hooks for every store in ``stores`` (a live WeakSet): each has ``calls``
    (a :class:`CallsInFlight`), ``timeout`` (seconds) and ``_after_fork_in_child()``."""
    if not hasattr(os, "register_at_fork"):
        return
    held: list[Any] = []

    def before() -> None:
        current = list(stores)
        deadline = time.monotonic() + max((store.timeout for store in current), default=0.0)
        for store in current:
            store.calls.hold(deadline)
            held.append(store)

    def after_in_parent() -> None:
        while held:
            held.pop().calls.release()

    def after_in_child() -> None:
        held.clear()  # the child's stores start over: fresh locks, no calls of the parent's threads
        for store in list(stores):
            store._after_fork_in_child()

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)
