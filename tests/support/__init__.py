"""Helpers shared by the test modules: tokens, real servers on loopback, expected answers.

``tests/`` is on ``sys.path`` (pytest's ``pythonpath`` option), so a test imports a helper
as ``from support.tokens import mint`` and ``from support.servers import run_uvicorn``.
"""
