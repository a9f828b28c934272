"""The CNI executable <-> agent wire format (the C side is ``cni/agent_http.c``).

One HTTP/1.1 request per CNI invocation over the agent's unix socket:
``POST /v2/cni`` with the raw network configuration (the plugin's stdin) as body, and one header per CNI_* environment
variable that was set. Header values are percent-encoded: every byte outside ``[A-Za-z0-9._~/:=;,-]`` is ``%XX``, so
any environment value (newlines, non-UTF-8 bytes) survives HTTP. The reply is always ``200`` with
``X-Cni-Exit-Code`` and a body the executable prints verbatim on stdout. A header that is absent means the variable
was not set; a header with an empty value means it was set to "".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

CNI_REQUEST_PATH: Final = "/v2/cni"
# The `coordinator` executable (the same program built with this path) posts its invocations here.
COORDINATOR_REQUEST_PATH: Final = "/v2/coordinator"
DEFAULT_SOCKET_PATH: Final = "/var/run/spidernet/spiderpool.sock"
# Only for tests and benchmarks: overrides the socket path of the netconf in the executable.
SOCKET_PATH_ENV: Final = "SPIDERPOOL_SOCKET"
# The executable's deadline for the whole exchange with the agent (upstream's DefaultCNIClientTimeout) ...
AGENT_TIMEOUT_SECONDS: Final = 100
# ... which tests exercising the deadline shorten with this variable (milliseconds).
AGENT_TIMEOUT_MS_ENV: Final = "SPIDERPOOL_CNI_TIMEOUT_MS"
# Largest stdin the executable forwards; the agent's HTTP server must accept a body of this size.
MAX_STDIN_BYTES: Final = 4 << 20

HEADER_COMMAND: Final = "X-Cni-Command"
HEADER_CONTAINER_ID: Final = "X-Cni-Containerid"
HEADER_NETNS: Final = "X-Cni-Netns"
HEADER_IFNAME: Final = "X-Cni-Ifname"
HEADER_ARGS: Final = "X-Cni-Args"
HEADER_PATH: Final = "X-Cni-Path"
HEADER_EXIT_CODE: Final = "X-Cni-Exit-Code"

# The environment variable each request header carries, for precise error messages.
ENV_OF_HEADER: Final[Mapping[str, str]] = {
    HEADER_COMMAND: "CNI_COMMAND",
    HEADER_CONTAINER_ID: "CNI_CONTAINERID",
    HEADER_NETNS: "CNI_NETNS",
    HEADER_IFNAME: "CNI_IFNAME",
    HEADER_ARGS: "CNI_ARGS",
    HEADER_PATH: "CNI_PATH",
}

_SAFE_BYTES: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/:=;,-")
_ENCODED_VALUE: Final = re.compile(r"(?:[A-Za-z0-9._~/:=;,\-]|%[0-9A-Fa-f]{2})*")


class WireError(ValueError):
    """A request that does not follow the wire format; names the header and the offending value."""

    def __init__(self, header: str, value: str, reason: str) -> None:
        self.header = header
        self.env_name = ENV_OF_HEADER.get(header, header)
        self.value = value
        super().__init__(f"{self.env_name} (header {header}): {reason}: {value!r}")


def encode_header_value(value: str | bytes) -> str:
    """Percent-encodes an environment value exactly as the C executable does (str is taken as UTF-8)."""
    raw = value.encode() if isinstance(value, str) else value
    return "".join(chr(byte) if byte in _SAFE_BYTES else f"%{byte:02X}" for byte in raw)


def decode_header_value(header: str, text: str) -> str:
    """Inverse of ``encode_header_value``; the decoded bytes must be UTF-8."""
    if _ENCODED_VALUE.fullmatch(text) is None:
        raise WireError(header, text, "not a percent-encoded value")
    try:
        return _unquote(text).decode()
    except UnicodeDecodeError as err:
        raise WireError(header, text, f"not UTF-8 at byte {err.start}") from None


def _unquote(text: str) -> bytes:
    parts = text.split("%")
    out = bytearray(parts[0].encode("ascii"))
    for part in parts[1:]:
        out.append(int(part[:2], 16))
        out += part[2:].encode("ascii")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class CniPassthrough:
    """One CNI invocation as the executable saw it: the CNI_* variables (None = unset) and stdin."""

    command: str | None
    container_id: str | None
    netns: str | None
    ifname: str | None
    args: str | None
    path: str | None
    stdin: bytes

    def to_headers(self) -> dict[str, str]:
        """The request headers the C executable would send for this invocation."""
        values = {
            HEADER_COMMAND: self.command,
            HEADER_CONTAINER_ID: self.container_id,
            HEADER_NETNS: self.netns,
            HEADER_IFNAME: self.ifname,
            HEADER_ARGS: self.args,
            HEADER_PATH: self.path,
        }
        return {name: encode_header_value(value) for name, value in values.items() if value is not None}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], body: bytes) -> CniPassthrough:
        """Decodes a request; ``headers`` must look names up case-insensitively (as aiohttp's do)."""

        def decoded(name: str) -> str | None:
            text = headers.get(name)
            return None if text is None else decode_header_value(name, text)

        return cls(
            command=decoded(HEADER_COMMAND),
            container_id=decoded(HEADER_CONTAINER_ID),
            netns=decoded(HEADER_NETNS),
            ifname=decoded(HEADER_IFNAME),
            args=decoded(HEADER_ARGS),
            path=decoded(HEADER_PATH),
            stdin=body,
        )
