"""Contact data inside free text: phone numbers and email addresses masked before any figure
or report sees the text (README, "Reports"): `138****5678`, `a***@example.com`.

Contact columns never leave staging (`schemas.canonical.NOT_ANALYSED`); this catches what
people type into names, reasons and notes.
"""

from __future__ import annotations

import polars as pl

# (pattern, replacement): the regex engine has no look-around, so the characters either side of
# a number are captured and put back
CONTACT_PATTERNS = (
    # email: the first character of the local part stays, and the domain
    (r"([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)", "${1}***@${2}"),
    # international, with a leading +: the country code and the last four digits stay
    (r"\+(\d{1,3})[\d ()./-]{4,}(\d{4})", "+${1}****${2}"),
    # Chinese mobile numbers (11 digits from 13x to 19x, spaces or dashes allowed)
    (r"(^|[^\d])(1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})($|[^\d])", "${1}${2}****${3}${4}"),
    # North American style: (555) 123-4567, 555-123-4567, 555.123.4567
    (r"(^|[^\d])\(?\d{3}\)?[ .-]\d{3}[ .-](\d{4})($|[^\d])", "${1}***-***-${2}${3}"),
)
# text that can hold one of them: an @, or four digits in a row or split by a separator
MAYBE_CONTACT = r"@|\d[ ()./-]?\d{3}"


def mask_contacts(text: pl.Expr) -> pl.Expr:
    """The text with phone numbers and email addresses masked; other text as it is."""
    masked = text
    for pattern, replacement in CONTACT_PATTERNS:
        masked = masked.str.replace_all(pattern, replacement)
    return pl.when(text.str.contains(MAYBE_CONTACT)).then(masked).otherwise(text)


# text columns that are keys or vocabularies, never free text
NOT_FREE_TEXT = ("opportunity_id", "followup_id", "stage", "status", "channel", "currency")


def masked_table(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Every free-text column of a canonical table with its contact data masked.

    Each distinct value is looked at once, and only the values that may hold contact data
    are rewritten: an owner or industry column of ten million rows costs one pass over its
    few distinct values."""
    schema = frame.collect_schema()
    names = [n for n, t in schema.items() if t == pl.String and n not in NOT_FREE_TEXT]
    if not names:
        return frame
    candidates = pl.collect_all(
        frame.select(pl.col(n).unique()).filter(pl.col(n).str.contains(MAYBE_CONTACT))
        for n in names
    )
    return frame.with_columns(
        pl.col(n).replace(values[n], values.select(mask_contacts(pl.col(n)))[n])
        for n, values in zip(names, candidates, strict=True)
        if values.height
    )
