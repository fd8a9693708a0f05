"""Webhooks for previews and messages: Discord-style (multipart PNG) and raw JSON (base64 PNG).

A webhook that fails once (refused, timed out, non-2xx) is logged and switched off for the rest of
the run: previews are a convenience and must never slow down or fail training. URLs and tokens
are secrets (a Discord webhook URL carries its token in the path), so logs show only the scheme,
host and port of a URL, never its path, query or the auth token.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

WebhookType = Literal["discord", "raw"]
DEFAULT_TIMEOUT_S = 3.0
_KNOWN_KEYS = {"webhook_type", "webhook_url", "callback_url", "auth_token", "message_prefix", "timeout", "log_level"}


class WebhookConfigError(ValueError):
    """webhook_config is malformed (named key and what to write instead)."""


def redact_url(url: str) -> str:
    """scheme://host:port/*** : enough to tell targets apart, nothing secret."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/***"


@dataclass
class Webhook:
    """One delivery target."""

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


def parse_webhook_config(value: dict | list | str | None) -> list[Webhook]:
    """Webhooks from a dict, a list of dicts, a JSON string or a JSON file path (None: none)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = _load_json_text(value)
    entries = value if isinstance(value, list) else [value]
    return [_webhook(entry, index) for index, entry in enumerate(entries)]


def _load_json_text(value: str) -> Any:
    text = value.strip()
    if not text.startswith(("{", "[")):
        path = Path(value).expanduser()
        if not path.is_file():
            raise WebhookConfigError(f"webhook_config {value!r}: no such file; give a JSON file path, object or list")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise WebhookConfigError(f"webhook_config: not valid JSON ({error})") from error


def _webhook(entry: Any, index: int) -> Webhook:
    where = f"webhook_config[{index}]"
    if not isinstance(entry, dict):
        raise WebhookConfigError(f"{where}: expected an object with webhook_url or callback_url")
    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise WebhookConfigError(f"{where}: unknown keys {unknown}; known: {sorted(_KNOWN_KEYS)}")
    kind = entry.get("webhook_type") or ("raw" if "callback_url" in entry else "discord")
    if kind not in ("discord", "raw"):
        raise WebhookConfigError(f"{where}: webhook_type {kind!r}; use 'discord' or 'raw'")
    url = entry.get("webhook_url") if kind == "discord" else entry.get("callback_url")
    if not url or not str(url).startswith(("http://", "https://")):
        needed = "webhook_url" if kind == "discord" else "callback_url"
        raise WebhookConfigError(f"{where}: webhook_type {kind!r} needs {needed} (an http(s) URL)")
    timeout = float(entry.get("timeout", DEFAULT_TIMEOUT_S))
    if timeout <= 0:
        raise WebhookConfigError(f"{where}: timeout must be > 0 seconds")
    return Webhook(kind, str(url), entry.get("auth_token"), str(entry.get("message_prefix") or ""), timeout)


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
    import requests

    text = f"{webhook.message_prefix}{message}"
    try:
        if webhook.kind == "discord":
            response = _post_discord(requests, webhook, text, png)
        else:
            response = _post_raw(requests, webhook, text, png, fields)
        if not 200 <= response.status_code < 300:
            return _disable(webhook, f"HTTP {response.status_code}")
        return True
    except Exception as error:  # noqa: BLE001 - any failure (DNS, refused, timeout, TLS): log without the URL, switch off
        return _disable(webhook, type(error).__name__)


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
