"""The run configuration: one typed dataclass, validated on construction.

Every field carries a docstring (the string literal under it). The CLI reads those docstrings to
document its ``--field-name`` options, so a field and its help text can never drift apart.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import numbers
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from ddpg.errors import ConfigError

NOISE_KINDS = ("gaussian", "ou")
ACTIVATIONS = ("leaky_relu", "relu")
UPDATE_MODES = ("eager", "cudagraph")
HER_STRATEGIES = ("future", "final", "episode")
ALGORITHMS = ("ddpg", "td3")
# Fields that only TD3 uses: under algo 'ddpg' they must keep their defaults.
TD3_FIELDS = ("policy_delay", "target_noise", "target_noise_clip")
# Fields that may change when a run is resumed: budgets and output only.
RESUMABLE_FIELDS = ("total_steps", "episodes", "log_every", "render_from")
SEED_LIMIT = 2**63  # seeds are exact integers in [0, 2^63)
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:[0-9]+)?")
# More threads than any machine has cores: far above it, thread creation fails and the process
# aborts inside the OpenMP runtime.
MAX_TORCH_THREADS = 1024
# -- upper bounds: beyond each, a value cannot be meant (an extra zero, 1e400 for 1e4) ----------
# Integers typed with more digits are refused as they are read: turning 1e999999999 into an int
# takes minutes and Python refuses to print one of over 4300 digits. 1000 digits lie far beyond
# every bound below, and the memory check still shows a --buffer-size 1e400 as 10^N GiB.
MAX_INT_DIGITS = 1000
# Every integer is stored as a signed 64-bit number (checkpoint counters, tensors, NumPy arrays).
INT_LIMIT = 2**63
# Numbers become float32 tensors (noise, clipping, initialisation, returns compared with float32
# rewards): a real beyond float32's range turns into infinity there.
FLOAT32_MAX = 3.4028234663852886e38
# Step counts (budgets, intervals, time limits, episode counts: an episode takes at least a step).
# Checkpoints are named step-NNNNNNNNNN, ten digits, and ordered by name, so 10^10 is the largest
# budget whose checkpoints stay in order; at 10,000 env steps a second, ten times the fastest
# this library has measured (1,014 with one update per step, docs/gpu.md), they take 11.6 days.
MAX_STEPS = 10**10
STEP_FIELDS = (
    "total_steps",
    "episodes",
    "max_episode_steps",
    "learning_starts",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "render_from",
)
# The standard error of an evaluation's mean return falls as 1/sqrt(episodes): 10^5 episodes
# pin it to 0.3% of the returns' spread, beyond any use (papers evaluate on 10 to 100).
MAX_EVAL_EPISODES = 100_000
# High update-to-data methods run 20 (REDQ, DroQ) to 128 (scaled-by-resetting SAC) updates per
# step; past 1000, a single env step costs a thousand updates and the run never gets anywhere.
MAX_UPDATES_PER_STEP = 1000.0
# The output layers start uniform in [-x, x] (the paper's 3e-3; PyTorch's default is
# 1/sqrt(fan_in) <= 1): a wider range only saturates the actor's tanh from the first step.
MAX_FINAL_LAYER_INIT = 1.0
# Noise stds in half action ranges (normalised units for TD3's target noise): at 100, 99% of the
# noisy actions are clipped to a bound, so a larger std changes nothing but overflows float32.
MAX_NOISE_STD = 100.0
# Fields whose bound is the memory they take: resources.check_memory refuses them with the size in
# GiB, before anything is created (batch_size is at most buffer_size).
MEMORY_FIELDS = ("hidden_size", "hidden_size_2", "batch_size", "buffer_size", "num_envs")


@dataclass(frozen=True)
class Config:
    """Everything that defines a DDPG (or TD3) run. Build one directly, from a preset or from a
    dict.

    The defaults are the library's generic settings, used by `ddpg train --env X` without a
    preset: the values the tuned presets agree on (README, "Defaults", gives the reason for each).
    """

    env_id: str = "Pendulum-v1"
    """Gymnasium environment id; it must have a continuous (Box) action space."""

    seed: int = 0
    """Seed for networks, exploration, replay sampling and environment resets: an integer in
    [0, 2^63)."""

    total_steps: int | None = 100_000
    """Budget of environment steps (None: no step budget, `episodes` must be set)."""

    episodes: int | None = None
    """Budget of training episodes (None: no episode budget); training stops at the first budget."""

    max_episode_steps: int | None = None
    """Time limit per episode, replacing the environment's own (None: keep the environment's)."""

    hidden_size: int = 256
    """Width of the first hidden layer of the actor and the critic (and of the second, unless
    hidden_size_2 is set)."""

    hidden_size_2: int | None = None
    """Width of the second hidden layer of the actor and the critic (None: hidden_size)."""

    batch_norm: bool = False
    """Put BatchNorm1d after the actor's second linear layer, as in the original design."""

    activation: str = "leaky_relu"
    """Hidden-layer activation of the actor and the critic: 'leaky_relu' (slope 0.01, the original
    design's) or 'relu' (the TD3 paper's and SB3's)."""

    final_layer_init: float | None = 3e-3
    """The output layers of the actor and the critic start uniform in [-x, x] (the DDPG paper's
    3e-3: early actions and Q values near zero); None: PyTorch's default initialisation, as in the
    TD3 paper's and SB3's networks."""

    gamma: float = 0.99
    """Discount factor in [0, 1)."""

    actor_lr: float = 1e-3
    """AdamW learning rate of the actor."""

    critic_lr: float = 1e-3
    """AdamW learning rate of the critic."""

    weight_decay: float = 0.0
    """AdamW decoupled weight decay, for both networks (0: plain Adam steps)."""

    batch_size: int = 256
    """Transitions per gradient update."""

    buffer_size: int = 1_000_000
    """Replay buffer capacity in transitions; the oldest are overwritten once it is full."""

    tau: float = 0.005
    """Polyak coefficient in (0, 1]: target <- (1 - tau) * target + tau * online per update."""

    noise: str = "gaussian"
    """Exploration noise: 'gaussian' (independent each step) or 'ou' (Ornstein-Uhlenbeck)."""

    noise_std: float = 0.1
    """Exploration noise std as a fraction of the half action range (0.1: 10% of (high-low)/2)."""

    ou_theta: float = 0.15
    """Mean-reversion rate of the Ornstein-Uhlenbeck noise (only used with noise='ou')."""

    learning_starts: int = 10_000
    """Env steps of uniformly random actions before the first update."""

    updates_per_step: float = 1.0
    """Update-to-data ratio: gradient updates per env step once learning has started (1: one
    per transition; 0.25: one every 4 transitions; 2: two per transition)."""

    num_envs: int = 1
    """Environments stepped together (a Gymnasium SyncVectorEnv): the actor acts on all of them
    in one batch and each env step counts towards total_steps (so a step budget, eval_every and
    checkpoint_every are met at the first vector step that reaches them)."""

    log_every: int = 20
    """Print a progress line every this many episodes."""

    eval_every: int = 10_000
    """Evaluate the deterministic policy every this many env steps (0: no periodic evaluation;
    then the best policy is picked by the running average of training returns)."""

    eval_episodes_during: int = 10
    """Episodes per periodic evaluation."""

    target_return: float | None = None
    """Stop training early once a periodic evaluation's mean return reaches this (None: never)."""

    eval_episodes: int = 10
    """Episodes of the final evaluation of the best and the final policy."""

    checkpoint_every: int = 10_000
    """Write a resumable checkpoint every this many env steps (0: only at the end)."""

    tensorboard: bool = True
    """Write TensorBoard event files into RUN_DIR/tensorboard (runs with a run directory only)."""

    render_from: int | None = None
    """Render the environment on screen from this training episode on (None: never)."""

    device: str = "cpu"
    """Torch device for networks and replay buffer: 'cpu', 'cuda', 'cuda:N' or 'auto'."""

    torch_threads: int = 0
    """CPU threads for torch (0: torch's default)."""

    update_mode: str = "eager"
    """'eager' (plain PyTorch, any device) or 'cudagraph' (the whole update captured once as a
    CUDA graph and replayed; CUDA devices only)."""

    # -- observations and goals ---------------------------------------------------------------
    normalize_obs: bool = False
    """Normalise observations (goals included) by a running mean and std per dimension,
    updated from every collected observation and saved with the model (the exported graph
    applies it too)."""

    obs_clip: float = 5.0
    """Normalised observations are clipped to [-obs_clip, obs_clip] (only with normalize_obs;
    5 as in the HER paper's code)."""

    her: bool = False
    """Hindsight Experience Replay: relabel sampled transitions with goals the episode achieved
    (goal-conditioned environments: a Dict observation with desired_goal and achieved_goal, and
    compute_reward)."""

    her_strategy: str = "future"
    """Where a relabelled goal comes from: 'future' (a transition at or after it in the same
    episode), 'final' (the episode's last) or 'episode' (any of the episode's)."""

    her_k: int = 4
    """Relabelled goals per original one: a share k/(k+1) of each batch is relabelled."""
    # -- the algorithm: DDPG, or TD3 (Fujimoto et al. 2018, arXiv:1802.09477) ---------------------
    algo: str = "ddpg"
    """'ddpg' (one critic, the actor and the targets move every update) or 'td3' (two critics
    regressed on the smaller target value at a smoothed target action, the actor and the
    targets moved every policy_delay updates)."""

    policy_delay: int = 2
    """TD3 only: critic updates per actor update; the actor and all targets move on every
    policy_delay-th update."""

    target_noise: float = 0.2
    """TD3 only: std of the Gaussian noise added to the target action (target policy smoothing),
    in normalised action units (actions span [-1, 1])."""

    target_noise_clip: float = 0.5
    """TD3 only: the target-smoothing noise is clipped to [-target_noise_clip, target_noise_clip]
    before it is added, in normalised action units."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Config:
        check_keys(kwargs)  # before the dataclass __init__ refuses them without a suggestion
        return super().__new__(cls)

    def __post_init__(self) -> None:
        _coerce_numbers(self)
        _validate(self)

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Build a config from a dict, rejecting unknown keys with a suggestion."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Config.from_dict needs a dict, got {type(data).__name__}")
        check_keys(data)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Config:
        check_keys(changes)
        return dataclasses.replace(self, **changes)


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


def check_keys(data: dict[str, Any]) -> None:
    names = field_names()
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{key}'{hint}")


@cache
def field_docs() -> dict[str, str]:
    """The docstring under each field of `Config`, read from this module's source."""
    tree = ast.parse(inspect.getsource(Config))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = following.value.value
    return docs


@cache
def field_types() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def option_name(field: str) -> str:
    """The command-line spelling of a config field: `actor_lr` is `--actor-lr`."""
    return "--" + field.replace("_", "-")


def parse_value(name: str, text: str) -> Any:
    """Turn the command-line text for field `name` into a typed value (never evaluates code)."""
    hint = field_types()[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            return exact_int(text)
        if base is float:
            return float(text)
        return str(text)
    except OverflowError:
        raise ConfigError(
            f"{option_name(name)}: expected an integer below 2^63, got '{text}'"
        ) from None
    except ValueError:
        kind = getattr(base, "__name__", str(base))
        raise ConfigError(f"{option_name(name)}: expected {kind}, got '{text}'") from None


def exact_int(text: str) -> int:
    """An integer written as 42, 1_000_000 or 1e6; ValueError if it is not exactly one (no
    rounding through a float: 9007199254740993 stays itself), OverflowError if it has more than
    MAX_INT_DIGITS digits."""
    try:
        number = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError(text) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(text)
    if number.adjusted() >= MAX_INT_DIGITS:
        raise OverflowError(text)
    return int(number)


def _coerce_numbers(c: Config) -> None:
    """NumPy (or other) integers and reals become Python ints and floats: np.int64(3) is a fine
    seed, and config.json must hold plain JSON numbers."""
    hints = field_types()
    for f in fields(c):
        value = getattr(c, f.name)
        if value is None or isinstance(value, (bool, int, float)):
            continue
        allowed = typing.get_args(hints[f.name]) or (hints[f.name],)
        if int in allowed and isinstance(value, numbers.Integral):
            object.__setattr__(c, f.name, int(value))
        elif float in allowed and isinstance(value, numbers.Real):
            object.__setattr__(c, f.name, float(value))


def _type_name(hint: Any) -> str:
    allowed = typing.get_args(hint) or (hint,)
    return " or ".join("None" if t is type(None) else t.__name__ for t in allowed)


def _validate(c: Config) -> None:
    def fail(message: str) -> None:
        raise ConfigError(f"invalid config: {message}")

    hints = field_types()
    for f in fields(c):
        value = getattr(c, f.name)
        hint = hints[f.name]
        allowed = typing.get_args(hint) or (hint,)
        if value is None and type(None) in allowed:
            continue
        ok = False
        for t in allowed:
            if (
                t is float
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                or t is int
                and isinstance(value, int)
                and not isinstance(value, bool)
                or t in (bool, str)
                and isinstance(value, t)
            ):
                ok = True
        if not ok:
            fail(f"{f.name} must be {_type_name(hint)}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            fail(f"{f.name} must be finite, got {value}")
        if isinstance(value, str) and not value.strip():
            fail(f"{f.name} is empty")

    if not 0 <= c.seed < SEED_LIMIT:
        fail(f"seed must be an integer in [0, 2^63), got {c.seed}")
    if c.total_steps is None and c.episodes is None:
        fail("set total_steps or episodes (both are None, training would never end)")
    if c.total_steps is not None and c.total_steps < 1:
        fail(f"total_steps must be >= 1, got {c.total_steps}")
    if c.episodes is not None and c.episodes < 1:
        fail(f"episodes must be >= 1, got {c.episodes}")
    if c.max_episode_steps is not None and c.max_episode_steps < 1:
        fail(f"max_episode_steps must be >= 1, got {c.max_episode_steps}")
    if c.hidden_size < 1:
        fail(f"hidden_size must be >= 1, got {c.hidden_size}")
    if c.hidden_size_2 is not None and c.hidden_size_2 < 1:
        fail(f"hidden_size_2 must be >= 1, got {c.hidden_size_2}")
    if not 0.0 <= c.gamma < 1.0:
        fail(f"gamma must be in [0, 1), got {c.gamma}")
    for name in ("actor_lr", "critic_lr"):
        if not getattr(c, name) > 0:
            fail(f"{name} must be > 0, got {getattr(c, name)}")
    if c.weight_decay < 0:
        fail(f"weight_decay must be >= 0, got {c.weight_decay}")
    if c.batch_size < 1:
        fail(f"batch_size must be >= 1, got {c.batch_size}")
    if c.buffer_size < 1:
        fail(f"buffer_size must be >= 1, got {c.buffer_size}")
    if c.batch_size > c.buffer_size:
        fail(f"batch_size ({c.batch_size}) is larger than buffer_size ({c.buffer_size})")
    if c.activation not in ACTIVATIONS:
        fail(f"activation must be one of {', '.join(ACTIVATIONS)}, got '{c.activation}'")
    if c.final_layer_init is not None and not c.final_layer_init > 0:
        fail(f"final_layer_init must be > 0 or None, got {c.final_layer_init}")
    if c.batch_norm and c.batch_size < 2:
        fail("batch_size must be >= 2 with batch_norm (BatchNorm needs two samples)")
    if not 0.0 < c.tau <= 1.0:
        fail(f"tau must be in (0, 1], got {c.tau}")
    if c.noise not in NOISE_KINDS:
        fail(f"noise must be one of {', '.join(NOISE_KINDS)}, got '{c.noise}'")
    if c.noise_std < 0:
        fail(f"noise_std must be >= 0, got {c.noise_std}")
    if not 0.0 < c.ou_theta <= 1.0:
        fail(f"ou_theta must be in (0, 1], got {c.ou_theta}")
    if c.learning_starts < 0:
        fail(f"learning_starts must be >= 0, got {c.learning_starts}")
    if not c.updates_per_step > 0:
        fail(f"updates_per_step must be > 0, got {c.updates_per_step}")
    if c.num_envs < 1:
        fail(f"num_envs must be >= 1, got {c.num_envs}")
    if c.render_from is not None and c.num_envs > 1:
        fail("render_from needs num_envs 1 (only a single environment is rendered)")
    if c.update_mode not in UPDATE_MODES:
        fail(f"update_mode must be one of {', '.join(UPDATE_MODES)}, got '{c.update_mode}'")
    if c.update_mode == "cudagraph" and c.device == "cpu":
        fail("update_mode 'cudagraph' needs a CUDA device (device 'cuda', 'cuda:N' or 'auto')")
    if not c.obs_clip > 0:
        fail(f"obs_clip must be > 0, got {c.obs_clip}")
    if c.her_strategy not in HER_STRATEGIES:
        fail(f"her_strategy must be one of {', '.join(HER_STRATEGIES)}, got '{c.her_strategy}'")
    if c.her_k < 1:
        fail(f"her_k must be >= 1, got {c.her_k}")
    if c.her and c.update_mode != "eager":
        fail("her needs update_mode 'eager' (relabelling calls the env's compute_reward)")
    if c.her and c.buffer_size < c.num_envs:
        fail(f"buffer_size ({c.buffer_size}) must hold one step of all {c.num_envs} envs")
    if c.torch_threads > MAX_TORCH_THREADS:
        fail(f"torch_threads must be at most {MAX_TORCH_THREADS}, got {c.torch_threads}")
    if c.log_every < 1:
        fail(f"log_every must be >= 1, got {c.log_every}")
    for name in ("eval_every", "checkpoint_every", "torch_threads"):
        if getattr(c, name) < 0:
            fail(f"{name} must be >= 0, got {getattr(c, name)}")
    for name in ("eval_episodes_during", "eval_episodes"):
        if getattr(c, name) < 1:
            fail(f"{name} must be >= 1, got {getattr(c, name)}")
    if c.target_return is not None and c.eval_every == 0:
        fail("target_return needs periodic evaluation: set eval_every > 0")
    if c.render_from is not None and c.render_from < 1:
        fail(f"render_from must be >= 1, got {c.render_from}")
    if not DEVICE_PATTERN.fullmatch(c.device):
        fail(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got '{c.device}'")
    _validate_algorithm(c, fail)
    _validate_bounds(c, fail)


def _validate_bounds(c: Config, fail: Callable[[str], None]) -> None:
    """The upper bounds (see where they are defined for why each is where it is)."""
    for name in STEP_FIELDS:
        value = getattr(c, name)
        if value is not None and value > MAX_STEPS:
            fail(
                f"{name} must be at most 10^10, got {shown(value)} (10^10 steps take 11.6 days "
                "at 10,000 steps/s)"
            )
    for name in ("eval_episodes_during", "eval_episodes"):
        if getattr(c, name) > MAX_EVAL_EPISODES:
            fail(f"{name} must be at most {MAX_EVAL_EPISODES:,}, got {shown(getattr(c, name))}")
    if c.updates_per_step > MAX_UPDATES_PER_STEP:
        fail(
            f"updates_per_step must be at most {MAX_UPDATES_PER_STEP:g}, "
            f"got {shown(c.updates_per_step)}"
        )
    if c.final_layer_init is not None and c.final_layer_init > MAX_FINAL_LAYER_INIT:
        fail(
            f"final_layer_init must be at most {MAX_FINAL_LAYER_INIT:g}, "
            f"got {shown(c.final_layer_init)}"
        )
    for name in ("noise_std", "target_noise"):
        if getattr(c, name) > MAX_NOISE_STD:
            fail(f"{name} must be at most {MAX_NOISE_STD:g}, got {shown(getattr(c, name))}")
    for f in fields(c):  # what no bound above covers: the type's own range
        value = getattr(c, f.name)
        if isinstance(value, float) and abs(value) > FLOAT32_MAX:
            fail(f"{f.name} must be within float32's range (3.4e38), got {shown(value)}")
        if f.name in MEMORY_FIELDS or not isinstance(value, int) or isinstance(value, bool):
            continue
        if not -INT_LIMIT <= value < INT_LIMIT:
            fail(f"{f.name} must be below 2^63, got {shown(value)}")


def shown(value: float) -> str:
    """A number as a message shows it: 1.00e+400 rather than its 401 digits."""
    if isinstance(value, int) and abs(value) >= 10**16:
        return f"{Decimal(value):.3g}"
    return str(value)


def _validate_algorithm(c: Config, fail: Callable[[str], None]) -> None:
    """`algo` and the TD3 fields: in range, and left at their defaults under 'ddpg' (where they
    would silently do nothing)."""
    if c.algo not in ALGORITHMS:
        fail(f"algo must be one of {', '.join(ALGORITHMS)}, got '{c.algo}'")
    if c.policy_delay < 1:
        fail(f"policy_delay must be >= 1, got {c.policy_delay}")
    if c.target_noise < 0:
        fail(f"target_noise must be >= 0, got {c.target_noise}")
    if c.target_noise_clip < 0:
        fail(f"target_noise_clip must be >= 0, got {c.target_noise_clip}")
    if c.algo != "td3":
        defaults = {f.name: f.default for f in fields(Config) if f.name in TD3_FIELDS}
        for name, default in defaults.items():
            if getattr(c, name) != default:
                fail(f"{name} only applies to algo 'td3' (algo is '{c.algo}')")


def config_warnings(c: Config) -> list[str]:
    """Settings that are valid but probably not what was meant."""
    warnings = []
    if c.total_steps is not None and c.learning_starts >= c.total_steps:
        warnings.append(
            f"learning_starts ({c.learning_starts}) >= total_steps ({c.total_steps}): "
            "the run will only take random actions and make no update"
        )
    if c.total_steps is not None and c.eval_every > c.total_steps:
        warnings.append(
            f"eval_every ({c.eval_every}) > total_steps ({c.total_steps}): "
            "no periodic evaluation will run"
        )
    if not c.her and (c.her_strategy != "future" or c.her_k != 4):
        warnings.append("her_strategy and her_k have no effect without her")
    if not c.normalize_obs and c.obs_clip != 5.0:
        warnings.append("obs_clip has no effect without normalize_obs")
    return warnings
