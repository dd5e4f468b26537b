"""Configuration: `sica.toml` plus `SICA_*` environment variables, validated by pydantic-settings.

The file is found by `--config`, else `./sica.toml`, else `~/.config/sica/sica.toml`; environment variables
override it (`SICA_GATEWAY__PORT=9000` sets `[gateway] port`). Paths inside the file are relative to the file.
Settings are loaded once, at the command line, and passed down: nothing below reads the environment itself.

One module, over 400 lines, because it is the one schema of `sica.toml`: each section beside the others, so that a
reader (and `sica.example.toml`, which follows it) sees the whole configuration and its checks in one place.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sica.bundled_models import resolve_model

Provider = Literal["anthropic", "openai", "openai_compatible", "local", "scripted"]
Wire = Literal["openai", "anthropic"]
ROLES = ("main", "reasoning", "fast", "overseer")


class ConfigError(Exception):
    """A configuration problem, worded as one line that names the problem and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PricePerMillion(_Section):
    """USD per million tokens; cache prices default to the input price."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class ModelAlias(_Section):
    """One `[models.ALIAS]` table: which upstream serves the alias, and how it is priced and limited."""

    provider: Provider
    model: str
    wire: Wire | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    price: Literal["free"] | PricePerMillion | None = None
    script: Path | None = None
    max_output_tokens: int = Field(default=4096, gt=0)
    context_window: int = Field(default=32768, gt=0)
    tool_mode: Literal["native", "text"] | None = None
    timeout_s: float = Field(default=600.0, gt=0)
    max_concurrent: int | None = Field(default=None, gt=0)
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    allow_server_tools: bool = False
    allow_fetched_urls: bool = False
    allow_beta_headers: bool = False

    @model_validator(mode="after")
    def _check_provider_fields(self) -> ModelAlias:
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("provider 'openai_compatible' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if self.provider == "local":
            resolve_model(self.model)
        if self.provider == "scripted" and self.script is None:
            raise ValueError("provider 'scripted' needs script = 'path/to/script.jsonl'")
        if self.wire is not None and self.wire != self._natural_wire() and self.provider != "scripted":
            raise ValueError(
                f"provider '{self.provider}' speaks the {self._natural_wire()} API; only scripted "
                "aliases choose their wire"
            )
        return self

    def _natural_wire(self) -> Wire:
        return "anthropic" if self.provider == "anthropic" else "openai"

    @property
    def wire_format(self) -> Wire:
        """The API format the alias's upstream speaks; the gateway never translates between formats."""
        return self.wire or self._natural_wire()

    @property
    def effective_tool_mode(self) -> Literal["native", "text"]:
        """Small local models write tool calls as text; hosted ones call tools natively."""
        return self.tool_mode or ("text" if self.provider == "local" else "native")


class Roles(_Section):
    """Which alias plays which part; unset roles fall back to the default alias."""

    main: str | None = None
    reasoning: str | None = None
    fast: str | None = None
    overseer: str | None = None


@dataclass(frozen=True)
class ModelRoles:
    """The configured model aliases (`[models]`) and which of them plays each role (`[roles]`): what choosing an
    agent's models reads of the configuration."""

    aliases: Mapping[str, ModelAlias]
    roles: Roles

    def alias_for(self, role: str) -> str:
        """The alias that plays `role`: the one `[roles]` names, else the default alias."""
        return getattr(self.roles, role) or default_alias(self.aliases)


class RetrySettings(_Section):
    """How the gateway retries 429/5xx/connection errors/time-outs before answering 503."""

    max_attempts: int = Field(default=6, ge=1)
    initial_backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    deadline_s: float = Field(default=300.0, gt=0)


class CassetteSettings(_Section):
    """Record exchanges to a JSONL cassette, or answer from one."""

    mode: Literal["off", "record", "replay"] = "off"
    path: Path | None = None

    @model_validator(mode="after")
    def _path_when_on(self) -> CassetteSettings:
        if self.mode != "off" and self.path is None:
            raise ValueError(f"cassette mode '{self.mode}' needs path = 'cassette.jsonl'")
        return self


class GatewaySettings(_Section):
    """The standalone gateway's address and ledger, and behaviour shared by every gateway."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, lt=65536)
    ledger_path: Path = Field(default_factory=lambda: Path.home() / ".local/share/sica/gateway.sqlite")
    store_bodies: bool = True
    min_output_tokens: int = Field(default=16, gt=0)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    retry: RetrySettings = RetrySettings()
    cassette: CassetteSettings = CassetteSettings()


class LocalModelSettings(_Section):
    """The bundled llama.cpp server the harness starts for `provider = "local"` aliases."""

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache/sica/models")
    n_parallel: int = Field(default=2, gt=0)
    n_ctx: int = Field(default=16384, gt=0)
    threads: int | None = Field(default=None, gt=0)
    startup_timeout_s: float = Field(default=180.0, gt=0)


def default_envs_dir(euid: int) -> Path:
    """Agent environments are mounted into sandboxes, whose user must reach them: root's home is closed to it."""
    return Path("/var/cache/sica/envs") if euid == 0 else Path.home() / ".cache/sica/envs"


class SolveSettings(_Section):
    """`sica solve`: where runs and agent environments are kept, and each run's limits."""

    solves_dir: Path = Field(default_factory=lambda: Path.home() / ".local/share/sica/solves")
    envs_dir: Path = Field(default_factory=lambda: default_envs_dir(os.geteuid()))
    time_limit_s: float = Field(default=1800.0, gt=0)
    memory_mb: int = Field(default=4096, gt=0)
    scratch_mb: int = Field(default=2048, gt=0)
    tmp_mb: int = Field(default=512, gt=0)
    budget_usd: float | None = Field(default=5.0, ge=0)
    cancel_grace_s: float = Field(default=10.0, ge=0)


class EvalSettings(_Section):
    """`sica eval`: where results are kept, and each problem's limits (sandbox sizes come from `[solve]`)."""

    results_dir: Path = Field(default_factory=lambda: Path.home() / ".local/share/sica/evals")
    workers: int | None = Field(default=None, gt=0)
    time_limit_s: float = Field(default=600.0, gt=0)
    budget_usd: float | None = Field(default=1.0, ge=0)
    infra_retries: int = Field(default=2, ge=0)
    retry_delay_s: float = Field(default=2.0, ge=0)
    stagger_s: float = Field(default=0.2, ge=0)


def default_worker_dir(euid: int) -> Path:
    """Where a Ray worker node keeps the agent versions it was sent (the sandbox user must reach them)."""
    return Path("/var/cache/sica/ray") if euid == 0 else Path.home() / ".cache/sica/ray"


class RunnerSettings(_Section):
    """`[runner]`: where attempts run. `local` (the default) runs them here; `ray` sends each (agent version,
    problem) pair to a Ray cluster at `address` (None: the cluster this process is part of, or a new local one),
    asking `cpus` and `memory_mb` per attempt, while the gateway stays here, also listening on TCP at
    `gateway_host`:`gateway_port` (0: a free port) for the workers' sandboxes. `worker_dir` is each worker node's
    cache of the agent versions it was sent. An attempt whose node died runs again elsewhere as a retry of the
    same result (`[eval] infra_retries` bounds them)."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    cpus: float = Field(default=1.0, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=0, ge=0, lt=65536)
    worker_dir: Path = Field(default_factory=lambda: default_worker_dir(os.geteuid()))


class UtilitySettings(_Section):
    """`[loop.utility]`: how a version's utility weighs score, cost and time (the SICA paper's defaults)."""

    score_weight: float = Field(default=0.5, ge=0)
    cost_weight: float = Field(default=0.25, ge=0)
    time_weight: float = Field(default=0.25, ge=0)
    cost_cap_usd: float = Field(default=10.0, gt=0)
    time_cap_s: float = Field(default=300.0, gt=0)
    timeout_factor: float = Field(default=0.5, ge=0, le=1)


class LoopSettings(_Section):
    """`[loop]`: where runs are kept, and the improvement loop's selection policy and utility."""

    runs_dir: Path = Path("runs")
    policy: Literal["sica", "dgm", "hgm", "greedy"] = "sica"
    budget_usd: float | None = Field(default=None, ge=0)
    time_budget_s: float | None = Field(default=None, gt=0)
    meta_model: str | None = None
    meta_time_limit_s: float = Field(default=1800.0, gt=0)
    meta_budget_usd: float | None = Field(default=2.0, ge=0)
    #: Staged evaluation of a new version: how many selection problems it has solved at each look before the whole
    #: mix (growing; `sequential` stops at a look where it is provably worse than the best on shared problems).
    stages: list[int] = Field(default_factory=lambda: [5, 15])
    #: How a look decides: `sequential` (paired test against the best) or `dgm` (the Darwin Gödel Machine's
    #: score thresholds, with `stages = [10, 50]` and a mix of 200 as in its paper).
    staging: Literal["sequential", "dgm"] = "sequential"
    #: HGM's expansion exponent: expand (make a new version) when evaluations^alpha ≥ versions, else evaluate more.
    hgm_alpha: float = Field(default=0.6, gt=0, le=1)
    #: How many times the best may solve the mix again when a challenger comes close to it (0: never).
    rematches: int = Field(default=1, ge=0)
    #: How close (in mean utility on shared problems, below the best) a challenger must come for a rematch.
    close_margin: float = Field(default=0.02, ge=0)
    seed: int = 0
    utility: UtilitySettings = UtilitySettings()

    @model_validator(mode="after")
    def _growing_stages(self) -> LoopSettings:
        if not self.stages or any(size <= 0 for size in self.stages) or self.stages != sorted(set(self.stages)):
            raise ValueError(f"stages {self.stages} must be growing positive problem counts, e.g. [5, 15]")
        return self


class OverseerThresholds(_Section):
    """`[overseer.thresholds]`: when the overseer's cheap detectors fire (counts are of the latest steps in a row)."""

    #: The same tool call with the same result, this many times in a row.
    repeated_action_observation: int = Field(default=4, ge=2)
    #: The same tool call failing with the same error, this many times in a row.
    repeated_action_error: int = Field(default=3, ge=2)
    #: Model calls of one agent with no tool call between them.
    talking_without_acting: int = Field(default=5, ge=2)
    #: Tool steps alternating between two calls (A B A B …).
    alternation_steps: int = Field(default=6, ge=4)
    #: Context-window errors (from the ledger or the agent's events) in the window.
    context_window_errors: int = Field(default=2, ge=1)
    #: Tool steps with no change to the workdir and no result not seen before.
    no_progress_steps: int = Field(default=8, ge=2)
    #: Model calls in the ledger since the agent last wrote an event.
    silent_calls: int = Field(default=5, ge=1)
    #: Share of the budget spent, or of the time limit passed, that is worth a look.
    spend_warn_share: float = Field(default=0.8, gt=0, le=1)
    time_warn_share: float = Field(default=0.8, gt=0, le=1)
    #: Projected spend at the time limit (at the recent rate) over the budget that is worth a look.
    spend_overrun_factor: float = Field(default=1.5, gt=1)


class OverseerSettings(_Section):
    """`[overseer]`: the harness's overseer of a running agent: detectors on every event and call, and a review by
    its model every `interval_s` (sooner when a detector fires), on a budget that is a share of the attempt's."""

    enabled: bool = True
    interval_s: float = Field(default=30.0, gt=0)
    #: A review after this many new events, whatever the interval.
    events_per_review: int = Field(default=100, gt=0)
    #: How often the overseer reads the agent's events and the ledger.
    poll_s: float = Field(default=1.0, gt=0)
    #: The overseer's budget per attempt, as a share of the attempt's.
    budget_share: float = Field(default=0.1, gt=0, le=1)
    #: The role whose alias judges (`[roles] overseer`). Attempts get an overseer only when `[roles]` names that
    #: role's alias; `sica overseer` run alone falls back to the default alias.
    model_role: Literal["main", "reasoning", "fast", "overseer"] = "overseer"
    max_output_tokens: int = Field(default=1024, gt=0)
    #: A cancel, and a notice of looping, need a detector's finding that supports the verdict (a stuck pattern for
    #: looping, a tampering sign for tampering); without one they are withheld and recorded, so a small overseer
    #: model that misjudges a healthy run cannot end or distract it.
    interventions_need_findings: bool = True
    #: Tool steps after the overseer's notice to an agent that is still caught repeating itself (a repetition or
    #: no-progress finding holds) before the overseer cancels the run itself; 0: never, the model alone decides.
    escalate_after_steps: int = Field(default=10, ge=0)
    #: What the window keeps: the latest tool steps and model calls.
    window_steps: int = Field(default=60, gt=0)
    window_calls: int = Field(default=120, gt=0)
    #: Paths inside the sandbox an agent may read without a tampering note (the workdir, /tmp, the system).
    task_paths: list[str] = Field(default_factory=lambda: ["/work", "/tmp", "/usr", "/bin", "/lib", "/dev/null"])
    thresholds: OverseerThresholds = OverseerThresholds()


class BenchmarkSettings(_Section):
    """Where built problem sets and datasets are cached, and where the datasets loaded from the network come from:
    the Hugging Face Hub (or a mirror), or local copies of the files."""

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache/sica/benchmarks")
    hf_endpoint: str = Field(default="https://huggingface.co", pattern=r"^https?://\S+$")
    swebench_file: Path | None = None
    livecodebench_file: Path | None = None
    livecodebench_release: str = Field(default="release_v6", pattern=r"^(release_)?v[1-9][0-9]?$")
    swebench_repo_url: str = "https://github.com/{repo}.git"
    swebench_score: Literal["harness", "skip"] = "harness"
    swebench_python: Path | None = None

    @model_validator(mode="after")
    def _repo_placeholder(self) -> BenchmarkSettings:
        try:
            filled = self.swebench_repo_url.format(repo="owner/name")
        except (KeyError, IndexError, ValueError):
            filled = self.swebench_repo_url
        if filled == self.swebench_repo_url:
            raise ValueError(
                "swebench_repo_url needs the placeholder {repo} (owner/name) and no other braces, e.g. "
                "'https://github.com/{repo}.git'"
            )
        return self


class Settings(BaseSettings):
    """All of sica's configuration."""

    model_config = SettingsConfigDict(env_prefix="SICA_", env_nested_delimiter="__", extra="forbid", frozen=True)

    models: dict[str, ModelAlias] = Field(default_factory=dict)
    roles: Roles = Roles()
    gateway: GatewaySettings = GatewaySettings()
    local: LocalModelSettings = LocalModelSettings()
    solve: SolveSettings = SolveSettings()
    benchmarks: BenchmarkSettings = BenchmarkSettings()
    eval: EvalSettings = EvalSettings()
    loop: LoopSettings = LoopSettings()
    overseer: OverseerSettings = OverseerSettings()
    runner: RunnerSettings = RunnerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init arguments; the environment overrides it.
        return env_settings, init_settings

    @property
    def model_roles(self) -> ModelRoles:
        """The model aliases and the roles they play."""
        return ModelRoles(self.models, self.roles)

    def role_alias(self, role: str) -> str:
        """The alias that plays `role`."""
        return self.model_roles.alias_for(role)

    def with_only(self, aliases: set[str]) -> Settings:
        """These settings with only the named aliases: a run does not need other aliases' keys or local models."""
        return self.model_copy(update={"models": {name: self.models[name] for name in aliases}})


def default_alias(aliases: Mapping[str, ModelAlias]) -> str:
    """The alias used where none is named: `local` when present, else the first configured one."""
    return "local" if "local" in aliases else next(iter(aliases))


def default_models(environ: Mapping[str, str]) -> dict[str, ModelAlias]:
    """Aliases used when the config defines none: a hosted model if its key is set, else the local 1.5B."""
    if environ.get("ANTHROPIC_API_KEY"):
        return {
            "claude": ModelAlias(
                provider="anthropic", model="claude-sonnet-4-5", api_key_env="ANTHROPIC_API_KEY", context_window=200_000
            )
        }
    if environ.get("OPENAI_API_KEY"):
        return {
            "gpt": ModelAlias(
                provider="openai", model="gpt-4.1", api_key_env="OPENAI_API_KEY", context_window=1_000_000
            )
        }
    return {"local": ModelAlias(provider="local", model="qwen2.5-coder-1.5b", context_window=8192)}


def find_config_file(explicit: Path | None, cwd: Path, home: Path) -> Path | None:
    """`--config` if given (it must exist), else `./sica.toml`, else `~/.config/sica/sica.toml`, else none."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} not found: check the --config path")
        return explicit
    for candidate in (cwd / "sica.toml", home / ".config/sica/sica.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_settings(config_file: Path | None, environ: Mapping[str, str]) -> Settings:
    """Read and validate the configuration; raise `ConfigError` with a one-line message on any problem."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"{config_file}: not readable TOML ({exc}); fix the file or pass another --config"
            ) from None
    where = str(config_file) if config_file else "configuration"
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_one_line(where, exc)) from None
    if config_file is not None:
        settings = _resolve_paths(settings, config_file.parent.resolve())
    if not settings.models:
        settings = settings.model_copy(update={"models": default_models(environ)})
    for role in ROLES:
        alias = getattr(settings.roles, role)
        if alias is not None and alias not in settings.models:
            raise ConfigError(
                f"{where}: roles.{role} = '{alias}' names no [models.{alias}] table; define it or "
                f"use one of: {', '.join(settings.models)}"
            )
    return settings


def _one_line(where: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {location}: {first['msg']}{more}; see sica.example.toml for every key"


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make the file's relative paths relative to the file, not to the current directory."""

    def resolve(path: Path | None) -> Path | None:
        return None if path is None else (base / path.expanduser()).resolve()

    models = {
        name: alias.model_copy(update={"script": resolve(alias.script)}) for name, alias in settings.models.items()
    }
    gateway = settings.gateway.model_copy(
        update={
            "ledger_path": resolve(settings.gateway.ledger_path),
            "cassette": settings.gateway.cassette.model_copy(update={"path": resolve(settings.gateway.cassette.path)}),
        }
    )
    local = settings.local.model_copy(update={"cache_dir": resolve(settings.local.cache_dir)})
    solve = settings.solve.model_copy(
        update={"solves_dir": resolve(settings.solve.solves_dir), "envs_dir": resolve(settings.solve.envs_dir)}
    )
    benchmarks = settings.benchmarks.model_copy(
        update={
            "cache_dir": resolve(settings.benchmarks.cache_dir),
            "swebench_file": resolve(settings.benchmarks.swebench_file),
            "livecodebench_file": resolve(settings.benchmarks.livecodebench_file),
            "swebench_python": resolve(settings.benchmarks.swebench_python),
        }
    )
    evaluation = settings.eval.model_copy(update={"results_dir": resolve(settings.eval.results_dir)})
    loop = settings.loop.model_copy(update={"runs_dir": resolve(settings.loop.runs_dir)})
    runner = settings.runner.model_copy(update={"worker_dir": resolve(settings.runner.worker_dir)})
    return settings.model_copy(
        update={
            "models": models,
            "gateway": gateway,
            "local": local,
            "solve": solve,
            "benchmarks": benchmarks,
            "eval": evaluation,
            "loop": loop,
            "runner": runner,
        }
    )
