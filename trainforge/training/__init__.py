"""The PyTorch training engine: losses, optimizers, schedules, the loop and its callbacks."""
