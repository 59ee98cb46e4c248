"""Credentials on requests: a fixed header (Okta's SSWS API token, HTTP Basic), or an OAuth 2.0
access token fetched when first needed, again before it expires, and again once when the
vendor answers 401 (the client then retries the request: `pipeline.collect.http`).

Token sources: an OAuth 2.0 token endpoint (client credentials, RFC 6749 §4.4, with a client
secret or a private-key JWT, RFC 7523 §2.2; or ServiceNow's password grant), and MSAL for the
Microsoft identity platform. Secrets stay in `SecretStr` until the moment they go on the wire.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Generator
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from pipeline.collect.http import AccessDenied, Transient, VendorClient

# A token is fetched again this long before the expiry its endpoint announced.
EXPIRY_MARGIN = 60.0


class StaticAuth(httpx.Auth):
    """One header with a fixed value on every request (e.g. `Authorization: SSWS <token>`)."""

    def __init__(self, header: str, value: SecretStr) -> None:
        self._header = header
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._value.get_secret_value()
        yield request


class TokenSource(Protocol):
    def token(self) -> str: ...

    def forget(self) -> None: ...


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>` from a token source; `renew` drops the token held, so
    the next request fetches a new one."""

    def __init__(self, tokens: TokenSource) -> None:
        self._tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._tokens.token()}"
        yield request

    def renew(self) -> None:
        self._tokens.forget()


class OAuthTokens:
    """Access tokens from an OAuth 2.0 token endpoint: `form()` is the request's body, built
    for each request (a client assertion must be new each time); the token client carries the
    client's authentication when it is HTTP Basic (client_secret_basic)."""

    def __init__(
        self,
        client: VendorClient,
        token_url: str,
        form: Callable[[], dict[str, str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._url = token_url
        self._form = form
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        if self._token is None or self._clock() >= self._expires:
            response = self._client.request("POST", self._url, data=self._form())
            body = _json_object(response)
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                vendor = self._client.vendor
                raise AccessDenied(f"{vendor}: the token endpoint sent no access_token")
            lifetime = _seconds(body.get("expires_in"), default=3600.0)
            self._token = token
            self._expires = self._clock() + max(lifetime - EXPIRY_MARGIN, lifetime / 2)
        return self._token

    def forget(self) -> None:
        self._token = None


def client_credentials_form(scope: str | None = None) -> Callable[[], dict[str, str]]:
    """The body of a client-credentials request (RFC 6749 §4.4.2)."""

    def form() -> dict[str, str]:
        body = {"grant_type": "client_credentials"}
        if scope:
            body["scope"] = scope
        return body

    return form


def private_key_jwt(
    client_id: str, audience: str, key: SecretStr, key_id: str | None, lifetime: int = 300
) -> Callable[[], dict[str, str]]:
    """The client-assertion fields of a token request signed with the client's private key
    (RFC 7523 §2.2, `private_key_jwt` in OpenID Connect Core §9): `iss` and `sub` the client
    id, `aud` the token endpoint, a short `exp` and a fresh `jti` each time, RS256. Okta
    documents these claims for its service apps ("Build a JWT for client authentication",
    https://developer.okta.com/docs/guides/build-self-signed-jwt/) and takes the key as a PEM
    or a JWK (a private JWK's JSON, as its Admin Console generates it)."""
    import jwt  # PyJWT: only the collectors that sign need it

    text = key.get_secret_value().strip()
    try:
        signing_key: Any = jwt.PyJWK.from_json(text).key if text.startswith("{") else text
        if key_id is None and text.startswith("{"):
            key_id = json.loads(text).get("kid")
        jwt.encode({"probe": 1}, signing_key, algorithm="RS256")  # a bad key fails here, once
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise ValueError(f"the private key is not an RSA key in PEM or JWK form: {exc}") from None
    headers = {"kid": key_id} if key_id else None

    def fields() -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt.encode(claims, signing_key, algorithm="RS256", headers=headers),
        }

    return fields


class MsalTokens:
    """Microsoft identity platform tokens through MSAL's client-credentials flow
    (`ConfidentialClientApplication.acquire_token_for_client`, which caches a token until it
    nears expiry; https://learn.microsoft.com/entra/identity-platform/msal-client-applications).
    The flow issues no refresh token, so `forget` drops the cached access token and the next
    call asks for a new one."""

    def __init__(
        self,
        vendor: str,
        authority: str,
        client_id: str,
        secret: SecretStr,
        scope: str,
        verify: str | bool,
        permission: str,
    ) -> None:
        self._vendor = vendor
        self._authority = authority
        self._client_id = client_id
        self._secret = secret
        self._scopes = [scope]
        self._verify = verify
        self._permission = permission
        self._app: Any = None

    def _application(self) -> Any:
        import msal
        import requests

        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._secret.get_secret_value(),
                    authority=self._authority,
                    # The authority's OpenID configuration is read from the authority itself;
                    # instance discovery would ask login.microsoftonline.com about it.
                    instance_discovery=False,
                    http_client=None if self._verify is True else _Verified(self._verify),
                    timeout=30,
                )
            except requests.RequestException as exc:
                raise Transient(f"token authority unreachable ({type(exc).__name__})") from None
            except ValueError as exc:
                raise AccessDenied(
                    f"{self._vendor}: the authority {self._authority} refused its OpenID "
                    f"configuration ({' '.join(str(exc).split())[:200]}): check the tenant id"
                ) from None
        return self._app

    def token(self) -> str:
        import requests

        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=self._scopes)
        except requests.RequestException as exc:
            raise Transient(f"token endpoint unreachable ({type(exc).__name__})") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(token, str) and token:
            return token
        error = str(result.get("error", "no token")) if isinstance(result, dict) else "no token"
        detail = str(result.get("error_description", "")) if isinstance(result, dict) else ""
        # AADSTS codes: the first line says what is wrong; the rest is a trace id and a time.
        first = detail.splitlines()[0] if detail else ""
        if error in {"temporarily_unavailable", "server_error"}:
            raise Transient(f"token endpoint: {error}")
        raise AccessDenied(f"{self._vendor}: token: {error}: {first[:200]} {self._permission}")

    def forget(self) -> None:
        if self._app is not None:
            self._app.remove_tokens_for_client()


class _Verified:
    """An HTTP client for MSAL that checks certificates against our CA bundle on every call:
    requests lets REQUESTS_CA_BUNDLE win over a session's own `verify`
    (https://github.com/psf/requests/issues/3829), so MSAL's `verify=` alone is not enough."""

    def __init__(self, verify: str | bool) -> None:
        import requests

        self._session = requests.Session()
        self._verify = verify

    def get(self, url: str, **options: Any) -> Any:
        return self._session.get(url, verify=self._verify, **options)

    def post(self, url: str, **options: Any) -> Any:
        return self._session.post(url, verify=self._verify, **options)

    def close(self) -> None:
        self._session.close()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Transient("the token endpoint answered something other than a JSON object")
    return body


def _seconds(value: object, default: float) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default
