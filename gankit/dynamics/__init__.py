"""Small games for the theory of GAN training: the Dirac-GAN and the seeds' game-theory identities.

Never imports the trainer (``gankit.train``): the trainer may import this, not the other way round.
"""
