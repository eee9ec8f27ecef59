"""The training loop, with everything it needs to stop and resume exactly where it was.

The environments are a Gymnasium `SyncVectorEnv` of `num_envs` copies (one by default) whose
automatic reset is disabled: the loop resets a finished environment itself, after storing the
transition with the true final observation and `terminated` (a time-limit cut still bootstraps).
Training episodes are numbered in the order they start, and episode k starts from
`reset(seed=episode_seed(seed, TRAIN_STREAM, k))`, so an episode in progress is rebuilt on resume
by resetting its environment with that seed and replaying its actions.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ddpg import __version__
from ddpg.agent import DDPGAgent, UpdateMetrics
from ddpg.buffer import ReplayBuffer
from ddpg.checkpoints import (
    atomic_write_json,
    latest_checkpoint,
    optimizer_from_files,
    optimizer_to_files,
    save_checkpoint,
    save_model,
)
from ddpg.config import Config
from ddpg.envs import (
    FINAL_EVAL_STREAM,
    PERIODIC_EVAL_STREAM,
    TRAIN_STREAM,
    check_env,
    episode_seed,
    make_env,
)
from ddpg.errors import CheckpointError, ConfigError, EnvError, NonFiniteError
from ddpg.evaluation import EvalResult, evaluate
from ddpg.loggers import Console, CsvLogger, TensorBoardLogger

EPISODE_COLUMNS = [
    "step",
    "episode",
    "return",
    "length",
    "running_avg_100",
    "critic_loss",
    "actor_loss",
    "q_mean",
    "wall_time_s",
]
EVAL_COLUMNS = ["step", "episode", "mean_return", "std_return", "mean_length", "wall_time_s"]
# The best policy is picked by the running average of training returns only once the window
# holds this many episodes, so that one lucky early episode cannot become "best".
MIN_EPISODES_FOR_BEST = 10


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint."""

    def __init__(self, signal_name: str, checkpoint: Path | None) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.checkpoint = checkpoint


class Trainer:
    """Owns the environments, agent, replay buffer, counters and run files of one run."""

    def __init__(
        self,
        config: Config,
        run_dir: Path | None = None,
        env: gym.Env | None = None,
        console: Console | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.console = console or Console(quiet=True)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        if env is not None and config.num_envs > 1:
            raise ConfigError("num_envs > 1 needs an environment id, not an environment object")
        first = env if env is not None else self._make_env()
        self.info = check_env(first)
        self.env = self._vector_env(first)
        self._eval_env: gym.Env | None = None
        self.agent = DDPGAgent(self.info, config)
        self.buffer = ReplayBuffer(
            config.buffer_size,
            self.info.obs_dim,
            self.info.act_dim,
            seed=config.seed + 2,
            device=self.agent.device,
        )
        self._graphed: Any = None
        if config.update_mode == "cudagraph":
            from ddpg.cudagraph import GraphedUpdate

            self._graphed = GraphedUpdate(self.agent, self.buffer, config.batch_size)
        self.rng = np.random.Generator(np.random.PCG64(config.seed + 3))  # warm-up actions
        # Counters, and the episode in progress in each environment.
        n = config.num_envs
        self.step = 0
        self.episode = 0  # episodes finished
        self.episodes_started = 0
        self.learning_transitions = 0  # transitions since learning started: they earn updates
        self.in_episode = np.zeros(n, dtype=bool)
        self.obs = np.zeros((n, self.info.obs_dim), dtype=np.float32)
        self.episode_ids = np.zeros(n, dtype=np.int64)
        self.episode_returns = np.zeros(n, dtype=np.float64)
        self.episode_actions: list[list[np.ndarray]] = [[] for _ in range(n)]
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.best_score = -math.inf
        self.best_step: int | None = None
        self.last_eval: EvalResult | None = None
        self.target_reached = False
        self.stop_requested: str | None = None
        self.elapsed_before = 0.0  # wall time spent in earlier sessions of a resumed run
        self._start_time = time.perf_counter()
        self._sums = self._zero_sums()
        self._rendering = False
        self._progress_total: int | None = config.total_steps
        self._tb: TensorBoardLogger | None = None
        self._tb_purge_step: int | None = None
        self.episode_log: CsvLogger | None = None
        self.eval_log: CsvLogger | None = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.episode_log = CsvLogger(self.run_dir / "metrics.csv", EPISODE_COLUMNS)
            self.eval_log = CsvLogger(self.run_dir / "evaluations.csv", EVAL_COLUMNS)

    # -- environments ------------------------------------------------------------------------
    def _make_env(self, render_mode: str | None = None) -> gym.Env:
        return make_env(self.config.env_id, self.config.max_episode_steps, render_mode)

    def _vector_env(self, first: gym.Env) -> SyncVectorEnv:
        """`first` and num_envs - 1 more copies, stepped together; resets are the loop's job."""
        makers = [lambda: first] + [self._make_env] * (self.config.num_envs - 1)
        return SyncVectorEnv(makers, copy=False, autoreset_mode=AutoresetMode.DISABLED)

    @property
    def eval_env(self) -> gym.Env:
        if self._eval_env is None:
            spec = self.env.envs[0].spec
            if spec is None:
                raise EnvError("evaluation needs an environment registered with Gymnasium")
            self._eval_env = make_env(spec.id, self.config.max_episode_steps)
        return self._eval_env

    def close(self) -> None:
        for env in (self.env, self._eval_env):
            if env is not None:
                env.close()
        for log in (self.episode_log, self.eval_log, self._tb):
            if log is not None:
                log.close()
        self.console.close()

    def _scalars(self, values: dict[str, float | None]) -> None:
        """Send scalars to TensorBoard, when this run writes a run directory with it on."""
        if self.run_dir is None or not self.config.tensorboard:
            return
        if self._tb is None:
            self._tb = TensorBoardLogger(self.run_dir / "tensorboard", self._tb_purge_step)
        self._tb.scalars(self.step, values)

    # -- the loop ----------------------------------------------------------------------------
    def budget_left(self, max_steps: int | None) -> bool:
        c = self.config
        if self.target_reached:
            return False
        if max_steps is not None:
            return self.step < max_steps
        if c.total_steps is not None and self.step >= c.total_steps:
            return False
        return not (c.episodes is not None and self.episode >= c.episodes)

    def run(self, max_steps: int | None = None) -> None:
        """Train until the config's budget (or env step `max_steps`) is spent, the target return
        is reached, or a stop is requested (then a checkpoint is written and
        `TrainingInterrupted` raised)."""
        session_start_step = self.step
        self._progress_total = max_steps if max_steps is not None else self.config.total_steps
        while self.budget_left(max_steps):
            self.train_step()
            if self.stop_requested is not None:
                path = self.save_checkpoint()
                raise TrainingInterrupted(self.stop_requested, path)
        if self.run_dir is not None and self.step > session_start_step:
            self.save_checkpoint()

    def train_step(self) -> None:
        """One step of every environment, the updates it earns, and whatever is due after it."""
        c = self.config
        n = c.num_envs
        if not self.in_episode.all():
            self._start_episodes(~self.in_episode)
        if self.step < c.learning_starts:
            normalised = self.rng.uniform(-1.0, 1.0, (n, self.info.act_dim)).astype(np.float32)
        else:
            normalised = self.agent.policy(self.obs, explore=True)
            if not np.isfinite(normalised).all():
                self._check_sums()  # names the loss when an update diverged
                bad = self.agent.weights_are_finite()
                raise NonFiniteError(
                    f"the actor produced a non-finite action at step {self.step + 1}"
                    + (f" (non-finite weights in {bad})" if bad else "")
                    + "; lower the learning rate or check rewards"
                )
        action = self.agent.to_env(normalised)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        next_obs = np.array(next_obs, dtype=np.float32)  # a copy, as stored: overflow is inf
        reward_ok = np.isfinite(np.asarray(reward, dtype=np.float32)).all()  # stored as float32
        if not (reward_ok and np.isfinite(next_obs).all()):
            what = "observation" if reward_ok else "reward"
            raise NonFiniteError(
                f"the environment returned a non-finite {what} at step {self.step + 1}"
            )
        self.buffer.add(self.obs, normalised, reward, next_obs, terminated)
        self.step += n
        self.episode_returns += reward
        for actions, a in zip(self.episode_actions, action, strict=True):
            actions.append(a)
        self.obs = next_obs

        if self.step >= c.learning_starts and len(self.buffer) >= c.batch_size:
            # The update-to-data ratio: after t learning transitions, floor(t * ratio) updates.
            before = self._updates_earned()
            self.learning_transitions += n
            for _ in range(self._updates_earned() - before):
                self._accumulate(self._update())

        done = terminated | truncated
        if done.any():
            for i in np.flatnonzero(done):
                self._end_episode(int(i))
        if self._crossed(c.eval_every, n):
            self.periodic_evaluation()
        if self.run_dir is not None and self._crossed(c.checkpoint_every, n):
            self.save_checkpoint()
        if self.console.bar:
            recent = self.recent_returns[-1] if self.recent_returns else None
            running = float(np.mean(self.recent_returns)) if recent is not None else None
            self.console.progress(self.step, self._progress_total, self.steps_per_second(), running)

    def _update(self) -> UpdateMetrics:
        if self._graphed is not None:
            return self._graphed()
        return self.agent.update(self.buffer.sample(self.config.batch_size))

    def _updates_earned(self) -> int:
        # The epsilon keeps ratios such as 0.1 from losing an update to rounding (10 * 0.1 < 1).
        return math.floor(self.learning_transitions * self.config.updates_per_step + 1e-9)

    def _crossed(self, every: int, n: int) -> bool:
        """Whether the last `n` steps passed a multiple of `every` (0: never)."""
        return bool(every) and self.step // every != (self.step - n) // every

    def _start_episodes(self, mask: np.ndarray) -> None:
        """Reset the environments in `mask`, each with the seed of the episode it starts."""
        c = self.config
        starts = self.episodes_started
        if c.render_from is not None and starts + 1 >= c.render_from and not self._rendering:
            self.env.close()
            self.env = self._vector_env(self._make_env(render_mode="human"))
            self._rendering = True
        seeds: list[int | None] = [None] * c.num_envs
        for i in np.flatnonzero(mask):
            self.episode_ids[i] = self.episodes_started
            seeds[i] = episode_seed(c.seed, TRAIN_STREAM, self.episodes_started)
            self.episodes_started += 1
            self.episode_returns[i] = 0.0
            self.episode_actions[i] = []
            self.agent.noise.reset(int(i))
        obs, _ = self.env.reset(seed=seeds, options={"reset_mask": mask.copy()})
        self.obs[mask] = np.asarray(obs, dtype=np.float32)[mask]
        self.in_episode[mask] = True
        if not np.isfinite(self.obs[mask]).all():
            raise NonFiniteError(
                "the environment returned a non-finite observation on reset "
                f"(episode {starts + 1}, step {self.step})"
            )

    def _end_episode(self, i: int) -> None:
        c = self.config
        self.episode += 1
        episode_return = float(self.episode_returns[i])
        self.recent_returns.append(episode_return)
        running = float(np.mean(self.recent_returns))
        sums = self._check_sums()
        n = max(sums.pop("updates"), 1.0)
        row = {
            "step": self.step,
            "episode": self.episode,
            "return": episode_return,
            "length": len(self.episode_actions[i]),
            "running_avg_100": running,
            "critic_loss": sums["critic_loss"] / n if sums else None,
            "actor_loss": sums["actor_loss"] / n if sums else None,
            "q_mean": sums["q_mean"] / n if sums else None,
            "wall_time_s": self.elapsed(),
        }
        if self.episode_log is not None:
            self.episode_log.write(row)
        self._scalars(
            {
                "train/episode_return": episode_return,
                "train/running_avg_100": running,
                "train/critic_loss": row["critic_loss"],
                "train/actor_loss": row["actor_loss"],
                "train/q_mean": row["q_mean"],
                "perf/steps_per_s": self.steps_per_second(),
            }
        )
        if not c.eval_every and len(self.recent_returns) >= MIN_EPISODES_FOR_BEST:
            self._consider_best(running)
        if self.episode % c.log_every == 0:
            self.console.print(
                f"episode {self.episode:5d} | step {self.step:8d}"
                f" | return {episode_return:9.1f} | avg100 {running:9.1f}"
                f" | {self.steps_per_second():6.0f} steps/s"
            )
        self.in_episode[i] = False
        self.episode_actions[i] = []

    def periodic_evaluation(self) -> EvalResult:
        c = self.config
        result = evaluate(
            self.agent.act, self.eval_env, c.eval_episodes_during, c.seed, PERIODIC_EVAL_STREAM
        )
        self.last_eval = result
        if self.eval_log is not None:
            self.eval_log.write(
                {
                    "step": self.step,
                    "episode": self.episode,
                    "mean_return": result.mean,
                    "std_return": result.std,
                    "mean_length": float(np.mean(result.lengths)),
                    "wall_time_s": self.elapsed(),
                }
            )
        self._scalars({"eval/mean_return": result.mean, "eval/std_return": result.std})
        improved = self._consider_best(result.mean)
        self.console.print(
            f"eval at step {self.step:8d} | mean {result.mean:9.1f} +- {result.std:7.1f}"
            f" over {len(result.returns)} episodes{' | new best' if improved else ''}"
        )
        if c.target_return is not None and result.mean >= c.target_return:
            self.target_reached = True
            self.console.print(f"target return {c.target_return} reached at step {self.step}")
        return result

    def _consider_best(self, score: float) -> bool:
        if score > self.best_score:
            self.best_score = score
            self.best_step = self.step
            self.agent.snapshot_best()
            return True
        return False

    # -- loss bookkeeping without a host sync per update ---------------------------------------
    def _zero_sums(self) -> dict[str, Any]:
        return {"updates": 0, "critic_loss": 0.0, "actor_loss": 0.0, "q_mean": 0.0}

    def _accumulate(self, m: UpdateMetrics) -> None:
        s = self._sums
        s["updates"] += 1
        s["critic_loss"] = m.critic_loss + s["critic_loss"]
        s["actor_loss"] = m.actor_loss + s["actor_loss"]
        s["q_mean"] = m.q_mean + s["q_mean"]

    def _check_sums(self) -> dict[str, float]:
        """This episode's loss sums as floats; a NaN or inf in any update shows in its sum."""
        sums, self._sums = self._sums, self._zero_sums()
        if not sums["updates"]:
            return {"updates": 0.0}
        out = {k: float(v) for k, v in sums.items()}
        for key in ("critic_loss", "actor_loss", "q_mean"):
            if not math.isfinite(out[key]):
                raise NonFiniteError(
                    f"the {key.replace('_', ' ')} became non-finite during episode "
                    f"{self.episode} (step {self.step}); lower the learning rate or check rewards"
                )
        return out

    # -- timing --------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._start_time

    def steps_per_second(self) -> float:
        return self.step / max(self.elapsed(), 1e-9)

    # -- files -----------------------------------------------------------------------------------
    def model_meta(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "obs_dim": self.info.obs_dim,
            "action_low": self.info.action_low.tolist(),
            "action_high": self.info.action_high.tolist(),
            "step": self.step,
            "library_version": __version__,
        }

    def save_models(self) -> tuple[Path, Path]:
        assert self.run_dir is not None
        final = self.run_dir / "model_final.safetensors"
        best = self.run_dir / "model_best.safetensors"
        save_model(final, network_tensors(self.agent), self.model_meta())
        best_tensors = network_tensors(self.agent)
        best_tensors.update(
            {f"actor.{k}": v for k, v in self.agent.best_or_current_actor().items()}
        )
        meta = self.model_meta() | {
            "best_step": self.best_step,
            "best_score": _finite(self.best_score),
        }
        save_model(best, best_tensors, meta)
        return final, best

    def final_evaluation(self) -> dict[str, Any]:
        """Evaluate the best and the final policy on fresh start states; write evaluation.json."""
        c = self.config
        final_actor = {k: v.clone() for k, v in self.agent.actor.state_dict().items()}
        results: dict[str, Any] = {}
        for name, weights in (("best", self.agent.best_or_current_actor()), ("final", final_actor)):
            self.agent.actor.load_state_dict(weights)
            result = evaluate(
                self.agent.act, self.eval_env, c.eval_episodes, c.seed, FINAL_EVAL_STREAM
            )
            results[name] = result.to_dict()
        self.agent.actor.load_state_dict(final_actor)
        summary = {
            "env_id": c.env_id,
            "steps": self.step,
            "episodes": self.episode,
            "best_step": self.best_step,
            "best_selection": "periodic evaluation" if c.eval_every else "running average of 100",
            "target_reached": self.target_reached,
            "wall_time_s": self.elapsed(),
            **results,
        }
        if self.run_dir is not None:
            atomic_write_json(self.run_dir / "evaluation.json", summary)
        return summary

    # -- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        if self._tb is not None:
            self._tb.flush()
        bad = self.agent.weights_are_finite()
        if bad is not None:
            raise NonFiniteError(f"weights became non-finite ({bad}); the last checkpoint is kept")
        tensors = network_tensors(self.agent)
        opt_meta = {}
        for name, optimizer in self.agent.optimizers().items():
            t, meta = optimizer_to_files(name, optimizer)
            tensors.update(t)
            opt_meta[name] = meta
        if self.agent.best_actor is not None:
            tensors.update({f"best_actor.{k}": v for k, v in self.agent.best_actor.items()})
        arrays = {f"replay_{k}": v for k, v in self.buffer.state_dict().items()}
        arrays["torch_rng"] = torch.get_rng_state().numpy()
        if self.in_episode.any():
            # Every environment's observation, and the actions of the episodes in progress one
            # after the other (state.json has each one's length).
            arrays["episode_obs"] = self.obs
            arrays["episode_actions"] = np.asarray(
                [a for actions in self.episode_actions for a in actions], dtype=np.float32
            ).reshape(-1, self.info.act_dim)
        py_state = random.getstate()
        state = {
            "library_version": __version__,
            "config": self.config.to_dict(),
            "step": self.step,
            "episode": self.episode,
            "updates": self.agent.updates,
            "episodes_started": self.episodes_started,
            "learning_transitions": self.learning_transitions,
            "in_episode": self.in_episode.tolist(),
            "episode_ids": self.episode_ids.tolist(),
            "episode_returns": self.episode_returns.tolist(),
            "episode_lengths": [len(actions) for actions in self.episode_actions],
            "recent_returns": list(self.recent_returns),
            "best_score": _finite(self.best_score),
            "best_step": self.best_step,
            "target_reached": self.target_reached,
            "elapsed_s": self.elapsed(),
            "optimizers": opt_meta,
            "noise": self.agent.noise.state_dict(),
            "rng": self.rng.bit_generator.state,
            "python_rng": [py_state[0], list(py_state[1]), py_state[2]],
            "loss_sums": {k: float(v) for k, v in self._sums.items()},
            "log_positions": {
                "metrics": self.episode_log.position() if self.episode_log else 0,
                "evaluations": self.eval_log.position() if self.eval_log else 0,
            },
        }
        return save_checkpoint(self.run_dir / "checkpoints", self.step, tensors, arrays, state)

    def restore(self) -> tuple[Path, list[str]]:
        """Load the newest valid checkpoint of this run; return it and the ones skipped."""
        assert self.run_dir is not None
        path, (tensors, arrays, state), skipped = latest_checkpoint(self.run_dir / "checkpoints")
        try:
            self._restore(tensors, arrays, state)
        except CheckpointError:
            raise
        except Exception as exc:  # checksums passed, so the contents are foreign or hand-made
            raise CheckpointError(f"{path}: does not match this run ({exc})") from None
        return path, skipped

    def _restore(
        self, tensors: dict[str, torch.Tensor], arrays: dict[str, np.ndarray], state: dict[str, Any]
    ) -> None:
        agent = self.agent
        load_network_tensors(agent, tensors)
        for name, optimizer in agent.optimizers().items():
            optimizer_from_files(name, optimizer, tensors, state["optimizers"][name])
        best = {
            k[len("best_actor.") :]: v for k, v in tensors.items() if k.startswith("best_actor.")
        }
        agent.best_actor = best or None
        agent.updates = int(state["updates"])
        agent.noise.load_state_dict(state["noise"])
        self.buffer.load_state_dict(
            {k[len("replay_") :]: v for k, v in arrays.items() if k.startswith("replay_")}
        )
        torch.set_rng_state(torch.as_tensor(arrays["torch_rng"], dtype=torch.uint8))
        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        self.rng.bit_generator.state = state["rng"]
        self.step = int(state["step"])
        self.episode = int(state["episode"])
        self.recent_returns = deque(state["recent_returns"], maxlen=100)
        self.best_score = -math.inf if state["best_score"] is None else state["best_score"]
        self.best_step = state["best_step"]
        self.target_reached = bool(state["target_reached"])
        self.elapsed_before = float(state["elapsed_s"])
        self._start_time = time.perf_counter()
        self._sums = self._zero_sums()
        sums = state["loss_sums"]
        self._sums["updates"] = int(sums["updates"])
        for key in ("critic_loss", "actor_loss", "q_mean"):
            self._sums[key] = torch.tensor(sums[key], dtype=torch.float32)
        positions = state["log_positions"]
        for log, key in ((self.episode_log, "metrics"), (self.eval_log, "evaluations")):
            if log is not None and not 0 <= int(positions[key]) <= log.path.stat().st_size:
                raise ValueError(f"{key} log position {positions[key]} is outside {log.path}")
        if self.episode_log is not None:
            self.episode_log.truncate(int(positions["metrics"]))
        if self.eval_log is not None:
            self.eval_log.truncate(int(positions["evaluations"]))
        self._tb_purge_step = self.step + 1  # drop events logged after this checkpoint
        self._restore_episodes(arrays, state)
        if self._graphed is not None:
            self._graphed.invalidate()  # the optimisers' state tensors were replaced

    def _restore_episodes(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Rebuild each environment's episode in progress: reset the environment with the
        episode's seed and replay its actions, checking that it ends where it was."""
        c = self.config
        n = c.num_envs
        if isinstance(state["in_episode"], bool):  # written before vectorised runs: one env
            state = state | {
                "in_episode": [state["in_episode"]],
                "episodes_started": self.episode + int(state["in_episode"]),
                "learning_transitions": int(state["updates"] / c.updates_per_step),
                "episode_ids": [self.episode],
                "episode_returns": [state["episode_return"]],
                "episode_lengths": [len(arrays.get("episode_actions", []))],
            }
        in_episode = np.array(state["in_episode"], dtype=bool)
        lengths = [int(x) for x in state["episode_lengths"]]
        if in_episode.shape != (n,) or len(lengths) != n or min(lengths) < 0:
            raise ValueError(f"the checkpoint's episodes do not fit num_envs {n}")
        self.episodes_started = int(state["episodes_started"])
        self.learning_transitions = int(state["learning_transitions"])
        self.episode_ids = np.array(state["episode_ids"], dtype=np.int64).reshape(n)
        self.episode_returns = np.array(state["episode_returns"], dtype=np.float64).reshape(n)
        self.in_episode = np.zeros(n, dtype=bool)
        self.episode_actions = [[] for _ in range(n)]
        if not in_episode.any():
            return
        # A first reset of every environment readies the vector env for partial resets later;
        # each episode still starts from its own seed below or in _start_episodes.
        self.env.reset()
        obs = np.asarray(arrays["episode_obs"], dtype=np.float32).reshape(n, self.info.obs_dim)
        actions = np.asarray(arrays["episode_actions"], dtype=np.float32)
        if actions.shape != (sum(lengths), self.info.act_dim):
            raise ValueError(f"episode actions of shape {actions.shape} do not fit {lengths}")
        offset = 0
        for i in range(n):
            own = actions[offset : offset + lengths[i]]
            offset += lengths[i]
            if not in_episode[i]:
                continue
            env = self.env.envs[i]
            replayed, _ = env.reset(
                seed=episode_seed(c.seed, TRAIN_STREAM, int(self.episode_ids[i]))
            )
            for action in own:
                replayed, *_ = env.step(action)
            if not np.array_equal(np.asarray(replayed, dtype=np.float32), obs[i]):
                raise CheckpointError(
                    "the environment did not replay the interrupted episode identically "
                    "(non-deterministic environment); cannot resume mid-episode"
                )
            self.episode_actions[i] = list(own)
            self.obs[i] = obs[i]
            self.in_episode[i] = True


def network_tensors(agent: DDPGAgent) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value
        for name, net in agent.networks().items()
        for key, value in net.state_dict().items()
    }


def load_network_tensors(agent: DDPGAgent, tensors: dict[str, torch.Tensor]) -> None:
    for name, net in agent.networks().items():
        prefix = name + "."
        sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        net.load_state_dict(sub)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_config(run_dir: Path, config: Config, extra: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "config.json", {"config": config.to_dict(), **extra})


def read_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{run_dir} is not a run directory (no config.json)") from None
    except (OSError, ValueError):
        raise CheckpointError(f"{path} is unreadable") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise CheckpointError(f"{path} is not a run config")
    return data
