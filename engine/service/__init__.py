"""The HTTP service: JSON API, batch jobs, review queue, web UI (``quaid serve``).

Where to start: :func:`engine.service.app.create_app` builds the Flask app;
:mod:`engine.cli.serve` runs it under waitress with the job workers.
"""
