"""The sub-commands of ``hlm``: each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from hlm.errors import HLMError


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _plot_requests(items: list[str]) -> list[tuple[str, str]]:
    """``KIND=FILE`` pairs, checked before any work is done."""
    from hlm.plots import KINDS

    out = []
    for item in items:
        kind, sep, path = item.partition("=")
        if not sep or not path:
            raise HLMError(f"--plot {item!r}: write KIND=FILE.png, e.g. caterpillar=cat.png")
        if kind not in KINDS:
            raise HLMError(
                f"--plot {item!r}: unknown plot {kind!r}; choose from {', '.join(KINDS)}"
            )
        out.append((kind, path))
    return out


def _fit(args):
    from hlm.cli.fitting import engine_options, fit_with_progress, read_model
    from hlm.io.readers import read_data

    model = read_model(args.model, args.levels)
    options = engine_options(args.engine)
    data = read_data(args.data)
    return fit_with_progress(
        model,
        data,
        method=args.method.upper(),
        weights=args.weights,
        progress=False if args.quiet else None,
        **options,
    )


def cmd_fit(args) -> int:
    """``hlm fit DATA MODEL``: print (or write) the fitted model; save plots."""
    plots = _plot_requests(args.plot)
    res = _fit(args)
    fmt = args.format
    if (plots or args.save or fmt == "html") and not hasattr(res, "plot"):
        raise HLMError(
            "plots, HTML and --save are for mixed models; this model has no random effects "
            "(it was fitted by least squares)"
        )
    if fmt == "json":
        from hlm.report.result_dict import result_json

        text = result_json(res)
    elif fmt == "markdown":
        from hlm.report.markdown import result_markdown

        text = result_markdown(res)
    elif fmt == "html":
        text = res.to_html(progress=False if args.quiet else None)
    else:
        text = _text(res, args.style)
    _emit(text, args.output)
    for kind, path in plots:
        fig = res.plot(kind, progress=False if args.quiet else None)
        fig.savefig(path, dpi=120)
    if args.save:
        res.save(args.save)
    return 0


def _text(res, style: str) -> str:
    source = getattr(getattr(res, "model", None), "source", None) or getattr(res, "source", None)
    head = source.equations() + "\n\n" if hasattr(source, "equations") else ""
    if style == "hlm" and hasattr(res, "model"):
        return res.summary(style="hlm")
    return head + res.summary()


def cmd_report(args) -> int:
    """``hlm report DATA MODEL -o report.html``: a self-contained HTML page."""
    res = _fit(args)
    if not hasattr(res, "to_html"):
        raise HLMError("the HTML report is for mixed models; this model has no random effects")
    kinds = None
    if args.no_profile:
        from hlm.report.html_page import DEFAULT_PLOTS

        kinds = [k for k in DEFAULT_PLOTS if k != "profile"]
    html = res.to_html(plots=kinds, progress=False if args.quiet else None)
    Path(args.output).write_text(html, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def cmd_describe(args) -> int:
    """``hlm describe DATA --group g``."""
    from hlm.cli.describe import describe_dict, describe_text, group_sizes, variable_table
    from hlm.io.readers import read_data

    data = read_data(args.data)
    group_sizes(data, args.group)  # checks the column first
    table = variable_table(data, args.group, progress=False if args.quiet else None)
    if args.format == "json":
        import json

        _emit(json.dumps(describe_dict(data, args.group, table), indent=2), None)
    else:
        _emit(describe_text(data, args.group, table, Path(args.data).name), None)
    return 0


def cmd_example(args) -> int:
    """``hlm example``: the High School and Beyond analysis."""
    import hlm
    from hlm.cli import EXAMPLE_FORMULA

    data = hlm.datasets.load("hsb")
    print("High School and Beyond (Raudenbush & Bryk 2002): 7185 students in 160 schools.")
    print("Intercepts- and slopes-as-outcomes model: school-mean SES and sector predict")
    print("both the school's mean math achievement and its SES slope.\n")
    res = hlm.fit(EXAMPLE_FORMULA, data, method=args.method.upper())
    print(res.summary())
    return 0


def cmd_datasets(args) -> int:
    """``hlm datasets [NAME -o FILE]``: list the bundled data, or write one out."""
    import hlm

    if args.name is None:
        table = hlm.datasets.describe()
        print(table.to_string(index=False))
        return 0
    data = hlm.datasets.load(args.name)
    out = args.output or f"{args.name}.csv"
    if out.lower().endswith((".parquet", ".pq")):
        data.to_parquet(out, index=False)
    else:
        data.to_csv(out, index=False)
    print(f"wrote {out} ({len(data)} rows)")
    return 0
