"""The training loop: act, step, store, update, end episodes, evaluate, checkpoint.

The environments are a Gymnasium `SyncVectorEnv` of `num_envs` copies (one by default) whose
automatic reset is disabled: the loop resets a finished environment itself, after storing the
transition with the true final observation and `terminated` (a time-limit cut still bootstraps).
Training episodes are numbered in the order they start, and episode k starts from
`reset(seed=episode_seed(seed, TRAIN_STREAM, k))`, which is what lets a checkpoint rebuild an
episode in progress (`Trainer.load_state_dict`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import torch

from ddpg.agent import DDPGAgent, UpdateMetrics, episode_means, resolve_device
from ddpg.buffer import ReplayBuffer
from ddpg.callbacks import Hooks, TrainingEvent
from ddpg.checkpoints import CheckpointContents
from ddpg.config import Config
from ddpg.envs import (
    PERIODIC_EVAL_STREAM,
    TRAIN_STREAM,
    EnvInfo,
    check_env,
    check_her,
    episode_seed,
    goal_functions,
    make_env,
    vector_env,
)
from ddpg.errors import CheckpointError, ConfigError, EnvError, NonFiniteError
from ddpg.evaluation import EvalResult, evaluate
from ddpg.guards import action_error, check_losses, check_reset, check_transition
from ddpg.her import HerReplayBuffer
from ddpg.lock import RunLock
from ddpg.loggers import Console, RunLogger
from ddpg.observations import as_flat
from ddpg.policy import Policy
from ddpg.resources import check_memory
from ddpg.resume import restore_checkpoint, write_checkpoint
from ddpg.state import TrainState

if TYPE_CHECKING:
    from ddpg.cudagraph import GraphedUpdate

# Without periodic evaluation the best policy is picked by the running average of training
# returns, once the window holds this many episodes (one lucky early episode cannot be "best").
MIN_EPISODES_FOR_BEST = 10


class TrainingInterrupted(Exception):
    """Training stopped on a signal (or a callback's request: "callback") after writing a
    checkpoint."""

    def __init__(self, signal_name: str, checkpoint: Path | None) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.checkpoint = checkpoint


class Trainer:
    """One run: its environments, agent, replay buffer, state and logger, and the loop."""

    def __init__(
        self,
        config: Config,
        run_dir: Path | None = None,
        env: gym.Env | None = None,
        console: Console | None = None,
    ) -> None:
        self.config = c = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if c.torch_threads:
            torch.set_num_threads(c.torch_threads)
        if env is not None and c.num_envs > 1:
            raise ConfigError("num_envs > 1 needs an environment id, not an environment object")
        first = env if env is not None else make_env(c.env_id, c.max_episode_steps)
        self.info = check_env(first)
        first = as_flat(first, c.env_id)  # a Dict observation, concatenated (ddpg.observations)
        if c.her:
            check_her(first, self.info, c.env_id)
        check_memory(c, self.info.obs_dim, self.info.act_dim, resolve_device(c.device))
        self.env = vector_env(first, c.num_envs, c.env_id, c.max_episode_steps)
        self.agent = DDPGAgent(self.info, c)
        self.buffer = _replay_buffer(c, self.info, first, self.agent.device)
        self.graphed = (
            _graphed_update(self.agent, self.buffer) if c.update_mode != "eager" else None
        )
        self.rng = np.random.Generator(np.random.PCG64(c.seed + 3))  # warm-up actions
        # The live actor (and normaliser), deterministic, in env units.
        self.policy = Policy(self.agent.actor, c, self.agent.obs_norm, self.info.obs_layout)
        self.state = TrainState.new(c.num_envs, self.info.obs_dim)
        self.lock = RunLock.create(self.run_dir) if self.run_dir is not None else None
        self.log = RunLogger(self.run_dir, c, console or Console(quiet=True))
        self._eval_env: gym.Env | None = None
        self._rendering = False
        self.stop_requested: str | None = None
        self.hooks = Hooks()  # the callbacks of one DDPG.learn call
        self.restart_clock(self.state)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, max_steps: int | None = None) -> None:
        """Train until the config's budget (or env step `max_steps`) is spent, the target return
        is reached, or a stop is requested (then a checkpoint is written and
        `TrainingInterrupted` raised)."""
        start = self.state.step
        total = max_steps if max_steps is not None else self.config.total_steps
        while self._budget_left(max_steps):
            self.train_step(total)
            if self.stop_requested is not None:
                raise TrainingInterrupted(self.stop_requested, self.save_checkpoint())
        if self.run_dir is not None and self.state.step > start:
            self.save_checkpoint()

    def train_step(self, total: int | None = None) -> None:
        """One step of every environment, the updates it earns, and whatever is due after it."""
        c, s = self.config, self.state
        if not s.in_episode.all():
            self._start_episodes(~s.in_episode)
        # 1. Act: uniformly random until learning starts, then the actor plus exploration noise.
        normalised = self._act()
        action = self.agent.to_env(normalised)
        # 2. Step every environment.
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        next_obs = np.array(next_obs, dtype=np.float32)  # a copy, as stored: overflow is inf
        check_transition(next_obs, reward, s.step + 1)
        # 3. Store the transitions, with `terminated`: a time-limit cut still bootstraps. The
        #    observation normaliser (with normalize_obs) learns from what was collected.
        self.buffer.add(s.obs, normalised, reward, next_obs, terminated)
        self.agent.observe(next_obs)
        s.record_step(action, reward, next_obs)
        # 4. Update as many times as the update-to-data ratio has earned.
        if s.step >= c.learning_starts and len(self.buffer) >= c.batch_size:
            for _ in range(s.earn_updates(c.num_envs, c.updates_per_step)):
                s.add_update(self._update())
        # 5. End the episodes that finished.
        for i in np.flatnonzero(terminated | truncated):
            self._end_episode(int(i))
        # 6. Evaluate, and 7. checkpoint, when due.
        if self._crossed(c.eval_every):
            self.periodic_evaluation()
        if self.run_dir is not None and self._crossed(c.checkpoint_every):
            self.save_checkpoint()
        if self.log.console.bar:
            self.log.progress(s.step, total, self.steps_per_second(), s.running_return)

    def _budget_left(self, max_steps: int | None) -> bool:
        c, s = self.config, self.state
        if s.target_reached:
            return False
        if max_steps is not None:
            return s.step < max_steps
        if c.total_steps is not None and s.step >= c.total_steps:
            return False
        return not (c.episodes is not None and s.episode >= c.episodes)

    def _act(self) -> np.ndarray:
        c, s = self.config, self.state
        if s.step < c.learning_starts:
            return self.rng.uniform(-1.0, 1.0, (c.num_envs, self.info.act_dim)).astype(np.float32)
        normalised = self.agent.policy(s.obs, explore=True)
        if not np.isfinite(normalised).all():
            check_losses(s.loss_sums, s.episode, s.step)  # names the loss when an update diverged
            raise action_error(s.step + 1, self.agent.non_finite_weights())
        return normalised

    def _update(self) -> UpdateMetrics:
        index = self.state.updates  # TD3's delay is derived from the update count
        if self.graphed is not None:
            return self.graphed(index)
        return self.agent.update(self.buffer.sample(self.config.batch_size), index)

    def _crossed(self, every: int) -> bool:
        """Whether the last vector step passed a multiple of `every` (0: never)."""
        step = self.state.step
        return bool(every) and step // every != (step - self.config.num_envs) // every

    def _start_episodes(self, mask: np.ndarray) -> None:
        """Reset the environments in `mask`, each with the seed of the episode it starts."""
        c, s = self.config, self.state
        first = s.episodes_started + 1
        if c.render_from is not None and first >= c.render_from and not self._rendering:
            self.env.close()
            shown = make_env(c.env_id, c.max_episode_steps, render_mode="human")
            self.env = vector_env(shown, c.num_envs, c.env_id, c.max_episode_steps)
            self._rendering = True
        for i in np.flatnonzero(mask):
            self.agent.noise.reset(int(i))
        seeds = s.start_episodes(mask, c.seed)
        obs, _ = self.env.reset(seed=seeds, options={"reset_mask": mask.copy()})
        s.obs[mask] = np.asarray(obs, dtype=np.float32)[mask]
        check_reset(s.obs[mask], first, s.step)

    def _end_episode(self, i: int) -> None:
        s = self.state
        self.buffer.end_episode(i)  # HER relabels within finished episodes
        episode_return, length = s.end_episode(i)
        sums, s.loss_sums = check_losses(s.loss_sums, s.episode, s.step), {}
        row = {"step": s.step, "episode": s.episode, "return": episode_return, "length": length}
        row |= {"running_avg_100": s.running_return}
        row |= episode_means(sums)
        self.log.episode(row | {"wall_time_s": self.elapsed()}, self.steps_per_second())
        if not self.config.eval_every and len(s.recent_returns) >= MIN_EPISODES_FOR_BEST:
            self._consider_best(row["running_avg_100"])
        self._notify(
            TrainingEvent("episode", s.step, s.episode, episode_return, run_dir=self.run_dir)
        )

    def periodic_evaluation(self) -> EvalResult:
        c, s = self.config, self.state
        result = evaluate(
            self.policy, self.eval_env, c.eval_episodes_during, c.seed, PERIODIC_EVAL_STREAM
        )
        improved = self._consider_best(result.mean)
        row = {"step": s.step, "episode": s.episode, "mean_return": result.mean}
        row |= {"std_return": result.std, "mean_length": float(np.mean(result.lengths))}
        row |= {"success_rate": result.success_rate}
        self.log.evaluation(row | {"wall_time_s": self.elapsed()}, len(result.returns), improved)
        if c.target_return is not None and result.mean >= c.target_return:
            s.target_reached = True
            self.log.line(f"target return {c.target_return} reached at step {s.step}")
        self._notify(
            TrainingEvent(
                "evaluation",
                s.step,
                s.episode,
                mean_return=result.mean,
                std_return=result.std,
                success_rate=result.success_rate,
                run_dir=self.run_dir,
            )
        )
        return result

    def _notify(self, event: TrainingEvent) -> None:
        """Pass `event` to the callbacks; one that returns False (or raises) stops the run after
        this step, as a signal does."""
        if self.hooks.callbacks and not self.hooks.call(event):
            self.stop_requested = self.stop_requested or "callback"

    def _consider_best(self, score: float) -> bool:
        if score <= self.state.best_score:
            return False
        self.state.best_score, self.state.best_step = score, self.state.step
        self.agent.snapshot_best()
        return True

    @property
    def eval_env(self) -> gym.Env:
        """A separate environment for evaluations, made on first use."""
        if self._eval_env is None:
            spec = self.env.envs[0].spec
            if spec is None:
                raise EnvError("evaluation needs an environment registered with Gymnasium")
            self._eval_env = make_env(spec.id, self.config.max_episode_steps)
        return self._eval_env

    # -- time, checkpoints, closing ----------------------------------------------------------------
    def restart_clock(self, state: TrainState) -> None:
        """Adopt `state` (a restored one, on resume) and time this session from now."""
        self.state = state
        self._session_start = time.perf_counter()

    def elapsed(self) -> float:
        """Wall-clock seconds of training over every session of the run (`state.elapsed_s`
        holds those of the sessions before this one)."""
        return self.state.elapsed_s + time.perf_counter() - self._session_start

    def steps_per_second(self) -> float:
        return self.state.step / max(self.elapsed(), 1e-9)

    def save_checkpoint(self) -> Path | None:
        """Checkpoint the run into RUN_DIR/checkpoints/step-N/ (None without a run directory);
        weights gone non-finite are refused, and the last checkpoint is kept."""
        if self.run_dir is None:
            return None
        bad = self.agent.non_finite_weights()
        if bad is not None:
            raise NonFiniteError(f"weights became non-finite ({bad}); the last checkpoint is kept")
        return write_checkpoint(self.run_dir, self.config, self.state_dict())

    def restore(self) -> tuple[Path, list[str]]:
        """Load the newest valid checkpoint of this run; return it and the ones skipped."""
        assert self.run_dir is not None
        return restore_checkpoint(self.run_dir, self.config, self.load_state_dict)

    def state_dict(self) -> CheckpointContents:
        """The whole run, as a checkpoint holds it: each part's own state (the agent's, the
        `TrainState`, the replay buffer's under `replay_*`), and what the Trainer itself holds:
        torch's RNG, the warm-up generator, the log files' positions and the training time of
        every session so far. Tensors and arrays may be the parts' live storage: save or load
        them before training goes on."""
        agent = self.agent.state_dict()
        values, arrays = self.state.to_files()
        arrays |= {f"replay_{k}": v for k, v in self.buffer.state_dict().items()}
        arrays |= {"torch_rng": torch.get_rng_state().numpy()} | agent.arrays
        values |= {"elapsed_s": self.elapsed()} | agent.values  # this session's time too
        values |= {"rng": self.rng.bit_generator.state, "log_positions": self.log.positions()}
        return CheckpointContents(agent.tensors, arrays, values)

    def load_state_dict(self, contents: CheckpointContents) -> None:
        """Continue from what `state_dict` gave: every part loads its own, the episodes in
        progress are replayed into the environments, the clock goes on from the saved time and
        a captured CUDA graph is recaptured. ValueError, KeyError or TypeError if `contents`
        do not fit this run; CheckpointError if an episode does not replay identically."""
        c, info = self.config, self.info
        _, arrays, values = contents
        state = TrainState.from_files(values, arrays, c.num_envs, info.obs_dim, info.act_dim)
        self.agent.load_state_dict(contents)
        self.buffer.load_state_dict(
            {k[len("replay_") :]: v for k, v in arrays.items() if k.startswith("replay_")}
        )
        torch.set_rng_state(torch.as_tensor(arrays["torch_rng"], dtype=torch.uint8))
        self.rng.bit_generator.state = values["rng"]
        self.log.rewind(values["log_positions"], state.step)
        self._replay_episodes(state)
        self.restart_clock(state)
        if self.graphed is not None:
            self.graphed.invalidate()  # the optimisers' state tensors were replaced

    def _replay_episodes(self, state: TrainState) -> None:
        """Rebuild each environment's episode in progress: reset the environment with the
        episode's seed and replay its actions, checking that it ends where it was."""
        if not state.in_episode.any():
            return
        # A first reset of every environment readies the vector env for partial resets later;
        # each episode still starts from its own seed below or when the loop starts it.
        self.env.reset()
        for i in np.flatnonzero(state.in_episode):
            env = self.env.envs[i]
            seed = episode_seed(self.config.seed, TRAIN_STREAM, int(state.episode_ids[i]))
            replayed, _ = env.reset(seed=seed)
            for action in state.episode_actions[i]:
                replayed, *_ = env.step(action)
            if not np.array_equal(np.asarray(replayed, dtype=np.float32), state.obs[i]):
                raise CheckpointError(
                    "the environment did not replay the interrupted episode identically "
                    "(non-deterministic environment); cannot resume mid-episode"
                )

    def close(self) -> None:
        for env in (self.env, self._eval_env):
            if env is not None:
                env.close()
        self.log.close()
        if self.lock is not None:
            self.lock.release()


def _replay_buffer(
    config: Config, info: EnvInfo, env: gym.Env, device: torch.device
) -> ReplayBuffer | HerReplayBuffer:
    """Uniform replay, or HER's episode replay with `env`'s reward function (config.her)."""
    c = config
    if not c.her:
        return ReplayBuffer(c.buffer_size, info.obs_dim, info.act_dim, c.seed + 2, device)
    assert info.layout is not None and info.layout.goals is not None  # check_her
    compute_reward, compute_terminated = goal_functions(env)
    return HerReplayBuffer(
        c.buffer_size,
        info.obs_dim,
        info.act_dim,
        c.num_envs,
        info.layout.goals,
        compute_reward,  # type: ignore[arg-type]
        compute_terminated,  # type: ignore[arg-type]
        c.her_strategy,
        c.her_k,
        c.seed + 2,
        device,
    )


def _graphed_update(agent: DDPGAgent, buffer: ReplayBuffer) -> GraphedUpdate:
    """The update as a replayed CUDA graph (imported only for update_mode 'cudagraph')."""
    from ddpg.cudagraph import GraphedUpdate

    return GraphedUpdate(agent, buffer, agent.config.batch_size)
