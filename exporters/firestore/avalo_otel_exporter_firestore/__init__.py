"""Cloud Firestore storage for avalo-otel: ``FirestoreStore`` and the ``firestore`` OTel exporters."""

from __future__ import annotations

from .store import FirestoreStore

__all__ = ["FirestoreStore"]
