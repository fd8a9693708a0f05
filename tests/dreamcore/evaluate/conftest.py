"""Fixtures for the evaluation tests: one torch thread, the tiny SD pipeline, a local HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(autouse=True)
def tiny_models_on_one_thread(one_torch_thread):
    """Every test here runs tiny models: one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def sd_pipe(tiny_models):
    """The tiny SD pipeline (64 px), CPU, float32."""
    from dreamcore.drawing.pipelines import load_validation_pipeline

    return load_validation_pipeline(str(tiny_models["sd"]), "cpu")


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 recording every request; `mode` ok | fail (500) | hang."""

    url: str
    mode: str = "ok"
    requests: list[dict] = field(default_factory=list)

    def json_bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver():
    record = Receiver("")
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # http.server's method name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            record.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if record.mode == "hang":
                release.wait(30)  # never answers within the client's timeout
                return
            self.send_response(500 if record.mode == "fail" else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield record
    release.set()
    time.sleep(0.05)
    server.shutdown()
    server.server_close()
