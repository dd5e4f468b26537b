"""The overseer: the harness's watch on a running agent, outside the agent's reach. It follows the attempt's
events and the gateway's ledger of its calls into a window, runs cheap detectors on it, has its model review it
through the gateway on an account of its own, and acts through the agent contract's inbox."""
