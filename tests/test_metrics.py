"""GAICD ranking metrics and FCDB/FLMS box metrics: hand-computed cases, ties, scipy agreement,
the accumulator, bad inputs."""
import json
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from s2c_ops.data.metrics import GAICMetrics, acc_k, bde, iou, pcc, srcc, wacc

# Six crops. MOS order (best first): crop 5 (6.0), 2 (5.0), 0 (4.0), 1 (3.0), 4 (2.0), 3 (1.0),
# so the 0-based ground-truth ranks are r = [2, 3, 1, 5, 4, 0].
# Prediction order (best first): crop 0 (0.9), 1 (0.8), 3 (0.7), 4 (0.3), 5 (0.2), 2 (0.1).
G6 = [4.0, 3.0, 5.0, 1.0, 2.0, 6.0]
P6 = [0.9, 0.8, 0.1, 0.7, 0.3, 0.2]


# ---------------------------------------------------------------------------------------------
# correlations


def test_srcc_hand():
    # ranks of P6: [6, 5, 1, 4, 3, 2]; of G6: [4, 3, 5, 1, 2, 6]; d^2 = 4+4+16+9+1+16 = 50;
    # rho = 1 - 6 * 50 / (6 * 35) = -3/7
    assert srcc(P6, G6) == pytest.approx(-3 / 7, abs=1e-12)


def test_pcc_hand():
    # means 0.5 and 3.5; sum(dp*dg) = -1.5, sum(dp^2) = 0.58, sum(dg^2) = 17.5
    assert pcc(P6, G6) == pytest.approx(-1.5 / math.sqrt(0.58 * 17.5), abs=1e-12)


def test_correlations_perfect_and_reversed():
    g = [3.1, 2.0, 4.5, 1.2, 3.9]
    assert srcc(g, g) == pytest.approx(1.0)
    assert pcc(g, g) == pytest.approx(1.0)
    assert srcc([2 * x + 1 for x in g], g) == pytest.approx(1.0)
    assert srcc([-x for x in g], g) == pytest.approx(-1.0)
    assert pcc([-x for x in g], g) == pytest.approx(-1.0)
    assert srcc([x ** 3 for x in g], g) == pytest.approx(1.0)  # monotone, not linear
    assert pcc([x ** 3 for x in g], g) < 1.0


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(2, 90))
        g = rng.integers(1, 8, size=n) / 7.0 + rng.integers(0, 3, size=n)  # MOS-like, with ties
        p = rng.normal(size=n) + 0.5 * g
        if trial % 3 == 0:
            p = np.round(p, 1)  # ties in the predictions too
        if np.all(g == g[0]) or np.all(p == p[0]):
            continue
        assert srcc(p, g) == pytest.approx(spearmanr(p, g).statistic, abs=1e-12)
        assert pcc(p, g) == pytest.approx(pearsonr(p, g).statistic, abs=1e-12)


def test_correlations_constant_input_is_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert srcc([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0
        assert pcc([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == 0.0
        assert srcc([5, 5], [5, 5]) == 0.0


def test_two_crops():
    assert srcc([0.1, 0.2], [1.0, 3.0]) == pytest.approx(1.0)
    assert pcc([0.2, 0.1], [1.0, 3.0]) == pytest.approx(-1.0)


def test_tensor_inputs():
    p = torch.tensor(P6, dtype=torch.float32, requires_grad=True)
    g = torch.tensor(G6, dtype=torch.float64)
    assert srcc(p, g) == pytest.approx(-3 / 7, abs=1e-12)
    assert pcc(p * 1, g) == pytest.approx(pcc(P6, G6), abs=1e-6)
    assert acc_k(p, g, 2, 3) == 0.5
    assert acc_k(np.array(P6), tuple(G6), 2, 3) == 0.5
    assert acc_k(torch.tensor(P6, dtype=torch.bfloat16), g, 1, 3) == 1.0


# ---------------------------------------------------------------------------------------------
# Acc_K/N


@pytest.mark.parametrize(
    "k,n,expected",
    [
        (1, 3, 1.0),  # crop 0 (MOS 4) vs 3rd best MOS 4: hit
        (2, 3, 0.5),  # + crop 1 (MOS 3): miss
        (3, 3, 1 / 3),  # + crop 3 (MOS 1): miss
        (4, 5, 0.75),  # 5th best MOS 2: crops 0, 1, 4 hit, crop 3 misses
        (2, 1, 0.0),  # best MOS 6 (crop 5) not among the top two
        (6, 6, 1.0),  # every crop is within the top six
        (6, 1, 1 / 6),
    ],
)
def test_acc_hand(k, n, expected):
    assert acc_k(P6, G6, k, n) == pytest.approx(expected, abs=1e-15)


def test_acc_mos_ties_count_as_hits():
    g = [5.0, 4.0, 4.0, 4.0, 1.0, 0.0]
    p = [0.0, 0.9, 0.8, 0.7, 0.1, 0.2]  # top three: crops 1, 2, 3, all MOS 4 = 2nd best MOS
    assert acc_k(p, g, 3, 2) == 1.0
    assert acc_k(p, g, 3, 1) == 0.0
    # all MOS equal: every crop is a hit for every n
    assert acc_k([3, 2, 1], [2.0, 2.0, 2.0], 2, 1) == 1.0


def test_acc_prediction_ties_lower_index_first():
    g = [1.0, 9.0, 3.0, 4.0, 5.0, 6.0]
    # crops 0 and 1 tie on the prediction: crop 0 (lower index) is taken first
    assert acc_k([1.0, 1.0, 0, 0, 0, 0], g, 1, 1) == 0.0
    assert acc_k([1.0, 1.0, 0, 0, 0, 0], g, 2, 1) == 0.5
    # the same tie with the crops swapped takes the best crop
    assert acc_k([1.0, 1.0, 0, 0, 0, 0], [9.0, 1.0, 3.0, 4.0, 5.0, 6.0], 1, 1) == 1.0
    # all predictions equal: top-k is the first k crops
    assert acc_k([0.5] * 6, g, 3, 2) == pytest.approx(1 / 3)


def test_acc_wacc_perfect_and_reversed():
    g = np.array([3.2, 1.1, 4.8, 2.5, 4.1, 3.9, 1.8, 2.9, 4.4, 3.6, 2.2, 1.4])
    for k in (1, 2, 3, 4):
        for n in (5, 10):
            assert acc_k(g, g, k, n) == 1.0
            assert wacc(g, g, k, n) == pytest.approx(1.0)
            assert wacc(g, g, k, n, ties="index") == pytest.approx(1.0)
            assert acc_k(-g, g, k, 5) == 0.0
            assert wacc(-g, g, k, 5) == 0.0
    # reversed, n = 10 of 12 crops: the k worst are ranks 11, 10, ..: hits only at ranks <= 9
    assert acc_k(-g, g, 3, 10) == pytest.approx(1 / 3)
    assert acc_k(-g, g, 4, 10) == pytest.approx(2 / 4)


# ---------------------------------------------------------------------------------------------
# wAcc_K/N


def test_wacc_hand():
    # top three ranks [2, 3, 5] sorted; n = 3: only rank 2 < 3 hits, weight exp(-(2 - 0) / 3)
    assert wacc(P6, G6, 3, 3) == pytest.approx(math.exp(-2 / 3) / 3, abs=1e-15)
    # top one: rank 2 at place 0
    assert wacc(P6, G6, 1, 3) == pytest.approx(math.exp(-2 / 3), abs=1e-15)
    # top four ranks sorted [2, 3, 4, 5], n = 5: hits 2, 3, 4 each shifted by 2: 3 exp(-0.4) / 4
    assert wacc(P6, G6, 4, 5) == pytest.approx(0.75 * math.exp(-0.4), abs=1e-15)
    # n = 6: all four hit, shifts [2, 2, 2, 2]
    assert wacc(P6, G6, 4, 6) == pytest.approx(math.exp(-2 / 6), abs=1e-15)
    # no MOS ties here: the two tie rules agree
    for k in range(1, 7):
        for n in range(1, 7):
            assert wacc(P6, G6, k, n, ties="index") == wacc(P6, G6, k, n)


def test_wacc_is_order_free_within_top_k():
    # the ranks are sorted before weighting, so swapping the order of the top two does not matter
    g = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    assert wacc([0.8, 0.9, 0, 0, 0, 0], g, 2, 5) == pytest.approx(1.0)
    # returning ranks 0 and 2 (skipping 1): weights 1 and exp(-(2 - 1) / 5)
    assert wacc([0.9, 0, 0.8, 0, 0, 0], g, 2, 5) == pytest.approx((1 + math.exp(-0.2)) / 2)


def test_wacc_mos_ties():
    g = [5.0, 4.0, 4.0, 4.0, 1.0, 0.0]
    p = [0.0, 0.9, 0.8, 0.7, 0.1, 0.2]  # top three: crops 1, 2, 3 (MOS 4, 2nd best)
    # "hit": competition ranks [1, 1, 1], all < 2 hit; shifts max(1 - j, 0) = [1, 0, 0]
    assert wacc(p, g, 3, 2) == pytest.approx((math.exp(-0.5) + 2) / 3, abs=1e-15)
    # "index": ordinal ranks [1, 2, 3]; only rank 1 < 2 hits, shift 1
    assert wacc(p, g, 3, 2, ties="index") == pytest.approx(math.exp(-0.5) / 3, abs=1e-15)


def _acc_loop(p, g, k, n):
    """Straight loop over the definition (prediction ties: lower index first)."""
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))
    nth = sorted(g, reverse=True)[n - 1]
    return sum(1.0 for i in order[:k] if g[i] >= nth) / k


def _wacc_loop(p, g, k, n, ties):
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))
    if ties == "hit":
        rank = [sum(1 for x in g if x > g[i]) for i in range(len(g))]
    else:
        by_mos = sorted(range(len(g)), key=lambda i: (-g[i], i))
        rank = [by_mos.index(i) for i in range(len(g))]
    ranks = sorted(rank[i] for i in order[:k])
    total = 0.0
    for j, r in enumerate(ranks):
        if r <= n - 1:
            total += math.exp(-max(r - j, 0) / n)
    return total / k


def test_acc_wacc_match_loops_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(40):
        size = int(rng.integers(10, 40))
        g = (rng.integers(7, 36, size=size) / 7.0).tolist()  # multiples of 1/7: many MOS ties
        p = np.round(rng.normal(size=size), 1).tolist()  # prediction ties too
        for k in (1, 2, 3, 4):
            for n in (5, 10):
                a = acc_k(p, g, k, n)
                assert a == pytest.approx(_acc_loop(p, g, k, n), abs=1e-15)
                for ties in ("hit", "index"):
                    w = wacc(p, g, k, n, ties=ties)
                    assert w == pytest.approx(_wacc_loop(p, g, k, n, ties), abs=1e-12)
                    assert 0.0 <= w <= a + 1e-15


# ---------------------------------------------------------------------------------------------
# IoU and BDE


def test_iou_hand():
    assert iou([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 175)
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges
    assert iou([0, 0, 10, 10], [0, 0, 5, 10]) == 0.5  # contained
    assert iou([3, 3, 3, 3], [3, 3, 3, 3]) == 0.0  # two empty boxes
    assert isinstance(iou([0, 0, 1, 1], [0, 0, 1, 1]), float)


def test_iou_vectorised():
    a = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 4, 4]], dtype=torch.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [2, 0, 6, 4]])
    out = iou(a, b)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    np.testing.assert_allclose(out, [25 / 175, 1.0, 8 / 24])
    # one box against many
    np.testing.assert_allclose(iou([0, 0, 10, 10], b), [25 / 175, 1.0, 16 / 100])
    np.testing.assert_allclose(iou(b[:1], b[:1]), [1.0])


def test_bde_hand():
    # every boundary off by 10% of its side
    assert bde([0, 0, 50, 100], [10, 20, 60, 80], height=200, width=100) == pytest.approx(0.1)
    # dx1 = 20/100, dy2 = 100/200, the rest 0: (0.2 + 0.5) / 4
    assert bde([0, 0, 100, 200], [20, 0, 100, 100], height=200, width=100) == pytest.approx(0.175)
    assert bde([1, 2, 3, 4], [1, 2, 3, 4], height=10, width=10) == 0.0
    assert isinstance(bde([1, 2, 3, 4], [1, 2, 3, 4], height=10, width=10), float)


def test_bde_vectorised():
    pred = np.array([[0, 0, 50, 100], [0, 0, 100, 200]])
    gt = np.array([[10, 20, 60, 80], [20, 0, 100, 100]])
    np.testing.assert_allclose(bde(pred, gt, height=200, width=100), [0.1, 0.175])
    # one size per box: second image twice as large halves its error
    np.testing.assert_allclose(bde(pred, gt, height=[200, 400], width=[100, 200]), [0.1, 0.0875])
    np.testing.assert_allclose(bde(pred[:1], gt[:1], height=200, width=100), [0.1])


# ---------------------------------------------------------------------------------------------
# the accumulator


def _ten():
    return np.array([3.1, 4.2, 2.4, 3.8, 1.9, 4.6, 2.8, 3.4, 2.1, 4.0])


def test_accumulator_averages_and_keys():
    g = _ten()
    m = GAICMetrics()
    perfect = m.update("a", g, g)
    assert perfect["acc1_5"] == 100.0 and perfect["wacc4_10"] == pytest.approx(100.0)
    m.update(7, torch.tensor(-g), torch.tensor(g))  # reversed
    out = m.compute()
    expected_keys = (
        {"srcc", "pcc", "acc5", "acc10", "wacc5", "wacc10", "images"}
        | {f"acc{k}_{n}" for k in (1, 2, 3, 4) for n in (5, 10)}
        | {f"wacc{k}_{n}" for k in (1, 2, 3, 4) for n in (5, 10)}
    )
    assert set(out) == expected_keys
    assert list(out) == GAICMetrics.metric_names()
    assert out["images"] == 2 and len(m) == 2
    assert out["srcc"] == pytest.approx(0.0, abs=1e-12)  # (1 + -1) / 2
    assert out["pcc"] == pytest.approx(0.0, abs=1e-12)
    for k in (1, 2, 3, 4):
        # reversed: the k worst crops miss the top five, but all ten crops are in the top ten
        assert out[f"acc{k}_5"] == pytest.approx(50.0)
        assert out[f"acc{k}_10"] == pytest.approx(100.0)
        assert out[f"wacc{k}_5"] == pytest.approx(50.0)
        # reversed, sorted ranks [10-k .. 9] at places [0 .. k-1]: each shifted by 10 - k
        assert out[f"wacc{k}_10"] == pytest.approx((100.0 + 100.0 * math.exp(-(10 - k) / 10)) / 2)
    assert out["acc5"] == pytest.approx(50.0)
    assert out["acc10"] == pytest.approx(100.0)
    assert out["wacc5"] == pytest.approx(50.0)
    assert out["wacc10"] == pytest.approx(np.mean([out[f"wacc{k}_10"] for k in (1, 2, 3, 4)]))


def test_accumulator_matches_per_image_functions():
    rng = np.random.default_rng(2)
    m = GAICMetrics(wacc_ties="index")
    data = {}
    for i in range(5):
        g = rng.integers(7, 36, size=int(rng.integers(10, 30))) / 7.0
        p = rng.normal(size=g.shape[0]) + g
        data[f"img{i}"] = (p, g)
        m.update(f"img{i}", p, g)
    out = m.compute()
    assert out["srcc"] == pytest.approx(np.mean([srcc(p, g) for p, g in data.values()]))
    assert out["pcc"] == pytest.approx(np.mean([pcc(p, g) for p, g in data.values()]))
    assert out["acc3_10"] == pytest.approx(100 * np.mean([acc_k(p, g, 3, 10) for p, g in data.values()]))
    assert out["wacc2_5"] == pytest.approx(
        100 * np.mean([wacc(p, g, 2, 5, ties="index") for p, g in data.values()])
    )
    assert out["acc5"] == pytest.approx(np.mean([out[f"acc{k}_5"] for k in (1, 2, 3, 4)]))
    assert set(m.per_image()) == set(data)


def test_accumulator_records_and_json():
    g = _ten()
    m = GAICMetrics()
    m.update("x", torch.tensor(g, dtype=torch.float32), g.tolist())
    rec = m.records()
    assert list(rec) == ["x"]
    assert rec["x"]["mos"] == g.tolist()
    assert rec["x"]["scores"] == pytest.approx(g.tolist(), rel=1e-6)
    dumped = json.loads(json.dumps(m.to_dict()))
    assert set(dumped) == {"metrics", "images"}
    assert dumped["images"]["x"]["mos"] == g.tolist()
    rec["x"]["mos"].append(0.0)  # a copy: the accumulator is untouched
    assert len(m.records()["x"]["mos"]) == 10


def test_accumulator_bad_inputs_leave_state_unchanged():
    g = _ten()
    m = GAICMetrics()
    with pytest.raises(ValueError, match="no images"):
        m.compute()
    m.update("a", g, g)
    with pytest.raises(ValueError, match="already"):
        m.update("a", g, g)
    with pytest.raises(ValueError, match="at least 10"):
        m.update("short", g[:9], g[:9])
    with pytest.raises(ValueError, match="NaN"):
        m.update("nan", np.where(np.arange(10) == 3, np.nan, g), g)
    assert len(m) == 1 and m.compute()["images"] == 1
    with pytest.raises(ValueError, match="ties"):
        GAICMetrics(wacc_ties="average")
    m.reset()
    assert len(m) == 0


# ---------------------------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize("fn", [srcc, pcc, lambda p, g: acc_k(p, g, 1, 1), lambda p, g: wacc(p, g, 1, 1)])
def test_bad_vectors(fn):
    with pytest.raises(ValueError, match="length"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        fn([1.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        fn([], [])
    with pytest.raises(ValueError, match="NaN"):
        fn([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        fn([1.0, 2.0, 3.0], torch.tensor([1.0, 2.0, float("nan")]))
    with pytest.raises(ValueError, match="infinite"):
        fn([1.0, float("inf"), 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="1-D"):
        fn([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="real numbers"):
        fn(["a", "b"], [1.0, 2.0])


@pytest.mark.parametrize("fn", [acc_k, wacc])
def test_bad_k_n(fn):
    p, g = P6, G6
    for k, n, what in [
        (0, 3, "k must be >= 1"),
        (-1, 3, "k must be >= 1"),
        (1, 0, "n must be >= 1"),
        (7, 3, "k=7 exceeds"),
        (1, 7, "n=7 exceeds"),
        (1.5, 3, "k must be an integer"),
        (True, 3, "k must be an integer"),
        (1, 2.0, "n must be an integer"),
    ]:
        with pytest.raises(ValueError, match=what):
            fn(p, g, k, n)
    assert fn(p, g, np.int64(1), np.int32(3)) == fn(p, g, 1, 3)


def test_bad_ties():
    with pytest.raises(ValueError, match="ties"):
        wacc(P6, G6, 1, 1, ties="average")


def test_bad_boxes():
    with pytest.raises(ValueError, match="shape"):
        iou([0, 0, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        iou(np.zeros((2, 2, 4)), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="x2 < x1"):
        iou([5, 0, 1, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        iou([0, 0, float("nan"), 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="paired"):
        iou(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="width must be > 0"):
        bde([0, 0, 1, 1], [0, 0, 1, 1], height=10, width=0)
    with pytest.raises(TypeError):  # the sizes by keyword: the earlier positional (width, height) is refused
        bde([0, 0, 1, 1], [0, 0, 1, 1], 10, 20)
    with pytest.raises(ValueError, match="height"):
        bde([0, 0, 1, 1], [0, 0, 1, 1], height=float("nan"), width=10)
    with pytest.raises(ValueError, match="do not match"):
        bde(np.zeros((3, 4)), np.zeros((3, 4)), height=1.0, width=[1.0, 2.0])
    with pytest.raises(ValueError, match="y2 < y1"):
        bde([0, 5, 1, 1], [0, 0, 1, 1], height=10, width=10)
