"""The papers' claims beside our results (issue 14): the claims as data (:mod:`.papers`), the summary each
reproduced experiment hands over and the measures read from it (:mod:`.summary`), and the table written as
results.md and as a section of the report page (:mod:`.table`).

Use (the reproduce driver)::

    write_summary(out / "moxi" / "curves" / "summary.json", summary)  # after each experiment
    summaries, commands = read_summaries(out, "moxi")                 # later, without a model
    rows = claims_table("moxi", summaries, commands, deviations)      # deviations=None: the papers' list
    write_results_md(out / "moxi" / "results.md", rows, {"clearsight": __version__})
    section = claims_html(rows)                                       # for the report page
"""

from .papers import (
    CLAIMS,
    DEVIATIONS,
    EXPERIMENTS,
    Check,
    Claim,
    ClaimError,
    check_paper,
    claims_of,
    format_value,
)
from .summary import MEASURES, NotMeasured, jsonable, read_summaries, read_summary, value_at, write_summary
from .table import Row, claim_row, claims_html, claims_table, results_markdown, write_results_md

__all__ = [
    "CLAIMS", "DEVIATIONS", "EXPERIMENTS", "MEASURES", "Check", "Claim", "ClaimError", "NotMeasured", "Row",
    "check_paper", "claim_row", "claims_html", "claims_of", "claims_table", "format_value", "results_markdown",
    "jsonable", "read_summaries", "read_summary", "value_at", "write_results_md", "write_summary",
]
