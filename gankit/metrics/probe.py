"""Linear probe: how linearly separable the classes are in a representation.

The standard test of learned features (BiGAN, Donahue et al. 2017, Sec. 4; ALI, Dumoulin et al.
2017, Sec. 4.3): freeze the encoder, fit a multinomial logistic regression on the features of labelled
training images, and report its accuracy on held-out images. Features are standardised with the
training set's mean and deviation first, so the regularisation strength means the same for any
encoder scale.
"""

from __future__ import annotations

import numpy as np
import torch


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    c: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Held-out accuracy of L2-regularised logistic regression (inverse strength ``c``) fitted on
    (train_features, train_labels); features are (N, F) and labels int class ids."""
    from sklearn.linear_model import LogisticRegression  # lazy: importing sklearn costs about a second

    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"linear_probe needs (N, F) features of one width, got {tuple(train_features.shape)} "
            f"and {tuple(test_features.shape)}"
        )
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise ValueError("linear_probe: features and labels differ in length")
    xtr = train_features.double().cpu().numpy()
    xte = test_features.double().cpu().numpy()
    mean, std = xtr.mean(0), xtr.std(0) + 1e-8
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit((xtr - mean) / std, train_labels.cpu().numpy())
    pred = clf.predict((xte - mean) / std)
    return float(np.mean(pred == test_labels.cpu().numpy()))
