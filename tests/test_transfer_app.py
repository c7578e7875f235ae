"""AppTest: the New symbols page teaches a copy of the bundled model symbols and keeps it as a new run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import finish_job, session_of
from tests.test_personal_set import bars


def _texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.mark.slow  # three trainings of the bundled model's shape: about 35 s on 2 cores
def test_symbols_are_taught_to_a_frozen_copy_beside_one_from_scratch(runs_dir, app_test):
    from core.experiments.transfer import SymbolSet
    from core.runs import DEFAULT_MODEL_DIR, list_runs, read_meta

    at = app_test("pages/transfer.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("No symbols yet" in i.value for i in at.info)
    assert at.button(key="tr_start").disabled and at.button(key="tr_add_drawing").disabled  # no name, no set
    at.text_input(key="tr_name").input("plus").run()
    at.button(key="tr_add_drawing").click().run()  # nothing drawn (AppTest has no canvas): said, nothing added
    assert any("Draw a symbol first" in w.value for w in at.warning)
    # three 'symbols' (vertical bars at three places), six examples each
    labels = np.repeat(np.arange(3), 6)
    session_of(at).transfer.symbols = SymbolSet(
        bars(labels * 4, vertical=True, seed=2), labels, ("left", "middle", "right")
    )
    at.run()
    assert "**3 symbols**, 18 examples: left (6), middle (6), right (6)" in _texts(at)
    assert not at.button(key="tr_start").disabled
    at.number_input(key="tr_epochs").set_value(5).run()
    at.toggle(key="tr_unfreeze").set_value(True).run()
    at.button(key="tr_start").click().run()
    handle = finish_job(at, "transfer_job")
    assert handle.state == "finished", handle.snapshot().message
    assert not at.exception, [e.value for e in at.exception]
    assert any("new run **article-II-symbols**" in s.value for s in at.success)
    text = _texts(at)
    assert "frozen conv layers + new head" in text and "the same network from scratch" in text
    assert any("Compute the OIPs of conv3" in b.label for b in at.button)
    [run] = list_runs(runs_dir)
    meta = read_meta(run)
    assert meta["class_names"] == ["left", "middle", "right"] and meta["transfer_from"] == "article II"
    assert set(meta["transfer"]["held_out_accuracy"]) == {"frozen", "scratch", "unfrozen"}
    assert (DEFAULT_MODEL_DIR / "run.json").is_file()  # the original is where it was
    at.button(key="tr_oip_start").click().run()  # the OIPs of conv3, then each symbol's top maps beside them
    assert finish_job(at, "transfer_oip_job").state == "finished"
    assert not at.exception, [e.value for e in at.exception]
    assert any("of each symbol's top maps" in c.value for c in at.caption)
