"""Terminal styling for the command line: colour only on a terminal, never when piped."""

from __future__ import annotations

import os
from typing import TextIO


class Style:
    """ANSI colour when ``stream`` is a terminal and ``NO_COLOR`` is unset, plain otherwise."""

    def __init__(self, stream: TextIO) -> None:
        """Decide once whether to colour."""
        self.on = stream.isatty() and "NO_COLOR" not in os.environ

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text

    def ok(self, text: str) -> str:
        """Green: passed, accepted."""
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        """Red: failed, rejected."""
        return self._wrap("31", text)

    def dim(self, text: str) -> str:
        """Faint: secondary detail."""
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        """Bold: headings."""
        return self._wrap("1", text)
