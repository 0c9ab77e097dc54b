"""Why a row is quarantined: every reason's wording, written once.

A reason starts with the canonical column it is about; `{}` marks the values a rule fills in
(with `pl.format`). The offending value, where a reason shows one, is quoted (`'...'`) or
follows `got`, so that `schemas.validation.reason_category` can count reasons without it.
"""

from __future__ import annotations

from typing import Final

# values that cannot be read (staging.parse): the column (with its input header), the kind
# of value, the raw value
UNREADABLE: Final = "{}: cannot read as a {} (got '{}')"

# records the reader cannot take as they stand (flows.io.readers): fields found, expected
WRONG_FIELD_COUNT: Final = "row: wrong number of fields (got '{} fields where the header has {}')"
# a record holding bytes its file's encoding does not read: the encoding, the value (each
# such byte shown as U+FFFD)
UNDECODABLE: Final = "row: holds bytes that are not {} text (got '{}')"

# values read, but not believable (staging.parse): the column, the separators, the value
SEPARATORS: Final = (
    '{}: separators that do not fit [source.parse] decimal = "{}", thousands = "{}" (got \'{}\')'
)
NOT_FINITE: Final = "{}: too large to be a number (got '{}')"
# a date before [source.parse] earliest_date, or after the export's date plus
# latest_after_export_days: the column, the bound it passes (and its setting), the value
IMPLAUSIBLE_DATE: Final = "{}: outside the dates an export can hold, {} (got '{}')"

# the pandera models' checks (schemas.validation): the column, and the value
MISSING_REQUIRED: Final = "{}: missing (required)"
REPEATED_ID: Final = "{}: '{}' appears more than once (every copy quarantined)"
NOT_ALLOWED: Final = "{}: '{}' is not an allowed value"
NEGATIVE: Final = "{}: negative value (got '{}')"
FAILS_CHECK: Final = "{}: fails {} (got '{}')"  # the column, the check, the value
CLOSED_BEFORE_CREATED: Final = "closed_at: before created_at"
LOST_WITHOUT_CLOSE: Final = "closed_at: missing for a lost deal"

# row rules that need the funnel or another table (staging.rules)
OPEN_IN_WON_STAGE: Final = "status: 'open' but the stage '{}' is a won stage"
STAGE_SAID_LOST: Final = "status: '{}' but the export's stage says the deal was lost"
WON_WITHOUT_CLOSE: Final = "closed_at: missing for a won deal, and no entry into the won stage"
PARENT_QUARANTINED: Final = "opportunity_id: '{}' is quarantined in opportunities"
PARENT_UNKNOWN: Final = "opportunity_id: '{}' is not in opportunities"
ENTRY_AFTER_LOSS: Final = "entered_at: after the deal was lost (closed_at)"
ENTRY_BEFORE_CREATED: Final = "entered_at: before its deal was created (created_at)"
# dated snapshots (flows.io.exports): a deal already won or lost in the first snapshot it is
# seen in, with no close date in any snapshot: closed, at a date nothing tells
CLOSED_DATE_UNKNOWN: Final = (
    "closed_at: closed, date unknown (already closed when first seen in the snapshots, "
    "and no close date in any of them)"
)

# rows kept but changed, listed in data_quality.<table>.notes
CREATED_MOVED_BACK: Final = "created_at moved back to closed_at (closed before created)"
