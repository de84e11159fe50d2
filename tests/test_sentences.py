"""The one table of client-facing sentences (_sentences.py) and its use.

Every sentence is sendable as it is (RFC 6750 §3 characters, short enough never to
be cut), appears once, and is the one the library sends: each reason's default comes
from the table, and an oversized token gets the same sentence whichever component
notices, through a real server. docs/reasons.md shows each precise sentence.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from invalidtoken_mw import AuthFailure, InvalidTokenMiddleware, JWTVerifier, Reason, TokenExtractor
from invalidtoken_mw import _grammar as grammar
from invalidtoken_mw._sentences import Sentence, every_sentence
from invalidtoken_mw.challenge import clean_description
from support.servers import client, make_starlette_app, run_uvicorn
from support.tokens import AUDIENCE, ISSUER, SECRET

SENTENCES = every_sentence()
REASONS_DOC = Path(__file__).parents[1] / "docs" / "reasons.md"


@pytest.mark.parametrize(("name", "sentence"), SENTENCES.items(), ids=list(SENTENCES))
def test_every_sentence_is_sent_as_written(name: str, sentence: str) -> None:
    """Each sentence is RFC 6750 error_description text, a full sentence, never rewritten."""
    assert name.isupper()
    assert grammar.NQSCHARS_RE.fullmatch(sentence)
    assert sentence[0].isupper()
    assert sentence.endswith(".")
    filled = sentence.format(count=2, typ="at+jwt", claim="exp")
    assert clean_description(filled) == filled


def test_each_sentence_is_written_once() -> None:
    """No two names hold the same text: the 'too large' sentence, for one, exists once."""
    assert len(set(SENTENCES.values())) == len(SENTENCES)
    assert [n for n, s in SENTENCES.items() if "larger than" in s] == ["TOO_LARGE"]


def test_every_reason_default_comes_from_the_table() -> None:
    """Reason.description is the table's entry for that reason (the 503s share one)."""
    for reason in Reason:
        name = "UNAVAILABLE" if reason.is_server_fault else reason.name
        assert reason.description is SENTENCES[name]


def _as_pattern(sentence: str) -> str:
    """The sentence as a regular expression, each ``{placeholder}`` matching a value."""
    return re.sub(r"\\\{\w+\\\}", r"\\S+", re.escape(sentence))


# The sentences that replace a reason's default (UNAVAILABLE is the 503 reasons' default).
PRECISE = {n: s for n, s in SENTENCES.items() if n not in {*Reason.__members__, "UNAVAILABLE"}}


@pytest.mark.parametrize(("name", "sentence"), PRECISE.items(), ids=list(PRECISE))
def test_docs_show_every_precise_sentence(name: str, sentence: str) -> None:
    """docs/reasons.md lists each sentence that replaces a reason's default."""
    text = html.unescape(REASONS_DOC.read_text(encoding="utf-8"))
    assert re.search(_as_pattern(sentence), text), f"{name} is not in docs/reasons.md"


def test_oversized_token_reads_the_same_from_extractor_and_verifier() -> None:
    """The extractor's and the verifier's 'too large' failures carry one sentence."""
    token = "a" * 65
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], max_token_bytes=64)
    with pytest.raises(AuthFailure) as from_verifier:
        verifier.verify(token)
    with pytest.raises(AuthFailure) as from_extractor:
        TokenExtractor(max_token_bytes=64).extract([f"Bearer {token}"])
    assert from_verifier.value.description == Sentence.TOO_LARGE
    assert from_extractor.value.description == Sentence.TOO_LARGE


def test_oversized_token_for_the_verifier_gets_the_one_sentence_through_uvicorn() -> None:
    """A token under the middleware's limit but over the verifier's gets Sentence.TOO_LARGE.

    Before the table the verifier said a shorter 'too large' than the extractor, so one
    mistake got two descriptions depending on which limit it crossed.
    """
    app = make_starlette_app(realm="orders")
    verifier = JWTVerifier(
        key=SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER, max_token_bytes=100
    )
    app.user_middleware.clear()
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier, realm="orders")
    with run_uvicorn(app) as base_url, client(base_url) as http:
        response = http.get("/orders", headers={"Authorization": "Bearer " + "x" * 200})
    assert response.status_code == 401
    assert response.json()["error_description"] == Sentence.TOO_LARGE
    assert f'error_description="{Sentence.TOO_LARGE}"' in response.headers["www-authenticate"]
