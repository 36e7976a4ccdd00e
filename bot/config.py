"""Haven's one Settings object, built once at start-up and passed down.

Read from the environment and ``.env`` (the environment wins; names are matched regardless of case),
or given as keyword arguments by variable name (``HAVEN_MODEL=…``) or attribute name (``model=…``).
Values are validated by pydantic-core, the compiled validator pydantic itself uses (its messages,
its parsing of numbers and booleans); lists and objects are JSON. pydantic-settings is not used: its
model machinery was 5–6 MB of every process's idle memory for this one object.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from bot.starters import DEFAULT_PROMPTS, MAX_PROMPT_CHARS, MAX_PROMPTS

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_DATABASE_URL = "sqlite:///haven.db"
ENV_FILE = ".env"


class SecretStr:
    """A secret setting: shown as asterisks in reprs and logs; ``get_secret_value`` reads it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')" if self._value else "SecretStr('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class FieldInfo:
    """One setting: its variable, its validation and its default (``Settings.model_fields``)."""

    alias: str
    schema: cs.CoreSchema
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    secret: bool = False
    json: bool = False  # a list or an object: JSON in the environment


def _f(alias: str, schema: cs.CoreSchema, default: Any = None, **kw: Any) -> FieldInfo:
    return FieldInfo(alias, schema, default, **kw)


def _secret(alias: str) -> FieldInfo:
    return FieldInfo(alias, cs.nullable_schema(cs.str_schema()), None, secret=True)


def _optional(schema: cs.CoreSchema) -> cs.CoreSchema:
    return cs.nullable_schema(schema)


_STR = cs.str_schema()
_ORIGINS = _optional(cs.tuple_schema([_STR], variadic_item_index=0))

FIELDS: dict[str, FieldInfo] = {
    "anthropic_api_key": _secret("ANTHROPIC_API_KEY"),
    "anthropic_base_url": _f("ANTHROPIC_BASE_URL", _optional(_STR)),
    "model": _f("HAVEN_MODEL", _STR, DEFAULT_MODEL),
    "verifier_model": _f("HAVEN_VERIFIER_MODEL", _STR, "claude-haiku-4-5"),
    "max_output_tokens": _f("HAVEN_MAX_OUTPUT_TOKENS", cs.int_schema(ge=64, le=64000), 1024),
    # Tokens of history we send before trimming the oldest turns (well under the model's window so a
    # long thread never earns a 400 "prompt is too long").
    "context_budget_tokens": _f("HAVEN_CONTEXT_BUDGET_TOKENS", cs.int_schema(ge=2_000), 150_000),
    "model_timeout_seconds": _f("HAVEN_MODEL_TIMEOUT", cs.float_schema(gt=0), 60.0),
    "model_attempts": _f("HAVEN_MODEL_ATTEMPTS", cs.int_schema(ge=1, le=10), 4),
    "retry_base_seconds": _f("HAVEN_RETRY_BASE_SECONDS", cs.float_schema(ge=0), 1.0),
    "retry_max_seconds": _f("HAVEN_RETRY_MAX_SECONDS", cs.float_schema(ge=0), 20.0),
    "stream": _f("HAVEN_STREAM", cs.bool_schema(), True),
    # The model part of one turn (every call, retry and tool round) stops after this long, with a note.
    "turn_deadline_seconds": _f("HAVEN_TURN_DEADLINE_SECONDS", cs.float_schema(gt=0), 180.0),
    # Turns of one process whose model part runs at once; the rest wait their turn (bot.admission).
    "max_concurrent_turns": _f("HAVEN_MAX_CONCURRENT_TURNS", cs.int_schema(ge=1), 64),
    # On SIGTERM, turns still answering get this long; what is unfinished then gets a restart note.
    "shutdown_seconds": _f("HAVEN_SHUTDOWN_SECONDS", cs.float_schema(ge=0), 30.0),
    # The durable inbox: an accepted message stays this process's while it renews the lease (every
    # third of it); a process that stops renewing (crashed, frozen) loses its messages to recovery.
    "inbox_lease_seconds": _f("HAVEN_INBOX_LEASE_SECONDS", cs.float_schema(ge=1), 60.0),
    # A turn waits at most this long for its conversation's lock, then leaves its message to recovery.
    "lock_wait_seconds": _f("HAVEN_LOCK_WAIT_SECONDS", cs.float_schema(gt=0), 30.0),
    # `haven run`/`chat` check the key and HAVEN_MODEL with one token count at start; true skips it.
    "skip_model_check": _f("HAVEN_SKIP_MODEL_CHECK", cs.bool_schema(), False),
    # Prices for the usage report's cost estimate (bot.pricing), merged over the built-in list prices:
    # a JSON object, model → {"input", "output", "cache_write", "cache_read"} in USD per million tokens.
    "model_prices": _f(
        "HAVEN_MODEL_PRICES",
        cs.dict_schema(_STR, cs.dict_schema(_STR, cs.float_schema())),
        default_factory=dict,
        json=True,
    ),
    # What a new Slack assistant thread suggests asking (a JSON list; Slack shows at most four), in every
    # workspace whose admins did not set their own (the ``prompts`` workspace setting).
    "suggested_prompts": _f(
        "HAVEN_SUGGESTED_PROMPTS",
        cs.tuple_schema([_STR], variadic_item_index=0, max_length=MAX_PROMPTS),
        DEFAULT_PROMPTS,
        json=True,
    ),
    # Files people attach (bot.files): how many a message, how large each and together, PDF pages, and the
    # characters of a text file the model reads. A file over a limit gets a one-line note, not a read.
    "files_max_count": _f("HAVEN_FILES_MAX_COUNT", cs.int_schema(ge=0, le=20), 5),
    "file_max_bytes": _f("HAVEN_FILE_MAX_BYTES", cs.int_schema(ge=1, le=30_000_000), 10_000_000),
    "files_max_total_bytes": _f(
        "HAVEN_FILES_MAX_TOTAL_BYTES", cs.int_schema(ge=1, le=30_000_000), 20_000_000
    ),
    # The Messages API reads at most 100 pages of one PDF.
    "pdf_max_pages": _f("HAVEN_PDF_MAX_PAGES", cs.int_schema(ge=1, le=100), 50),
    "text_file_max_chars": _f("HAVEN_TEXT_FILE_MAX_CHARS", cs.int_schema(ge=100), 50_000),
    # Connecting to the platform's file host and reading a file each get at most this long.
    "file_timeout_seconds": _f("HAVEN_FILE_TIMEOUT_SECONDS", cs.float_schema(gt=0), 20.0),
    # Where files are fetched from: unset, each platform's own file hosts (adapters/*/files.py say which
    # and why). Only for a GovSlack-like deployment or a test's local server; never a general host.
    "slack_file_origins": _f("HAVEN_SLACK_FILE_ORIGINS", _ORIGINS, json=True),
    "discord_file_origins": _f("HAVEN_DISCORD_FILE_ORIGINS", _ORIGINS, json=True),
    "database_url": _f("DATABASE_URL", _STR, DEFAULT_DATABASE_URL),
    "log_level": _f("HAVEN_LOG_LEVEL", cs.literal_schema(["DEBUG", "INFO", "WARNING", "ERROR"]), "INFO"),
    "log_format": _f("HAVEN_LOG_FORMAT", cs.literal_schema(["text", "json"]), "text"),
    "slack_bot_token": _secret("SLACK_BOT_TOKEN"),
    "slack_app_token": _secret("SLACK_APP_TOKEN"),
    "slack_signing_secret": _secret("SLACK_SIGNING_SECRET"),
    # Many workspaces: Slack's OAuth install flow (HTTP mode, with the signing secret) instead of one
    # SLACK_BOT_TOKEN; each workspace's token is kept in the database.
    "slack_client_id": _f("SLACK_CLIENT_ID", _optional(_STR)),
    "slack_client_secret": _secret("SLACK_CLIENT_SECRET"),
    # The redirect URL the app registered (https://…/slack/oauth_redirect); unset, Slack uses its only one.
    "slack_redirect_uri": _f("SLACK_REDIRECT_URI", _optional(_STR)),
    "slack_api_url": _f("SLACK_API_URL", _STR, "https://slack.com/api/"),
    "port": _f("PORT", cs.int_schema(ge=1, le=65535), 3000),
    # Open connections the Slack HTTP server keeps; past it the longest-idle one makes room.
    "http_max_connections": _f("HAVEN_HTTP_MAX_CONNECTIONS", cs.int_schema(ge=8), 512),
    # The ops endpoint (/healthz, /readyz, /metrics; bot.ops) in every `haven run` mode but the terminal.
    "ops_port": _f("HAVEN_OPS_PORT", cs.int_schema(ge=1, le=65535), 8080),
    # Where the ops endpoint and the Slack HTTP server listen (0.0.0.0: every interface, for containers).
    "bind_address": _f("HAVEN_BIND_ADDRESS", cs.str_schema(min_length=1), "0.0.0.0"),
    # /readyz fails when the model's latest call failed and none succeeded within this many minutes.
    "ready_model_minutes": _f("HAVEN_READY_MODEL_MINUTES", cs.float_schema(gt=0), 5.0),
    # A turn (one message, from receipt to the drawn reply) taking longer than this logs a warning.
    "slow_turn_seconds": _f("HAVEN_SLOW_TURN_SECONDS", cs.float_schema(gt=0), 60.0),
    "discord_token": _secret("DISCORD_TOKEN"),
    "discord_shard_count": _f("DISCORD_SHARD_COUNT", _optional(cs.int_schema(ge=1))),
    "discord_shard_ids": _f("DISCORD_SHARD_IDS", _optional(_STR)),
}

# Keyed by variable name, so that an error's location names the variable to fix.
_VALIDATOR = SchemaValidator(
    cs.typed_dict_schema({f.alias: cs.typed_dict_field(f.schema, required=False) for f in FIELDS.values()})
)


def _upper_level(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _no_blank_prompts(value: tuple[str, ...]) -> tuple[str, ...]:
    long = [p for p in value if len(p.strip()) > MAX_PROMPT_CHARS]
    if long:
        raise ValueError(f"a suggested prompt is limited to {MAX_PROMPT_CHARS} characters")
    return tuple(p.strip() for p in value if p.strip())


def _prices_complete(value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    from bot.pricing import parse_prices

    parse_prices(value)  # a missing or negative price: the one-line settings error, at start-up
    return value


def _trailing_slash(value: str) -> str:
    # slack_sdk joins method names onto the base URL; without the slash "api" + "chat.postMessage"
    # becomes "apichat.postMessage".
    return value if value.endswith("/") else value + "/"


_BEFORE: dict[str, Callable[[Any], Any]] = {"log_level": _upper_level}
_AFTER: dict[str, Callable[[Any], Any]] = {
    "suggested_prompts": _no_blank_prompts,
    "model_prices": _prices_complete,
    "slack_api_url": _trailing_slash,
}


def _read_env_file(path: str | None) -> dict[str, str]:
    if path is None or not os.path.isfile(path):
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}


class Settings:
    """Every setting of a Haven process (``FIELDS`` has each one's variable, limits and default)."""

    model_fields: ClassVar[dict[str, FieldInfo]] = FIELDS

    anthropic_api_key: SecretStr | None
    anthropic_base_url: str | None
    model: str
    verifier_model: str
    max_output_tokens: int
    context_budget_tokens: int
    model_timeout_seconds: float
    model_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    stream: bool
    turn_deadline_seconds: float
    max_concurrent_turns: int
    shutdown_seconds: float
    inbox_lease_seconds: float
    lock_wait_seconds: float
    skip_model_check: bool
    model_prices: dict[str, dict[str, float]]
    suggested_prompts: tuple[str, ...]
    files_max_count: int
    file_max_bytes: int
    files_max_total_bytes: int
    pdf_max_pages: int
    text_file_max_chars: int
    file_timeout_seconds: float
    slack_file_origins: tuple[str, ...] | None
    discord_file_origins: tuple[str, ...] | None
    database_url: str
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    log_format: Literal["text", "json"]
    slack_bot_token: SecretStr | None
    slack_app_token: SecretStr | None
    slack_signing_secret: SecretStr | None
    slack_client_id: str | None
    slack_client_secret: SecretStr | None
    slack_redirect_uri: str | None
    slack_api_url: str
    port: int
    http_max_connections: int
    ops_port: int
    bind_address: str
    ready_model_minutes: float
    slow_turn_seconds: float
    discord_token: SecretStr | None
    discord_shard_count: int | None
    discord_shard_ids: str | None

    model_fields_set: frozenset[str]  # the settings given (environment, .env or arguments), by name

    def __init__(self, _env_file: str | None = ENV_FILE, **values: Any) -> None:
        by_alias = {f.alias: name for name, f in FIELDS.items()}
        raw: dict[str, Any] = {}
        given: dict[str, Any] = {}
        for source in (_read_env_file(_env_file), os.environ):
            for key, value in source.items():
                name = by_alias.get(key.upper())
                if name is not None:
                    raw[name] = value
        for key, value in values.items():
            name = key if key in FIELDS else by_alias.get(key)
            if name is not None:
                given[name] = value
        for name, value in raw.items():
            if FIELDS[name].json and isinstance(value, str):
                try:
                    raw[name] = json.loads(value)
                except ValueError as exc:
                    raise SettingRefused(FIELDS[name].alias, f"not valid JSON ({exc})") from None
        raw.update(given)
        checked = _VALIDATOR.validate_python(
            {FIELDS[n].alias: _BEFORE.get(n, _same)(_unwrapped(v)) for n, v in raw.items()}
        )
        result: dict[str, Any] = {}
        for name, field in FIELDS.items():
            checked_value: Any
            if field.alias in checked:
                checked_value = checked[field.alias]
                if name in _AFTER:
                    try:
                        checked_value = _AFTER[name](checked_value)
                    except ValueError as exc:
                        raise SettingRefused(field.alias, f"Value error, {exc}") from None
                if field.secret and checked_value is not None:
                    checked_value = SecretStr(checked_value)
            elif field.default_factory is not None:
                checked_value = field.default_factory()
            else:
                checked_value = field.default
            result[name] = checked_value
        self._set(result, frozenset(raw))

    def _set(self, values: Mapping[str, Any], given: frozenset[str]) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "model_fields_set", given)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are read-only: use model_copy(update=...)")

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Settings:
        """A copy with ``update``'s settings (by attribute name) replaced, not validated again."""
        copy = object.__new__(Settings)
        values = {name: getattr(self, name) for name in FIELDS}
        values.update(update or {})
        copy._set(values, self.model_fields_set | frozenset(update or {}))
        return copy

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in FIELDS) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and all(getattr(self, n) == getattr(other, n) for n in FIELDS)

    __hash__ = None  # type: ignore[assignment]

    @property
    def rehearsal(self) -> bool:
        return self.anthropic_api_key is None or not self.anthropic_api_key.get_secret_value().strip()

    @property
    def slack_oauth(self) -> bool:
        """Installs into many workspaces (``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET``)."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    @property
    def slack_configured(self) -> bool:
        if self.slack_oauth:
            return self.slack_signing_secret is not None
        return self.slack_bot_token is not None and (
            self.slack_app_token is not None or self.slack_signing_secret is not None
        )

    @property
    def discord_configured(self) -> bool:
        return self.discord_token is not None


def _same(value: Any) -> Any:
    return value


def _unwrapped(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class SettingRefused(ValueError):
    """A setting refused outside pydantic-core's validation (bad JSON, a check above): its variable and
    the reason."""

    def __init__(self, alias: str, message: str) -> None:
        super().__init__(f"{alias}: {message}")
        self.alias, self.message = alias, message


class SettingsError(Exception):
    """A bad setting, explained in one line that names it."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SettingRefused as exc:
        raise SettingsError(f"invalid setting {exc.alias}: {exc.message}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        name = str(loc[0]).upper()
        raise SettingsError(f"invalid setting {name}: {first.get('msg', 'invalid value')}") from None


def configure_logging(settings: Settings) -> None:
    from bot.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    logging.getLogger(__name__).debug("logging configured")
