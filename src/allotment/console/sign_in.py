"""Sign-in and sign-out (CON-1..CON-7).

The admin key is typed once into a password field and posted in the body of a same-origin
form; the answer is a session cookie and a redirect, so the key never appears in a URL (the
form's method is POST, and the redirect names only the page to go back to) and nothing here
logs it (CON-5). The sign-in form has its own CSRF token, a random value in a short-lived
cookie the form must repeat (a login CSRF would sign the browser in as someone else, CON-10).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from allotment.console.guard import SESSION_COOKIE, SIGN_IN_COOKIE
from allotment.console.sessions import LIFETIME_S, SessionStore, new_token
from allotment.http.context import keys_of

__all__ = ("safe_next", "sessions_of", "sign_in_form", "sign_in_submit", "sign_out")

_PUBLIC = {"console_public": True}
_REFUSED = "That key was not accepted. Enter an active admin API key (sk_test_ or sk_live_)."
_SIGN_IN_COOKIE_S = 3600


def sessions_of(request: Request[Any, Any, Any]) -> SessionStore:
    sessions: SessionStore = request.app.state["console_sessions"]
    return sessions


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only, never another site (an open
    redirect would carry the fresh session's user anywhere)."""
    path = value or ""
    if path.startswith("/console/") and not path.startswith("/console//"):
        return path if "\\" not in path and "://" not in path else "/console/"
    return "/console/"


def _secure(request: Request[Any, Any, Any]) -> bool:
    """CON-4: cookies are `Secure` when this request came over TLS."""
    return request.url.scheme == "https"


def _form_page(request: Request[Any, Any, Any], next_path: str, error: str = "") -> Template:
    """The sign-in form, with a fresh sign-in CSRF token in its field and its cookie."""
    token = new_token()
    cookie = Cookie(
        key=SIGN_IN_COOKIE, value=token, path="/console/sign-in", max_age=_SIGN_IN_COOKIE_S,
        httponly=True, samesite="strict", secure=_secure(request),
    )  # fmt: skip
    return Template(
        template_name="sign_in.html",
        status_code=401 if error else 200,
        context={"csrf_token": token, "next": next_path, "error": error},
        cookies=[cookie],
    )


@get("/sign-in", name="console.sign_in", opt=_PUBLIC, sync_to_thread=False)
def sign_in_form(request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Template:
    """The sign-in page."""
    return _form_page(request, safe_next(next))


@post("/sign-in", name="console.sign_in_submit", opt=_PUBLIC, status_code=303)
async def sign_in_submit(
    request: Request[Any, Any, Any],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Exchange an admin key for a session (CON-2, CON-3). The guard has checked the form's
    sign-in token already."""
    next_path = safe_next(data.get("next"))
    key = keys_of(request).authenticate(data.get("api_key", "").strip())
    if key is None or "admin" not in key.scopes:
        return _form_page(request, next_path, _REFUSED)
    session = sessions_of(request).open(data["api_key"].strip(), key.environment)
    cookie = Cookie(
        key=SESSION_COOKIE, value=session.token, path="/console", max_age=LIFETIME_S,
        httponly=True, samesite="strict", secure=_secure(request),
    )  # fmt: skip
    gone = Cookie(key=SIGN_IN_COOKIE, value="", path="/console/sign-in", max_age=0)
    return Redirect(next_path, status_code=HTTP_303_SEE_OTHER, cookies=[cookie, gone])


@post("/sign-out", name="console.sign_out", status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    """End the session here, on the server (CON-7), and clear the cookie."""
    sessions_of(request).close(request.cookies.get(SESSION_COOKIE))
    gone = Cookie(key=SESSION_COOKIE, value="", path="/console", max_age=0, httponly=True,
                  samesite="strict", secure=_secure(request))  # fmt: skip
    return Redirect("/console/sign-in", status_code=HTTP_303_SEE_OTHER, cookies=[gone])
