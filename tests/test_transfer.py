"""Transfer learning (core/experiments/transfer.py): the symbol set, the frozen copy, the job and the command,
on tiny models and synthetic symbols made in the test (fast tier: no MNIST file)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace

import numpy as np
import pytest

from core.experiments.transfer import (
    SymbolSet,
    SymbolSetError,
    TransferConfig,
    run_transfer,
    split_examples,
)
from tests.test_personal_set import bars


def symbols(per: int = 4, n: int = 3) -> SymbolSet:
    """``n`` synthetic symbols (vertical bars at n places), ``per`` examples each."""
    labels = np.repeat(np.arange(n), per)
    return SymbolSet(bars(labels * 3, vertical=True, seed=1), labels, tuple(f"sym{k}" for k in range(n)))


@pytest.fixture()
def bundle(tmp_path):
    from core.runs import load_run
    from tests.conftest import write_tiny_run

    return load_run(write_tiny_run(tmp_path / "base", seed=3))


def _files_hash(folder) -> str:
    digest = hashlib.sha1()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_a_set_grows_renumbers_and_round_trips_through_npz():
    one = SymbolSet().add_many(bars([1, 1]), " plus ")
    two = one.add_many(bars([5]), "Minus").add_many(bars([2]), "PLUS")  # the same symbol, another case
    assert two.names == ("plus", "Minus") and two.labels.tolist() == [0, 0, 1, 0]
    assert two.counts().tolist() == [3, 1]
    fewer = two.without([2])  # Minus's only example: the symbol leaves, the rest keep their labels
    assert fewer.names == ("plus",) and fewer.labels.tolist() == [0, 0, 0]
    back = SymbolSet.from_npz(two.to_npz())
    assert back.names == two.names and back.labels.tolist() == two.labels.tolist()
    np.testing.assert_array_equal(back.images, two.images)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SymbolSet(bars([0, 1]), np.array([0, 1]), ("plus", " Plus ")), "the symbol 'Plus' is named twice"),
        (lambda: SymbolSet(bars([0]), np.array([0]), ("  ",)), "a symbol needs a name"),
        (lambda: SymbolSet(bars([0]), np.array([0]), ("x" * 30,)), "at most 24"),
        (lambda: SymbolSet(bars([0]), np.array([1]), ("a", "b")), "the symbol 'a' has no example"),
        (lambda: SymbolSet(bars([0]), np.array([2]), ("a", "b")), "label 2 (example 0) has no symbol"),
        (lambda: symbols(per=1).check_trainable(), "the symbol 'sym0' has 1 example; each symbol needs at least 2"),
        (lambda: symbols(n=1).check_trainable(), "the set has 1 symbol (only 'sym0'); transfer learning needs 2 to 10"),
        (lambda: SymbolSet().check_trainable(), "the set has 0 symbols (none)"),
        (lambda: symbols(per=1, n=10).add_many(bars([0]), "eleventh"), "a set holds 2 to 10 symbols"),
        (lambda: SymbolSet.from_npz(symbols().to_npz()[:50]), "the file is not a symbol set"),
        (lambda: symbols().without([12]), "example 12 is not in the set (it has 12: 0..11)"),
    ],
)
def test_bad_sets_are_refused_with_the_reason(make, message):
    with pytest.raises(SymbolSetError) as info:
        make()
    assert message in str(info.value)


def test_a_set_kept_on_the_server_comes_back_whole(tmp_path):
    from core.experiments.personal_set import save_set
    from core.experiments.transfer import load_symbols

    path = tmp_path / ".people" / "ada" / "symbols.npz"
    assert load_symbols(path) is None
    save_set(symbols(), path)  # the handwriting set's atomic writer serves a symbol set too
    back = load_symbols(path)
    assert back.names == symbols().names and np.array_equal(back.images, symbols().images)
    save_set(SymbolSet(), path)
    assert not path.exists()


def test_a_file_without_names_is_refused():
    buf = io.BytesIO()
    np.savez(buf, images=bars([0, 1]), labels=np.array([0, 1]))
    with pytest.raises(SymbolSetError, match="has no 'names' array"):
        SymbolSet.from_npz(buf.getvalue())


def test_hold_out_keeps_one_to_train_and_one_to_judge_per_symbol():
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    train, held = split_examples(labels, 0.3, seed=0)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(12))
    assert np.bincount(labels[held]).tolist() == [1, 3] and np.bincount(labels[train]).tolist() == [1, 7]
    assert np.array_equal(held, split_examples(labels, 0.3, seed=0)[1])
    assert len(split_examples(labels, 0.9, seed=0)[1]) == 1 + 9  # never all of a symbol


def test_frozen_conv_layers_keep_their_weights_bit_for_bit_and_the_original_is_untouched(bundle):
    original = [w.copy() for w in bundle.model.get_weights()]
    config = TransferConfig(epochs=2, repeat=1, unfreeze=True, seed=0)
    result = run_transfer(bundle, symbols(), config)
    for w, o in zip(bundle.model.get_weights(), original):
        np.testing.assert_array_equal(w, o)
    frozen = result.kept.model
    for name in ("conv1", "conv2", "conv3"):
        for w, o in zip(frozen.get_layer(name).get_weights(), bundle.model.get_layer(name).get_weights()):
            assert w.dtype == o.dtype and w.tobytes() == o.tobytes()
    assert not np.array_equal(
        frozen.get_layer("dense1").get_weights()[0], bundle.model.get_layer("dense1").get_weights()[0]
    )
    assert frozen.get_layer("out").get_weights()[0].shape == (8, 3)  # one unit per symbol
    assert set(result.scores) == {"frozen", "scratch", "unfrozen"}
    assert all(v > 0 for v in result.conv_change.values())  # unfrozen, the conv layers move
    assert result.scores["frozen"].trainable < result.scores["scratch"].trainable
    assert result.map_means.shape == (3, 6) and result.top_maps.shape == (3, 5) and result.layer == "conv3"
    summary = result.summary()
    assert summary["held_out"] == 3 and set(summary["held_out_accuracy"]) == {"frozen", "scratch", "unfrozen"}
    _check_the_figures(result)


def test_the_seed_fixes_the_transfer(bundle):
    config = TransferConfig(epochs=2, repeat=1, seed=4)
    first, again = (run_transfer(bundle, symbols(), config) for _ in range(2))
    assert again.summary() == {**first.summary(), "seconds": again.summary()["seconds"]}
    np.testing.assert_array_equal(again.kept.model.get_weights()[-1], first.kept.model.get_weights()[-1])


def _check_the_figures(result) -> None:
    from core.experiments.transfer import TITLES
    from core.figures import transfer as figures

    s = symbols()
    expected = [100 * result.scores[k].accuracy for k in ("frozen", "scratch", "unfrozen")]
    assert list(figures.accuracy_bars(result, TITLES).data[0].y) == expected
    assert len(figures.per_symbol_bars(result, TITLES).data) == 3
    heat = figures.map_usage_heatmap(result)
    assert heat.data[0].z.shape == (3, 6) and len(heat.layout.shapes) == 3 * 5  # every top map outlined
    oips = np.random.default_rng(0).random((6, 28, 28))
    grid = figures.top_map_oips(oips, np.arange(6), s.names, result.top_maps)
    assert [a.text for a in grid.layout.annotations][:2] == [f"sym0: map {m}" for m in result.top_maps[0][:2]]
    assert figures.symbol_grid(s.images, s.labels, s.names).layout.annotations[-1].text == "11: sym2"
    assert [b.x for b in figures.conv_change_bars(result.conv_change).data][0] == ("conv1", "conv2", "conv3")


def test_a_dense_network_is_refused(bundle):
    from core.spec import ArchitectureSpec

    dense = replace(bundle, spec=ArchitectureSpec((), dense=(8,), dense_only=True))
    with pytest.raises(ValueError, match="has no conv layers"):
        run_transfer(dense, symbols(), TransferConfig(epochs=1))


def test_the_job_writes_a_new_run_says_where_from_and_stops(bundle, tmp_path):
    from core.jobs.context import JobContext
    from core.jobs.kinds import TransferJobConfig, check_spec, execute, finish
    from core.jobs.system import JobSpec
    from core.progress import ProgressRecord
    from core.runs import list_runs, load_run

    before = _files_hash(bundle.path)
    s = symbols()
    inputs = {"images": s.images, "labels": s.labels, "names": list(s.names)}
    job = TransferJobConfig(TransferConfig(epochs=1, repeat=1), name="symbols", runs_dir=str(tmp_path / "runs"))
    spec = JobSpec("transfer", job, model=str(bundle.path), inputs=inputs).with_owner("ada", "ada")
    check_spec(spec)
    outcome = finish(spec, execute(spec, JobContext(), ProgressRecord()))
    assert outcome.status == "completed" and outcome.run_dir.name == "symbols"
    run = load_run(outcome.run_dir)
    assert run.spec.num_classes == 3 and run.meta["class_names"] == ["sym0", "sym1", "sym2"]
    assert run.meta["transfer_from"] == bundle.name and run.meta["owner"] == "ada"
    assert run.meta["note"] == "transfer from base, symbols ['sym0', 'sym1', 'sym2']"
    assert outcome.transfer.kept is None  # no Keras model travels back
    assert _files_hash(bundle.path) == before
    stop = ProgressRecord()
    stop.request_stop()
    assert execute(spec, JobContext(), stop).status == "stopped"
    assert [p.name for p in list_runs(tmp_path / "runs")] == ["symbols"]
    one = {"images": s.images[:5], "labels": s.labels[:5], "names": list(s.names[:2])}
    with pytest.raises(ValueError, match="'sym1' has 1 example"):
        check_spec(JobSpec("transfer", job, inputs=one))
    with pytest.raises(ValueError, match="epochs=0"):
        check_spec(JobSpec("transfer", TransferJobConfig(TransferConfig(epochs=0)), inputs=inputs))


def test_cli_prints_frozen_and_scratch_accuracy_as_its_last_line(tmp_path, tiny_run, capsys):
    from core.cli import main

    path = tmp_path / "set.npz"
    path.write_bytes(symbols().to_npz())
    argv = ["transfer", str(path), "--from", str(tiny_run), "--epochs", "1", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["held_out_accuracy"]) == {"frozen", "scratch"}
    assert out["symbols"] == ["sym0", "sym1", "sym2"] and out["run"].endswith("tiny-untrained-symbols")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(symbols(per=1).to_npz())
    assert main(["transfer", str(bad), "--from", str(tiny_run)]) == 2
    assert "'sym0' has 1 example" in capsys.readouterr().err


@pytest.mark.fast
def test_a_run_taught_new_symbols_is_left_out_of_the_active_model_list(tmp_path, monkeypatch):
    """Every page but New symbols reads ten digit classes: a symbols run is never offered as the active model."""
    from pages.ui import resources
    from tests.conftest import write_tiny_run

    runs = tmp_path / "runs"
    digits, symbols = write_tiny_run(runs / "digits"), write_tiny_run(runs / "symbols", seed=1)
    meta = json.loads((symbols / "run.json").read_text())
    (symbols / "run.json").write_text(json.dumps({**meta, "class_names": ["plus", "minus"]}))
    monkeypatch.setenv("MNIST_EXPLORER_RUNS", str(runs))
    choices = resources.model_choices()
    assert str(digits) in choices and str(symbols) not in choices
    assert resources.reads_digits(digits) and not resources.reads_digits(symbols)
