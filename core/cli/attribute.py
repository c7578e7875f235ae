"""``attribute``: which pixels make the network answer as it does, by any method of ``core.attribution.registry``."""

from __future__ import annotations

import sys
import time

from core.attribution.registry import METHODS, method
from core.cli.activations import add_digit_args, digit_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "attribute",
        help="attribution for one digit: " + ", ".join(METHODS),
        description="Each method's options are flags below; a flag that the chosen method does not have is refused.",
    )
    p.add_argument("--method", required=True, choices=list(METHODS), help="the attribution method")
    add_digit_args(p)
    p.add_argument(
        "--class", dest="class_index", type=int, default=None, help="class to explain (default: the predicted one)"
    )
    p.add_argument("--model", default=None, help="run folder or its model.keras (default: the bundled model)")
    flags: dict[str, str] = {}
    for m in METHODS.values():
        for option in m.options:
            if option.flag in flags:
                flags[option.flag] += f"; {m.name}: {option.help or option.label}"
                continue
            flags[option.flag] = f"{m.name}: {option.help or option.label}"
    for flag, text in flags.items():
        p.add_argument(f"--{flag}", default=None, help=text)
    p.set_defaults(func=_cmd_attribute)


def _cmd_attribute(args) -> int:
    from core.activations import ActivationModel
    from core.cli.common import _emit
    from core.runs import load_run, resolve_model_path

    started = time.perf_counter()
    chosen = method(args.method)
    known = {o.name: o for o in chosen.options}
    given = {name: text for name, text in vars(args).items() if text is not None and _is_option(name)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{chosen.name} has no option(s) {unknown}; it has {sorted(known)}")
    values = {name: known[name].parse(text) for name, text in given.items()}
    raw, label, source = digit_from_args(args)
    am = ActivationModel.from_bundle(load_run(resolve_model_path(args.model)))
    predicted = int(am.predict(am.scaler.transform(raw))[0].argmax())
    k = predicted if args.class_index is None else args.class_index
    result = chosen.run(am, raw, k, **values)
    print(f"{source}: read as {predicted}. {result.caption}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return _emit(
        {
            "method": chosen.name,
            "source": source,
            "label": label,
            "predicted": predicted,
            "class": k,
            "settings": chosen.settings(**values),
            **{name: round(value, 6) for name, value in result.figures.items()},
            "top_pixels": result.top_pixels(5),
            "explain_seconds": round(result.seconds, 3),
        },
        started,
    )


def _is_option(name: str) -> bool:
    return any(o.name == name for m in METHODS.values() for o in m.options)
