"""Train the ``fashion-mnist`` feature extractor and write the weights the package ships.

    python -m lightning_stylegan.metrics.train_fashion_mnist [IDX_FOLDER] [--epochs 6]
        [--out lightning_stylegan/metrics/fashion_mnist_classifier.pt] [--threads N]

``IDX_FOLDER`` holds Fashion-MNIST's idx files (default: where Debian's ``dataset-fashion-mnist``
puts them). Trains on the 60k training images (random +-2 pixel shifts and horizontal flips, Adam,
cosine learning rate), reports the accuracy on the 10k test images, and writes the state dict (a
plain tensor dict, loaded with ``weights_only=True``) and, next to it, a JSON file with the test
accuracy and the training settings.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.build_fashion_mnist import DEFAULT_SOURCE, read_idx
from .fashion_mnist import WEIGHTS, FashionMnistClassifier, preprocess


def load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(folder / f"{split}-images-idx3-ubyte")
    labels = read_idx(folder / f"{split}-labels-idx1-ubyte")
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random +-2 pixel shifts (zero fill) and horizontal flips of uint8 [N, 1, 28, 28]."""
    n = images.shape[0]
    padded = F.pad(images, [2, 2, 2, 2])
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    out = padded[:, :, dy:dy + 28, dx:dx + 28]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


@torch.no_grad()
def accuracy(net: FashionMnistClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    correct = sum(int((net(preprocess(images[i:i + 1000]))[1].argmax(1) == labels[i:i + 1000]).sum())
                  for i in range(0, len(images), 1000))
    return correct / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    train_images, train_labels = load_split(Path(args.source), "train")
    test_images, test_labels = load_split(Path(args.source), "t10k")
    net = FashionMnistClassifier()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(len(train_images) / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train_images), generator=generator)
        for i in range(0, len(order), args.batch_size):
            index = order[i:i + args.batch_size]
            _, logits = net(preprocess(augment(train_images[index], generator)))
            loss = F.cross_entropy(logits, train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{args.epochs}  loss {loss.item():.3f}  test accuracy "
              f"{accuracy(net, test_images, test_labels):.4f}  {time.time() - start:.0f}s", flush=True)
    test_accuracy = accuracy(net, test_images, test_labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, args.out)
    info = {"test_accuracy": test_accuracy, "train_images": len(train_images), "test_images": len(test_images),
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
            "seconds": round(time.time() - start), "torch": torch.__version__}
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), test accuracy {test_accuracy:.4f}")


if __name__ == "__main__":
    main()
