"""``quaid_client.follow``: the events after a saved position; a position saved once its event is handled."""

from __future__ import annotations

import pytest

from quaid_client.follow import PositionFile, follow


class Pages:
    """Answers ``events(after, limit)`` from a fixed list, as ``GET /api/v1/events`` does."""

    def __init__(self, positions: list[str], missed_after: str | None = None) -> None:
        self.positions = positions
        self.missed_after = missed_after

    def events(self, after: str, limit: int) -> dict:
        def order(position: str) -> tuple[int, ...]:
            return tuple(map(int, position.split("-")))

        found = [{"event": p, "id": p} for p in self.positions if order(p) > order(after)][:limit]
        return {"events": found, "next": found[-1]["event"] if found else after,
                "missed": after == self.missed_after}


def test_positions_are_saved_after_each_handled_event_and_resumed(tmp_path):
    state = PositionFile(tmp_path / "state" / "position")
    assert state.load() == "0-0"
    client = Pages(["5-0", "6-0", "6-1", "9-0"])
    handled = []
    for event in follow(client, state.load(), save=state.save, page=2):
        handled.append(event["event"])
        if event["event"] == "6-1":
            break  # the process stops while handling it: handled again next time
    assert handled == ["5-0", "6-0", "6-1"] and state.load() == "6-0"
    again = [e["event"] for e in follow(client, state.load(), save=state.save)]
    assert again == ["6-1", "9-0"] and state.load() == "9-0"


def test_a_reader_hears_when_events_were_dropped(tmp_path):
    missed = []
    list(follow(Pages(["7-0"], missed_after="0-0"), "0-0", on_missed=missed.append))
    assert missed == ["0-0"]


def test_a_damaged_position_file_is_refused(tmp_path):
    path = tmp_path / "position"
    path.write_text("tomorrow")
    with pytest.raises(ValueError, match="does not hold an event position"):
        PositionFile(path).load()
