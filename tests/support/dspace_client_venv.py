"""dspace-rest-client (the DSpace community's Python client, from PyPI) as an independent
check of the DSpace REST test server (``tests/support/dspace_server.py``).

dspace-rest-client pins an older ``requests`` than the project's, so it lives in a venv of
its own, ``.venv-dspace-client`` (made by ``scripts/test.sh``, or here on first use, with
the pin in ``PINS``). This file is both the fixture's side (``ensure_venv``,
``ClientDriver``: stdlib only) and the driver's (``python dspace_client_venv.py drive API
USER PASSWORD`` inside that venv): the driver reads one JSON command a line on stdin, does
it with the client's own methods, and answers one JSON line on stdout, so a test can
change the server (expire tokens, rotate CSRF, archive) between the client's calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-dspace-client"
PINS = ("dspace-rest-client==0.1.20",)


def venv_python() -> Path:
    from tests.support import side_venv  # here: this file also runs as a script in its venv

    return side_venv.venv_python(VENV)


def ensure_venv() -> Path:
    """The venv's python, creating the venv with ``PINS`` when it is missing."""
    from tests.support import side_venv

    return side_venv.ensure_venv(VENV, PINS)


class ClientDriver:
    """The driver subprocess; ``call`` sends one command and returns its answer."""

    def __init__(self, api_url: str, user: str, password: str, cwd: Path) -> None:
        # cwd: the client reads ``.dspace-personal-api-token.secret`` from it; a fresh
        # folder keeps it on user/password login. Its INFO log goes to a file there.
        self.log = cwd / "dspace-client.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [str(ensure_venv()), str(Path(__file__).resolve()), "drive", api_url, user,
                 password],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, cwd=cwd, env={"HOME": str(cwd), "PATH": "/usr/bin:/bin"})

    def call(self, op: str, **args: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise RuntimeError(f"driver died: {self.log.read_text()[-2000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _answer(response: Any) -> dict[str, Any]:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


def _drive(api_url: str, user: str, password: str) -> None:  # pragma: no cover - in venv
    from dspace_rest_client.client import DSpaceClient  # type: ignore[import-not-found]

    client = DSpaceClient(api_endpoint=api_url, username=user, password=password)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        result: Any
        if op == "login":
            result = client.authenticate()
        elif op == "collection":
            found = client.search_objects(query=f"handle:{command['handle']}",
                                          dso_type="COLLECTION")
            result = [{"uuid": d.uuid, "handle": d.handle, "name": d.name} for d in found]
        elif op == "search_all":  # the client's paginated search, following _links.next
            client.ITER_PAGE_SIZE = command["page_size"]
            result = [d.uuid for d in client.search_objects_iter(
                query=command["query"], dso_type=command.get("dso_type"))]
        elif op == "create":
            # The client has no call for a workspace item with files; its own session
            # (JWT and CSRF token as the client keeps them) posts the multipart.
            files = [("file", (Path(p).name, Path(p).read_bytes(), mime))
                     for p, mime in command["files"]]
            response = client.session.post(
                f"{api_url}/submission/workspaceitems",
                params={"owningCollection": command["collection"]}, files=files)
            client.update_token(response)
            result = _answer(response)
        elif op == "patch":
            result = _answer(client.api_patch(
                f"{api_url}/submission/workspaceitems/{command['id']}", "add",
                command["path"], command["value"]))
        elif op == "workspace":
            item = client.get_workspace_item(id=command.get("id"),
                                             item_uuid=command.get("item_uuid"))
            result = None if item is None else {"id": item.id, "sections": item.sections}
        elif op == "submit":
            result = client.start_workflow(command["uri"])
        elif op == "item":
            result = _answer(client.get_item(command["uuid"]))
        else:
            result = {"error": f"unknown op {op}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:2] == ["drive"]:
        _drive(*sys.argv[2:5])
    elif sys.argv[1:2] == ["install"]:
        print(ensure_venv())
