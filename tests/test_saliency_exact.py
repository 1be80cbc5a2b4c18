"""The saliency proposer in tensor operations gives exactly what it gave with scipy and torchvision: the
same component labels as ``scipy.ndimage.label``, the same kept boxes as ``torchvision.ops.nms``, and the
same boxes and scores as the frozen output of the scipy version (golden/saliency_boxes.pt, made by
that version from the inputs of saliency_cases.py). Boxes must match exactly; scores are float sums whose
last bits depend on the CPU's vector units (1e-8 to 2e-7 apart between two x86 machines), so they match to
:data:`SCORE_TOLERANCE`."""

import numpy as np
import pytest
import torch
from torchvision.ops import nms

from conftest import REPO
from saliency_cases import SETTINGS, cases, crop_cases
from s2c_ops.cropping.proposals import SaliencyProposer, label_components, pad_box_sets
from s2c_ops.cropping.proposals.base import pad_ranked_boxes
from s2c_ops.cropping.proposals.nms import greedy_nms

GOLDEN = REPO / "tests" / "golden" / "saliency_boxes.pt"
SCORE_TOLERANCE = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def golden():
    return torch.load(GOLDEN)


def scipy_labels(mask: torch.Tensor) -> torch.Tensor:
    """The labels' definition through scipy: each 8-connected component gets 1 + its largest flat index."""
    ndimage = pytest.importorskip("scipy.ndimage")
    out = torch.zeros(mask.shape, dtype=torch.int64)
    flat = torch.arange(1, mask[0].numel() + 1)
    for i, m in enumerate(mask):
        ids, count = ndimage.label(m.numpy(), structure=np.ones((3, 3), dtype=bool))
        ids = torch.from_numpy(ids.astype(np.int64)).view(-1)
        top = torch.zeros(count + 1, dtype=torch.int64).scatter_reduce(0, ids, flat, "amax")
        top[0] = 0
        out[i] = top[ids].view(m.shape)
    return out


def snake(height: int, width: int) -> torch.Tensor:
    """One path through every other row, turning at alternate ends: the longest path a map can hold."""
    m = torch.zeros(height, width, dtype=torch.bool)
    m[::2] = True
    m[1::4, -1] = True
    m[3::4, 0] = True
    return m


def spiral(size: int) -> torch.Tensor:
    """A square spiral of one-pixel walls with one-pixel gaps, from the border inwards (``size`` odd)."""
    m = torch.zeros(size, size, dtype=torch.bool)
    lo, hi = 0, size - 1
    while lo <= hi:
        m[lo, lo:hi + 1] = True  # top, right, bottom, then the left side up to the next ring's top
        m[lo:hi + 1, hi] = True
        m[hi, lo:hi + 1] = True
        m[lo + 2:hi + 1, lo] = True
        if lo + 2 <= hi - 2:
            m[lo + 2, lo + 1] = True  # the step into the next ring
        lo, hi = lo + 2, hi - 2
    return m


def adversarial_masks():
    yield "snake", snake(43, 64)[None]
    yield "snake-columns", snake(64, 43).T.contiguous()[None]
    yield "snake-reversed", snake(43, 64).flip(0, 1)[None]
    yield "spiral", spiral(41)[None]
    yield "spiral-reversed", spiral(41).flip(0)[None]
    diagonal = torch.zeros(40, 40, dtype=torch.bool)
    diagonal[torch.arange(40), torch.arange(40)] = True  # connected through corners only
    yield "diagonal", torch.stack([diagonal, diagonal.flip(1)])
    yield "checkerboard", ((torch.arange(30)[:, None] + torch.arange(50)[None]) % 2 == 0)[None]
    stripes = torch.zeros(2, 30, 50, dtype=torch.bool)
    stripes[0, :, ::2] = True
    stripes[1, ::2] = True
    yield "stripes", stripes
    yield "full-and-empty", torch.stack([torch.ones(20, 30, dtype=torch.bool), torch.zeros(20, 30, dtype=torch.bool)])
    yield "one-pixel", torch.ones(1, 1, 1, dtype=torch.bool)
    yield "line", (torch.rand(3, 1, 57, generator=torch.Generator().manual_seed(0)) > 0.3)


@pytest.mark.parametrize("name, mask", list(adversarial_masks()), ids=lambda v: v if isinstance(v, str) else "")
def test_label_components_adversarial(name, mask):
    assert torch.equal(label_components(mask), scipy_labels(mask))


@pytest.mark.parametrize("density", [0.2, 0.45, 0.55, 0.7, 0.9])
@pytest.mark.parametrize("shape", [(43, 64), (64, 43), (7, 5), (1, 31), (29, 1)])
def test_label_components_random(density, shape):
    g = torch.Generator().manual_seed(int(density * 100) + shape[0])
    mask = torch.rand(12, *shape, generator=g) < density
    assert torch.equal(label_components(mask), scipy_labels(mask))


def test_label_components_blurred_noise():
    """Blobs with ragged edges, holes and nested rings, as thresholded saliency maps look."""
    g = torch.Generator().manual_seed(1)
    noise = torch.nn.functional.interpolate(torch.rand(16, 1, 9, 13, generator=g), size=(43, 64), mode="bicubic")[:, 0]
    for level in (0.3, 0.5, 0.7):
        mask = noise > level
        assert torch.equal(label_components(mask), scipy_labels(mask))


def random_boxes(g, rows, count, size=100.0):
    xy = torch.rand(rows, count, 2, generator=g) * size
    wh = torch.rand(rows, count, 2, generator=g) * size / 2 + 1
    return torch.cat([xy, xy + wh], -1)


@pytest.mark.parametrize("host_reads", [True, False])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 1.0, 0.1])
def test_greedy_nms_is_torchvision_nms(threshold, host_reads):
    g = torch.Generator().manual_seed(int(threshold * 10))
    boxes = random_boxes(g, 5, 60)
    # Exact ties: repeated boxes, and boxes whose IoU with the first is exactly the threshold in float32.
    boxes[:, 10] = boxes[:, 3]
    boxes[:, 20] = torch.tensor([0.0, 0.0, 10.0, 10.0])
    boxes[:, 21] = torch.tensor([0.0, 0.0, 10.0, 10.0 * 0.3])
    valid = torch.rand(5, 60, generator=g) > 0.2
    valid[4] = False
    index, found = greedy_nms(boxes, valid, threshold, 60, host_reads=host_reads)
    for row in range(5):
        real = valid[row].nonzero().squeeze(1)
        expected = real[nms(boxes[row, real], -torch.arange(len(real), dtype=torch.float32), threshold)]
        assert torch.equal(index[row, found[row]], expected)
        assert not found[row, len(expected):].any() and found[row, : len(expected)].all()
    # Asking for fewer gives the first of them.
    few, few_found = greedy_nms(boxes, valid, threshold, 3, host_reads=host_reads)
    assert torch.equal(few[few_found], index[:, :3][found[:, :3]])


@pytest.mark.parametrize("host_reads", [True, False])
def test_greedy_nms_over_the_smaller_box(host_reads):
    g = torch.Generator().manual_seed(3)
    boxes = random_boxes(g, 3, 40)
    boxes[:, 5] = torch.tensor([2.0, 2.0, 4.0, 4.0])  # inside the next one: IoU 0.04, but all of it covered
    boxes[:, 6] = torch.tensor([0.0, 0.0, 40.0, 40.0])
    valid = torch.rand(3, 40, generator=g) > 0.1
    valid[:, 5:7] = True
    index, found = greedy_nms(boxes, valid, 0.7, 40, overlap="min", host_reads=host_reads)
    for row in range(3):
        kept = []
        for i in valid[row].nonzero().squeeze(1).tolist():  # greedy, written out
            a = boxes[row, i]
            if all(float(_intersection(a, boxes[row, j]) / torch.minimum(_area(a), _area(boxes[row, j]))) <= 0.7
                   for j in kept):
                kept.append(i)
        assert index[row, found[row]].tolist() == kept
    assert 5 in index[0, found[0]].tolist() and (6 not in index[0, found[0]].tolist())
    with pytest.raises(ValueError, match="overlap"):
        greedy_nms(boxes, valid, 0.7, 4, overlap="union")


def _area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def _intersection(a, b):
    w = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp_min(0)
    return w * (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp_min(0)


def test_pad_ranked_boxes_is_pad_box_sets():
    g = torch.Generator().manual_seed(0)
    boxes = random_boxes(g, 4, 9, size=60.0)
    boxes[1, 2] = float("nan")
    boxes[2, 0] = torch.tensor([70.0, 70.0, 90.0, 90.0])  # outside the image: dropped
    valid = torch.rand(4, 9, generator=g) > 0.3
    sets = [b[v] for b, v in zip(boxes, valid)]
    for num_boxes in (1, 3, 12):
        assert torch.equal(pad_ranked_boxes(boxes, valid, num_boxes, 50, 60), pad_box_sets(sets, num_boxes, 50, 60))


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_proposals_match_frozen(golden, setting):
    proposer = SaliencyProposer(**SETTINGS[setting])
    for name, images in cases().items():
        expected = golden["proposals"][f"{setting}/{name}"]
        got = proposer.propose_scored(images)
        assert len(got) == len(expected)
        for i, ((boxes, scores), (want_boxes, want_scores)) in enumerate(zip(got, expected)):
            assert torch.equal(boxes, want_boxes), f"{name} image {i}"
            torch.testing.assert_close(scores, want_scores, **SCORE_TOLERANCE, msg=f"{name} image {i}")
        # The fixed-size path AestheticCrop takes: the first boxes, padded the usual way.
        padded = torch.stack(proposer(images, 10))
        assert torch.equal(padded, pad_box_sets([b for b, _ in expected], 10, *images.shape[-2:])), name


def test_aesthetic_crop_matches_frozen(golden):
    for name, (boxes, scores) in crop_cases().items():
        want_boxes, want_scores = golden["crops"][name]
        assert torch.equal(boxes, want_boxes), name
        torch.testing.assert_close(scores, want_scores, **SCORE_TOLERANCE, msg=name)
