"""Real browser: open the app, train one short epoch on a small subset, see the curves and the saved run."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, set_number, upload, wait_for_app

pytestmark = pytest.mark.browser


def test_train_one_short_epoch_and_see_the_curves(page, app_url):
    page.goto(f"{app_url}/train")
    page.get_by_text("96,844 parameters").first.wait_for()
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Active model").wait_for()
    set_number(page, "Epochs", 1)
    set_number(page, "Training digits", 2000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("button", name="Training…", exact=True).wait_for(timeout=30_000)  # not clickable meanwhile
    assert page.get_by_role("button", name="Training…", exact=True).is_disabled()
    page.get_by_text("Run saved as").wait_for(timeout=120_000)
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=30_000)
    wait_for_app(page)
    assert page.get_by_text("It is your active model on every page").first.is_visible()
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 2  # live curves and run curves
    assert page.get_by_text("test (epoch)").first.is_visible()
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_by_text("%").first.is_visible()  # the new run is the active model
    # "Show run" shows the new run, which is active: no button offering to activate it
    assert page.get_by_role("button", name="Use this model on all pages").count() == 0
    screenshot(page, "train_after_one_epoch")


def test_sidebar_shows_the_active_model_on_every_page(page, app_url):
    for path in ("activations", "oip", "precursor", "clustering", "deep-dream"):
        page.goto(f"{app_url}/{path}")
        page.locator("[data-testid='stSidebar']").get_by_text("Active model").wait_for(timeout=30_000)
        page.locator("h1").first.wait_for()


# Every text the sidebar shows from the first paint on, recorded in the browser as the page builds it.
RECORD_SIDEBAR = """
window.__sidebarTexts = [];
new MutationObserver(() => {
  const bar = document.querySelector("[data-testid='stSidebar']");
  if (bar) window.__sidebarTexts.push(bar.innerText);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
APP_MENU = [
    "Start",
    "Train",
    "Activations",
    "Experiments",
    "New symbols",
    "Filters / OIP",
    "Precursor",
    "Clustering-MLP",
    "Deep Dream",
    "Compare runs",
]


@pytest.mark.parametrize("path", ["", "activations"])
def test_a_cold_server_shows_only_the_apps_menu_from_the_first_paint(browser, tmp_path, path):
    """Streamlit lists every module of pages/ on a fresh server until st.navigation has run (app, shared, ...), and
    a first request for a deep link ran the page file alone: both must show only the app's own menu."""
    from tests.browser.conftest import start_streamlit, stop_streamlit

    proc, url = start_streamlit(tmp_path / "runs", tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(RECORD_SIDEBAR)
    try:
        page.goto(f"{url}/{path}")
        heading = "Prediction:" if path else "The blog's path, one step per click"
        page.get_by_text(heading).first.wait_for(timeout=120_000)
        links = page.locator("[data-testid='stSidebar'] [data-testid='stPageLink']")
        links.first.wait_for(timeout=30_000)
        assert [text.splitlines()[-1] for text in links.all_inner_texts()] == APP_MENU  # (after each icon's name)
        assert page.locator("[data-testid='stSidebarNav']").count() == 0  # Streamlit's automatic menu
        seen = "\n".join(page.evaluate("window.__sidebarTexts"))
        lines = set(seen.splitlines())
        # how Streamlit names the modules of pages/ in its own list
        for module in ("app", "home", "train", "activations", "deep dream", "compare", "ui"):
            assert module not in lines, f"the sidebar showed the module {module!r}"
        assert not page.get_by_text("Page not found").count()
        wait_for_app(page)
        screenshot(page, f"first_visit_{path or 'start'}")
        links.get_by_text("Filters / OIP", exact=True).click()  # and the menu works from there
        page.get_by_role("heading", name="Filters / OIP").first.wait_for(timeout=60_000)
        screenshot(page, f"cold_server_{path or 'home'}")
    finally:
        context.close()
        stop_streamlit(proc)


def test_import_a_keras_model_and_a_file_that_is_not_one(page, app_url, tmp_path):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(16, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dropout(0.5),
            L.Dense(10, activation="softmax"),
        ]
    )
    good = tmp_path / "my_notebook_cnn.keras"
    model.save(good)
    page.goto(f"{app_url}/train")
    page.get_by_text("96,844 parameters").first.wait_for()
    wait_for_app(page)
    page.get_by_text("Import a model trained elsewhere (.keras or .h5)").click()
    bad = tmp_path / "cifar_cnn.keras"
    keras.Sequential([keras.Input((32, 32, 3)), L.Conv2D(4, 3), L.Flatten(), L.Dense(10, activation="softmax")]).save(
        bad
    )
    upload(page, page.locator("input[type='file'][accept*='keras']"), bad)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("the model's input is 32×32×3", exact=False).wait_for(timeout=60_000)
    upload(page, page.locator("input[type='file'][accept*='keras']"), good)
    wait_for_app(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported as", exact=False).wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_text("Its layers", exact=False).first.wait_for(timeout=30_000)  # the new run's details, shown above
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("imported from my_notebook_cnn.keras", exact=False).wait_for(timeout=30_000)  # the active model
    screenshot(page, "train_imported")
