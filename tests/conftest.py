import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def golden_path(name: str) -> Path:
    """The team's golden file when ../shared is there (it may hold more cases), else the repo's copy."""
    shared = SHARED / "golden" / name
    return shared if shared.exists() else REPO / "tests" / "golden" / name


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
