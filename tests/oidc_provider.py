"""A small but real OpenID provider on loopback for the tests: discovery, authorize (auto-approving the user the
test chose), token endpoint with PKCE and client authentication, JWKS, RS256 ID tokens. The app talks to it with
exactly the code that talks to Google or Microsoft in production."""
import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class Provider:
    def __init__(self, client_id="portal-client", client_secret="provider-secret"):
        self.client_id, self.client_secret = client_id, client_secret
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.user = {"sub": "1001", "email": "someone@example.com", "email_verified": True}
        self.codes = {}
        self.tamper = None  # e.g. "nonce" or "audience" to send a bad ID token
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, {"issuer": provider.issuer, "authorization_endpoint": provider.base + "/authorize",
                                            "token_endpoint": provider.base + "/token", "jwks_uri": provider.base + "/jwks",
                                            "id_token_signing_alg_values_supported": ["RS256"]})
                if url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.key.public_key()))
                    return self._json(200, {"keys": [{**jwk, "kid": provider.kid, "use": "sig", "alg": "RS256"}]})
                if url.path == "/authorize":
                    if q.get("client_id") != provider.client_id or q.get("code_challenge_method") != "S256":
                        return self._json(400, {"error": "invalid_request"})
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = dict(q, user=dict(provider.user))
                    location = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q["state"]})
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                    return None
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                if self.path != "/token":
                    return self._json(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
                grant = provider.codes.pop(form.get("code"), None)  # codes are single use
                if grant is None or form.get("client_secret") != provider.client_secret:
                    return self._json(400, {"error": "invalid_grant"})
                challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode())
                                                     .digest()).rstrip(b"=").decode()
                if challenge != grant["code_challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
                    return self._json(400, {"error": "invalid_grant"})
                now = int(time.time())
                claims = {"iss": provider.issuer, "aud": provider.client_id, "iat": now, "exp": now + 300,
                          "nonce": grant["nonce"], **grant["user"]}
                if provider.tamper == "nonce":
                    claims["nonce"] = "other"
                if provider.tamper == "audience":
                    claims["aud"] = "someone-else"
                key = provider.key if provider.tamper != "signature" else \
                    rsa.generate_private_key(public_exponent=65537, key_size=2048)
                token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": provider.kid})
                return self._json(200, {"access_token": "at", "token_type": "Bearer", "id_token": token})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.base
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def discovery_url(self):
        return self.base + "/.well-known/openid-configuration"

    def stop(self):
        self.server.shutdown()


def install(provider: "Provider") -> None:
    """Makes the app's Google sign-in use this provider (the stage's OIDC secret, as an operator would set it)."""
    import json

    from chalicelib.core import config
    from chalicelib.flows.portal import oidc
    sm = config.client("secretsmanager")
    body = json.dumps({"google": {"client_id": provider.client_id, "client_secret": provider.client_secret,
                                  "discovery_url": provider.discovery_url}})
    try:
        sm.create_secret(Name=oidc.secret_name(), SecretString=body)
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=oidc.secret_name(), SecretString=body)
    oidc._provider_secrets().clear_cache()
