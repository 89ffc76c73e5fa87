"""The hosted session (a browser's sign-in to a business's hosted pages, what lets a second app sign in without the
form) and the authorize request a sign-in page remembers while the person signs in.

Both travel in HttpOnly cookies (web/pages/oauth.py sets them) as tokens signed with the key ring, typed so that neither
is ever taken for the other or for an access token (the API refuses any `typ` but its own). The hosted session's
cookie names the session; the session itself is read live each time (subjects.live): signing out, a password
change or a disable ends it at once, whatever the cookie says."""
from chalicelib.core.security import keys
from chalicelib.flows.oauth import subjects

HOSTED_SECONDS = 12 * 3600  # a working day: then the hosted pages ask for the password again
PENDING_SECONDS = 30 * 60  # long enough to reset a forgotten password by email and come back
MAX_REQUEST_CHARS = 2048  # an authorize request's parameters, kept in a cookie (browsers take 4 KB)
# The signed value itself: JSON escapes a non-ASCII character as \uXXXX (6 characters) and base64 adds a third,
# so 2,048 characters can make 16 KB; the cookie's name and attributes take about 100 more.
MAX_COOKIE_VALUE = 3900


def session_token(answer_access_token: str) -> tuple[str, str, str]:
    """A hosted session from a sign-in's answer (its access token names the session the sign-in started):
    (cookie value, tenant, audience)."""
    claims = keys.verify(answer_access_token)
    kind = "staff" if claims["typ"] == "staff" else "link" if claims["sub"].startswith("link:") else "portal"
    token = keys.sign({"sub": claims["sub"], "tid": claims["tid"], "typ": "hosted", "knd": kind,
                       "sid": claims["sid"], "lnk": claims.get("lnk")}, HOSTED_SECONDS)
    return token, claims["tid"], subjects.AUDIENCE_OF[kind]


def subject(token: str | None, tenant_id: str, audience: str) -> subjects.Subject | None:
    """Who the hosted session names, read live; None when there is none, it ended, or it is of another business or
    another kind of account than the app's."""
    if not token:
        return None
    try:
        claims = keys.verify(token)
    except keys.InvalidToken:
        return None
    kind = claims.get("knd")
    if claims.get("typ") != "hosted" or claims.get("tid") != tenant_id or kind not in subjects.AUDIENCE_OF \
            or subjects.AUDIENCE_OF[kind] != audience or not isinstance(claims.get("sid"), str):
        return None
    return subjects.live(tenant_id, kind, claims["sub"], claims["sid"], claims.get("lnk"))


def signed_in_within(user: subjects.Subject, seconds: int) -> bool:
    """Whether the hosted session started (the person gave their password) at most `seconds` ago."""
    from chalicelib.core.models import now
    return now() - int(user.session.created_ms // 1000) <= seconds


def session_id(token: str | None) -> tuple[str, str, str] | None:
    """(tenant, subject, session id) a hosted session cookie names, even an expired one (to end it)."""
    if not token:
        return None
    try:
        claims = keys.verify(token)
    except keys.InvalidToken:
        return None
    if claims.get("typ") != "hosted":
        return None
    return claims["tid"], claims["sub"], claims["sid"]


# --- the authorize request a sign-in page remembers ----------------------------------------------------------------

def remember(params: dict[str, str], tenant_id: str, audience: str, app_name: str) -> str | None:
    """The cookie value that brings the person back to the app after signing in (None when too long to keep)."""
    if sum(len(k) + len(v) for k, v in params.items()) > MAX_REQUEST_CHARS:
        return None
    token = keys.sign({"sub": "authorize", "tid": tenant_id, "typ": "authorize", "aud_kind": audience,
                       "app": app_name, "req": params}, PENDING_SECONDS)
    return token if len(token) <= MAX_COOKIE_VALUE else None


def pending(token: str | None, tenant_id: str | None = None) -> dict | None:
    """The remembered request: {"tid", "aud_kind", "app", "req"}, or None (none, expired, another business)."""
    if not token:
        return None
    try:
        claims = keys.verify(token)
    except keys.InvalidToken:
        return None
    if claims.get("typ") != "authorize" or not isinstance(claims.get("req"), dict) \
            or (tenant_id is not None and claims.get("tid") != tenant_id):
        return None
    return claims
