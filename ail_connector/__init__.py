"""quaid's AIL connector: correlate AIL screenshots and images through the quaid service.

Where to start: :class:`~ail_connector.correlator.Correlator` (one object in, a plan of
tags and correlations out), :mod:`~ail_connector.actions` (what each decision turns
into), ``ail_module/QuaidImages.py`` (the file dropped into AIL's ``bin/modules/``) and
``README.md`` (installing it into AIL). This package needs only ``requests`` and the
standard library, so it installs into AIL's virtualenv without quaid's engine.
"""

from ail_connector.actions import Correlation, Plan, Policy, plan_actions
from ail_connector.ail_objects import AILRef
from ail_connector.client import QuaidService, ServiceError
from ail_connector.correlator import Correlator, Outcome, skip_reason

__all__ = [
    "AILRef",
    "Correlation",
    "Correlator",
    "Outcome",
    "Plan",
    "Policy",
    "QuaidService",
    "ServiceError",
    "plan_actions",
    "skip_reason",
]
