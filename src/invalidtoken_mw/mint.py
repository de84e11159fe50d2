"""Old import path of :func:`invalidtoken_mw.testing.mint_token` and its ``DEFECTS``.

Import them from :mod:`invalidtoken_mw.testing`; the ``mint`` command lives in
:mod:`invalidtoken_mw.cli`.
"""

from invalidtoken_mw.testing import DEFECTS, mint_token

__all__ = ["DEFECTS", "mint_token"]
