"""The whole demo pipeline, `dreamcore run` against a real `prefect server`, with previews delivered to a
local webhook receiver: the webhook URLs and tokens (given plainly, by environment variable and as a
Prefect Secret block) and AWS keys in the environment reach the receiver or nobody, and appear in no
file of the storage root, the output folder, the run's log or Prefect's home (its SQLite database)."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dreamcore.demo import write_demo_project
from tests.e2e.conftest import REPO, VENV_BIN

pytestmark = pytest.mark.slow

PLAIN_TOKEN = "plain-token-5f1c2e"
ENV_PATH_SECRET = "EnvPathSecret9a7b"
PLAIN_PATH_SECRET = "PlainPathSecret3d4e"
BLOCK_TOKEN = "block-token-77c0aa"
AWS_SECRET = "aws-secret-key-0b9f31"


def start_receiver() -> tuple[ThreadingHTTPServer, list[dict]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # http.server's method name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"path": self.path, "auth": self.headers.get("Authorization"),
                             "event": json.loads(body).get("event")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def save_secret_block(server_env: dict[str, str], name: str, value: str) -> None:
    script = f"from prefect.blocks.system import Secret; Secret(value={value!r}).save({name!r}, overwrite=True)"
    subprocess.run([str(VENV_BIN / "python"), "-c", script], env=server_env, check=True, timeout=120)


def files_holding(folder: Path, secrets: list[str]) -> list[str]:
    """'path: secret' for every file under `folder` whose bytes contain one of the secrets."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {secret}" for secret in secrets if secret.encode() in data]
    return found


def test_webhook_and_storage_secrets_are_never_stored(prefect_server, tmp_path) -> None:
    receiver, received = start_receiver()
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    config_path = write_demo_project(tmp_path / "demo")
    config = json.loads(config_path.read_text())
    config |= {
        "--max_train_steps": 4, "--checkpointing_steps": 2, "--validation_steps": 4, "--eval_steps_interval": 4,
        "--validation_preview": True, "--validation_preview_steps": 2,
        "--webhook_config": [
            {"callback_url_env": "DREAMCORE_TEST_HOOK_URL", "auth_token": PLAIN_TOKEN},
            {"callback_url": f"{url}/hooks/{PLAIN_PATH_SECRET}", "auth_token_secret": "dreamcore-test-hook-token"},
        ],
    }
    config_path.write_text(json.dumps(config))
    save_secret_block(prefect_server.env, "dreamcore-test-hook-token", BLOCK_TOKEN)
    env = prefect_server.env | {"DREAMCORE_TEST_HOOK_URL": f"{url}/hooks/{ENV_PATH_SECRET}",
                                "AWS_ACCESS_KEY_ID": "AKIADREAMCORETEST", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                                "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.run([str(VENV_BIN / "dreamcore"), "run", str(config_path)], env=env, cwd=REPO,
                             stdout=out, stderr=subprocess.STDOUT, timeout=900)
    receiver.shutdown()
    assert run.returncode == 0, log.read_text()[-4000:]

    # The secrets were resolved where they are used: every preview reached its receiver with its token.
    by_path = {}
    for request in received:
        by_path.setdefault(request["path"], set()).add(request["auth"])
    assert by_path == {f"/hooks/{ENV_PATH_SECRET}": {f"Bearer {PLAIN_TOKEN}"},
                       f"/hooks/{PLAIN_PATH_SECRET}": {f"Bearer {BLOCK_TOKEN}"}}, by_path
    assert {r["event"] for r in received} == {"validation_preview"}

    secrets = [PLAIN_TOKEN, ENV_PATH_SECRET, PLAIN_PATH_SECRET, BLOCK_TOKEN, AWS_SECRET]
    home = Path(prefect_server.env["PREFECT_HOME"])
    assert any(home.glob("*.db")), "the search must cover Prefect's SQLite database"
    leaks = []
    for folder in (tmp_path / "demo" / "artifacts", tmp_path / "demo" / "output", home):
        leaks += files_holding(folder, secrets)
    leaks += [f"{log}: {s}" for s in secrets if s in log.read_text()]
    assert not leaks
    # The references themselves are what the records keep.
    evaluated = next((tmp_path / "demo" / "artifacts" / "evaluate").glob("*/run.json")).read_text()
    assert "DREAMCORE_TEST_HOOK_URL" in evaluated and "dreamcore-test-hook-token" in evaluated
