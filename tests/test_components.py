"""Connected-component labels (s2c_ops.cropping.proposals.components): the CPU's label propagation and
the fixed-round hooking and shortcutting other devices run give scipy's labels on adversarial masks,
each map of a batch on its own, and the rounds stay within the proven bound (each round at least
halves the potential the proof counts)."""

import numpy as np
import pytest
import torch

from s2c_ops.cropping.proposals import components, label_components
from test_saliency_exact import adversarial_masks, scipy_labels, snake, spiral


def maze(size: int, seed: int) -> torch.Tensor:
    """A one-pixel-wide maze (a spanning tree of corridors) on a ``size`` x ``size`` map, ``size`` odd,
    carved by a seeded depth-first walk."""
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(size, size, dtype=torch.bool)
    cells = size // 2
    seen = torch.zeros(cells, cells, dtype=torch.bool)
    seen[0, 0] = m[1, 1] = True
    stack = [(0, 0)]
    while stack:
        y, x = stack[-1]
        free = [(y + dy, x + dx) for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0))
                if 0 <= y + dy < cells and 0 <= x + dx < cells and not seen[y + dy, x + dx]]
        if not free:
            stack.pop()
            continue
        ny, nx = free[int(torch.randint(len(free), (1,), generator=g))]
        seen[ny, nx] = m[2 * ny + 1, 2 * nx + 1] = m[y + ny + 1, x + nx + 1] = True
        stack.append((ny, nx))
    return m


def all_masks(height: int, width: int) -> torch.Tensor:
    """Every binary map of that size, ``[2 ** (height * width), height, width]``."""
    cells = height * width
    return ((torch.arange(2**cells)[:, None] >> torch.arange(cells)) & 1).bool().view(-1, height, width)


def stacked_scipy_labels(mask: torch.Tensor) -> torch.Tensor:
    """``scipy_labels`` for many small maps at once: one call on the maps stacked, a blank row apart."""
    ndimage = pytest.importorskip("scipy.ndimage")
    n, h, w = mask.shape
    tall = torch.nn.functional.pad(mask, (0, 0, 0, 1)).reshape(-1, w).numpy()
    ids = torch.from_numpy(ndimage.label(tall, structure=np.ones((3, 3), dtype=bool))[0].astype(np.int64))
    ids = ids.view(n, h + 1, w)[:, :h].reshape(n, -1)
    flat = torch.arange(1, h * w + 1).expand(n, -1)
    top = torch.zeros(int(ids.max()) + 1, dtype=torch.int64).scatter_reduce(0, ids.flatten(), flat.flatten(), "amax")
    return (top[ids] * (ids > 0)).view(n, h, w)


def cases():
    yield from adversarial_masks()
    yield "spiral-transposed", spiral(41).T.contiguous()[None]
    yield "spiral-63", spiral(63)[None]
    yield "snake-long-rows", snake(9, 300)[None]
    yield "mazes", torch.stack([maze(43, seed) for seed in range(3)])
    yield "maze-63", maze(63, 3)[None]
    blocks = ((torch.arange(40)[:, None] // 2 + torch.arange(60)[None] // 2) % 2 == 0)  # 2x2 blocks meeting at corners
    yield "checker-blocks", blocks[None]
    yield "full-line", torch.ones(1, 1, 2000, dtype=torch.bool)
    yield "full-column", torch.ones(2, 2000, 1, dtype=torch.bool)
    yield "empty", torch.zeros(3, 43, 64, dtype=torch.bool)
    yield "empty-pixel", torch.zeros(1, 1, 1, dtype=torch.bool)
    g = torch.Generator().manual_seed(5)
    yield "columns", torch.rand(4, 61, 1, generator=g) > 0.3
    for density in (0.1, 0.3, 0.5, 0.6, 0.8, 0.95):
        yield f"random-{density}", torch.rand(6, 43, 64, generator=g) < density


CASES = list(cases())
IDS = [name for name, _ in CASES]


@pytest.mark.parametrize("name, mask", CASES, ids=IDS)
def test_fixed_rounds_match_early_stopping(name, mask):
    """The fixed-round path (other devices), run on the CPU, gives the CPU's labels and scipy's."""
    expected = scipy_labels(mask)
    assert torch.equal(label_components(mask), expected)
    assert torch.equal(components._hook_and_shortcut(mask), expected)


def test_maps_are_independent():
    """Each map of a batch is labelled as it is alone, on both paths, across the CPU's chunks too."""
    g = torch.Generator().manual_seed(2)
    masks = torch.cat([
        torch.stack([snake(43, 64), torch.cat([maze(43, 0), maze(43, 1)[:, :21]], 1),
                     torch.ones(43, 64, dtype=torch.bool), torch.zeros(43, 64, dtype=torch.bool)]),
        torch.rand(44, 43, 64, generator=g) < torch.linspace(0.05, 0.95, 44).view(-1, 1, 1),
    ])
    assert masks.shape[0] > 2**17 // (43 * 64)  # more than one chunk on the CPU
    for label in (label_components, components._hook_and_shortcut):
        batched = label(masks)
        for i in range(masks.shape[0]):
            assert torch.equal(batched[i : i + 1], label(masks[i : i + 1])), (label.__name__, i)
    assert torch.equal(label_components(masks), scipy_labels(masks))


def test_on_device(device):
    for _, mask in CASES:
        assert torch.equal(label_components(mask.to(device)).cpu(), scipy_labels(mask))


def test_round_budget():
    sizes = (0, 1, 2, 3, 4, 7, 8, 2752, 4096)
    assert [components._round_budget(size) for size in sizes] == [0, 0, 1, 1, 2, 2, 3, 11, 12]


def potentials(parent: torch.Tensor, component: torch.Tensor) -> torch.Tensor:
    """The proof's potential of each component: the sum over its trees of ``max(height, 1)``, in the
    slot of the component's label (``component``: scipy's labels, ``[N, 1 + h * w]``)."""
    slots = torch.arange(parent.shape[1]).expand_as(parent)
    node, depth = slots, torch.zeros_like(parent)
    while True:  # walk every slot up to its root
        up = parent.gather(1, node)
        if torch.equal(up, node):
            break
        depth, node = depth + (up != node), up
    height = torch.zeros_like(parent).scatter_reduce_(1, node, depth, "amax")
    weight = height.clamp_min(1) * ((parent == slots) & (component > 0))
    return torch.zeros_like(parent).scatter_add_(1, component, weight)


def rounds_and_potentials(mask: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """The rounds that change something and the largest component's size (``labels``: scipy's),
    checking after each round that every unfinished component's potential at least halved (rounding
    down) and that a finished one stays finished."""
    n, h, w = mask.shape
    component = torch.nn.functional.pad(labels.view(n, -1), (1, 0))
    parent, own = components._forest(mask)
    potential = potentials(parent, component)
    size = torch.zeros_like(parent).scatter_add_(1, component, (component > 0).long())
    assert torch.equal(potential, size)  # singletons: the potential starts at the component's size
    rounds = 0
    while True:
        new = components._round(parent, own, h)
        after = potentials(new, component)
        assert (after <= torch.where(potential > 1, potential // 2, potential)).all()
        if torch.equal(new, parent):
            return rounds, int(size.max())
        parent, potential, rounds = new, after, rounds + 1


@pytest.mark.parametrize("name, mask", CASES, ids=IDS)
def test_rounds_within_proven_bound(name, mask):
    """The rounds needed stay within the bound for the largest component, hence for ``h * w``."""
    rounds, largest = rounds_and_potentials(mask, scipy_labels(mask))
    assert rounds <= components._round_budget(largest) <= components._round_budget(mask[0].numel())


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 7), (1, 14)])
def test_every_small_map(shape):
    """Both paths label every map of a small size as scipy does, and each round halves the potential."""
    masks = all_masks(*shape)
    labels = stacked_scipy_labels(masks)
    assert torch.equal(label_components(masks), labels)
    assert torch.equal(components._hook_and_shortcut(masks), labels)
    rounds, largest = rounds_and_potentials(masks, labels)
    assert rounds <= components._round_budget(largest)
