"""Remembering something about a certificate object, by identity.

Hashing an ``x509.Certificate`` costs about 10 µs (cryptography hashes its encoding each
time), more than most of what is remembered. The CAs a batch meets are the same few
objects again and again, so they are remembered by identity; each entry keeps its object
alive, so that an identity is never reused while it is remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cryptography import x509

V = TypeVar("V")


class ByIdentity(Generic[V]):
    """Values computed once per (certificate object, extra key), at most ``limit``."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._entries: dict[tuple[int, Hashable], tuple[x509.Certificate, V]] = {}

    def get(
        self, certificate: x509.Certificate, compute: Callable[[], V], extra: Hashable = None
    ) -> V:
        """The value remembered for ``certificate`` (and ``extra``), computed if new."""
        key = (id(certificate), extra)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is certificate:
            return entry[1]
        value = compute()
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (certificate, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
