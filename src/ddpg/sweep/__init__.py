"""`ddpg sweep`: many runs over seeds and hyperparameters on Ray Tune, each an ordinary run dir.

- `spec`: what a sweep runs, parsed and validated before Ray starts (SWEEP_DIR/sweep.json).
- `trial`: the body of one trial, the only place that drives the training stack.
- `cluster`: starting a local Ray or joining a cluster (temp dir, authentication, address).
- `driver`: Ray Tune itself: run, resume, interrupt, finish trials that a scheduler stopped.

The command itself (options, validation, creating SWEEP_DIR) is `ddpg.commands.sweep`.
Only `spec` may be imported without Ray installed.
"""
