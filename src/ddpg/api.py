"""The Python API: construct, learn, predict, evaluate, save, load.

Inference goes through `ddpg.Policy`; the training stack (environments, replay buffer,
optimisers) is built only when the model learns or explores.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator, Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.callbacks import Callback, Hooks
from ddpg.checkpoints import load_model, model_meta, network_tensors, save_model, subtree
from ddpg.config import MAX_EVAL_EPISODES, MAX_STEPS, Config, shown
from ddpg.envs import FINAL_EVAL_STREAM, check_env, make_env
from ddpg.errors import CheckpointError, ConfigError, RunDirError
from ddpg.evaluation import EvalResult, evaluate
from ddpg.loggers import Console
from ddpg.observations import as_flat
from ddpg.policy import Policy, read_model_meta
from ddpg.runconfig import write_config

if TYPE_CHECKING:
    from ddpg.agent import DDPGAgent
    from ddpg.train import Trainer


# Config fields that shape the networks: a loaded model's weights fix them (algo: TD3 has two
# critics, DDPG one).
ARCHITECTURE_FIELDS = ("hidden_size", "hidden_size_2", "batch_norm", "activation", "algo")


class DDPG:
    """A DDPG learner for one environment.

    >>> model = DDPG("Pendulum-v1", learning_starts=1000)   # or DDPG(env, config)
    >>> model.learn(15_000)
    >>> action = model.predict(obs)                          # deterministic by default
    >>> model.save("pendulum.safetensors"); DDPG.load("pendulum.safetensors")
    >>> DDPG("Pendulum-v1", run_dir="runs/p").learn(15_000, callback=print)  # a run directory
    >>> DDPG.resume("runs/p").learn(5_000)                 # continued exactly, in a new process
    """

    def __init__(
        self,
        env: str | gym.Env | None = None,
        config: Config | None = None,
        run_dir: str | Path | None = None,
        verbose: bool = False,
        **overrides: Any,
    ) -> None:
        if env is not None and not isinstance(env, (str, gym.Env)):
            raise TypeError(f"env must be an environment id or a gymnasium.Env, got {env!r}")
        if config is not None and not isinstance(config, Config):
            hint = (
                " (for a preset, pass ddpg.preset_config(name))" if isinstance(config, str) else ""
            )
            raise TypeError(f"config must be a ddpg.Config, got {config!r}{hint}")
        config = config or Config()
        if run_dir is not None:
            if not str(run_dir).strip():
                raise ValueError("run_dir is empty; give a directory or None")
            _check_new_run_dir(Path(run_dir))
        env_obj: gym.Env | None = None
        if isinstance(env, str):
            overrides["env_id"] = env
        elif env is not None:
            if env.spec is not None:
                overrides.setdefault("env_id", env.spec.id)
            env_obj = env
        self._config = config.replace(**overrides) if overrides else config
        self._run_dir = run_dir
        self._verbose = verbose
        self._env = env_obj
        self._trainer: Trainer | None = None
        self._loaded: dict[str, torch.Tensor] | None = None  # weights of a loaded model
        self._policy: Policy | None = None
        self._own_eval_env: gym.Env | None = None
        self._trainer_now()  # builds and checks everything, as before any learning

    # -- the parts, built when needed -------------------------------------------------------------
    def _trainer_now(self) -> Trainer:
        if self._trainer is None:
            from ddpg.train import Trainer

            console = Console(quiet=not self._verbose)
            self._trainer = Trainer(self._config, self._run_dir, env=self._env, console=console)
            if self._run_dir is not None:  # resumable, as a run of `ddpg train`
                write_config(Path(self._run_dir), self._config.to_dict(), {"preset": None})
            if self._loaded is not None:
                for name, net in self._trainer.agent.networks().items():
                    try:
                        net.load_state_dict(subtree(self._loaded, name))
                    except (RuntimeError, KeyError) as exc:
                        raise CheckpointError(f"the model's {name} does not fit ({exc})") from None
            self._policy = self._trainer.policy
        return self._trainer

    @property
    def config(self) -> Config:
        return self._config

    @property
    def trainer(self) -> Trainer:
        return self._trainer_now()

    @property
    def agent(self) -> DDPGAgent:
        return self._trainer_now().agent

    @property
    def policy(self) -> Policy:
        """The deterministic policy, in environment units (the live actor while learning)."""
        return self._policy if self._policy is not None else self._trainer_now().policy

    @property
    def num_steps(self) -> int:
        return self._trainer.state.step if self._trainer is not None else 0

    # -- using it ---------------------------------------------------------------------------------
    def learn(
        self, total_steps: int, callback: Callback | Sequence[Callback] | None = None
    ) -> DDPG:
        """Train for `total_steps` more environment steps.

        `callback`: a callable, or a list of them, called with a `ddpg.TrainingEvent` after every
        finished episode and every periodic evaluation. One that returns False stops the run
        after that step, as Ctrl-C does; one that raises stops it the same way, and its exception
        is then re-raised here. With a run directory, learn ends as `ddpg train` does however it
        ends: a checkpoint, model_final/model_best.safetensors and evaluation.json (the run can
        be continued with `DDPG.resume`); after Ctrl-C, KeyboardInterrupt is raised then.
        """
        from ddpg.runs import finish_run
        from ddpg.train import TrainingInterrupted

        if isinstance(total_steps, bool) or not isinstance(total_steps, Integral):
            raise TypeError(f"learn() needs an int number of steps, got {total_steps!r}")
        if total_steps < 1:
            raise ValueError(f"learn() needs total_steps >= 1, got {total_steps}")
        if self.num_steps + total_steps > MAX_STEPS:  # the config's budget bound (config.py)
            raise ValueError(
                f"learn() needs total_steps <= {MAX_STEPS - self.num_steps:,} (a run takes at "
                f"most 10^10 steps), got {shown(total_steps)}"
            )
        hooks = Hooks.of(callback)
        trainer = self._trainer_now()
        trainer.hooks = hooks  # for this call only
        try:
            with _ctrl_c_requests_stop(trainer):
                trainer.run(max_steps=trainer.state.step + int(total_steps))
        except TrainingInterrupted:
            pass  # a callback's or Ctrl-C's stop: the checkpoint is written
        finally:
            stopped, trainer.stop_requested, trainer.hooks = trainer.stop_requested, None, Hooks()
        if self._run_dir is not None:
            # The final evaluation builds a policy, whose initialisation draws from torch's RNG:
            # it is put back, so that learning in several calls is learning in one.
            with torch.random.fork_rng(devices=[]):
                finish_run(trainer)
        if hooks.error is not None:
            raise hooks.error
        if stopped == "SIGINT":
            raise KeyboardInterrupt
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action(s) in environment units for one observation (obs_dim,) or a batch
        (N, obs_dim); ValueError if `obs` has another shape or holds NaN or inf."""
        obs = self.policy.check(obs)
        if deterministic:
            return self.policy(obs)
        agent = self.agent
        if obs.ndim == 2 and len(obs) != self._config.num_envs:
            raise ValueError(
                f"exploring predict takes one observation per environment ({self._config.num_envs})"
            )
        return agent.act(obs, explore=True)

    def evaluate(self, episodes: int = 10, env: gym.Env | None = None) -> EvalResult:
        """Returns of the deterministic policy over `episodes` fresh episodes."""
        if isinstance(episodes, bool) or not isinstance(episodes, Integral):
            raise TypeError(f"evaluate() needs an int number of episodes, got {episodes!r}")
        if episodes < 1:
            raise ValueError(f"evaluate() needs episodes >= 1, got {episodes}")
        if episodes > MAX_EVAL_EPISODES:
            raise ValueError(
                f"evaluate() needs episodes <= {MAX_EVAL_EPISODES:,}, got {shown(episodes)}"
            )
        _check_env_arg(env, "evaluate()")
        if env is not None:
            env = as_flat(env, env.spec.id if env.spec else type(env).__name__)
        if env is None and self._trainer is not None:
            env = self._trainer.eval_env
        elif env is None:
            if self._own_eval_env is None:
                self._own_eval_env = make_env(self._config.env_id, self._config.max_episode_steps)
            env = self._own_eval_env
        c = self._config
        return evaluate(self.policy, env, int(episodes), c.seed, FINAL_EVAL_STREAM)

    def save(self, path: str | Path) -> None:
        """Write the networks (four, six for TD3) and the config to one safetensors file (its
        folder is created). It replaces an existing file only if that is a model file of this
        library, and never a file that a run directory needs."""
        from ddpg.outputs import check_output, check_outside_runs

        path = Path(path)
        check_output(path, "DDPG model", to_force="remove it first or choose another path")
        check_outside_runs(path, own=[self._run_dir] if self._run_dir is not None else [])
        trainer = self._trainer_now()
        info = trainer.info
        meta = model_meta(
            self._config.to_dict(),
            info.obs_dim,
            info.action_low,
            info.action_high,
            self.num_steps,
            info.obs_layout.to_meta(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(path, network_tensors(trainer.agent.networks()), meta)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | None = None, **overrides: Any) -> DDPG:
        """A model saved by `save` (or a run's model_*.safetensors), ready to predict or learn.
        Predicting needs no environment; learning builds the training stack on first use."""
        from ddpg.links import check_model_file

        _check_env_arg(env, "load()")
        check_model_file(Path(path))
        tensors, meta = load_model(Path(path))
        config, layout, low, high = read_model_meta(path, meta)
        for name in ARCHITECTURE_FIELDS:
            if name in overrides and overrides[name] != getattr(config, name):
                raise ConfigError(
                    f"{name} cannot be changed when loading a model: its networks were built "
                    f"with {name}={getattr(config, name)!r}"
                )
        config = config.replace(**overrides)
        if env is not None:
            info = check_env(env)
            if (
                info.obs_layout != layout
                or not np.array_equal(info.action_low, low)
                or not np.array_equal(info.action_high, high)
            ):
                raise CheckpointError(f"{path} was trained on spaces that differ from this env")
        model = cls._around(config, env=env)
        model._loaded = tensors
        model._policy = Policy.from_tensors(config, layout, low, high, tensors)
        return model

    @classmethod
    def resume(cls, run_dir: str | Path, verbose: bool = False) -> DDPG:
        """The run in `run_dir` (of `learn` with a run_dir, or of `ddpg train`) restored from
        its newest valid checkpoint: `learn` goes on exactly as if it had never stopped. A
        damaged newer checkpoint is set aside with a warning. The run directory is locked while
        a model holds it, so resume a stopped model's run in a new process (or after
        `model.trainer.close()`)."""
        from ddpg.runs import resume_run

        run_dir = Path(run_dir)
        trainer, _, skipped = resume_run(run_dir, {}, Console(quiet=not verbose))
        for reason in skipped:
            warnings.warn(f"skipped a damaged checkpoint: {reason}", stacklevel=2)
        model = cls._around(trainer.config, run_dir=run_dir, verbose=verbose)
        model._trainer, model._policy = trainer, trainer.policy
        return model

    @classmethod
    def _around(
        cls,
        config: Config,
        run_dir: Path | None = None,
        verbose: bool = False,
        env: gym.Env | None = None,
    ) -> DDPG:
        """A model of `config` with nothing built yet (`load` and `resume` fill it in)."""
        model = cls.__new__(cls)
        model._config, model._run_dir, model._verbose, model._env = config, run_dir, verbose, env
        model._trainer, model._loaded, model._policy, model._own_eval_env = None, None, None, None
        return model


@contextlib.contextmanager
def _ctrl_c_requests_stop(trainer: Trainer) -> Iterator[None]:
    """While `trainer` runs, Ctrl-C asks it to stop after the current step, as a callback's
    False does (a second Ctrl-C stops at once). Only where Ctrl-C would raise KeyboardInterrupt:
    in the main thread, and unless the program handles SIGINT itself."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def request_stop(_signum: int, _frame: Any) -> None:
        if trainer.stop_requested is not None:
            raise KeyboardInterrupt
        trainer.stop_requested = "SIGINT"

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_env_arg(env: Any, where: str) -> None:
    if env is not None and not isinstance(env, gym.Env):
        hint = " (make one with gymnasium.make)" if isinstance(env, str) else ""
        raise TypeError(f"{where} needs env to be a gymnasium.Env, got {env!r}{hint}")


def _check_new_run_dir(run_dir: Path) -> None:
    """A model's run directory is new, and inside no other run or sweep: an existing one holds
    another run, whose metrics and checkpoints it would mix with (and whose checkpoints
    retention would delete)."""
    from ddpg.outputs import check_outside_runs

    if (run_dir.exists() or run_dir.is_symlink()) and not run_dir.is_dir():
        raise RunDirError(f"run_dir {run_dir} exists and is not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RunDirError(
            f"run_dir {run_dir} is not empty; give a new directory (a run is continued with "
            "`ddpg train --resume`)"
        )
    check_outside_runs(run_dir)
