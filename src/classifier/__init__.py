"""``classifier``: the name the original README uses for dmr. ``from classifier import classify,
Router`` and ``import classifier.integrations.<framework>`` give the same objects as ``dmr``."""

import importlib.abc
import importlib.util
import sys

import dmr
from dmr import *  # noqa: F401,F403
from dmr import __all__, __version__  # noqa: F401


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Maps ``classifier.x.y`` to the already-importable ``dmr.x.y`` (one module object, not two)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("classifier."):
            real = "dmr." + fullname.split(".", 1)[1]
            if importlib.util.find_spec(real) is not None:
                return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("dmr." + spec.name.split(".", 1)[1])

    def exec_module(self, module):
        pass


if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
    # First, so that a submodule found through a dmr package's __path__ is never loaded a second time.
    sys.meta_path.insert(0, _Alias())


def __getattr__(name):
    return getattr(dmr, name)
