"""S2CNet configurations: the two official ones by name, and custom ones."""
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Union


@dataclass(frozen=True)
class S2CNetConfig:
    """Hyper-parameters of S2CNet (names follow the official config where one exists).

    ``bbox_num`` object boxes per image join every crop's graph; ``align_size`` is the side of the
    RoI/RoD feature grids; ``only_crop`` scores from the crop node alone (GAICv1) instead of a conv head
    over all nodes (GAICv2); ``antialias`` is how its input is resized.
    """

    bbox_num: int = 10
    align_size: int = 9
    only_crop: bool = True
    reduced_dim: int = 8
    num_feature_node: int = 256
    num_features_relation: int = 256
    num_depth: int = 2
    num_heads: int = 4
    mlp_dim: int = 1024
    backbone: str = "mobilenetv2_100"
    #: Resize its input with antialiasing (:class:`~s2c_ops.cropping.transforms.OfficialPreprocess`): not
    #: the official code's resize, so the official configs leave it off.
    antialias: bool = False

    def __post_init__(self) -> None:
        for f in ("bbox_num", "align_size", "reduced_dim", "num_feature_node", "num_features_relation",
                  "num_depth", "num_heads", "mlp_dim"):
            value = getattr(self, f)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"S2CNetConfig.{f} must be a positive int, got {value!r}")
        if self.num_feature_node % self.num_heads:
            raise ValueError("num_feature_node must be divisible by num_heads")
        if not self.only_crop and self.num_feature_node != 256:
            raise ValueError("the conv head (only_crop=False) views each node as 16x16: num_feature_node must be 256")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


OFFICIAL = {
    "GAICv1": S2CNetConfig(bbox_num=10, align_size=9, only_crop=True),
    "GAICv2": S2CNetConfig(bbox_num=5, align_size=15, only_crop=False),
}

ConfigLike = Union[str, S2CNetConfig, Dict[str, Any]]


def resolve_config(config: ConfigLike) -> S2CNetConfig:
    """An ``S2CNetConfig`` from an official name, a config, or a dict (official config dicts included:
    keys S2CNet does not use, such as ``image_size`` or ``loadweight``, are ignored)."""
    if isinstance(config, S2CNetConfig):
        return config
    if isinstance(config, str):
        if config not in OFFICIAL:
            raise ValueError(f"unknown config {config!r}; official configs: {', '.join(OFFICIAL)}")
        return OFFICIAL[config]
    if isinstance(config, dict):
        known = {f.name for f in fields(S2CNetConfig)}
        values = {k: v for k, v in config.items() if k in known}
        if config.get("base_model", "mobilenetv2") != "mobilenetv2" and "backbone" not in config:
            raise ValueError(f"official base_model {config['base_model']!r} has no registered backbone; pass backbone=")
        return replace(S2CNetConfig(), **values)
    raise TypeError(f"config must be a name, an S2CNetConfig or a dict, got {type(config).__name__}")
