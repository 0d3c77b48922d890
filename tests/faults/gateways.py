"""Acquirer gateways that fail the way processes do, chosen by PAYMENTS_ACQUIRER_GATEWAY in a server started
for a fault test."""

import os
import signal

from payments.gateway import AuthorizationRequest, AuthorizationResult, SimulatorGateway


class DiesAfterApproval(SimulatorGateway):
    """The acquirer approves (and remembers it); then this process is killed before it can record anything."""

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        result = super().authorize(request)
        os.kill(os.getpid(), signal.SIGKILL)
        return result
