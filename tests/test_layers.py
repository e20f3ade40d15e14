"""One direction of imports: models <- training <- analysis <- experiments <- spiking_gan (the CLI).

Every ``import`` / ``from ... import`` of a project module, at module level or inside a function,
must point to the same layer or a layer below; library modules import project modules at the top
(only the CLI imports lazily, so that a command loads just what it runs).
"""
import ast
import os

import pytest
from helpers import ROOT

LAYERS = ["models", "training", "analysis", "experiments", "spiking_gan"]


def project_imports(path):
    """(line, imported top-level package, inside a function?) of every project import."""
    tree = ast.parse(open(path).read(), path)
    out = []

    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            inner = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
            elif isinstance(child, ast.ImportFrom) and child.level > 0:  # relative: same package
                names = [os.path.basename(os.path.dirname(path))]
            for n in names:
                top = n.split(".")[0]
                if top in LAYERS:
                    out.append((child.lineno, top, in_func))
            visit(child, inner)

    visit(tree, False)
    return out


def modules():
    for layer in LAYERS:
        for name in sorted(os.listdir(os.path.join(ROOT, layer))):
            if name.endswith(".py"):
                yield layer, os.path.join(ROOT, layer, name)


@pytest.mark.parametrize("layer,path", list(modules()), ids=lambda v: os.path.relpath(v, ROOT)
                         if isinstance(v, str) and v.endswith(".py") else v)
def test_imports_point_down_and_sit_at_the_top(layer, path):
    rank = LAYERS.index(layer)
    for line, top, in_func in project_imports(path):
        where = f"{os.path.relpath(path, ROOT)}:{line}"
        assert LAYERS.index(top) <= rank, f"{where} imports {top}, a layer above {layer}"
        if layer != "spiking_gan":
            assert not in_func, f"{where}: a project import inside a function"
