"""The package's layers import downward only, so no subpackage imports another that imports it back:
bottom helpers (``files``, ``registry``, ``distributed``, ``rng``) -> ``ops`` -> ``models`` -> ``cropping`` -> ``data``
-> ``evaluation`` -> ``training`` -> ``cli``. Every import counts, those inside functions too (an upward
import there is a cycle that only waits for its first call)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "s2c_ops"
LAYERS = ["files", "registry", "distributed", "rng", "ops", "models", "cropping", "data", "evaluation", "training", "cli"]
#: The bottom helpers are one layer: none imports another.
BOTTOM = {"files", "registry", "distributed", "rng"}


def layer(part: str) -> int:
    return 0 if part in BOTTOM else LAYERS.index(part)


def imported_parts(path: Path):
    """(line, first part below s2c_ops) of every s2c_ops import of a module."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = module if path.name == "__init__.py" else module[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            names = [target + [a.name] for a in node.names] if len(target) == 1 else [target]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for name in names:
            if name[0] == "s2c_ops" and len(name) > 1 and name[1] in LAYERS:
                yield node.lineno, name[1]


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem in LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_downward(path):
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    upward = [f"line {line}: {part}" for line, part in imported_parts(path)
              if part != own and layer(part) >= layer(own)]
    assert not upward, f"{rel} ({own}) imports its own layer or above: {upward}"


HEAVY = ("torchvision", "timm", "scipy", "kornia")


@pytest.mark.parametrize("module, unloaded", [
    ("s2c_ops", HEAVY + ("s2c_ops.models", "s2c_ops.cropping")),
    ("s2c_ops.data", HEAVY + ("s2c_ops.cropping.cropper", "s2c_ops.models.s2cnet", "s2c_ops.models.blend")),
])
def test_imports_load_what_they_need(module, unloaded):
    """``import s2c_ops`` loads the operators only; reading a dataset loads neither the Cropper nor the models."""
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith({unloaded!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == []


@pytest.mark.parametrize("kind, file", [("S2CNet", None), ("S2CNet + geometry priors", "s2cnet_fcdb.safetensors"),
                                        ("geometry prior", "geometry_prior.safetensors")])
def test_weights_files_load_before_their_class_is_imported(tmp_path, kind, file):
    """The model classes load on first use: reading a file of each of the package's formats in a fresh
    process imports its class (``s2c eval --weights blend.safetensors`` failed on this)."""
    if file is None:
        from s2c_ops import S2CNet

        S2CNet("GAICv1").save(tmp_path / "model.safetensors")
        path = tmp_path / "model.safetensors"
    else:
        path = Path(__file__).resolve().parents[1] / "s2c_ops" / "weights" / file
    code = f"from s2c_ops.models import load; from s2c_ops.models.weights import describe; print(describe(load({str(path)!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == kind
