"""Every sentence the library sends to a client, in one table.

These are the ``error_description`` (and RFC 9457 ``detail``) values of the library's
own failures: the default of each :class:`~invalidtoken_mw.Reason` and the more
precise ones the extractor and the verifier choose. They are fixed text written here,
never request or token content, each one once; ``{placeholders}`` are filled from the
service's configuration (a claim name, a token type) or a count, never from the token.
Each one is RFC 6750 §3 ``error_description`` text (printable ASCII without a double
quote or a backslash), ends with a full stop and reads well on its own; tests check this for every
entry. docs/reasons.md lists them for users.

:mod:`invalidtoken_mw.reasons` owns this table: it maps each reason to its default.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Sentence", "every_sentence"]


class Sentence:
    """The table: one constant per client-facing sentence, by what it tells the client."""

    # -- The default of each reason (Reason.description) --------------------------------
    MISSING_TOKEN: Final = "This resource requires a bearer token in the Authorization header."
    INVALID_REQUEST: Final = "The request carries the access token in an invalid way."
    MALFORMED_TOKEN: Final = "The access token is malformed."
    ALGORITHM_NOT_ALLOWED: Final = (
        "The access token is signed with an algorithm this service does not accept."
    )
    # An issuer that just rotated: the first request usually succeeds, but one within a
    # second of a key set fetch, or after another unknown key, waits up to the cool-down.
    UNKNOWN_KEY: Final = (
        "The access token is signed with a key this service does not know. If its issuer"
        " has just rotated keys, retry once a few seconds later; otherwise get a token from"
        " the issuer this service trusts."
    )
    BAD_SIGNATURE: Final = "The access token signature is invalid."
    EXPIRED: Final = "The access token expired. Obtain a new one and retry."
    NOT_YET_VALID: Final = (
        "The access token is not valid yet. The clocks of the client, the issuer"
        " and this service may disagree."
    )
    WRONG_ISSUER: Final = "The access token was issued by an issuer this service does not trust."
    WRONG_AUDIENCE: Final = "The access token was issued for another audience."
    WRONG_TOKEN_TYPE: Final = "The token is not an access token of the type this service requires."
    MISSING_CLAIM: Final = "The access token lacks a required claim."
    WRONG_CLAIM: Final = "The access token carries a claim value this service does not accept."
    REVOKED: Final = "The access token has been revoked."
    INSUFFICIENT_SCOPE: Final = "The access token does not grant the scope this request requires."
    INSUFFICIENT_SCOPE_ANY: Final = (
        "The access token grants none of the scopes this request accepts; any one of them will do."
    )
    INSUFFICIENT_ROLE: Final = "The access token does not grant the role this request requires."
    INSUFFICIENT_ROLE_ANY: Final = (
        "The access token grants none of the roles this request accepts; any one of them will do."
    )
    # The authorization server's introspection answered "active": false (RFC 7662 §2.2),
    # which does not say why: expired, revoked, or never issued by it.
    INACTIVE_TOKEN: Final = (
        "The access token is not active: the authorization server no longer accepts it,"
        " or never issued it. Obtain a new one and retry."
    )
    # RFC 9470: the token is fine, the user's authentication behind it is not enough.
    # The challenge's acr_values and max_age say what is; the sentence never echoes the
    # token's own acr or auth_time.
    INSUFFICIENT_USER_AUTHENTICATION: Final = (
        "The user's authentication behind the access token is not strong or recent enough"
        " for this request. Authenticate again as the challenge's acr_values and max_age"
        " ask, and retry with the new token."
    )
    # Every 503 reason: the client can only wait, whichever dependency is down.
    UNAVAILABLE: Final = "The service cannot check access tokens right now. Retry later."

    # -- How the request carries its credentials (invalid_request) ----------------------
    NO_TOKEN_AFTER_SCHEME: Final = "The request names the Bearer scheme but carries no token."
    SEVERAL_TOKENS: Final = "The request carries more than one access token; send exactly one."
    EMPTY_PARAMETER: Final = "The access_token parameter is empty."
    AMBIGUOUS_PARAMETER: Final = (
        "The access_token parameter is ambiguous: separate parameters with '&' only, not ';'."
    )

    # -- What is wrong with the token's shape (malformed_token) ------------------------
    TOO_LARGE: Final = (
        "The access token is malformed: it is larger than this service accepts. Send the"
        " access token, not another kind of token or document."
    )
    QUOTED: Final = (
        "The access token is malformed: it is wrapped in quotes. Send the token without them."
    )
    SCHEME_TWICE: Final = (
        "The access token is malformed: the Bearer scheme appears twice. Send"
        " 'Authorization: Bearer <token>'."
    )
    SCHEME_PUNCTUATION: Final = (
        "The access token is malformed: the scheme is followed by punctuation. Send"
        " 'Authorization: Bearer <token>' with a single space."
    )
    WRAPPED: Final = (
        "The access token is malformed: it contains spaces or line breaks, as if it was"
        " wrapped when copied. Copy it again as one line."
    )
    BAD_CHARACTERS: Final = (
        "The access token is malformed: it contains characters a bearer token cannot contain."
    )
    #: ``{count}``: how many of the three parts the token has (1 or 2).
    TRUNCATED_JWT: Final = (
        "The access token is malformed: it has {count} of the 3 dot-separated parts of a"
        " JWT, so it looks truncated. Copy it again in full."
    )
    NOT_THREE_PARTS: Final = (
        "The access token is malformed: a JWT has 3 dot-separated parts of base64url text."
    )
    HEADER_NOT_OBJECT: Final = "The access token is malformed: its header is not a JSON object."
    CLAIMS_NOT_OBJECT: Final = "The access token is malformed: its claims are not a JSON object."
    KID_NOT_STRING: Final = "The access token is malformed: its kid header is not a string."
    CRITICAL_EXTENSION: Final = (
        "The access token is malformed: its crit header is not a list of extensions this"
        " service supports."
    )
    ENCRYPTED: Final = (
        "The access token is encrypted (JWE); this service accepts signed tokens (JWS) only."
    )

    # -- What is wrong with the token's content ----------------------------------------
    UNSIGNED: Final = (
        "The access token is not signed (alg none); this service requires a signature."
    )
    ALGORITHM_NOT_THE_KEYS: Final = "The access token's algorithm does not match its signing key."
    #: ``{claim}``: ``exp``, ``nbf`` or ``iat``, the first of them that is not a number.
    NOT_A_NUMERIC_DATE: Final = (
        "The access token is malformed: its {claim} claim is not a number of seconds"
        " since the epoch (a NumericDate)."
    )
    #: ``{typ}``: the configured ``token_type``.
    NOT_THE_TOKEN_TYPE: Final = (
        "The token is not an access token of the type this service requires ({typ})."
    )
    #: ``{claim}``: a configured required claim's name.
    LACKS_THE_CLAIM: Final = "The access token lacks the required {claim} claim."
    TENANT_NOT_TRUSTED: Final = (
        "The access token was issued by a tenant this service does not trust."
    )
    TENANT_MISMATCH: Final = (
        "The access token's tid claim does not name the tenant in its iss claim."
    )
    #: ``{claim}``: the claim a configured claim rule reads.
    CLAIM_NOT_ACCEPTED: Final = (
        "The access token's {claim} claim has a value this service does not accept."
    )

    # -- What kind of credential the client sent (token_kind.describe_refusal) ---------
    # Each names the kind, never any part of it, and says what the API expects. A JWE
    # has ENCRYPTED, which the verifier has always sent.
    KIND_ID_TOKEN: Final = (
        "This looks like an OpenID Connect ID token; this API accepts access tokens issued"
        " by its identity provider, not ID tokens."
    )
    KIND_REFRESH_TOKEN: Final = (
        "This looks like a refresh token; exchange it at the identity provider for an"
        " access token and send that."
    )
    KIND_GITHUB_PERSONAL_ACCESS_TOKEN: Final = (
        "This looks like a GitHub personal access token; this API accepts access tokens"
        " issued by its identity provider."
    )
    KIND_GITHUB_OAUTH_TOKEN: Final = (
        "This looks like a GitHub OAuth token; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_GITHUB_APP_TOKEN: Final = (
        "This looks like a GitHub App token; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_GITHUB_REFRESH_TOKEN: Final = (
        "This looks like a GitHub refresh token; this API accepts access tokens issued by"
        " its identity provider."
    )
    KIND_SLACK_BOT_TOKEN: Final = (
        "This looks like a Slack bot token; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_SLACK_USER_TOKEN: Final = (
        "This looks like a Slack user token; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_SLACK_REFRESH_TOKEN: Final = (
        "This looks like a Slack refresh token; this API accepts access tokens issued by"
        " its identity provider."
    )
    KIND_SLACK_TOKEN: Final = (
        "This looks like a Slack token; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_STRIPE_SECRET_KEY: Final = (
        "This looks like a Stripe secret key; this API accepts access tokens issued by its"
        " identity provider. Roll the key if it was exposed."
    )
    KIND_STRIPE_RESTRICTED_KEY: Final = (
        "This looks like a Stripe restricted key; this API accepts access tokens issued by"
        " its identity provider."
    )
    KIND_STRIPE_PUBLISHABLE_KEY: Final = (
        "This looks like a Stripe publishable key; this API accepts access tokens issued"
        " by its identity provider."
    )
    KIND_GOOGLE_ACCESS_TOKEN: Final = (
        "This looks like a Google OAuth access token; this API accepts access tokens issued"
        " by its identity provider."
    )
    KIND_AWS_ACCESS_KEY_ID: Final = (
        "This looks like an AWS access key ID; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_DISCORD_BOT_TOKEN: Final = (
        "This looks like a Discord bot token; this API accepts access tokens issued by its"
        " identity provider."
    )
    KIND_BASIC_CREDENTIALS: Final = (
        "This looks like HTTP Basic credentials (a user name and password) sent as a bearer"
        " token; this API accepts access tokens issued by its identity provider."
    )
    # -- Protected-resource metadata (RFC 9728, RFC 8707) --------------------------------
    ANOTHER_RESOURCE: Final = (
        "The access token was issued for another resource; ask the authorization server"
        " for a token for this resource."
    )

    # -- How the user's authentication falls short (insufficient_user_authentication) --
    STEP_UP_ACR: Final = (
        "This request requires a stronger authentication of the user than the access"
        " token records. Authenticate again with one of the challenge's acr_values and retry."
    )
    STEP_UP_NO_ACR: Final = (
        "This request requires a known strength of user authentication, and the access"
        " token has no acr claim. Authenticate again with one of the challenge's acr_values."
    )
    STEP_UP_MAX_AGE: Final = (
        "This request requires a more recent authentication of the user. Authenticate"
        " again (the challenge's max_age is the most seconds allowed) and retry."
    )
    STEP_UP_NO_AUTH_TIME: Final = (
        "This request requires a recent authentication of the user, and the access token"
        " has no usable auth_time claim. Authenticate again and retry."
    )

    # -- DPoP (RFC 9449): the defaults of its reasons, then what is wrong with a proof --
    INVALID_DPOP_PROOF: Final = "The DPoP proof is invalid."
    DPOP_REPLAYED: Final = (
        "The DPoP proof has been used before; send a new proof with every request."
    )
    DPOP_NONCE_REQUIRED: Final = (
        "The DPoP proof must carry the nonce this service sends in the DPoP-Nonce header."
    )
    DPOP_KEY_MISMATCH: Final = "The access token is bound to another key than the DPoP proof."
    DPOP_BOUND_BEARER: Final = (
        "The access token is bound to a DPoP key; send it with the DPoP scheme and a proof."
    )
    DPOP_REQUIRED: Final = "This resource requires a DPoP-bound access token and a DPoP proof."
    DPOP_NO_TOKEN: Final = "The request names the DPoP scheme but carries no token."
    DPOP_MISSING: Final = "The request carries no DPoP proof; send one DPoP header."
    DPOP_SEVERAL: Final = "The request carries more than one DPoP proof; send exactly one."
    DPOP_NOT_JWS: Final = "The DPoP proof is not a well-formed signed JWT."
    DPOP_WRONG_TYP: Final = "The DPoP proof header must have typ dpop+jwt."
    DPOP_ALGORITHM: Final = (
        "The DPoP proof is signed with an algorithm this service does not accept."
    )
    DPOP_NO_JWK: Final = "The DPoP proof header must carry the public key as a valid jwk."
    DPOP_PRIVATE_KEY: Final = (
        "The DPoP proof header carries a private key; send only the public key."
    )
    DPOP_BAD_SIGNATURE: Final = "The DPoP proof signature is invalid."
    DPOP_CLAIM_MISSING: Final = "The DPoP proof lacks a valid {claim} claim."
    DPOP_WRONG_HTM: Final = "The DPoP proof was made for another HTTP method (htm)."
    DPOP_WRONG_HTU: Final = "The DPoP proof was made for another URL (htu)."
    DPOP_STALE: Final = (
        "The DPoP proof is too old or from the future (iat); the clocks may disagree."
    )
    DPOP_WRONG_ATH: Final = "The DPoP proof was made for another access token (ath)."
    DPOP_UNBOUND_TOKEN: Final = (
        "The access token is not bound to a DPoP key; send it with the Bearer scheme."
    )


def every_sentence() -> dict[str, str]:
    """The table as a mapping from each constant's name to its sentence (for tests, docs)."""
    return {
        name: value
        for name, value in vars(Sentence).items()
        if name.isupper() and isinstance(value, str)
    }
