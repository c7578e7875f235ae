"""Issue 27 in AppTest: a server with a class code and a teacher code, table-driven.

No page shows anything but the code field before a right code (no menu, no model list, no start button); a wrong
code is refused and each answer comes later; the class code and a nickname open the app, without the Teacher page;
the teacher code opens the Teacher page; a student is offered only their own runs to rename or delete; path tricks
in ``?model=`` and in a new run name are refused with a message, never an exception; the model list groups bundled,
mine and class; a pinned model starts every new session; a handwriting set is kept under the nickname; a full runs
folder and the runs-per-person limit refuse a new training with a sentence. (Reloads keep the code through a cookie,
which AppTest cannot hold: tests/browser/test_access_browser.py.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import APP_PATH, session_of, write_tiny_run

pytestmark = pytest.mark.integration  # AppTest of the whole app, as a class uses it: not the fast tier

CLASS_CODE, TEACHER_CODE = "blue-fox", "owl"
PAGES = [
    "pages/home.py",
    "pages/train.py",
    "pages/activations.py",
    "pages/experiments.py",
    "pages/oip.py",
    "pages/precursor.py",
    "pages/clustering.py",
    "pages/deep_dream.py",
    "pages/compare.py",
    "pages/teacher.py",
]


@pytest.fixture(autouse=True)
def _quick_refusals(monkeypatch):
    monkeypatch.setenv("MNIST_EXPLORER_CODE_DELAY_S", "0.2")
    _forget_nicknames()


def _forget_nicknames() -> None:
    """As if the browsers of earlier sessions had been gone for minutes (a nickname in use cannot be claimed)."""
    from pages.ui.access import people

    people.clear()


def _app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=180)
    at.secrets["class_code"] = CLASS_CODE
    at.secrets["teacher_code"] = TEACHER_CODE
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at


def _enter(at: AppTest, code: str) -> AppTest:
    at.text_input(key="access_code").input(code)
    at.button(key="access_enter").click()
    return at.run()


def signed_in(code: str, nickname: str, query: dict | None = None) -> AppTest:
    at = _app(query).run()
    _enter(at, code)
    at.text_input(key="access_nickname").input(nickname)
    at.button(key="access_nickname_go").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"You are **{nickname}**" in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    return at


def _only_the_door(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["MNIST CNN Explorer"]
    assert [w.label for w in at.text_input] in (["Access code"], ["Nickname"])
    assert [b.label for b in at.button] in (["Enter"], ["Continue"])
    assert not at.sidebar.selectbox and not at.selectbox and not at.get("page_link") and not at.get("plotly_chart")


def _owned_run(runs: Path, name: str, owner: str | None, accuracy: float = 0.5) -> Path:
    path = write_tiny_run(runs / name)
    meta = json.loads((path / "run.json").read_text())
    meta.update({"test_accuracy": accuracy, **({"owner": owner} if owner else {})})
    (path / "run.json").write_text(json.dumps(meta))
    return path


# --------------------------------------------------------------------------- the door
@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_anything_before_a_code(runs_dir, page):
    at = _app().run()
    _only_the_door(at)
    if page == "pages/teacher.py":  # not even registered before the teacher code
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
        return
    at.switch_page(page).run()
    _only_the_door(at)


def test_no_page_shows_anything_before_a_nickname(runs_dir):
    at = _enter(_app().run(), CLASS_CODE)
    _only_the_door(at)
    assert [w.label for w in at.text_input] == ["Nickname"]
    for page in ("pages/train.py", "pages/compare.py"):
        at.switch_page(page).run()
        _only_the_door(at)


def test_a_wrong_code_is_refused_and_each_answer_is_slower(runs_dir):
    at = _app().run()
    took = []
    for wrong in ("Blue-Fox", "blue-fox ' or 1=1", ""):
        started = time.perf_counter()
        _enter(at, wrong)
        took.append(time.perf_counter() - started)
        assert any("That code is not right" in e.value for e in at.error), [e.value for e in at.error]
        _only_the_door(at)
    assert took[0] >= 0.2 and took[1] >= 0.4 and took[2] >= 0.8, took
    _enter(at, CLASS_CODE)  # a right code after wrong ones still opens
    assert [w.label for w in at.text_input] == ["Nickname"]


@pytest.mark.parametrize(
    "typed, words", [("../x", "cannot be a nickname"), ("", "Type a nickname"), ("a b", "cannot be a nickname")]
)
def test_a_bad_nickname_is_refused_with_what_a_nickname_is(runs_dir, typed, words):
    at = _enter(_app().run(), CLASS_CODE)
    at.text_input(key="access_nickname").input(typed)
    at.button(key="access_nickname_go").click()
    at.run()
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    _only_the_door(at)


def test_a_nickname_in_use_in_another_browser_cannot_be_claimed(runs_dir):
    signed_in(CLASS_CODE, "ada")
    at = _enter(_app().run(), CLASS_CODE)
    at.text_input(key="access_nickname").input("Ada")
    at.button(key="access_nickname_go").click()
    at.run()
    assert any("in use in another browser" in e.value for e in at.error), [e.value for e in at.error]
    _only_the_door(at)


def _submit_without_the_door():
    import streamlit as st

    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig
    from pages.ui import jobs
    from pages.ui.state import session

    handle = jobs.submit_job("oip_job", JobSpec("oip", OipConfig(layer="conv1")))
    st.write(f"handle: {handle}; refused: {session().job('oip_job').refused}")


def test_no_job_starts_without_a_code_even_when_a_script_asks_for_one(runs_dir):
    at = AppTest.from_function(_submit_without_the_door, default_timeout=120)
    at.secrets["class_code"] = CLASS_CODE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "handle: None; refused: Enter the access code first" in at.markdown[0].value, at.markdown[0].value


@pytest.mark.parametrize("code, teacher", [(CLASS_CODE, False), (TEACHER_CODE, True)])
def test_the_class_code_opens_the_app_and_the_teacher_code_the_teacher_page(runs_dir, code, teacher):
    at = signed_in(code, "miss-t" if teacher else "ada")
    assert at.title[0].value == "MNIST CNN Explorer"
    assert at.sidebar.selectbox(key="active_model").value.endswith("default_model")
    links = [link.proto.label for link in at.sidebar.get("page_link")]
    assert ("Teacher" in links) is teacher and "Train" in links
    if not teacher:  # the page is not even registered for this session (the browser test tries its address)
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("pages/teacher.py")
        return
    at.switch_page("pages/teacher.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Teacher"]
    assert {m.label for m in at.metric} >= {"Job slots busy", "Waiting in line", "Drawing step p95 (5 min)"}
    assert any("The runs folder holds" in p.proto.text for p in at.get("progress"))


# --------------------------------------------------------------------------- mine and the class's
def test_the_model_list_groups_bundled_mine_and_class_and_a_student_changes_only_their_own(runs_dir):
    _owned_run(runs_dir, "adas", "ada", 0.91)
    _owned_run(runs_dir, "bos", "bo", 0.92)
    _owned_run(runs_dir, "cli-run", None, 0.93)
    at = signed_in(CLASS_CODE, "bo")
    picker = at.sidebar.selectbox(key="active_model")
    labels = [picker.format_func(o) if picker.format_func else o for o in picker.options]
    assert labels[:2] == ["bundled: article II (read-only)", "bundled: OIP series (read-only)"], labels
    assert labels[2] == "mine: bos · 92.00 %", labels
    assert sorted(labels[3:]) == ["class: adas · 91.00 % · by ada", "class: cli-run · 93.00 %"], labels
    mine = at.selectbox(key="home_run")
    assert [Path(o).name for o in mine.options] == ["bos"]  # only bo's own run can be renamed or deleted
    # the teacher sees and may delete every run
    teacher = signed_in(TEACHER_CODE, "miss-t")
    teacher.switch_page("pages/teacher.py").run()
    assert [Path(o).name for o in teacher.selectbox(key="teacher_run").options] == sorted(
        ["adas", "bos", "cli-run"], key=lambda n: -(runs_dir / n).stat().st_mtime
    )


@pytest.mark.parametrize(
    "new_name, words",
    [
        ("../escaped", "is not a run name"),
        ("/etc/passwd", "is not a run name"),
        ("a/b", "is not a run name"),
        ("adas", "already exists"),
        ("..", "is not a run name"),
        ("bos-best", None),
    ],
)
def test_renaming_my_run_refuses_path_tricks_and_taken_names(runs_dir, new_name, words):
    _owned_run(runs_dir, "adas", "ada")
    _owned_run(runs_dir, "bos", "bo")
    at = signed_in(CLASS_CODE, "bo")
    at.text_input(key="home_rename_to").input(new_name)
    at.button(key="home_rename").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    names = sorted(p.name for p in runs_dir.iterdir() if not p.name.startswith("."))
    if words is None:
        assert names == ["adas", "bos-best"]
        assert any("Renamed" in s.value for s in at.success)
    else:
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
        assert names == ["adas", "bos"]


def test_a_student_deletes_their_own_run(runs_dir):
    _owned_run(runs_dir, "bos", "bo")
    at = signed_in(CLASS_CODE, "bo")
    assert at.button(key="home_delete").disabled  # until "Yes, delete this run" is ticked
    at.checkbox(key="home_delete_sure").check().run()
    at.button(key="home_delete").click().run()
    assert not at.exception and any("Deleted 'bos'" in s.value for s in at.success)
    assert not list((runs_dir).glob("bos*"))


@pytest.mark.parametrize(
    "trick", ["../../etc", "/etc/passwd", "..", ".", "%2e%2e%2f", "adas/../../x", "link-out", ".people", "a\x00b"]
)
def test_path_tricks_in_the_model_parameter_are_refused_with_a_message(runs_dir, tmp_path, trick):
    _owned_run(runs_dir, "adas", "ada")
    outside = write_tiny_run(tmp_path / "outside")
    (runs_dir / "link-out").symlink_to(outside, target_is_directory=True)
    (runs_dir / ".people").mkdir()
    at = signed_in(CLASS_CODE, "ada", {"model": trick})
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="active_model").value.endswith("default_model")
    assert any("No model named" in w.value for w in at.sidebar.warning), [w.value for w in at.sidebar.warning]


def test_a_pinned_model_starts_every_new_session_and_a_link_still_wins(runs_dir):
    from core.serving.classroom import pin_model

    _owned_run(runs_dir, "adas", "ada")
    _owned_run(runs_dir, "pinned-one", "miss-t")
    pin_model(runs_dir, "pinned-one")
    assert signed_in(CLASS_CODE, "bo").sidebar.selectbox(key="active_model").value == str(runs_dir / "pinned-one")
    at = signed_in(CLASS_CODE, "cy", {"model": "adas"})
    assert at.sidebar.selectbox(key="active_model").value == str(runs_dir / "adas")


def test_a_handwriting_set_is_kept_under_the_nickname(runs_dir):
    from core.experiments.personal_set import PersonalSet

    at = signed_in(CLASS_CODE, "ada")
    digits = PersonalSet().add(np.full((28, 28), 180, np.uint8), 4)
    session_of(at).experiments.personal_set = digits  # as the Experiments page replaces it
    at.run()
    assert (runs_dir / ".people" / "ada" / "handwriting.npz").is_file()
    _forget_nicknames()
    again = signed_in(CLASS_CODE, "ada")  # a new session (a reload, or after a restart) with the same nickname
    kept = session_of(again).experiments.personal_set
    assert kept is not None and kept.labels.tolist() == [4] and np.array_equal(kept.images, digits.images)
    other = signed_in(CLASS_CODE, "bo")
    assert session_of(other).experiments.personal_set is None


# --------------------------------------------------------------------------- limits
@pytest.mark.integration  # the Train page starts a training only with the MNIST file
@pytest.mark.parametrize(
    "env, words",
    [
        ({"MNIST_EXPLORER_RUNS_CAP_MB": "0.01"}, "The runs folder is full"),
        ({"MNIST_EXPLORER_RUNS_PER_PERSON": "1"}, "a person keeps at most 1"),
    ],
)
def test_a_new_training_past_a_limit_is_refused_with_a_sentence(runs_dir, monkeypatch, env, words):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _owned_run(runs_dir, "bos", "bo")
    before = sorted(p.name for p in runs_dir.iterdir())
    at = signed_in(CLASS_CODE, "bo")
    at.switch_page("pages/train.py").run()
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(words in w.value for w in at.warning), [w.value for w in at.warning]
    assert session_of(at).jobs["train_job"].handle is None
    assert sorted(p.name for p in runs_dir.iterdir()) == before


# --------------------------------------------------------------------------- owners and the teacher's controls
def _submit_as_ada(layer="conv3", epochs=20_000, nickname="ada"):
    import streamlit as st

    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig
    from pages.ui import jobs
    from pages.ui.state import session

    session().access.role, session().access.nickname = "class", nickname  # as the door leaves a signed-in session
    # long enough (about 3 minutes) to be running still when another session stops it; the tests stop it
    handle = jobs.submit_job("oip_job", JobSpec("oip", OipConfig(layer=layer, epochs=epochs)))
    st.write(f"owner: {handle.spec.owner}; name: {handle.spec.owner_name}; id: {handle.id}")


def test_the_teacher_sees_every_sessions_job_and_stops_it_and_pins_a_model(runs_dir):
    from pages.ui.resources import job_system

    _owned_run(runs_dir, "adas", "ada")
    student = AppTest.from_function(_submit_as_ada, default_timeout=120)
    student.secrets["class_code"] = CLASS_CODE
    student.run()
    assert not student.exception, [e.value for e in student.exception]
    line = student.markdown[0].value
    assert line.startswith("owner: ada; name: ada; id: oip-"), line  # the nickname owns the job and its run
    job_id = line.split("id: ")[1]
    handle = next(h for h in job_system().active() if h.id == job_id)
    at = signed_in(TEACHER_CODE, "miss-t")
    at.switch_page("pages/teacher.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(m.value for m in at.markdown)
    assert "ada" in shown and "OIP" in shown, shown
    at.button(key=f"teacher_stop_{job_id}").click().run()
    assert handle.wait(120) and handle.state == "stopped", handle.state
    at.selectbox(key="teacher_run").set_value(str(runs_dir / "adas")).run()
    at.button(key="teacher_pin").click().run()
    assert not at.exception
    assert json.loads((runs_dir / ".class.json").read_text()) == {"default_model": "adas"}
    assert any("New sessions start with 'adas'" in s.value for s in at.success)


def test_after_a_reload_the_page_takes_back_its_running_job_with_its_stop(runs_dir):
    """The OIP page's panel of a job started before a reload (a new session with the same nickname) shows the job
    again, and its Stop stops it; another person's page takes nothing."""
    from pages.ui.resources import job_system

    student = AppTest.from_function(_submit_as_ada, default_timeout=120)
    student.secrets["class_code"] = CLASS_CODE
    student.run()
    job_id = student.markdown[0].value.split("id: ")[1]
    handle = next(h for h in job_system().active() if h.id == job_id)
    assert handle.spec.origin == "oip_job"
    _forget_nicknames()
    other = signed_in(CLASS_CODE, "bo")
    other.switch_page("pages/oip.py").run()
    assert session_of(other).jobs.get("oip_job") is None or session_of(other).jobs["oip_job"].handle is None
    again = signed_in(CLASS_CODE, "ada")  # the reload: a new session, the same person
    again.switch_page("pages/oip.py").run()
    assert not again.exception, [e.value for e in again.exception]
    assert session_of(again).jobs["oip_job"].handle is handle
    stop = [b for b in again.button if b.key == "oip_stop"]
    assert stop, [b.key for b in again.button]
    stop[0].click().run()
    assert handle.wait(120) and handle.state == "stopped", handle.state


def test_a_job_that_ended_during_the_reload_is_handed_to_the_page_that_comes_back_once(runs_dir):
    """An OIP job that ends while its page is away (a reload: the old session never shows its result) is taken by
    the person's next session of that page, with its maps; a later session is not handed it again."""
    from pages.ui.resources import job_system

    # "cy": the other tests' jobs of "ada" (stopped, never collected) are kept for her pages too
    student = AppTest.from_function(_submit_as_ada, args=("conv1", 30, "cy"), default_timeout=120)
    student.secrets["class_code"] = CLASS_CODE
    student.run()
    job_id = student.markdown[0].value.split("id: ")[1]
    handle = next(h for h in job_system().active() + job_system().uncollected("cy") if h.id == job_id)
    assert handle.wait(120) and handle.state == "finished", (handle.state, handle.message)
    assert handle in job_system().uncollected("cy")
    _forget_nicknames()
    again = signed_in(CLASS_CODE, "cy")
    again.switch_page("pages/oip.py").run()
    assert not again.exception, [e.value for e in again.exception]
    assert session_of(again).jobs["oip_job"].handle is handle
    shown = session_of(again).oip.latest
    assert any(result is handle.result for result in shown.values()), list(shown)
    assert handle not in job_system().uncollected("cy")
    _forget_nicknames()
    later = signed_in(CLASS_CODE, "cy")
    later.switch_page("pages/oip.py").run()
    assert session_of(later).jobs.get("oip_job") is None or session_of(later).jobs["oip_job"].handle is None


def _group_as(nickname: str, submit: bool):
    """A session of ``nickname`` that submits two OIP jobs as one group (``submit``), or shows the group's panel, as
    the Train page's seeds and the Compare page's OIPs do, noting in the page which jobs its ``on_end`` was given."""
    import streamlit as st

    from core.jobs.system import JobSpec
    from core.oip.search import OipConfig
    from pages.ui import jobs
    from pages.ui.state import session

    session().access.role, session().access.nickname = "class", nickname
    if submit:
        specs = [JobSpec("oip", OipConfig(layer="conv1", epochs=30, seed=seed)) for seed in (1, 2)]
        st.write("ids: " + " ".join(h.id for h in jobs.submit_group("group_test_job", specs)))
        return
    ended = st.session_state.setdefault("ended_groups", [])
    jobs.group_panel("group_test_job", on_end=lambda handles: ended.append([h.id for h in handles]))
    st.write(f"ended groups: {ended}")


def test_a_group_that_ended_during_the_reload_is_handed_back_whole_once():
    """Both jobs of a group that ended while no page was open come back together to the person's next page, whose
    ``on_end`` gets them once; a later page gets nothing."""
    from pages.ui.resources import job_system

    first = AppTest.from_function(_group_as, args=("dee", True), default_timeout=120).run()
    assert not first.exception, [e.value for e in first.exception]
    ids = first.markdown[0].value.removeprefix("ids: ").split()
    handles = [h for h in job_system().active("dee") + job_system().uncollected("dee") if h.id in ids]
    assert len(handles) == 2 and all(h.wait(120) and h.state == "finished" for h in handles)
    again = AppTest.from_function(_group_as, args=("dee", False), default_timeout=120).run()
    assert not again.exception, [e.value for e in again.exception]
    assert again.markdown[-1].value == f"ended groups: {[ids]}"  # both, in the order asked for, once
    assert [h.id for h in session_of(again).jobs["group_test_job"].handle] == ids
    assert job_system().uncollected("dee") == []
    later = AppTest.from_function(_group_as, args=("dee", False), default_timeout=120).run()
    assert later.markdown[-1].value == "ended groups: []"


def test_open_and_coded_servers_say_so_once_in_the_log_and_never_the_code(capsys):
    from core.serving.access import Codes
    from pages.ui import access

    access._announced.clear()
    for _ in range(3):
        access._announce(Codes())
        access._announce(Codes(CLASS_CODE, TEACHER_CODE))
    log = capsys.readouterr().err
    assert log.count("No access code is set") == 1 and log.count("Access codes are required") == 1, log
    assert CLASS_CODE not in log and TEACHER_CODE not in log


def test_sign_out_shows_the_door_again_and_forgets_the_persons_set(runs_dir):
    from core.experiments.personal_set import PersonalSet

    at = signed_in(CLASS_CODE, "ada")
    session_of(at).experiments.personal_set = PersonalSet().add(np.zeros((28, 28), np.uint8), 1)
    at.run()
    at.sidebar.button(key="access_sign_out").click().run()
    _only_the_door(at)
    assert session_of(at).experiments.personal_set is None
    assert any("max-age=0" in h.proto.body for h in at.get("html"))  # the browser forgets its cookie
