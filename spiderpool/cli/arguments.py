"""The command line of ``spiderpoolctl`` (argparse exits with code 2 on a usage error, as documented)."""

from __future__ import annotations

import argparse

from spiderpool.cli.rendering import OUTPUT_FORMATS

EXIT_CODES_HELP = """exit codes:
  0  success (check: consistent)
  1  check found inconsistencies, or release was refused
  2  usage error or unusable kubeconfig
  3  the IP, pod or record named does not exist
  4  the API server could not be reached or failed a request"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")
    parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table", help="output format")
    parser.add_argument("--request-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="timeout of each API request (default 30)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spiderpoolctl", description="Inspect and repair spiderpool IP state.",
                                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    get = commands.add_parser("get", help="usage table of pools or subnets")
    get.add_argument("resource", choices=("pools", "subnets"))
    who = commands.add_parser("who-has", help="which pod holds an IP")
    who.add_argument("ip")
    describe = commands.add_parser("describe", help="a pod's addresses per NIC")
    describe.add_argument("resource", choices=("pod",))
    describe.add_argument("pod", metavar="NAMESPACE/NAME")
    commands.add_parser("check", help="consistency of pool records, SpiderEndpoints and pods (exit 1 if not)")
    release = commands.add_parser("release", help="release an IP whose holder is gone")
    release.add_argument("ip")
    release.add_argument("--pool", help="the pool, when several pools record the IP")
    release.add_argument("--force", action="store_true", help="release even when the holding pod is alive")
    gc = commands.add_parser("gc", help="what the leak collector would release now, and why")
    gc.add_argument("--dry-run", action="store_true", required=True, help="required: only previews are supported")
    gc.add_argument("--all", action="store_true", help="also list the holders that are kept")
    gc.add_argument("--additional-grace-delay", type=float, default=0.0, metavar="SECONDS",
                    help="the collector's SPIDERPOOL_GC_ADDITIONAL_GRACE_DELAY (default 0)")
    gc.add_argument("--statefulset-hold", type=float, default=0.0, metavar="SECONDS",
                    help="how long a scaled-down StatefulSet ordinal is held (default 0)")
    for sub in commands.choices.values():
        _common(sub)
    return parser


def split_pod(text: str) -> tuple[str, str] | None:
    """``namespace/name`` as a pair; None when it is not of that form."""
    namespace, slash, name = text.partition("/")
    if not slash or not namespace or not name or "/" in name:
        return None
    return namespace, name
