"""Browser tests: pytest-playwright driving Debian's `chromium` (no Playwright browser download) against
pytest-django's live server, as a member of staff would use the back office.

Without a chromium every test here is skipped, and the end of the run says so with the command that installs
it. Screenshots go to test-artifacts/browser/ at the repository root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
INSTALL_CHROMIUM = "sudo apt-get install -y chromium"
NO_CHROMIUM = f"no chromium found (set CHROMIUM to its path, or install Debian's: {INSTALL_CHROMIUM})"


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


def _here(item: pytest.Item) -> bool:
    return HERE in Path(item.path).parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    found = chromium_path()
    for item in items:
        if _here(item):
            item.add_marker(pytest.mark.integration)
            if not found:
                item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if report.nodeid.startswith("tests/browser/") and NO_CHROMIUM in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.write_sep("=", "browser tests skipped", yellow=True)
        tests = "1 browser test was" if len(skipped) == 1 else f"{len(skipped)} browser tests were"
        terminalreporter.write_line(f"{tests} skipped: no chromium. Install it with: {INSTALL_CHROMIUM}")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """The system's chromium, headless: Playwright's own browser download is not used."""
    return {**browser_type_launch_args, "executable_path": chromium_path(), "headless": True}


@pytest.fixture(scope="session")
def playwright(playwright) -> Iterator[object]:
    """Playwright's sync API keeps an event loop running on the main thread from its start (once per session, at
    the first browser test) to the end of the session, and Django refuses its ORM in a thread with a running loop
    (SynchronousOnlyOperation): in the test bodies here, in their database teardown, and in every test that runs
    after them (pytest-django runs transactional tests last, these among them). The tests stay synchronous, so
    the check is lifted for exactly as long as that loop runs; a run without browser tests keeps it."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield playwright
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before
