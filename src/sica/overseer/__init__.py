"""The overseer: the harness's watch on a running agent, outside the agent's reach. It follows the attempt's
events and the gateway's ledger of its calls into a window (`follow`), runs cheap detectors on it (`detectors`),
has its model review it through the gateway on an account of its own (`judgement`), and acts through the agent
contract's inbox, recording every finding, judgement and action beside the agent's events (`Overseer`)."""

from sica.overseer.detectors import Finding, detect
from sica.overseer.follow import AttemptFollower
from sica.overseer.judgement import Judgement, Reviewer, ReviewModel, ReviewOutcome
from sica.overseer.ledger_view import LedgerView
from sica.overseer.overseer import Overseer
from sica.overseer.record import OverseerRecord
from sica.overseer.window import Limits, Window

__all__ = [
    "AttemptFollower",
    "Finding",
    "Judgement",
    "LedgerView",
    "Limits",
    "Overseer",
    "OverseerRecord",
    "ReviewModel",
    "ReviewOutcome",
    "Reviewer",
    "Window",
    "detect",
]
