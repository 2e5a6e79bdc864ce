"""``gankit lab``: the interactive GAN Lab of the lecture notes (seed 003), live in the browser.

A local Starlette app (:mod:`gankit.lab.server`) serves one page and one WebSocket per tab; each tab
trains a 2-D toy GAN with gankit's own ``Trainer`` (:mod:`gankit.lab.session`) and draws the real and
generated points, D's decision surface, G's gradients and its transformation of the latent space.
The protocol between page and server: docs/lab-protocol.md.
"""
