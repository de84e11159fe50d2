"""The command line through the real entry points, in subprocesses: explain, mint, revoke, demo.

Every test runs ``python -m invalidtoken_mw`` (or the ``invalidtoken-mw`` console script
installed next to the interpreter) with its output piped, as a shell pipeline or CI
job would, and judges the exit status and the bytes written to stdout and stderr.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

from invalidtoken_mw import Reason, RedisRevocationStore
from invalidtoken_mw.cli.demo_app import create_app as demo_app
from invalidtoken_mw.testing import DEFECTS, FakeIssuer, mint_token
from support.expected import DEFECT_REASONS
from support.redis_server import free_port
from support.servers import client, run_uvicorn

if TYPE_CHECKING:
    from support.redis_server import RedisServer

SCRIPT = Path(sys.executable).with_name("invalidtoken-mw")
SECRET = "cli-test-secret-for-hs256-32-bytes!!"
ISSUER = "https://id.example.com/"
AUDIENCE = "api://orders"
# What explain is told, as the middleware would be configured.
VERIFY = ("--key", SECRET, "--issuer", ISSUER, "--audience", AUDIENCE)
ANSI = re.compile(r"\x1b\[")
TOP_LEVEL = {
    "valid",
    "reason",
    "status",
    "description",
    "token_kind",
    "header",
    "claims",
    "checks",
    "response",
}
BODY_MEMBERS = {"type", "title", "status", "detail", "error", "error_description", "reason"}
TRUNCATED = "the token has 2 segments: it looks truncated — copy it again"
DEMO_BUDGET_S = 60


def run(
    *args: str, stdin: str | None = None, script: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line with piped output and return the finished process."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "invalidtoken_mw"]
    environment = {
        k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "INVALIDTOKEN_REDIS_URL"}
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and console script
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**environment, **(env or {})},
    )


def token(defect: str | None = None, **claims: Any) -> str:
    """An HS256 token for ISSUER and AUDIENCE granting orders:read, with an optional defect."""
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "scope": "orders:read"}
    return mint_token(SECRET, algorithm="HS256", claims={**base, **claims}, defect=defect)


def explain_json(value: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """``explain --json`` on ``value``: the exit status and the parsed stdout."""
    done = run("explain", value, "--json", *VERIFY, *extra)
    return done.returncode, json.loads(done.stdout)


def failed_checks(report: dict[str, Any]) -> dict[str, str]:
    """The failed checks of a JSON report: name to detail."""
    return {
        check["name"]: check["detail"] for check in report["checks"] if check["passed"] is False
    }


def iso(timestamp: int) -> str:
    """The ISO 8601 UTC form explain prints."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- entry points ---------------------------------------------------------------------


def test_python_dash_m_help_lists_every_command() -> None:
    """``python -m invalidtoken_mw --help`` succeeds and names the four commands."""
    done = run("--help")
    commands = re.search(r"\{([a-z,]+)\}", done.stdout)
    assert (0, "demo,explain,mint,revoke") == (
        done.returncode,
        ",".join(sorted(commands.group(1).split(","))) if commands else None,
    )


def test_console_script_is_the_same_command() -> None:
    """The installed ``invalidtoken-mw`` script prints exactly what ``python -m`` prints."""
    assert run("explain", "--help").stdout == run("explain", "--help", script=True).stdout


# -- explain: every defect class ---------------------------------------------------------


def test_explain_valid_token_exits_0_with_every_check_passed() -> None:
    """A valid token: exit 0, VALID, and the middleware would answer 200 with nothing else."""
    status, report = explain_json(token(), "--scope", "orders:read")
    assert 0 == status
    assert report["valid"]
    assert None is report["reason"]
    assert 200 == report["status"]
    assert {} == failed_checks(report)
    assert {"status": 200, "www_authenticate": None, "headers": {}, "body": None} == report[
        "response"
    ]


def test_explain_expired_says_how_long_ago_in_plain_english() -> None:
    """An expired token: expired, with 'expired 3 h 12 min ago at <UTC time>'."""
    exp = int(time.time()) - (3 * 3600 + 12 * 60 + 30)
    status, report = explain_json(token(exp=exp, iat=exp - 600))
    assert (1, "expired", 401, f"expired 3 h 12 min ago at {iso(exp)}") == (
        status,
        report["reason"],
        report["status"],
        failed_checks(report)["exp"],
    )


@pytest.mark.parametrize(
    ("defect", "extra", "reason", "check", "detail"),
    [
        pytest.param(
            "not-yet-valid",
            (),
            "not_yet_valid",
            "nbf",
            "in the future: the issuer's clock or this machine's is probably wrong",
            id="not-yet-valid",
        ),
        pytest.param(
            "wrong-audience",
            (),
            "wrong_audience",
            "aud",
            "audience is api://somewhere-else, this service expects api://orders",
            id="wrong-audience",
        ),
        pytest.param(
            "wrong-issuer",
            (),
            "wrong_issuer",
            "iss",
            "issuer is 'https://untrusted.example/', this service expects https://id.example.com/",
            id="wrong-issuer",
        ),
        pytest.param(
            "wrong-type",
            ("--token-type", "at+jwt"),
            "wrong_token_type",
            "typ",
            "typ is 'JWT', this service expects 'at+jwt'",
            id="wrong-type",
        ),
        pytest.param(
            "missing-exp", (), "missing_claim", "required_claims", "missing: exp", id="missing-exp"
        ),
        pytest.param(
            "bad-signature",
            (),
            "bad_signature",
            "signature",
            "the signature does not match the key",
            id="bad-signature",
        ),
        pytest.param(
            "alg-none",
            (),
            "algorithm_not_allowed",
            "alg",
            "The access token is not signed (alg none); this service requires a signature.",
            id="alg-none",
        ),
        pytest.param("truncated", (), "malformed_token", "segments", TRUNCATED, id="truncated"),
        pytest.param(
            "quoted",
            (),
            "malformed_token",
            "bearer",
            "The access token is malformed: it is wrapped in quotes. Send the token without them.",
            id="quoted",
        ),
    ],
)
def test_explain_names_each_defect_and_its_failed_check(
    defect: str, extra: tuple[str, ...], reason: str, check: str, detail: str
) -> None:
    """Each minted defect: exit 1, the matching reason, and a failed check that says why."""
    status, report = explain_json(token(defect), *extra)
    failed = failed_checks(report)
    assert 1 == status, failed
    assert reason == report["reason"], failed
    assert Reason(reason).status == report["response"]["status"], failed
    assert detail in failed.get(check, ""), failed


def test_explain_insufficient_scope_answers_403_with_the_scope() -> None:
    """A valid token without the needed scope: 403, the challenge names it, the check says so."""
    status, report = explain_json(token(), "--scope", "orders:write")
    assert (1, "insufficient_scope", 403) == (status, report["reason"], report["status"])
    assert report["response"]["www_authenticate"].endswith(', scope="orders:write"')
    assert {
        "scope": "the token grants orders:read; this request needs orders:write"
        " (missing: orders:write)"
    } == failed_checks(report)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("opaque-garbage", "the token has 1 segment: it is not a JWT, or it looks truncated"),
        ("a.b.c.d.e", "the token has 5 segments: it is encrypted (JWE), not a signed JWT"),
        ("eyJh.b.c.eyJh.b.c", "the token has 6 segments, a JWT has 3"),
    ],
    ids=["one-segment", "jwe", "two-tokens"],
)
def test_explain_counts_segments_of_what_is_not_a_jwt(value: str, detail: str) -> None:
    """A wrong segment count gets a plain-English segments line; the verdict is malformed."""
    status, report = explain_json(value)
    assert 1 == status
    assert "malformed_token" == report["reason"]
    assert failed_checks(report)["segments"].startswith(detail)


def test_explain_truncated_answer_is_the_middlewares_hint() -> None:
    """For a truncated token explain shows the extractor's wire hint, as the middleware sends."""
    _, report = explain_json(token("truncated"))
    hint = (
        "The access token is malformed: it has 2 of the 3 dot-separated parts of a JWT,"
        " so it looks truncated. Copy it again in full."
    )
    assert (
        hint,
        hint,
        f'Bearer realm="api", error="invalid_token", error_description="{hint}"',
    ) == (
        report["description"],
        report["response"]["body"]["detail"],
        report["response"]["www_authenticate"],
    )


def test_explain_text_report_reads_like_the_issue_asks() -> None:
    """The text report has the header, claims, the truncation line, the verdict and the answer."""
    done = run("explain", token("truncated"), *VERIFY)
    lines = done.stdout.splitlines()
    assert 1 == done.returncode
    assert {"Header", "Claims", "Checks", "Verdict  REJECTED: malformed_token"} <= set(lines)
    assert f"  FAIL  segments         {TRUNCATED}" in lines
    assert "  HTTP 401" in lines


# -- explain: JSON, stdin, secrecy, colour -------------------------------------------------------


def test_explain_json_schema() -> None:
    """--json stdout is one JSON document with the documented members and nothing else."""
    done = run("explain", token("expired"), "--json", *VERIFY)
    report = json.loads(done.stdout)
    shapes = {(type(c["name"]), type(c["passed"]), type(c["detail"])) for c in report["checks"]}
    assert (TOP_LEVEL, {"status", "www_authenticate", "headers", "body"}, BODY_MEMBERS) == (
        set(report),
        set(report["response"]),
        set(report["response"]["body"]),
    )
    assert not report["valid"]
    assert "expired" == report["reason"]
    assert 401 == report["status"]
    assert 401 == report["response"]["status"]
    assert {(str, bool, str)} == shapes - {(str, type(None), str)}
    assert "" == done.stderr


def test_explain_json_stays_pure_when_the_jwks_cannot_be_fetched() -> None:
    """A JWKS outage: 503 key_unavailable on stdout as pure JSON; the log warning goes to stderr."""
    unreachable = f"http://127.0.0.1:{free_port()}/jwks.json"
    rs256 = f"{_b64({'alg': 'RS256', 'kid': 'k1'})}.{_b64({'sub': 'user-42'})}.c2lnbmF0dXJl"
    done = run("explain", rs256, "--json", "--jwks-url", unreachable)
    report = json.loads(done.stdout)
    assert 1 == done.returncode
    assert "key_unavailable" == report["reason"]
    assert 503 == report["response"]["status"]
    assert None is report["response"]["www_authenticate"]
    assert "5" == report["response"]["headers"]["retry-after"]
    assert "jwks_refresh_failed" in done.stderr


def _b64(document: dict[str, str]) -> str:
    """A base64url JSON segment."""
    return jwt.utils.base64url_encode(json.dumps(document).encode()).decode()


def test_explain_reads_the_token_from_stdin() -> None:
    """'-' reads the token from stdin (trailing newline and all) and reports as for an argument."""
    value = token("wrong-audience")
    from_stdin = run("explain", "-", "--json", *VERIFY, stdin=value + "\n")
    _, from_argument = explain_json(value)
    assert (1, _comparable(from_argument)) == (
        from_stdin.returncode,
        _comparable(json.loads(from_stdin.stdout)),
    )


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A report without the check details that mention the current time."""
    checks = [(check["name"], check["passed"]) for check in report["checks"]]
    return {**report, "checks": checks}


@pytest.mark.parametrize("defect", [None, "expired", "bad-signature", "quoted", "wrong-type"])
@pytest.mark.parametrize("mode", ["text", "json"])
def test_explain_never_prints_the_signature_or_the_secret(defect: str | None, mode: str) -> None:
    """Neither stdout nor stderr contains the token's signature segment or the key."""
    value = token(defect)
    signature = value.strip('"').rsplit(".", 1)[1]
    done = run("explain", value, *(["--json"] if mode == "json" else []), *VERIFY)
    written = done.stdout + done.stderr
    assert signature not in written
    assert SECRET not in written
    assert bool(done.stdout)


def test_a_key_error_does_not_quote_the_key() -> None:
    """A key too short for HS256 is a usage error whose message does not repeat the key."""
    weak = "weak-key-0123"
    done = run("explain", token(), "--key", weak)
    assert 2 == done.returncode
    assert "" == done.stdout
    assert weak not in done.stderr
    assert "cannot verify HS256" in done.stderr


def test_output_is_plain_when_piped() -> None:
    """With stdout and stderr piped the report has no ANSI escape sequences."""
    done = run("explain", token("expired"), *VERIFY)
    assert (1, None, None) == (
        done.returncode,
        ANSI.search(done.stdout),
        ANSI.search(done.stderr),
    )


def test_hostile_claims_cannot_drive_the_terminal() -> None:
    """Control characters in claims are escaped in the text report, never written raw."""
    hostile = token(aud="\x1b[2J\x1b]0;pwned\x07api://billing")
    done = run("explain", hostile, *VERIFY)
    assert 1 == done.returncode
    assert None is ANSI.search(done.stdout)
    assert None is re.search(r"[\x00-\x08\x0b-\x1f\x7f]", done.stdout)
    assert "audience is \\x1b[2J\\x1b]0;pwned\\x07api://billing" in done.stdout


def test_format_characters_in_claims_are_escaped_in_the_report() -> None:
    """A bidirectional override in a claim is shown as an escape, never reorders the report."""
    hostile = token(aud="api://\u202egnp.exe\u2066\u200b")
    done = run("explain", hostile, *VERIFY, env={"PYTHONIOENCODING": "utf-8"})
    assert 1 == done.returncode
    assert [] == [c for c in done.stdout if unicodedata.category(c) in {"Cf", "Zl", "Zp"}]
    assert "audience is api://\\u202egnp.exe\\u2066\\u200b" in done.stdout


@pytest.mark.parametrize(("no_color", "coloured"), [(False, True), (True, False)])
def test_colour_only_on_a_terminal_without_no_color(no_color: bool, coloured: bool) -> None:  # noqa: FBT001
    """On a terminal the verdict is coloured, unless NO_COLOR is set."""
    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color:
        environment["NO_COLOR"] = "1"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "invalidtoken_mw", "explain", token("expired"), *VERIFY],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    process.wait(timeout=30)
    output = b"".join(chunks).decode()
    assert 1 == process.returncode
    assert coloured == ("\x1b[31mREJECTED: expired\x1b[0m" in output)
    assert "REJECTED: expired" in output


# -- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        pytest.param((), None, "required", id="no-command"),
        pytest.param(("explain", "x.y.z", "--json"), None, "--key", id="no-key"),
        pytest.param(
            ("explain", "x.y.z", "--json", "--key", SECRET, "--alg", "none"),
            None,
            "unsigned tokens can be forged",
            id="alg-none-allowed",
        ),
        pytest.param(
            ("explain", "x.y.z", "--json", "--key-file", "/nonexistent/key.pem"),
            None,
            "No such file",
            id="missing-key-file",
        ),
        pytest.param(
            ("explain", "-", "--json", "--key", SECRET), "\n", "no token", id="empty-stdin"
        ),
        pytest.param(
            ("explain", "x.y.z", "--json", "--key", SECRET, "--scope", 'a"b'),
            None,
            "is not valid",
            id="bad-scope",
        ),
        pytest.param(
            ("explain", "x.y.z", "--json", "--key", SECRET, "--realm", 'a"b'),
            None,
            "is not allowed",
            id="bad-realm",
        ),
        pytest.param(
            ("explain", "x.y.z", "--json", "--key", SECRET, "--bogus"),
            None,
            "unrecognized arguments",
            id="unknown-option",
        ),
        pytest.param(("mint",), None, "needs --key", id="mint-without-key"),
        pytest.param(
            ("mint", "--key", SECRET, "--defect", "melted"), None, "invalid choice", id="bad-defect"
        ),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    """A usage or configuration error exits 2 with a message on stderr and nothing on stdout."""
    done = run(*args, stdin=stdin)
    assert 2 == done.returncode, done.stderr
    assert "" == done.stdout, done.stderr
    assert message in done.stderr, done.stderr


def test_exit_status_is_0_for_valid_and_1_for_rejected() -> None:
    """explain exits 0 for a valid token and 1 for a refused one, in text mode too."""
    assert (0, 1) == (
        run("explain", token(), *VERIFY).returncode,
        run("explain", token("expired"), *VERIFY).returncode,
    )


# -- mint ----------------------------------------------------------------------------------------

# The reason explain gives each --defect (and a token without one).
EXPLAINED: dict[str | None, str | None] = {None: None}
EXPLAINED.update(DEFECT_REASONS.items())


def test_every_defect_has_an_expected_reason() -> None:
    """The table below covers exactly mint's defects, so a new defect needs a test."""
    assert {None, *DEFECTS} == set(EXPLAINED)


@pytest.mark.parametrize("defect", list(EXPLAINED), ids=str)
def test_minted_defect_is_classified_by_explain(defect: str | None) -> None:
    """``mint --defect X`` makes a token that ``explain`` refuses with the matching reason."""
    minted = run(
        "mint",
        *("--key", SECRET, "--iss", ISSUER, "--aud", AUDIENCE, "--sub", "user-42"),
        *("--typ", "at+jwt"),
        *(["--defect", defect] if defect else []),
    )
    status, report = explain_json(minted.stdout.strip(), "--token-type", "at+jwt")
    assert (0, EXPLAINED[defect], 1 if defect else 0) == (
        minted.returncode,
        report["reason"],
        status,
    )


def test_mint_puts_the_chosen_claims_and_headers_in_the_token() -> None:
    """mint's options become claims and header fields; --claim values are read as JSON."""
    done = run(
        "mint",
        *("--key", SECRET, "--sub", "user-7", "--iss", ISSUER, "--aud", AUDIENCE),
        *("--jti", "t-1", "--scope", "orders:read", "--scope", "orders:write"),
        *("--kid", "k1", "--typ", "at+jwt", "--ttl", "120", "--claim", "tenant=42"),
    )
    value = done.stdout.strip()
    claims = jwt.decode(value, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    header = jwt.get_unverified_header(value)
    expected = ("user-7", ISSUER, "t-1", "orders:read orders:write", 42, 120, "k1", "at+jwt")
    assert expected == (
        claims["sub"],
        claims["iss"],
        claims["jti"],
        claims["scope"],
        claims["tenant"],
        claims["exp"] - claims["iat"],
        header["kid"],
        header["typ"],
    )


# -- revoke --------------------------------------------------------------------------------------


def test_revoke_token_is_seen_by_every_store_on_that_redis(redis_server: RedisServer) -> None:
    """``revoke --token -`` writes the key a RedisRevocationStore on the same Redis reads."""
    value = token(jti="t-900")
    claims = jwt.decode(value, options={"verify_signature": False})
    done = run("revoke", "--redis-url", redis_server.url, "--token", "-", stdin=value)
    store = RedisRevocationStore(redis_server.url, local_cache_ttl=0)
    try:
        revoked = store.is_revoked(claims)
        other = store.is_revoked({**claims, "jti": "t-901"})
    finally:
        store.close()
    assert 0 == done.returncode
    assert f"revoked jti=t-900 issuer={ISSUER} until exp={claims['exp']}\n" == done.stdout
    assert revoked
    assert not other


def test_revoke_subject_rejects_tokens_issued_before(redis_server: RedisServer) -> None:
    """``revoke --subject`` revokes the subject's earlier tokens, not later ones."""
    now = time.time()
    done = run(
        "revoke", "--redis-url", redis_server.url, "--subject", "user-42", "--issuer", ISSUER,
        "--before", str(now),
    )  # fmt: skip
    store = RedisRevocationStore(redis_server.url, local_cache_ttl=0)
    try:
        earlier = store.is_revoked({"iss": ISSUER, "sub": "user-42", "iat": now - 60})
        later = store.is_revoked({"iss": ISSUER, "sub": "user-42", "iat": now + 60})
    finally:
        store.close()
    assert 0 == done.returncode
    assert earlier
    assert not later


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        pytest.param(("--token", "not-a-jwt"), 2, "not a readable JWT", id="garbage-token"),
        pytest.param(("--token", "JTI"), 2, "no jti or exp", id="token-without-jti"),
        pytest.param((), 2, "give --token, --subject", id="no-target"),
        pytest.param(
            ("--jti", "t-1", "--expires-at", "9999999999"),
            1,
            "cannot reach Redis",
            id="unreachable",
        ),
    ],
)
def test_revoke_refusals(args: tuple[str, ...], status: int, message: str) -> None:
    """Unusable input exits 2, an unreachable Redis 1, each with a message and no traceback."""
    replaced = tuple(token() if arg == "JTI" else arg for arg in args)
    done = run("revoke", "--redis-url", f"redis://127.0.0.1:{free_port()}/0", *replaced)
    assert status == done.returncode, done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


# -- demo ----------------------------------------------------------------------------------------


def test_demo_runs_to_completion_and_its_table_shows_every_reason() -> None:
    """The demo ends within a minute; its table has every Reason with its status, and the log."""
    started = time.monotonic()
    done = run("demo", script=True)
    elapsed = time.monotonic() - started
    table = _demo_table(done.stdout)
    summary = re.search(r"^(\d+) auth_rejected log events", done.stdout, re.MULTILINE)
    refused = [row for row in table if row[1] >= 400]
    assert 0 == done.returncode
    assert elapsed < DEMO_BUDGET_S
    assert None is ANSI.search(done.stdout)
    assert {reason.value: reason.status for reason in Reason} == {
        reason: status for _, status, reason in refused
    }
    assert (len(refused), len(refused)) == (
        int(summary.group(1)) if summary else None,
        done.stdout.count('  {"reason": '),
    )
    assert [("valid token", 200, "-")] == [row for row in table if row[1] < 400]
    assert ("GitHub key pasted", 401, "inactive_token") in table
    assert '"token_kind": "github_personal_access_token"' in done.stdout  # the kind is named


def _demo_table(stdout: str) -> list[tuple[str, int, str]]:
    """The demo table's rows: (request, status, reason)."""
    lines = stdout.split("\n\n", 1)[0].splitlines()
    assert lines[0].startswith("request"), stdout
    rows = []
    for line in lines[1:]:
        match = re.match(r"(.{26})(\d{3})\s+(\S+)", line)
        assert match is not None, line
        rows.append((match.group(1).strip(), int(match.group(2)), match.group(3)))
    return rows


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_serve_prints_curl_commands_that_work() -> None:
    """``demo --serve`` keeps serving; its first curl command gets a 200; Ctrl-C stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "invalidtoken_mw", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # Ctrl-C as a terminal delivers it: a suite run as a background job of a script
        # (CI runs two side by side) inherits SIGINT ignored, and so would the demo.
        preexec_fn=_default_sigint,  # noqa: PLW1509 - one signal call, no locks
    )
    watchdog = threading.Timer(90, process.kill)  # generous: a loaded CI machine is slow
    watchdog.start()
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("curl") and "Authorization: Bearer" in line:
                break
        command = re.search(r"-H 'Authorization: (Bearer \S+)' (http://\S+)", lines[-1])
        assert command is not None, lines
        response = httpx.get(command.group(2), headers={"Authorization": command.group(1)})
        claims = jwt.decode(command.group(1).split()[1], options={"verify_signature": False})
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=60)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert ("# valid token\n", 200, "user-42", 3600, 0) == (
        lines[-2],
        response.status_code,
        response.json()["subject"],
        claims["exp"] - claims["iat"],
        status,
    )


def test_demo_app_answers_as_the_fastapi_example_does() -> None:
    """The demo's built-in orders API and examples/fastapi/main.py answer the same requests alike.

    The demo no longer loads the example (it must run from a wheel); this keeps the two
    from drifting apart, through uvicorn.
    """
    source = Path(__file__).resolve().parents[1] / "examples" / "fastapi" / "main.py"
    spec = importlib.util.spec_from_file_location("fastapi_example_for_demo", source)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    issuer = FakeIssuer(audience="api://orders")
    reader = {"authorization": f"Bearer {issuer.token(scope='orders:read')}"}
    requests = [
        ("GET", "/health", {}),
        ("GET", "/orders", {}),
        ("GET", "/orders", reader),
        ("POST", "/orders", reader),
        ("POST", "/orders", {"authorization": f"Bearer {issuer.token(scope='orders:write')}"}),
        ("GET", "/orders", {"authorization": f"Bearer {issuer.token('expired')}"}),
    ]
    answers = []
    for app in (demo_app(issuer.verifier()), example.create_app(issuer.verifier())):
        with run_uvicorn(app) as url, client(url) as http:
            answers.append(
                [
                    (response.status_code, response.headers.get("www-authenticate"), response.text)
                    for response in (http.request(m, p, headers=h) for m, p, h in requests)
                ]
            )
    assert [200, 401, 200, 403, 201, 401] == [status for status, _, _ in answers[0]]
    assert answers[1] == answers[0]
