"""Training: phases, the trainer loop, EMA, checkpoints, logging, run directories."""
