"""Session fixtures of the test PKI: keys cached between runs, certificates issued anew
with the URLs of a real HTTP server on 127.0.0.1 (CRLs and OCSP)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fixtures.pki import build_test_pki, serve_test_pki
from fixtures.pki_server import PkiServer

PKI_NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
# RSA key generation is the slow part: keys are kept between test runs.
KEY_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "test-pki-keys"
# Test families and the kind of credential their anchor stands for.
KINDS = {"agent": "carte_agent", "expert": "carte_expert", "avocat": "cle_rpva"}


@pytest.fixture(scope="session")
def pki_server():
    with PkiServer() as server:
        yield server


@pytest.fixture(scope="session")
def test_pki(pki_server):
    pki = build_test_pki(now=PKI_NOW, base_url=pki_server.base_url, key_cache=KEY_CACHE)
    serve_test_pki(pki_server, pki)
    return pki
