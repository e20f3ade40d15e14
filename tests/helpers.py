"""Paths and small helpers shared by the test modules (``from helpers import ...``).

pytest puts ``tests/`` on ``sys.path`` (it holds the rootdir's ``conftest.py`` and no
``__init__.py``), so this module is importable from every test file and from conftest.py;
no test file imports another test file. Fixtures (trained runs, the quality classifier,
``umask``) are in conftest.py.
"""
import hashlib
import os
import stat

from spiking_gan.cli import main
from training import config as cm
from training.config import GanConfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")

#: The tiny test GAN of the IF model (the paper's neuron, S4NN's rule) and of the windowed
#: ramp model (exact gradients, Adam): the same sizes, t_max 32, 3 epochs of 200 digits.
TINY = os.path.join(DATA, "tiny_gan.toml")
TINY_RAMP = os.path.join(DATA, "tiny_ramp.toml")
#: The tiny config of each neuron model (``neuron.model`` -> path).
TINY_CONFIGS = {"if": TINY, "ramp": TINY_RAMP}
MODELS = tuple(TINY_CONFIGS)
#: A classifier small enough for a test.
TINY_CLS = os.path.join(DATA, "tiny_classifier.toml")

#: Config keys only the IF model reads (the ramp model ignores them).
IF_ONLY_KEYS = ("generator.thresholds", "generator.lr", "generator.init_hidden", "generator.init_output",
                "discriminator.thresholds", "discriminator.lr", "discriminator.init_hidden",
                "discriminator.init_output", "train.l2", "train.dead_min_rate",
                "train.silent_pixel_remedy", "train.real_delay", "per_class", "neuron.latency",
                "neuron.strict_threshold")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny(model: str = "if", **over):
    """The tiny GanConfig of ``model`` ("if" or "ramp") with dotted-key overrides ``over``."""
    return cm.load(TINY_CONFIGS[model], GanConfig, over)


def snapshot(folder) -> dict:
    """Every file and folder under ``folder``: content hash and permissions."""
    out = {}
    for base, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(base, d), folder) + "/"] = None
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = (hashlib.sha256(fh.read()).hexdigest(),
                                                   stat.S_IMODE(os.stat(p).st_mode))
    return out


def run_cli(argv, capsys):
    """``spiking-gan ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_line(err: str) -> bool:
    """A user error: exactly one line on stderr, no traceback."""
    return err.count("\n") == 1 and "Traceback" not in err
