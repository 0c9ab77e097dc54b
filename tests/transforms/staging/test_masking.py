"""Phone numbers and email addresses inside free text, masked; everything else untouched."""

from __future__ import annotations

import polars as pl
import pytest

from funnel_reports.transforms.staging.masking import mask_contacts, masked_table


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "138****5678"),
        ("call 138 1234 5678 today", "call 138****5678 today"),
        ("王总 139-1234-5678", "王总 139****5678"),
        ("+86 138-1234-5678", "+86****5678"),
        ("+49 30 1234 5678", "+49****5678"),
        ("(555) 123-4567", "***-***-4567"),
        ("ring 555.123.4567 after 5", "ring ***-***-4567 after 5"),
        ("li.wei@example.com", "l***@example.com"),
        ("phone:13912345678,email a@b.cn", "phone:139****5678,email a***@b.cn"),
        # no contact data: dates, amounts, ids, names stay as they are
        ("closed 2024-06-30", "closed 2024-06-30"),
        ("budget 1,250,000 CNY", "budget 1,250,000 CNY"),
        ("PO 12345678901234", "PO 12345678901234"),
        ("ACME Ltd (华东)", "ACME Ltd (华东)"),
        ("", ""),
    ],
)
def test_contacts_in_free_text_are_masked(text, expected):
    assert pl.select(mask_contacts(pl.lit(text))).item() == expected


def test_keys_and_vocabularies_are_left_alone():
    frame = pl.LazyFrame(
        {
            "opportunity_id": ["13812345678"],
            "stage": ["lead"],
            "stall_reason": ["call 13812345678"],
            "amount": [1.0],
        }
    )
    row = masked_table(frame).collect().row(0, named=True)
    assert row == {
        "opportunity_id": "13812345678",
        "stage": "lead",
        "stall_reason": "call 138****5678",
        "amount": 1.0,
    }
    assert pl.select(mask_contacts(pl.lit(None, dtype=pl.String))).item() is None


def test_each_distinct_value_is_masked_wherever_it_stands():
    frame = pl.LazyFrame(
        {
            "owner": ["Li", "Li 13812345678", "Wang", "Li 13812345678", None],
            "region": ["East", "East", "a.b@example.com", "West", "East"],
        }
    )
    assert masked_table(frame).collect().to_dict(as_series=False) == {
        "owner": ["Li", "Li 138****5678", "Wang", "Li 138****5678", None],
        "region": ["East", "East", "a***@example.com", "West", "East"],
    }
