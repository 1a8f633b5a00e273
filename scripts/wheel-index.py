#!/usr/bin/env python3
"""Serves a directory of wheels as a PEP 503 simple index on loopback.

    scripts/wheel-index.py WHEELS_DIR PORT

The local upstream the end-to-end tests (end2end/playwright.config.js) and the packages
benchmark (bench/run.sh packages) point Codepod's package index at, so that neither needs
the internet: simple/<project>/index.html with each wheel's link and SHA-256, the wheels
under packages/. (The Rust tests have their own, in server/tests/common/wheel_index.rs,
which also counts what it served.)
"""

import functools
import hashlib
import http.server
import os
import re
import shutil
import sys
import tempfile


def build(wheels: str, root: str) -> None:
    os.makedirs(f"{root}/packages")
    projects: dict[str, list[str]] = {}
    for name in sorted(os.listdir(wheels)):
        if not name.endswith(".whl"):
            continue
        shutil.copy(f"{wheels}/{name}", f"{root}/packages/{name}")
        with open(f"{wheels}/{name}", "rb") as wheel:
            digest = hashlib.sha256(wheel.read()).hexdigest()
        project = re.sub(r"[-_.]+", "-", name.split("-")[0]).lower()
        projects.setdefault(project, []).append(
            f'<a href="../../packages/{name}#sha256={digest}">{name}</a>'
        )
    for project, links in projects.items():
        os.makedirs(f"{root}/simple/{project}")
        with open(f"{root}/simple/{project}/index.html", "w") as page:
            page.write("<html><body>" + "<br>".join(links) + "</body></html>")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    wheels, port = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="codepod-wheels-") as root:
        build(wheels, root)
        handler = functools.partial(Quiet, directory=root)
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
            print(f"serving {wheels} at http://127.0.0.1:{port}/simple/", flush=True)
            server.serve_forever()


if __name__ == "__main__":
    main()
