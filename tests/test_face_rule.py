"""The face rule (s2c_ops.cropping.FaceRule): what crops lose for the faces, and the crops built from them."""
import math
from typing import List

import pytest
import torch
from torch import Tensor

from s2c_ops import Cropper
from s2c_ops.cropping import FaceRule
from s2c_ops.cropping.candidates import ratio_anchors
from s2c_ops.cropping.face_rule import faces_cut
from s2c_ops.cropping.proposals import Proposer
from s2c_ops.ops.boxes import kept_share

RULE = FaceRule()
# Detector boxes in a 400 x 800 image: two main faces (50 px tall) and a small one (20 px).
FACES = torch.tensor([[200.0, 150, 240, 200], [320.0, 150, 360, 200], [700.0, 160, 716, 180]])


def penalty(*crops: List[float], faces: Tensor = FACES) -> List[float]:
    return RULE.penalty(torch.tensor(crops), faces, 400, 800).tolist()


def test_a_cut_costs_most_then_a_main_face_left_out_then_crowding():
    heads = RULE.heads(FACES, 400, 800)
    both = [150.0, 50, 450, 350]       # both main heads inside with room, the small one out
    one = [150.0, 50, 290, 350]        # the first main head inside, the second out
    cut = [150.0, 50, 340, 350]        # the second main head cut
    tight = [float(heads[0, 0]) - 1, 50, 450, 350]  # both inside, the first head's room cut
    p_both, p_one, p_cut, p_tight = penalty(both, one, cut, tight)
    assert p_both == 0
    assert 0 < p_tight <= RULE.left_out_penalty / 2 < p_one <= RULE.left_out_penalty < RULE.cut_penalty <= p_cut


def test_leaving_more_main_faces_out_costs_more_and_the_largest_most():
    faces = torch.tensor([[100.0, 100, 140, 150], [300.0, 100, 336, 145], [500.0, 100, 530, 135]])
    keep_all, keep_two, keep_one = [0.0, 0, 800, 400], [0.0, 0, 400, 400], [0.0, 0, 200, 400]
    largest_out = [250.0, 0, 800, 400]
    a, b, c, d = penalty(keep_all, keep_two, keep_one, largest_out, faces=faces)
    assert a == 0 < b < c <= RULE.left_out_penalty
    assert d > RULE.left_out_penalty / 2 and d > penalty([0.0, 0, 450, 400], faces=faces)[0]  # the smallest out


def test_a_large_face_at_the_photo_s_side_is_a_main_face():
    """A tall face that the photo's left side cuts is still a subject (the people measure asks for it, and
    FCDB's human crops keep such faces): leaving it out costs more than leaving out a small face."""
    edge, inner = [0.0, 250, 60, 330], [400.0, 200, 428, 230]
    faces = torch.tensor([edge, inner])
    assert RULE.main_faces(faces).tolist() == [True, False]
    keeps_edge, keeps_inner = [0.0, 0, 300, 400], [300.0, 0, 600, 400]
    with_edge, with_inner = penalty(keeps_edge, keeps_inner, faces=faces)
    assert with_edge < RULE.left_out_penalty / 2 <= with_inner


def test_when_every_crop_cuts_a_face_the_smallest_is_cut():
    cuts_small, cuts_main = [150.0, 50, 708, 350], [225.0, 50, 800, 350]
    small, main = penalty(cuts_small, cuts_main)
    assert RULE.cut_penalty <= small < main
    assert int(faces_cut(torch.tensor([cuts_small]), RULE.heads(FACES, 400, 800))[0]) == 1


def test_a_main_face_keeps_its_place_with_its_hair_trimmed_when_its_head_does_not_fit():
    face = torch.tensor([[100.0, 100, 200, 300]])  # its head is 350 px tall, a 16:9 crop of the photo 300
    kept, out = RULE.penalty(torch.tensor([[0.0, 60, 533, 360], [300.0, 0, 833, 300]]), face, 400, 900).tolist()
    assert 0 < kept <= RULE.trim_penalty + RULE.crowded_penalty < RULE.left_out_penalty / 2 < out
    boxes = RULE.candidates(face, 400, 900, 16 / 9)
    assert len(boxes) and (kept_share(boxes, RULE.cores(face, 400, 900)) > 0.999).all()


@pytest.mark.parametrize("ratio", [16 / 9, 1.0, 4 / 5])
def test_face_candidates_hold_the_main_heads_with_a_crop_that_cuts_none(ratio):
    boxes = RULE.candidates(FACES, 400, 800, ratio)
    assert len(boxes) >= 3
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert torch.allclose(w / h, torch.full_like(w, ratio), rtol=1e-3)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 800 + 1e-3).all() and (boxes[:, 3] <= 400 + 1e-3).all()
    heads = RULE.heads(FACES, 400, 800)
    assert (kept_share(boxes[:, None], heads[None, :2]) > 0.999).all()
    assert (faces_cut(boxes, heads) == 0).any()


def test_where_the_main_faces_do_not_fit_the_face_crops_hold_the_tallest_group_one_crop_holds():
    # A 4:5 crop of the 400 x 800 photo is 320 px wide: it holds the two faces at the right or the one at the left.
    alone, pair = [10.0, 150, 60, 200], [[640.0, 140, 700, 210], [740.0, 150, 790, 200]]
    faces = torch.tensor([alone, *pair])
    assert RULE.main_faces(faces).all()
    assert RULE.group(faces, 400, 800, 4 / 5).tolist() == [False, True, True]
    boxes = RULE.candidates(faces, 400, 800, 4 / 5)
    assert len(boxes) > 0
    cores = RULE.cores(faces, 400, 800)
    assert (kept_share(boxes[:, None], cores[None, 1:]) > 0.999).all()
    assert (kept_share(boxes[:, None], cores[None, :1]) == 0).all()
    # Not where a candidate already keeps the pair and cuts no face.
    assert len(RULE.candidates(faces, 400, 800, 4 / 5, others=torch.tensor([[480.0, 0, 800, 400]]))) == 0
    assert len(RULE.candidates(faces, 400, 800, 4 / 5, others=torch.tensor([[400.0, 0, 720, 400]]))) > 0
    assert len(RULE.candidates(torch.tensor([alone, pair[1]]), 400, 800, 2.0)) > 0  # both fit
    assert FaceRule(face_candidates=False).candidates(FACES, 400, 800, 1.0).shape == (0, 4)


def test_a_crop_too_small_for_a_face_s_core_that_holds_its_box_needs_no_face_crops():
    """Whether a candidate already keeps a face is judged as the charges judge it: on the face's own box
    where the crop is too small for its core (a 16:9 of a portrait, one tall face)."""
    face = torch.tensor([[200.0, 300, 400, 560]])  # 260 px tall, its core 312: a 16:9 crop of 534 x 800 is 300
    anchor = torch.tensor([[0.0, 280, 534, 580.4]])
    assert float(RULE.penalty(anchor, face, 800, 534)[0]) < RULE.left_out_penalty / 2  # neither cut nor left out
    assert len(RULE.candidates(face, 800, 534, 16 / 9, others=anchor)) == 0
    assert len(RULE.candidates(face, 800, 534, 16 / 9)) > 0


def test_no_face_candidates_when_no_crop_of_the_ratio_holds_a_face():
    huge = torch.tensor([[100.0, 0, 700, 390]])  # its face box is taller than a 16:1 crop of the photo
    assert RULE.candidates(huge, 400, 800, 16.0).shape == (0, 4)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="cut outweighs"):
        FaceRule(cut_penalty=10.0)
    with pytest.raises(ValueError, match="main_share"):
        FaceRule(main_share=0.0)
    # NaN passes every comparison: it once gave NaN scores and an arbitrary crop.
    for bad in (dict(crowded_penalty=math.nan), dict(trim_penalty=math.nan), dict(cut_growth=math.inf),
                dict(core=math.nan), dict(head=(math.nan, 0.5, 0.3, 0.25))):
        with pytest.raises(ValueError, match="finite numbers"):
            FaceRule(**bad)
    for bad, match in ((dict(core=-0.1), "core"), (dict(clearance=-1.0), "clearance"), (dict(head=(0.1,)), "head"),
                       (dict(scale_steps=()), "scale_steps"), (dict(scale_steps=(2.0,)), "scale_steps"),
                       (dict(shift_steps=1.5), "shift_steps"), (dict(shift_steps=0), "shift_steps"),
                       (dict(head="wide"), "head"), (dict(head=(0.1, 0.2, "x", 0.3)), "head")):
        with pytest.raises(ValueError, match=match):
            FaceRule(**bad)


def test_a_rule_read_back_from_json_is_the_same_rule():
    """s2c export writes asdict(FaceRule()) into scorer.json: lists and numpy numbers come back as the rule."""
    import json
    from dataclasses import asdict

    import numpy as np

    settings = json.loads(json.dumps(asdict(RULE)))
    assert isinstance(settings["head"], list) and FaceRule(**settings) == RULE
    again = FaceRule(cut_penalty=np.float32(100.0), shift_steps=np.int64(3), scale_steps=[0.0, 0.2, 0.45, 0.75])
    assert again == RULE and type(again.shift_steps) is int and again.scale_steps == RULE.scale_steps


class FixedFaces(Proposer):
    """Faces at fixed places of the model's 256 x 512 input, no other boxes."""

    uses_pixels = False

    def propose(self, images: Tensor) -> List[Tensor]:
        return [images.new_zeros((0, 4)) for _ in images]

    def propose_faces(self, images: Tensor) -> List[Tensor]:
        return [FACES * 256 / 400 for _ in images]


class LikesTheLeft:
    """A scorer that prefers small crops far left: left alone it leaves the second main face out."""

    bbox_num = 4
    reads_pixels = False

    def __call__(self, images, crops, objects):
        boxes = torch.cat(crops)
        return -(boxes[:, 0] + (boxes[:, 2] - boxes[:, 0])) / 1000


def test_the_cropper_keeps_every_main_face_and_cuts_none():
    photo = torch.rand(3, 400, 800)
    original = FACES.clone()
    ruled = Cropper(LikesTheLeft(), FixedFaces())
    box = ruled.crop(photo, "4:5")[0].boxes[:1]
    heads = RULE.heads(original, 400, 800)
    assert (kept_share(box, heads[:2]) > 0.99).all()
    assert int(faces_cut(box, heads)[0]) == 0
    bare = Cropper(LikesTheLeft(), FixedFaces(), face_rule=None)
    assert (kept_share(bare.crop(photo, "4:5")[0].boxes[:1], heads[:2]) < 0.99).any()


def test_face_crops_are_added_only_where_no_other_candidate_keeps_the_main_faces_whole():
    anchors = ratio_anchors(400, 800, 0.8)
    assert len(RULE.candidates(FACES, 400, 800, 0.8, others=anchors)) == 0  # one of them keeps both
    centred = anchors[:1]  # cuts the first main face
    assert len(RULE.candidates(FACES, 400, 800, 0.8, others=centred)) == len(RULE.candidates(FACES, 400, 800, 0.8)) > 0
    _, geometry, _ = Cropper(LikesTheLeft(), FixedFaces())._prepare(torch.rand(3, 400, 800))
    grid = Cropper(LikesTheLeft(), FixedFaces())._candidates(geometry, [0.8], faces=FACES)[0]
    assert torch.equal(grid, anchors)


def test_scores_are_the_same_with_the_objects_found_beforehand():
    cropper = Cropper(LikesTheLeft(), FixedFaces())
    photos = [torch.rand(3, 400, 800), torch.rand(3, 400, 800)]
    resized, geometries, _ = zip(*(cropper._prepare(p) for p in photos))
    found = cropper._find_objects(list(resized))
    assert [len(f) for _, f in found] == [3, 3]
    boxes = [ratio_anchors(400, 800, 1.0)] * 2
    before = cropper._score_images(list(resized), list(geometries), boxes, found=found)
    again = cropper._score_images(list(resized), list(geometries), boxes)
    assert all(torch.equal(a, b) for a, b in zip(before, again))
    assert (before[0] < -RULE.left_out_penalty / 2).any()  # the rule applied on both paths
