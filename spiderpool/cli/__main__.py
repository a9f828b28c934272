"""Entry point of ``spiderpoolctl`` (``python -m spiderpool.cli``): parse, run one command, print, exit.

Data goes to stdout; warnings and errors, each naming what it is about, go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from spiderpool.cli import read_commands
from spiderpool.cli.arguments import build_parser, split_pod
from spiderpool.cli.cluster_state import connected, kubeconfig_path, read_cluster_state
from spiderpool.cli.exit_codes import CliError, ExitCode
from spiderpool.cli.release_command import release
from spiderpool.cli.rendering import CommandView, render
from spiderpool.core.gc_planning import GcPolicy


async def run_command(args: argparse.Namespace) -> CommandView:
    kubeconfig = kubeconfig_path(args.kubeconfig)
    timeout = args.request_timeout
    async with connected(kubeconfig, context=args.context) as api:
        if args.command == "release":
            return await release(api, args.ip, pool=args.pool, force=args.force, request_timeout=timeout)
        workloads = args.command not in ("get",)
        state = await read_cluster_state(api, request_timeout=timeout, workloads=workloads)
    if args.command == "get":
        return read_commands.get_pools(state) if args.resource == "pools" else read_commands.get_subnets(state)
    if args.command == "who-has":
        return read_commands.who_has(state, args.ip)
    if args.command == "describe":
        namespace, name = split_pod(args.pod) or ("", "")
        return read_commands.describe_pod(state, namespace, name)
    if args.command == "check":
        return read_commands.check(state)
    policy = GcPolicy(additional_grace_delay=args.additional_grace_delay, statefulset_hold=args.statefulset_hold)
    return read_commands.gc_dry_run(state, policy=policy, now=time.time(), show_all=args.all)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.command == "describe" and split_pod(args.pod) is None:
        return f"describe pod: expected NAMESPACE/NAME, got {args.pod!r}"
    if args.request_timeout <= 0:
        return f"--request-timeout: must be positive, got {args.request_timeout}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _usage_problem(args)
    if problem is not None:
        parser.print_usage(sys.stderr)
        print(f"spiderpoolctl: error: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        view = asyncio.run(run_command(args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    for warning in view.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(render(view, output=args.output))
    return view.exit_code


if __name__ == "__main__":
    sys.exit(main())
