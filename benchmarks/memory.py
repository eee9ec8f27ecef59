"""Memory over a long run: does the process grow once the replay buffer is full?

Trains with tiny networks and a small replay buffer for several times the buffer's capacity,
sampling the resident set size (VmRSS from /proc/self/status) every few thousand steps. While the
buffer fills, RSS grows by about the buffer's bytes (its storage is preallocated but the pages are
only touched when written); once it is full, RSS should stay flat. Also reports the bytes per
stored transition from ReplayBuffer.nbytes.

    python benchmarks/memory.py --steps 60000 --buffer-size 20000
    python benchmarks/memory.py --env LunarLanderContinuous-v3 --checkpoint-every 10000
    python benchmarks/memory.py --env HalfCheetah-v5 --steps 1000000 --buffer-size 1000000 \
        --hidden-size 256 --batch-size 256 --updates-per-step 0.02 --sample-every 100000 \
        --checkpoint-every 500000      # a 1M-transition run (about 6 minutes on one core)
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

from ddpg.config import Config
from ddpg.train import Trainer


def proc_status_mib(field: str) -> float:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM, ...), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--steps", type=int, default=60_000, help="env steps (default 60000)")
    add("--buffer-size", type=int, default=20_000, help="replay capacity (20000)")
    add("--sample-every", type=int, default=2_000, help="steps between samples")
    add("--env", default="Pendulum-v1", help="environment id (Pendulum-v1)")
    add("--hidden-size", type=int, default=32)
    add("--batch-size", type=int, default=64)
    add("--learning-starts", type=int, default=1_000)
    add("--updates-per-step", type=float, default=1.0, help="update-to-data ratio (1.0)")
    add("--num-envs", type=int, default=1, help="environments stepped together (1)")
    add("--checkpoint-every", type=int, default=0, help="also write checkpoints (0: none)")
    add("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.steps < 1 or a.buffer_size < 1 or a.sample_every < 1:
        print("memory.py: --steps, --buffer-size and --sample-every must be >= 1", file=sys.stderr)
        return 2
    config = Config(
        env_id=a.env, seed=a.seed, total_steps=a.steps, hidden_size=a.hidden_size,
        batch_norm=False, batch_size=min(a.batch_size, a.buffer_size), buffer_size=a.buffer_size,
        learning_starts=a.learning_starts, updates_per_step=a.updates_per_step,
        num_envs=a.num_envs, checkpoint_every=a.checkpoint_every, eval_every=0, torch_threads=1,
    )  # fmt: skip
    # Checkpoints go to a temporary run directory, removed at the end.
    tmp = tempfile.TemporaryDirectory(prefix="ddpg-memory-") if a.checkpoint_every else None
    rss_start = proc_status_mib("VmRSS")
    trainer = Trainer(config, Path(tmp.name) / "run" if tmp else None)
    buffer, obs_dim, act_dim = trainer.buffer, trainer.info.obs_dim, trainer.info.act_dim
    print(f"env {config.env_id}: obs_dim {obs_dim}, act_dim {act_dim}")
    print(
        f"replay buffer: capacity {buffer.capacity:,}, {buffer.nbytes / 2**20:.2f} MiB "
        f"preallocated, {buffer.nbytes / buffer.capacity:.0f} bytes per transition (formula "
        f"(2*obs_dim + act_dim + 2) * 4 = {(2 * obs_dim + act_dim + 2) * 4})\n"
        f"steps {a.steps:,}, hidden {config.hidden_size}, batch {config.batch_size}, learning "
        f"from step {config.learning_starts:,}, {config.updates_per_step:g} updates per step, "
        f"{config.num_envs} env(s), checkpoints "
        f"{'every ' + format(a.checkpoint_every, ',') if tmp else 'off'}\n"
        f"RSS before the trainer: {rss_start:.1f} MiB, after building it: "
        f"{proc_status_mib('VmRSS'):.1f} MiB\n"
    )
    header = f"{'step':>9} {'buffer':>9} {'RSS MiB':>9} {'delta':>8} {'steps/s':>8}"
    print(f"{header}\n{'-' * len(header)}")
    samples: list[tuple[int, int, float]] = []
    previous, start = proc_status_mib("VmRSS"), time.perf_counter()
    last_time, last_step = start, 0
    while trainer.state.step < a.steps:
        trainer.run(max_steps=min(trainer.state.step + a.sample_every, a.steps))
        gc.collect()
        now, rss = time.perf_counter(), proc_status_mib("VmRSS")
        speed = (trainer.state.step - last_step) / max(now - last_time, 1e-9)
        samples.append((trainer.state.step, len(buffer), rss))
        print(f"{trainer.state.step:9,d} {len(buffer):9,d} {rss:9.1f} {rss - previous:+8.1f} "
              f"{speed:8.0f}", flush=True)  # fmt: skip
        previous, last_time, last_step = rss, now, trainer.state.step
    trainer.close()
    if tmp is not None:
        tmp.cleanup()
    print()
    # Steady state: the buffer is full and updates have been running (their first calls
    # allocate the optimiser state and autograd buffers once).
    full = [(step, rss) for step, size, rss in samples
            if size == buffer.capacity and step > config.learning_starts]  # fmt: skip
    if len(full) >= 2:
        (first_step, first_rss), (end_step, end_rss) = full[0], full[-1]
        growth = end_rss - first_rss
        per_k = growth / max(end_step - first_step, 1) * 1000
        print(
            f"buffer full and learning from the sample at step {first_step:,}: RSS "
            f"{first_rss:.1f} -> {end_rss:.1f} MiB by step {end_step:,}: growth {growth:+.1f} "
            f"MiB ({per_k * 1024:+.1f} KiB per 1000 steps)\n"
            f"largest RSS after the buffer was full: {max(rss for _, rss in full):.1f} MiB"
        )
    else:
        print("fewer than two samples with a full buffer and learning: run more steps")
    print(f"peak RSS (VmHWM): {proc_status_mib('VmHWM'):.1f} MiB")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
