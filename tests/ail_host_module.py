"""AIL's module base and queue for the stand-in AIL of :mod:`ail_host`.

Read from ail-project/ail-framework at 93006daa92f2 (v7.0-25): ``bin/modules/abstract_module.py``
(``AbstractModule.run``: ``compute`` guarded, ``computeNone`` not; ``queue=False`` leaves no
queue and no ``obj``) and ``bin/lib/ail_queues.py`` (``AILQueue``: a ``modules.cfg`` section is
required, ``publish`` split on ``,``, messages ``<global id>;<message>`` split on the first
``;``, sending to a queue the module does not publish to raises).
"""

from __future__ import annotations

import logging


class ModuleQueueError(Exception):
    """lib.exceptions.ModuleQueueError"""


class ModuleDied(Exception):
    """The module process ended: an exception escaped ``AbstractModule.run``."""


def build_abstract_module(world, mods: dict) -> None:
    """``modules.abstract_module`` with its ``AILQueue``, over the world's queues (see :mod:`ail_host`)."""
    config_loader = mods["lib.ConfigLoader"].ConfigLoader
    get_obj_from_global_id = mods["lib.objects.ail_objects"].get_obj_from_global_id

    class AILQueue:
        def __init__(self, name):
            self.name = name
            cfg = config_loader(config_file="modules.cfg")
            if not cfg.has_section(name):
                raise ModuleQueueError(f"No Section defined for this module: {name}. "
                                       "Please add one in configs/module.cfg")
            self.subscribers = {}
            if cfg.has_option(name, "publish") and cfg.get_config_str(name, "publish"):
                self.subscribers = {q: set() for q in cfg.get_config_str(name, "publish").split(",")}
                for module in cfg.get_config_sections():
                    if cfg.has_option(module, "subscribe"):
                        queue = cfg.get_config_str(module, "subscribe")
                        if queue in self.subscribers:
                            self.subscribers[queue].add(module)

        def get_message(self):
            lines = world.queues.get(self.name) or []
            if not lines:
                return None
            parts = lines.pop(0).split(";", 1)
            if len(parts) != 2:
                return None, None, parts[0]
            return parts[0], "hash", parts[1]

        def send_message(self, gid, message="", queue_name=None):
            if not self.subscribers:
                raise ModuleQueueError("This Module don't have any subscriber")
            if queue_name not in self.subscribers:
                raise ModuleQueueError(f"send_message: Unknown queue_name {queue_name}")
            for module in self.subscribers[queue_name]:
                world.push(module, gid, message)

    class AbstractModule:
        def __init__(self, module_name=None, queue=True):
            self.logger = logging.getLogger(self.__class__.__name__)
            self.module_name = module_name or self.__class__.__name__
            if queue:
                self.queue = AILQueue(self.module_name)
                self.obj = None
                self.sha256_mess = None
            self.proceed = True
            self.pending_seconds = 10
            self.debug = False
            self.sleeps = 0

        def get_obj(self):
            return self.obj

        def get_message(self):
            message = self.queue.get_message()
            if message:
                gid, sha256_mess, mess = message
                self.obj = get_obj_from_global_id(gid) if gid else None
                self.sha256_mess = sha256_mess if gid else None
                return mess
            self.obj = self.sha256_mess = None
            return None

        def add_message_to_queue(self, obj=None, message="", queue=None):
            gid = obj.get_global_id() if obj else self.obj.get_global_id() if self.obj else "::"
            self.queue.send_message(gid, message, queue)

        def send_back_message_to_queue(self, message=""):
            line = f"{self.obj.get_global_id()};{message}"
            world.sent_back.append(line)
            world.queues.setdefault(self.module_name, []).append(line)
            self.obj = None
            self.sha256_mess = None

        def run_rounds(self, rounds: int) -> None:
            """``AbstractModule.run``'s loop, ``rounds`` times; sleeps are counted, not slept.

            Raises :class:`ModuleDied` where AIL's process would end.
            """
            for _ in range(rounds):
                try:
                    self._one_round()
                except Exception as err:
                    raise ModuleDied(f"{type(err).__name__}: {err}") from err

        def _one_round(self) -> None:
            if not self.can_process_next_message():
                self.sleeps += 1
                return
            message = self.get_message()
            if message or self.obj:
                try:
                    self.compute(message)
                except Exception as err:  # AIL logs, then ends the message
                    world.errors.append(f"{type(err).__name__}: {err}")
                    self.logger.critical(f"Error in module {self.module_name}: {err}")
                    if isinstance(err, ModuleQueueError):
                        raise
                self.obj = None
                self.sha256_mess = None
            else:
                self.computeNone()  # not guarded in AIL
                self.sleeps += 1

        def can_process_next_message(self):
            return True

        def compute(self, message):
            raise NotImplementedError

        def computeNone(self):
            pass

    mods["modules.abstract_module"].AbstractModule = AbstractModule
