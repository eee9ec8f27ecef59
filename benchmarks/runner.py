"""One measured training run of ours or of Stable-Baselines3's DDPG or TD3, and its JSON record.

Every `eval_every` env steps and at the end of the budget the policy plays `eval_episodes`
deterministic episodes on a separate `gymnasium.make(env)`, episode i reset with seed
`episode_seed(seed, EVAL_STREAM, i)`: the same start states for both libraries. Both clocks (wall
`time.perf_counter`, CPU `time.process_time`) pause during evaluations, so the training figures
exclude them (env and model construction included); the totals with them are recorded too. A run
stops at the first evaluation reaching `threshold` (if any), at `max_steps`, or at the first
evaluation after `max_seconds` of training wall time.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from common import Clock, git_state, load_average, machine, now, versions

from ddpg.config import Config
from ddpg.envs import episode_seed, register_robotics
from ddpg.evaluation import evaluate
from ddpg.presets import preset_config

EVAL_STREAM = 10  # reset-seed stream, apart from ddpg's own (training 0, evaluations 1 and 2)
RECORD_FORMAT = 1


class Spec(NamedTuple):
    """What one run is: library, variant, task, seed, budget and evaluation protocol."""

    lib: str
    variant: str
    env_id: str
    seed: int
    threshold: float | None  # None: never stop early
    eval_every: int
    eval_episodes: int
    max_steps: int
    max_seconds: float | None
    torch_threads: int


class Tracker:
    """The training clock, paused around each evaluation, and the stop bookkeeping."""

    def __init__(self, spec: Spec, log: Callable[[str], None] = print) -> None:
        self.spec, self.log = spec, log
        self.train, self.eval = Clock(), Clock()
        self.act: Callable[[np.ndarray], np.ndarray] | None = None
        register_robotics(spec.env_id)  # Fetch tasks: gymnasium-robotics registers them
        self.eval_env = gym.make(spec.env_id)  # a Dict-observation env stays one: both take it
        self.next_eval = spec.eval_every
        self.evaluations: list[list[float]] = []  # [step, mean return, training wall s so far]
        self.success_rates: list[float | None] = []  # of each evaluation (None: not reported)
        self.solved_at: dict[str, float] | None = None
        self.stop_reason: str | None = None
        self.last_step = 0
        self.setup_wall_s: float | None = None  # of the training wall time: env and model

    def due(self, step: int) -> bool:
        return step >= self.next_eval

    def evaluate(self, step: int) -> bool:
        """Evaluate at env step `step` with the training clock paused; True: stop training (the
        training clock then stays stopped)."""
        assert self.act is not None
        s = self.spec
        self.train.stop()
        wall, cpu = self.train.read()
        self.eval.start()
        result = evaluate(self.act, self.eval_env, s.eval_episodes, s.seed, EVAL_STREAM)
        mean, success = result.mean, result.success_rate
        self.eval.stop()
        self.last_step = step
        self.evaluations.append([step, mean, wall])
        self.success_rates.append(success)
        self.log(
            f"{s.lib}/{s.variant} {s.env_id} seed {s.seed}: step {step:7d} | eval mean "
            f"{mean:8.1f}{'' if success is None else f' | success {success:.2f}'} | training "
            f"{wall:7.1f} s wall, {cpu:7.1f} s CPU"
        )
        if s.threshold is not None and mean >= s.threshold and self.solved_at is None:
            self.solved_at = {"steps": step, "wall_s": wall, "cpu_s": cpu}
            self.solved_at |= {"wall_s_incl_eval": wall + self.eval.wall}
            self.solved_at |= {"cpu_s_incl_eval": cpu + self.eval.cpu}
            self.stop_reason = "solved"
        elif step >= s.max_steps:
            self.stop_reason = "max_steps"
        elif s.max_seconds is not None and wall >= s.max_seconds:
            self.stop_reason = "max_seconds"
        self.next_eval = (step // s.eval_every + 1) * s.eval_every
        if self.stop_reason is None:
            self.train.start()
        return self.stop_reason is not None


def our_config(preset: str, overrides: dict[str, Any], spec: Spec) -> Config:
    """The preset, then the overrides, then what the benchmark needs: no periodic evaluation,
    checkpoints, TensorBoard or early stop of the Trainer's own; budget and seed from the spec."""
    return preset_config(preset, **overrides).replace(
        env_id=spec.env_id, seed=spec.seed, total_steps=spec.max_steps, episodes=None,
        eval_every=0, target_return=None, checkpoint_every=0, tensorboard=False,
        torch_threads=spec.torch_threads,
    )  # fmt: skip


def run_ours(spec: Spec, config: Config, tracker: Tracker) -> dict[str, Any]:
    """Our `Trainer` on `config`, trained in chunks between the tracker's evaluations."""
    from ddpg.train import Trainer

    tracker.train.start()
    trainer = Trainer(config, run_dir=None)
    try:
        tracker.act = trainer.policy  # the live actor, deterministic, env units
        tracker.setup_wall_s = tracker.train.read()[0]
        while True:
            trainer.run(max_steps=min(tracker.next_eval, spec.max_steps))
            if tracker.evaluate(trainer.state.step):
                break
    finally:
        tracker.train.stop()
        trainer.close()
    return {"total_steps_run": trainer.state.step, "config": config.to_dict()}


def run_sb3(spec: Spec, hp: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    """SB3's DDPG with hyperparameters `hp` in the RL Zoo's format (policy, learning_rate,
    buffer_size, learning_starts, batch_size, tau, gamma, train_freq, gradient_steps,
    noise_type, noise_std, policy_kwargs; for goal-conditioned tasks also n_sampled_goal and
    goal_selection_strategy, which select SB3's HerReplayBuffer, and normalize, which wraps
    the env in SB3's VecNormalize for observations only, clip_obs as given); SB3's TD3 with
    `algo: td3` and its policy_delay, target_policy_noise and target_noise_clip."""
    from stable_baselines3 import DDPG, TD3, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    class EvalCallback(BaseCallback):
        """Evaluates at the start of a rollout, i.e. after the updates of the steps so far (as
        ours, which evaluates after a step's updates); a stop ends training at the next step,
        before that step is stored or trained on."""

        stop = False

        def _on_rollout_start(self) -> None:
            if not self.stop and tracker.due(self.num_timesteps):
                self.stop = tracker.evaluate(self.num_timesteps)

        def _on_step(self) -> bool:
            return not self.stop

        def _on_training_end(self) -> None:  # the last rollout has no next rollout start
            if not self.stop and tracker.last_step != self.num_timesteps:
                self.stop = tracker.evaluate(self.num_timesteps)

    tracker.train.start()
    env: Any = gym.make(spec.env_id)
    ones = np.ones(env.action_space.shape[0])
    her: dict[str, Any] = {}
    if "n_sampled_goal" in hp:
        her = {"replay_buffer_class": HerReplayBuffer, "replay_buffer_kwargs": {
            "n_sampled_goal": hp["n_sampled_goal"],
            "goal_selection_strategy": hp["goal_selection_strategy"]}}  # fmt: skip
    normalizer = None
    if hp.get("normalize"):
        env = normalizer = VecNormalize(
            DummyVecEnv([lambda: env]), norm_obs=True, norm_reward=False, **hp["normalize"]
        )
    noise_cls = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}
    # As the zoo builds it: sigma = noise_std in SB3's [-1, 1] action scale.
    noise = noise_cls[hp["noise_type"]](mean=0 * ones, sigma=hp["noise_std"] * ones)
    freq = tuple(hp["train_freq"]) if isinstance(hp["train_freq"], list) else hp["train_freq"]
    names = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma")
    algo = hp.get("algo", "ddpg")
    if algo == "td3":
        names += ("policy_delay", "target_policy_noise", "target_noise_clip")
    model = {"ddpg": DDPG, "td3": TD3}[algo](
        hp["policy"], env, **{k: hp[k] for k in names}, train_freq=freq,
        gradient_steps=hp["gradient_steps"], action_noise=noise, seed=spec.seed, device="cpu",
        policy_kwargs=copy.deepcopy(hp["policy_kwargs"]), verbose=0,  # SB3 adds keys to it
        **her,
    )  # fmt: skip
    if normalizer is None:
        tracker.act = lambda o: model.predict(o, deterministic=True)[0]
    else:  # the evaluation env's raw observations, through the running statistics
        tracker.act = lambda o: model.predict(normalizer.normalize_obs(o), deterministic=True)[0]
    tracker.setup_wall_s = tracker.train.read()[0]
    try:
        model.learn(total_timesteps=spec.max_steps, callback=EvalCallback())
    finally:
        tracker.train.stop()
        model.env.close()
    return {"total_steps_run": tracker.last_step, "hyperparameters": hp}


def run_one(
    spec: Spec, train: Callable[[Tracker], dict[str, Any]], log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run `train` (run_ours or run_sb3 with its settings bound) under a fresh tracker; the
    record of the run, without the invoking command."""
    if spec.torch_threads:
        torch.set_num_threads(spec.torch_threads)
    # Pay one-off lazy imports outside the clocks: a torch optimizer's first construction imports
    # torch._dynamo (about a second), which would land in whichever library built one first.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    load_start = load_average()
    tracker = Tracker(spec, log)
    try:
        extra = train(tracker)
    finally:
        tracker.train.stop()
        tracker.eval_env.close()
    solved = tracker.solved_at or {}
    train_wall, train_cpu = tracker.train.read()
    steps = extra.pop("total_steps_run")
    means = [e[1] for e in tracker.evaluations]
    successes = [rate for rate in tracker.success_rates if rate is not None]
    return {
        "format": RECORD_FORMAT,
        **{k: getattr(spec, k) for k in ("lib", "variant", "seed", "threshold")},
        "env": spec.env_id,
        "solved": tracker.solved_at is not None,
        **{f"{k}_to_solve": solved.get(k) for k in ("steps", "wall_s", "cpu_s")},
        **{f"{k}_to_solve_incl_eval": solved.get(f"{k}_incl_eval") for k in ("wall_s", "cpu_s")},
        "stop_reason": tracker.stop_reason,
        "total_steps_run": steps,
        "train_wall_s": train_wall,
        "train_cpu_s": train_cpu,
        "setup_wall_s": tracker.setup_wall_s,
        "eval_wall_s": tracker.eval.wall,
        "eval_cpu_s": tracker.eval.cpu,
        "total_wall_s": train_wall + tracker.eval.wall,
        "total_cpu_s": train_cpu + tracker.eval.cpu,
        "steps_per_s": steps / train_wall if train_wall > 0 else None,
        "best_eval_mean": max(means) if means else None,
        "final_eval_mean": means[-1] if means else None,
        # Goal-conditioned tasks: the share of evaluation episodes that reached the goal.
        "best_success_rate": max(successes) if successes else None,
        "final_success_rate": successes[-1] if successes else None,
        "success_rates": tracker.success_rates if successes else None,
        "evaluations": tracker.evaluations,
        "budget": {"max_steps": spec.max_steps, "max_seconds": spec.max_seconds},
        "eval_protocol": {
            "every": spec.eval_every,
            "episodes": spec.eval_episodes,
            "seed": spec.seed,
            "stream": EVAL_STREAM,
            "reset_seeds": [
                episode_seed(spec.seed, EVAL_STREAM, i) for i in range(spec.eval_episodes)
            ],
            "env": f"gymnasium.make({spec.env_id!r})",
        },  # fmt: skip
        **extra,
        "cwd": os.getcwd(),
        "versions": versions(),
        "git": git_state(),
        **machine(),
        "torch_threads": torch.get_num_threads(),
        "torch_threads_flag": spec.torch_threads,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "date": now(),
    }
