"""How s2c_ops chooses its operators at import (s2c_ops/ops/_extension.py), each case in a fresh
interpreter: the compiled library missing, failing to load, or built for another torch gives one
warning and the pure-PyTorch operators under torch.ops.s2c, which then work everywhere (autograd,
fake kernels, torch.compile, a downstream project's script); S2C_REQUIRE_EXTENSION=1 makes it an error."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import s2c_ops
from conftest import REPO

# sitecustomize modules that break s2c_ops._C the ways an install can, in every process of a run.
HIDE = {
    "missing": "import sys\nsys.modules['s2c_ops._C'] = None\n",
    "unloadable": textwrap.dedent(
        """
        import importlib.abc, importlib.machinery, sys

        class Broken(importlib.abc.Loader):
            def create_module(self, spec):
                raise ImportError(spec.origin + ": undefined symbol: _ZN3c1015SmallVectorBaseIjE8grow_podEPKvmm")

            def exec_module(self, module):
                pass

        class Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "s2c_ops._C":
                    return importlib.machinery.ModuleSpec(name, Broken(), origin=__import__("os").devnull)

        sys.meta_path.insert(0, Finder())
        """
    ),
    "other-torch": "import torch\ntorch.__version__ = '2.99.0+fake'\n",
}

REPORT = textwrap.dedent(
    """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import s2c_ops
    from s2c_ops.ops import ExtensionWarning
    print(json.dumps({"implementation": s2c_ops.ops.implementation(),
                      "warnings": [str(w.message) for w in caught if issubclass(w.category, ExtensionWarning)]}))
    """
)


def run(code: str, tmp_path: Path, hide=None, env=None, args=()) -> subprocess.CompletedProcess:
    """Python `code` (or a script path in `args`) in a fresh interpreter, from outside the checkout."""
    extra = {"HF_HUB_OFFLINE": "1", **(env or {})}
    if hide:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(HIDE[hide])
        extra["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, *args] if args else [sys.executable, "-c", code]
    base = {k: v for k, v in os.environ.items() if k != "S2C_REQUIRE_EXTENSION"}  # make test sets it
    return subprocess.run(command, cwd=tmp_path, env={**base, **extra}, capture_output=True, text=True,
                          timeout=900)


def report(tmp_path: Path, hide=None) -> dict:
    done = run(REPORT, tmp_path, hide)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_compiled_loads_without_warning(tmp_path):
    if s2c_ops.ops.implementation() != "compiled":
        pytest.skip(f"s2c_ops._C is not usable here: {s2c_ops.ops._extension.FALLBACK_REASON}")
    assert report(tmp_path) == {"implementation": "compiled", "warnings": []}


@pytest.mark.parametrize(
    "hide, cause",
    [
        ("missing", "s2c_ops._C is not built"),
        ("unloadable", "s2c_ops._C does not load (ImportError: /dev/null: undefined symbol: _ZN3c10"),
        ("other-torch", "but torch 2.99.0+fake is imported"),
    ],
)
def test_fallback_with_one_warning(tmp_path, hide, cause):
    if hide == "other-torch" and not (REPO / "s2c_ops" / "_build_info.json").exists():
        pytest.skip("no s2c_ops/_build_info.json: this checkout was not built by setup.py")
    result = report(tmp_path, hide)
    assert result["implementation"] == "fallback"
    assert len(result["warnings"]) == 1, result["warnings"]
    message = result["warnings"][0]
    assert cause in message, message
    assert "using the pure-PyTorch s2c operators" in message
    assert f"Rebuild against this torch with: pip install --no-build-isolation -e {REPO}" in message


def test_required_extension(tmp_path):
    done = run("import s2c_ops", tmp_path, "missing", env={"S2C_REQUIRE_EXTENSION": "1"})
    assert done.returncode != 0
    assert "ImportError: S2C_REQUIRE_EXTENSION=1: s2c_ops._C is not built" in done.stderr


def test_fallback_registered_as_s2c(tmp_path):
    """The fallback under torch.ops.s2c, as a user without the compiled library gets it: the reference
    semantics, autograd and double backward, fake kernels and torch.compile."""
    code = textwrap.dedent(
        f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        sys.path.insert(0, {str(REPO / "tests")!r})
        import torch, s2c_ops, reference
        from test_ops import make_rois
        assert s2c_ops.ops.implementation() == "fallback"
        assert torch._C._dispatch_has_kernel_for_dispatch_key("s2c::rod_align", "CompositeExplicitAutograd")
        x = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
        rois = make_rois(2, 6, 24, 28, dtype=torch.float64)
        for name, ref in (("rod_align", reference.rod_align), ("gaic_roi_align", reference.roi_align)):
            op = getattr(torch.ops.s2c, name)
            torch.testing.assert_close(op(x, rois, 0.25, 4, 5), ref(x, rois, 0.25, 4, 5))
            fn = lambda t: op(t, rois, 0.25, 4, 5)
            assert torch.autograd.gradcheck(fn, (x,)) and torch.autograd.gradgradcheck(fn, (x,))
            torch.library.opcheck(op, (x.detach().float().requires_grad_(), rois.float(), 0.25, 4, 5))
        head = lambda t, r: s2c_ops.rod_align_avg(t, r, 4, 0.25).relu().sum((1, 2, 3))
        xf, rf = x.detach().float(), rois.float()
        torch.testing.assert_close(torch.compile(head, fullgraph=True)(xf, rf), head(xf, rf))
        print("ok")
        """
    )
    done = run(code, tmp_path, "missing")
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


def test_downstream_script_on_the_fallback(tmp_path):
    """tests/downstream_smoke.py (what CI runs against the wheel) with no usable compiled library,
    in the script's own process and in its DataLoader's spawned workers."""
    done = run("", tmp_path, "missing", args=[str(REPO / "tests" / "downstream_smoke.py"), "--expect", "fallback"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: check_cli" in done.stdout
