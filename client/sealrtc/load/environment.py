"""The environment of a child process that must hold no secret (the embedded relay).

The relay forwards ciphertext and never needs key material, so it must not inherit
``SEALRTC_SECRET`` (nor a bearer token, a password or a cloud credential that happens to be in
the parent's environment): a child's environment is readable in ``/proc/PID/environ`` by its
user, and a crash dump would carry it. Pure: takes a mapping, returns a new one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["SECRET_NAME", "without_secrets"]

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH", re.IGNORECASE)
"""Variable names that look like they hold a secret (matched anywhere in the name)."""


def without_secrets(environ: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` without any variable whose name looks secret, then ``extra`` (what the child
    is meant to have, e.g. its own per-run token) added as given."""
    kept = {name: value for name, value in environ.items() if not SECRET_NAME.search(name)}
    return kept | dict(extra or {})
