"""webhook_config entries: where previews go, with their secrets kept out of everything stored.

A webhook URL (Discord's carries its token in the path) and an auth token are secrets. The config
holds either a reference, resolved only when a delivery is set up (`*_env`: an environment variable
name; `*_secret`: a Prefect Secret block name, resolved by the task layer), or a plain value typed
as SecretStr, which every JSON dump (run records, reports, the Prefect flow-run parameter) writes as
REDACTED. A redacted value read back (a deployment run's parameter) no longer delivers; the entry
then says to use a reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, model_validator

REDACTED = "**********"  # what pydantic writes for a SecretStr in JSON mode
SECRET_FIELDS = ("webhook_url", "callback_url", "auth_token")


class WebhookEntry(BaseModel):
    """One delivery target of webhook_config (SimpleTuner's keys plus *_env / *_secret references)."""

    model_config = ConfigDict(extra="forbid")

    webhook_type: Literal["discord", "raw"] | None = Field(
        None, description="discord (multipart PNG to webhook_url) or raw (JSON to callback_url); unset: raw when a "
        "callback_url (or its reference) is given, else discord."
    )
    webhook_url: SecretStr | None = Field(None, description="Discord webhook URL (a secret: redacted when stored).")
    webhook_url_env: str | None = Field(None, description="Environment variable holding webhook_url.")
    webhook_url_secret: str | None = Field(None, description="Prefect Secret block holding webhook_url.")
    callback_url: SecretStr | None = Field(None, description="Raw JSON callback URL (a secret: redacted when stored).")
    callback_url_env: str | None = Field(None, description="Environment variable holding callback_url.")
    callback_url_secret: str | None = Field(None, description="Prefect Secret block holding callback_url.")
    auth_token: SecretStr | None = Field(
        None, description="Bearer token (a secret: redacted when stored, so a deployment run cannot use it; "
        "prefer auth_token_env or auth_token_secret)."
    )
    auth_token_env: str | None = Field(None, description="Environment variable holding the bearer token.")
    auth_token_secret: str | None = Field(None, description="Prefect Secret block holding the bearer token.")
    message_prefix: str = Field("", description="Text put before every message.")
    timeout: float = Field(
        3.0, gt=0, description="Total seconds one delivery may take (connect, send, answer) before the webhook is "
        "switched off for the run."
    )
    log_level: str | None = Field(None, description="SimpleTuner's key; accepted, no effect here.")

    @model_validator(mode="after")
    def _check_target(self) -> WebhookEntry:
        for name in SECRET_FIELDS:
            given = [key for key in (name, f"{name}_env", f"{name}_secret") if getattr(self, key) is not None]
            if len(given) > 1:
                raise ValueError(f"give one of {given}, not several")
        if self.kind == "discord" and not self.references("webhook_url"):
            raise ValueError("webhook_type 'discord' needs webhook_url, webhook_url_env or webhook_url_secret")
        if self.kind == "raw" and not self.references("callback_url"):
            raise ValueError("webhook_type 'raw' needs callback_url, callback_url_env or callback_url_secret")
        url = getattr(self, self.url_field)
        if url is not None and url.get_secret_value() != REDACTED and not url.get_secret_value().startswith(
                ("http://", "https://")):
            raise ValueError(f"{self.url_field} must be an http(s) URL")
        return self

    @property
    def kind(self) -> Literal["discord", "raw"]:
        if self.webhook_type is not None:
            return self.webhook_type
        return "raw" if self.references("callback_url") else "discord"

    @property
    def url_field(self) -> str:
        return "webhook_url" if self.kind == "discord" else "callback_url"

    def references(self, name: str) -> bool:
        """True when the secret `name` is given in any form (plain, _env or _secret)."""
        return any(getattr(self, key) is not None for key in (name, f"{name}_env", f"{name}_secret"))


def webhook_entries(value: Any) -> Any:
    """webhook_config as a list of entries: an object becomes a list of one; JSON text is parsed; a file
    path stays a path (its file is read when previews start, so its secrets are never copied)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error})") from error
        return [parsed] if isinstance(parsed, dict) else parsed
    return value


def load_webhook_file(path: str) -> list[WebhookEntry]:
    """The entries of a webhook_config JSON file (ValueError naming the file when it is missing or malformed)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"webhook_config {path!r}: no such file; give a JSON file path, object or list")
    try:
        return TypeAdapter(list[WebhookEntry]).validate_python(webhook_entries(file.read_text(encoding="utf-8")))
    except (ValidationError, ValueError) as error:
        raise ValueError(f"webhook_config file {path}: {error}") from error


def entries_of(value: list[WebhookEntry] | str | None) -> list[WebhookEntry]:
    """The entries of a validated webhook_config (a file path is read now)."""
    if value is None:
        return []
    return load_webhook_file(value) if isinstance(value, str) else list(value)


def with_secret_blocks_loaded(entries: list[WebhookEntry], load: Callable[[str], str]) -> list[WebhookEntry]:
    """`entries` with every *_secret reference replaced by the secret `load(block name)` returns.

    The copy lives in memory only (the task layer passes Prefect's Secret.load here, since dreamcore
    never imports Prefect); what is stored keeps the reference.
    """
    loaded = []
    for entry in entries:
        update: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            block = getattr(entry, f"{name}_secret")
            if block is not None:  # the block name stays, so records name where the secret came from
                update[name] = SecretStr(load(block))
        loaded.append(entry.model_copy(update=update) if update else entry)
    return loaded


def training_with_secret_blocks_loaded(training: Any, load: Callable[[str], str]) -> Any:
    """A TrainingConfig whose webhook_config has its Prefect Secret blocks loaded (in memory only);
    `training` itself when nothing references a block."""
    entries = entries_of(training.webhook_config)
    if not any(getattr(entry, f"{name}_secret") for entry in entries for name in SECRET_FIELDS):
        return training
    return training.model_copy(update={"webhook_config": with_secret_blocks_loaded(entries, load)})


def plain_secrets(value: list[WebhookEntry] | str | None) -> list[str]:
    """The keys (webhook_config[i].auth_token ...) that hold a secret written plainly in the config itself
    (a file path form keeps its secrets in the file, which is never stored)."""
    if not isinstance(value, list):
        return []
    return [f"webhook_config[{index}].{name}" for index, entry in enumerate(value) for name in SECRET_FIELDS
            if getattr(entry, name) is not None and getattr(entry, name).get_secret_value() != REDACTED
            and getattr(entry, f"{name}_secret") is None]
