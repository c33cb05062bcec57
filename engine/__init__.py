"""quaid's correlation engine: picture decoding, algorithms, decisions, store, index, service.

Where to start: :mod:`engine.picture` turns bytes into a normalised picture,
:mod:`engine.algorithms` lists the algorithms, :mod:`engine.decision` merges
their votes, and :class:`engine.core.Quaid` ties store, index and clusters together.
"""

__version__ = "0.1.0"
