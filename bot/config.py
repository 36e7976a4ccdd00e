"""Haven's one Settings object, built once at start-up and passed down."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.starters import DEFAULT_PROMPTS, MAX_PROMPT_CHARS, MAX_PROMPTS

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_DATABASE_URL = "sqlite:///haven.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    anthropic_api_key: SecretStr | None = Field(default=None, alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, alias="ANTHROPIC_BASE_URL")
    model: str = Field(default=DEFAULT_MODEL, alias="HAVEN_MODEL")
    verifier_model: str = Field(default="claude-haiku-4-5", alias="HAVEN_VERIFIER_MODEL")
    max_output_tokens: int = Field(default=1024, ge=64, le=64000, alias="HAVEN_MAX_OUTPUT_TOKENS")
    # Tokens of history we send before trimming the oldest turns (well under the model's window so a
    # long thread never earns a 400 "prompt is too long").
    context_budget_tokens: int = Field(default=150_000, ge=2_000, alias="HAVEN_CONTEXT_BUDGET_TOKENS")
    model_timeout_seconds: float = Field(default=60.0, gt=0, alias="HAVEN_MODEL_TIMEOUT")
    model_attempts: int = Field(default=4, ge=1, le=10, alias="HAVEN_MODEL_ATTEMPTS")
    retry_base_seconds: float = Field(default=1.0, ge=0, alias="HAVEN_RETRY_BASE_SECONDS")
    retry_max_seconds: float = Field(default=20.0, ge=0, alias="HAVEN_RETRY_MAX_SECONDS")
    stream: bool = Field(default=True, alias="HAVEN_STREAM")
    # The model part of one turn (every call, retry and tool round) stops after this long, with a note.
    turn_deadline_seconds: float = Field(default=180.0, gt=0, alias="HAVEN_TURN_DEADLINE_SECONDS")
    # Turns of one process whose model part runs at once; the rest wait their turn (bot.admission).
    max_concurrent_turns: int = Field(default=64, ge=1, alias="HAVEN_MAX_CONCURRENT_TURNS")
    # On SIGTERM, turns still answering get this long; what is unfinished then gets a restart note.
    shutdown_seconds: float = Field(default=30.0, ge=0, alias="HAVEN_SHUTDOWN_SECONDS")
    # The durable inbox: an accepted message stays this process's while it renews the lease (every
    # third of it); a process that stops renewing (crashed, frozen) loses its messages to recovery.
    inbox_lease_seconds: float = Field(default=60.0, ge=1, alias="HAVEN_INBOX_LEASE_SECONDS")
    # A turn waits at most this long for its conversation's lock, then leaves its message to recovery.
    lock_wait_seconds: float = Field(default=30.0, gt=0, alias="HAVEN_LOCK_WAIT_SECONDS")
    # How often each process looks for inbox entries whose holder is gone (``Engine.recover``): a crashed
    # or stopped process's messages are answered within the lease plus this long.
    recovery_seconds: float = Field(default=5.0, gt=0, alias="HAVEN_RECOVERY_SECONDS")
    # PostgreSQL: a frozen process (SIGSTOP, a stalled VM) gives up its conversations' locks after this
    # long (``storage.conversation_locks``); a running one keeps them with a heartbeat. Whole milliseconds
    # reach the server, and a live process must never look idle: at least a second.
    lock_idle_seconds: float = Field(default=10.0, ge=1, alias="HAVEN_LOCK_IDLE_SECONDS")
    # `haven run`/`chat` check the key and HAVEN_MODEL with one token count at start; true skips it.
    skip_model_check: bool = Field(default=False, alias="HAVEN_SKIP_MODEL_CHECK")
    # Prices for the usage report's cost estimate (bot.pricing), merged over the built-in list prices:
    # a JSON object, model → {"input", "output", "cache_write", "cache_read"} in USD per million tokens.
    model_prices: dict[str, dict[str, float]] = Field(default_factory=dict, alias="HAVEN_MODEL_PRICES")

    # What a new Slack assistant thread suggests asking (a JSON list; Slack shows at most four), in every
    # workspace whose admins did not set their own (the ``prompts`` workspace setting).
    suggested_prompts: tuple[str, ...] = Field(
        default=DEFAULT_PROMPTS, max_length=MAX_PROMPTS, alias="HAVEN_SUGGESTED_PROMPTS"
    )

    # Files people attach (bot.files): how many a message, how large each and together, PDF pages, and the
    # characters of a text file the model reads. A file over a limit gets a one-line note, not a read.
    files_max_count: int = Field(default=5, ge=0, le=20, alias="HAVEN_FILES_MAX_COUNT")
    file_max_bytes: int = Field(default=10_000_000, ge=1, le=30_000_000, alias="HAVEN_FILE_MAX_BYTES")
    files_max_total_bytes: int = Field(
        default=20_000_000, ge=1, le=30_000_000, alias="HAVEN_FILES_MAX_TOTAL_BYTES"
    )
    # The Messages API reads at most 100 pages of one PDF.
    pdf_max_pages: int = Field(default=50, ge=1, le=100, alias="HAVEN_PDF_MAX_PAGES")
    text_file_max_chars: int = Field(default=50_000, ge=100, alias="HAVEN_TEXT_FILE_MAX_CHARS")
    # Connecting to the platform's file host and reading a file each get at most this long.
    file_timeout_seconds: float = Field(default=20.0, gt=0, alias="HAVEN_FILE_TIMEOUT_SECONDS")
    # Where files are fetched from: unset, each platform's own file hosts (adapters/*/files.py say which
    # and why). Only for a GovSlack-like deployment or a test's local server; never a general host.
    slack_file_origins: tuple[str, ...] | None = Field(default=None, alias="HAVEN_SLACK_FILE_ORIGINS")
    discord_file_origins: tuple[str, ...] | None = Field(default=None, alias="HAVEN_DISCORD_FILE_ORIGINS")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="HAVEN_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="HAVEN_LOG_FORMAT")

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    # Many workspaces: Slack's OAuth install flow (HTTP mode, with the signing secret) instead of one
    # SLACK_BOT_TOKEN; each workspace's token is kept in the database.
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    # The redirect URL the app registered (https://…/slack/oauth_redirect); unset, Slack uses its only one.
    slack_redirect_uri: str | None = Field(default=None, alias="SLACK_REDIRECT_URI")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    port: int = Field(default=3000, ge=1, le=65535, alias="PORT")
    # Open connections the Slack HTTP server keeps; past it the longest-idle one makes room.
    http_max_connections: int = Field(default=512, ge=8, alias="HAVEN_HTTP_MAX_CONNECTIONS")
    # The ops endpoint (/healthz, /readyz, /metrics; bot.ops) in every `haven run` mode but the terminal.
    ops_port: int = Field(default=8080, ge=1, le=65535, alias="HAVEN_OPS_PORT")
    # Where the ops endpoint and the Slack HTTP server listen (0.0.0.0: every interface, for containers).
    bind_address: str = Field(default="0.0.0.0", min_length=1, alias="HAVEN_BIND_ADDRESS")
    # /readyz fails when the model's latest call failed and none succeeded within this many minutes.
    ready_model_minutes: float = Field(default=5.0, gt=0, alias="HAVEN_READY_MODEL_MINUTES")
    # A turn (one message, from receipt to the drawn reply) taking longer than this logs a warning.
    slow_turn_seconds: float = Field(default=60.0, gt=0, alias="HAVEN_SLOW_TURN_SECONDS")

    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_shard_count: int | None = Field(default=None, ge=1, alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: str | None = Field(default=None, alias="DISCORD_SHARD_IDS")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("suggested_prompts")
    @classmethod
    def _no_blank_prompts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        long = [p for p in value if len(p.strip()) > MAX_PROMPT_CHARS]
        if long:
            raise ValueError(f"a suggested prompt is limited to {MAX_PROMPT_CHARS} characters")
        return tuple(p.strip() for p in value if p.strip())

    @field_validator("model_prices")
    @classmethod
    def _prices_complete(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from bot.pricing import parse_prices

        parse_prices(value)  # a missing or negative price: the one-line settings error, at start-up
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL; without the slash "api" + "chat.postMessage"
        # becomes "apichat.postMessage".
        return value if value.endswith("/") else value + "/"

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


class SettingsError(Exception):
    """A bad setting, explained in one line that names it."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        name = str(loc[0]).upper()
        raise SettingsError(f"invalid setting {name}: {first.get('msg', 'invalid value')}") from None


def configure_logging(settings: Settings) -> None:
    from bot.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    logging.getLogger(__name__).debug("logging configured")
