"""The retrain flow's regression guard under the Prefect test harness: a retrain whose new data makes the
eval loss worse is rejected (a Completed state named Rejected, a webhook message, a history entry and
artifact) and the current model stays the first run's."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.retrain import read_last_run
from dreamcore.retrain.history import read_history
from dreamcore.storage import ArtifactStore
from flows.retrain import retrain

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


@pytest.fixture
def webhook_messages():
    """A real HTTP endpoint on 127.0.0.1 that keeps every JSON body posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _guarded_demo(root, webhook_url):
    """The demo project with a fixed eval dataset (a copy of the subject images, so only the training data
    changes between runs), 4 steps at a learning rate high enough to move the eval loss, eval_loss guarded."""
    config_path = write_demo_project(root)
    demo = config_path.parent
    shutil.copytree(demo / "data" / "instance_images", demo / "data" / "eval_images")
    datasets = json.loads((demo / "multidatabackend.json").read_text())
    datasets.insert(0, {"id": "held-out", "type": "local", "dataset_type": "eval", "caption_strategy": "textfile",
                        "instance_data_dir": str(demo / "data" / "eval_images"), "resolution": 64,
                        "resolution_type": "pixel"})
    (demo / "multidatabackend.json").write_text(json.dumps(datasets))
    config = json.loads(config_path.read_text())
    config.pop("--eval_dataset_fraction")
    config.update({"--learning_rate": 1e-2, "--max_train_steps": 4, "--checkpointing_steps": 4,
                   "--retrain_guard": {"eval_loss": 0.0, "clip_mean": {"tolerance": 1000.0}},
                   "--webhook_config": {"webhook_type": "raw", "callback_url": webhook_url}})
    config_path.write_text(json.dumps(config))
    return config_path


def _replace_subject_with_noise(demo) -> None:
    """New data that teaches the model nothing of the subject: every subject image becomes noise."""
    rng = np.random.default_rng(0)
    for path in sorted((demo / "data" / "instance_images").glob("*.png")):
        width, height = Image.open(path).size
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


async def _latest_table(key: str) -> list[dict]:
    async with get_client() as client:
        found = await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])))
    assert len(found) == 1, f"no artifact {key}"
    return json.loads(found[0].data)


def test_a_worse_retrain_is_rejected_and_the_current_model_stays(tmp_path, webhook_messages):
    url, messages = webhook_messages
    config_path = _guarded_demo(tmp_path / "demo", url)
    config = load_run_config(config_path)
    store = ArtifactStore(config.training.resolved_storage_root)

    first = retrain(config, run_name="weekly")
    assert first["promoted"] and first["verdict"]["reason"].startswith("no promoted run yet")
    current = read_last_run(store, "weekly")
    assert current["train"]["key"] == first["results"]["train"]["key"]

    _replace_subject_with_noise(config_path.parent)
    state = retrain(config, run_name="weekly", return_state=True)
    assert state.is_completed() and state.name == "Rejected"
    second = state.result()
    old_loss = first["results"]["evaluate"]["details"]["rows"][-1]["eval_loss"]
    new_row = next(r for r in second["results"]["evaluate"]["details"]["rows"] if r["weights"] == "final")
    assert new_row["eval_loss"] > old_loss  # the scenario: noise made the held-out loss worse
    assert second["retrained"] and not second["promoted"]
    assert "eval_loss" in state.message and "current model kept" in state.message
    loss, clip = second["verdict"]["comparisons"]
    assert (loss["metric"], loss["holds"], loss["better"]) == ("eval_loss", False, "lower")
    assert (clip["metric"], clip["holds"], clip["better"]) == ("clip_mean", True, "higher")

    assert read_last_run(store, "weekly") == current  # the current model is still the first run's
    history = read_history(store, "weekly")
    assert [h["decision"] for h in history] == ["promoted", "rejected"]
    assert history[1]["train_key"] == second["results"]["train"]["key"] != current["train"]["key"]
    assert history[1]["comparisons"][0]["new"] == new_row["eval_loss"]
    assert [m["decision"] for m in messages] == ["promoted", "rejected"]
    assert "rejected" in messages[1]["message"] and messages[1]["run_name"] == "weekly"
    rows = asyncio.run(_latest_table("retrain-history-weekly"))
    assert [r["decision"] for r in rows] == ["rejected", "promoted"]  # newest first
    assert rows[0]["eval_loss"] == new_row["eval_loss"]
