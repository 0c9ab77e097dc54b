"""The project's vocabularies, each written down once: statuses and deal states, channels,
tables, export layouts, and the names of the bookkeeping columns that carry rows and reasons.

Everything else imports these; nothing here imports the rest of the project.
"""

from __future__ import annotations

from typing import Final

# an opportunity's status in an export, and a deal's state as of a date: the same three words
OPEN: Final = "open"
WON: Final = "won"
LOST: Final = "lost"
STATUSES: Final = (OPEN, WON, LOST)
RESOLVED: Final = (WON, LOST)

# how a stage visit ended: onward, back to an earlier stage, lost there, or not yet
FORWARD: Final = "forward"
BACK: Final = "back"
VISIT_OUTCOMES: Final = (FORWARD, BACK, LOST, OPEN)

CHANNELS: Final = ("phone", "meeting", "email", "visit", "message", "other")

# the CRM's own forecast categories (Salesforce ForecastCategoryName, HubSpot
# hs_forecast_category, Dynamics "Forecast category"), from the surest to the least
COMMIT: Final = "commit"
BEST_CASE: Final = "best_case"
PIPELINE: Final = "pipeline"
OMITTED: Final = "omitted"
CLOSED: Final = "closed"
FORECAST_CATEGORIES: Final = (COMMIT, BEST_CASE, PIPELINE, OMITTED, CLOSED)

# the canonical tables (README, "The canonical tables"); only opportunities must be present
OPPORTUNITIES: Final = "opportunities"
STAGE_HISTORY: Final = "stage_history"
FOLLOWUPS: Final = "followups"
TABLES: Final = (OPPORTUNITIES, STAGE_HISTORY, FOLLOWUPS)
# the id columns `[source.composite_ids]` may build from several headers, and their tables;
# the parts are trimmed and joined with a separator no CRM text holds (U+241F, spaced)
COMPOSITE_ID_TABLES: Final = {"opportunity_id": OPPORTUNITIES, "followup_id": FOLLOWUPS}
COMPOSITE_ID_COLUMNS: Final = tuple(COMPOSITE_ID_TABLES)
COMPOSITE_SEPARATOR: Final = " ␟ "

# export layouts: the data contract itself, then schemas/presets.toml, in detection order
CANONICAL: Final = "canonical"
PRESETS: Final = (CANONICAL, "template-zh", "salesforce", "hubspot", "pipedrive", "dynamics")
AUTO: Final = "auto"
CUSTOM: Final = "custom"
SOURCE_CHOICES: Final = (AUTO, *PRESETS, CUSTOM)

# how a deal closed before it was created is handled (`[source.parse] closed_before_created`)
QUARANTINE: Final = "quarantine"
KEEP: Final = "keep"
CLOSED_BEFORE_CREATED: Final = (QUARANTINE, KEEP)

DATE_ORDERS: Final = ("DMY", "MDY", "YMD")
LANGUAGES: Final = ("en", "zh")
# what a report folder may hold besides metrics.json and manifest.json ([report] outputs),
# and what a mail may carry of it ([delivery] attach)
REPORT_OUTPUTS: Final = ("pdf", "html", "xlsx", "parquet")
ATTACHMENTS: Final = ("pdf", "xlsx")

# staged rows carry `_row` (the row's number in its canonical table), `_line` and `_file`; the
# reasons their values could not be read are listed in this column, and joined in the
# quarantine files with this separator
PARSE_REASONS: Final = "_parse_reasons"
# why the reader could not take a record as it stands (a wrong number of fields), if it could not
READ_REASON: Final = "_read_reason"
REASON_SEPARATOR: Final = "; "

# the segment dimensions of docs/metrics.md, in report order
SEGMENT_DIMENSIONS: Final = ("owner", "source", "industry", "customer_size", "region")

# what became of each report of a backfill or a report set
WRITTEN, CURRENT, FAILED = "written", "current", "failed"
REPORT_STATUSES: Final = (WRITTEN, CURRENT, FAILED)
