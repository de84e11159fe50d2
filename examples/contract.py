"""Show, without a server, what invalidtoken-mw answers to broken requests.

Runs the sans-IO core on a handful of typical mistakes and prints the status,
the WWW-Authenticate challenge and the reason for each, then the answer to
every Reason. Run: python examples/contract.py
"""

from __future__ import annotations

from invalidtoken_mw import AuthFailure, ChallengeSettings, Reason, Renderer, TokenExtractor

REQUESTS: list[tuple[str, list[str]]] = [
    ("no Authorization header", []),
    ("Basic credentials", ["Basic dXNlcjpwYXNz"]),
    ("'Bearer' with no token", ["Bearer"]),
    ("token wrapped in quotes", ['Bearer "eyJhbGciOiJIUzI1NiJ9.e30.sig"']),
    ("'Bearer Bearer <token>'", ["Bearer Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"]),
    ("token wrapped over two lines", ["Bearer eyJhbGciOiJIUzI1NiJ9.e30\t.sig"]),
    ("truncated JWT", ["Bearer eyJhbGciOiJIUzI1NiJ9.e30"]),
    ("two Authorization headers", ["Bearer abc", "Bearer def"]),
]


def main() -> None:
    """Print one line per sample request, then the answer to each reason."""
    extractor = TokenExtractor()
    renderer = Renderer(ChallengeSettings(realm="orders"))
    print("What the middleware answers to common mistakes\n")
    for label, headers in REQUESTS:
        try:
            extractor.extract(headers)
        except AuthFailure as failure:
            answer = renderer.render(failure)
            challenge = dict(answer.headers).get("www-authenticate", "-")
            print(f"{label:<30} {answer.status}  {failure.reason.value:<16} {challenge}")
    print("\nEvery reason, as sent on the wire\n")
    for reason in Reason:
        answer = renderer.render(AuthFailure(reason, scopes=("orders:write",)))
        challenge = dict(answer.headers).get("www-authenticate", "(no challenge on 503)")
        print(f"{reason.value:<24} {answer.status}  {challenge}")


if __name__ == "__main__":
    main()
