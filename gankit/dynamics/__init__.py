"""Small games for the theory of GAN training: the Dirac-GAN and the seeds' game-theory identities.

Never imports the trainer (``gankit.training``): the trainer may import this, not the other way round.
"""
