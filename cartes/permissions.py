"""Files that hold personal data or a password, kept to their owner (README, « Données au
repos »).

``cartes init`` creates the SQLite database 0600 in a data folder it creates 0700; SQLite
gives the ``-wal`` and ``-shm`` files it creates the mode of the database file. Every command
that reads the settings then checks the files they name, as ssh checks a private key: the
SQLite database (and its ``-wal`` and ``-shm``), the settings file when a password is written
in it, the SMTP password file. A file other users can read or write gets a French warning
naming it and the ``chmod`` that fixes it; the command goes on (cartes warns where ssh would
refuse: the inventory must stay usable while the administrator fixes the mode).

Group access is accepted in one case: the file's folder is a shared group folder (setgid
bit, the file of the folder's group), which is how the README shares a database with a
group of operators. Folders are not checked: a folder others can list reveals file names,
not the data, and a file cartes did not create may sit in a folder the user chose (``/tmp``).

Nothing here imports SQLAlchemy: ``cartes liste`` runs these checks too.
"""

from __future__ import annotations

import grp
import os
import shlex
import stat
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from inventaire.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from cartes.settings import Settings

# Read or write by the group or by everyone; execute bits on a data file expose nothing.
_SHARED_BITS = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH
_GROUP_BITS = stat.S_IRGRP | stat.S_IWGRP
_OTHER_BITS = stat.S_IROTH | stat.S_IWOTH


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL, as SQLAlchemy reads it (``sqlite:///relative``,
    ``sqlite:////absolute``, percent-decoded); None for another database, an in-memory one
    or a ``file:`` URI."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+", 1)[0] != "sqlite":
        return None
    database = unquote(rest.removeprefix("/").split("?", 1)[0])
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def database_files(url: str) -> list[Path]:
    """The files of the SQLite database of ``url`` that exist: the database, its ``-wal`` and
    ``-shm``. Nothing for PostgreSQL."""
    path = sqlite_file(url)
    if path is None:
        return []
    candidates = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return [candidate for candidate in candidates if candidate.exists()]


def exposure(path: Path) -> str | None:
    """Who besides the owner may read or write ``path``, in French (« lisible par tous les
    utilisateurs de cette machine »); None when nobody else may, or the file is missing."""
    try:
        info = path.stat()
    except OSError:
        return None
    bits = info.st_mode & _SHARED_BITS
    if bits & _GROUP_BITS and _in_shared_group_folder(path, info):
        bits &= ~_GROUP_BITS
    if not bits:
        return None
    readable = bits & (stat.S_IRGRP | stat.S_IROTH)
    writable = bits & (stat.S_IWGRP | stat.S_IWOTH)
    if readable and writable:
        access = "lisible et modifiable"
    else:
        access = "lisible" if readable else "modifiable"
    if bits & _OTHER_BITS:
        return f"{access} par tous les utilisateurs de cette machine"
    return f"{access} par le groupe « {_group_name(info.st_gid)} »"


def private_mode_problem(
    path: Path, what: str = "le fichier", holds: str | None = None
) -> str | None:
    """The French warning when others may read or write ``path``, with the ``chmod`` that
    fixes it; None otherwise. ``what`` names the file (« le fichier de configuration »),
    ``holds`` what it holds (« le mot de passe SMTP »)."""
    who = exposure(path)
    return None if who is None else _problem(what, path, who, holds, [path])


def database_problem(url: str) -> str | None:
    """The French warning when others may read or write the SQLite database of ``url`` or
    its ``-wal`` and ``-shm`` files (they hold recent changes), with one ``chmod`` for all
    of them; None otherwise, and for PostgreSQL."""
    files = database_files(url)
    exposed = [(path, who) for path in files if (who := exposure(path)) is not None]
    if not exposed:
        return None
    database, (first, who) = files[0], exposed[0]
    what = "la base de données"
    if first != database:
        what = f"la base de données {database} : le fichier"
    fix = [path for path, _who in exposed]
    return _problem(what, first, who, "des données personnelles", fix)


def _problem(what: str, path: Path, who: str, holds: str | None, fix: list[Path]) -> str:
    content = f" contient {holds} et" if holds else ""
    files = " ".join(shlex.quote(str(each)) for each in fix)
    return f"{what} {path}{content} est {who} ({_mode(path)}) ; corrigez : chmod 600 {files}"


def warnings(settings: Settings, source_file: Path | None) -> list[str]:
    """The French warnings about the files ``settings`` name that others may read: the
    settings file ``source_file`` when a password is written in it, the SMTP password
    file, the SQLite database."""
    found: list[str] = []
    who = None if source_file is None else exposure(source_file)
    if source_file is not None and who is not None:
        # Read again only when exposed: the settings do not say which values the file gave.
        secrets = _secrets_written_in(source_file)
        if secrets:
            holds = " et ".join(secrets)
            what = "le fichier de configuration"
            found.append(_problem(what, source_file, who, holds, [source_file]))
    password_file = settings.smtp.password_file
    if password_file is not None:
        problem = private_mode_problem(password_file, "le fichier du mot de passe SMTP")
        if problem is not None:
            found.append(problem)
    problem = database_problem(settings.database_url)
    if problem is not None:
        found.append(problem)
    return found


def create_private_database_file(url: str) -> bool:
    """Create the SQLite file of ``url`` empty and 0600 (its folder 0700 when it does not
    exist), before SQLite creates it with the umask's mode; SQLite then gives ``-wal`` and
    ``-shm`` the same mode. An existing file or folder is left as it is (the warnings say
    what to fix). True when the file was created; ``DatabaseUnavailable`` on failure."""
    path = sqlite_file(url)
    if path is None or path.exists():
        return False
    try:
        _make_private_folder(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False  # another process was quicker: its file is checked like any other
    except OSError as exc:
        raise DatabaseUnavailable(detail=f"{exc.filename or path} : {exc.strerror}") from exc
    try:
        os.fchmod(descriptor, 0o600)  # a umask such as 0277 would leave it read-only
    finally:
        os.close(descriptor)
    return True


def _make_private_folder(folder: Path) -> None:
    """Create ``folder`` 0700 if it is missing (its missing parents get the umask's mode);
    a folder that exists, the user's or another process's, is left as it is."""
    if folder.exists():
        return
    try:
        folder.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return
    folder.chmod(0o700)  # mkdir's mode passes through the umask


def _in_shared_group_folder(path: Path, info: os.stat_result) -> bool:
    try:
        folder = path.parent.stat()
    except OSError:
        return False
    return bool(folder.st_mode & stat.S_ISGID) and folder.st_gid == info.st_gid


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _mode(path: Path) -> str:
    try:
        return f"droits {stat.S_IMODE(path.stat().st_mode):04o}"
    except OSError:
        return "droits inconnus"


def _secrets_written_in(source_file: Path) -> list[str]:
    """What passwords the settings file itself holds, in French (« le mot de passe SMTP »)."""
    try:
        data: dict[str, Any] = tomllib.loads(source_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    secrets = []
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and smtp.get("password"):
        secrets.append("le mot de passe SMTP")
    url = data.get("database_url")
    if isinstance(url, str) and _url_password(url):
        secrets.append("le mot de passe de la base de données")
    return secrets


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
