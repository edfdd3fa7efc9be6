"""The training loop and what it needs: EMA, checkpoints, logging, update strategies."""
