"""Codepod's matplotlib backend: ``plt.show()`` hands each open figure to the IDE.

Every sandbox shell sets ``MPLBACKEND=module://codepod_plots`` and ``CODEPOD_PLOTS_DIR``.
Each figure is rendered to PNG (Agg, no display server) and moved, whole, into that
directory; the sandbox's agent picks it up at once and sends it to the open IDE tabs, which
show it in the Plots pane. The figures are then closed, as an interactive ``show()`` leaves
them. ``savefig`` works as with any backend.

Installed into the sandboxes' Python environment by scripts/setup.sh (and the sandbox
image); the source lives in the Codepod repository at sandbox/python/codepod_plots.py.
"""

import itertools
import os
import tempfile
import time

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

_numbers = itertools.count(1)


def _deliver(figure) -> None:
    directory = os.environ.get("CODEPOD_PLOTS_DIR")
    if not directory:
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(prefix=".partial-", suffix=".png", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as out:
            figure.savefig(out, format="png")
        name = f"{time.time_ns()}-{os.getpid()}-{next(_numbers)}.png"
        os.rename(partial, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise


class FigureManagerCodepod(FigureManagerBase):
    def show(self) -> None:
        _deliver(self.canvas.figure)


class FigureCanvasCodepod(FigureCanvasAgg):
    manager_class = FigureManagerCodepod


FigureCanvas = FigureCanvasCodepod
FigureManager = FigureManagerCodepod


def show(*args, **kwargs) -> None:
    """Sends every open figure to the IDE, in the order they were made, then closes them."""
    for manager in Gcf.get_all_fig_managers():
        _deliver(manager.canvas.figure)
    Gcf.destroy_all()
