"""Issue 27, the rules without Streamlit (fast): access codes and signed tokens (core.serving.access), nicknames,
who may change which run, the class's pinned model, limits (core.serving.classroom), run names and paths that must
stay inside the runs folder, the runs folder's cap (core.runs), the submission rate (core.jobs.system) and the
handwriting set kept on the server (core.experiments.personal_set)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from core.jobs.system import JobRefused, JobSpec, JobSystem
from core.runs import (
    RunPayload,
    RunsFolderFull,
    delete_run,
    folder_bytes,
    list_runs,
    read_meta,
    rename_run,
    run_in,
    write_run,
)
from core.serving import access as rules
from core.serving import classroom
from tests.conftest import write_tiny_run
from tests.test_jobs import HandBackend

CODES = rules.Codes("blue-fox", "owl")


# --------------------------------------------------------------------------- codes
@pytest.mark.parametrize(
    "env, secrets, expected",
    [
        ({}, {}, rules.Codes("", "")),
        ({rules.CLASS_CODE_ENV: " a "}, {}, rules.Codes("a", "")),
        ({}, {"class_code": "s", "teacher_code": "t"}, rules.Codes("s", "t")),
        (
            {rules.CLASS_CODE_ENV: "e", rules.TEACHER_CODE_ENV: "  "},
            {"class_code": "s", "teacher_code": "t"},
            rules.Codes("e", "t"),
        ),
    ],
)
def test_codes_come_from_the_environment_then_the_secrets(env, secrets, expected):
    assert rules.codes_from(env, secrets) == expected


def test_the_server_log_line_never_holds_a_code():
    for codes in (CODES, rules.Codes("blue-fox", ""), rules.Codes()):
        line = codes.describe()
        assert "blue-fox" not in line and "owl" not in line
    assert "open" in rules.Codes().describe()


@pytest.mark.parametrize(
    "typed, role",
    [
        ("blue-fox", "class"),
        ("  blue-fox ", "class"),
        ("owl", "teacher"),
        ("Blue-Fox", None),
        ("blue-fo", None),
        ("blue-foxx", None),
        ("", None),
        ("x" * 10_000, None),
        ("' OR 1=1 --", None),
    ],
)
def test_a_typed_code_opens_its_role_or_nothing(typed, role):
    assert rules.role_for(typed, CODES) == role


def test_an_unset_code_is_never_matched_by_an_empty_one():
    assert rules.role_for("", rules.Codes("", "")) is None
    assert rules.role_for(" ", rules.Codes("a", "")) is None


def test_each_wrong_code_waits_longer_up_to_a_limit():
    waits = [rules.delay_after(n, first=1.0) for n in range(0, 8)]
    assert waits[:5] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert waits == sorted(waits) and max(waits) == rules.MAX_DELAY_S


# --------------------------------------------------------------------------- tokens
def test_a_token_carries_its_grant_and_nothing_else_passes():
    grant = rules.Grant("class", "ada", time.time())
    token = rules.sign(grant, CODES)
    assert rules.verify(token, CODES) == rules.Grant("class", "ada", round(grant.issued))
    assert "blue-fox" not in token and "owl" not in token
    payload, mac = token.split(".")
    forged_payload = rules._b64(json.dumps({"r": "teacher", "n": "ada", "t": round(time.time())}).encode())
    cases = {
        "another server (restarted)": rules.verify(token, CODES, secret=b"x" * 32),
        "a changed class code": rules.verify(token, rules.Codes("new-code", "owl")),
        "the class code unset": rules.verify(token, rules.Codes("", "owl")),
        "a forged role": rules.verify(f"{forged_payload}.{mac}", CODES),
        "a changed signature": rules.verify(f"{payload}.{mac[:-2]}AA", CODES),
        "expired": rules.verify(token, CODES, now=time.time() + rules.TOKEN_MAX_AGE_S + 10),
    }
    assert all(v is None for v in cases.values()), cases


@pytest.mark.parametrize("token", [None, "", ".", "a.b.c", "x" * 2000, "!!!.???", "e30.AAAA", "bnVsbA.AAAA"])
def test_malformed_tokens_are_refused_without_an_exception(token):
    assert rules.verify(token, CODES) is None


def test_the_cookie_script_takes_only_token_characters():
    token = rules.sign(rules.Grant("class", "ada", time.time()), CODES)
    assert token in rules.cookie_script(rules.COOKIE_NAME, token)
    with pytest.raises(ValueError):
        rules.cookie_script(rules.COOKIE_NAME, "a';alert(1);'")


# --------------------------------------------------------------------------- nicknames and owners
@pytest.mark.parametrize(
    "typed, kept",
    [("Ada", "ada"), (" bo_2 ", "bo_2"), ("x" * 24, "x" * 24), ("a-b", "a-b")],
)
def test_nicknames_are_kept_in_lower_case(typed, kept):
    assert classroom.check_nickname(typed) == kept


@pytest.mark.parametrize("typed", ["", "   ", "../x", "a/b", ".hidden", "-a", "x" * 25, "é", "a b", "a\x00"])
def test_bad_nicknames_are_refused_saying_what_a_nickname_is(typed):
    with pytest.raises(ValueError, match="nickname"):
        classroom.check_nickname(typed)


@pytest.mark.parametrize(
    "owner, me, role, may, group",
    [
        ("ada", "ada", "class", True, "mine"),
        ("ada", "bo", "class", False, "class"),
        (None, "bo", "class", False, "class"),
        ("ada", "", "class", False, "class"),
        ("ada", "miss-t", "teacher", True, "class"),
        (None, "", "open", True, "mine"),
    ],
)
def test_who_may_change_a_run_and_where_it_is_listed(owner, me, role, may, group):
    assert classroom.may_change(owner, me, role) is may
    assert classroom.group_of(owner, me, role) == group


def _owned_run(runs: Path, name: str, owner: str | None) -> Path:
    path = write_tiny_run(runs / name)
    if owner:
        meta = read_meta(path)
        meta["owner"] = owner
        (path / "run.json").write_text(json.dumps(meta))
    return path


def test_a_student_cannot_delete_or_rename_another_persons_run(tmp_path):
    runs = tmp_path / "runs"
    adas, orphan = _owned_run(runs, "adas", "ada"), _owned_run(runs, "cli-run", None)
    for path in (adas, orphan):
        with pytest.raises(classroom.NotYours, match="only its owner or the teacher"):
            classroom.delete_as(path, runs, "bo", "class")
        with pytest.raises(classroom.NotYours):
            classroom.rename_as(path, "mine-now", runs, "bo", "class")
    assert sorted(p.name for p in list_runs(runs)) == ["adas", "cli-run"]
    renamed = classroom.rename_as(adas, "adas-best", runs, "ada", "class")
    assert renamed.name == "adas-best" and read_meta(renamed)["name"] == "adas-best"
    classroom.delete_as(orphan, runs, "miss-t", "teacher")
    assert [p.name for p in list_runs(runs)] == ["adas-best"]
    assert not [p for p in runs.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "../outside", "/etc/passwd", "a/../../b", ".hidden", "sub/run", "x" * 300, "link-out", "missing"],
)
def test_run_names_resolve_inside_the_runs_folder_only(tmp_path, name):
    runs = tmp_path / "runs"
    write_tiny_run(runs / "real")
    outside = write_tiny_run(tmp_path / "outside")
    (runs / "link-out").symlink_to(outside, target_is_directory=True)
    (runs / "sub").mkdir()
    with pytest.raises(ValueError):
        run_in(runs, name)
    assert run_in(runs, "real") == runs / "real"
    assert [p.name for p in list_runs(runs)] == ["real"]  # the link that leads out is not listed


@pytest.mark.parametrize("new_name", ["../escaped", "/tmp/x", "a/b", "", "..", "real"])
def test_a_rename_that_leaves_the_folder_or_takes_a_name_is_refused(tmp_path, new_name):
    runs = tmp_path / "runs"
    write_tiny_run(runs / "real")
    path = write_tiny_run(runs / "mine")
    with pytest.raises(ValueError):
        rename_run(path, new_name, runs)
    assert sorted(p.name for p in runs.iterdir()) == ["mine", "real"]


def test_bundled_models_and_runs_elsewhere_cannot_be_deleted(tmp_path):
    from core.runs import DEFAULT_MODEL_DIR

    runs = tmp_path / "runs"
    elsewhere = write_tiny_run(tmp_path / "elsewhere")
    for path in (DEFAULT_MODEL_DIR, elsewhere):
        with pytest.raises(ValueError):
            delete_run(path, runs)
    assert DEFAULT_MODEL_DIR.is_dir() and elsewhere.is_dir()


def test_the_teacher_pins_the_class_default_model(tmp_path):
    runs = tmp_path / "runs"
    assert classroom.pinned_model(runs) is None
    classroom.pin_model(runs, "adas")
    assert classroom.pinned_model(runs) == "adas"
    classroom.pin_model(runs, None)
    assert classroom.pinned_model(runs) is None
    (runs / classroom.CLASS_FILE).write_text("{damaged")
    assert classroom.pinned_model(runs) is None


# --------------------------------------------------------------------------- limits
def _payload(size: int = 50_000) -> RunPayload:
    return RunPayload(
        {"model.keras": b"k" * size, "spec.json": b"{}", "scaler.npz": b"s"}, {"preset": "tiny", "seed": 1}
    )


def test_a_run_records_its_owner_sanitised(tmp_path):
    path = write_run(_payload(), tmp_path / "runs", "r", owner="Ada/../x", cap_bytes=0)
    assert read_meta(path)["owner"] == "ada-x"


def test_a_full_runs_folder_refuses_the_next_run_and_writes_nothing(tmp_path):
    runs = tmp_path / "runs"
    first = write_run(_payload(), runs, "first", cap_bytes=80_000)
    before = sorted(p.name for p in runs.iterdir())
    size = folder_bytes(runs)
    with pytest.raises(RunsFolderFull, match="runs folder is full"):
        write_run(_payload(), runs, "second", cap_bytes=80_000)
    assert sorted(p.name for p in runs.iterdir()) == before == ["first"]  # no temporary folder, no half run
    assert folder_bytes(runs) == size and read_meta(first)["name"] == "first"


def test_the_cap_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_EXPLORER_RUNS_CAP_MB", "0.05")
    with pytest.raises(RunsFolderFull):
        write_run(_payload(60_000), tmp_path / "runs")
    monkeypatch.setenv("MNIST_EXPLORER_RUNS_CAP_MB", "0")
    assert write_run(_payload(60_000), tmp_path / "runs").is_dir()


def test_a_training_that_ends_on_a_full_folder_fails_with_the_reason_and_keeps_nothing(monkeypatch, tmp_path):
    from core.jobs.kinds import TrainJobConfig, TrainOutcome, finish

    runs = tmp_path / "runs"
    write_run(_payload(), runs, "first", cap_bytes=0)
    monkeypatch.setenv("MNIST_EXPLORER_RUNS_CAP_MB", "0.1")
    spec = JobSpec("train", TrainJobConfig(None, None, runs_dir=str(runs)), owner="ada", owner_name="ada")
    with pytest.raises(RunsFolderFull):
        finish(spec, TrainOutcome(_payload(), "finished", "", 0.5, 1.0, "CPU"))
    assert [p.name for p in runs.iterdir()] == ["first"]


@pytest.mark.parametrize(
    "cap, per_person, kept, count, words",
    [
        (1, 20, 0, 1, "The runs folder is full"),
        (0, 2, 2, 1, "at most 2"),
        (0, 3, 1, 3, "at most 3"),
        (0, 3, 1, 2, None),
        (0, 0, 500, 1, None),
        (10**9, 20, 19, 1, None),
    ],
)
def test_new_runs_are_refused_past_the_limits_with_a_sentence(tmp_path, cap, per_person, kept, count, words):
    runs = tmp_path / "runs"
    write_run(_payload(), runs, "first", cap_bytes=0)
    why = classroom.refuse_new_runs(runs, count, kept, classroom.Limits(per_person, cap, 10), "You")
    assert (why is None) if words is None else (words in why), why


def test_limits_read_the_environment_with_defaults():
    assert classroom.Limits.from_env({}) == classroom.Limits(20, 2048 * 10**6, 12)
    env = {
        "MNIST_EXPLORER_RUNS_PER_PERSON": "3",
        "MNIST_EXPLORER_RUNS_CAP_MB": "5",
        "MNIST_EXPLORER_JOBS_PER_MINUTE": "x",
    }
    assert classroom.Limits.from_env(env) == classroom.Limits(3, 5 * 10**6, 12)


def test_the_run_kinds_are_the_kinds_that_keep_a_run():
    from core.jobs.kinds import KINDS

    assert classroom.RUN_KINDS == {name for name, k in KINDS.items() if k.finish is not None}


def test_a_scripted_burst_of_200_submissions_is_refused_beyond_the_rate():
    system = JobSystem(HandBackend(), 1, check=lambda spec: None)
    system.limit_submissions(12)
    accepted, refused = 0, []
    for i in range(200):
        try:
            handle = system.submit(JobSpec("oip", {"i": i}, owner="script"))
        except JobRefused as exc:
            refused.append(str(exc))
            continue
        accepted += 1
        handle.stop()
    assert accepted == 12 and len(refused) == 188
    assert all("at most 12 a minute" in r and "Try again in" in r for r in refused)
    other = system.submit(JobSpec("oip", {}, owner="someone-else"))  # another session is not held up
    assert other.state in ("queued", "running")
    system.shutdown()


def test_the_rate_is_per_minute(monkeypatch):
    import core.jobs.system as js

    now = [1000.0]
    monkeypatch.setattr(js.time, "monotonic", lambda: now[0])
    system = JobSystem(HandBackend(), 1, check=lambda spec: None)
    system.limit_submissions(2)
    for _ in range(2):
        system.submit(JobSpec("oip", {}, owner="a")).stop()
    with pytest.raises(JobRefused, match="Try again in 60 s"):
        system.submit(JobSpec("oip", {}, owner="a"))
    now[0] += 61
    system.submit(JobSpec("oip", {}, owner="a")).stop()
    system.shutdown()


# --------------------------------------------------------------------------- the handwriting set on the server
def test_a_handwriting_set_is_kept_whole_and_read_back(tmp_path):
    from core.experiments.personal_set import PersonalSet, load_set, save_set

    path = classroom.person_dir(tmp_path, "Ada") / classroom.PERSONAL_SET_FILE
    assert path.parent == tmp_path / ".people" / "ada"
    assert load_set(path) is None
    digits = PersonalSet().add(np.full((28, 28), 200, np.uint8), 3).add(np.zeros((28, 28), np.uint8), 7)
    save_set(digits, path)
    back = load_set(path)
    assert np.array_equal(back.images, digits.images) and back.labels.tolist() == [3, 7]
    assert [p.name for p in path.parent.iterdir()] == [classroom.PERSONAL_SET_FILE]
    save_set(PersonalSet(), path)
    assert not path.exists()
    assert not [p for p in list_runs(tmp_path)]  # the people's folder is never listed as a run


def test_a_run_kept_by_a_job_records_the_nickname_that_asked_for_it(tmp_path):
    from core.jobs.kinds import FineTuneJobConfig, ImportConfig, TrainJobConfig, TrainOutcome, finish

    runs = tmp_path / "runs"
    for kind, config in (
        ("train", TrainJobConfig(None, None, name="t", runs_dir=str(runs))),
        ("import-model", ImportConfig("m.keras", name="i", runs_dir=str(runs))),
        ("fine-tune", FineTuneJobConfig(None, name="f", runs_dir=str(runs))),
    ):
        spec = JobSpec(kind, config).with_owner("ada", "ada")
        outcome = finish(spec, TrainOutcome(_payload(), "finished", "", 0.5, 1.0, "CPU"))
        assert read_meta(outcome.run_dir)["owner"] == "ada"
    anonymous = finish(JobSpec("train", TrainJobConfig(None, None, name="anon", runs_dir=str(runs))), _outcome())
    assert "owner" not in read_meta(anonymous.run_dir)


def _outcome():
    from core.jobs.kinds import TrainOutcome

    return TrainOutcome(_payload(), "finished", "", 0.5, 1.0, "CPU")
