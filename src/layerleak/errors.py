"""One exception hierarchy. Every error a user can cause carries a one-line message.

The CLI catches :class:`LayerleakError` once, prints :meth:`diagnostics` and exits 2.
"""

from __future__ import annotations


class LayerleakError(Exception):
    """Root of every error layerleak raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """One clear line for the user: never a traceback, never a secret."""
        return " ".join(self.message.split())


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
