"""The cost of running trials through `ddpg sweep` (Ray Tune) instead of plain `ddpg train`.

Variant `sweep`: one `ddpg sweep` of N Pendulum seeds, at most 2 trials at a time (a local Ray
with 2 CPUs, one per trial). Variant `plain`: the same N runs as `ddpg train` processes, two at a
time. Both use one torch thread per run and the same configs, so their results are identical
(checked). The variants alternate (ABAB...), and each is timed from its command's start to the
exit of its last process. Every process of the variant (the commands and all their descendants,
Ray's included) is sampled every 0.2 s: memory is the peak over time of their summed RSS, and CPU
time the sum of their user and system time, which other work on a shared machine disturbs far
less than wall time.

    python benchmarks/sweep_overhead.py --repeats 3 --out benchmarks/results/sweep_overhead.json

Prints a markdown table (medians and the sweep/plain ratio) for docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import command, invocation, load_average, machine, now, table, versions

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def tree(roots: list[int]) -> dict[int, tuple[int, float]]:
    """(RSS in bytes, CPU seconds used so far) of each process in the trees of `roots`."""
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            rss = int((entry / "statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        usage[int(entry.name)] = (rss, (int(stat[11]) + int(stat[12])) / TICK)  # utime + stime
        children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in usage:
            found[pid] = usage[pid]
        todo.extend(children.get(pid, []))
    return found


class Sampler:
    """Samples the process trees of `roots()` every 0.2 s until stopped: the peak of their summed
    RSS, and the CPU time of every process seen (its last reading, so at most the final 0.2 s of
    each is missed)."""

    def __init__(self, roots) -> None:
        self.roots, self.peak, self.cpu = roots, 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            found = tree(self.roots())
            self.peak = max(self.peak, sum(rss for rss, _ in found.values()))
            self.cpu |= {pid: cpu for pid, (_, cpu) in found.items()}

    def stop(self) -> tuple[int, float]:
        self._stop.set()
        self._thread.join()
        return self.peak, sum(self.cpu.values())


def ddpg(*args: str) -> list[str]:
    return [sys.executable, "-m", "ddpg.cli", *args]


def config_args(steps: int) -> list[str]:
    return ["--preset", "pendulum", "--total-steps", str(steps), "--quiet"]


def run_sweep(work: Path, seeds: int, steps: int) -> tuple[float, int, float, list[Path]]:
    out = work / "sweep"
    start = time.perf_counter()
    proc = subprocess.Popen(
        ddpg(
            "sweep",
            *config_args(steps),
            "--seeds",
            f"0-{seeds - 1}",
            "--max-concurrent",
            "2",
            "--out",
            str(out),
        )  # fmt: skip
    )
    sampler = Sampler(lambda: [proc.pid])
    if proc.wait() != 0:
        raise SystemExit(f"ddpg sweep failed (exit {proc.returncode})")
    wall = time.perf_counter() - start
    return wall, *sampler.stop(), [out / "trials" / f"seed={s}" for s in range(seeds)]


def run_plain(work: Path, seeds: int, steps: int) -> tuple[float, int, float, list[Path]]:
    dirs = [work / f"plain-s{s}" for s in range(seeds)]
    pending = list(range(seeds))
    running: list[subprocess.Popen] = []
    start = time.perf_counter()
    sampler = Sampler(lambda: [p.pid for p in running])
    while pending or running:
        while pending and len(running) < 2:
            s = pending.pop(0)
            running.append(subprocess.Popen(ddpg(
                "train", *config_args(steps), "--seed", str(s), "--torch-threads", "1",
                "--run-dir", str(dirs[s]))))  # fmt: skip
        time.sleep(0.05)
        for p in [p for p in running if p.poll() is not None]:
            if p.returncode != 0:
                raise SystemExit(f"ddpg train failed (exit {p.returncode})")
            running.remove(p)
    wall = time.perf_counter() - start
    return wall, *sampler.stop(), dirs


def final_returns(dirs: list[Path]) -> list[float]:
    return [json.loads((d / "evaluation.json").read_text())["final"]["mean_return"] for d in dirs]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="runs per variant (default 4)")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="ABAB rounds (default 3)")
    parser.add_argument("--out", type=Path, help="also write the measurements as JSON")
    args = parser.parse_args(argv)

    rounds: list[dict[str, Any]] = []
    for r in range(args.repeats):
        for name, variant in (("sweep", run_sweep), ("plain", run_plain)):
            work = Path(tempfile.mkdtemp(prefix=f"ddpg-bench-{name}-"))
            try:
                load = load_average()
                wall, peak, cpu, dirs = variant(work, args.seeds, args.steps)
                returns = final_returns(dirs)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            rounds.append({"round": r, "variant": name, "wall_s": wall, "cpu_s": cpu,
                           "peak_rss_bytes": peak, "load_before": load,
                           "final_returns": returns})  # fmt: skip
            print(f"round {r} {name}: {wall:.1f} s, CPU {cpu:.1f} s, peak {peak / 2**30:.2f} "
                  f"GiB, load {load}", file=sys.stderr)  # fmt: skip

    def median(variant: str, key: str) -> float:
        return statistics.median(x[key] for x in rounds if x["variant"] == variant)

    same = all(
        x["final_returns"] == rounds[1]["final_returns"] for x in rounds
    )  # every round, both variants: the same numbers
    wall = {v: median(v, "wall_s") for v in ("sweep", "plain")}
    cpu = {v: median(v, "cpu_s") for v in ("sweep", "plain")}
    peak = {v: median(v, "peak_rss_bytes") / 2**30 for v in ("sweep", "plain")}
    result = {
        "command": command(invocation(__file__, argv)),
        "date": now(),
        "machine": machine(),
        "versions": versions() | {"ray": _version("ray"), "optuna": _version("optuna")},
        "seeds": args.seeds,
        "steps": args.steps,
        "rounds": rounds,
        "identical_results": same,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ["wall time, s (median)", wall["sweep"], wall["plain"],
         f"{wall['sweep'] / wall['plain']:.3f}"],
        ["CPU time of all processes, s (median)", cpu["sweep"], cpu["plain"],
         f"{cpu['sweep'] / cpu['plain']:.3f}"],
        ["peak RSS of all processes, GiB (median)", f"{peak['sweep']:.2f}", f"{peak['plain']:.2f}",
         f"{peak['sweep'] / peak['plain']:.2f}"],
    ]  # fmt: skip
    print("\n".join(table(["", "ddpg sweep", "plain ddpg train", "ratio"], rows, "lrrr")))
    print(f"\nidentical final returns in every round and variant: {same}")


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
