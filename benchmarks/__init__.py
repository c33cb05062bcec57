"""quaid's benchmarks: ``python -m benchmarks.<name> --help``.

Benchmarks measure one core: BLAS gets one thread before any benchmark loads
numpy (as ``engine`` does for the quaid command and the service).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
