"""Creating and checking Gymnasium environments, and the per-episode reset seeds."""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ddpg.errors import EnvError
from ddpg.observations import ObsLayout, as_flat, layout_of

# Independent streams of reset seeds, so training, periodic evaluation and the final evaluation
# never see the same start states.
TRAIN_STREAM, PERIODIC_EVAL_STREAM, FINAL_EVAL_STREAM = 0, 1, 2


@dataclass(frozen=True)
class EnvInfo:
    """What the agent needs to know about an environment's spaces."""

    obs_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    layout: ObsLayout | None = None
    """How a Dict observation is flattened (None: a flat Box)."""

    @property
    def obs_layout(self) -> ObsLayout:
        return self.layout or ObsLayout.flat(self.obs_dim)

    @property
    def act_dim(self) -> int:
        return int(self.action_low.size)


def episode_seed(seed: int, stream: int, episode: int) -> int:
    """The reset seed of `episode` in `stream`: a pure function, so any episode can be replayed."""
    return int(np.random.SeedSequence([seed, stream, episode]).generate_state(1)[0])


def make_env(
    env_id: str, max_episode_steps: int | None = None, render_mode: str | None = None
) -> gym.Env:
    """`gym.make` with one-line errors for unknown ids and missing dependencies; a Dict
    observation space is flattened (`ddpg.observations`)."""
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    if ":" not in env_id and env_id not in gym.registry:
        register_robotics(env_id)
    if ":" not in env_id and env_id not in gym.registry:
        # Refused before gym.make, which prints a DeprecationWarning for old versions first.
        raise EnvError(_unknown_env(env_id))
    try:
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
    except (gym.error.DependencyNotInstalled, ImportError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if "mujoco" in detail.lower():
            detail += '; for MuJoCo tasks: pip install "ddpg[mujoco]"'
        raise EnvError(f"environment '{env_id}' needs a missing package: {detail}") from None
    except gym.error.Error as exc:
        raise EnvError(_unknown_env(env_id)) from exc
    except TypeError as exc:  # e.g. an environment that takes no render_mode
        raise EnvError(f"cannot create environment '{env_id}': {exc}") from None
    check_env(env, env_id)
    return as_flat(env, env_id)


# Ids of the gymnasium-robotics tasks (registered when the package is imported).
ROBOTICS_PREFIXES = ("Fetch", "HandManipulate", "HandReach", "Adroit", "PointMaze", "AntMaze")


def register_robotics(env_id: str) -> None:
    """Register gymnasium-robotics' tasks when an id is unknown and the package is installed;
    a robotics id without it is refused with the extra to install."""
    if importlib.util.find_spec("gymnasium_robotics") is None:
        if env_id.startswith(ROBOTICS_PREFIXES):
            raise EnvError(
                f"environment '{env_id}' needs gymnasium-robotics: pip install \"ddpg[robotics]\""
            )
        return
    import contextlib
    import io

    # Its import prints a notice about the rewards of unrelated (Adroit) tasks to stderr.
    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)


def vector_env(
    first: gym.Env, num_envs: int, env_id: str, max_episode_steps: int | None
) -> SyncVectorEnv:
    """`first` and num_envs - 1 more copies of `env_id`, stepped together; automatic resets are
    off: the training loop resets each finished environment itself."""
    makers = [lambda: first] + [lambda: make_env(env_id, max_episode_steps)] * (num_envs - 1)
    return SyncVectorEnv(makers, copy=False, autoreset_mode=AutoresetMode.DISABLED)


def _unknown_env(env_id: str) -> str:
    candidates = difflib.get_close_matches(env_id, list(gym.registry), n=10, cutoff=0.5)
    close = [name for name in candidates if _importable(name)][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown environment '{env_id}'{hint}"


def _importable(env_id: str) -> bool:
    """Whether `env_id`'s code can be imported here (some registered ids need extra packages,
    such as jax or shimmy, and are no useful suggestion)."""
    entry = gym.registry[env_id].entry_point
    if not isinstance(entry, str):
        return isinstance(entry, type)  # a class; functions there only raise install hints
    try:
        return importlib.util.find_spec(entry.split(":")[0]) is not None
    except Exception:  # finding a submodule imports its package, which may itself refuse
        # (gymnasium.envs.mujoco raises DependencyNotInstalled without MuJoCo)
        return False


def check_env(env: gym.Env, name: str | None = None) -> EnvInfo:
    """Refuse the spaces DDPG cannot handle; return what the agent needs."""
    name = name or (env.spec.id if env.spec else type(env).__name__)
    act = env.action_space
    if not isinstance(act, gym.spaces.Box):
        raise EnvError(
            f"environment '{name}' has a {type(act).__name__} action space; DDPG needs a "
            "continuous Box action space"
        )
    if act.shape is None or len(act.shape) != 1:
        raise EnvError(
            f"environment '{name}' has actions of shape {act.shape}; DDPG needs a vector"
        )
    if not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
        raise EnvError(
            f"environment '{name}' has non-finite action bounds {act.low}..{act.high}; "
            "DDPG squashes actions into finite bounds"
        )
    if np.any(act.high <= act.low):
        raise EnvError(f"environment '{name}' has empty action bounds {act.low}..{act.high}")
    layout = layout_of(env, name)
    return EnvInfo(
        obs_dim=layout.dim,
        action_low=np.asarray(act.low, dtype=np.float32),
        action_high=np.asarray(act.high, dtype=np.float32),
        layout=layout if layout.is_dict else None,
    )


def check_her(env: gym.Env, info: EnvInfo, name: str) -> None:
    """HER needs a goal-conditioned environment: desired and achieved goals of one size in a
    Dict observation, and `compute_reward` to score a relabelled goal."""
    if info.layout is None:
        raise EnvError(
            f"--her needs a goal-conditioned environment, but '{name}' has a Box observation "
            "space (HER needs a Dict with desired_goal and achieved_goal)"
        )
    if info.layout.goals is None:
        raise EnvError(
            f"--her needs a goal-conditioned environment, but the observations of '{name}' have "
            f"no desired_goal and achieved_goal of one size (keys: {', '.join(info.layout.keys)})"
        )
    if not callable(_wrapper_attr(env, "compute_reward")):
        raise EnvError(
            f"--her needs the environment's compute_reward(achieved_goal, desired_goal, info) to "
            f"score relabelled goals; '{name}' has none"
        )


def _wrapper_attr(env: gym.Env, name: str) -> object:
    try:
        return env.get_wrapper_attr(name)
    except AttributeError:
        return None


def goal_functions(env: gym.Env) -> tuple[object, object]:
    """The env's `compute_reward` and its `compute_terminated` (None where it has none)."""
    return _wrapper_attr(env, "compute_reward"), _wrapper_attr(env, "compute_terminated")
