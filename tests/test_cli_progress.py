"""Progress on a terminal is one bar with rate and time left; elsewhere a few plain lines;
messages and log records never run into the bar. And run summaries say n/a for what a
protocol does not have."""

from __future__ import annotations

import io
import logging

from cli.progress import Progress
from cli.runs.text import update_times


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_bar_with_rate_and_eta_and_messages_on_their_own_lines(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    handler = logging.StreamHandler(screen)  # as a component's log to the terminal
    monkeypatch.setattr(logging.root, "handlers", [handler])
    component = logging.getLogger("a-component")
    monkeypatch.setattr(component, "handlers", [])  # Mininet's logger class adds its own
    with Progress(50, "snapshots", screen) as progress:
        for done in range(0, 51, 10):
            progress.update(done, f"{done // 2} stored")
            if done == 20:
                progress.message("tau_min 5000 us, given")
                component.warning("an external chain of 6330 us")
    text = screen.getvalue()
    assert "50/50" in text and "snapshots/s" in text and "25 stored" in text
    lines = text.replace("\r", "\n").split("\n")
    assert "tau_min 5000 us, given" in lines, "the message is a line of its own"
    assert any(line.endswith("an external chain of 6330 us") for line in lines)
    assert all("stored" not in line for line in lines if "6330" in line or "tau_min" in line), text


def test_off_a_terminal_a_plain_line_each_tenth_of_the_way():
    log = io.StringIO()
    with Progress(200, "snapshots", log) as progress:
        for done in range(201):
            progress.update(done, "x")
        progress.message("done")
    lines = log.getvalue().splitlines()
    assert lines[0] == "snapshots: 0/200, x" and lines[-2] == "snapshots: 200/200, x"
    assert len(lines) == 12 and lines[-1] == "done"
    assert "\r" not in log.getvalue()


def test_update_times_are_not_applicable_without_gateways():
    def us(value):
        return "-" if value is None else f"{value:.0f} us"

    summary = {"protocol": "lai-yang", "t1_t0_p50_us": 0.0, "t1_t0_p99_us": 0.0}
    assert update_times(summary, us) == "t1 - t0: n/a (lai-yang has no gateways)"
    beaver = summary | {"protocol": "beaver", "t1_t0_p50_us": 7.0, "t1_t0_p99_us": 40.0}
    assert update_times(beaver, us) == "t1 - t0: p50 7 us, p99 40 us"
