"""quaid's correlation engine: picture decoding, algorithms, decisions, store, index, service.

Where to start: :mod:`engine.picture` turns bytes into a normalised picture,
:mod:`engine.algorithms` lists the algorithms, :mod:`engine.decision` merges
their votes, and :class:`engine.core.Quaid` ties store, index and clusters together.
"""

import os

# One BLAS thread. quaid's matrix products are a picture's worth (engine.resample: ~2 ms): OpenBLAS's
# pool costs more than it saves there, its idle threads spin on a busy host (measured 8x slower on a
# loaded 2-core VM), and the service already runs requests in parallel. Effective when engine is
# imported before numpy (the quaid command, the service); set OPENBLAS_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
