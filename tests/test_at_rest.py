"""Personal data at rest (issue 12, item 5): ``cartes init`` creates the data folder 0700 and
the SQLite database 0600 (SQLite gives its ``-wal`` and ``-shm`` the same mode); a command
that reads a database file, or a settings file holding a password, that other users can
read warns on stderr with the ``chmod`` that fixes it, and goes on.

The tests run as root, whom modes do not stop: they check the modes and the warnings, not
that another user is refused.
"""

from __future__ import annotations

import io
import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cartes import locations, permissions
from cartes.cli.main import main
from inventaire import db, operators
from inventaire.clock import FixedClock
from inventaire.models import OperatorRole
from tests.conftest import NOW, Result, fresh_database, run_cartes

POSTGRES_URL = "postgresql://cartes@db.invalid/cartes"  # never connected to by ``config``


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which SQLite alone would create the database 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ``CARTES_*`` variable, and the user's folders in ``tmp_path`` (nothing of the
    machine's own settings or data is read)."""
    for name in list(os.environ):
        if name.startswith("CARTES_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "donnees"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def cartes(*argv: str) -> Result:
    """``cartes`` in-process, as the operator ``admin``."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["--operateur", "admin", *argv], clock=FixedClock(NOW), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


def fix_given_in(warning: str) -> list[str]:
    """The command at the end of a warning (« … ; corrigez : chmod 600 FICHIER… »)."""
    line = warning.strip().splitlines()[-1]
    return shlex.split(line.rsplit(" ; corrigez : ", 1)[1])


# -- cartes init


def test_init_creates_a_private_folder_and_database_and_sqlite_follows(
    environment: Path, umask_022: None
) -> None:
    result = cartes("init")
    assert result.code == 0, result.err
    assert result.err == ""
    folder = locations.data_dir()
    assert folder == environment / "donnees" / "cartes"
    database = folder / "cartes.db"
    assert mode(folder) == 0o700
    assert mode(database) == 0o600
    assert "réservé à votre compte (droits 600)" in result.out
    # A write in WAL mode, through the application's own engine: SQLite creates -wal and
    # -shm with the database's mode, not the umask's 0644.
    engine = db.make_engine(f"sqlite:///{database}")
    try:
        with db.write_session(engine) as session:
            operators.add(
                session, login="gestion", roles=[OperatorRole.MANAGER], by="admin", now=NOW
            )
        wal, shm = (database.with_name(f"cartes.db-{suffix}") for suffix in ("wal", "shm"))
        assert wal.exists() and shm.exists()  # the connection is still open in the pool
        assert (mode(wal), mode(shm)) == (0o600, 0o600)
    finally:
        engine.dispose()
    # The next command has nothing to say about the files.
    result = cartes("resume")
    assert (result.code, result.err) == (0, "")


def test_init_leaves_a_folder_it_did_not_create_as_it_is(
    environment: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = environment / "partage"
    folder.mkdir()
    folder.chmod(0o755)
    database = folder / "cartes.db"
    monkeypatch.setenv("CARTES_DATABASE_URL", f"sqlite:///{database}")
    result = cartes("init")
    assert result.code == 0, result.err
    assert mode(folder) == 0o755
    assert mode(database) == 0o600


def test_init_warns_about_an_existing_database_others_can_read_and_changes_nothing(
    environment: Path, umask_022: None
) -> None:
    assert cartes("init").code == 0
    database = locations.data_dir() / "cartes.db"
    database.chmod(0o644)
    result = cartes("init")
    assert result.code == 0, result.err
    assert "déjà à jour" in result.out
    assert f"attention : la base de données {database} contient des données personnelles" in (
        result.err
    )
    assert fix_given_in(result.err) == ["chmod", "600", str(database)]
    assert mode(database) == 0o644


# -- a database file others can read


def test_a_database_others_can_read_is_warned_about_and_the_command_goes_on(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with fresh_database("sqlite", tmp_path, request) as database:
        path = Path(make_url(database.url).database or "")
        result = run_cartes("resume", database_url=database.url)
        assert (result.code, result.err) == (0, "")  # the test databases are 0600
        path.chmod(0o644)
        for command in ("resume", "liste"):
            result = run_cartes("--operateur", "admin", command, database_url=database.url)
            assert result.code == 0, result.err
            assert result.out
            assert result.err.count("attention : ") == 1
            assert result.err.startswith(
                f"attention : la base de données {path} contient des données personnelles et "
                "est lisible par tous les utilisateurs de cette machine (droits 0644) ; "
                f"corrigez : chmod 600 {path}"
            )
        assert mode(path) == 0o644  # warned, not changed
        # The fix the warning gives is enough: the -wal and -shm the reads left behind,
        # created with the database's mode then, are in it too when they exist.
        subprocess.run(fix_given_in(result.err), check=True)
        result = run_cartes("resume", database_url=database.url)
        assert (result.code, result.err) == (0, "")


def test_a_wal_file_others_can_read_is_named_even_when_the_database_is_private(
    tmp_path: Path,
) -> None:
    database = tmp_path / "cartes.db"
    wal, shm = tmp_path / "cartes.db-wal", tmp_path / "cartes.db-shm"
    for path, file_mode in ((database, 0o600), (wal, 0o644), (shm, 0o600)):
        path.write_bytes(b"")
        path.chmod(file_mode)
    problem = permissions.database_problem(f"sqlite:///{database}")
    assert problem is not None
    assert problem.startswith(f"la base de données {database} : le fichier {wal} contient")
    assert fix_given_in(problem) == ["chmod", "600", str(wal)]


def test_group_access_is_accepted_only_in_a_shared_group_folder(tmp_path: Path) -> None:
    folder = tmp_path / "partage"
    folder.mkdir()
    database = folder / "cartes.db"
    database.write_bytes(b"")
    url = f"sqlite:///{database}"
    database.chmod(0o660)
    folder.chmod(0o770)
    problem = permissions.database_problem(url)
    assert problem is not None and "lisible et modifiable par le groupe « " in problem
    # The README's shared folder: setgid, the database of the folder's group.
    folder.chmod(0o2770)
    assert permissions.database_problem(url) is None
    database.chmod(0o664)  # everyone else still not
    problem = permissions.database_problem(url)
    assert problem is not None and "lisible par tous les utilisateurs" in problem
    if os.geteuid() == 0:  # changing a file's group to one we are not in needs root
        database.chmod(0o660)
        os.chown(database, -1, folder.stat().st_gid + 4321)
        problem = permissions.database_problem(url)
        assert problem is not None and "par le groupe" in problem


def test_postgresql_and_memory_databases_have_no_files() -> None:
    assert permissions.database_files(POSTGRES_URL) == []
    assert permissions.database_problem(POSTGRES_URL) is None
    for url in ("sqlite://", "sqlite:///:memory:"):
        assert permissions.sqlite_file(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///cartes.db",
        "sqlite:////var/lib/cartes/cartes.db",
        "sqlite:////srv/dossier%20partagé/cartes.db",
        "sqlite+pysqlite:////var/lib/cartes/cartes.db?timeout=5",
    ],
)
def test_the_sqlite_file_is_the_one_sqlalchemy_opens(url: str) -> None:
    assert permissions.sqlite_file(url) == Path(make_url(url).database or "")


# -- settings files


def write_settings(path: Path, text: str, file_mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(file_mode)
    return path


def test_a_settings_file_holding_the_smtp_password_others_can_read_is_warned_about(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTES_DATABASE_URL", POSTGRES_URL)
    config = environment / "cartes.toml"
    write_settings(config, '[smtp]\nuser = "cartes"\npassword = "s3cr3t"\n', 0o644)
    result = cartes("--config", str(config), "config")
    assert result.code == 0, result.err
    assert result.err == (
        f"attention : le fichier de configuration {config} contient le mot de passe SMTP et "
        "est lisible par tous les utilisateurs de cette machine (droits 0644) ; "
        f"corrigez : chmod 600 {config}\n"
    )
    assert "s3cr3t" not in result.err
    config.chmod(0o640)
    result = cartes("--config", str(config), "config")
    assert "est lisible par le groupe « " in result.err
    assert fix_given_in(result.err) == ["chmod", "600", str(config)]
    config.chmod(0o600)
    result = cartes("--config", str(config), "config")
    assert (result.code, result.err) == (0, "")


def test_a_settings_file_without_a_password_may_be_read_by_all(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTES_DATABASE_URL", POSTGRES_URL)
    # The password comes from the environment (the service's unit), not from the file.
    monkeypatch.setenv("CARTES_SMTP__PASSWORD", "s3cr3t")
    config = write_settings(environment / "cartes.toml", '[smtp]\nuser = "cartes"\n', 0o644)
    result = cartes("--config", str(config), "config")
    assert (result.code, result.err) == (0, "")


def test_other_passwords_in_files_are_warned_about(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password_file = write_settings(environment / "smtp-mdp", "s3cr3t\n", 0o644)
    config = write_settings(
        environment / "cartes.toml",
        'database_url = "postgresql://cartes:motdepasse@db.invalid/cartes"\n'
        f'[smtp]\npassword_file = "{password_file}"\n',
        0o604,
    )
    result = cartes("--config", str(config), "config")
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"attention : le fichier de configuration {config} contient le mot de passe de la base "
        "de données et est lisible par tous les utilisateurs de cette machine (droits 0604)"
    )
    assert lines[1].startswith(
        f"attention : le fichier du mot de passe SMTP {password_file} est lisible par tous"
    )
    assert fix_given_in(lines[1]) == ["chmod", "600", str(password_file)]
    assert "motdepasse" not in result.err and "s3cr3t" not in result.err
