"""quaid's AIL connector: correlate AIL screenshots and images through the quaid service.

Where to start: :class:`~ail_connector.correlator.Correlator` (one object in, a plan of
tags and correlations out), :mod:`~ail_connector.actions` (what each decision turns
into), :mod:`quaid_client` (the HTTP client of quaid's API, shipped in this distribution),
``ail_module/QuaidImages.py`` (the AIL module) and ``README.md`` (installing it into AIL).
This folder is its own distribution (``pip install ./ail_connector``): Python 3.8 or later,
``requests`` and the standard library only, so it installs into AIL's virtualenv without
quaid's engine.
"""

from ail_connector.actions import Correlation, Plan, Policy, plan_actions
from ail_connector.ail_objects import AILRef
from ail_connector.correlator import Correlator, Outcome, skip_reason

__all__ = [
    "AILRef",
    "Correlation",
    "Correlator",
    "Outcome",
    "Plan",
    "Policy",
    "plan_actions",
    "skip_reason",
]
