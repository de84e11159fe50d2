"""The ``invalidtoken-mw`` command line: explain, mint, revoke and demo.

``explain`` answers "why is this token rejected?" offline with a static key; ``mint``
makes development tokens with a chosen defect; ``revoke`` writes to a shared Redis
revocation store; ``demo`` runs a small FastAPI orders API and shows every failure.
Machine output (``--json``) goes to stdout alone; everything else a person reads goes
to stdout or stderr with colour only when a terminal is attached.

An application on top of the library: the library never imports this package.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import TYPE_CHECKING

import structlog

from invalidtoken_mw.cli import demo, explain, mint, revoke
from invalidtoken_mw.cli._term import EXIT_INVALID

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``invalidtoken-mw``."""
    parser = argparse.ArgumentParser(
        prog="invalidtoken-mw",
        description="Explain, mint and revoke bearer tokens; run the demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (explain, mint, revoke, demo):
        command.add_parser(sub)
    return parser


def _quiet_library_logs() -> None:
    """Send log events (a failed JWKS fetch, say) to stderr: stdout may be ``--json``."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A terminal or pipe that cannot encode "—" must not turn a report into a traceback.
        sys.stdout.reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    _quiet_library_logs()
    handler = args.handler
    try:
        return int(handler(args))
    except BrokenPipeError:
        # The reader (head, less) left early: no traceback, and none at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INVALID
