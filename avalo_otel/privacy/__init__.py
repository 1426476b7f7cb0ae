"""What keeps personal data inside the process: keyed pseudonymisation (redaction follows)."""

from .pseudonym import Pseudonymizer

__all__ = ["Pseudonymizer"]
