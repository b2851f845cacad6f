"""The synthetic inventory generator: shape, coherence, proportions and CSV output."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import pathlib
import re
import tracemalloc
from collections import Counter, defaultdict

import pytest

from fixtures.synthetic import (
    DISTRICT_ORGANISATIONS,
    IMPORT_COLUMNS,
    generate_rows,
    main,
    write_csv,
)
from inventaire.organisations import ANGERS_DISTRICT

TODAY = dt.date(2025, 6, 2)
HOLDERS = 5_000

ROLES = {
    "magistrat",
    "greffier",
    "directeur_de_greffe",
    "agent",
    "expert",
    "avocat",
    "partie",
    "intervenant",
}
TYPES = {"carte_agent", "carte_expert", "cle_rpva", "carte_temporaire"}
STATES = {
    "demandee",
    "recue",
    "active",
    "suspendue",
    "perdue",
    "defectueuse",
    "restituee",
    "revoquee",
    "annulee",
}
HANDED_OVER = {"active", "suspendue", "perdue", "defectueuse", "restituee", "revoquee"}
SERIAL_PATTERNS = {
    "carte_agent": re.compile(r"JUS[0-9A-F]{12}"),
    "carte_expert": re.compile(r"CE\d+"),
    "cle_rpva": re.compile(r"RPVA-\d+"),
    "carte_temporaire": re.compile(r"TMP-\d+"),
}
TRIBUNALS = {"TJ Angers", "TJ Saumur", "TJ Laval", "TJ Le Mans"}
COURTS = {"CA Angers", *TRIBUNALS}
BARS = {"Barreau d'Angers", "Barreau de Saumur", "Barreau de Laval", "Barreau du Mans"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(generate_rows(HOLDERS, seed=7, today=TODAY))


@pytest.fixture(scope="module")
def by_holder(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    holders: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        holders[row["email"]].append(row)
    return holders


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_public_constants() -> None:
    assert IMPORT_COLUMNS == (
        "nom",
        "prenom",
        "email",
        "role",
        "organisation",
        "type",
        "modele",
        "numero_serie",
        "etat",
        "date_remise",
        "date_expiration",
    )
    assert len(DISTRICT_ORGANISATIONS) == 11
    assert set(DISTRICT_ORGANISATIONS) == {o.short_name for o in ANGERS_DISTRICT}
    assert set(DISTRICT_ORGANISATIONS) == {
        *COURTS,
        *BARS,
        "Compagnie des experts d'Angers",
        "SAR Angers",
    }


def test_same_seed_same_rows() -> None:
    first = list(generate_rows(500, seed=3, today=TODAY))
    second = list(generate_rows(500, seed=3, today=TODAY))
    assert first == second


def test_different_seeds_or_days_differ() -> None:
    base = list(generate_rows(200, seed=1, today=TODAY))
    assert base != list(generate_rows(200, seed=2, today=TODAY))
    later = list(generate_rows(200, seed=1, today=TODAY + dt.timedelta(days=10)))
    assert [r["date_expiration"] for r in base] != [r["date_expiration"] for r in later]


def test_smaller_run_is_a_prefix_of_a_larger_one() -> None:
    small = list(generate_rows(300, seed=4, today=TODAY))
    large = list(generate_rows(1_000, seed=4, today=TODAY))
    assert large[: len(small)] == small


def test_zero_holders_no_rows_and_negative_refused() -> None:
    assert list(generate_rows(0, today=TODAY)) == []
    with pytest.raises(ValueError):
        generate_rows(-1, today=TODAY)


def test_rows_are_streamed_not_built_in_memory() -> None:
    tracemalloc.start()
    try:
        # Not a huge count: an eager regression must fail here, not exhaust the machine.
        rows = generate_rows(40_000, seed=1, today=TODAY)
        consumed = sum(1 for _ in itertools.islice(rows, 20_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert consumed == 20_000
    # Keeping 20,000 rows would take about 12 MB; streaming them takes about 2.
    assert peak < 6_000_000


def test_every_value_is_a_string_in_the_allowed_sets(rows: list[dict[str, str]]) -> None:
    for row in rows:
        assert tuple(row) == IMPORT_COLUMNS
        assert all(isinstance(value, str) for value in row.values())
        assert row["role"] in ROLES
        assert row["organisation"] in DISTRICT_ORGANISATIONS
        assert row["type"] in TYPES
        assert row["etat"] in STATES
        assert row["nom"] and row["prenom"]


def test_organisation_role_and_type_fit_together(rows: list[dict[str, str]]) -> None:
    for row in rows:
        role, organisation, kind = row["role"], row["organisation"], row["type"]
        if role == "avocat":
            assert organisation in BARS and kind == "cle_rpva"
        elif role == "expert":
            assert organisation == "Compagnie des experts d'Angers" and kind == "carte_expert"
        elif role in {"partie", "intervenant"}:
            assert organisation in TRIBUNALS and kind == "carte_temporaire"
        else:
            assert organisation in COURTS | {"SAR Angers"} and kind == "carte_agent"
            if organisation == "SAR Angers":
                assert role == "agent"


def test_model_only_for_agent_cards(rows: list[dict[str, str]]) -> None:
    models = Counter(row["modele"] for row in rows if row["type"] == "carte_agent")
    assert set(models) == {"ancien", "nouveau"}
    assert models["nouveau"] > 2 * models["ancien"]
    assert all(row["modele"] == "" for row in rows if row["type"] != "carte_agent")


def test_serials_unique_per_type_and_well_formed(rows: list[dict[str, str]]) -> None:
    serials = [(row["type"], row["numero_serie"]) for row in rows if row["numero_serie"]]
    assert len(serials) == len(set(serials))
    for kind, serial in serials:
        assert SERIAL_PATTERNS[kind].fullmatch(serial), serial


def test_serials_stay_unique_on_a_large_run() -> None:
    seen: set[tuple[str, str]] = set()
    for row in generate_rows(100_000, seed=11, today=TODAY):
        if row["numero_serie"]:
            key = (row["type"], row["numero_serie"])
            assert key not in seen
            seen.add(key)


def test_serial_empty_only_for_requested_cards(rows: list[dict[str, str]]) -> None:
    for row in rows:
        assert (row["numero_serie"] == "") == (row["etat"] == "demandee")
    requested = Counter((row["email"], row["type"]) for row in rows if row["numero_serie"] == "")
    assert requested and max(requested.values()) == 1


def test_one_holder_one_identity_and_consecutive_rows(
    rows: list[dict[str, str]], by_holder: dict[str, list[dict[str, str]]]
) -> None:
    assert len(by_holder) == HOLDERS
    for holder_rows in by_holder.values():
        identities = {
            (r["nom"], r["prenom"], r["role"], r["organisation"], r["type"]) for r in holder_rows
        }
        assert len(identities) == 1
    emails_in_order = [email for email, _ in itertools.groupby(row["email"] for row in rows)]
    assert len(emails_in_order) == HOLDERS


def test_emails_lowercase_ascii_and_by_role(rows: list[dict[str, str]]) -> None:
    address = re.compile(r"[a-z]+(?:-[a-z]+)*\.[a-z]+(?:-[a-z]+)*\d*@[a-z0-9.-]+\.[a-z]+")
    for row in rows:
        email = row["email"]
        assert address.fullmatch(email), email
        domain = email.split("@")[1]
        if row["type"] == "carte_agent":
            assert domain == "justice.test"
        elif row["role"] == "avocat":
            assert domain.startswith("avocat-")
        else:
            assert domain != "justice.test"


def test_names_are_french_and_varied(by_holder: dict[str, list[dict[str, str]]]) -> None:
    holders = [holder_rows[0] for holder_rows in by_holder.values()]
    assert len({h["nom"] for h in holders}) > 100
    assert len({h["prenom"] for h in holders}) > 100
    assert any(not h["nom"].isascii() for h in holders)
    assert any(not h["prenom"].isascii() for h in holders)
    # The homonyms get a numeric suffix rather than sharing an address.
    assert any(re.search(r"\d@", h["email"]) for h in holders)


def test_proportions(
    rows: list[dict[str, str]], by_holder: dict[str, list[dict[str, str]]]
) -> None:
    assert 1.05 < len(rows) / HOLDERS < 1.11
    kinds = Counter(holder_rows[0]["type"] for holder_rows in by_holder.values())
    assert 0.35 < kinds["cle_rpva"] / HOLDERS < 0.55
    assert 0.10 < kinds["carte_expert"] / HOLDERS < 0.20
    assert 0.30 < kinds["carte_agent"] / HOLDERS < 0.45
    assert 0.01 < kinds["carte_temporaire"] / HOLDERS < 0.06
    main_states = Counter(holder_rows[0]["etat"] for holder_rows in by_holder.values())
    assert 0.80 < main_states["active"] / HOLDERS < 0.90
    for state in ("suspendue", "perdue", "defectueuse", "restituee", "revoquee"):
        assert main_states[state] > 0
    renewing = sum(1 for holder_rows in by_holder.values() if len(holder_rows) == 2)
    assert 0.05 < renewing / HOLDERS < 0.11


def test_renewal_in_progress_shape(by_holder: dict[str, list[dict[str, str]]]) -> None:
    renewals = [holder_rows for holder_rows in by_holder.values() if len(holder_rows) > 1]
    assert renewals
    states = Counter()
    for current, renewal in renewals:
        assert current["etat"] == "active"
        assert 0 <= (day(current["date_expiration"]) - TODAY).days <= 120
        assert renewal["etat"] in {"demandee", "recue"}
        assert renewal["date_remise"] == ""
        assert renewal["numero_serie"] != current["numero_serie"]
        if current["type"] == "carte_agent":
            assert renewal["modele"] == "nouveau"
        states[renewal["etat"]] += 1
    assert states["demandee"] and states["recue"]


def test_dates_follow_the_state(rows: list[dict[str, str]]) -> None:
    for row in rows:
        state, handed, expiry = row["etat"], row["date_remise"], row["date_expiration"]
        assert (handed != "") == (state in HANDED_OVER), row
        if handed:
            assert day(handed) < TODAY
        if state in {"active", "suspendue"}:
            assert expiry
        if state == "demandee":
            assert expiry == ""
        if handed and expiry:
            assert day(handed) < day(expiry)
    others = [r for r in rows if r["etat"] not in {"active", "suspendue", "demandee"}]
    assert sum(1 for r in others if r["date_expiration"]) > 0.8 * len(others)


def test_active_expiries_span_three_years(rows: list[dict[str, str]]) -> None:
    active = [day(r["date_expiration"]) for r in rows if r["etat"] == "active"]
    offsets = [(expiry - TODAY).days for expiry in active]
    assert min(offsets) >= -60
    assert max(offsets) <= 3 * 366
    assert max(offsets) > 2.8 * 365
    expired = sum(1 for offset in offsets if offset < 0)
    assert 0 < expired < 0.05 * len(offsets)
    # Roughly uniform: each year holds about a third, the first one a bit more (renewals).
    per_year = Counter(min(offset // 365, 2) for offset in offsets if offset >= 0)
    for year in range(3):
        assert 0.25 < per_year[year] / len(offsets) < 0.45


def test_handover_is_about_one_validity_before_expiry(rows: list[dict[str, str]]) -> None:
    for row in rows:
        if row["etat"] != "active" or row["type"] == "carte_temporaire":
            continue
        life = (day(row["date_expiration"]) - day(row["date_remise"])).days
        # Three years minus the handover delay, and less when handed over late (yesterday).
        assert life <= 3 * 366
        if day(row["date_expiration"]) < TODAY + dt.timedelta(days=2 * 365):
            assert life > 3 * 365 - 40


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [(";", "utf-8"), (",", "utf-8"), (";", "cp1252"), (",", "cp1252")],
)
def test_csv_round_trip(tmp_path: pathlib.Path, delimiter: str, encoding: str) -> None:
    expected = list(generate_rows(1_000, seed=9, today=TODAY))
    path = tmp_path / "inventaire.csv"
    written = write_csv(path, iter(expected), delimiter=delimiter, encoding=encoding)
    assert written == len(expected)
    with open(path, encoding=encoding, newline="") as stream:
        reader = csv.DictReader(stream, delimiter=delimiter)
        assert tuple(reader.fieldnames or ()) == IMPORT_COLUMNS
        read_back = list(reader)
    assert read_back == expected
    # The accents really are in the file's encoding, not mangled or escaped.
    raw = path.read_bytes()
    assert "é".encode(encoding) in raw


def test_write_csv_empty(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vide.csv"
    assert write_csv(path, []) == 0
    assert path.read_text(encoding="utf-8").strip() == ";".join(IMPORT_COLUMNS)


def test_command_line_writes_the_file(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sortie.csv"
    status = main(
        [
            "--titulaires",
            "50",
            "--graine",
            "5",
            "--sortie",
            str(path),
            "--separateur",
            ",",
            "--encodage",
            "cp1252",
            "--date-reference",
            TODAY.isoformat(),
        ]
    )
    assert status == 0
    with open(path, encoding="cp1252", newline="") as stream:
        read_back = list(csv.DictReader(stream, delimiter=","))
    assert read_back == list(generate_rows(50, seed=5, today=TODAY))
    assert f"{len(read_back)} lignes écrites" in capsys.readouterr().out


def test_command_line_refuses_bad_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--titulaires", "10", "--sortie", str(tmp_path / "x.csv"), "--encodage", "latin9"])
    assert exited.value.code == 2
    assert not (tmp_path / "x.csv").exists()
