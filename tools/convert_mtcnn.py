"""Converts MTCNN's published weights into the package's ``s2c_ops/weights/mtcnn.safetensors``.

    python tools/convert_mtcnn.py WHEEL [--out s2c_ops/weights/mtcnn.safetensors]

``WHEEL`` is ``facenet_pytorch-2.6.0-py3-none-any.whl`` (MIT licence; ``make mtcnn-weights`` takes it with
``pip download`` and runs this script). Its ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` are plain state
dicts, read with ``weights_only=True``; the wheel's sha256 is checked first. O-Net's landmark head is left
out (the package uses the boxes only). The result loads into :class:`~s2c_ops.cropping.proposals.faces.MTCNNNets`
with every key and shape checked.
"""
import argparse
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops.cropping.proposals.faces import MTCNNNets, published_names  # noqa: E402

WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel")
    p.add_argument("--out", default=str(ROOT / "s2c_ops" / "weights" / "mtcnn.safetensors"))
    args = p.parse_args()
    data = Path(args.wheel).read_bytes()
    if hashlib.sha256(data).hexdigest() != WHEEL_SHA256:
        sys.exit(f"{args.wheel}: sha256 mismatch (expected {WHEEL_SHA256})")
    state = {}
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        for net in ("pnet", "rnet", "onet"):
            raw = torch.load(io.BytesIO(wheel.read(f"facenet_pytorch/data/{net}.pt")), weights_only=True)
            state.update({f"{net}.{key}": value for key, value in raw.items()})
    nets = MTCNNNets()
    nets.load_state_dict(published_names(state), strict=True)
    save_file({k: v.contiguous() for k, v in nets.state_dict().items()}, args.out,
              metadata={"source": "facenet-pytorch 2.6.0 (MIT licence), MTCNN pnet/rnet/onet", "sha256": WHEEL_SHA256})
    os.chmod(args.out, 0o644)  # safetensors writes it readable by its owner alone
    print(f"{args.out}: {sum(v.numel() for v in nets.state_dict().values())} parameters")


if __name__ == "__main__":
    main()
