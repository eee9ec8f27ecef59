"""Paths that lead out of a run, or into one: symbolic links inside a run (or sweep) directory
that point elsewhere, outputs placed inside another run's or sweep's directory, and what
`--overwrite` finds at any depth of the run it would empty.

Each refusal is one line naming the path at fault, exit code 2, and every file (in the run, next
to it, and what the links point to) unchanged: `tree` records the whole working folder, links by
their target, before and after. The commands run in-process (`ddpg.cli.main`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import flags, run_cli, snapshot

from ddpg import DDPG, Policy, preset_config
from ddpg.checkpoints import list_checkpoints
from ddpg.errors import RunDirError
from ddpg.sweep.spec import build_spec, parse_grid, parse_seeds, write_spec

# 40 steps of 20-step episodes, checkpoints at 20 and 40: a run in about a second.
QUICK = flags(
    total_steps=40,
    max_episode_steps=20,
    hidden_size=8,
    batch_size=4,
    buffer_size=100,
    learning_starts=10,
    eval_every=20,
    eval_episodes_during=1,
    eval_episodes=1,
    checkpoint_every=20,
    torch_threads=1,
)
TRAIN = ["train", "--preset", "pendulum", *QUICK, "--quiet"]
NEWEST = "checkpoints/step-0000000040"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    rc, _, err = run_cli([*TRAIN, "--run-dir", run_dir])
    assert (rc, err) == (0, ""), err
    return run_dir


@pytest.fixture
def work(tmp_path: Path, trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory: a copy of the trained run as `run`, and `outside/`, where links
    lead (a folder of the user's, next to the run)."""
    shutil.copytree(trained, tmp_path / "run")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "notes.txt").write_text("the user's own file\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tree(root: Path) -> dict[str, object]:
    """Every path under `root`: a link as its target, a file as its bytes, a folder as None."""
    links = {
        str(p.relative_to(root)): ("link", os.readlink(p))
        for p in root.rglob("*")
        if p.is_symlink()
    }
    return {**snapshot(root), **links}


def expect_refusal(argv: list[object], *fragments: str, root: Path) -> str:
    """`ddpg ARGV` exits 2 with one line holding every fragment, and changes nothing under
    `root`. Returns the line."""
    before = tree(root)
    rc, out, err = run_cli(argv)
    assert rc == 2, (rc, out, err)
    assert err.count("\n") == 1 and err.startswith("ddpg: error: "), err
    assert "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert tree(root) == before
    return err.strip()


def move_out(work: Path, name: str) -> Path:
    """Move RUN/`name` (a file or folder) to outside/ and leave a link to it in its place."""
    inside, target = work / "run" / name, work / "outside" / Path(name).name
    shutil.move(inside, target)
    inside.symlink_to(target)
    return inside


# -- links out of a run: resume, load and every command that reads a run ------------------------
@pytest.mark.parametrize(
    "name",
    [
        "config.json",
        "metrics.csv",
        "evaluations.csv",
        "checkpoints",
        NEWEST,
        f"{NEWEST}/weights.safetensors",
        f"{NEWEST}/manifest.json",
        "model_best.safetensors",
    ],
)
def test_resume_refuses_a_link_out_of_the_run(work: Path, name: str) -> None:
    move_out(work, name)
    line = expect_refusal(
        ["train", "--resume", "run", "--total-steps", "60", "--quiet"],
        f"run/{name} is a symbolic link out of the run directory run (to ",
        "ddpg does not read or delete through such links",
        root=work,
    )
    assert str(work / "outside") in line


def test_resume_refuses_a_relative_link_that_climbs_out(work: Path) -> None:
    """`../../outside/x` is out whatever it is spelt like."""
    weights = work / "run" / NEWEST / "weights.safetensors"
    shutil.move(weights, work / "outside" / "weights.safetensors")
    weights.symlink_to(Path("..", "..", "..", "outside", "weights.safetensors"))
    assert weights.read_bytes()  # the link works: only where it leads is wrong
    expect_refusal(
        ["train", "--resume", "run", "--total-steps", "60", "--quiet"],
        f"run/{NEWEST}/weights.safetensors is a symbolic link out of the run directory",
        root=work,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "run", "--episodes", "1"],
        ["record", "run", "--out", "v.gif"],
        ["export", "run", "--format", "torchscript", "--out", "p.pt"],
        ["plot", "run", "--out", "c.png"],
        ["report", "run", "--out", "rep"],
    ],
    ids=lambda argv: argv[0],
)
def test_commands_that_read_a_run_refuse_a_link_out_of_it(work: Path, argv: list[str]) -> None:
    move_out(work, "metrics.csv")
    expect_refusal(argv, "run/metrics.csv is a symbolic link out of the run directory", root=work)
    assert not any((work / name).exists() for name in ("v.gif", "p.pt", "c.png", "rep"))


def test_loading_a_model_of_a_run_with_a_link_out_is_refused(work: Path) -> None:
    link = move_out(work, "model_best.safetensors")
    before = tree(work)
    for load in (Policy.load, DDPG.load):
        with pytest.raises(RunDirError, match="model_best.safetensors is a symbolic link out"):
            load(link)
        with pytest.raises(RunDirError, match="model_best.safetensors is a symbolic link out"):
            load(work / "run" / "model_final.safetensors")  # its run holds the link
    assert tree(work) == before


def test_a_model_file_outside_any_run_is_the_users_own(work: Path) -> None:
    """A link to a model, in a folder of the user's that is no run, loads like the model."""
    (work / "outside" / "m.safetensors").symlink_to(work / "run" / "model_best.safetensors")
    policy = Policy.load(work / "outside" / "m.safetensors")
    assert policy.config.hidden_size == 8


def test_a_link_that_stays_inside_the_run_is_followed(work: Path) -> None:
    best = work / "run" / "model_best.safetensors"
    best.unlink()
    best.symlink_to("model_final.safetensors")
    rc, out, err = run_cli(["evaluate", "run", "--episodes", "1", "--json", "e.json"])
    assert (rc, err) == (0, ""), err
    assert json.loads((work / "e.json").read_text())["model"] == "best"


def test_links_on_the_way_to_the_run_are_the_users_own(work: Path) -> None:
    """Only links inside the run count: a path to it through links (`/home -> /data/home`)
    resumes as the run itself."""
    (work / "via").symlink_to(work, target_is_directory=True)
    (work / "run-link").symlink_to(work / "run", target_is_directory=True)
    for path in ("via/run", "run-link"):
        rc, _, err = run_cli(["evaluate", path, "--episodes", "1"])
        assert (rc, err) == (0, ""), (path, err)
    rc, _, err = run_cli(["train", "--resume", "via/run-link", "--total-steps", "60", "--quiet"])
    assert (rc, err) == (0, ""), err
    assert list_checkpoints(work / "run" / "checkpoints")[0].name == "step-0000000060"


# -- --overwrite: the whole tree it would delete --------------------------------------------------
def test_overwrite_never_deletes_through_a_link_out(work: Path) -> None:
    move_out(work, NEWEST)
    expect_refusal(
        [*TRAIN, "--run-dir", "run", "--overwrite"],
        f"run/{NEWEST} is a symbolic link out of the run directory run",
        root=work,
    )
    assert (work / "outside" / "step-0000000040" / "weights.safetensors").is_file()


def make_sweep(folder: Path) -> Path:
    """A sweep directory as `ddpg sweep` begins it: sweep.json (and trials/, still empty)."""
    (folder / "trials").mkdir(parents=True)
    write_spec(folder, small_spec())
    return folder


def nested_run(run_dir: Path) -> None:
    shutil.copytree(run_dir, run_dir.parent / "old-run")
    shutil.move(run_dir.parent / "old-run", run_dir / "checkpoints" / "old-run")


def small_spec():
    return build_spec(
        base=preset_config("pendulum", total_steps=20_000),
        preset="pendulum",
        fixed={"total_steps": 20_000},
        seeds=parse_seeds("0"),
        grid=parse_grid(["actor_lr=1e-3,3e-4"]),
    )


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        (lambda r: (r / "checkpoints" / "notes.txt").write_text("mine\n"), "checkpoints/notes.txt"),
        (lambda r: (r / NEWEST / "notes.txt").write_text("mine\n"), f"{NEWEST}/notes.txt"),
        (lambda r: (r / NEWEST / "extra").mkdir(), f"{NEWEST}/extra"),
        (lambda r: make_sweep(r / "checkpoints" / "sweep"), "checkpoints/sweep"),
        (nested_run, "checkpoints/old-run"),
        (
            lambda r: (r / "checkpoints" / "latest").symlink_to("step-0000000040"),
            "checkpoints/latest",
        ),
        (lambda r: (r / "tensorboard" / "x").write_text(""), "tensorboard/x"),
    ],
    ids=[
        "file-in-checkpoints",
        "file-in-a-checkpoint",
        "folder-in-a-checkpoint",
        "sweep",
        "run",
        "link-inside",
        "file-in-tensorboard",
    ],
)
def test_overwrite_refuses_what_the_library_did_not_make_at_any_depth(
    work: Path, setup, named: str
) -> None:
    setup(work / "run")
    expect_refusal(
        [*TRAIN, "--run-dir", "run", "--overwrite"],
        f"run holds files this library did not make ({named}",
        "move them or choose another --run-dir",
        root=work,
    )


def test_the_reported_sweep_in_a_run_is_refused_before_it_can_be_lost(work: Path) -> None:
    """The case reported: `sweep --out RUN/checkpoints/sweep`, then `train --overwrite`."""
    expect_refusal(
        ["sweep", "--preset", "pendulum", "--out", "run/checkpoints/sweep", "--seeds", "0"],
        "run/checkpoints/sweep is inside the run directory run, which holds only its own files",
        "choose a path outside it",
        root=work,
    )


# -- outputs inside another run or sweep ----------------------------------------------------------
@pytest.fixture
def other(work: Path) -> Path:
    """A second run (a copy), and a sweep directory `sweep` next to them."""
    shutil.copytree(work / "run", work / "other")
    make_sweep(work / "sweep")
    return work / "other"


@pytest.mark.parametrize(
    ("argv", "target", "inside"),
    [
        ([*TRAIN, "--run-dir", "run/sub"], "run/sub", "run"),
        ([*TRAIN, "--run-dir", "sweep/trials/mine"], "sweep/trials/mine", "sweep"),
        (["sweep", "--preset", "pendulum", "--out", "sweep/again"], "sweep/again", "sweep"),
        (["report", "run", "--out", "other/rep"], "other/rep/report.md", "other"),
        (["report", "run", "--out", "run/checkpoints"], "run/checkpoints/report.md", "run"),
        (["plot", "run", "--out", "other/c.png"], "other/c.png", "other"),
        (["plot", "run", "--out", "run/plots/c.png"], "run/plots/c.png", "run"),
        (["record", "run", "--out", "other/agent.gif"], "other/agent.gif", "other"),
        (["export", "run", "--format", "onnx", "--out", "sweep/p.onnx"], "sweep/p.onnx", "sweep"),
        (["evaluate", "run", "--episodes", "1", "--json", "other/e.json"], "other/e.json", "other"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_no_output_goes_inside_another_run_or_sweep(
    work: Path, other: Path, argv: list[str], target: str, inside: str
) -> None:
    kind = "sweep" if inside == "sweep" else "run"
    expect_refusal(
        argv,
        f"{target} is inside the {kind} directory {inside}, which holds only its own files",
        root=work,
    )


def test_outputs_into_the_runs_a_command_works_on_stay_allowed(work: Path, other: Path) -> None:
    for argv, made in (
        (["plot", "run", "other", "--out", "other/both.png"], "other/both.png"),
        (["evaluate", "run", "--episodes", "1", "--json", "run/e.json"], "run/e.json"),
        (["report", "run", "--out", "run"], "run/report.md"),
    ):
        rc, _, err = run_cli(argv)
        assert (rc, err) == (0, ""), (argv, err)
        assert (work / made).is_file(), made


def test_api_run_dir_and_save_inside_another_run_are_refused(work: Path) -> None:
    import gymnasium as gym

    before = tree(work)
    with pytest.raises(RunDirError, match="run/sub is inside the run directory"):
        DDPG(gym.make("Pendulum-v1"), run_dir=work / "run" / "sub")
    model = DDPG.load(work / "run" / "model_final.safetensors")
    with pytest.raises(RunDirError, match="models/m.safetensors is inside the run directory"):
        model.save(work / "run" / "models" / "m.safetensors")
    assert tree(work) == before


# -- sweep --resume: the trials' run directories ---------------------------------------------------
def test_sweep_resume_refuses_a_trial_linked_out_of_it(work: Path) -> None:
    make_sweep(work / "sweep")
    name = small_spec().trials()[0].name
    (work / "sweep" / "trials" / name).symlink_to(work / "run", target_is_directory=True)
    expect_refusal(
        ["sweep", "--resume", "sweep"],
        f"sweep/trials/{name} is a symbolic link out of the sweep directory sweep",
        root=work,
    )


def test_sweep_resume_refuses_a_spec_linked_out_of_it(work: Path) -> None:
    make_sweep(work / "outside" / "sweep")
    (work / "sweep").mkdir()
    (work / "sweep" / "sweep.json").symlink_to(work / "outside" / "sweep" / "sweep.json")
    expect_refusal(
        ["sweep", "--resume", "sweep"],
        "sweep/sweep.json is a symbolic link out of the sweep directory sweep",
        root=work,
    )


@pytest.fixture(autouse=True)
def _no_stray_outputs(work: Path) -> Iterator[None]:
    yield
    assert (work / "outside" / "notes.txt").read_text() == "the user's own file\n"


def test_api_resume_refuses_a_link_out_of_the_run(work: Path) -> None:
    move_out(work, f"{NEWEST}/weights.safetensors")
    before = tree(work)
    with pytest.raises(RunDirError, match="weights.safetensors is a symbolic link out of the run"):
        DDPG.resume(work / "run")
    assert tree(work) == before
