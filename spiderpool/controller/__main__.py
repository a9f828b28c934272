"""``python -m spiderpool.controller``: the spiderpool-controller (see docs/controller.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from spiderpool.controller.daemon import Controller, ControllerFailed, ControllerOptions
from spiderpool.controller.settings import (
    DEFAULT_HEALTH_PORT,
    DEFAULT_METRICS_PORT,
    DEFAULT_WEBHOOK_PORT,
    SettingsError,
)


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spiderpool-controller", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster configuration)")
    parser.add_argument("--webhook-host", default="127.0.0.1", help="address the webhook server binds and registers")
    parser.add_argument("--webhook-port", type=int, default=DEFAULT_WEBHOOK_PORT, help="0: an ephemeral port")
    parser.add_argument("--health-port", type=int, default=DEFAULT_HEALTH_PORT, help="0: disabled")
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, help="0: disabled")
    parser.add_argument("--config-dir", type=Path, help="directory of the spiderpool-conf ConfigMap (conf.yml)")
    parser.add_argument("--register-webhooks", choices=("leader", "replica", "none"), default="leader",
                        help="leader: the Lease holder registers the shared configurations (default); replica: each "
                             "replica registers its own; none: the chart provides them")
    parser.add_argument("--tls-cert-file", type=Path, help="serving certificate (chain) for the webhooks; default: "
                        "a self-signed one generated at start-up")
    parser.add_argument("--tls-key-file", type=Path, help="its private key (with --tls-cert-file)")
    parser.add_argument("--tls-ca-file", type=Path, help="the CA that signed it, registered as caBundle (needed with "
                        "--tls-cert-file unless --register-webhooks=none)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def _tls_files(args: argparse.Namespace) -> tuple[Path, Path, Path | None] | None:
    """The provided serving certificate files, or None to generate one; a usage error names what is missing."""
    if args.tls_cert_file is None and args.tls_key_file is None:
        return None
    if args.tls_cert_file is None or args.tls_key_file is None:
        raise ValueError("--tls-cert-file and --tls-key-file go together")
    if args.tls_ca_file is None and args.register_webhooks != "none":
        raise ValueError("--tls-ca-file is needed to register the webhooks (or use --register-webhooks=none)")
    for path in (args.tls_cert_file, args.tls_key_file, args.tls_ca_file):
        if path is not None and not path.is_file():
            raise ValueError(f"{path}: no such file")
    return args.tls_cert_file, args.tls_key_file, args.tls_ca_file


async def _main(options: ControllerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await Controller(options).run(stop)


def main(argv: list[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    try:
        tls = _tls_files(args)
    except ValueError as error:
        print(f"spiderpool-controller: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ControllerOptions(kubeconfig=args.kubeconfig, webhook_host=args.webhook_host,
                                webhook_port=args.webhook_port, health_port=args.health_port,
                                metrics_port=args.metrics_port, config_dir=args.config_dir,
                                register_webhooks=args.register_webhooks, tls_files=tls)
    try:
        asyncio.run(_main(options))
    except (SettingsError, ValueError) as error:
        print(f"spiderpool-controller: {error}", file=sys.stderr)
        return 2
    except ControllerFailed as error:
        print(f"spiderpool-controller: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
