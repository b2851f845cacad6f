"""Card scan latency: from the start of a scan to validated certificates, on SoftHSM2.

Median of 50 scans of one token holding two certificates (authentication and signature),
then of scans with 20 tokens present at once (per token). Target (issue 4): ≤ 150 ms per
token. Baseline, measured in the same run on the same tokens: the bare python-pkcs11 read
(reinitialise, list slots, open a session, read every certificate value) without parsing
nor validation; the ratio is what parsing, checks and validation add.

    python benchmarks/scan.py [--scans 50] [--jetons 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import CACHE, verdict

from cartes import readers
from fixtures.pki import build_test_pki
from fixtures.softhsm import SOFTHSM_MODULE, TokenSpec, softhsm, standard_tokens
from pki import VALID, CrlStore, TrustStore, Validator

TARGET_MS = 150.0


def median_ms(action, runs: int) -> float:  # type: ignore[no-untyped-def]
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def bare_read() -> int:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    library = pkcs11.lib(SOFTHSM_MODULE)
    library.reinitialize()
    values = 0
    for slot in library.get_slots(token_present=True):
        token = slot.get_token()
        if not token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
            continue
        with token.open() as session:
            for obj in list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})):
                values += len(obj[Attribute.VALUE])
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure du scan de cartes (SoftHSM2)")
    parser.add_argument("--scans", type=int, default=50)
    parser.add_argument("--jetons", type=int, default=20)
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pki = build_test_pki(now=now, key_cache=CACHE / "pki-keys")
    trust = TrustStore(
        {name: (family.root.certificate,) for name, family in pki.families.items()},
        tuple(family.issuing.certificate for family in pki.families.values()),
    )
    crls = CrlStore()
    for name in ("agent", "expert", "avocat", "agent_racine", "expert_racine", "avocat_racine"):
        crls.add(pki.crls[name], name)
    validator = Validator(trust, crls)
    card = next(spec for spec in standard_tokens(pki) if spec.label.startswith("Carte agent"))

    def scan_and_validate() -> int:
        report = readers.scan([SOFTHSM_MODULE])
        statuses = [
            validator.validate(found.certificate, now).status
            for token in report.tokens
            for found in token.certificates
            if found.certificate is not None
        ]
        assert statuses and all(status == VALID for status in statuses), statuses
        return len(report.tokens)

    print(f"Scan de cartes sur SoftHSM2 ({SOFTHSM_MODULE}), médiane de {args.scans} scans")
    with tempfile.TemporaryDirectory() as folder:
        store = softhsm(Path(folder) / "un")
        os.environ["SOFTHSM2_CONF"] = str(store.conf)
        store.add_token(card)
        assert scan_and_validate() == 1
        one = median_ms(scan_and_validate, args.scans)
        bare_one = median_ms(bare_read, args.scans)
        store.close()

        many = softhsm(Path(folder) / "vingt")
        os.environ["SOFTHSM2_CONF"] = str(many.conf)
        for number in range(args.jetons):
            many.add_token(TokenSpec(f"Carte {number + 1:02d}", card.certificates, card.pin))
        assert scan_and_validate() == args.jetons
        twenty = median_ms(scan_and_validate, max(5, args.scans // 5))
        bare_twenty = median_ms(bare_read, max(5, args.scans // 5))
        many.close()

    per_token = twenty / args.jetons
    print(
        f"  1 jeton, 2 certificats : {one:7.1f} ms (objectif ≤ {TARGET_MS:.0f} ms : "
        f"{verdict(one, TARGET_MS)}) ; lecture PKCS#11 seule {bare_one:.1f} ms, "
        f"rapport {one / bare_one:.1f}"
    )
    print(
        f"  {args.jetons} jetons présents    : {twenty:7.1f} ms, soit {per_token:.1f} ms par jeton "
        f"({verdict(per_token, TARGET_MS)}) ; lecture seule {bare_twenty:.1f} ms, "
        f"rapport {twenty / bare_twenty:.1f}"
    )


if __name__ == "__main__":
    main()
