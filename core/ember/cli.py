"""The ``ember`` command: ``ember plugins`` and ``ember quickstart``.

Example:
    >>> # $ ember plugins --json
    >>> # $ ember quickstart vision --smoke
    >>> # $ ember new-plugin signal
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence

from ember.errors import EmberError

__all__ = ["main"]


def _plugins(args: argparse.Namespace) -> int:
    from ember.plugins import get_registry, plugin_infos

    infos = plugin_infos()
    registry = get_registry()
    contributions: dict[str, list[str]] = {}
    for (hook, name), plugin in registry.owner.items():
        short = hook.removeprefix("ember_")
        contributions.setdefault(plugin, []).append(f"{short}:{name}")
    if args.json:
        rows = [{"name": i.name, "version": i.version, "package": i.package, "status": i.status,
                 "reason": i.reason, "hooks": i.hooks,
                 "registered": sorted(contributions.get(i.name, []))} for i in infos]
        print(json.dumps(rows, indent=2))
        return 0
    for info in infos:
        line = f"{info.name:<12} {info.version:<10} {info.status:<12}"
        if info.status == "ok":
            line += " hooks: " + ", ".join(h.removeprefix("ember_") for h in info.hooks)
        else:
            line += " " + info.reason
        print(line)
        registered = sorted(contributions.get(info.name, []))
        if registered and args.verbose:
            print("    registers: " + ", ".join(registered))
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    from ember.plugins import get_registry, plugin_infos

    demos = get_registry().demos
    wanted = set(args.domains)
    chosen = [d for d in demos if not wanted or d.domain in wanted or d.name in wanted]
    # every name asked for must match a demo: a typo is not silently dropped from the run
    unknown = sorted(w for w in wanted if not any(w in (d.domain, d.name) for d in demos))
    if not chosen or unknown:
        available = ", ".join(sorted({d.domain for d in demos})) or "none"
        print(f"ember quickstart: error: no quick-start demo for {unknown or 'any domain'}; "
              f"installed demos: {available}", file=sys.stderr)
        # a plugin that did not load is named with why (it was "pip install ember-vision"
        # for a vision plugin that is installed but broken or blocked)
        unloaded = [i for i in plugin_infos() if i.status != "ok"
                    and (not unknown or any(w in (i.name, i.name.split("-")[-1])
                                            for w in unknown))]
        for info in unloaded:
            print(f"  plugin {info.name!r} is {info.status}: {info.reason} (see ember plugins)",
                  file=sys.stderr)
        if not demos and not unloaded:
            print("  install a domain plugin, e.g. pip install ember-vision", file=sys.stderr)
        return 2
    results = []
    failed = 0
    for demo in chosen:
        print(f"== {demo.domain}/{demo.name}: {demo.description}", flush=True)
        start = time.perf_counter()
        try:  # one failing demo must not hide the others' results
            metrics = demo.run(smoke=args.smoke)
            if not isinstance(metrics, dict):
                raise TypeError(f"run() returned {type(metrics).__name__}, not a dict of metrics")
            if not metrics:  # a demo that reports nothing has shown nothing
                raise ValueError("run() returned no metrics (an empty dict)")
            shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in metrics.items())
        except Exception as error:
            failed += 1
            first_line = (str(error).splitlines() or [""])[0]
            shown = f"FAILED: {type(error).__name__}: {first_line}"
            print(f"   {shown}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - start
        results.append((demo, shown, seconds))
    print("\n| demo | metrics | seconds |\n|---|---|---|")
    for demo, shown, seconds in results:
        print(f"| {demo.domain}/{demo.name} | {shown} | {seconds:.1f} |")
    if failed:
        print(f"{failed} of {len(results)} demos failed", file=sys.stderr)
        return 1
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from ember.scaffold import new_plugin

    folder = new_plugin(args.name, args.path)
    print(f"wrote {folder}\nnext: pip install -e {folder} && pytest {folder}\n"
          f"  or, in a notebook or while it is in development (no install): "
          f"import sys; sys.path.insert(0, {str(folder)!r}); import ember_{args.name}.plugin; "
          f"ember.register_plugin(ember_{args.name}.plugin, name={args.name!r})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ember.serve import serve

    try:
        serve(args.model, host=args.host, port=args.port, max_batch=args.max_batch,
              max_wait_ms=args.max_wait_ms, max_items=args.max_items,
              max_body_bytes=args.max_body_bytes, access_log=args.access_log,
              option_limits=dict(args.option_limit))
    except ImportError as error:  # the serving stack is not installed: say what to install
        print(f"ember serve: error: {error}", file=sys.stderr)
        return 1
    return 0


def _whole_number(text: str) -> int | None:
    """``text`` as a whole number written in ASCII digits (``"12"``), else ``None``: ``"-1"``,
    ``"2.5"`` and ``"²"`` (a digit to ``str.isdigit``, not to ``int``) are none."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _port(text: str) -> int:
    """``--port``: a TCP port number, 0 to 65535 (0: one the system picks).

    Example:
        >>> _port("8000")
        8000
    """
    value = _whole_number(text)
    if value is None or value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give a number from 0 to "
                                         f"65535, e.g. 8000")
    return value


def _count(what: str) -> Callable[[str], int]:
    """The argparse type of a count option, 1 or more: ``what`` says what it counts, for
    the error (``--max-batch``, ``--max-items``, ``--max-body-bytes``).

    Example:
        >>> _count("items")("256")
        256
    """

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value is None or value < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of {what}, 1 or "
                                             f"more")
        return value

    return parse


def _max_wait_ms(text: str) -> float:
    """``--max-wait-ms``: how long a micro-batch waits for more requests, 0 or more
    milliseconds.

    Example:
        >>> _max_wait_ms("2.5")
        2.5
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of milliseconds, 0 or more "
                                         f"(0: no waiting)")
    return value


def _option_limit(text: str) -> tuple[str, int | None]:
    """One ``--option-limit NAME=VALUE``: an option name and the largest value a client may
    ask for (a whole number, 0 or more), or ``none`` for no limit.

    Example:
        >>> _option_limit("beam=32"), _option_limit("max_len=none")
        (('beam', 32), ('max_len', None))
    """
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=VALUE (an option name, e.g. beam=32 or max_len=none)")
    if value.lower() == "none":
        return name, None
    limit = _whole_number(value)
    if limit is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the limit must be a whole number, 0 or more, or none for no limit")
    return name, limit


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ember`` command.

    Example:
        >>> main(["plugins"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(prog="ember", description="Ember command line")
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="list installed plugins, versions and hooks")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("-v", "--verbose", action="store_true", help="show what each registers")
    plugins.set_defaults(run=_plugins)
    quick = commands.add_parser("quickstart", help="train the installed plugins' demos")
    quick.add_argument("domains", nargs="*", help="domains or demo names (default: all)")
    quick.add_argument("--smoke", action="store_true", help="a few batches only")
    quick.set_defaults(run=_quickstart)
    scaffold = commands.add_parser("new-plugin", help="write a ready-to-install plugin package")
    scaffold.add_argument("name", help="domain name, a lowercase identifier (e.g. signal)")
    scaffold.add_argument("--path", default=".", help="parent folder (default: here)")
    scaffold.set_defaults(run=_new_plugin)
    server = commands.add_parser("serve", help="serve an exported model over REST (CPU)")
    server.add_argument("model", help="a file written by learn.export()")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=_port, default=8000, help="0 to 65535 (default 8000)")
    server.add_argument("--max-batch", type=_count("items a micro-batch holds"), default=64,
                        help="micro-batch size limit, 1 or more (default 64)")
    server.add_argument("--max-wait-ms", type=_max_wait_ms, default=5.0,
                        help="micro-batch window in milliseconds, 0 or more (default 5)")
    server.add_argument("--max-items", type=_count("items a request may hold"), default=1024,
                        help="the most items one request may hold, 1 or more (default 1024); "
                             "a request over it gets a 422")
    server.add_argument("--max-body-bytes", type=_count("bytes"), default=16 * 1024 * 1024,
                        help="the largest request body in bytes, 1 or more (default 16777216, "
                             "16 MiB); a body over it gets a 413")
    server.add_argument("--access-log", action="store_true", help="log every request")
    server.add_argument(
        "--option-limit", metavar="NAME=VALUE", type=_option_limit, action="append",
        default=[], help=(
            "the largest value a request may ask for a prediction option, e.g. beam=32 or "
            "max_len=none (no limit); repeatable. Costly options have limits by default "
            "(seq2seq beam 16 and max_len 4x its default, a language model's n_words 1000); "
            "GET /metadata lists them, and a request over one gets a 422"))
    server.set_defaults(run=_serve)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except EmberError as error:  # a user's mistake (bad name, missing file): no stack trace
        print(f"ember {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line and the shell's status for it, no traceback
        print(f"\nember {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
