"""Real browser, issue 27: a server with a class code and a teacher code.

Table-driven: every address shows only the code field before a right code (no page, no menu, no model list); a
wrong code is refused, each answer later than the one before; the class code and a nickname open the app, and a
reload of the same browser is let in again without a code (a signed cookie); the Teacher page is neither listed
nor reachable with the class code, and is with the teacher code; path tricks in ``?model=`` are refused with a
message, never an exception.
"""

from __future__ import annotations

import re
import zlib

import pytest

from tests.browser.conftest import screenshot, start_streamlit, stop_streamlit, wait_for_app

pytestmark = [pytest.mark.browser]

CLASS_CODE, TEACHER_CODE = "blue-fox-42", "owl-at-night-7"
SLOW = 90_000
ANSWERED = re.compile(r"answered after ([\d.]+) s")


def _expect():
    from playwright.sync_api import expect

    return expect


@pytest.fixture(scope="module")
def coded_url(tmp_path_factory):
    proc, url = start_streamlit(
        tmp_path_factory.mktemp("access-runs"),
        tmp_path_factory.mktemp("access-log"),
        {
            "MNIST_EXPLORER_CLASS_CODE": CLASS_CODE,
            "MNIST_EXPLORER_TEACHER_CODE": TEACHER_CODE,
            "MNIST_EXPLORER_CODE_DELAY_S": "0.3",
        },
    )
    yield url
    stop_streamlit(proc)


@pytest.fixture()
def fresh(browser):
    """A new browser profile (no cookie) per test."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(SLOW)
    yield page
    context.close()


def _code_field(page):
    return page.get_by_label("Access code", exact=True)


def _nothing_of_the_app(page) -> None:
    expect = _expect()
    expect(_code_field(page)).to_be_visible(timeout=SLOW)
    wait_for_app(page)
    expect(page.locator("[data-testid='stSidebar'] [data-testid='stPageLink']")).to_have_count(0)
    expect(page.get_by_text("Active model")).to_have_count(0)
    for words in ("Prediction", "Train", "Start", "Compute OIPs", "Teacher"):
        expect(page.get_by_role("button", name=words)).to_have_count(0)
    assert "Look inside a small convolutional network" not in page.inner_text("body")


def _enter(page, code: str) -> None:
    _code_field(page).fill(code)
    page.get_by_role("button", name="Enter", exact=True).click()


def _sign_in(page, url: str, code: str, nickname: str, path: str = "") -> None:
    page.goto(f"{url}/{path}")
    _enter(page, code)
    box = page.get_by_label("Nickname", exact=True)
    box.wait_for(timeout=SLOW)
    box.fill(nickname)
    page.get_by_role("button", name="Continue", exact=True).click()
    _expect()(page.get_by_text(f"You are {nickname}")).to_be_visible(timeout=SLOW)
    wait_for_app(page)


@pytest.mark.parametrize("path", ["", "activations", "train?model=default", "teacher", "deep-dream?layer=conv3&map=3"])
def test_no_address_shows_anything_of_the_app_before_a_code(coded_url, fresh, path):
    fresh.goto(f"{coded_url}/{path}")
    _nothing_of_the_app(fresh)


def test_a_wrong_code_is_refused_and_each_answer_is_slower(coded_url, fresh):
    fresh.goto(coded_url)
    _code_field(fresh).wait_for()
    waits = []
    for attempt, wrong in enumerate((CLASS_CODE.upper(), CLASS_CODE + " x", "' OR 1=1 --")):
        _enter(fresh, wrong)
        refusal = fresh.get_by_text(re.compile(r"That code is not right")).nth(0)
        _expect()(refusal).to_contain_text(f"after {0.3 * 2**attempt:.1f} s", timeout=SLOW)
        waits.append(float(ANSWERED.search(refusal.inner_text()).group(1)))
    assert waits == sorted(waits) and waits[-1] > waits[0], waits
    _nothing_of_the_app(fresh)


def test_the_class_code_opens_the_app_and_survives_a_reload(coded_url, fresh):
    expect = _expect()
    _sign_in(fresh, coded_url, CLASS_CODE, "ada", "activations")
    expect(fresh.get_by_role("heading", name="Activations", level=1)).to_be_visible(timeout=SLOW)
    expect(fresh.get_by_text("Active model")).to_be_visible()
    fresh.reload()
    wait_for_app(fresh)
    expect(fresh.get_by_role("heading", name="Activations", level=1)).to_be_visible(timeout=SLOW)
    expect(fresh.get_by_text("You are ada")).to_be_visible()
    expect(_code_field(fresh)).to_have_count(0)
    # a new browser profile (no cookie) must give the code again, and lands on the page its address names
    other = fresh.context.browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        page = other.new_page()
        page.set_default_timeout(SLOW)
        page.goto(f"{coded_url}/train?model=default")
        _nothing_of_the_app(page)
        _sign_in(page, coded_url, CLASS_CODE, "ben", "train?model=default")
        expect(page.get_by_role("heading", name="Train", level=1)).to_be_visible(timeout=SLOW)
    finally:
        other.close()


@pytest.mark.parametrize("code, teacher", [(CLASS_CODE, False), (TEACHER_CODE, True)])
def test_the_teacher_page_is_there_for_the_teacher_code_only(coded_url, fresh, code, teacher):
    expect = _expect()
    _sign_in(fresh, coded_url, code, "miss-t" if teacher else "bo")
    link = fresh.locator("[data-testid='stSidebar'] [data-testid='stPageLink']").get_by_text("Teacher", exact=True)
    expect(link).to_have_count(1 if teacher else 0)
    fresh.goto(f"{coded_url}/teacher")
    wait_for_app(fresh)
    heading = fresh.get_by_role("heading", name="Teacher", exact=True, level=1)
    if teacher:
        expect(heading).to_be_visible(timeout=SLOW)
        expect(fresh.get_by_text("Job slots busy")).to_be_visible()
        expect(fresh.get_by_text(re.compile(r"The runs folder holds"))).to_be_visible()
        screenshot(fresh, "teacher_page")
    else:
        expect(fresh.get_by_text("You are bo")).to_be_visible(timeout=SLOW)
        expect(heading).to_have_count(0)
        expect(fresh.get_by_text("Job slots busy")).to_have_count(0)


@pytest.mark.parametrize("trick", ["../../etc", "/etc/passwd"])  # the whole table: tests/test_access_app.py
def test_path_tricks_in_the_model_parameter_are_refused_with_a_message(coded_url, fresh, trick):
    expect = _expect()
    _sign_in(fresh, coded_url, CLASS_CODE, f"cy{zlib.crc32(trick.encode()) % 10_000}")  # a nickname per case
    fresh.goto(f"{coded_url}/?model={trick}")
    wait_for_app(fresh)
    expect(fresh.get_by_text(re.compile(r"No model named"))).to_be_visible(timeout=SLOW)
    expect(fresh.locator("[data-testid='stException']")).to_have_count(0)
