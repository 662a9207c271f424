"""Token verification: Supabase-style HS256 and RS256/ES256 through a real JWKS endpoint."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chassis.auth import InvalidToken, TokenVerifier, issue_token
from chassis.settings import ServiceSettings

SECRET = "a-test-secret-of-more-than-thirty-two-chars"


class JwksServer:
    """Serves a JWK set over HTTP and counts how often it is fetched."""

    def __init__(self, keys: dict[str, object]) -> None:
        jwks = {"keys": []}
        for kid, key in keys.items():
            public = jwt.algorithms.get_default_algorithms()[
                "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
            ].to_jwk(key.public_key(), as_dict=True)
            jwks["keys"].append({**public, "kid": kid, "use": "sig"})
        body = json.dumps(jwks).encode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.fetches = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"

    def close(self) -> None:
        self.httpd.shutdown()


def signed(key, kid: str, algorithm: str, **claims) -> str:
    now = datetime.now(UTC)
    base = {"sub": "user-9", "exp": now + timedelta(minutes=5), "iat": now}
    return jwt.encode({**base, **claims}, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def identity_provider():
    keys = {
        "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec-1": ec.generate_private_key(ec.SECP256R1()),
    }
    server = JwksServer(keys)
    yield server, keys
    server.close()


async def test_rs256_and_es256_tokens_verify_against_the_jwks(identity_provider):
    server, keys = identity_provider
    verifier = TokenVerifier(ServiceSettings(jwt_jwks_url=server.url))
    rsa_user = await verifier.verify(
        signed(keys["rsa-1"], "rsa-1", "RS256", app_metadata={"role": "admin"})
    )
    assert rsa_user.user_id == "user-9" and rsa_user.is_admin
    ec_user = await verifier.verify(signed(keys["ec-1"], "ec-1", "ES256"))
    assert ec_user.role is None and not ec_user.is_admin


async def test_unknown_keys_refresh_the_jwks_at_most_once_a_minute(identity_provider):
    server, keys = identity_provider
    verifier = TokenVerifier(ServiceSettings(jwt_jwks_url=server.url))
    await verifier.verify(signed(keys["rsa-1"], "rsa-1", "RS256"))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(20):
        with pytest.raises(InvalidToken):
            await verifier.verify(signed(stranger, "made-up", "RS256"))
    assert server.fetches == 1


async def test_with_a_jwks_an_hs256_token_is_refused(identity_provider):
    server, _ = identity_provider
    verifier = TokenVerifier(ServiceSettings(jwt_jwks_url=server.url))
    with pytest.raises(InvalidToken):
        await verifier.verify(issue_token(secret=SECRET, user_id="u"))


async def test_hs256_tokens_carry_role_and_display_name():
    verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET))
    admin = await verifier.verify(
        issue_token(secret=SECRET, user_id="a", name="Alice", role="admin")
    )
    assert (admin.user_id, admin.display_name, admin.is_admin, admin.is_moderator) == (
        "a", "Alice", True, True,
    )  # fmt: skip
    moderator = await verifier.verify(issue_token(secret=SECRET, user_id="m", role="moderator"))
    assert moderator.is_moderator and not moderator.is_admin
    by_email = await verifier.verify(issue_token(secret=SECRET, user_id="e", email="zoe@shop.fr"))
    assert by_email.display_name == "zoe"


async def test_the_role_claim_path_is_configurable():
    verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET, jwt_role_claim="role"))
    token = jwt.encode(
        {"sub": "x", "role": "admin", "exp": datetime.now(UTC) + timedelta(minutes=1)},
        SECRET,
        algorithm="HS256",
    )
    assert (await verifier.verify(token)).is_admin


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        issue_token(secret="another-secret-of-more-than-thirty-two-c", user_id="x"),
        issue_token(secret=SECRET, user_id="x", ttl=timedelta(seconds=-5)),
        jwt.encode({"exp": datetime.now(UTC) + timedelta(minutes=1)}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "x"}, SECRET, algorithm="HS256"),
    ],
    ids=["garbage", "wrong-secret", "expired", "no-subject", "no-expiry"],
)
async def test_bad_tokens_are_refused(token):
    verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET))
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_an_unsigned_token_is_refused():
    verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET))
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(
        json.dumps({"sub": "x", "exp": 4102444800, "app_metadata": {"role": "admin"}}).encode()
    ).decode()
    with pytest.raises(InvalidToken):
        await verifier.verify(f"{header}.{payload}.")


async def test_display_names_lose_control_characters_and_are_bounded():
    verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET))
    token = issue_token(secret=SECRET, user_id="n", name="Zo\x00é\u202e \n Bot" + "x" * 200)
    name = (await verifier.verify(token)).display_name
    assert name.startswith("Zoé Bot") and len(name) == 80
    blank = issue_token(secret=SECRET, user_id="b", name="\x00\x01", email="lea@shop.fr")
    assert (await verifier.verify(blank)).display_name == "lea"
