"""The core figures of a period computed with DuckDB SQL from a canonical export: an
independent oracle of the project's own (polars) figures, and the benchmark's yardstick.

`core_figures(folder, period, settings)` reads `opportunities.csv`, `stage_history.csv` and
`followups.csv` with DuckDB and computes, in SQL only, what `benchmarks.benchmark`'s
`project_core_figures` computes with the project's functions, in the same shape (keys as in
metrics.json): the deal states at the period end (count and amount by state), `funnel`,
`conversion`, `dwell` (Kaplan-Meier median included), `stalls`, `forecast` (stage win
probabilities, p-bar and the stage-weighted pipeline) and `kpis`, plus `rows`, the rows of each
table the figures rest on.

The SQL follows docs/metrics.md and the rules of `transforms.intermediate`: the staging rules that
change values of clean rows (status from the stage when empty, a deal exported as lost keeps
the last open stage of its history, a lost deal's close time from its history's loss row, an
open deal has no close time), the row rules that are cheap to state (duplicate ids, deals
closed before created, lost without a close time, won without a date of winning, open in a won
stage, negative amounts, history or follow-ups of an unknown opportunity, history entries into
another stage after the loss) and then one statement per derived table (stage entries, deal
states, stage reaches, stage visits) and one query per figure. It does not parse values as
people type them: the export must be the canonical layout (stage ids, open/won/lost, ISO 8601
timestamps, plain decimal amounts), as `funnel generate` writes it; a value DuckDB cannot read
stops it with DuckDB's error. Timestamps with an offset are instants; without one they are
read in the configured time zone (DuckDB's own rule for local times that do not exist). Text
is trimmed as staging trims it, but phone numbers and email addresses inside it are not masked
(`transforms.staging.masking`): the stalled deals' names and reasons would differ if they held
any (generated exports hold none).
"""

from __future__ import annotations

import csv
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.periods import Period

# Unicode White_Space, which polars' strip_chars() trims (DuckDB's trim() only trims spaces)
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_instant(value: datetime) -> str:
    return f"TIMESTAMPTZ {sql_text(value.isoformat())}"


def sql_date(value: date) -> str:
    return f"DATE {sql_text(value.isoformat())}"


def read_csv(path: Path, columns: tuple[str, ...]) -> str:
    """`columns` of a canonical CSV file (UTF-8, comma-separated, quoted with "), as text:
    values are typed (and trimmed) in the query that reads them; a column the file lacks is
    NULL. The header is read here: DuckDB's dialect sniffer costs more than reading a small
    file."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        header = next(csv.reader(file))
    types = ", ".join(f"{sql_text(name)}: 'VARCHAR'" for name in header)
    values = ", ".join(
        sql_identifier(c) if c in header else f"CAST(NULL AS VARCHAR) AS {sql_identifier(c)}"
        for c in columns
    )
    return (
        f"(SELECT {values} FROM read_csv({sql_text(str(path))}, auto_detect = false, "
        f"header = true, delim = ',', quote = '\"', escape = '\"', columns = {{{types}}}))"
    )


def settings_sql(period: Period, settings: RunSettings) -> list[str]:
    """The run's settings as macros and a `stages` table: the queries name them, not values."""
    funnel = settings.funnel
    window_start = period.window_start(settings.window_months)
    next_period = period.shifted(1)
    stall = ", ".join("NULL" if s.stall_days is None else str(s.stall_days) for s in funnel.stages)
    whitespace = sql_text(WHITESPACE)
    return [
        f"SET TimeZone = {sql_text(settings.timezone)}",
        f"CREATE TEMP MACRO period_start() AS {sql_instant(period.start)}",
        f"CREATE TEMP MACRO as_of() AS {sql_instant(period.end)}",
        f"CREATE TEMP MACRO window_start() AS {sql_instant(window_start)}",
        f"CREATE TEMP MACRO next_period_start() AS {sql_date(next_period.start_date)}",
        f"CREATE TEMP MACRO next_period_end() AS {sql_date(next_period.end_date)}",
        f"CREATE TEMP MACRO won_index() AS {funnel.won_index}",
        f"CREATE TEMP MACRO first_stage() AS {sql_text(funnel.ids[0])}",
        f"CREATE TEMP MACRO won_stage() AS {sql_text(funnel.won_stage)}",
        f"CREATE TEMP MACRO smoothing() AS CAST({settings.smoothing_strength!r} AS DOUBLE)",
        f"CREATE TEMP MACRO min_resolved() AS {settings.min_resolved_for_p_win}",
        f"CREATE TEMP MACRO immature_share() AS CAST({settings.immature_open_share!r} AS DOUBLE)",
        f"CREATE TEMP MACRO closed_before_created_kept() AS "
        f"{'true' if settings.parse.closed_before_created == 'keep' else 'false'}",
        f"CREATE TEMP MACRO whitespace() AS {whitespace}",
        # trimmed text, empty or whitespace-only as NULL (staging's blank_to_null); trimming a
        # set of characters is slow, so only text that starts or ends with one is trimmed
        "CREATE TEMP MACRO text_value(s) AS CASE "
        "WHEN contains(whitespace(), left(s, 1)) OR contains(whitespace(), right(s, 1)) "
        "THEN nullif(trim(s, whitespace()), '') ELSE s END",
        # a date, time or number to cast, NULL when empty (casts skip spaces and tabs around it)
        "CREATE TEMP MACRO castable(s) AS nullif(trim(s), '')",
        # (t2 - t1) in seconds / 86400, as polars computes it: whole microseconds, then divided
        "CREATE TEMP MACRO days_between(t1, t2) AS "
        "CAST(epoch_us(t2) - epoch_us(t1) AS DOUBLE) / 86400000000.0",
        f"""CREATE TEMP TABLE stages AS
        SELECT
            unnest([{", ".join(sql_text(i) for i in funnel.ids)}]) AS stage,
            unnest(range({len(funnel.ids)})) AS stage_index,
            unnest([{stall}]::INTEGER[]) AS stall_days""",
        "CREATE TEMP MACRO is_open_stage(i) AS i < won_index()",
        "CREATE TEMP MACRO is_won_stage(s) AS "
        "s IN (SELECT stage FROM stages WHERE stage_index >= won_index())",
    ]


OPPORTUNITY_COLUMNS = (
    "opportunity_id",
    "stage",
    "status",
    "created_at",
    "stage_entered_at",
    "closed_at",
    "amount",
    "expected_close_date",
    "customer_name",
    "owner",
    "stall_reason",
)


def inputs_sql(folder: Path, *, history_available: bool) -> list[str]:
    """The three exports, typed; the staging rules that change values; the row rules."""
    history_source = (
        read_csv(
            folder / "stage_history.csv",
            ("opportunity_id", "stage", "entered_at", "amount", "expected_close_date"),
        )
        if history_available
        else "(SELECT NULL AS opportunity_id, NULL AS stage, NULL AS entered_at, "
        "NULL AS amount, NULL AS expected_close_date LIMIT 0)"
    )
    return [
        # stage history as written, in file order (a table keeps its rows' order: rowid)
        f"""CREATE TEMP TABLE stage_history_read AS
        SELECT
            text_value(opportunity_id) AS opportunity_id,
            text_value(stage) AS stage,
            CAST(castable(entered_at) AS TIMESTAMPTZ) AS entered_at,
            CAST(castable(amount) AS DOUBLE) AS amount,
            CAST(castable(expected_close_date) AS DATE) AS expected_close_date
        FROM {history_source}""",
        f"""CREATE TEMP TABLE opportunities AS
        WITH exported AS (
            SELECT
                text_value(opportunity_id) AS opportunity_id,
                text_value(stage) AS stage,
                lower(text_value(status)) AS status,
                CAST(castable(created_at) AS TIMESTAMPTZ) AS created_at,
                CAST(castable(stage_entered_at) AS TIMESTAMPTZ) AS stage_entered_at,
                CAST(castable(closed_at) AS TIMESTAMPTZ) AS closed_at,
                CAST(castable(amount) AS DOUBLE) AS amount,
                CAST(castable(expected_close_date) AS DATE) AS expected_close_date,
                text_value(customer_name) AS customer_name,
                text_value(owner) AS owner,
                text_value(stall_reason) AS stall_reason
            FROM {read_csv(folder / "opportunities.csv", OPPORTUNITY_COLUMNS)}
        ),
        -- a deal exported as lost is lost from the last open stage its history shows
        last_open_stage AS (
            SELECT h.opportunity_id, arg_max(h.stage, (h.entered_at, s.stage_index)) AS stage
            FROM stage_history_read h JOIN stages s USING (stage)
            WHERE is_open_stage(s.stage_index) AND h.entered_at IS NOT NULL
                AND h.opportunity_id IN (SELECT opportunity_id FROM exported WHERE stage = 'lost')
            GROUP BY h.opportunity_id
        ),
        outcome AS (
            SELECT
                r.* REPLACE (
                    CASE WHEN r.stage = 'lost' THEN coalesce(l.stage, first_stage())
                        ELSE r.stage END AS stage,
                    coalesce(
                        r.status,
                        CASE WHEN r.stage = 'lost' THEN 'lost'
                            WHEN is_won_stage(r.stage) THEN 'won' ELSE 'open' END
                    ) AS status
                )
            FROM exported r LEFT JOIN last_open_stage l USING (opportunity_id)
        ),
        -- a lost deal whose close time is missing or before its last stage entry is lost at
        -- the first loss row of its history from that entry on
        last_entry AS (
            SELECT opportunity_id, max(entered_at) AS last_entered_at
            FROM stage_history_read
            WHERE stage <> 'lost' AND entered_at IS NOT NULL AND opportunity_id IN (
                SELECT opportunity_id FROM stage_history_read WHERE stage = 'lost'
            )
            GROUP BY opportunity_id
        ),
        loss_row AS (
            SELECT h.opportunity_id, min(h.entered_at) AS lost_at, any_value(e.last_entered_at)
                AS last_entered_at
            FROM stage_history_read h LEFT JOIN last_entry e USING (opportunity_id)
            WHERE h.stage = 'lost' AND h.entered_at IS NOT NULL
                AND (e.last_entered_at IS NULL OR h.entered_at >= e.last_entered_at)
            GROUP BY h.opportunity_id
        ),
        closed AS (
            SELECT
                o.* REPLACE (
                    CASE
                        WHEN o.status = 'lost' AND NOT (
                            o.closed_at IS NOT NULL
                            AND (l.last_entered_at IS NULL OR o.closed_at >= l.last_entered_at)
                        ) THEN coalesce(l.lost_at, o.closed_at)
                        ELSE o.closed_at
                    END AS closed_at
                )
            FROM outcome o LEFT JOIN loss_row l USING (opportunity_id)
        ),
        -- an open deal has no close time (CRMs put the expected one there); a close date
        -- without a time on the day the deal was created closes it at its creation
        settled AS (
            SELECT
                * REPLACE (
                    CASE WHEN status <> 'open' THEN
                        CASE WHEN closed_at < created_at
                            AND closed_at = date_trunc('day', created_at)
                        THEN created_at ELSE closed_at END
                    END AS closed_at
                ),
                status <> 'open' AND closed_at < created_at
                    AND closed_at <> date_trunc('day', created_at) AS is_closed_before_created
            FROM closed
        ),
        kept AS (
            SELECT * EXCLUDE (is_closed_before_created) REPLACE (
                CASE WHEN is_closed_before_created AND closed_before_created_kept()
                    THEN closed_at ELSE created_at END AS created_at
            )
            FROM settled
            WHERE closed_before_created_kept() OR NOT coalesce(is_closed_before_created, false)
        ),
        won_entry AS (
            SELECT DISTINCT opportunity_id FROM stage_history_read
            WHERE is_won_stage(stage) AND entered_at IS NOT NULL
        )
        -- the row rules: what the project quarantines among rows it can read
        SELECT k.* FROM kept k
        WHERE k.opportunity_id IS NOT NULL AND k.created_at IS NOT NULL
            AND k.stage IN (SELECT stage FROM stages)
            AND k.status IN ('open', 'won', 'lost')
            AND (k.amount IS NULL OR k.amount >= 0)
            AND NOT (k.status = 'open' AND is_won_stage(k.stage))
            AND NOT (k.status = 'lost' AND k.closed_at IS NULL)
            AND NOT (
                k.status = 'won' AND k.closed_at IS NULL
                AND (k.stage_entered_at IS NULL OR NOT is_won_stage(k.stage))
                AND k.opportunity_id NOT IN (SELECT opportunity_id FROM won_entry)
            )
            AND k.opportunity_id NOT IN (
                SELECT opportunity_id FROM exported GROUP BY opportunity_id HAVING count(*) > 1
            )""",
        # history rows of valid deals, except entries into another stage after the loss; the
        # rows as read are not needed any more
        """CREATE TEMP TABLE stage_history AS
        SELECT h.rowid AS file_row, h.*
        FROM stage_history_read h JOIN opportunities o USING (opportunity_id)
        WHERE h.entered_at IS NOT NULL
            AND (h.stage = 'lost' OR h.stage IN (SELECT stage FROM stages))
            AND (h.amount IS NULL OR h.amount >= 0)
            AND NOT (
                o.status = 'lost' AND h.entered_at > o.closed_at
                AND h.stage <> o.stage AND h.stage <> 'lost'
            )""",
        "DROP TABLE stage_history_read",
    ]


DERIVED_SQL = [
    # Stage entries: a deal's history rows (but its loss), else entries from its own fields;
    # in order by time, then stage, then file order; a row repeating the stage the deal is
    # already in is no stage change
    """CREATE TEMP TABLE stage_entries AS
    WITH from_history AS (
        SELECT opportunity_id, stage, entered_at, amount, expected_close_date, file_row
        FROM stage_history
        WHERE stage <> 'lost'
    ),
    without_history AS (
        SELECT * FROM opportunities
        WHERE opportunity_id NOT IN (SELECT opportunity_id FROM from_history)
    ),
    from_fields AS (
        SELECT DISTINCT opportunity_id, stage, entered_at FROM (
            SELECT opportunity_id, first_stage() AS stage, created_at AS entered_at
            FROM without_history
            UNION ALL
            SELECT opportunity_id, won_stage(), closed_at
            FROM without_history
            WHERE status = 'won' AND closed_at IS NOT NULL
            UNION ALL
            SELECT opportunity_id, stage, coalesce(
                stage_entered_at,
                CASE WHEN status = 'won' AND is_won_stage(stage) THEN closed_at END,
                created_at
            )
            FROM without_history
        )
    ),
    entries AS (
        SELECT * FROM from_history
        UNION ALL BY NAME
        SELECT * FROM from_fields
    )
    SELECT
        e.opportunity_id, e.stage, s.stage_index, e.entered_at, e.amount,
        e.expected_close_date,
        row_number() OVER deal AS entry_number,
        coalesce(lag(e.stage) OVER deal <> e.stage, true) AS is_stage_change
    FROM entries e JOIN stages s USING (stage)
    WINDOW deal AS (PARTITION BY e.opportunity_id ORDER BY e.entered_at, s.stage_index, e.file_row)
    """,
    # Deal states at as_of: deals created before it; won if they reached the won stage before
    # it (unless a later loss reversed the win), lost if lost and closed before it, else open
    """CREATE TEMP TABLE deal_states AS
    WITH reached AS (
        SELECT
            opportunity_id,
            min(entered_at) FILTER (WHERE stage_index >= won_index()) AS won_at,
            arg_max(stage, entry_number) FILTER (WHERE is_stage_change) AS stage_at,
            arg_max(entered_at, entry_number) FILTER (WHERE is_stage_change)
                AS stage_entered_at_as_of,
            arg_max(amount, entry_number) FILTER (WHERE amount IS NOT NULL) AS history_amount,
            arg_max(expected_close_date, entry_number)
                FILTER (WHERE expected_close_date IS NOT NULL) AS history_expected_close_date
        FROM stage_entries
        WHERE entered_at < as_of()
        GROUP BY opportunity_id
    ),
    known AS (
        SELECT
            o.*, r.won_at, r.stage_at, r.stage_entered_at_as_of, r.history_amount,
            r.history_expected_close_date,
            o.status = 'lost' AND o.closed_at < as_of() AS is_lost
        FROM opportunities o LEFT JOIN reached r USING (opportunity_id)
        WHERE o.created_at < as_of()
    ),
    stated AS (
        SELECT
            *,
            CASE
                WHEN won_at IS NOT NULL AND NOT coalesce(is_lost AND closed_at >= won_at, false)
                    THEN 'won'
                WHEN is_lost THEN 'lost'
                ELSE 'open'
            END AS state
        FROM known
    )
    SELECT
        opportunity_id, state, created_at, won_at, closed_at, owner, customer_name,
        stall_reason,
        coalesce(stage_at, first_stage()) AS stage_at,
        coalesce(stage_entered_at_as_of, created_at) AS stage_entered_at_as_of,
        coalesce(history_amount, amount) AS amount_at,
        coalesce(history_expected_close_date, expected_close_date) AS expected_close_date_at,
        CASE state WHEN 'won' THEN won_at WHEN 'lost' THEN closed_at END AS resolved_at
    FROM stated
    """,
    # Stage reaches at as_of: first_reach(o, k), the first entry into k or any later stage
    """CREATE TEMP TABLE stage_reaches AS
    WITH first_entries AS (
        SELECT opportunity_id, stage_index, min(entered_at) AS first_entered_at
        FROM stage_entries
        WHERE entered_at < as_of()
            AND opportunity_id IN (SELECT opportunity_id FROM deal_states)
        GROUP BY opportunity_id, stage_index
    )
    SELECT f.opportunity_id, s.stage, s.stage_index, min(f.first_entered_at) AS reached_at
    FROM first_entries f JOIN stages s ON f.stage_index >= s.stage_index
    GROUP BY f.opportunity_id, s.stage, s.stage_index
    """,
    # Stage visits at as_of: from a stage change to the next one, or to the loss
    """CREATE TEMP TABLE stage_visits AS
    WITH changes AS (
        SELECT
            e.opportunity_id, e.stage, e.stage_index, e.entered_at AS started_at,
            lead(e.entered_at) OVER deal AS next_entered_at,
            lead(e.stage_index) OVER deal AS next_stage_index,
            CASE WHEN d.state = 'lost' THEN d.closed_at END AS lost_at
        FROM stage_entries e JOIN deal_states d USING (opportunity_id)
        WHERE e.entered_at < as_of() AND e.is_stage_change
        WINDOW deal AS (PARTITION BY e.opportunity_id ORDER BY e.entry_number)
    ),
    ended AS (
        SELECT
            opportunity_id, stage, stage_index, started_at,
            CASE
                WHEN next_stage_index > stage_index THEN 'forward'
                WHEN next_stage_index IS NOT NULL THEN 'back'
                WHEN lost_at IS NOT NULL THEN 'lost'
                ELSE 'open'
            END AS outcome,
            coalesce(
                next_entered_at,
                CASE WHEN lost_at IS NOT NULL THEN greatest(lost_at, started_at) END
            ) AS ended_at
        FROM changes
    )
    SELECT
        *,
        ended_at IS NULL AS is_open,
        days_between(started_at, coalesce(ended_at, as_of())) AS days
    FROM ended
    """,
]


ROWS_SQL = {
    "opportunities": "SELECT count(*) FROM opportunities",
    "stage_history": "SELECT count(*) FROM stage_history",
}

DEAL_STATES_SQL = """
SELECT state, count(*) AS count, coalesce(sum(amount_at), 0::DOUBLE) AS amount_at
FROM deal_states
GROUP BY state
ORDER BY state
"""

FUNNEL_SQL = """
SELECT
    s.stage,
    count(d.opportunity_id) AS count,
    coalesce(sum(d.amount_at), 0::DOUBLE) AS amount
FROM stages s LEFT JOIN deal_states d ON d.stage_at = s.stage AND d.state = 'open'
WHERE is_open_stage(s.stage_index)
GROUP BY s.stage, s.stage_index
ORDER BY s.stage_index
"""

CONVERSION_SQL = """
WITH reach_outcomes AS (
    SELECT
        r.stage_index, r.reached_at, d.state,
        -- a deal's reaches are the stages 0..k: any later one means it reached the next
        r.stage_index < max(r.stage_index) OVER (PARTITION BY r.opportunity_id) AS reached_next,
        r.reached_at >= window_start() AND r.reached_at < as_of() AS in_cohort
    FROM stage_reaches r JOIN deal_states d USING (opportunity_id)
),
counts AS (
    SELECT
        s.stage, s.stage_index,
        count(*) FILTER (WHERE r.reached_at >= period_start() AND r.reached_at < as_of())
            AS entries,
        count(*) FILTER (WHERE r.in_cohort) AS cohort_size,
        count(*) FILTER (WHERE r.in_cohort AND r.reached_next) AS advanced,
        count(*) FILTER (WHERE r.in_cohort AND NOT r.reached_next AND r.state = 'lost') AS lost
    FROM stages s LEFT JOIN reach_outcomes r USING (stage_index)
    GROUP BY s.stage, s.stage_index
),
steps AS (
    SELECT
        stage AS "from",
        lead(stage) OVER stage_order AS "to",
        stage_index,
        entries AS entries_from,
        lead(entries) OVER stage_order AS entries_to,
        cohort_size, lead(cohort_size) OVER stage_order AS cohort_size_to, advanced, lost,
        cohort_size - advanced - lost AS open
    FROM counts
    WINDOW stage_order AS (ORDER BY stage_index)
)
SELECT
    "from", "to", entries_from, entries_to,
    CASE WHEN entries_from > 0 THEN entries_to / entries_from END AS flow_rate,
    cohort_size, cohort_size_to, advanced, lost, open,
    CASE WHEN cohort_size > 0 THEN advanced / cohort_size END AS cohort_rate,
    CASE WHEN is_open_stage(stage_index) AND advanced + lost > 0
        THEN advanced / (advanced + lost) END AS resolved_rate,
    coalesce(cohort_size > 0 AND open / cohort_size > immature_share(), false) AS is_immature
FROM steps
WHERE "to" IS NOT NULL
ORDER BY stage_index
"""


def dwell_sql(open_stages: list[str]) -> str:
    """Dwell per open stage over the visits completed in W and those open at as_of, with the
    Kaplan-Meier median over both (open visits censored at as_of).

    KM survival is a running product over each stage's distinct lengths in order. polars
    multiplies in order (cum_prod); DuckDB's windowed product over a partition combines partial
    products in a tree, which differs in the last bits, so a survival of exactly 0.5 could pick
    the neighbouring length. A window with no partition over rows in order runs as DuckDB's
    streaming window, which multiplies in order: one per stage.
    """
    survival = "\n    UNION ALL\n".join(
        f"""    SELECT stage, days, product(factor) OVER (
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS survival
    FROM (SELECT * FROM km_steps WHERE stage = {sql_text(stage)} ORDER BY days)"""
        for stage in open_stages
    )
    return f"""
WITH relevant AS MATERIALIZED (
    SELECT v.stage, v.days, v.is_open
    FROM stage_visits v JOIN stages s USING (stage)
    WHERE is_open_stage(s.stage_index) AND (v.is_open OR v.ended_at >= window_start())
),
figures AS (
    SELECT
        stage,
        count(*) FILTER (WHERE NOT is_open) AS completed_visits,
        avg(days) FILTER (WHERE NOT is_open) AS mean_days,
        median(days) FILTER (WHERE NOT is_open) AS median_days,
        quantile_cont(days, 0.25) FILTER (WHERE NOT is_open) AS p25_days,
        quantile_cont(days, 0.75) FILTER (WHERE NOT is_open) AS p75_days,
        quantile_cont(days, 0.9) FILTER (WHERE NOT is_open) AS p90_days,
        count(*) FILTER (WHERE is_open) AS open_visits,
        median(days) FILTER (WHERE is_open) AS open_median_age_days
    FROM relevant
    GROUP BY stage
),
lengths AS (
    SELECT stage, days, count(*) FILTER (WHERE NOT is_open) AS events, count(*) AS n
    FROM relevant
    GROUP BY stage, days
),
km_steps AS MATERIALIZED (
    -- at risk at length t: the visits at least t long
    SELECT
        stage, days,
        1 - events / sum(n) OVER (PARTITION BY stage ORDER BY days DESC) AS factor
    FROM lengths
),
survival AS (
{survival}
),
km AS (
    SELECT stage, min(days) FILTER (WHERE survival <= 0.5) AS km_median_days
    FROM survival
    GROUP BY stage
)
SELECT
    s.stage,
    coalesce(f.completed_visits, 0) AS completed_visits,
    f.mean_days, f.median_days, f.p25_days, f.p75_days, f.p90_days,
    coalesce(f.open_visits, 0) AS open_visits,
    f.open_median_age_days,
    km.km_median_days
FROM stages s LEFT JOIN figures f USING (stage) LEFT JOIN km USING (stage)
WHERE is_open_stage(s.stage_index)
ORDER BY s.stage_index
"""


STALLED_SQL = """
CREATE TEMP TABLE stalled_deals AS
SELECT
    d.*,
    days_between(d.stage_entered_at_as_of, as_of()) AS days_in_stage,
    d.stall_reason IS NULL AS is_missing_reason
FROM deal_states d JOIN stages s ON s.stage = d.stage_at
WHERE d.state = 'open' AND s.stall_days IS NOT NULL
    AND days_between(d.stage_entered_at_as_of, as_of()) > s.stall_days
"""

STALLS_SQL = """
SELECT
    count(*) AS stalled_count,
    coalesce(sum(amount_at), 0::DOUBLE) AS stalled_amount,
    count(*) FILTER (WHERE is_missing_reason) AS missing_reason_count,
    CASE WHEN count(*) > 0
        THEN 1 - count(*) FILTER (WHERE is_missing_reason) / count(*) END AS compliance_rate
FROM stalled_deals
"""

STALL_REASONS_SQL = """
SELECT stall_reason AS reason, count(*) AS count, coalesce(sum(amount_at), 0::DOUBLE) AS amount
FROM stalled_deals
WHERE NOT is_missing_reason
GROUP BY stall_reason
ORDER BY count DESC, round(amount, 6) DESC, reason
"""

STALLS_BY_OWNER_SQL = """
SELECT
    coalesce(owner, '—') AS owner,
    count(*) AS stalled,
    count(*) FILTER (WHERE is_missing_reason) AS missing_reason,
    1 - count(*) FILTER (WHERE is_missing_reason) / count(*) AS compliance_rate
FROM stalled_deals
GROUP BY coalesce(owner, '—')
ORDER BY missing_reason DESC, stalled DESC, owner
"""

LONGEST_STALLED_SQL = """
SELECT
    opportunity_id, customer_name, owner, stage_at AS stage, days_in_stage,
    amount_at AS amount, stall_reason
FROM stalled_deals
ORDER BY round(days_in_stage, 6) DESC, opportunity_id
LIMIT 15
"""

# Win probability from each open stage, smoothed toward p-bar over the deals resolved in W
PROBABILITIES_SQL = """
CREATE TEMP TABLE stage_probabilities AS
WITH resolved AS (
    SELECT opportunity_id, state FROM deal_states
    WHERE state IN ('won', 'lost') AND resolved_at >= window_start()
),
overall AS (
    SELECT
        count(*) AS resolved_in_window,
        CASE WHEN count(*) > 0 THEN count(*) FILTER (WHERE state = 'won') / count(*) END
            AS p_bar
    FROM resolved
),
counts AS (
    SELECT
        r.stage,
        count(*) FILTER (WHERE d.state = 'won') AS won,
        count(*) FILTER (WHERE d.state = 'lost') AS lost
    FROM stage_reaches r JOIN resolved d USING (opportunity_id)
    GROUP BY r.stage
),
filled AS (
    SELECT s.stage, s.stage_index, coalesce(c.won, 0) AS won, coalesce(c.lost, 0) AS lost
    FROM stages s LEFT JOIN counts c USING (stage)
    WHERE is_open_stage(s.stage_index)
)
SELECT
    f.stage, f.stage_index, f.won, f.lost,
    (f.won + smoothing() * o.p_bar) / (f.won + f.lost + smoothing()) AS p_win,
    o.p_bar IS NULL OR f.won + f.lost < min_resolved() AS insufficient_history,
    o.p_bar, o.resolved_in_window
FROM filled f CROSS JOIN overall o
"""

WEIGHTED_SQL = """
CREATE TEMP TABLE weighted_open_deals AS
SELECT d.*, p.p_win, d.amount_at * p.p_win AS weighted_amount
FROM deal_states d LEFT JOIN stage_probabilities p ON p.stage = d.stage_at
WHERE d.state = 'open'
"""

PIPELINE_SQL = """
WITH known AS (
    SELECT count(*) FILTER (WHERE p_win IS NULL) = 0 AS probabilities_known
    FROM stage_probabilities
)
SELECT
    CASE WHEN any_value(k.probabilities_known)
        THEN coalesce(sum(w.weighted_amount), 0::DOUBLE) END AS weighted_pipeline,
    CASE WHEN any_value(k.probabilities_known)
        THEN coalesce(sum(w.weighted_amount) FILTER (
            WHERE w.expected_close_date_at >= next_period_start()
                AND w.expected_close_date_at < next_period_end()
        ), 0::DOUBLE) END AS stage_weighted_next_period,
    count(w.opportunity_id) FILTER (WHERE w.amount_at IS NULL) AS unpriced_count
FROM known k LEFT JOIN weighted_open_deals w ON true
"""

PIPELINE_BY_STAGE_SQL = """
WITH known AS (
    SELECT count(*) FILTER (WHERE p_win IS NULL) = 0 AS probabilities_known
    FROM stage_probabilities
)
SELECT
    s.stage,
    count(w.opportunity_id) AS open_count,
    coalesce(sum(w.amount_at), 0::DOUBLE) AS open_amount,
    CASE WHEN any_value(k.probabilities_known)
        THEN coalesce(sum(w.weighted_amount), 0::DOUBLE) END AS weighted_amount
FROM stages s
    CROSS JOIN known k
    LEFT JOIN weighted_open_deals w ON w.stage_at = s.stage
WHERE is_open_stage(s.stage_index)
GROUP BY s.stage, s.stage_index
ORDER BY s.stage_index
"""

# Headline figures of [since, as_of): deals won (won_at) or lost (closed_at) in it
HEADLINE_MACRO_SQL = """
CREATE TEMP MACRO headline(since) AS TABLE
WITH marked AS (
    SELECT
        *,
        state = 'won' AND won_at >= since AND won_at < as_of() AS is_won,
        state = 'lost' AND closed_at >= since AND closed_at < as_of() AS is_lost
    FROM deal_states
)
SELECT
    count(*) FILTER (WHERE state = 'open') AS open_count,
    coalesce(sum(amount_at) FILTER (WHERE state = 'open'), 0::DOUBLE) AS open_amount,
    count(*) FILTER (WHERE is_won) AS won_count,
    coalesce(sum(amount_at) FILTER (WHERE is_won), 0::DOUBLE) AS won_amount,
    count(*) FILTER (WHERE is_lost) AS lost_count,
    CASE WHEN count(*) FILTER (WHERE is_won OR is_lost) > 0
        THEN count(*) FILTER (WHERE is_won) / count(*) FILTER (WHERE is_won OR is_lost)
    END AS win_rate,
    avg(amount_at) FILTER (WHERE is_won) AS avg_won_amount,
    median(days_between(created_at, won_at)) FILTER (WHERE is_won) AS median_cycle_days
FROM marked
"""

KPIS_SQL = """
SELECT
    p.*,
    CASE WHEN w.median_cycle_days > 0
        THEN p.open_count * w.win_rate * w.avg_won_amount / w.median_cycle_days
    END AS pipeline_velocity,
    w.won_count AS window_won_count,
    w.lost_count AS window_lost_count,
    w.win_rate AS window_win_rate,
    w.avg_won_amount AS window_avg_won_amount,
    w.median_cycle_days AS window_median_cycle_days
FROM headline(period_start()) p CROSS JOIN headline(window_start()) w
"""


def records(con: Any, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def record(con: Any, sql: str) -> dict[str, Any]:
    (row,) = records(con, sql)
    return row


def core_figures(
    folder: Path,
    period: Period,
    settings: RunSettings,
    *,
    threads: int | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The core figures of `period` from the canonical export in `folder`, computed in DuckDB
    SQL, keyed as metrics.json (see the module's docstring). `threads`: DuckDB's threads (its
    default: every core); `timings` receives the seconds of `read` (the three files read,
    typed and checked) and `compute` (the derived tables and the figures)."""
    import duckdb

    folder = Path(folder)
    history_available = (folder / "stage_history.csv").exists()
    followups = folder / "followups.csv"
    timings = {} if timings is None else timings
    started = time.perf_counter()
    # no progress bar: it writes to stdout, which the benchmark reads
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        for statement in [
            *settings_sql(period, settings),
            *inputs_sql(folder, history_available=history_available),
        ]:
            con.execute(statement)
        rows = {name: con.execute(sql).fetchone()[0] for name, sql in ROWS_SQL.items()}
        if followups.exists():
            # no core figure reads follow-ups: their rows are read and checked, not kept
            rows["followups"] = con.execute(
                f"""SELECT count(*)
                FROM {read_csv(followups, ("opportunity_id", "occurred_at", "channel"))}
                WHERE text_value(opportunity_id) IN (SELECT opportunity_id FROM opportunities)
                    AND CAST(castable(occurred_at) AS TIMESTAMPTZ) IS NOT NULL
                    AND lower(text_value(channel)) IN
                        ('phone', 'meeting', 'email', 'visit', 'message', 'other')"""
            ).fetchone()[0]
        timings["read"] = time.perf_counter() - started
        started = time.perf_counter()
        for statement in [
            *DERIVED_SQL,
            STALLED_SQL,
            PROBABILITIES_SQL,
            WEIGHTED_SQL,
            HEADLINE_MACRO_SQL,
        ]:
            con.execute(statement)
        open_stages = settings.funnel.open_ids
        dwell = records(con, dwell_sql(open_stages))
        if not history_available:
            dwell = [{k: (v if k == "stage" else None) for k, v in r.items()} for r in dwell]
        probabilities = records(con, "SELECT * FROM stage_probabilities ORDER BY stage_index")
        overall = probabilities[0] if probabilities else {"p_bar": None, "resolved_in_window": 0}
        kpis = record(con, KPIS_SQL)
        window = {
            k.removeprefix("window_"): kpis.pop(k) for k in list(kpis) if k.startswith("window_")
        }
        figures = {
            "rows": rows,
            "deal_states": records(con, DEAL_STATES_SQL),
            "funnel": records(con, FUNNEL_SQL),
            "conversion": records(con, CONVERSION_SQL),
            "dwell": dwell,
            "stalls": {
                **record(con, STALLS_SQL),
                "reasons": records(con, STALL_REASONS_SQL),
                "by_owner": records(con, STALLS_BY_OWNER_SQL),
                "deals": records(con, LONGEST_STALLED_SQL),
            },
            "forecast": {
                "stage_probabilities": [
                    {k: p[k] for k in ("stage", "won", "lost", "p_win", "insufficient_history")}
                    for p in probabilities
                ],
                "p_bar": overall["p_bar"],
                "resolved_in_window": overall["resolved_in_window"],
                **record(con, PIPELINE_SQL),
                "by_stage": records(con, PIPELINE_BY_STAGE_SQL),
            },
            "kpis": {**kpis, "window": window},
        }
        timings["compute"] = time.perf_counter() - started
        return figures
    finally:
        con.close()
