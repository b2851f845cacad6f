"""Certificate validation throughput: ``pki`` against ``cryptography`` alone and against
``pyhanko-certvalidator``, on the same inputs, in one run.

Inputs: N RSA-2048 holder certificates of the lawyers' test family (root → issuing CA →
holder: chain depth 3), a CRL of the issuing CA with at least 10,000 revoked entries (1 %
of the holders among them) and the root's CRL.

Printed: validations per second for
  (a) ``pki.Validator.validate_many`` (RFC 5280 profile, chain, key usage, revocation of
      every certificate below the root),
  (b) ``cryptography.x509.verification`` alone (chain only, its stock policies),
  (c) ``pyhanko-certvalidator`` with the same CRLs (revocation mode "require"),
and the ratios a/b (target ≥ 0.6) and a/c (target ≥ 10); the time to load and index a
100,000-entry CRL (target ≤ 1 s); and ``cartes valider --format jsonl``, output included:
its marginal rate (the N-certificate bundle minus a smaller one, so that start-up and
loading the CRLs cancel out) against (b), target ≥ 0.6. Timings are the best of five,
the command line and (b) taking turns so that both see the same machine.

    python benchmarks/validation.py [--certificats 12000] [--petit 2000] [--entrees 10000]
                                    [--pyhanko 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, CARTES, at_least, user_environment, verdict
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store

from fixtures.pki import big_crl, build_test_pki, issue_holders
from pki import VALID, CrlStore, TrustStore, ValidationResult, Validator, load_crl
from pki.crl import IndexedCrl


def best_of(repetitions: int, action) -> float:  # type: ignore[no-untyped-def]
    """The shortest of several timings: the least disturbed by the rest of the machine."""
    timings = []
    for _ in range(repetitions):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de la validation de certificats")
    parser.add_argument("--certificats", type=int, default=12_000)
    parser.add_argument("--petit", type=int, default=2000, help="lot de référence du marginal")
    parser.add_argument("--entrees", type=int, default=10_000)
    parser.add_argument("--pyhanko", type=int, default=200, help="certificats pour (c)")
    args = parser.parse_args()

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pki = build_test_pki(now=now, key_cache=CACHE / "pki-keys")
    family = pki.families["avocat"]
    root, issuing = family.root.certificate, family.issuing.certificate
    holders = [h.certificate for h in issue_holders(family, args.certificats, now=now)]
    revoked = [c.serial_number for c in holders[::100]]
    crl = big_crl(family.issuing, args.entrees, now=now, include=revoked)
    root_crl = pki.crls["avocat_racine"]
    print(
        f"Validation : {len(holders)} certificats RSA-2048 (profondeur 3), LCR de {len(crl)} "
        f"entrées dont {len(revoked)} des titulaires"
    )

    # (a) pki, with revocation
    store = CrlStore()
    store.add(crl, "emettrice")
    store.add(root_crl, "racine")
    validator = Validator(TrustStore({"cle_rpva": (root,)}, (issuing,)), store)
    statuses: dict[str, int] = {}

    def with_pki() -> None:
        statuses.clear()
        for result in validator.validate_many(((c, None) for c in holders), now):
            assert isinstance(result, ValidationResult)
            statuses[result.status] = statuses.get(result.status, 0) + 1

    seconds_a = best_of(3, with_pki)
    assert statuses.get(VALID) == len(holders) - len(revoked), statuses

    # (b) cryptography's verifier alone
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(now)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )

    def with_cryptography() -> None:
        for certificate in holders:
            verifier.verify(certificate, [issuing])

    seconds_b = best_of(3, with_cryptography)

    # (c) pyhanko-certvalidator, same CRLs, on a sample (it is much slower)
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    def asn1(certificate) -> asn1_x509.Certificate:  # type: ignore[no-untyped-def]
        return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))

    sample = [asn1(c) for c in holders[: args.pyhanko]]
    context = ValidationContext(
        trust_roots=[asn1(root)],
        other_certs=[asn1(issuing)],
        crls=[crl.public_bytes(Encoding.DER), root_crl.public_bytes(Encoding.DER)],
        moment=now,
        revocation_mode="require",  # revocation must be checked, as (a) does
    )

    async def with_pyhanko() -> int:
        good = 0
        for certificate in sample:
            try:
                await CertificateValidator(
                    certificate, validation_context=context
                ).async_validate_usage(set())
                good += 1
            except Exception:  # revoked ones: refused, as they should be
                continue
        return good

    asyncio.run(with_pyhanko())  # warm-up: parses and indexes the CRL once, like (a) did
    start = time.perf_counter()
    good_c = asyncio.run(with_pyhanko())
    seconds_c = time.perf_counter() - start
    sample_serials = {c.serial_number for c in holders[: args.pyhanko]}
    expected_c = len(sample) - len(sample_serials.intersection(revoked))
    assert good_c == expected_c, (good_c, expected_c)

    rate_a = len(holders) / seconds_a
    rate_b = len(holders) / seconds_b
    rate_c = len(sample) / seconds_c
    print(f"  (a) pki avec révocation           : {rate_a:8.0f} validations/s")
    print(f"  (b) cryptography seul (chaîne)    : {rate_b:8.0f} validations/s")
    print(
        f"  (c) pyhanko-certvalidator + LCR   : {rate_c:8.0f} validations/s "
        f"({len(sample)} certificats)"
    )
    print(f"  a/b = {rate_a / rate_b:.2f} (objectif ≥ 0,6 : {at_least(rate_a / rate_b, 0.6)})")
    print(f"  a/c = {rate_a / rate_c:.1f} (objectif ≥ 10 : {at_least(rate_a / rate_c, 10)})")

    # Loading and indexing a 100,000-entry CRL
    large = big_crl(family.issuing, 100_000, now=now).public_bytes(Encoding.DER)
    load_times = []
    for _ in range(3):
        start = time.perf_counter()
        indexed = IndexedCrl(load_crl(large), "grande")
        load_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    assert indexed.signed_by(issuing)
    signature = time.perf_counter() - start
    load = statistics.median(load_times)
    print(
        f"  LCR de {len(indexed)} entrées ({len(large) / 1e6:.1f} Mo) : chargement et index "
        f"{load:.3f} s (objectif ≤ 1 s : {verdict(load, 1.0)}), signature {signature:.3f} s"
    )

    # cartes valider on two bundles, one process each; the difference is the marginal
    # cost of a certificate, output included.
    small = min(args.petit, len(holders) // 2)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        (directory / "racine.pem").write_bytes(root.public_bytes(Encoding.PEM))
        (directory / "emettrice.pem").write_bytes(issuing.public_bytes(Encoding.PEM))
        (directory / "emettrice.crl").write_bytes(crl.public_bytes(Encoding.DER))
        (directory / "racine.crl").write_bytes(root_crl.public_bytes(Encoding.DER))
        commands = {}
        for label, count in (("petit", small), ("grand", len(holders))):
            bundle = directory / f"lot-{label}.pem"
            bundle.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in holders[:count]))
            commands[label] = [
                CARTES, "valider", str(bundle),
                "--ancre", str(directory / "racine.pem"),
                "--intermediaire", str(directory / "emettrice.pem"),
                "--crl", str(directory / "emettrice.crl"), "--crl", str(directory / "racine.crl"),
                "--date", now.isoformat(), "--format", "jsonl",
            ]  # fmt: skip
        _timed(commands["petit"])  # warm-up: bytecode and page cache
        timings: dict[str, list[float]] = {"petit": [], "grand": [], "b": []}
        for _ in range(5):
            for label in ("petit", "grand"):
                seconds, output = _timed(commands[label])
                timings[label].append(seconds)
            timings["b"].append(best_of(1, with_cryptography))
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == len(holders)
    assert sum(line["statut"] == VALID for line in lines) == len(holders) - len(revoked)
    marginal = (len(holders) - small) / (min(timings["grand"]) - min(timings["petit"]))
    rate_b_cli = len(holders) / min(timings["b"])
    print(
        f"  cartes valider --format jsonl : {len(holders)} certificats en "
        f"{min(timings['grand']):.2f} s, {small} en {min(timings['petit']):.2f} s ; "
        f"marginal {marginal:.0f} certificats/s"
    )
    print(
        f"  rapport à (b) mesuré en alternance ({rate_b_cli:.0f} chaînes/s) : "
        f"{marginal / rate_b_cli:.2f} (objectif ≥ 0,6 : {at_least(marginal / rate_b_cli, 0.6)})"
    )


def _timed(command: list[str]) -> tuple[float, str]:
    """Run ``command`` with its output going to a file, as in ``cartes valider lot.p7b
    --format jsonl > resultats.jsonl``: its wall time and what it wrote."""
    import subprocess

    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        completed = subprocess.run(
            command, env=user_environment(), stdout=out, stderr=subprocess.PIPE, check=False
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        written = out.read().decode()
    if completed.returncode not in (0, 1):
        sys.stderr.write(completed.stderr.decode(errors="replace"))
        raise SystemExit(f"cartes valider : code {completed.returncode}")
    return seconds, written


if __name__ == "__main__":
    main()
