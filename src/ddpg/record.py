"""Videos of a trained policy, rendered headless (GIF with Pillow, MP4 with imageio-ffmpeg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ddpg.atomic import replacing
from ddpg.envs import FINAL_EVAL_STREAM, episode_seed, make_env
from ddpg.errors import DDPGError

VIDEO_KINDS = {".gif": "GIF", ".mp4": "MP4 video"}


def record_video(
    model_path: Path, out: Path, episodes: int = 1, seed: int | None = None, frame_skip: int = 2
) -> tuple[Path, int, list[float]]:
    """Roll out the deterministic policy of a saved model and write the frames to `out`.
    Returns the path, the number of frames written and each episode's return."""
    from ddpg.policy import Policy

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame-based envs need no display
    if episodes < 1 or frame_skip < 1:
        raise DDPGError("episodes and frame skip must be >= 1")
    if Path(out).suffix.lower() not in VIDEO_KINDS:
        raise DDPGError(f"video file must end in .gif or .mp4, got '{out}'")
    if Path(out).suffix.lower() == ".mp4":
        _mp4_writer()  # the extra is checked before the rollout, not after
    policy = Policy.load(model_path)
    config = policy.config
    env = make_env(config.env_id, config.max_episode_steps, render_mode="rgb_array")
    seed = config.seed if seed is None else seed
    frames: list[np.ndarray] = []
    returns: list[float] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, FINAL_EVAL_STREAM, i))
        frames.append(env.render())
        total, done, t = 0.0, False, 0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
            t += 1
            if t % frame_skip == 0 or done:
                frames.append(env.render())
        returns.append(total)
    fps = max(1, round(env.metadata.get("render_fps", 30) / frame_skip))
    env.close()
    write_frames(Path(out), frames, fps)
    return Path(out), len(frames), returns


def _mp4_writer() -> object:
    try:
        import imageio.v3 as iio
    except ImportError:
        raise DDPGError(
            "MP4 needs imageio with ffmpeg (pip install 'ddpg[video]'); or write a .gif"
        ) from None
    return iio


def write_frames(out: Path, frames: list[np.ndarray], fps: int) -> None:
    """Write the frames to `out` (GIF or MP4) atomically, creating its folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp:
        if out.suffix.lower() == ".mp4":
            iio: Any = _mp4_writer()
            # Frames only need even sizes for yuv420p; the default 16-pixel blocks would resize.
            iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=2)
        else:
            from PIL import Image

            images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
            duration = round(1000 / fps)
            images[0].save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=images[1:],
                duration=duration,
                loop=0,
            )
