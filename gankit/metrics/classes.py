"""Scores on a classifier's outputs: Inception Score and class statistics of generated samples."""

from __future__ import annotations

import math

import torch


def inception_score(logits: torch.Tensor, splits: int = 10) -> dict[str, float]:
    """Inception Score (Salimans et al. 2016, Sec. 4), the lecture notes' form:

        IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y) = E_x p(y|x),

    computed on ``splits`` consecutive equal parts of the samples; returns the mean and standard
    deviation over parts. With the Inception net's logits this is the IS of the papers; with a
    domain classifier's logits it is the "classifier score". 1 for a uniform classifier output, K
    for confident, balanced predictions over K classes.
    """
    n = logits.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"inception score needs 1 <= splits <= N; got splits = {splits}, N = {n}")
    logp = torch.log_softmax(logits.to(torch.float64), dim=1)
    scores = []
    for k in range(splits):
        part = logp[k * n // splits : (k + 1) * n // splits]
        log_py = torch.logsumexp(part, dim=0) - math.log(part.shape[0])  # log of the mean p(y|x)
        kl = (part.exp() * (part - log_py)).sum(1).mean()
        scores.append(float(kl.exp()))
    t = torch.tensor(scores, dtype=torch.float64)
    return {"is": float(t.mean()), "is_std": float(t.std(unbiased=False))}


def requested_labels(n: int, num_classes: int) -> torch.Tensor:
    """The labels a class-conditional generator is asked for when gankit samples it (training grids,
    evaluation, ``gankit sample``): classes in turn, 0, 1, ..., K-1, 0, ..., so every class is shown and
    ``class-agreement`` can score sample i against label i mod K."""
    return torch.arange(n) % num_classes


def label_statistics(labels: torch.Tensor, num_classes: int, min_count: int = 1) -> dict[str, float]:
    """Class coverage and KL to uniform of a histogram of class ids (N,) over ``num_classes``.

    ``classes_covered`` counts classes seen at least ``min_count`` times (the Stacked-MNIST
    "modes captured" of Metz et al. 2017 and Srivastava et al. 2017); ``class_kl`` is
    KL(p_hat || uniform) = sum_k p_k log(K p_k): 0 when classes are balanced, log K when every sample
    falls in one class.
    """
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    p = counts / counts.sum()
    nz = p[p > 0]
    return {
        "classes_covered": float((counts >= min_count).sum()),
        "class_coverage": float((counts >= min_count).double().mean()),
        "class_kl": float((nz * torch.log(num_classes * nz)).sum()),
    }


def class_agreement(logits: torch.Tensor, num_classes: int | None = None) -> dict[str, float]:
    """Fraction of generated samples whose predicted class equals the class requested for them
    (``requested_labels``): the accuracy of a conditional generator as judged by a classifier
    (Odena et al. 2017, Sec. 4.1, "fraction of samples classified as the intended class")."""
    k = int(num_classes or logits.shape[1])
    want = requested_labels(logits.shape[0], k).to(logits.device)
    return {"class_agreement": float((logits.argmax(1) == want).double().mean())}


def class_statistics(logits: torch.Tensor, min_count: int = 1) -> dict[str, float]:
    """``label_statistics`` of the classes a classifier predicts for generated samples (N, K logits)."""
    return label_statistics(logits.argmax(1), logits.shape[1], min_count)
