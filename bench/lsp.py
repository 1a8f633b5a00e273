"""The Python language server, driven directly over stdio and through the agent.

bench/run.sh lsp runs it (then the Chromium half in end2end/bench/python.spec.js): the same
requests, in the same order, to `ty server` spoken to directly, and to the same server run by
`codepod-agent` (over the agent's Unix socket and protocol, as the server relays a browser's
messages). Prints p50/p99 of each, their ratio, the time from connecting to the first pandas
completion, and the server's PSS with a pandas file open. Standard library only.

usage: python3 bench/lsp.py AGENT_BINARY PYTHON_ENV
"""

import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

SOURCE = "import pandas as pd\nimport numpy as np\n\nframe = pd.DataFrame({'a': [1, 2]})\npd.\nframe.\nnp.\n"
# (line, character) of the completions asked for: `pd.`, `frame.`, `np.`.
POINTS = [(4, 3), (5, 6), (6, 3)]
ROUNDS = 60


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def ty_pids():
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "ty":
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class Stdio:
    """ty server over its stdio, as an editor runs it."""

    def __init__(self, env, workspace):
        run_env = {"PATH": f"{env}/bin:/usr/bin:/bin", "HOME": workspace, "VIRTUAL_ENV": env}
        self.process = subprocess.Popen(
            [f"{env}/bin/ty", "server"], cwd=workspace, env=run_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def send(self, message):
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def receive(self):
        length = 0
        while True:
            line = self.process.stdout.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length"):
                length = int(line.split(b":")[1])
        return json.loads(self.process.stdout.read(length))

    def close(self):
        self.process.kill()
        self.process.wait()


class Agent:
    """The same server behind codepod-agent: LspSend / LspReceive frames on its socket."""

    LSP_SEND, LSP_RECEIVE, HELLO = 50, 51, 1

    def __init__(self, binary, env, workspace):
        self.dir = tempfile.mkdtemp()
        path = os.path.join(self.dir, "agent.sock")
        self.process = subprocess.Popen(
            [binary, "--socket", path, "--workspace", workspace],
            env={"PATH": f"{env}/bin:/usr/bin:/bin"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.01)
        self.socket = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.socket.connect(path)
                break
            except OSError:
                time.sleep(0.01)
        self.reader = self.socket.makefile("rb")
        self.frame(self.HELLO, bytes([3]))
        self.read_frame()

    @staticmethod
    def varint(value):
        out = b""
        while value >= 0x80:
            out += bytes([(value & 0x7F) | 0x80])
            value >>= 7
        return out + bytes([value])

    def frame(self, tag, payload):
        body = struct.pack(">HI", tag, 0) + payload
        self.socket.sendall(struct.pack(">I", len(body)) + body)

    def read_frame(self):
        (length,) = struct.unpack(">I", self.reader.read(4))
        body = self.reader.read(length)
        tag, _ = struct.unpack(">HI", body[:6])
        return tag, body[6:]

    def send(self, message):
        data = json.dumps(message).encode()
        self.frame(self.LSP_SEND, self.varint(len(data)) + data)

    def receive(self):
        while True:
            tag, payload = self.read_frame()
            if tag != self.LSP_RECEIVE:
                continue
            index = 0
            while payload[index] & 0x80:
                index += 1
            return json.loads(payload[index + 1:])

    def close(self):
        self.process.kill()
        self.process.wait()


def drive(client, workspace, name):
    """initialize, open the file, then ROUNDS rounds of the three completions and a hover."""
    root = f"file://{workspace}"
    uri = f"{root}/analysis.py"
    started = time.perf_counter()
    next_id = [0]

    def request(method, params):
        next_id[0] += 1
        mine = next_id[0]
        client.send({"jsonrpc": "2.0", "id": mine, "method": method, "params": params})
        while True:
            message = client.receive()
            if "method" in message and "id" in message:
                items = message.get("params", {}).get("items", [])
                result = [{} for _ in items] if message["method"] == "workspace/configuration" else None
                client.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
                continue
            if message.get("id") == mine and "method" not in message:
                return message

    request("initialize", {"processId": None, "rootUri": root, "capabilities": {
        "workspace": {"configuration": True}, "textDocument": {"diagnostic": {"dynamicRegistration": True}}}})
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": SOURCE}}})
    first = request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 3}})
    first_ms = (time.perf_counter() - started) * 1000
    labels = [item["label"] for item in (first["result"] or {}).get("items", [])]
    assert "DataFrame" in labels, labels[:20]
    times, sizes, hovers = [], [], []
    for _ in range(ROUNDS):
        for line, character in POINTS:
            t = time.perf_counter()
            answer = request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
            times.append((time.perf_counter() - t) * 1000)
            sizes.append(len(json.dumps(answer)))
        t = time.perf_counter()
        request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 12}})
        times.append((time.perf_counter() - t) * 1000)
        hovers.append(times[-1])
    # As typing does: the `.` arrives as an edit, then the completion is asked for.
    edited, version = [], 1
    for _ in range(20):
        for text in ("", "."):
            version += 1
            client.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": 4, "character": 2}, "end": {"line": 4, "character": 3 if text == "" else 2}}, "text": text}]}})
        t = time.perf_counter()
        request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 3}})
        edited.append((time.perf_counter() - t) * 1000)
    pss = sum(pss_kib(pid) for pid in ty_pids()) / 1024
    print(f"{name:<26} first completion {first_ms:7.1f} ms   request p50 {statistics.median(times):6.2f} ms"
          f"  p99 {percentile(times, 99):6.2f} ms   completion answer {statistics.median(sizes) / 1024:6.1f} KiB"
          f"   hover p50 {statistics.median(hovers):5.2f} ms   after an edit: completion p50 {statistics.median(edited):6.1f} ms"
          f" p99 {percentile(edited, 99):6.1f} ms   ty PSS {pss:6.1f} MiB")
    return statistics.median(times), percentile(times, 99)


def main():
    binary, env = sys.argv[1], sys.argv[2]
    print(f"{ROUNDS} rounds of completion after pd. / frame. / np. and one hover; ty "
          f"{subprocess.run([env + '/bin/ty', '--version'], capture_output=True, text=True).stdout.strip()}")
    results = {}
    for round_ in (1, 2):
        for name in ("direct (stdio)", "through codepod-agent"):
            workspace = tempfile.mkdtemp()
            with open(os.path.join(workspace, "analysis.py"), "w") as source:
                source.write(SOURCE)
            client = Stdio(env, workspace) if name.startswith("direct") else Agent(binary, env, workspace)
            try:
                results.setdefault(name, []).append(drive(client, workspace, f"{name} #{round_}"))
            finally:
                client.close()
    direct = statistics.median(p50 for p50, _ in results["direct (stdio)"])
    agent = statistics.median(p50 for p50, _ in results["through codepod-agent"])
    print(f"agent / direct: p50 {agent / direct:.2f}x (+{agent - direct:.2f} ms)")


if __name__ == "__main__":
    main()
