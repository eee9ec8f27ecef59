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

MIB = 1024 * 1024


def proc_status_kib(field: str) -> int:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM, ...), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def rss_mib() -> float:
    return proc_status_kib("VmRSS") / 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60_000, help="env steps (default 60000)")
    p.add_argument("--buffer-size", type=int, default=20_000, help="replay capacity (20000)")
    p.add_argument("--sample-every", type=int, default=2_000, help="steps between samples")
    p.add_argument("--env", default="Pendulum-v1", help="environment id (Pendulum-v1)")
    p.add_argument("--hidden-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-starts", type=int, default=1_000)
    p.add_argument(
        "--updates-per-step",
        type=float,
        default=1.0,
        help="update-to-data ratio (1.0); a small ratio makes a 1M-step run affordable on a CPU",
    )
    p.add_argument("--num-envs", type=int, default=1, help="environments stepped together (1)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="also write checkpoints every N steps into a temporary run directory (0: none)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.steps < 1 or args.buffer_size < 1 or args.sample_every < 1:
        print("memory.py: --steps, --buffer-size and --sample-every must be >= 1", file=sys.stderr)
        return 2
    config = Config(
        env_id=args.env,
        seed=args.seed,
        total_steps=args.steps,
        hidden_size=args.hidden_size,
        batch_norm=False,
        batch_size=min(args.batch_size, args.buffer_size),
        buffer_size=args.buffer_size,
        learning_starts=args.learning_starts,
        updates_per_step=args.updates_per_step,
        num_envs=args.num_envs,
        checkpoint_every=args.checkpoint_every,
        eval_every=0,
        torch_threads=1,
    )
    tmp = tempfile.TemporaryDirectory(prefix="ddpg-memory-") if args.checkpoint_every else None
    rss_start = rss_mib()
    trainer = Trainer(config, Path(tmp.name) / "run" if tmp else None)
    buffer = trainer.buffer
    per_transition = buffer.nbytes / buffer.capacity
    obs_dim, act_dim = trainer.info.obs_dim, trainer.info.act_dim

    print(f"env {config.env_id}: obs_dim {obs_dim}, act_dim {act_dim}")
    print(
        f"replay buffer: capacity {buffer.capacity:,}, {buffer.nbytes / MIB:.2f} MiB preallocated, "
        f"{per_transition:.0f} bytes per transition "
        f"(formula (2*obs_dim + act_dim + 2) * 4 = {(2 * obs_dim + act_dim + 2) * 4})"
    )
    print(
        f"steps {args.steps:,}, hidden {config.hidden_size}, batch {config.batch_size}, "
        f"learning from step {config.learning_starts:,}, "
        f"{config.updates_per_step:g} updates per step, {config.num_envs} env(s), "
        f"checkpoints {'every ' + format(args.checkpoint_every, ',') if tmp else 'off'}"
    )
    print(f"RSS before the trainer: {rss_start:.1f} MiB, after building it: {rss_mib():.1f} MiB")
    print()
    header = f"{'step':>9} {'buffer':>9} {'RSS MiB':>9} {'delta':>8} {'steps/s':>8}"
    print(header)
    print("-" * len(header))

    samples: list[tuple[int, int, float]] = []
    previous = rss_mib()
    start = time.perf_counter()
    last_time, last_step = start, 0
    while trainer.step < args.steps:
        target = min(trainer.step + args.sample_every, args.steps)
        trainer.run(max_steps=target)
        gc.collect()
        now, rss = time.perf_counter(), rss_mib()
        speed = (trainer.step - last_step) / max(now - last_time, 1e-9)
        samples.append((trainer.step, len(buffer), rss))
        print(
            f"{trainer.step:9,d} {len(buffer):9,d} {rss:9.1f} {rss - previous:+8.1f} {speed:8.0f}",
            flush=True,
        )
        previous, last_time, last_step = rss, now, trainer.step
    trainer.close()
    if tmp is not None:
        tmp.cleanup()

    print()
    # Steady state: the buffer is full and updates have been running (their first calls
    # allocate the optimiser state and autograd buffers once).
    full = [
        (step, rss)
        for step, size, rss in samples
        if size == buffer.capacity and step > config.learning_starts
    ]
    if len(full) >= 2:
        (first_step, first_rss), (last_step_full, last_rss) = full[0], full[-1]
        growth = last_rss - first_rss
        per_k = growth / max(last_step_full - first_step, 1) * 1000
        print(
            f"buffer full and learning from the sample at step {first_step:,}: "
            f"RSS {first_rss:.1f} -> {last_rss:.1f} MiB by step {last_step_full:,}: "
            f"growth {growth:+.1f} MiB "
            f"({per_k * 1024:+.1f} KiB per 1000 steps)"
        )
        peak = max(rss for _, rss in full)
        print(f"largest RSS after the buffer was full: {peak:.1f} MiB")
    else:
        print("fewer than two samples with a full buffer and learning: run more steps")
    print(f"peak RSS (VmHWM): {proc_status_kib('VmHWM') / 1024:.1f} MiB")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
