"""A real OAuth2 authorization server for the sign-in tests, built with authlib, on 127.0.0.1.

It issues JWT access tokens (RS256, published at /jwks) for one audience, through the
authorization-code grant with PKCE (the "user" approves at once), the device grant (approved
by visiting the verification URI), client credentials and refresh tokens. Metadata is at
/.well-known/oauth-authorization-server. GET /stats counts the tokens issued per grant, so a
test can tell a renewal from a fresh sign-in.

    python oauth_server.py PORT AUDIENCE [TOKEN_LIFETIME_SECONDS]

It prints "ready" on its first line once it serves.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections import Counter
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant, DeviceCredentialDict
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Flask, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

PUBLIC_CLIENT = "flyte-cli"
APP_CLIENT, APP_SECRET = "pipeline-bot", "bot secret/with+odd chars"
REDIRECT_URI = "http://localhost:53593/callback"


class User:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_user_id(self) -> str:
        return self.name


ALICE = User("alice")


class Client(ClientMixin):
    def __init__(self, client_id: str, secret: str | None, grant_types: list[str]) -> None:
        self.client_id, self.secret, self.grant_types = client_id, secret, grant_types

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return REDIRECT_URI

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == REDIRECT_URI

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(self.secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == ("none" if self.secret is None else "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


CLIENTS = {
    PUBLIC_CLIENT: Client(
        PUBLIC_CLIENT,
        None,
        ["authorization_code", "refresh_token", DeviceCodeGrant.GRANT_TYPE],
    ),
    APP_CLIENT: Client(APP_CLIENT, APP_SECRET, ["client_credentials", "refresh_token"]),
}


class Code:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return False


class Refresh:
    def __init__(self, client_id: str, scope: str, user: User | None) -> None:
        self.client_id, self.scope, self.user, self.revoked = client_id, scope, user, False

    def check_client(self, client: Client) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def is_revoked(self) -> bool:
        return self.revoked

    def is_expired(self) -> bool:
        return False


CODES: dict[str, Code] = {}
REFRESH: dict[str, Refresh] = {}
DEVICES: dict[str, DeviceCredentialDict] = {}
APPROVED: set[str] = set()
ISSUED: Counter[str] = Counter()
LOCK = threading.Lock()


class AuthorizationCode(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def save_authorization_code(self, code: str, req: Any) -> None:
        data = req.payload.data
        CODES[code] = Code(
            code=code,
            client_id=req.client.get_client_id(),
            redirect_uri=data.get("redirect_uri"),
            scope=req.payload.scope or "",
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            user=req.user,
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = CODES.get(code)
        return found if found is not None and found.client_id == client.get_client_id() else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        CODES.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> User:
        return authorization_code.user


class RefreshToken(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
        found = REFRESH.get(refresh_token)
        return found if found is not None and not found.revoked else None

    def authenticate_user(self, refresh_token: Refresh) -> User | None:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Refresh) -> None:
        refresh_token.revoked = True


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]


class Device(DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
        return DEVICES.get(device_code)

    def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
        return (ALICE, True) if user_code in APPROVED else None

    def should_slow_down(self, credential: DeviceCredentialDict) -> bool:
        return False


def main() -> None:
    port, audience = int(sys.argv[1]), sys.argv[2]
    lifetime = int(sys.argv[3]) if len(sys.argv) > 3 else 3600
    issuer = f"http://127.0.0.1:{port}"
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})

    class Tokens(JWTBearerTokenGenerator):
        def get_jwks(self) -> KeySet:
            return KeySet([key])

        def get_audiences(self, client: Client, user: User | None, scope: str) -> str:
            return audience

    class DeviceEndpoint(DeviceAuthorizationEndpoint):
        CLIENT_AUTH_METHODS = ["none"]
        INTERVAL = 1

        def get_verification_uri(self) -> str:
            return f"{issuer}/device"

        def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
            DEVICES[data["device_code"]] = DeviceCredentialDict(
                client_id=client_id, scope=scope, expires_at=time.time() + data["expires_in"], **data
            )

    app = Flask(__name__)
    server = AuthorizationServer(app, query_client=CLIENTS.get)

    def save_token(token: dict[str, Any], req: Any) -> None:
        with LOCK:
            ISSUED[req.payload.grant_type] += 1
        if token.get("refresh_token"):
            REFRESH[token["refresh_token"]] = Refresh(
                req.client.get_client_id(), token.get("scope", ""), req.user
            )

    server.save_token = save_token  # type: ignore[method-assign]
    server.register_token_generator(
        "default",
        Tokens(
            issuer,
            refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda client, grant_type: lifetime,
        ),
    )
    server.register_grant(AuthorizationCode, [CodeChallenge(required=True)])
    server.register_grant(RefreshToken)
    server.register_grant(ClientCredentials)
    server.register_grant(Device)
    server.register_endpoint(DeviceEndpoint)

    @app.get("/.well-known/oauth-authorization-server")
    def metadata() -> Any:
        return jsonify(
            issuer=issuer,
            authorization_endpoint=f"{issuer}/authorize",
            token_endpoint=f"{issuer}/token",
            device_authorization_endpoint=f"{issuer}/device_authorization",
            jwks_uri=f"{issuer}/jwks",
            response_types_supported=["code"],
            grant_types_supported=[
                "authorization_code",
                "client_credentials",
                "refresh_token",
                DeviceCodeGrant.GRANT_TYPE,
            ],
            code_challenge_methods_supported=["S256"],
            token_endpoint_auth_methods_supported=["none", "client_secret_basic"],
        )

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(keys=[key.as_dict(private=False)])

    @app.get("/authorize")
    def authorize() -> Any:
        # The user is signed in and consents at once.
        return server.create_authorization_response(grant_user=ALICE)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.post("/device_authorization")
    def device_authorization() -> Any:
        return server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)

    @app.get("/device")
    def device() -> Any:
        APPROVED.add(request.args["user_code"])
        return "approved"

    @app.get("/stats")
    def stats() -> Any:
        with LOCK:
            return jsonify(dict(ISSUED))

    http = make_server("127.0.0.1", port, app, threaded=True)
    print("ready", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
