"""One exception hierarchy. Every error a user can cause carries a one-line message.

The CLI catches :class:`LayerleakError` once, prints :meth:`diagnostics` and exits 2.
"""

from __future__ import annotations

import re

# A password in a URL's user part (docker://ci:PASSWORD@host/repo), and the values of query
# parameters that carry credentials (a blob storage redirect's X-Amz-Signature, ?access_token=).
_URL_PASSWORD = re.compile(r"(://[^/@\s:]+):[^/@\s]+@")
_URL_CREDENTIAL = re.compile(
    r"([?&][^=&\s#]*(?:sig|token|credential|secret|passw|pwd|key|auth|session)[^=&\s#]*=)[^&\s#]+",
    re.IGNORECASE,
)


def mask_url_secrets(text: str) -> str:
    """``text`` with URL passwords and credential-bearing query values replaced by stars."""
    return _URL_CREDENTIAL.sub(r"\1********", _URL_PASSWORD.sub(r"\1:********@", text))


class LayerleakError(Exception):
    """Root of every error layerleak raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """One clear line for the user: never a traceback, never a secret (URL passwords and
        signed query values are masked)."""
        return mask_url_secrets(" ".join(self.message.split()))


class UsageError(LayerleakError):
    """The command line asks for something that cannot be done."""


class TargetError(LayerleakError):
    """A target could not be opened or is not an image we understand."""


class ImageFormatError(TargetError):
    """The image is malformed: bad manifest, missing blob, unknown media type."""


class RuleError(LayerleakError):
    """A rule file is invalid."""


class RegistryError(TargetError):
    """A registry or daemon refused or failed a request."""


class StoreError(LayerleakError):
    """The cache or results database cannot be used."""
