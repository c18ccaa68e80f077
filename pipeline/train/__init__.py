"""Training: the mix-and-separate task and losses, the solver, distributed setup, plots."""
