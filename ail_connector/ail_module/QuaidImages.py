#!/usr/bin/env python3
"""
The QuaidImages Module
======================

Correlates AIL images and crawler screenshots with every picture known to a quaid
service (https://github.com/ail-project/ail-framework module, drop into ``bin/modules/``).

* subscribed to the ``Images`` queue (images from feeds and chats, as ``CodeReader``);
* when the queue is idle (``computeNone``), sweeps new crawler screenshots, which AIL's
  crawler writes to disk without queueing them;
* sends each picture to quaid (add + search) through :mod:`ail_connector`, then tags it
  through AIL's ``Tags`` queue and records AIL correlations with the matched objects.

Skips GIFs, AIL's placeholder screenshots and objects whose tags are not safe to spread.
Configuration: section ``[Quaid]`` of ``configs/core.cfg`` (see ail_connector/README.md).
Needs in AIL's virtualenv: ``requests`` (already an AIL requirement) and the
``ail_connector`` package (``pip install --no-deps <quaid source>``).
"""

##################################
# Import External packages
##################################
import os
import sys
import time

sys.path.append(os.environ['AIL_BIN'])
##################################
# Import Project packages
##################################
from lib.ConfigLoader import ConfigLoader  # noqa: E402
from lib.objects import Images, Screenshots  # noqa: E402
from modules.abstract_module import AbstractModule  # noqa: E402

from ail_connector import AILRef, Correlator, Policy, QuaidService, ServiceError  # noqa: E402
from ail_connector.ail_objects import IMAGE, SCREENSHOT, is_sha256  # noqa: E402
from ail_connector.sweep import ScreenshotSweeper  # noqa: E402

BACKOFF_SECONDS = 60  # pause after the service failed to answer, before trying again


def _truthy(value):
    return str(value).strip().lower() in ('1', 'true', 'yes', 'on')


class QuaidImages(AbstractModule):
    """
    QuaidImages module for AIL framework
    """

    def __init__(self):
        super().__init__()

        # Waiting time in seconds between two computeNone calls (idle sweep)
        self.pending_seconds = 10

        conf = dict(ConfigLoader().get_all_keys_values_from_section('Quaid'))
        service = QuaidService(conf.get('url', 'http://127.0.0.1:8080'), api_key=conf.get('api_key') or None,
                               timeout=(5.0, float(conf.get('timeout', 30))))
        self.correlator = Correlator(service, Policy.from_mapping(conf), self.resolve, self.is_safe)
        self.sweep_batch = int(conf.get('sweep_batch', 20))
        self.sweeper = None
        if _truthy(conf.get('sweep_screenshots', 'true')):
            state = conf.get('sweep_state') or os.path.join(os.environ['AIL_HOME'], 'QUAID', 'sweep.json')
            self.sweeper = ScreenshotSweeper(Screenshots.get_screenshot_dir(), state,
                                             interval=float(conf.get('sweep_interval', 300)),
                                             settle=float(conf.get('sweep_settle', 5)),
                                             backfill=_truthy(conf.get('sweep_backfill', 'true')))
        self.down_until = 0.0

        # Send module state to logs
        self.logger.info(f'Module {self.module_name} initialized')

    # -- AIL hooks -- #

    def can_process_next_message(self):
        return time.time() >= self.down_until

    def compute(self, message):
        obj = self.get_obj()
        if obj is None or obj.get_type() not in (IMAGE, SCREENSHOT):
            return None
        try:
            return self.correlate(obj)
        except ServiceError as err:
            self.logger.warning(f'quaid: {obj.get_global_id()}: {err}')
            if self._transient(err):
                self.send_back_message_to_queue(message or '')  # retried once the service is back
            return None

    def computeNone(self):
        if not self.sweeper or not self.can_process_next_message() or not self.sweeper.due():
            return None
        for picture in self.sweeper.batch(self.sweep_batch):
            try:
                self.correlate(Screenshots.Screenshot(picture.id))
            except ServiceError as err:
                self.logger.warning(f'quaid: screenshot {picture.id}: {err}')
                if self._transient(err):
                    return None  # not marked done: the next sweep takes it again
            self.sweeper.done(picture)
        return None

    # -- work -- #

    def correlate(self, obj):
        """Send one picture object to quaid and carry out the planned tags and correlations."""
        if not obj.exists():
            self.logger.info(f'quaid: missing file for {obj.get_global_id()}')
            return None
        tags = obj.get_tags(r_list=True)
        outcome = self.correlator.process(AILRef(obj.get_type(), obj.get_id()), self._read(obj), tags,
                                          tags_safe=obj.is_tags_safe(tags))
        if outcome.status != 'processed':
            self.logger.debug(f'quaid: ignoring {obj.get_global_id()}: {outcome.reason}')
            return outcome
        plan = outcome.plan
        for tag in plan.tags:
            self.add_message_to_queue(obj=obj, message=tag, queue='Tags')
        for correlation in plan.correlations:
            target = correlation.target
            obj.add_correlation(target.type, target.subtype, target.id)
        if plan.correlations:
            self.logger.info(f'quaid: {obj.get_global_id()} {plan.decision}, '
                             f'{len(plan.correlations)} correlation(s)')
        return outcome

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
        obj = Screenshots.Screenshot(ref.id) if ref.type == SCREENSHOT else Images.Image(ref.id)
        return obj.is_tags_safe()

    def _read(self, obj):
        if obj.get_type() == IMAGE:
            return obj.get_content(r_type='bytes')
        return obj.get_file_content().read()

    def _transient(self, err):
        if err.status is None or err.status >= 500:
            self.down_until = time.time() + BACKOFF_SECONDS
            return True
        return False


if __name__ == '__main__':
    module = QuaidImages()
    module.run()
