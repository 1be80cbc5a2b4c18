"""CropTable and AestheticCrop(table=...): the crops of each image scored once, reused every epoch (issue 31).

What is checked: ``top_k=1`` with a table gives ``Cropper.crop``'s crop to a pixel (real photos and the
default model); the three ways to fill a table agree; the file (safetensors, metadata, atomic, refused for
another model / ratio / proposer); keys (index, path, fingerprint with its shape check); sampling
(reproducible under a seed and a generator, in the main process and in DataLoader workers, never a crop
that cuts more faces than the best); loading a model never draws from torch's global generator; ``s2c
table`` (resume after SIGKILL gives the uninterrupted table; torchrun). Most tests use the geometry prior
(no pixels: fast); those that need the default model say so."""
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from s2c_kornia import AestheticCrop, CropTable
from s2c_ops import cli
from s2c_ops.cropping.candidates import pixel_crops
from s2c_kornia.sampling import FACE_CUT_PENALTY
from s2c_ops.cropping.cropper import Cropper
from s2c_ops.cropping.table import TableMismatch, TableMiss
from s2c_ops.cropping.table_keys import fingerprints, path_key
from s2c_ops.models import create_model
from s2c_ops.models.prior import GeometryPrior

from conftest import SHARED

FCDB_IMAGES = SHARED / "data" / "FCDB" / "images"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def prior():
    return GeometryPrior.default()


def images(batch=6, height=96, width=128, seed=0):
    """8-bit values as floats (what ToTensor gives)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, height, width, generator=g) * 255).round() / 255


def crops_of(params):
    """(B, 4) whole-pixel (x0, y0, w, h) from Kornia's src corners."""
    src = params["src"]
    return torch.stack([src[:, 0, 0], src[:, 0, 1], src[:, 2, 0] - src[:, 0, 0] + 1,
                        src[:, 2, 1] - src[:, 0, 1] + 1], 1).long()


def photos(count, short_side=240):
    """FCDB photos (decoded from JPEG, resized to a training resolution) when ../shared has them, else noise."""
    files = sorted(FCDB_IMAGES.glob("*.jpg"))[:count] if FCDB_IMAGES.is_dir() else []
    if len(files) < count:
        return [images(1, short_side, short_side * 4 // 3, seed=i)[0] for i in range(count)]
    out = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            scale = short_side / min(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
        out.append(torch.from_numpy(__import__("numpy").asarray(im).copy()).permute(2, 0, 1).float() / 255)
    return out


# -- the crop Cropper.crop gives ----------------------------------------------------------------------------
def test_top_k_1_with_a_table_gives_cropper_crop_to_the_pixel_default_model():
    """Real photos, the default model (faces and all): the table's best crop is Cropper.crop's."""
    model = create_model("default")
    pics = photos(3, short_side=224)
    ratio = 4 / 3
    table = CropTable.build(pics, ["4:3", "1:1"], model=model, keys="index", progress=False, batch_size=2)
    cropper = Cropper(model)
    for i, pic in enumerate(pics):
        aug = AestheticCrop("4:3", size=(60, 80), model=model, table=table)
        aug(pic[None], keys=[i])
        h, w = pic.shape[-2:]
        want = pixel_crops(cropper.crop(pic, ratio)[0].boxes[:1], ratio, h, w)
        assert torch.equal(crops_of(aug._params), want), i


def test_top_k_1_matches_cropper_for_a_batch(prior):
    x = images()
    table = CropTable.build(list(x), ["4:3"], model=prior, progress=False)
    aug = AestheticCrop("4:3", size=(48, 64), model=prior, table=table)
    aug(x, keys=torch.arange(6))
    ref = Cropper(prior).crop(list(x), "4:3")
    want = pixel_crops(torch.stack([r.boxes[0] for r in ref]), 4 / 3, 96, 128)
    assert torch.equal(crops_of(aug._params), want)
    assert torch.allclose(aug._params["crop_score"], torch.stack([r.scores[0] for r in ref]))


def test_three_ways_to_fill_agree(prior, tmp_path):
    """build() over a dataset, lazy filling by AestheticCrop and s2c table over files give the same table."""
    x = images(4)
    built = CropTable.build([(im, 0) for im in x], ["4:3"], model=prior, keys="fingerprint", progress=False)
    lazy = CropTable("fingerprint")
    AestheticCrop("4:3", size=(48, 64), model=prior, table=lazy)(x)
    for i, im in enumerate(x):
        Image.fromarray((im * 255).byte().permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    assert cli.main(["table", str(tmp_path), "--ratio", "4:3", "--model", "prior", "--keys", "fingerprint",
                     "--out", str(tmp_path / "t.safetensors"), "--workers", "0"]) == 0
    files = CropTable.load(tmp_path / "t.safetensors")
    keys = fingerprints(x)
    for other in (lazy, files):
        built.same_kind(other)
        for a, b in zip(built.lookup(keys, (96, 128), "4:3"), other.lookup(keys, (96, 128), "4:3")):
            assert torch.equal(a, b)


# -- the file ----------------------------------------------------------------------------------------------
def test_save_load_roundtrip_metadata_and_atomic(prior, tmp_path):
    x = images(3)
    table = CropTable.build(list(x), ["16:9", "1"], model=prior, candidates=8, progress=False)
    path = tmp_path / "t.safetensors"
    table.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]  # no temporary left
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == {"keys", "sizes", "boxes", "scores"}
    assert meta["format"] == "s2c-crop-table/1" and meta["model"].startswith("sha256:")
    assert meta["proposer"] == "default" and meta["keys"] == "index" and meta["candidates"] == "8"
    loaded = CropTable.load(path)
    assert loaded.ratios == (16 / 9, 1.0) and len(loaded) == 3 and not loaded.lazy
    keys = torch.arange(3)
    for ratio in ("16:9", "1:1"):
        for a, b in zip(table.lookup(keys, (96, 128), ratio), loaded.lookup(keys, (96, 128), ratio)):
            assert torch.equal(a, b)
    # the best first, a face rule's scores: sorted descending
    _, _, scores = loaded.lookup(keys, (96, 128), "16:9")
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_refused_for_another_model_ratio_or_proposer(prior, tmp_path):
    table = CropTable.build(list(images(2)), ["4:3"], model=prior, progress=False)
    table.save(tmp_path / "t.safetensors")
    loaded = CropTable.load(tmp_path / "t.safetensors")
    other = GeometryPrior.default()
    with torch.no_grad():
        next(p for p in other.parameters()).add_(1)
    with pytest.raises(TableMismatch, match="made by model sha256:"):
        AestheticCrop("4:3", model=other, table=loaded)
    with pytest.raises(TableMismatch, match="holds ratios 1.33333, not 1.77778"):
        AestheticCrop("16:9", model=prior, table=loaded)
    with pytest.raises(TableMismatch, match="proposer 'default'.*'saliency'"):
        AestheticCrop("4:3", model=prior, proposer="saliency", table=loaded)
    AestheticCrop("4/3", model=prior, table=loaded)  # the same ratio, written otherwise


def _rewritten(path, out, **change):
    """The table file ``path`` written again to ``out`` with ``change``'s arrays (callables of the old array)
    or metadata values (strings)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    for k, v in change.items():
        if callable(v):
            tensors[k] = v(tensors[k])
        else:
            meta[k] = v
    save_file(tensors, str(out), metadata=meta)
    return out


@pytest.mark.parametrize("change, says", [
    (dict(boxes=lambda b: torch.full_like(b, float("nan"))), "a scored box that is not finite"),
    (dict(boxes=lambda b: b[..., [2, 1, 0, 3]]), "a scored box that is not finite, empty, inverted"),
    (dict(boxes=lambda b: b + 1000), "outside its image"),
    (dict(scores=lambda s: torch.full_like(s, float("nan"))), "a score that is NaN"),
    (dict(keys=lambda k: k.flip(0)), "keys are not sorted and unique"),
    (dict(keys=lambda k: k[:, None]), "do not agree in shape"),
    (dict(keys=lambda k: k.float()), "not of the kinds it writes"),
    (dict(sizes=lambda s: s * 0), "an image size under 1 pixel"),
    (dict(ratios="null"), "ratios 'null' is not a list"),
    (dict(ratios="[null]"), "not a readable crop table"),
    (dict(candidates="x"), "not a readable crop table"),
])
def test_a_damaged_table_is_refused_naming_it(tmp_path, prior, change, says):
    """Each loaded before: NaN or inverted boxes cut black images, unsorted keys missed images the table
    held, others raised TypeError or a RuntimeError at the first lookup."""
    path = tmp_path / "t.safetensors"
    CropTable.build(list(images(3)), ["4:3"], model=prior, candidates=4, progress=False).save(path)
    damaged = _rewritten(path, tmp_path / "damaged.safetensors", **change)
    with pytest.raises(ValueError, match=says) as error:
        CropTable.load(damaged)
    assert str(damaged) in str(error.value)


def test_lookup_and_fill_check_their_keys_and_size(prior):
    """Sizes of 0, negative or NaN gave found rows of zero, negative or NaN boxes; float keys were silently not
    found (lookup) or not added (fill); other key kinds failed deep inside (AttributeError, IndexError)."""
    from s2c_ops import Cropper

    table = CropTable.build(list(images(2)), ["4:3"], model=prior, candidates=4, progress=False)
    keys = torch.arange(2)
    for size in ((0, 0), (-96, 128), (float("nan"), 128), (96,)):
        with pytest.raises(ValueError, match="size must be the images' \\(height, width\\), two ints >= 1"):
            table.lookup(keys, size, "4:3")
    for bad in (keys.float(), keys[:, None], [0, 1], 0, torch.tensor(0)):
        with pytest.raises(ValueError, match="keys must be a 1-D integer tensor"):
            table.lookup(bad, (96, 128), "4:3")
    with pytest.raises(ValueError, match="keys must be a 1-D integer tensor"):
        table.fill(Cropper(prior), list(images(2)), keys.float())
    with pytest.raises(ValueError, match="fill\\(\\) got 1 keys for 2 images"):
        table.fill(Cropper(prior), list(images(2)), keys[:1])
    assert table.lookup(keys.int(), (96, 128), "4:3")[0].all()  # any integer kind finds them


def test_bad_files_and_arguments(tmp_path, prior):
    (tmp_path / "junk.safetensors").write_bytes(b"not a table")
    with pytest.raises(ValueError, match="is not a readable crop table"):
        CropTable.load(tmp_path / "junk.safetensors")
    prior.save(tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="is not a crop table"):
        CropTable.load(tmp_path / "weights.safetensors")
    with pytest.raises(FileNotFoundError):
        CropTable.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError):
        CropTable("names")
    with pytest.raises(ValueError):
        CropTable(candidates=0)
    with pytest.raises(ValueError, match="same_on_batch"):
        AestheticCrop("4:3", model=prior, table=CropTable(), same_on_batch=True)
    with pytest.raises(TypeError):
        AestheticCrop("4:3", model=prior, table="t.safetensors")


def test_a_miss_without_lazy_filling_raises_one_line(prior, tmp_path):
    table = CropTable.build(list(images(2)), ["4:3"], model=prior, progress=False)
    table.lazy = False
    aug = AestheticCrop("4:3", size=(48, 64), model=prior, table=table)
    with pytest.raises(TableMiss, match=r"1 image\(s\) of this batch are not in the crop table") as e:
        aug(images(2), keys=[1, 5])
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="pass keys="):
        aug(images(2))


def test_add_keeps_the_first_entry_of_a_key_in_bulk_and_one_at_a_time():
    """Many images at once (straight into the sorted arrays) and a few (pending, merged later) give one table."""
    n, k = 5000, 4
    g = torch.Generator().manual_seed(0)
    keys = torch.randperm(n, generator=g) * 7
    boxes = torch.rand(n, 1, k, 4, generator=g) * 100
    scores = torch.rand(n, 1, k, generator=g).sort(-1, descending=True).values
    sizes = torch.tensor([[100, 120]], dtype=torch.int32).expand(n, 2)
    bulk, few = CropTable(candidates=k), CropTable(candidates=k)
    for t in (bulk, few):
        t.bind(["1:1"], "sha256:x", "default")
    bulk.add(keys, sizes, boxes, scores)
    for start in range(0, n, 300):
        few.add(keys[start:start + 300], sizes[start:start + 300], boxes[start:start + 300], scores[start:start + 300])
    # the same keys again, other values: ignored (a key keeps its first entry), also within one call
    bulk.add(keys[:10].repeat(2), sizes[:20], boxes[:20] + 1, scores[:20])
    assert len(bulk) == len(few) == n
    probe = torch.cat([keys[::37], torch.tensor([1, 3])])  # two keys never added
    for t in (bulk, few):
        found, got, top = t.lookup(probe, (100, 120), "1:1")
        assert found[:-2].all() and not found[-2:].any()
        assert torch.equal(got[:-2], boxes[::37, 0]) and torch.equal(top[:-2], scores[::37, 0])
        assert (top[-2:] == -math.inf).all()
    twice = CropTable(candidates=k).bind(["1:1"], "sha256:x", "default")
    twice.add(torch.tensor([5, 5]), sizes[:2], boxes[:2], scores[:2])
    assert len(twice) == 1 and torch.equal(twice.lookup(torch.tensor([5]), (100, 120), 1.0)[1][0], boxes[0, 0])


# -- keys --------------------------------------------------------------------------------------------------
def test_fingerprints():
    x = images(3)
    f = fingerprints(x)
    assert torch.equal(f, fingerprints((x * 255).round().byte()))  # the uint8 image and its float copy
    assert len(set(f.tolist())) == 3
    y = x.clone()
    y[1, 2, 50, 60] += 1 / 255
    assert (fingerprints(y) != f).tolist() == [False, True, False]
    if torch.cuda.is_available():
        assert torch.equal(fingerprints(x.cuda()).cpu(), f)


def test_fingerprint_needs_the_same_shape(prior):
    x = images(2)
    table = CropTable.build(list(x), ["4:3"], model=prior, keys="fingerprint", progress=False)
    found, _, _ = table.lookup(fingerprints(x), (96, 128), "4:3")
    assert found.all()
    found, _, _ = table.lookup(fingerprints(x), (128, 96), "4:3")  # a colliding fingerprint of another shape
    assert not found.any()


def test_path_keys_and_explicit_keys_scale_with_a_resize(prior):
    x = images(2)
    paths = ["data/a.jpg", "data/b.jpg"]
    table = CropTable.build(list(x), ["4:3"], model=prior, keys="path", key_of=lambda i, item: paths[i], progress=False)
    assert path_key("data/./a.jpg") == path_key("data/a.jpg") != path_key("data/b.jpg")
    _, boxes, _ = table.lookup(torch.tensor([path_key(p) for p in paths]), (96, 128), "4:3")
    found, half, _ = table.lookup(torch.tensor([path_key(p) for p in paths]), (48, 64), "4:3")
    assert found.all() and torch.allclose(half, boxes / 2)
    aug = AestheticCrop("4:3", size=(48, 64), model=prior, table=table)
    aug(x, keys=["data/a.jpg", "data/./b.jpg"])
    with pytest.raises(ValueError, match="keyed by file path"):
        aug(x, keys=[0, 1])
    with pytest.raises(ValueError, match="got 1 keys for 2 images"):
        aug(x, keys=["data/a.jpg"])
    # Errors name the paths given, not their hashes.
    with pytest.raises(TableMismatch, match=r"key 'data/a.jpg': 96x96 now, 96x128 in the table"):
        aug(torch.rand(2, 3, 96, 96), keys=["data/a.jpg", "data/b.jpg"])
    table.lazy = False
    with pytest.raises(TableMiss, match=r"keys 'data/c.jpg'; size"):
        aug(x, keys=["data/a.jpg", Path("data/c.jpg")])


def test_index_keys_refuse_an_image_of_another_aspect(prior):
    """Boxes scale to a resize that keeps the aspect (each side rounded); under a key held for a photo of
    another aspect they would lose their ratio, so the table refuses, lazy or not (no silent wrong crop)."""
    table = CropTable.build(list(images(2)), ["4:3"], model=prior, keys="index", progress=False)
    found, _, _ = table.lookup(torch.tensor([0, 1]), (71, 95), "4:3")  # 96x128 resized, one side rounded
    assert found.all()
    aug = AestheticCrop("16:9", size=(36, 64), model=prior, table=CropTable("index"))
    aug(torch.rand(2, 3, 224, 298), keys=[0, 1])  # Resize(224) of a 4032x3024 photo: its long side truncated
    aug(torch.rand(2, 3, 1024, 1365), keys=[0, 1])  # Resize(1024) of it: the stored size is the rounded one
    aug(torch.rand(2, 3, 96, 128), keys=[0, 1])
    with pytest.raises(TableMismatch, match=r"key 0: 96x72 now, 224x298 in the table"):
        aug(torch.rand(2, 3, 96, 72), keys=[0, 1])
    with pytest.raises(TableMismatch, match="another aspect"):
        table.lookup(torch.tensor([1]), (96, 96), "4:3")


def test_lazy_filling_scores_each_image_once():
    class Counting:
        bbox_num = 2
        calls = 0

        def __call__(self, images, crop_boxes, object_boxes):
            Counting.calls += 1
            return torch.cat([(b[:, 2] - b[:, 0]) * 0 + b[:, 0] for b in crop_boxes])  # rightmost wins

    model = Counting()
    table = CropTable("index")
    aug = AestheticCrop("4:3", size=(48, 64), model=model, proposer="image", table=table, top_k=3)
    x = images(4)
    aug(x[:2], keys=[0, 1])
    first = Counting.calls
    assert first > 0 and len(table) == 2
    for _ in range(3):  # epochs after the first
        aug(x[:2], keys=[0, 1])
    assert Counting.calls == first
    aug(x, keys=[0, 1, 2, 3])  # two new images: scored, the others not
    assert Counting.calls > first and len(table) == 4


# -- sampling ----------------------------------------------------------------------------------------------
def epoch_crops(aug, x, seed=None, generator=None):
    if seed is not None:
        torch.manual_seed(seed)
    out = []
    for _ in range(4):
        aug(x, keys=torch.arange(len(x)))
        out.append(crops_of(aug._params))
    return torch.stack(out)


def test_sampling_is_reproducible_under_a_seed_and_a_generator(prior):
    x = images(6)
    table = CropTable.build(list(x), ["4:3"], model=prior, progress=False)
    aug = AestheticCrop("4:3", size=(48, 64), model=prior, table=table, top_k=5)
    a, b, c = epoch_crops(aug, x, 0), epoch_crops(aug, x, 0), epoch_crops(aug, x, 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(t.tolist()) for t in a.reshape(-1, 4)}) > 6  # not always the best one
    g = torch.Generator()
    gen = AestheticCrop("4:3", size=(48, 64), model=prior, table=table, top_k=5, generator=g)
    g.manual_seed(3)
    first = epoch_crops(gen, x)
    torch.manual_seed(123)  # the global generator plays no part
    g.manual_seed(3)
    assert torch.equal(epoch_crops(gen, x), first)


def test_a_draw_never_cuts_more_faces_than_the_best(prior):
    aug = AestheticCrop("4:3", model=prior, top_k=4)
    boxes = torch.arange(16.0).reshape(2, 2, 4).expand(2, 2, 4).repeat(1, 2, 1)  # (2, 4, 4)
    scores = torch.tensor([[0.5, 0.4, 0.45 - FACE_CUT_PENALTY, 0.3 - FACE_CUT_PENALTY],
                           [0.5 - FACE_CUT_PENALTY, 0.4 - FACE_CUT_PENALTY, 0.2 - FACE_CUT_PENALTY, -math.inf]])
    seen = set()
    for u in torch.linspace(0, 0.999, 50):
        _, score = aug._pick(boxes, scores, torch.full((2,), float(u)))
        seen.update((i, round(float(s), 3)) for i, s in enumerate(score))
    assert {s for i, s in seen if i == 0} == {0.5, 0.4}
    assert {s for i, s in seen if i == 1} == {round(0.5 - FACE_CUT_PENALTY, 3), round(0.4 - FACE_CUT_PENALTY, 3),
                                              round(0.2 - FACE_CUT_PENALTY, 3)}


def test_seeded_runs_agree_with_a_lazily_loaded_default_model():
    """Loading the model (and the face detector) at the first crop draws nothing from torch's generator: a
    run that loads them lazily picks the crops of a run whose model was loaded before seeding."""
    from s2c_ops.cropping.proposals import faces

    x = photos(2, short_side=96)
    x = torch.stack([p[:, :96, :128] for p in x])

    def run(preload):
        aug = AestheticCrop("4:3", size=(48, 64), top_k=4)
        if preload:
            aug.cropper("cpu")
        torch.manual_seed(0)
        out = []
        for _ in range(2):
            aug(x)
            out.append(crops_of(aug._params))
        return torch.stack(out)

    faces._shipped_nets.cache_clear()
    lazy = run(preload=False)
    assert torch.equal(lazy, run(preload=True))
    state = torch.random.get_rng_state()
    faces._shipped_nets.cache_clear()
    create_model("default"), create_model("prior"), faces._shipped_nets(torch.device("cpu"))
    assert torch.equal(state, torch.random.get_rng_state())


class Photos(torch.utils.data.Dataset):
    def __init__(self, x, aug):
        self.x, self.aug = x, aug

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.aug(self.x[i], keys=[i])
        scorers = len(self.aug._croppers)  # a Cropper is made (and a model used) only to score
        return torch.cat([crops_of(self.aug._params)[0], torch.tensor([scorers])])


def test_reproducible_in_dataloader_workers_without_a_model(prior, tmp_path):
    """A covering table in two workers: the same seed gives the same crops, and no worker loads a model."""
    x = images(8)
    CropTable.build(list(x), ["4:3"], model=prior, progress=False).save(tmp_path / "t.safetensors")
    aug = AestheticCrop("4:3", size=(48, 64), model=prior, table=CropTable.load(tmp_path / "t.safetensors"), top_k=4)
    loader = torch.utils.data.DataLoader(Photos(x, aug), batch_size=2, num_workers=2)

    def run(seed):
        torch.manual_seed(seed)
        return torch.cat([torch.cat(list(loader)) for _ in range(2)])

    a = run(0)
    assert torch.equal(a, run(0)) and not torch.equal(a, run(1))
    assert (a[:, 4] == 0).all()  # nothing was scored in the workers


# -- s2c table ---------------------------------------------------------------------------------------------
def jpegs(folder, count):
    folder.mkdir()
    for i in range(count):
        Image.fromarray((images(1, 192, 256, seed=i)[0] * 255).byte().permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.jpg")
    return folder


def same_tables(a, b, ratio="4:3"):
    a._consolidate(), b._consolidate()
    assert torch.equal(a._keys, b._keys)
    assert torch.equal(a._sizes, b._sizes) and torch.equal(a._boxes, b._boxes) and torch.equal(a._scores, b._scores)


def test_cli_sigkill_then_resume_gives_the_uninterrupted_table(tmp_path):
    """The default model (slow enough to be killed part-way), 12 photos in batches of 2: killed once 2 batches
    are written (counted, not timed), resumed, the table is the one an uninterrupted run writes."""
    src = jpegs(tmp_path / "src", 12)
    args = ["table", str(src), "--ratio", "4:3", "--batch-size", "2", "--workers", "1"]
    cmd = [sys.executable, "-m", "s2c_ops.cli", *args, "--out", str(tmp_path / "killed.safetensors")]
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE)
    parts = tmp_path / "killed.safetensors.parts"
    deadline = time.monotonic() + 300
    while len(list(parts.glob("batch*.safetensors"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("batch*.safetensors")))
    assert 2 <= done < 6 and not (tmp_path / "killed.safetensors").exists()
    resumed = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not parts.exists()
    whole = subprocess.run(cmd[:-1] + [str(tmp_path / "whole.safetensors")], env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert whole.returncode == 0, whole.stderr
    same_tables(CropTable.load(tmp_path / "killed.safetensors"), CropTable.load(tmp_path / "whole.safetensors"))
    assert len(CropTable.load(tmp_path / "whole.safetensors")) == 12


def test_cli_usage_errors_and_failures(tmp_path, capsys):
    src = jpegs(tmp_path / "src", 2)
    (src / "bad.jpg").write_bytes(b"broken")
    out = str(tmp_path / "t.safetensors")
    base = ["table", str(src), "--ratio", "4:3", "--model", "prior", "--out", out, "--workers", "0"]
    assert cli.main(base) == 1
    err = capsys.readouterr().err
    assert "error " + str(src / "bad.jpg") + ": not an image" in err and "1 input(s) failed" in err
    table = CropTable.load(out)
    assert len(table) == 2
    found, _, _ = table.lookup(torch.tensor([path_key(src / "00.jpg")]), (192, 256), "4:3")
    assert found.all()
    assert cli.main(base) == 2 and "exists: pass --resume" in capsys.readouterr().err
    # The failed input is tried again by --resume (the parts stay while an input fails), then the run is done.
    assert cli.main(base + ["--resume"]) == 1 and "1 input(s) failed" in capsys.readouterr().err
    Image.open(src / "00.jpg").save(src / "bad.jpg")
    assert cli.main(base + ["--resume"]) == 0
    assert len(CropTable.load(out)) == 3 and not os.path.exists(out + ".parts")
    assert cli.main(base + ["--resume"]) == 2 and "no run to continue" in capsys.readouterr().err


def test_cli_an_image_too_small_for_a_ratio_fails_alone(tmp_path, capsys):
    """A photo that cannot hold one of the ratios is named and left out; the table of the others is written
    (before, the whole run stopped at it, naming "photo 1", and every --resume did the same)."""
    src = jpegs(tmp_path / "src", 2)
    Image.new("RGB", (1, 1)).save(src / "tiny.png")
    Image.new("RGB", (400, 20)).save(src / "strip.png")  # holds 16:9, not 1:4 (5 px wide)
    out = str(tmp_path / "t.safetensors")
    assert cli.main(["table", str(src), "--ratio", "16:9", "--ratio", "1:4", "--model", "prior", "--out", out,
                     "--workers", "0"]) == 1
    err = capsys.readouterr().err
    assert f"error {src / 'tiny.png'}: ratio 16:9: a 1x1 (height x width) image cannot hold a crop" in err
    assert f"error {src / 'strip.png'}: ratio 1:4: a 20x400 (height x width) image cannot hold a crop" in err
    assert "2 input(s) failed" in err
    assert len(CropTable.load(out)) == 2


def test_cli_never_replaces_what_is_not_a_table_and_never_waits(tmp_path, capsys):
    """--overwrite replaced a photo given as --out; a FIFO named like a photo hung the run; an empty folder
    wrote an empty table with exit 0."""
    src = jpegs(tmp_path / "src", 2)
    photo = src / "01.jpg"
    before = photo.read_bytes()
    base = ["table", str(src), "--ratio", "4:3", "--model", "prior", "--workers", "1"]
    assert cli.main([*base, "--out", str(photo), "--overwrite"]) == 2
    assert "exists and is not a crop table" in capsys.readouterr().err and photo.read_bytes() == before
    assert cli.main([*base, "--out", str(tmp_path), "--overwrite"]) == 2 and "is a folder" in capsys.readouterr().err
    assert cli.main([*base, "--out", str(photo / "t.safetensors")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    if hasattr(os, "mkfifo"):
        os.mkfifo(src / "pipe.jpg")
        assert cli.main([*base, "--out", str(tmp_path / "t.safetensors")]) == 1
        assert f"error {src / 'pipe.jpg'}: not a regular file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["table", str(tmp_path / "empty"), "--ratio", "4:3", "--out", str(tmp_path / "e.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "no image files in folder" in err and "no input images" in err and not (tmp_path / "e.safetensors").exists()


def test_cli_resume_with_other_options_is_refused(tmp_path, capsys):
    src = jpegs(tmp_path / "src", 2)
    out = tmp_path / "t.safetensors"
    parts = tmp_path / "t.safetensors.parts"
    parts.mkdir()
    from s2c_ops.files import write_json_atomic

    write_json_atomic(parts / "run.json", {"format": "s2c-table-run/1", "ratios": "[1.0]"})
    assert cli.main(["table", str(src), "--ratio", "4:3", "--model", "prior", "--out", str(out), "--resume"]) == 2
    assert "cannot --resume" in capsys.readouterr().err


def test_cli_torchrun_two_ranks_give_the_single_process_table(tmp_path):
    src = jpegs(tmp_path / "src", 5)
    args = ["table", str(src), "--ratio", "4:3", "--ratio", "1:1", "--model", "prior", "--batch-size", "2",
            "--workers", "0"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "s2c_ops.cli",
           *args, "--out", str(tmp_path / "ranks.safetensors")]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert cli.main(args + ["--out", str(tmp_path / "one.safetensors")]) == 0
    same_tables(CropTable.load(tmp_path / "ranks.safetensors"), CropTable.load(tmp_path / "one.safetensors"))
