"""quaid misp-sync: run quaid over MISP events and record the matches in MISP itself.

For every picture attachment of the selected events (by event id, by date, by tag), the job
registers the picture in quaid (metadata: its place in MISP), searches it, and for every
accepted or to-review match that is a picture of *another* MISP event it records, in the
event of the searched picture (only events created by the key's organisation, unless asked):

- the decision tags on the attachment attribute (``workflow:state="complete"`` and
  ``misp:automation-level="unsupervised"`` when accepted, ``workflow:todo="review"`` when to
  review: tags of existing MISP taxonomies), local by default, replacing the tags of an
  earlier decision;
- unless tag-only: an ``image`` object standing for the matching picture (quaid link, name,
  and where it is in MISP) and a ``similar`` object reference from the searched picture's
  object to it. MISP only accepts references to targets in the same event (ObjectReference
  add answers "Target has to be within the same event"), hence the local stand-in object,
  shared no wider than the narrower of the two events (:mod:`quaid_misp_sync.policy`). A
  bare attachment (not in an object) first gets an ``image`` object that ``describes`` it, as
  the source of the reference.

Re-running changes nothing already recorded: every write is preceded by a lookup in the
event as MISP returns it (tags by name, objects by quaid link and MISP uuid, references by
target uuid). MISP unpublishes an event on each object or reference written into it; the
run says which published events it left unpublished, or publishes them again when asked.

Where to start: :func:`quaid_misp_sync.sync.run_sync`; the command line is
:mod:`quaid_misp_sync.cli` (``python -m quaid_misp_sync --help`` with ``misp_modules/writeback``
and the repository root on ``sys.path``). It talks to quaid over HTTP only, through
``quaid_client`` (the one client of quaid's API), and imports nothing from ``engine``.
"""

__all__ = ["DEFAULT_TOP", "__version__"]
__version__ = "1.0"
DEFAULT_TOP = 10  # quaid matches considered per picture
