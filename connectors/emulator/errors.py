"""The one error type the emulator raises for a request GA would reject.

Request parsing and report computation stay free of gRPC plumbing; the server turns this into
``context.abort`` with the same status code GA would answer with.
"""

from __future__ import annotations

import grpc


class EmulatorError(Exception):
    """A rejected request: the gRPC status GA would send and a message naming the culprit."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_argument(message: str) -> EmulatorError:
    return EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, message)


def unimplemented(message: str) -> EmulatorError:
    return EmulatorError(grpc.StatusCode.UNIMPLEMENTED, message)
