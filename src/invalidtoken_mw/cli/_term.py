"""What every command shares: exit statuses, colour only on a terminal, safe printing."""

from __future__ import annotations

import os
import sys
from typing import TextIO

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def token_arg(value: str) -> str:
    """A token argument: ``-`` reads it from stdin (out of the shell history)."""
    return sys.stdin.read().strip() if value == "-" else value.strip()


def printable(text: str) -> str:
    """Escape what is not printable: a hostile claim must not drive the operator's terminal.

    Control characters, bidirectional overrides and other format characters, line
    separators and lone surrogates (everything :meth:`str.isprintable` refuses but
    the space) are shown as escapes, as ``repr`` shows them.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode()
        for c in text
    )


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
