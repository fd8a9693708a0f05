"""Webhooks for previews and messages: Discord-style (multipart PNG) and raw JSON (base64 PNG).

A webhook that fails once (refused, non-2xx, or no complete answer within its `timeout`, a total
deadline per delivery, which runs on a worker thread) is logged once and switched off for the rest
of the run: previews are a convenience and must never slow down or fail training. URLs and tokens
are secrets (a Discord webhook URL carries its token in the path), so logs show only the scheme,
host and port of a URL, never its path, query or the auth token.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from dreamcore.config.options.webhooks import REDACTED, WebhookEntry, entries_of, webhook_entries

logger = logging.getLogger(__name__)

WebhookType = Literal["discord", "raw"]
DEFAULT_TIMEOUT_S = 3.0


class WebhookConfigError(ValueError):
    """webhook_config is malformed or names a secret that does not resolve (named key and what to do)."""


def redact_url(url: str) -> str:
    """scheme://host:port/*** : enough to tell targets apart, nothing secret."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/***"


@dataclass
class Webhook:
    """One delivery target, its secrets resolved (held in memory only)."""

    kind: WebhookType
    url: str
    auth_token: str | None = None
    message_prefix: str = ""
    timeout: float = DEFAULT_TIMEOUT_S
    enabled: bool = True

    def __repr__(self) -> str:  # never print the URL or token (dataclass repr would)
        return f"Webhook({self.kind}, {redact_url(self.url)}, enabled={self.enabled})"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}


def parse_webhook_config(value: list[WebhookEntry] | list[dict] | dict | str | None,
                         environ: Mapping[str, str] | None = None) -> list[Webhook]:
    """Webhooks of a webhook_config (entries, an object, a list, JSON text or a JSON file path; None: none),
    their *_env references read from `environ` (default: the process environment) now, at delivery setup.

    *_secret references (Prefect Secret blocks) must have been loaded by the task layer
    (dreamcore.config.options.webhooks.training_with_secret_blocks_loaded); one left here is an error.
    """
    try:
        if not (isinstance(value, list) and all(isinstance(entry, WebhookEntry) for entry in value)):
            value = TypeAdapter(list[WebhookEntry] | str | None).validate_python(webhook_entries(value))
        entries = entries_of(value)  # entries from a config are validated already (and may hold loaded blocks)
    except (ValidationError, ValueError) as error:
        raise WebhookConfigError(f"webhook_config: {_one_line(error)}") from error
    environ = os.environ if environ is None else environ
    return [_webhook(entry, f"webhook_config[{index}]", environ) for index, entry in enumerate(entries)]


def _one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return str(error)


def _webhook(entry: WebhookEntry, where: str, environ: Mapping[str, str]) -> Webhook:
    url = _resolve(entry, entry.url_field, where, environ)
    if not url.startswith(("http://", "https://")):
        raise WebhookConfigError(f"{where}.{entry.url_field}: the resolved value is not an http(s) URL")
    token = _resolve(entry, "auth_token", where, environ) if entry.references("auth_token") else None
    return Webhook(entry.kind, url, token, entry.message_prefix, entry.timeout)


def _resolve(entry: WebhookEntry, name: str, where: str, environ: Mapping[str, str]) -> str:
    """The value of the secret `name`: given plainly, or read from its environment variable."""
    variable, block, plain = (getattr(entry, f"{name}_env"), getattr(entry, f"{name}_secret"),
                              getattr(entry, name))
    if variable is not None:
        if not environ.get(variable):
            raise WebhookConfigError(f"{where}.{name}_env: environment variable {variable} is not set; "
                                     "set it where the run executes (worker or shell)")
        return environ[variable]
    if block is not None and plain is None:
        raise WebhookConfigError(f"{where}.{name}_secret: Prefect Secret block {block!r} was not loaded; run "
                                 f"through the Prefect tasks or `dreamcore run`, or use {name}_env")
    secret = plain.get_secret_value()
    if secret == REDACTED:
        raise WebhookConfigError(f"{where}.{name}: the value was redacted when the config was stored (a plain "
                                 f"secret does not survive a deployment's parameters); use {name}_env or "
                                 f"{name}_secret")
    return secret


@dataclass
class WebhookHub:
    """Sends messages and images to every enabled webhook; failures switch a webhook off."""

    webhooks: list[Webhook] = field(default_factory=list)
    delivered: int = 0

    @property
    def active(self) -> bool:
        """True while at least one webhook still takes deliveries."""
        return any(w.enabled for w in self.webhooks)

    def send(self, message: str, png: bytes | None = None, **fields: Any) -> int:
        """Deliver to every enabled webhook; returns how many accepted it. Never raises."""
        accepted = 0
        for webhook in self.webhooks:
            if webhook.enabled and _deliver(webhook, message, png, fields):
                accepted += 1
        self.delivered += accepted
        return accepted


def _deliver(webhook: Webhook, message: str, png: bytes | None, fields: dict[str, Any]) -> bool:
    """POST on a worker thread and wait at most webhook.timeout for the whole delivery.

    requests' timeout bounds each socket operation, not the delivery: a receiver that trickles one
    byte per second would hold the caller for as long as it likes. A delivery still running at the
    deadline is abandoned (its daemon thread ends with its socket) and the webhook switched off.
    """
    outcome: list[str | None] = []
    worker = threading.Thread(target=lambda: outcome.append(_post(webhook, message, png, fields)),
                              name="webhook-delivery", daemon=True)
    worker.start()
    worker.join(webhook.timeout)
    if not outcome:
        return _disable(webhook, f"no complete answer within the {webhook.timeout:g} s delivery deadline")
    return True if outcome[0] is None else _disable(webhook, outcome[0])


def _post(webhook: Webhook, message: str, png: bytes | None, fields: dict[str, Any]) -> str | None:
    """One delivery; None when accepted, else why not."""
    import requests

    text = f"{webhook.message_prefix}{message}"
    try:
        if webhook.kind == "discord":
            response = _post_discord(requests, webhook, text, png)
        else:
            response = _post_raw(requests, webhook, text, png, fields)
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    except Exception as error:  # noqa: BLE001 - any failure (DNS, refused, timeout, TLS): log without the URL, switch off
        return type(error).__name__


def _post_discord(requests, webhook: Webhook, text: str, png: bytes | None):
    payload = {"content": text[:2000]}  # Discord rejects longer messages
    if png is None:
        return requests.post(webhook.url, json=payload, headers=webhook.headers(), timeout=webhook.timeout)
    files = {"file": ("preview.png", png, "image/png")}
    return requests.post(webhook.url, data={"payload_json": json.dumps(payload)}, files=files,
                         headers=webhook.headers(), timeout=webhook.timeout)


def _post_raw(requests, webhook: Webhook, text: str, png: bytes | None, fields: dict[str, Any]):
    body = {"message": text, **fields}
    if png is not None:
        body["images"] = [base64.b64encode(png).decode("ascii")]
        body["image_format"] = "png"
    return requests.post(webhook.url, json=body, headers=webhook.headers(), timeout=webhook.timeout)


def _disable(webhook: Webhook, reason: str) -> bool:
    webhook.enabled = False
    logger.warning("webhook %s (%s) failed (%s); no more deliveries to it in this run",
                   redact_url(webhook.url), webhook.kind, reason)
    return False
