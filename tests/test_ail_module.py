"""The QuaidImages AIL module, loaded from its file into a stand-in of AIL (``ail_host``) that
keeps AIL's rules, against a real ``quaid serve`` process.

What an operator meets: the module's queue mode and its queue-less mode (no AIL file edited),
the tags AIL knows, the correlations AIL shows, the ``[Quaid]`` section read as AIL reads
core.cfg, and a module that survives errors in the idle sweep and a wrong API key.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from ail_host import PATCHED_CORRELATIONS, SHOWN_CORRELATIONS, ModuleDied, ModuleQueueError, ail_with_module
from ail_standin import ROOT, free_port, gif, page, png, reencoded, start_service

from ail_connector.tags import CONFIRMATIONS, PHISHING_SUSPECTED, POSSIBLY_SIMILAR, REVIEW, SIMILAR

CE = 'dark-web:topic="pornography-child-exploitation"'


@pytest.fixture(scope="module")
def service():
    home = Path(tempfile.mkdtemp(prefix="quaid-ail-module-"))
    proc = start_service(home)
    yield proc
    proc.stop()
    shutil.rmtree(home, ignore_errors=True)


def quick_cfg(url: str, tmp_path: Path, extra: str = "") -> str:
    return (f"[Quaid]\nurl = {url}\nsweep_interval = 0\nsweep_settle = 0\n"
            f"state_dir = {tmp_path / 'state'}\n{extra}")


@pytest.fixture
def ail(tmp_path, service):
    with ail_with_module(tmp_path / "ail", quick_cfg(service.url, tmp_path)) as world:
        yield world


def end_process(module) -> None:
    """What the end of a module process does to its sweep lock (the OS releases it)."""
    if module.lock_file is not None:
        module.lock_file.close()


def stored(service, picture_id: str) -> bool:
    return requests.get(f"{service.url}/api/v1/pictures/{picture_id}", timeout=10).status_code == 200


# --- queue mode: the optional [QuaidImages] section in modules.cfg -----------------------------

def test_module_tags_images_from_the_images_queue_with_tags_ail_knows(ail):
    shot = ail.add_screenshot(png(page(401)))
    copy = ail.add_image(reencoded(page(401)))
    module = ail.module_class()
    assert module.module_name == "QuaidImages" and module.has_queue
    module.run_rounds(1)  # idle: the sweep indexes the existing screenshot
    ail.push("QuaidImages", f"image::{copy}", "")
    module.run_rounds(1)
    assert ail.run_tags_module() == [f"image::{copy};{SIMILAR}"]  # <global id>;<tag>, on the Tags queue
    assert ail.tags[f"image::{copy}"] == {SIMILAR}
    assert SIMILAR in ail.custom_tags and ail.unknown_tags() == set()  # registered as AIL custom tags
    # AIL shows no image<->screenshot correlation (correlations_engine.py): none is written
    assert ail.correlations == set() and ail.errors == []
    assert f"screenshot::{shot}" not in ail.shown_correlations(f"image::{copy}")


def test_correlations_are_written_where_ail_shows_them(ail):
    ail.apply_correlation_patch()  # the optional, reversible step of the README
    shot = ail.add_screenshot(png(page(402)))
    copy = ail.add_image(reencoded(page(402)))
    module = ail.module_class()
    module.run_rounds(1)
    ail.push("QuaidImages", f"image::{copy}")
    module.run_rounds(1)
    assert ail.correlated(f"image::{copy}", f"screenshot::{shot}")


def test_a_screenshot_of_a_brand_baseline_crawled_on_another_domain_is_tagged_phishing(ail, service):
    """The crawler's domain (the screenshot's domain correlation) goes with the search: the brand's
    look on another domain gets phishing:techniques="fake-website", on its own domain it does not."""
    from quaid_client import QuaidClient

    with QuaidClient(service.url) as client:
        client.add(png(page(405)), name="acme-login", metadata={"brand": "Acme", "domain": "acme.example"})
    phish = ail.add_screenshot(reencoded(page(405)))
    ail.crawled_on(phish, "acmelogin2fa.onion")
    legit = ail.add_screenshot(png(page(405), compress_level=3))
    ail.crawled_on(legit, "www.acme.example")
    twice = ail.add_screenshot(png(page(405), compress_level=5))  # crawled on two domains: names none
    ail.crawled_on(twice, "acmelogin2fa.onion")
    ail.crawled_on(twice, "www.acme.example")
    module = ail.module_class()
    module.run_rounds(1)  # idle: the sweep sends the crawled screenshots
    ail.run_tags_module()
    assert ail.tags[f"screenshot::{phish}"] >= {SIMILAR, PHISHING_SUSPECTED}
    assert PHISHING_SUSPECTED not in ail.tags[f"screenshot::{legit}"] | ail.tags[f"screenshot::{twice}"]
    assert SIMILAR in ail.tags[f"screenshot::{twice}"]
    assert PHISHING_SUSPECTED in ail.taxonomy_tags("phishing") and ail.errors == []


def test_the_stand_in_patch_rule_is_what_the_shipped_patch_adds():
    """ail_host.PATCHED_CORRELATIONS must be exactly the types the patch adds to AIL's list."""
    patch = (ROOT / "ail_connector" / "ail_module" / "correlations-screenshot-image.patch").read_text()

    def lists(sign: str) -> dict[str, set[str]]:
        rows = re.findall(rf'^\{sign}\s+"(\w+)": \[([^\]]*)\]', patch, re.M)
        return {key: set(re.findall(r'"([\w-]+)"', values)) for key, values in rows}

    before, after = lists("-"), lists("+")
    assert {key: after[key] - before[key] for key in after} == PATCHED_CORRELATIONS
    assert all(before[key] == SHOWN_CORRELATIONS[key] for key in before)


def test_module_skips_gifs_and_unsafe_objects(ail, service):
    animated = ail.add_image(gif(page(403)))
    unsafe = ail.add_image(png(page(404)), tags=(CE,))
    module = ail.module_class()
    for obj_id in (animated, unsafe):
        ail.push("QuaidImages", f"image::{obj_id}")
    module.run_rounds(2)
    assert ail.queues.get("Tags", []) == [] and ail.correlations == set()
    assert not stored(service, animated) and not stored(service, unsafe)


def test_module_sweeps_new_crawler_screenshots_once(ail, service):
    first = ail.add_screenshot(png(page(501)))
    module = ail.module_class()
    module.run_rounds(1)
    assert stored(service, first)
    second = ail.add_screenshot(reencoded(page(501)))
    module.run_rounds(1)
    # the new screenshot by its search; the earlier one by the match event its addition wrote
    assert ail.run_tags_module() == [f"screenshot::{second};{SIMILAR}", f"screenshot::{first};{SIMILAR}"]
    end_process(module)
    restarted = ail.module_class()  # state kept on disk: nothing is sent twice
    restarted.run_rounds(2)
    assert restarted.sweepers and restarted.lock_file is not None  # it did sweep
    assert ail.queues.get("Tags", []) == []


def test_module_backs_off_and_requeues_when_the_service_is_down(tmp_path):
    cfg = quick_cfg(f"http://127.0.0.1:{free_port()}", tmp_path, "sweep_screenshots = false\ntimeout = 1\n")
    with ail_with_module(tmp_path / "ail", cfg) as ail:
        obj_id = ail.add_image(png(page(601)))
        module = ail.module_class()
        ail.push("QuaidImages", f"image::{obj_id}", "from-feeder")
        module.run_rounds(1)
        assert ail.sent_back == [f"image::{obj_id};from-feeder"]  # message kept for a later try
        assert not module.can_process_next_message()
        module.run_rounds(3)  # paused: the message is not taken again at once
        assert ail.queues["QuaidImages"] == [f"image::{obj_id};from-feeder"]


# --- queue-less mode: no AIL file edited ------------------------------------------------------

def test_without_a_modules_cfg_section_the_module_sweeps_images_and_tags_directly(tmp_path, service):
    with ail_with_module(tmp_path / "ail", quick_cfg(service.url, tmp_path), subscribed=False) as ail:
        shot = ail.add_screenshot(png(page(701)))
        module = ail.module_class()  # AIL's AILQueue would refuse a module without a section
        assert not module.has_queue
        module.run_rounds(1)
        copy = ail.add_image(reencoded(page(701)))
        module.run_rounds(2)
        assert ail.tags[f"image::{copy}"] == {SIMILAR}  # obj.add_tag, as AIL's Tags module does
        assert ail.queues.get("Tags", []) == [] and ail.unknown_tags() == set()
        assert stored(service, shot) and stored(service, copy) and ail.errors == []


@pytest.mark.parametrize(("subscribed", "expected"), [(True, 1), (False, 3)])
def test_without_a_queue_one_idle_round_sweeps_more_than_a_batch(tmp_path, service, subscribed, expected):
    cfg = quick_cfg(service.url, tmp_path, "sweep_batch = 1\n")
    with ail_with_module(tmp_path / "ail", cfg, subscribed=subscribed) as ail:
        shots = [ail.add_screenshot(png(page(710 + i))) for i in range(3)]
        ail.module_class().run_rounds(1)
        assert sum(stored(service, shot) for shot in shots) == expected


def test_a_second_module_process_does_not_sweep(ail):
    first, second = ail.module_class(), ail.module_class()
    ail.add_screenshot(png(page(702)))
    first.run_rounds(1)
    second.run_rounds(1)
    assert first.sweepers and second.sweepers == []


# --- tags ------------------------------------------------------------------------------------------

def test_every_tag_the_connector_emits_is_known_to_ail(ail):
    """Default tags are AIL custom tags (a namespace no taxonomy uses) or taxonomy values, and the
    tags analysts confirm with are values AIL lets them add once infoleak is enabled."""
    namespaces = ail.taxonomy_namespaces()
    assert "quaid" not in namespaces and "misp-galaxy" not in namespaces
    for tag in (SIMILAR, POSSIBLY_SIMILAR):
        assert tag.startswith("quaid:")
    for tag in (REVIEW, *CONFIRMATIONS):
        assert tag in ail.taxonomy_tags(tag.split(":")[0])
    module = ail.module_class()
    module._register_custom_tags()
    assert all(ail.known_tag(tag) for tag in (SIMILAR, POSSIBLY_SIMILAR, REVIEW, *CONFIRMATIONS))
    import lib.Tag as ail_tag  # the stand-in, loaded as AIL's lib.Tag

    ail.enabled_taxonomy_tags |= set(ail.taxonomy_tags("infoleak"))
    assert ail_tag.add_obj_tags("x", "", "image", tags=[CONFIRMATIONS[0]]) is None
    old_tag = 'infoleak:automatic-detection="similar-picture"'
    assert ail_tag.add_obj_tags("x", "", "image", tags=[old_tag])[1] == 400


def test_a_configured_tag_outside_the_taxonomy_is_refused_at_start(tmp_path, service, capsys):
    cfg = quick_cfg(service.url, tmp_path, 'accepted_tags = infoleak:automatic-detection="similar-picture"\n')
    with ail_with_module(tmp_path / "ail", cfg) as ail:
        with pytest.raises(SystemExit) as stop:
            ail.module_class()
    assert str(stop.value) == ("QuaidImages: [Quaid] accepted_tags: 'infoleak:automatic-detection="
                               "\"similar-picture\"' not a value of the infoleak taxonomy")


# --- the [Quaid] section, as AIL's ConfigLoader reads it ----------------------------------------

def readme_example() -> str:
    """The ``[Quaid]`` block of ail_connector/README.md, with every ``# key = value`` line uncommented."""
    text = (ROOT / "ail_connector" / "README.md").read_text()
    block = re.search(r"```ini\n(\[Quaid\]\n.*?)```", text, re.S).group(1)
    return re.sub(r"^# (\w+ = )", r"\1", block, flags=re.M)


def test_the_readme_example_works_uncommented(tmp_path, service):
    cfg = readme_example().replace("http://127.0.0.1:8080", service.url)
    assert "sweep_interval = 300" in cfg and "state_dir = $AIL_HOME/QUAID" in cfg
    with ail_with_module(tmp_path / "ail", cfg) as ail:
        settings = ail.module_class().settings
    assert (settings.timeout, settings.policy.max_correlations, settings.policy.top) == (30.0, 10, 10)
    assert settings.sweep_screenshots is True and settings.sweep_backfill is True
    assert settings.policy.correlate_to_review is False and settings.policy.accepted_tags == (SIMILAR,)
    assert settings.state_dir == str(tmp_path / "ail" / "QUAID")  # $AIL_HOME expanded


@pytest.mark.parametrize(("line", "message"), [
    ("timeout = 30 ; seconds", "[Quaid] timeout = '30 ; seconds': inline comment"),
    ("sweep_backfill = true ; first start", "[Quaid] sweep_backfill = 'true ; first start': inline comment"),
    ("timeout = thirty", "[Quaid] timeout = 'thirty': not a number"),
    ("sweep_screenshots = maybe", "[Quaid] sweep_screenshots = 'maybe': not a boolean"),
    ("max_correlations = -1", "[Quaid] max_correlations = '-1': must be at least 0"),
    ("state_dir = $HOME/quaid", "[Quaid] state_dir = '$HOME/quaid': only $AIL_HOME is expanded"),
    ("api_key = 50%off", "[Quaid] api_key: a '%' must be written '%%' in core.cfg"),
    ("sweep_intervall = 5", "[Quaid] sweep_intervall: unknown key"),
    ("url = 127.0.0.1:8080", "[Quaid] url = '127.0.0.1:8080': not an http:// or https:// address"),
    ("timeout = 30\ntimeout = 40", "[Quaid] timeout: given twice in core.cfg"),
    ("", "[Quaid] url is missing"),
])
def test_a_bad_value_stops_the_module_with_one_line_naming_the_key(tmp_path, line, message):
    cfg = f"[Quaid]\n{line}\n" if line.startswith("url") or not line else (
        f"[Quaid]\nurl = http://127.0.0.1:1\n{line}\n")
    with ail_with_module(tmp_path / "ail", cfg) as ail:
        with pytest.raises(SystemExit) as stop:
            ail.module_class()
    assert str(stop.value).startswith(f"QuaidImages: {message}") and "\n" not in str(stop.value)


# --- errors in the idle sweep: logged, backed off, and the module goes on ------------------------

def sweep_errors(caplog) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    return [m for m in messages if "sweep" in m]


def test_a_state_folder_that_is_a_file_does_not_end_the_module(tmp_path, service, caplog):
    state = tmp_path / "state"
    with ail_with_module(tmp_path / "ail", quick_cfg(service.url, tmp_path)) as ail:
        shot = ail.add_screenshot(png(page(801)))
        state.write_text("not a folder")
        module = ail.module_class()
        module.run_rounds(3)  # FileExistsError making the state folder: AIL's process would end here
        assert len(sweep_errors(caplog)) == 1 and "FileExistsError" in sweep_errors(caplog)[0]
        assert not module.can_process_next_message() and not stored(service, shot)
        state.unlink()
        module.down_until = 0  # the backoff is over
        module.run_rounds(1)
        assert stored(service, shot)


def test_an_unreadable_state_file_does_not_end_the_module(tmp_path, service, caplog):
    with ail_with_module(tmp_path / "ail", quick_cfg(service.url, tmp_path)) as ail:
        (tmp_path / "state" / "sweep-screenshot.json").mkdir(parents=True)  # cannot be read as a file
        module = ail.module_class()
        module.run_rounds(2)
        assert len(sweep_errors(caplog)) == 1 and "unreadable" in sweep_errors(caplog)[0]


def test_a_kvrocks_outage_during_the_sweep_keeps_the_screenshot(tmp_path, service, caplog):
    with ail_with_module(tmp_path / "ail", quick_cfg(service.url, tmp_path)) as ail:
        shot = ail.add_screenshot(png(page(802)))
        module = ail.module_class()
        ail.kvrocks_down = True
        module.run_rounds(2)
        assert "ConnectionError" in sweep_errors(caplog)[0] and not stored(service, shot)
        ail.kvrocks_down = False
        module.down_until = 0
        module.run_rounds(1)
        assert stored(service, shot)


def test_the_stand_in_ends_the_module_on_an_escape_from_compute_none(tmp_path):
    """AIL's rule the tests above rely on: computeNone is not guarded."""
    with ail_with_module(tmp_path / "ail", "[Quaid]\nurl = http://127.0.0.1:1\n") as ail:
        module = ail.module_class()
        module.computeNone = lambda: 1 / 0
        with pytest.raises(ModuleDied, match="ZeroDivisionError"):
            module.run_rounds(1)
        module.compute = lambda message: 1 / 0  # compute is guarded: logged, message ended
        ail.push("QuaidImages", "image::" + "a" * 64, "")
        module.run_rounds(1)
        assert ail.errors == ["ZeroDivisionError: division by zero"]


def test_the_stand_in_refuses_a_queue_without_a_modules_cfg_section(tmp_path):
    """AIL's AILQueue rule: a module with a queue needs its section in configs/modules.cfg."""
    with ail_with_module(tmp_path / "ail", "[Quaid]\nurl = http://127.0.0.1:1\n", subscribed=False):
        from modules.abstract_module import AbstractModule  # the stand-in, as AIL's

        class Unlisted(AbstractModule):
            def compute(self, message):
                pass

        with pytest.raises(ModuleQueueError, match="No Section defined for this module: Unlisted"):
            Unlisted()
        assert not hasattr(Unlisted(queue=False), "obj")  # queue=False: no queue, no obj, as in AIL


# --- a wrong API key keeps the work ----------------------------------------------------------------

@pytest.fixture(scope="module")
def keyed_service():
    home = Path(tempfile.mkdtemp(prefix="quaid-ail-keyed-"))
    proc = start_service(home, env={"QUAID_WRITE_KEYS": "the-right-key"})
    yield proc
    proc.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_a_wrong_api_key_keeps_queue_messages_and_swept_screenshots(tmp_path, keyed_service, caplog):
    cfg = quick_cfg(keyed_service.url, tmp_path, "api_key = a-wrong-key\nbackoff = 60\n")
    with ail_with_module(tmp_path / "ail", cfg) as ail:
        shot = ail.add_screenshot(png(page(901)))
        image = ail.add_image(png(page(902)))
        module = ail.module_class()
        module.run_rounds(1)  # sweep: 401
        ail.push("QuaidImages", f"image::{image}", "feeder")
        module.down_until = 0
        module.run_rounds(1)  # queue: 401
        module.run_rounds(5)  # paused: no more calls, no more lines
        auth_lines = [r.getMessage() for r in caplog.records if "API key" in r.getMessage()]
        assert len(auth_lines) == 2 and "check api_key in [Quaid]" in auth_lines[0]
        kept = [f"image::{image};feeder"]
        assert ail.sent_back == kept and ail.queues["QuaidImages"] == kept
        # the operator fixes the key and restarts the module: nothing was lost
        ail.write_config("core.cfg", quick_cfg(keyed_service.url, tmp_path, "api_key = the-right-key\n"))
        end_process(module)
        fixed = ail.module_class()
        fixed.run_rounds(3)
        headers = {"Authorization": "Bearer the-right-key"}
        for picture in (shot, image):
            url = f"{keyed_service.url}/api/v1/pictures/{picture}"
            assert requests.get(url, headers=headers, timeout=10).status_code == 200


def test_a_kvrocks_outage_while_handling_a_queue_message_keeps_it(ail):
    image = ail.add_image(png(page(903)))
    module = ail.module_class()
    ail.kvrocks_down = True
    ail.push("QuaidImages", f"image::{image}", "feeder")
    module.run_rounds(1)
    assert ail.sent_back == [f"image::{image};feeder"] and ail.errors == []
    assert not module.can_process_next_message()


# --- quaid-ail-start: the module's window in AIL's screen session ---------------------------------

def fake_screen(folder: Path, sessions: str) -> Path:
    """A ``screen`` that lists ``sessions`` for ``-ls`` and records every other call's arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "screen"
    script.write_text("#!/bin/sh\n"
                      f"if [ \"$1\" = -ls ]; then printf '%s' '{sessions}'; exit 1; fi\n"
                      f"printf '%s\\n' \"$@\" > {folder / 'calls'}\n")
    script.chmod(0o755)
    return folder


def run_launcher(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "AIL_HOME": str(tmp_path / "ail"),
           "AIL_BIN": str(tmp_path / "ail" / "bin"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ail_connector.ail_module.launch"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)


def test_quaid_ail_start_opens_the_module_window_in_ails_session(tmp_path):
    listing = "There is a screen on:\n\t4242.Script_AIL\t(Detached)\n1 Socket in /run/screen/S-ail.\n"
    bin_dir = fake_screen(tmp_path / "bin", listing)
    done = run_launcher(tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    calls = (bin_dir / "calls").read_text().splitlines()
    assert calls[:7] == ["-S", "Script_AIL", "-X", "screen", "-t", "QuaidImages", "bash"]
    assert calls[7:] == ["-c", f"cd {tmp_path / 'ail' / 'bin' / 'modules'}; {sys.executable} "
                               "-m ail_connector.ail_module.QuaidImages; read x"]


def test_quaid_ail_start_without_a_running_ail_says_so(tmp_path):
    bin_dir = fake_screen(tmp_path / "bin", "No Sockets found in /run/screen/S-ail.\n")
    done = run_launcher(tmp_path, bin_dir)
    assert done.returncode == 1 and not (bin_dir / "calls").exists()
    assert done.stderr.strip() == ("quaid-ail-start: AIL's modules are not running (no screen session "
                                   "Script_AIL): start AIL with $AIL_BIN/LAUNCH.sh -l, then run this again")
