"""One small application per supported framework, for the framework matrix.

Each module builds the same routes with its framework's documented set-up (see
tests/test_framework_matrix.py for the contract): ``NAME`` (the row of the support table
in docs/frameworks.md), ``SERVER`` (``"asgi"``: served by uvicorn; ``"wsgi"``: by
waitress), ``UNSUPPORTED`` (column -> why not, what to do instead) and
``build(verifier, *, error_body=None)``.
"""
