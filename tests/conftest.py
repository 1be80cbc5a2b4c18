import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


#: The team's GAICD copy when ../shared is there, else the repo's cut of it (tests/fixtures/make_gaic_fixture.py),
#: with what each holds.
GAIC_SHARED = SHARED / "data" / "GAIC"
GAIC_IS_SHARED = (GAIC_SHARED / "split.json").exists()
GAIC = GAIC_SHARED if GAIC_IS_SHARED else REPO / "tests" / "fixtures" / "gaic"
GAIC_COUNTS = (
    dict(train=1036, test=200, annotated=1040, sizes=1236, crop_lines=85_000,
         test_with_images=["265813", "297406", "302166", "309808"])
    if GAIC_IS_SHARED else
    dict(train=27, test=6, annotated=31, sizes=33, crop_lines=2_000, test_with_images=["265813"])
)


def golden_path(name: str) -> Path:
    """The team's golden file when ../shared is there (it may hold more cases), else the repo's copy."""
    shared = SHARED / "golden" / name
    return shared if shared.exists() else REPO / "tests" / "golden" / name


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
