"""Every error code the API documents is one it really answers.

Reads /api/openapi.json from a live server, then runs one scripted request per documented
(operation, code) pair and checks that the answer has that code, the documented status and a
body that matches the documented schema. Fails if a documented pair has no request here or
was not reached, and if any answer (ours or a success) does not match the document.

Run by scripts/api-contract.sh, which starts the server with the limits below and passes
CONTRACT_URL, and CONTRACT_DB_ROLE: the server's PostgreSQL role, whose connections are cut
to make the database unreachable for the `unavailable` pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jsonschema_rs
import requests

BASE = os.environ["CONTRACT_URL"].rstrip("/")
DB_ROLE = os.environ["CONTRACT_DB_ROLE"]
# Limits the server was started with (scripts/api-contract.sh).
MAX_FILE = int(os.environ["CONTRACT_MAX_FILE_SIZE"])
MAX_FILES = int(os.environ["CONTRACT_MAX_FILES"])
MAX_WORKSPACES = int(os.environ["CONTRACT_MAX_WORKSPACES"])
LOGIN_FAILURES = int(os.environ["CONTRACT_LOGIN_FAILURES"])
SIGNUPS_PER_IP = int(os.environ["CONTRACT_SIGNUPS_PER_IP"])

DOC = requests.get(f"{BASE}/api/openapi.json", timeout=10).json()
COMPONENTS = DOC["components"]
PASSWORD = "correct horse battery"

documented: set[tuple[str, str, str]] = set()
for path, item in DOC["paths"].items():
    for method, operation in item.items():
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                continue
            schema = response["content"]["application/json"]["schema"]
            for code in schema["allOf"][1]["properties"]["code"]["enum"]:
                documented.add((method.upper(), path, code))

reached: set[tuple[str, str, str]] = set()
failures: list[str] = []
ip_counter = [0]


def fresh_ip() -> str:
    """A client address of its own (the server trusts X-Forwarded-For from 127.0.0.1)."""
    ip_counter[0] += 1
    n = ip_counter[0]
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def validate(method: str, path: str, response: requests.Response) -> None:
    """The answer's status is documented for the operation and its body matches."""
    operation = DOC["paths"][path][method.lower()]
    documented_response = operation["responses"].get(str(response.status_code))
    where = f"{method} {path} → {response.status_code}"
    if documented_response is None:
        failures.append(f"{where}: status not documented ({response.text[:200]})")
        return
    content = documented_response["content"]
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if "application/json" in content and media == "application/json":
        schema = dict(content["application/json"]["schema"])
        schema["components"] = COMPONENTS
        errors = [str(error) for error in jsonschema_rs.validator_for(schema).iter_errors(response.json())]
        if errors:
            failures.append(f"{where}: body does not match the schema: {errors[:3]}")
    elif media not in content and "*/*" not in content:
        failures.append(f"{where}: content type {media!r} not documented")


def call(
    session: requests.Session | None,
    method: str,
    path: str,
    *,
    body=None,
    raw: bytes | None = None,
    params=None,
    files=None,
    headers=None,
    expect: str | None = None,
) -> requests.Response:
    """One request; checks it against the document and, with `expect`, that it answered
    that code (recorded as reached)."""
    send = session.request if session else requests.request
    headers = dict(headers or {})
    kwargs = {"params": params, "headers": headers, "timeout": 60}
    if raw is not None:
        headers.setdefault("content-type", "application/json")
        kwargs["data"] = raw
    elif files is not None:
        kwargs["files"] = files
    elif body is not None:
        kwargs["json"] = body
    started = time.monotonic()
    response = send(method, BASE + path, **kwargs)
    took = time.monotonic() - started
    if took > 2:
        print(f"slow: {method} {path} {response.status_code} took {took:.1f} s", file=sys.stderr)
    validate(method, path, response)
    if expect is not None:
        code = None
        if response.headers.get("content-type", "").startswith("application/json"):
            payload = response.json()
            if isinstance(payload, dict):
                code = payload.get("code")
        if code == expect:
            reached.add((method, path, expect))
        else:
            failures.append(
                f"{method} {path}: expected {expect}, got {response.status_code} {response.text[:200]}"
            )
    return response


def user(name: str) -> requests.Session:
    """A signed-up user's session (each from its own client address)."""
    session = requests.Session()
    response = call(
        session,
        "POST",
        "/api/users/register",
        body={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        headers={"x-forwarded-for": fresh_ip()},
    )
    if response.status_code != 200:
        sys.exit(f"could not register {name}: {response.status_code} {response.text}")
    return session


def workspace(session: requests.Session, name: str) -> str:
    response = call(session, "POST", "/api/workspaces/create", body={"name": name})
    if response.status_code != 200:
        sys.exit(f"could not create workspace {name}: {response.status_code} {response.text}")
    return response.json()["id"]


def server_functions() -> list[tuple[str, str, bool]]:
    """(method, path, signed in) of every JSON operation."""
    out = []
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                out.append((method.upper(), path, "security" in operation))
    return out


def until_rate_limited(path: str, body_of, ip: str, tries: int) -> None:
    """Repeats a request from one client address until it is `rate_limited` (reached), at
    most `tries` times (not reached: a failure, as for any documented code)."""
    for n in range(tries):
        if call(None, "POST", path, body=body_of(n), headers={"x-forwarded-for": ip}).status_code == 429:
            reached.add(("POST", path, "rate_limited"))
            return


def valid_body(path: str, ws: str) -> dict:
    """Arguments that parse for `path` (most name a workspace or a file in it)."""
    return {
        "/api/users/register": {"username": f"u{uuid.uuid4().hex[:10]}", "email": "x@example.org", "password": PASSWORD},
        "/api/users/login": {"login": "nobody-here", "password": PASSWORD},
        "/api/users/password": {"current_password": PASSWORD, "new_password": PASSWORD},
        "/api/users/delete": {"password": "not the password"},
        "/api/workspaces/create": {"name": f"w{uuid.uuid4().hex[:8]}"},
        "/api/workspaces/rename": {"id": ws, "name": f"w{uuid.uuid4().hex[:8]}"},
        "/api/files/write": {"workspace": ws, "path": "x.py", "content": {"encoding": "utf8", "data": ""}},
        "/api/files/move": {"workspace": ws, "from": "main.py", "to": "main.py"},
        "/api/markdown": {"text": "# notes"},
    }.get(path, {"id": ws, "workspace": ws, "path": "main.py"})


def main() -> None:
    ada = user("ada")
    ws = workspace(ada, "contract")
    ghost = str(uuid.uuid4())

    # --- what every JSON operation can answer ------------------------------------------
    for method, path, signed_in in server_functions():
        session = ada if signed_in else None
        call(session, method, path, raw=b'{"unterminated', headers={"x-forwarded-for": fresh_ip()}, expect="bad_request")
        call(session, method, path, body="a string, not an object", headers={"x-forwarded-for": fresh_ip()}, expect="invalid_input")
        call(
            session,
            method,
            path,
            body=valid_body(path, ws),
            headers={"origin": "https://evil.example", "x-forwarded-for": fresh_ip()},
            expect="cross_site",
        )
        call(session, method, path, raw=b'{"pad": "' + b"x" * (MAX_FILE * 2 + 1_000_000) + b'"}', expect="too_large")
        if signed_in:
            call(None, method, path, body=valid_body(path, ws), expect="unauthenticated")

    # --- accounts ----------------------------------------------------------------------
    call(
        None,
        "POST",
        "/api/users/register",
        body={"username": "ada", "email": "other@example.org", "password": PASSWORD},
        headers={"x-forwarded-for": fresh_ip()},
        expect="username_taken",
    )
    crowd = fresh_ip()
    until_rate_limited(
        "/api/users/register",
        lambda n: {"username": f"crowd{n}", "email": f"crowd{n}@example.org", "password": PASSWORD},
        crowd,
        SIGNUPS_PER_IP + 1,
    )
    call(None, "POST", "/api/users/login", body={"login": "ada", "password": "not the password"}, expect="bad_credentials")
    until_rate_limited(
        "/api/users/login",
        lambda _: {"login": "crowd0", "password": "not the password"},
        fresh_ip(),
        LOGIN_FAILURES + 1,
    )
    call(ada, "POST", "/api/users/password", body={"current_password": "not the password", "new_password": PASSWORD}, expect="wrong_password")
    call(ada, "POST", "/api/users/delete", body={"password": "not the password"}, expect="wrong_password")

    # --- workspaces --------------------------------------------------------------------
    call(ada, "POST", "/api/workspaces/create", body={"name": "contract"}, expect="workspace_name_taken")
    second = workspace(ada, "second")
    call(ada, "POST", "/api/workspaces/rename", body={"id": second, "name": "contract"}, expect="workspace_name_taken")
    for path in ["get", "rename", "delete", "start", "stop", "status", "keepalive", "packages", "packages/clear"]:
        body = {"id": ghost, "name": "anything"} if path == "rename" else {"id": ghost}
        call(ada, "POST", f"/api/workspaces/{path}", body=body, expect="not_found")
    bo = user("bob")
    bo_first, bo_second = workspace(bo, "one"), workspace(bo, "two")
    started = call(bo, "POST", "/api/workspaces/start", body={"id": bo_first})
    if started.status_code != 200 or started.json().get("state") != "ready":
        failures.append(f"a sandbox did not start: {started.text[:300]}")
    call(bo, "POST", "/api/workspaces/start", body={"id": bo_second}, expect="too_many_sandboxes")
    call(bo, "POST", "/api/workspaces/stop", body={"id": bo_first})
    cy = user("cyd")
    for n in range(MAX_WORKSPACES):
        workspace(cy, f"ws{n}")
    call(cy, "POST", "/api/workspaces/create", body={"name": "one too many"}, expect="limit_reached")

    # --- files -------------------------------------------------------------------------
    call(ada, "POST", "/api/files/mkdir", body={"workspace": ws, "path": "pkg"})
    for path in ["tree", "read", "write", "mkdir", "move", "delete"]:
        body = dict(valid_body(f"/api/files/{path}", ghost))
        body["workspace"] = ghost
        call(ada, "POST", f"/api/files/{path}", body=body, expect="not_found")
    call(ada, "POST", "/api/files/read", body={"workspace": ws, "path": "pkg"}, expect="wrong_kind")
    text = {"encoding": "utf8", "data": "print('hi')\n"}
    call(ada, "POST", "/api/files/write", body={"workspace": ws, "path": "pkg", "content": text}, expect="wrong_kind")
    written = call(ada, "POST", "/api/files/write", body={"workspace": ws, "path": "a.py", "content": text}).json()
    call(
        ada,
        "POST",
        "/api/files/write",
        body={"workspace": ws, "path": "a.py", "content": text, "base_version": written["version"] + 7},
        expect="version_conflict",
    )
    call(ada, "POST", "/api/files/mkdir", body={"workspace": ws, "path": "a.py"}, expect="exists")
    call(ada, "POST", "/api/files/mkdir", body={"workspace": ws, "path": "a.py/inside"}, expect="wrong_kind")
    call(ada, "POST", "/api/files/move", body={"workspace": ws, "from": "nothing.py", "to": "b.py"}, expect="not_found")
    call(ada, "POST", "/api/files/move", body={"workspace": ws, "from": "a.py", "to": "main.py"}, expect="exists")
    call(ada, "POST", "/api/files/move", body={"workspace": ws, "from": "main.py", "to": "a.py/main.py"}, expect="wrong_kind")
    call(ada, "POST", "/api/files/delete", body={"workspace": ws, "path": "nothing.py"}, expect="not_found")
    # The files limit, by writes, folders and uploads in a workspace of its own.
    full = workspace(ada, "full")
    for n in range(MAX_FILES):
        response = call(ada, "POST", "/api/files/write", body={"workspace": full, "path": f"f{n}.txt", "content": text})
        if response.status_code != 200:
            break
    call(ada, "POST", "/api/files/write", body={"workspace": full, "path": "more.txt", "content": text}, expect="limit_reached")
    call(ada, "POST", "/api/files/mkdir", body={"workspace": full, "path": "more"}, expect="limit_reached")
    call(ada, "POST", "/api/files/upload", params={"workspace": full}, files=[("file", ("more.txt", b"x"))], expect="limit_reached")

    # --- markdown preview ----------------------------------------------------------------
    call(ada, "POST", "/api/markdown", body={"text": "# notes\n\n<script>x</script>"})
    # Refused while its body is still arriving, the connection is closed: not one to reuse.
    call(ada, "POST", "/api/markdown", body={"text": "x" * (1024 * 1024 + 1)}, headers={"connection": "close"}, expect="too_large")

    # --- plain handlers ----------------------------------------------------------------
    upload, download, zip_ = "/api/files/upload", "/api/files/download", "/api/workspaces/download"
    one = [("file", ("up.txt", b"uploaded"))]
    call(ada, "POST", upload, params={"workspace": ws}, files=one)
    call(ada, "POST", upload, params={"workspace": ws}, raw=b"not multipart", headers={"content-type": "multipart/form-data; boundary=x"}, expect="bad_request")
    call(ada, "POST", upload, params={"workspace": "not-an-id"}, files=one, expect="bad_request")
    call(ada, "POST", upload, params={"workspace": ghost}, files=one, expect="not_found")
    call(ada, "POST", upload, params={"workspace": ws}, files=one, headers={"origin": "https://evil.example"}, expect="cross_site")
    call(ada, "POST", upload, params={"workspace": ws}, files=[("file", ("big.bin", b"x" * (MAX_FILE + 1)))], expect="too_large")
    call(ada, "POST", upload, params={"workspace": ws}, files=[("file", ("../up.txt", b"x"))], expect="invalid_input")
    call(ada, "POST", upload, params={"workspace": ws}, files=[("file", ("pkg", b"x"))], expect="wrong_kind")
    call(None, "POST", upload, params={"workspace": ws}, files=one, expect="unauthenticated")
    call(ada, "GET", download, params={"workspace": ws, "path": "up.txt"})
    call(ada, "GET", download, params={"workspace": ws}, expect="bad_request")
    call(ada, "GET", download, params={"workspace": ws, "path": "nothing.txt"}, expect="not_found")
    call(ada, "GET", download, params={"workspace": ws, "path": "pkg"}, expect="wrong_kind")
    call(None, "GET", download, params={"workspace": ws, "path": "up.txt"}, expect="unauthenticated")
    call(ada, "GET", zip_, params={"workspace": ws})
    call(ada, "GET", zip_, params={}, expect="bad_request")
    call(ada, "GET", zip_, params={"workspace": ghost}, expect="not_found")
    call(None, "GET", zip_, params={"workspace": ws}, expect="unauthenticated")
    call(None, "GET", "/api/meta/info")

    # --- the database does not answer: every operation that needs it -------------------
    cut_database(True)
    try:
        # Each waits out the pool's acquire timeout: all at once.
        calls = [
            (ada if signed_in else None, method, path, {"body": valid_body(path, ws), "headers": {"x-forwarded-for": fresh_ip()}})
            for method, path, signed_in in server_functions()
            if path != "/api/meta/info"
        ]
        calls += [
            (ada, "POST", upload, {"params": {"workspace": ws}, "files": one}),
            (ada, "GET", download, {"params": {"workspace": ws, "path": "up.txt"}}),
            (ada, "GET", zip_, {"params": {"workspace": ws}}),
        ]
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            list(pool.map(lambda c: call(c[0], c[1], c[2], expect="unavailable", **c[3]), calls))
    finally:
        cut_database(False)
    call(ada, "POST", "/api/users/me", body={})

    missing = sorted(documented - reached)
    for method, path, code in missing:
        failures.append(f"{method} {path}: documents {code} but no request here reached it")
    print(f"reach: {len(reached)} of {len(documented)} documented (operation, error code) pairs answered as documented")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


def cut_database(cut: bool) -> None:
    """Refuses (or allows again) the server's database role, and ends its connections."""
    limit = 0 if cut else -1
    sql = f"ALTER ROLE {DB_ROLE} CONNECTION LIMIT {limit};"
    if cut:
        sql += f" SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{DB_ROLE}';"
    admin = os.environ["CONTRACT_PSQL_ADMIN"].split()
    subprocess.run([*admin, "-c", sql], check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        if failures:
            print("\n".join(failures), file=sys.stderr)
        raise
