"""Training: adapters, quantisation, losses, rollout, EMA, the loop, checkpoints, exports."""
