"""Real browser: augmented samples on the Train page before any training, and the augmentation lesson run small
(two trainings on 1,000 digits, three models measured) with its figures side by side."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, set_number, wait_for_app

pytestmark = pytest.mark.browser


def _expander(page, title: str):
    box = page.locator("[data-testid='stExpander']").filter(has_text=title).first
    box.get_by_text(title).first.click()
    wait_for_app(page)
    return box


def test_augmented_samples_then_the_lesson_side_by_side(page, app_url):
    page.goto(f"{app_url}/train")
    page.get_by_text("96,844 parameters").first.wait_for()
    wait_for_app(page)
    augment = _expander(page, "Augmentation: random changes to every training batch")
    augment.get_by_text("Off: the digits are trained on as they are").wait_for()
    set_number(page, "Shift (px)", 2, within=augment)
    set_number(page, "Rotation (°)", 10, within=augment)
    augment.get_by_text("shift=2,rotate=10").first.wait_for(timeout=30_000)
    assert augment.locator("[data-testid='stPlotlyChart']").count() == 1  # the samples, before any training
    screenshot(page, "augment_samples")

    lesson = _expander(page, "Lesson: data augmentation")
    set_number(page, "Training digits of each", 1000, within=lesson)
    set_number(page, "Test digits measured", 500, within=lesson)
    set_number(page, "Digits for the invariances", 20, within=lesson)
    lesson.get_by_role("button", name="Run the lesson", exact=True).click()
    lesson.get_by_role("button", name="The lesson is running…", exact=True).wait_for(timeout=30_000)
    lesson.get_by_text("test accuracy trained without augmentation").wait_for(timeout=300_000)
    wait_for_app(page)
    assert lesson.get_by_text("**shift=2,rotate=10**").count() == 0  # markdown rendered, not shown raw
    assert lesson.get_by_text("shift=2,rotate=10").first.is_visible()
    assert lesson.locator("[data-testid='stPlotlyChart']").count() == 3  # accuracies, ranges, invariance curves
    assert lesson.get_by_role("button", name="Run the lesson", exact=True).is_enabled()
    screenshot(page, "augment_lesson")
