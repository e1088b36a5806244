"""dserver (``dservercore`` with its Mongo search and retrieve plug-ins, from PyPI) for tests.

dservercore pins ``flask<3``, which the project's test environment (moto[server] runs on
Flask 3) cannot take, so dserver lives in a virtualenv of its own, ``.venv-dserver``
(made by ``scripts/test.sh``, or here on first use, with the pins in ``PINS``), and runs
as a subprocess: this file is both the fixture's side (``DServer``, stdlib plus PyJWT and
cryptography) and the server's (``python tests/support/dserver.py serve ...`` inside that
venv). The server is dservercore's own Flask app served by werkzeug's ``make_server`` on a
loopback port, SQLite for its own tables, the Mongo plug-ins on ``mongomock``: no MongoDB
here. mongomock has no ``$text``, so the search plug-in's text index is not created and
free-text search is not tested; lookups by UUID, tag, base URI and creator are.

The admin user is created with dservercore's CLI function (``flask user add --is_admin``),
as an operator starts a dserver; everything else (users, base URIs, permissions) goes
through dserver's admin API with a token the fixture signs (RS256) with the key pair
dserver is configured with, as a deployment's token generator does.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-dserver"
# dservercore 0.22 with its plug-ins 0.4.2 work with these (found by trial: dservercore
# needs flask<3, pip's unpinned choice of flask-smorest 0.25 fails on Flask 2.3);
# kept here, out of the project's own venv.
PINS = (
    "dservercore==0.22.0",
    "dserver-search-plugin-mongo==0.4.2",
    "dserver-retrieve-plugin-mongo==0.4.2",
    "flask==2.3.3",
    "werkzeug==3.1.9",
    "flask-smorest==0.42.3",  # the last line that takes Flask 2 (0.43+ need Flask 3)
    "marshmallow==3.26.2",  # flask-smorest 0.42 needs marshmallow<4
    "flask-marshmallow==1.4.0",  # 1.5 needs marshmallow 4
    "marshmallow-sqlalchemy==1.5.0",  # 1.6 needs marshmallow 4
    "webargs==8.7.1",
    "apispec==6.10.1",
    "flask-jwt-extended==4.7.4",
    "mongomock==4.3.0",
    "pymongo==4.20.1",
    "cryptography",
)
ADMIN = "dserver-admin"


def venv_python() -> Path:
    from tests.support import side_venv  # here: this file also runs as a script in its venv

    return side_venv.venv_python(VENV)


def ensure_venv() -> Path:
    """The venv's python, creating the venv with ``PINS`` when it is missing."""
    from tests.support import side_venv

    return side_venv.ensure_venv(VENV, PINS)


def rsa_key_pair(folder: Path) -> tuple[Path, Path]:
    """A fresh RSA key pair as PEM files (private, public) in ``folder``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = folder / "jwt_key"
    public = folder / "jwt_key.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def sign_token(private_key: Path, username: str, lifetime: timedelta = timedelta(hours=1)) -> str:
    """An RS256 access token for ``username``, as flask-jwt-extended issues them."""
    import jwt

    now = datetime.now(UTC)
    claims = {"sub": username, "iat": now, "nbf": now, "exp": now + lifetime,
              "type": "access", "fresh": False, "jti": os.urandom(8).hex()}
    return jwt.encode(claims, private_key.read_text(), algorithm="RS256")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DServer:
    """A running dserver subprocess and an admin client for it."""

    url: str
    private_key: Path
    public_key: Path
    process: subprocess.Popen[bytes]
    log: Path

    def token(self, username: str = ADMIN) -> str:
        return sign_token(self.private_key, username)

    def request(self, method: str, path: str, body: Any = None,
                username: str = ADMIN) -> tuple[int, Any]:
        """(status, decoded JSON or None) of an authenticated request to ``path``."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token(username)}",
            "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            with contextlib.suppress(ValueError):
                return exc.code, json.loads(raw)
            return exc.code, raw.decode(errors="replace")

    def add_user(self, username: str, *, admin: bool = False) -> None:
        status, body = self.request("PUT", f"/users/{username}", {"is_admin": admin})
        assert status in (200, 201), (status, body)

    def add_base_uri(self, base_uri: str, register: list[str], search: list[str]) -> None:
        """Register ``base_uri`` and who may register datasets on it and search it."""
        status, body = self.request("PUT", f"/base-uris/{url_suffix(base_uri)}", {
            "users_with_register_permissions": register,
            "users_with_search_permissions": search})
        assert status in (200, 201), (status, body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def url_suffix(uri: str) -> str:
    """dserver's URL form of a URI: ``file:///x`` -> ``file/x`` ... percent-quoted."""
    scheme, _, rest = uri.partition("://")
    return urllib.parse.quote(f"{scheme}/{rest}", safe="/")


def start(folder: Path, port: int | None = None) -> DServer:
    """Start dserver on a loopback port with a new key pair and SQLite file in ``folder``;
    returns when it answers. The admin user exists; add the others with the admin API."""
    python = ensure_venv()
    folder.mkdir(parents=True, exist_ok=True)
    private, public = rsa_key_pair(folder)
    port = port or free_port()
    log = folder / "dserver.log"
    env = {**os.environ, "JWT_PUBLIC_KEY_FILE": str(public),
           "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'dserver.db'}",
           "SEARCH_MONGO_URI": "mongodb://mongomock/", "RETRIEVE_MONGO_URI": "mongodb://mongomock/",
           "SECRET_KEY": os.urandom(16).hex()}
    env.pop("JWT_PUBLIC_KEY", None)
    with log.open("wb") as out:
        process = subprocess.Popen([str(python), __file__, "serve", str(port)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    server = DServer(f"http://127.0.0.1:{port}", private, public, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dserver exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"dserver did not listen on port {port} within 60 s:\n{log.read_text()}")


@contextlib.contextmanager
def running(folder: Path) -> Iterator[DServer]:
    server = start(folder)
    try:
        yield server
    finally:
        server.stop()


# -- the server side (runs in .venv-dserver) ---------------------------------------------------

def _serve(port: int) -> None:  # pragma: no cover - runs in the dserver subprocess
    import bson
    import dserver_retrieve_plugin_mongo.utils_retrieve as retrieve
    import dserver_search_plugin_mongo.utils_search as search
    import mongomock
    import pymongo
    from werkzeug.serving import make_server

    store: dict[str, Any] = {}

    def client(uri: str, **kwargs: Any) -> Any:  # one in-memory server for both plug-ins
        if "client" not in store:
            store["client"] = mongomock.MongoClient(uri, **kwargs)
        return store["client"]

    search.MongoClient = client
    retrieve.MongoClient = client
    original = mongomock.collection.Collection.create_index

    def create_index(self: Any, keys: Any, **kwargs: Any) -> Any:
        if any(kind == pymongo.TEXT for _, kind in keys):
            return None  # mongomock has no $text: free-text search is not available
        return original(self, keys, **kwargs)

    mongomock.collection.Collection.create_index = create_index

    class StandardUuidBson(bson.BSON):  # type: ignore[misc]  # what uuidRepresentation='standard' makes pymongo do
        @classmethod
        def encode(cls, document: Any, check_keys: bool = False,
                   codec_options: Any = None) -> Any:
            return super().encode(document, check_keys, bson.CodecOptions(
                uuid_representation=bson.binary.UuidRepresentation.STANDARD))

    mongomock.collection.BSON = StandardUuidBson

    from dservercore import create_app
    from dservercore.extensions import sql_db
    from dservercore.utils import register_users

    app = create_app()
    with app.app_context():
        sql_db.create_all()
        register_users([{"username": ADMIN, "is_admin": True}])  # `flask user add -a`
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"dserver listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:2] == ["serve"]:
        _serve(int(sys.argv[2]))
    elif sys.argv[1:2] == ["install"]:
        print(ensure_venv())
