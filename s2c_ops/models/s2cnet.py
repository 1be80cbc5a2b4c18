"""S2CNet: spatial-semantic collaborative cropping (AAAI 2024), numerically faithful to the official code,
batched over images and crops.

Each candidate crop becomes a graph of ``1 + bbox_num`` nodes (the crop, then the image's object boxes).
A node is embedded from the RoIAlign and RoDAlign features of its box; a graph transformer mixes the nodes
with attention biased by their positions and appearances; a head scores the crop.
"""
import copy
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.align import gaic_roi_align_avg, rod_align_avg
from .backbones import create_backbone
from ..ops.boxes import BoxesLike, batched_rois, clamp_to_image, image_extent
from .config import ConfigLike, S2CNetConfig, resolve_config
from .fusion import fold_batchnorm, fuse_layers
from .official import load_official
from .scorer import ScorerModule, check_scorer_inputs
from .weights import weights_format

# Feature map the align ops read: the stride-16 fused map.
SPATIAL_SCALE = 1.0 / 16


#: The saved name of :attr:`S2CNet.relations` (weights files, official checkpoints' mapping).
SAVED_RELATIONS = "graph."


def _save_relations_as_graph(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    items = list(state_dict.items())
    state_dict.clear()
    own = prefix + "relations."
    for key, value in items:
        state_dict[prefix + SAVED_RELATIONS + key[len(own):] if key.startswith(own) else key] = value


def _load_graph_as_relations(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    saved = prefix + SAVED_RELATIONS
    for key in [k for k in state_dict if k.startswith(saved)]:
        state_dict[prefix + "relations." + key[len(saved):]] = state_dict.pop(key)


class NodeEmbedding(nn.Sequential):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(nn.Linear(in_features, out_features), nn.LayerNorm(out_features), nn.ReLU())


class GraphConstructor(nn.Module):
    """Pairwise position and appearance terms of each crop's graph, one map per attention head."""

    def __init__(self, dim: int, relation_dim: int, heads: int) -> None:
        super().__init__()
        self.app_theta = nn.Linear(dim, relation_dim)
        self.app_phi = nn.Linear(dim, relation_dim)
        self.pos_theta = nn.Linear(2, relation_dim)
        self.pos_phi = nn.Linear(2, relation_dim)
        self.pos_to_head = nn.Linear(1, heads)
        self.app_to_head = nn.Linear(1, heads)
        self.relation_scale = math.sqrt(relation_dim)

    def forward(self, nodes: Tensor, centres: Tensor, index: Tensor) -> Tuple[Tensor, Tensor]:
        """``nodes`` (U, dim) and ``centres`` (U, 2) of the distinct boxes; ``index`` (G, n) the box of
        each graph node. Returns two (G, heads, n, n) maps. Per-node projections are computed once per
        box, not once per graph (object boxes are shared by all crops of an image)."""
        t, p = self.pos_theta(centres)[index], self.pos_phi(centres)[index]
        # Distance written as the official code computes it (not torch.cdist), to match it to rounding.
        sq = (t * t).sum(-1, keepdim=True) - 2 * t @ p.transpose(1, 2) + (p * p).sum(-1).unsqueeze(1)
        distance = sq.sqrt() / self.relation_scale
        affinity = self.app_theta(nodes)[index] @ self.app_phi(nodes)[index].transpose(1, 2) / self.relation_scale
        pos_bias = self.pos_to_head(distance.unsqueeze(-1)).permute(0, 3, 1, 2)
        app_bias = self.app_to_head(affinity.unsqueeze(-1)).permute(0, 3, 1, 2)
        return pos_bias, app_bias


class GraphAttention(nn.Module):
    """Multi-head attention with queries from the graph-convolved nodes and a per-head additive bias.
    The official scale is the full width's (dim ** -0.5), not the head width's.

    Two evaluation orders of the same function, chosen by cost: :meth:`forward` (keys and values
    given, e.g. projected once per node shared by many graphs) and :meth:`forward_few` (few queries:
    the projections move onto the queries)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = dim ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def _split(self, t: Tensor) -> Tensor:
        return t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)

    def _merge(self, t: Tensor) -> Tensor:
        t = t.transpose(1, 2)
        return self.to_out(t.reshape(t.shape[0], t.shape[1], -1))

    def forward(self, kv: Tensor, queries: Tensor, bias: Tensor) -> Tensor:
        """``kv`` (G, n, 2 * dim) = to_kv(normalised nodes), ``queries`` (G, m, dim), ``bias`` (G, heads, m, n)."""
        k, v = kv.chunk(2, dim=-1)
        q = self._split(self.to_q(queries))
        attn = (q @ self._split(k).transpose(-1, -2) * self.scale + bias).softmax(dim=-1)
        return self._merge(attn @ self._split(v))

    def forward_few(self, normed: Tensor, queries: Tensor, bias: Tensor) -> Tensor:
        """:meth:`forward` for few queries (m much smaller than n): the key and value projections move
        onto the queries and the attention-weighted nodes, so no node is projected. ``normed`` (G, n, dim)."""
        g, n, dim = normed.shape
        m, heads = queries.shape[1], self.heads
        w_k, w_v = self.to_kv.weight.reshape(2, heads, dim // heads, dim).unbind(0)
        # Per head, q_h . (W_k,h x) = (W_k,h^T q_h) . x: one (H, G*m, dh) x (H, dh, dim) product.
        q = self.to_q(queries).reshape(g * m, heads, -1).transpose(0, 1)
        qk = (q @ w_k).reshape(heads, g, m, dim).permute(1, 0, 2, 3).reshape(g, heads * m, dim)
        scores = (qk @ normed.transpose(1, 2)).reshape(g, heads, m, n)
        attn = (scores * self.scale + bias).softmax(dim=-1)
        # Sum_j a_j (W_v,h x_j) = W_v,h (sum_j a_j x_j).
        mixed = (attn.reshape(g, heads * m, n) @ normed).reshape(g, heads, m, dim)
        values = mixed.permute(1, 0, 2, 3).reshape(heads, g * m, dim) @ w_v.transpose(1, 2)
        return self._merge(values.reshape(heads, g, m, -1).transpose(0, 1))


class GraphLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = GraphAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def keys_values(self, x: Tensor) -> Tensor:
        return self.attn.to_kv(self.attn_norm(x))

    def forward(self, x: Tensor, queries: Tensor, bias: Tensor, kv: Optional[Tensor] = None) -> Tensor:
        """Updates the first ``queries.shape[1]`` nodes of ``x``; ``kv`` may be given precomputed."""
        m = queries.shape[1]
        if kv is not None:
            update = self.attn(kv, queries, bias)
        elif 2 * m < x.shape[1]:
            update = self.attn.forward_few(self.attn_norm(x), queries, bias)
        else:
            update = self.attn(self.keys_values(x), queries, bias)
        x = x[:, :m] + update
        return x + self.ff(self.ff_norm(x))


class GraphTransformer(nn.Module):
    """Per layer: a graph convolution over the position x appearance graph gives the queries of an
    attention biased by both terms. The graph-convolution weights are shared by all layers."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(GraphLayer(dim, heads, mlp_dim) for _ in range(depth))
        self.gcn_proj = nn.Linear(dim, dim, bias=False)
        self.gcn_norm = nn.LayerNorm(dim)

    def forward(self, nodes: Tensor, index: Tensor, pos_bias: Tensor, app_bias: Tensor,
                keep: Optional[int] = None) -> Tensor:
        """``nodes`` (U, dim) distinct node features, ``index`` (G, n) the node of each graph position.
        Returns (G, n, dim), or only the first ``keep`` nodes of each graph when only those are read
        afterwards (the last layer then updates just those)."""
        graph = (pos_bias.mean(1) * app_bias.mean(1)).softmax(dim=-1)
        bias = pos_bias + app_bias
        x = None
        for i, layer in enumerate(self.layers):
            rows = keep if i == len(self.layers) - 1 else None
            if i == 0:
                # The input nodes are shared by the graphs: project them once per distinct node (the
                # graph convolution's projection is linear and bias-free, so it commutes with G @).
                kv = layer.keys_values(nodes)[index]
                mixed = graph[:, :rows] @ self.gcn_proj(nodes)[index]
                x = nodes[index]
            else:
                kv = None
                mixed = self.gcn_proj(graph[:, :rows] @ x)
            x = layer(x, F.relu(self.gcn_norm(mixed)), bias[:, :, :rows], kv)
        return x


class ConvHead(nn.Module):
    """GAICv2 head: the (1 + bbox_num) node vectors seen as a (1 + bbox_num) x 16 x 16 image."""

    def __init__(self, nodes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nodes, 768, kernel_size=16)
        self.bn1 = nn.BatchNorm2d(768)
        self.conv2 = nn.Conv2d(768, 128, kernel_size=1)
        self.bn2 = nn.BatchNorm2d(128)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Conv2d(128, 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], x.shape[1], 16, 16)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.dropout(F.relu(self.bn2(self.conv2(x))))
        return self.out(x).flatten()


class CropNodeHead(nn.Linear):
    """GAICv1 head: a linear score of the crop node."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x[:, 0]).flatten()


@weights_format("s2cnet/1", S2CNetConfig, "S2CNet")
class S2CNet(ScorerModule):
    """S2CNet. ``S2CNet("GAICv1")`` / ``S2CNet("GAICv2")`` build the official configurations (random
    weights); :meth:`from_official` loads the authors' checkpoints.

    ``model(images, crop_boxes, object_boxes) -> Tensor[K]``: ``images`` (B, 3, H, W) normalised as in
    :mod:`s2c_ops.cropping.transforms`; ``crop_boxes`` ``Tensor[K, 5]`` rois or a list of B ``Tensor[Ki, 4]``;
    ``object_boxes`` exactly ``config.bbox_num`` per image, in the same formats. Boxes are
    (x1, y1, x2, y2) in pixels of ``images``. Crop boxes must lie inside their image; object boxes are
    clamped into it. Returns one score per crop, in the order of ``crop_boxes``.
    """

    def __init__(self, config: ConfigLike = "GAICv1", *, pretrained_backbone: bool = False) -> None:
        super().__init__()
        self.config: S2CNetConfig = resolve_config(config)
        c = self.config
        self.backbone = create_backbone(c.backbone, pretrained=pretrained_backbone)
        self.reduce = nn.Conv2d(sum(self.backbone.channels), c.reduced_dim, kernel_size=1)
        self.node_embed = NodeEmbedding(2 * c.reduced_dim * c.align_size ** 2, c.num_feature_node)
        # Saved as "graph.*", its name before: "graph" is an attribute of the modules torch.export makes.
        self.relations = GraphConstructor(c.num_feature_node, c.num_features_relation, c.num_heads)
        self.register_state_dict_post_hook(_save_relations_as_graph)
        self.register_load_state_dict_pre_hook(_load_graph_as_relations)
        self.transformer = GraphTransformer(c.num_feature_node, c.num_depth, c.num_heads, c.mlp_dim)
        self.head = CropNodeHead(c.num_feature_node) if c.only_crop else ConvHead(c.bbox_num + 1)
        self.use_memory_format(torch.channels_last)
        #: Work per pass, bounding working memory and keeping it cache-sized on the CPU, where larger
        #: passes are slower per image (MobileNetV2 at 256x384: 64 images/s at batch 1, 53 at batch 8).
        #: Crops scored per pass of the graph transformer (each crop's graph has 1 + bbox_num nodes):
        self.cpu_graphs_per_pass = 256
        self.gpu_graphs_per_pass = 8192
        #: Images per backbone pass on the CPU (a GPU takes the whole batch at once):
        self.cpu_images_per_pass = 2

    def use_memory_format(self, memory_format: torch.memory_format) -> "S2CNet":
        """Runs the backbone's convolutions in ``memory_format`` (weights and input). The default,
        channels-last, makes MobileNetV2 ~25% faster on the CPU (oneDNN)."""
        # Kept by name: a torch.memory_format does not pickle with protocol 2, torch.save's.
        self._memory_format = str(memory_format).rpartition(".")[2]
        self.backbone.to(memory_format=memory_format)
        return self

    @property
    def memory_format(self) -> torch.memory_format:
        return getattr(torch, self._memory_format)

    # -- features -------------------------------------------------------------------------------
    def features(self, images: Tensor) -> Tensor:
        """The reduced stride-16 map the align ops read: (B, reduced_dim, H/16, W/16)."""
        images = images.contiguous(memory_format=self.memory_format)
        if images.device.type == "cpu" and len(images) > self.cpu_images_per_pass:
            return torch.cat([self.features(part) for part in images.split(self.cpu_images_per_pass)])
        return self.features_in_one_pass(images)

    def features_in_one_pass(self, images: Tensor) -> Tensor:
        """:meth:`features` of the whole batch in one backbone pass (what an exported graph runs)."""
        return self.reduce(self.multi_scale(images)).contiguous()

    def multi_scale(self, images: Tensor) -> Tensor:
        """The backbone's stride-8, 16 and 32 maps at stride 16, before ``reduce``: (B, sum of the
        channels, H/16, W/16), ``[bilinear(f3, x0.5), f4, 0.5 * bilinear(f5, x2)]``. With a frozen
        backbone it can be computed once per image (training caches it)."""
        f3, f4, f5 = self.backbone(images.contiguous(memory_format=self.memory_format))
        size = f4.shape[-2:]
        return torch.cat(
            [
                F.interpolate(f3, size=size, mode="bilinear", align_corners=True),
                f4,
                0.5 * F.interpolate(f5, size=size, mode="bilinear", align_corners=True),
            ],
            dim=1,
        )

    def box_features(self, features: Tensor, rois: Tensor) -> Tensor:
        """Per box and channel, the a*a RoIAlignAvg values then the a*a RoDAlignAvg values."""
        a = self.config.align_size
        roi = gaic_roi_align_avg(features, rois, a, SPATIAL_SCALE)
        rod = rod_align_avg(features, rois, a, SPATIAL_SCALE)
        return torch.cat([roi.flatten(2), rod.flatten(2)], dim=2).flatten(1)

    # -- scoring --------------------------------------------------------------------------------
    def forward(self, images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike) -> Tensor:
        crops, objects = self.check_inputs(images, crop_boxes, object_boxes)
        return self.score(self.features(images), crops, objects, images.shape[-2:])

    def score(self, features: Tensor, crops: Tensor, objects: Tensor, image_size: Sequence[int]) -> Tensor:
        """Scores of ``crops`` (rois, K x 5) given the reduced features of their images and ``objects``
        (B * bbox_num rois, grouped by image, in image order)."""
        per_pass = self.cpu_graphs_per_pass if crops.device.type == "cpu" else self.gpu_graphs_per_pass
        return self.score_graphs(features, crops, objects, image_size, per_pass)

    def score_graphs(self, features: Tensor, crops: Tensor, objects: Tensor, image_size: Sequence[int],
                     graphs_per_pass: Optional[int] = None) -> Tensor:
        """:meth:`score`, ``graphs_per_pass`` crops per pass of the graph transformer (None: all in one, a
        graph without a loop over the crops, which torch.export and ONNX keep dynamic in their number)."""
        d, k = self.config.bbox_num, crops.shape[0]
        boxes = torch.cat([crops, objects], dim=0)
        nodes = self.node_embed(self.box_features(features, boxes))
        centres = (boxes[:, 1:3] + boxes[:, 3:5]) / 2 / image_extent(boxes, image_size)  # no host copy
        # Graph g holds crop g, then the d object boxes of its image (objects are grouped by image).
        crop_index = torch.arange(k, device=boxes.device)
        object_index = k + crops[:, 0].long()[:, None] * d + torch.arange(d, device=boxes.device)
        index = torch.cat([crop_index[:, None], object_index], dim=1)
        if graphs_per_pass is None:
            return self._score_part(nodes, centres, index)
        return torch.cat([self._score_part(nodes, centres, part) for part in index.split(graphs_per_pass)])

    def _score_part(self, nodes: Tensor, centres: Tensor, index: Tensor) -> Tensor:
        pos_bias, app_bias = self.relations(nodes, centres, index)
        keep = 1 if self.config.only_crop else None
        return self.head(self.transformer(nodes, index, pos_bias, app_bias, keep))

    def score_sets(self, images: Tensor, crops: Tensor, objects: Tensor) -> Tensor:
        """The scores (B, N) of ``crops`` (B, N, 4) with ``objects`` (B, bbox_num, 4), boxes in pixels of
        ``images`` (B, 3, H, W), without input checks or loops: the traceable form of the call (crops
        inside their image; objects are clamped into it)."""
        rois = batched_rois(crops.to(images.dtype))
        objects = batched_rois(clamp_to_image(objects.to(images.dtype), images.shape[-2:]))
        scores = self.score_graphs(self.features_in_one_pass(images), rois, objects, images.shape[-2:])
        return scores.reshape(crops.shape[:2])

    # -- input checks ---------------------------------------------------------------------------
    def check_inputs(self, images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike) -> Tuple[Tensor, Tensor]:
        """Validated rois for crops and objects (:func:`~s2c_ops.models.scorer.check_scorer_inputs`;
        images of at least 32x32 pixels)."""
        return check_scorer_inputs(images, crop_boxes, object_boxes, self.config.bbox_num, min_side=32)

    # -- inference ------------------------------------------------------------------------------
    def fused(self) -> "S2CNet":
        """An inference copy: the backbone's BatchNorms folded into its convolutions, and every
        convolution and linear layer one oneDNN pass with its activation on the CPU
        (:mod:`s2c_ops.models.fusion`). The same scores to float rounding; on the CPU its forward takes about
        0.7x the model's own (``benchmarks/bench_model.py``). The copy cannot be put in training mode
        or saved; the model itself is unchanged."""
        model = copy.deepcopy(self).eval()
        if self.backbone.foldable:
            fold_batchnorm(model.backbone)
        fuse_layers(model)
        model.inference_only = True
        return model

    # -- weights --------------------------------------------------------------------------------
    @classmethod
    def from_official(cls, checkpoint, config: ConfigLike = "GAICv1", *, strict: bool = True) -> "S2CNet":
        """Builds the model and loads an official S2CNet checkpoint (a path or a state dict with the
        official names), read with ``torch.load(weights_only=True)``."""
        model = cls(config)
        load_official(model, checkpoint, strict=strict)
        return model.eval()


