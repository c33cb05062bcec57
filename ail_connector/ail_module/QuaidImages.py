#!/usr/bin/env python3
"""
The QuaidImages Module
======================

Correlates AIL images and crawler screenshots with every picture known to a quaid
service. Runs as an AIL module (``AbstractModule``), installed with the ``ail_connector``
distribution and started with ``quaid-ail-start`` (no AIL file is edited):

* with a ``[QuaidImages]`` section in ``configs/modules.cfg`` it takes images from the
  ``Images`` queue (feeds and chats, as ``CodeReader``) and tags through the ``Tags`` queue;
* without one it runs queue-less: it sweeps the image folder and tags objects directly
  (``obj.add_tag``, what AIL's ``Tags`` module does);
* either way, when idle (``computeNone``), it sweeps new crawler screenshots, which AIL's
  crawler writes to disk without queueing them, and follows quaid's match events: the
  earlier screenshots and images that a picture added to quaid since (by anyone) matches
  are tagged and correlated (:mod:`ail_connector.retro`).

Each picture goes to quaid (add + search) through :mod:`ail_connector`; the decision
becomes tags, and correlations where AIL shows them (``correlations_engine.py``).
Configuration: section ``[Quaid]`` of ``configs/core.cfg`` (see ail_connector/README.md).

AIL guards ``compute`` but not ``computeNone`` (``AbstractModule.run``): an exception
there ends the process, so the sweep catches everything, logs one line and backs off.
"""

import configparser
import fcntl
import os
import sys
import time

import redis

sys.path.append(os.environ['AIL_BIN'])
##################################
# Import Project packages
##################################
from lib import Tag, correlations_engine  # noqa: E402
from lib.ConfigLoader import ConfigLoader  # noqa: E402
from lib.objects import Images, Screenshots  # noqa: E402
from modules.abstract_module import AbstractModule  # noqa: E402
from quaid_client import AuthError, QuaidClient, ServiceError  # noqa: E402
from quaid_client.follow import PositionFile, follow  # noqa: E402

from ail_connector import AILRef, Correlator  # noqa: E402
from ail_connector.ail_objects import IMAGE, PICTURE_TYPES, SCREENSHOT, is_sha256  # noqa: E402
from ail_connector.config import SECTION, ConfigError, read_settings  # noqa: E402
from ail_connector.retro import plan_retro  # noqa: E402
from ail_connector.sweep import FolderSweeper  # noqa: E402
from ail_connector.tags import TaxonomyIndex  # noqa: E402

MODULE_NAME = 'QuaidImages'
SWEEP_SECONDS = 60  # queue-less: sweep batches for up to this long before AIL's loop comes round again
# Kvrocks (objects, tags, correlations) or the queue Redis not answering: keep the work.
STORE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class QuaidImages(AbstractModule):
    """
    QuaidImages module for AIL framework
    """

    def __init__(self):
        self.has_queue = ConfigLoader(config_file='modules.cfg').has_section(MODULE_NAME)
        super().__init__(queue=self.has_queue)
        if not self.has_queue:
            self.obj = None
            self.sha256_mess = None

        # Waiting time in seconds between two computeNone calls (idle sweep)
        self.pending_seconds = 10

        self.taxonomy = ail_taxonomy_index()
        try:
            self.settings = read_settings(_section_values(SECTION), os.environ.get('AIL_HOME'), self.taxonomy)
        except ConfigError as err:
            self.logger.critical(f'{self.module_name}: {err}')
            sys.exit(f'{self.module_name}: {err}')
        settings = self.settings
        service = QuaidClient(settings.url, api_key=settings.api_key, timeout=(5.0, settings.timeout),
                              retries=settings.retries)
        self.correlator = Correlator(service, settings.policy, self.resolve, self.is_safe)
        self.sweepers = self._sweepers()
        self.events = PositionFile(os.path.join(settings.state_dir, 'events.position')) \
            if settings.follow_events else None
        self.lock_file = None
        self.down_until = 0.0
        self.custom_tags_registered = False
        self.shown_links = {(a, b) for a in PICTURE_TYPES for b in PICTURE_TYPES if _ail_shows(a, b)}

        mode = 'Images queue' if self.has_queue else 'no queue (no [QuaidImages] section in modules.cfg)'
        swept = ', '.join(str(s.folder) for s in self.sweepers) or 'nothing'
        self.logger.info(f'Module {self.module_name} initialized: {mode}; sweeps {swept}')
        if not self.shown_links:
            self.logger.info(f'{self.module_name}: AIL shows no screenshot/image look-alike correlations '
                             f'(correlations_engine.py): matches are marked with tags only')

    # -- AIL hooks -- #

    def get_message(self):
        if self.has_queue:
            return super().get_message()
        self.obj = None
        return None

    def can_process_next_message(self):
        return time.time() >= self.down_until

    def compute(self, message):
        obj = self.get_obj()
        if obj is None or obj.get_type() not in PICTURE_TYPES:
            return None
        try:
            return self.correlate(obj)
        except ServiceError as err:
            if not _keeps_work(err):
                self.logger.warning(f'quaid: {obj.get_global_id()} dropped: {err}')
                return None
            self.send_back_message_to_queue(message or '')  # taken again once the pause is over
            self.pause(err)
        except STORE_ERRORS as err:
            self.send_back_message_to_queue(message or '')
            self.pause(err)
        return None

    def computeNone(self):
        if not self.can_process_next_message() or not (self.sweepers or self.events):
            return None
        what = f'sweep lock in {self.settings.state_dir}'
        try:
            if not self._holds_sweep_lock():
                return None
            for sweeper in self.sweepers:
                what = f'sweep of {sweeper.folder}'
                if sweeper.due():
                    self._sweep(sweeper)
            if self.events is not None and self.can_process_next_message():  # not paused by the sweep
                what = 'match events'
                self.follow_events()
        except Exception as err:  # noqa: BLE001 - AIL does not guard computeNone: one escape ends the module
            self.pause(err, what=what)
        return None

    # -- work -- #

    def correlate(self, obj):
        """Send one picture object to quaid and carry out the planned tags and correlations."""
        if not obj.exists():
            self.logger.info(f'quaid: missing file for {obj.get_global_id()}')
            return None
        tags = obj.get_tags(r_list=True)
        outcome = self.correlator.process(AILRef(obj.get_type(), obj.get_id()), self._read(obj), tags,
                                          tags_safe=obj.is_tags_safe(tags), domain=crawled_domain(obj))
        if outcome.status != 'processed':
            self.logger.debug(f'quaid: ignoring {obj.get_global_id()}: {outcome.reason}')
            return outcome
        plan = outcome.plan
        if plan.noise:  # a blank, error or challenge page: no tag, no correlation (ail_connector.actions)
            self.logger.debug(f'quaid: {obj.get_global_id()} is noise ({plan.noise})')
            return outcome
        linked = self._carry_out(obj, plan)
        if plan.tags:
            self.logger.info(f'quaid: {obj.get_global_id()} {plan.decision}, {linked} correlation(s)')
        return outcome

    def follow_events(self):
        """Tag and correlate the earlier pictures that pictures added to quaid since match, one match
        event at a time from the saved position (saved after each, so a restart resumes there)."""
        handled = 0
        for event in follow(self.correlator.service, self.events.load(), on_missed=self._missed):
            for plan in plan_retro(event, self.settings.policy, self.resolve, self.is_safe):
                obj = _ail_object(plan.subject.type, plan.subject.id)
                linked = self._carry_out(obj, plan)
                self.logger.info(f'quaid: {obj.get_global_id()} {plan.decision} by the later picture '
                                 f'{event.get("id", "")[:16]}, {linked} correlation(s)')
            self.events.save(str(event['event']))
            handled += 1
            if handled >= self.settings.sweep_batch:
                return  # the next idle round goes on: queue messages are served in between

    def _carry_out(self, obj, plan):
        """The plan's tags (through the Tags queue, or directly without one) and the correlations AIL
        shows; the number of correlations written."""
        self._register_custom_tags()
        for tag in plan.tags:
            if self.has_queue:
                self.add_message_to_queue(obj=obj, message=tag, queue='Tags')
            else:
                obj.add_tag(tag)
        linked = 0
        for correlation in plan.correlations:
            target = correlation.target
            if (obj.get_type(), target.type) in self.shown_links:
                obj.add_correlation(target.type, target.subtype, target.id)
                linked += 1
        return linked

    def _missed(self, position):
        self.logger.warning(f'quaid dropped match events after {position} before this module read them: '
                            f'earlier pictures matched by pictures added then are not tagged')

    def pause(self, err, what='quaid'):
        """Keep the work and wait ``backoff`` seconds; one log line saying why."""
        self.down_until = time.time() + self.settings.backoff
        if isinstance(err, AuthError):
            reason = f'quaid refused the API key ({err}): check api_key in [Quaid] of core.cfg'
        else:
            reason = f'{what}: {type(err).__name__}: {err}'
        self.logger.error(f'{reason}; work kept, retrying in {self.settings.backoff:g} s')

    def resolve(self, picture_id):
        """The AIL object holding the bytes of quaid picture ``picture_id`` (same SHA-256), if any."""
        if not is_sha256(picture_id):
            return None
        if Screenshots.Screenshot(picture_id).exists():
            return AILRef(SCREENSHOT, picture_id)
        if Images.Image(picture_id).exists():
            return AILRef(IMAGE, picture_id)
        return None

    def is_safe(self, ref):
        return _ail_object(ref.type, ref.id).is_tags_safe()

    # -- helpers -- #

    def _sweepers(self):
        settings = self.settings
        folders = []
        if settings.sweep_screenshots:
            folders.append((SCREENSHOT, Screenshots.get_screenshot_dir()))
        if settings.sweep_images if settings.sweep_images is not None else not self.has_queue:
            folders.append((IMAGE, Images.get_screenshot_dir()))  # AIL's name for the image folder
        return [FolderSweeper(folder, os.path.join(settings.state_dir, f'sweep-{obj_type}.json'),
                              interval=settings.sweep_interval, settle=settings.sweep_settle,
                              backfill=settings.sweep_backfill, obj_type=obj_type)
                for obj_type, folder in folders]

    def _sweep(self, sweeper):
        """One batch with a queue to serve; without one, batches for up to SWEEP_SECONDS."""
        deadline = time.monotonic() + (0 if self.has_queue else SWEEP_SECONDS)
        while True:
            for picture in sweeper.batch(self.settings.sweep_batch):
                try:
                    self.correlate(_ail_object(sweeper.obj_type, picture.id))
                except ServiceError as err:
                    if _keeps_work(err):
                        self.pause(err)
                        return  # not marked done: the next sweep takes it again
                    self.logger.warning(f'quaid: {sweeper.obj_type}::{picture.id} dropped: {err}')
                sweeper.done(picture)
            if not sweeper.pending or time.monotonic() >= deadline:
                return

    def _holds_sweep_lock(self):
        """Only one QuaidImages process sweeps (a second one started by mistake takes queue messages only)."""
        if self.lock_file is None:
            os.makedirs(self.settings.state_dir, exist_ok=True)
            lock = open(os.path.join(self.settings.state_dir, 'sweep.lock'), 'a')
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                self.logger.warning(f'quaid: another {self.module_name} sweeps {self.settings.state_dir}; '
                                    f'this one does not sweep')
                self.sweepers = []
                return False
            self.lock_file = lock
        return True

    def _register_custom_tags(self):
        """Make AIL know the custom tags the policy emits (``Tag.create_custom_tag``, as trackers do)."""
        if not self.custom_tags_registered:
            policy = self.settings.policy
            for tag in policy.accepted_tags + policy.review_tags:
                if self.taxonomy.is_custom(tag):
                    Tag.create_custom_tag(tag)
            self.custom_tags_registered = True

    def _read(self, obj):
        if obj.get_type() == IMAGE:
            return obj.get_content(r_type='bytes')
        return obj.get_file_content().read()


def ail_taxonomy_index():
    """AIL's own taxonomies (``files/misp-taxonomies``, through ``lib.Tag``) as a :class:`TaxonomyIndex`."""
    namespaces = set(Tag.get_taxonomies())

    def machinetags(namespace):
        if namespace not in namespaces:
            return None
        return {meta['tag'] for meta in Tag.get_taxonomy_tags(namespace)}

    return TaxonomyIndex(namespaces, machinetags)


def crawled_domain(obj):
    """The domain AIL's crawler found a screenshot on (``Crawler.py``: ``screenshot.add_correlation(
    'domain', '', domain)``; ``get_correlation`` answers ``{'domain': {':<domain>', ...}}``), when
    it is one: the same screenshot crawled on several domains names none, nor does an image."""
    if obj.get_type() != SCREENSHOT:
        return None
    found = {entry.split(':', 1)[-1] for entry in obj.get_correlation('domain').get('domain') or ()}
    return found.pop() if len(found) == 1 else None


def _section_values(section):
    """``(key, value)`` pairs of a core.cfg section; a bad ``%`` is a :class:`ConfigError` naming its key."""
    try:
        return ConfigLoader().get_all_keys_values_from_section(section)
    except configparser.InterpolationError as err:
        raise ConfigError(f"[{err.section}] {err.option}: a '%' must be written '%%' in core.cfg") from None
    except configparser.DuplicateOptionError as err:
        raise ConfigError(f"[{err.section}] {err.option}: given twice in core.cfg") from None


def _ail_shows(type1, type2):
    """Whether AIL lists (and so shows) correlations between the two types, both ways."""
    return (type2 in (correlations_engine.get_obj_correl_types(type1) or ())
            and type1 in (correlations_engine.get_obj_correl_types(type2) or ()))


def _ail_object(obj_type, obj_id):
    return Screenshots.Screenshot(obj_id) if obj_type == SCREENSHOT else Images.Image(obj_id)


def _keeps_work(err):
    return err.transient or isinstance(err, AuthError)


if __name__ == '__main__':
    module = QuaidImages()
    module.run()
