"""Speed features that must not change any result: lazy imports, bounded-memory chunking."""
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_brian2_is_imported_only_by_commands_that_simulate_with_it(tmp_path):
    out = _python(
        "import sys\n"
        "import spiking_gan.cli, training.trainer, training.gan, models.kernel, models.brian\n"
        "print('after import', 'brian2' in sys.modules)\n"
        f"spiking_gan.cli.main(['simulate', '--digits', '--batch', '3', '--out', {str(tmp_path / 'a.npz')!r}])\n"
        "print('after numpy simulate', 'brian2' in sys.modules)\n")
    assert "after import False" in out and "after numpy simulate False" in out
