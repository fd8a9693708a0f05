"""Previews over webhooks: Discord multipart and raw JSON styles, auth header, failures never stop sampling."""

from __future__ import annotations

import base64
import io
import json
import logging
import time

import pytest
from PIL import Image

from dreamcore.evaluate.evaluation import PreviewSender
from dreamcore.evaluate.previews import PreviewDecoder
from dreamcore.evaluate.validation import ValidationPlan, generate_images
from dreamcore.evaluate.webhooks import WebhookConfigError, WebhookHub, parse_webhook_config, redact_url
from dreamcore.models import family_named

SECRET_TOKEN = "s3cret-token-value"
SECRET_PATH = "/api/webhooks/123456/PathSecretXYZ"


def plan(steps: int = 4, seeds=(7,)) -> ValidationPlan:
    return ValidationPlan(("sks toy",), tuple(seeds), None, steps, 3.0, (64, 64))


@pytest.fixture(scope="module")
def decoder(tiny_models):
    return PreviewDecoder.load(str(tiny_models["taesd"]), family_named("sd1"), "cpu")


def sender(decoder, config, every: int) -> PreviewSender:
    return PreviewSender(decoder, WebhookHub(parse_webhook_config(config)), every)


def multipart_parts(request: dict) -> dict[str, bytes]:
    """name -> content of a multipart/form-data body."""
    boundary = request["headers"]["Content-Type"].split("boundary=")[1].encode()
    parts = {}
    for chunk in request["body"].split(b"--" + boundary)[1:-1]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        parts[name] = content[:-2]  # drop the trailing CRLF
    return parts


def test_discord_style_gets_a_png_every_n_sampling_steps_with_auth(sd_pipe, decoder, receiver) -> None:
    previews = sender(decoder, {"webhook_type": "discord", "webhook_url": receiver.url + SECRET_PATH,
                                "auth_token": SECRET_TOKEN, "message_prefix": "[run-7] "}, every=2)
    images = generate_images(sd_pipe, plan(steps=4, seeds=(7, 8)), previews, label="base")
    assert len(images) == 2
    assert len(receiver.requests) == 4  # 2 images x sampling steps 2 and 4
    assert previews.sent == {"base p0 seed 7": [2, 4], "base p0 seed 8": [2, 4]}
    for request in receiver.requests:
        assert request["path"] == SECRET_PATH
        assert request["headers"]["Authorization"] == f"Bearer {SECRET_TOKEN}"
        parts = multipart_parts(request)
        assert json.loads(parts["payload_json"])["content"].startswith("[run-7] base p0 seed")
        preview = Image.open(io.BytesIO(parts["file"]))
        assert preview.format == "PNG" and preview.size == (64, 64)


def test_raw_style_gets_base64_pngs_in_json_at_the_expected_steps(sd_pipe, decoder, receiver) -> None:
    previews = sender(decoder, [{"callback_url": receiver.url + "/hook", "auth_token": SECRET_TOKEN}], every=3)
    generate_images(sd_pipe, plan(steps=7), previews, label="step-10")
    bodies = receiver.json_bodies()
    assert [b["sampling_step"] for b in bodies] == [3, 6]
    assert all(r["headers"]["Authorization"] == f"Bearer {SECRET_TOKEN}" for r in receiver.requests)
    for body in bodies:
        assert body["event"] == "validation_preview" and body["label"] == "step-10 p0 seed 7"
        image = Image.open(io.BytesIO(base64.b64decode(body["images"][0])))
        assert image.size == (64, 64)


def test_preview_is_the_tiny_autoencoders_decode_of_the_latents(sd_pipe, decoder, receiver) -> None:
    """The last preview (final step) equals TAESD's decode of the latents the pipeline ends with."""
    import torch

    previews = sender(decoder, {"callback_url": receiver.url}, every=2)
    generate_images(sd_pipe, plan(steps=2), previews)
    received = Image.open(io.BytesIO(base64.b64decode(receiver.json_bodies()[-1]["images"][0])))
    out = sd_pipe("sks toy", num_inference_steps=2, guidance_scale=3.0, width=64, height=64, output_type="latent",
                  generator=torch.Generator("cpu").manual_seed(7))
    assert list(received.getdata()) == list(decoder.decode(out.images)[0].getdata())


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_broken_receiver_neither_fails_nor_stalls_generation(sd_pipe, decoder, receiver, mode, caplog) -> None:
    receiver.mode = mode
    config = {"webhook_url": receiver.url + SECRET_PATH, "auth_token": SECRET_TOKEN, "timeout": 0.3}
    previews = sender(decoder, config, every=1)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        images = generate_images(sd_pipe, plan(steps=4, seeds=(1, 2)), previews)
    assert len(images) == 2
    assert len(receiver.requests) == 1  # the first failure switches the webhook off for the run
    assert not previews.hub.active
    assert time.monotonic() - started < 15.0  # a hung receiver holds a request for 30 s
    assert "failed" in caplog.text
    assert SECRET_TOKEN not in caplog.text and "PathSecretXYZ" not in caplog.text and "123456" not in caplog.text


def test_webhook_config_forms_and_errors(tmp_path) -> None:
    entry = {"webhook_type": "raw", "callback_url": "https://example.invalid/cb", "message_prefix": "p "}
    file = tmp_path / "hooks.json"
    file.write_text(json.dumps([entry, {"webhook_url": "https://discord.invalid/api/webhooks/1/x"}]))
    assert [w.kind for w in parse_webhook_config(entry)] == ["raw"]
    assert [w.kind for w in parse_webhook_config(str(file))] == ["raw", "discord"]
    assert [w.kind for w in parse_webhook_config(json.dumps(entry))] == ["raw"]
    assert parse_webhook_config(None) == []
    with pytest.raises(WebhookConfigError, match="callback_url"):
        parse_webhook_config({"webhook_type": "raw"})
    with pytest.raises(WebhookConfigError, match="token: Extra inputs"):
        parse_webhook_config({"webhook_url": "https://x.invalid/a", "token": "t"})
    with pytest.raises(WebhookConfigError, match="no such file"):
        parse_webhook_config(str(tmp_path / "missing.json"))
    assert redact_url("https://user:pw@discord.com:8443/api/webhooks/1/tok?x=1") == "https://discord.com:8443/***"
    assert "tok" not in repr(parse_webhook_config({"webhook_url": "https://d.invalid/api/tok", "auth_token": "tok"})[0])


def test_secrets_are_named_and_read_at_delivery_setup_and_redacted_when_stored() -> None:
    from dreamcore.config import TrainingConfig

    hooks = [{"callback_url_env": "HOOK_URL", "auth_token_env": "HOOK_TOKEN"},
             {"webhook_url": "https://d.invalid/api/webhooks/1/PathSecretXYZ", "auth_token": SECRET_TOKEN}]
    config = TrainingConfig(pretrained_model_name_or_path="m", webhook_config=hooks)
    stored = config.model_dump_json()
    assert SECRET_TOKEN not in stored and "PathSecretXYZ" not in stored and "HOOK_TOKEN" in stored
    environ = {"HOOK_URL": "http://127.0.0.1:9/cb", "HOOK_TOKEN": "env-token"}
    raw, discord = parse_webhook_config(config.webhook_config, environ)
    assert (raw.kind, raw.url, raw.auth_token) == ("raw", "http://127.0.0.1:9/cb", "env-token")
    assert (discord.url, discord.auth_token) == ("https://d.invalid/api/webhooks/1/PathSecretXYZ", SECRET_TOKEN)
    with pytest.raises(WebhookConfigError, match=r"webhook_config\[0\].auth_token_env: environment variable "
                                                 "HOOK_TOKEN is not set"):
        parse_webhook_config(config.webhook_config, {"HOOK_URL": "http://127.0.0.1:9/cb"})
    # What a deployment run reads back from Prefect's database: the plain secret is gone, and says so.
    reread = TrainingConfig.model_validate_json(stored)
    with pytest.raises(WebhookConfigError, match=r"webhook_config\[1\].webhook_url: the value was redacted"):
        parse_webhook_config(reread.webhook_config, environ)
    with pytest.raises(ValueError, match="give one of"):
        TrainingConfig(pretrained_model_name_or_path="m",
                       webhook_config={"callback_url": "http://x.invalid", "callback_url_env": "X"})


def test_secret_blocks_are_loaded_into_a_copy_by_the_caller() -> None:
    from dreamcore.config import TrainingConfig
    from dreamcore.config.options.webhooks import training_with_secret_blocks_loaded

    config = TrainingConfig(pretrained_model_name_or_path="m",
                            webhook_config={"callback_url_secret": "hook-url", "auth_token_secret": "hook-token"})
    with pytest.raises(WebhookConfigError, match="Secret block 'hook-url' was not loaded"):
        parse_webhook_config(config.webhook_config, {})
    blocks = {"hook-url": "http://127.0.0.1:9/cb", "hook-token": SECRET_TOKEN}
    loaded = training_with_secret_blocks_loaded(config, blocks.__getitem__)
    assert [(w.url, w.auth_token) for w in parse_webhook_config(loaded.webhook_config, {})] == [
        ("http://127.0.0.1:9/cb", SECRET_TOKEN)]
    assert SECRET_TOKEN not in loaded.model_dump_json() and "hook-token" in config.model_dump_json()


@pytest.fixture
def trickling_receiver():
    """A socket server on 127.0.0.1 that reads a request, then answers one byte per second (a 200 that
    never completes within any sane deadline); yields (url, connections accepted)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop, accepted = threading.Event(), []

    def trickle(connection) -> None:
        with connection:
            connection.recv(65536)
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n" + b"x" * 64
            for byte in answer:
                if stop.wait(1.0):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            accepted.append(connection)
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    server.close()


def test_a_trickling_receiver_costs_generation_one_deadline_then_previews_to_it_stop(
        sd_pipe, decoder, trickling_receiver, caplog) -> None:
    url, accepted = trickling_receiver
    previews = sender(decoder, {"callback_url": url + "/hook", "timeout": 1.5}, every=1)
    generate_images(sd_pipe, plan(steps=4, seeds=(1,)), None)  # warm: the timing below is the previews' cost
    started = time.monotonic()
    generate_images(sd_pipe, plan(steps=4, seeds=(1,)), None)
    plain = time.monotonic() - started
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="dreamcore.evaluate.webhooks"):
        images = generate_images(sd_pipe, plan(steps=4, seeds=(1, 2)), previews)
    with_previews = time.monotonic() - started
    assert len(images) == 2 and not previews.hub.active
    assert len(accepted) == 1  # one delivery tried; none after the deadline passed
    # One deadline (1.5 s) plus the second image and one TAESD decode, not the ~70 s the answer takes.
    assert with_previews < 2 * plain + 1.5 + 3.0, (with_previews, plain)
    warnings = [r for r in caplog.records if "delivery deadline" in r.getMessage()]
    assert len(warnings) == 1 and "/hook" not in warnings[0].getMessage()


def test_serve_refuses_a_plain_secret_that_a_deployment_run_could_not_read(tmp_path, capsys) -> None:
    from dreamcore.cli import main

    config = {"--pretrained_model_name_or_path": str(tmp_path / "model"), "--data_backend_config": "datasets.json",
              "--webhook_config": [{"callback_url_env": "HOOK_URL", "auth_token": SECRET_TOKEN}]}
    datasets = [{"id": "subject", "instance_data_dir": str(tmp_path), "caption_strategy": "instanceprompt",
                 "instance_prompt": "sks toy"}]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "datasets.json").write_text(json.dumps(datasets))
    assert main(["serve", str(tmp_path / "config.json")]) == 2
    error = capsys.readouterr().err
    assert "webhook_config[0].auth_token: a secret written in the config cannot reach a deployment run" in error
    assert SECRET_TOKEN not in error and len(error.strip().splitlines()) == 1
