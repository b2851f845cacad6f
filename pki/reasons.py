"""Why a certificate is not valid, or not known to be: a stable code and its details.

French sentences are produced at the edge (``cartes.messages``) from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reason:
    """Why a certificate is not valid (or not known to be): a stable code and details."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)
