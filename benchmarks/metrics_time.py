"""Metric time: feature extraction images/s per extractor, FID/KID arithmetic at d = 2048, and the
wall time of one FID of N generated samples end to end.

Ratios are measured in this one process:
* FID: our eigenvalue form vs ``scipy.linalg.sqrtm`` (what pytorch-fid uses) at d = 2048, and the
  absolute difference of the two values (must be < 1e-6 relative to the trace);
* extraction: images/s of pixels, classifier and Inception-v3 (299 px). Without the real Inception
  weights file the network is the same architecture with torchvision's random init: the speed is
  the same, the features are not FID features;
* FID of N samples: a DCGAN generator's N samples, their classifier features (the MNIST recipes'
  extractor) and the Fréchet distance to reference statistics computed beforehand (as the evaluator
  caches them): what one evaluation during training costs.

    python benchmarks/metrics_time.py [--images 256] [--fid-samples 1000 10000] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def timed(fn, repeat: int = 1) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def fid_arithmetic(d: int) -> None:
    from scipy.linalg import sqrtm

    from gankit.metrics.fid import trace_sqrt_product

    g = torch.Generator().manual_seed(0)
    a = torch.randn(d, 2 * d, generator=g, dtype=torch.float64)
    b = torch.randn(d, 2 * d, generator=g, dtype=torch.float64)
    c1, c2 = a @ a.T / (2 * d), b @ b.T / (2 * d)
    ours_s = timed(lambda: trace_sqrt_product(c1, c2))
    t0 = time.perf_counter()
    ref = float(np.trace(sqrtm(c1.numpy() @ c2.numpy())).real)
    scipy_s = time.perf_counter() - t0
    ours = trace_sqrt_product(c1, c2)
    print(
        f"FID trace term at d={d}: ours {ours_s:.2f} s, scipy sqrtm {scipy_s:.2f} s, "
        f"speed-up {scipy_s / ours_s:.1f}x, |diff| {abs(ours - ref):.2e} (value {ref:.4f})"
    )


def kid_arithmetic(n: int, d: int) -> None:
    from gankit.metrics.kernel import kid

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + 0.01
    s = timed(lambda: kid(x, y, subsets=100, subset_size=1000), repeat=1)
    print(f"KID 100 x 1000 subsets at d={d}, N={n}: {s:.2f} s")


def extraction(images: int, device: str) -> None:
    from gankit.data import DATASETS
    from gankit.metrics.classifier import ClassifierFeatures
    from gankit.metrics.classifier_net import SmallClassifier
    from gankit.metrics.features import Pixels, extract

    x = torch.rand(images, 3, 32, 32) * 2 - 1
    rows = [
        ("pixels", Pixels()),
        ("classifier (untrained weights)", ClassifierFeatures(SmallClassifier(3, 10), "-", "-")),
    ]
    try:
        from gankit.metrics.inception import find_weights, inception

        rows.append(("inception (real weights)", inception(weights=str(find_weights()))))
    except FileNotFoundError:
        from unittest import mock

        import torch_fidelity.feature_extractor_inceptionv3 as tfi
        import torchvision

        sd = torchvision.models.inception_v3(
            weights=None, aux_logits=False, init_weights=False, num_classes=1008
        ).state_dict()
        with mock.patch.object(tfi.torch, "load", lambda *a, **k: sd):
            net = tfi.FeatureExtractorInceptionV3("inception", ["2048"], feature_extractor_weights_path="-")

        class Wrap(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, t):
                return {"features": self.net(((t + 1) * 127.5).round().to(torch.uint8))[0]}

        rows.append(("inception (random init: same cost)", Wrap()))
    del DATASETS
    for name, ex in rows:
        ex = ex.to(device)
        n = images if "inception" not in name or device != "cpu" else min(images, 32)
        s = timed(lambda ex=ex, n=n: extract(ex, x[:n], batch_size=64, device=device))
        print(f"extract {name:<36} {n / s:10.1f} images/s on {device}")


def fid_of_samples(counts: list[int], device: str) -> None:
    from gankit.metrics.classifier import ClassifierFeatures
    from gankit.metrics.classifier_net import SmallClassifier
    from gankit.metrics.features import extract
    from gankit.metrics.fid import frechet_distance, gaussian_stats
    from gankit.models import GENERATORS

    G = GENERATORS.build("dcgan", out_shape=(1, 32, 32), z_dim=100, width=32).to(device).eval()
    ex = ClassifierFeatures(SmallClassifier(1, 10), "-", "-").to(device)
    ref = extract(ex, torch.rand(2000, 1, 32, 32) * 2 - 1, batch_size=500, device=device)["features"]
    mu_r, cov_r = gaussian_stats(ref)
    for n in counts:

        def run(n: int = n) -> float:
            with torch.no_grad():
                fake = torch.cat([G(torch.randn(500, 100, device=device)).cpu() for _ in range(-(-n // 500))])[:n]
            f = extract(ex, fake, batch_size=500, device=device)["features"]
            return float(frechet_distance(*gaussian_stats(f), mu_r, cov_r))

        s = timed(run)
        print(f"FID of {n:>6} samples (DCGAN-32 G + classifier features, d={ref.shape[1]}): {s:.2f} s on {device}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--fid-samples", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fid_arithmetic(args.dim)
    kid_arithmetic(2000, args.dim)
    extraction(args.images, args.device)
    fid_of_samples(args.fid_samples, args.device)


if __name__ == "__main__":
    main()
