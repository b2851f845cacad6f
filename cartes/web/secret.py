"""The secret nginx and the status page share: nginx adds it to every request it passes on
(``X-Cartes-Jeton``), and the page refuses any request without it.

It lives in a file only its owner can read (``[web] secret_file``); ``cartes web jeton``
creates it and writes the line nginx includes. It is never logged nor shown.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


class SecretError(Exception):
    """The secret file cannot be used; the message is French and names the file."""


def create(path: Path) -> str:
    """Create the secret file (0600, its folder 0700 when created) if it does not exist,
    and return the secret it holds."""
    if path.exists():
        return read(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_hex(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise SecretError(f"impossible de créer {path} : {exc.strerror}") from None
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    return value


def read(path: Path) -> str:
    """The secret of ``path``; refused when the file is missing, empty, or readable by
    other users (as ssh refuses a private key others can read)."""
    try:
        info = path.stat()
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SecretError(
            f"jeton partagé avec nginx absent ({path}) : créez-le avec « cartes web jeton »."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "contenu illisible"
        raise SecretError(f"jeton partagé avec nginx illisible ({path}) : {reason}.") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"le jeton {path} est lisible par d'autres utilisateurs : « chmod 600 {path} »."
        )
    if len(value) < 32 or not value.isalnum():
        raise SecretError(f"jeton {path} invalide : recréez-le avec « cartes web jeton ».")
    return value


def nginx_line(secret: str) -> str:
    """The nginx directive that adds the secret to each request passed to the page."""
    return f'proxy_set_header X-Cartes-Jeton "{secret}";\n'


def write_nginx_include(path: Path, secret: str) -> None:
    """Write ``path`` (0600: nginx's master process, root, reads it) for nginx to include,
    replacing it whole."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("# Écrit par « cartes web jeton » : ne pas diffuser.\n")
            file.write(nginx_line(secret))
        os.replace(temporary, path)
    except OSError as exc:
        raise SecretError(f"impossible d'écrire {path} : {exc.strerror}") from None
