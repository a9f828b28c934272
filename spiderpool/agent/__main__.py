"""``spiderpool-agent`` / ``python -m spiderpool.agent``: ``[run] FLAGS`` serves this node; ``install-cni DIR``.

Logs go to stderr.  SIGTERM and SIGINT stop the agent gracefully (requests in flight and queued status writes
finish); exit status 0 after a graceful stop, 2 for a configuration error, 1 when the agent could not start (e.g.
another agent serves the same socket path: a one-line message says so).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from spiderpool.agent import install_cni
from spiderpool.agent.config import AgentConfig, load_agent_config, run_argument_parser
from spiderpool.agent.daemon import Agent
from spiderpool.agent.socket_claim import SocketInUse
from spiderpool.cluster_config import ConfigError

log = logging.getLogger("spiderpool.agent")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def _run(config: AgentConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = Agent(config)
    try:
        await agent.start()
    except SocketInUse as error:
        log.error("spiderpool agent of node %s not started: %s", config.node_name, error)
        return 1
    except Exception:
        log.exception("spiderpool agent of node %s could not start", config.node_name)
        return 1
    await stop.wait()
    log.info("stopping: finishing requests in flight and queued status writes")
    await agent.stop()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["install-cni"]:
        return install_cni.main(arguments[1:])
    if arguments[:1] == ["run"]:
        arguments = arguments[1:]
    options = run_argument_parser().parse_args(arguments)
    try:
        config = load_agent_config(options, os.environ)
    except ConfigError as error:
        print(f"spiderpool-agent: {error}", file=sys.stderr)
        return 2
    _configure_logging(config.log_level)
    return asyncio.run(_run(config))


if __name__ == "__main__":
    sys.exit(main())
