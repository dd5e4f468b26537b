"""The LLM gateway: the one trusted way to reach any model, with budgets, a ledger, retries and key custody.

Start one in-process with `run_gateway`, open budget accounts on it with `Gateway.open_account`, and hand the
account tokens (never provider keys) to whoever makes calls.
"""

from sica.gateway.gateway import AccountHandle, Gateway
from sica.gateway.server import Listen, RunningGateway, run_gateway

__all__ = ["AccountHandle", "Gateway", "Listen", "RunningGateway", "run_gateway"]
