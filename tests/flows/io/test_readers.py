"""Export files in the encodings people have: detected when the file does not say, forced
with `[source.parse] encoding`, and the encoding used said per file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.checks import validate_inputs

SALESFORCE_HEADER = "Id,Name,StageName,CreatedDate,CloseDate,Amount,Account Name,Billing City\n"
# Salesforce's Data Export writes ISO-8859-1 in many orgs. The first file's accented letters
# are each followed by a letter, which GB18030 also decodes (as Chinese mojibake); the
# second's "José," is a byte GB18030 refuses (an accent before a comma)
LATIN_1_ROWS = {
    "letters only": (
        "006A,Muñoz renewal,Prospecting,2024-06-01,2024-09-30,1000,Señor Muñoz SA,São Paulo\n"
        "006B,Brazil,Closed Won,2024-06-02,2024-06-20,2000,Muñoz Irmãos,São Paulo\n"
    ),
    "accent before a comma": (
        "006A,Muñoz renewal,Prospecting,2024-06-01,2024-09-30,1000,Señor Muñoz SA,São Paulo\n"
        "006B,Deal for José,Closed Won,2024-06-02,2024-06-20,2000,Café José,Bogotá\n"
    ),
}


def read(folder: Path, settings: RunSettings | None = None):
    inputs = read_inputs(folder, settings or RunSettings())
    validated = validate_inputs(inputs)
    return inputs, validated


def customers(validated) -> dict[str, str]:
    rows = validated["opportunities"].valid
    return dict(zip(rows["opportunity_id"], rows["customer_name"], strict=True))


@pytest.mark.parametrize("rows", list(LATIN_1_ROWS.values()), ids=list(LATIN_1_ROWS))
def test_a_latin_1_salesforce_export_reads_with_its_accents(tmp_path, rows):
    data = (SALESFORCE_HEADER + rows).encode("latin-1")
    if rows == LATIN_1_ROWS["letters only"]:
        assert "Mu駉z" in data.decode("gb18030")  # what reading it as GB18030 would give
    (tmp_path / "Opportunity.csv").write_bytes(data)
    inputs, validated = read(tmp_path)
    assert inputs.preset.name == "salesforce"
    assert inputs.files[0].source.encoding == "cp1252"  # Latin-1's letters, Windows' superset
    assert validated["opportunities"].rows_valid == 2
    assert customers(validated)["006A"] == "Señor Muñoz SA"
    assert customers(validated)["006B"] in ("Muñoz Irmãos", "Café José")


def test_windows_1252_quotes_and_dashes_are_read_as_written(tmp_path):
    (tmp_path / "Opportunity.csv").write_bytes(
        (
            SALESFORCE_HEADER + "006A,Renewal,Prospecting,2024-06-01,2024-09-30,1000,"
            "Señor “Muñoz” – Bogotá,Bogotá\n"
        ).encode("cp1252")
    )
    inputs, validated = read(tmp_path)
    assert inputs.files[0].source.encoding == "cp1252"
    assert customers(validated) == {"006A": "Señor “Muñoz” – Bogotá"}


def test_a_small_gbk_file_is_still_chinese(tmp_path):
    """A few Chinese words give a detector little to go on: GBK stays GBK."""
    (tmp_path / "opportunities.csv").write_bytes(
        "opportunity_id,stage,created_at,customer_name\nA,线索获取,2024-06-01,华东\n".encode("gbk")
    )
    inputs, validated = read(tmp_path)
    assert inputs.files[0].source.encoding == "gb18030"
    assert customers(validated) == {"A": "华东"}


def test_an_encoding_set_in_funnel_toml_is_used_as_is(tmp_path):
    """Central European text detects as Windows-1252 (its letters are plausible either way);
    `[source.parse] encoding` says which it is."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "opportunities.csv").write_bytes(
        "opportunity_id,stage,created_at,customer_name\nA,lead,2024-06-01,Łódź Żółć\n".encode(
            "cp1250"
        )
    )
    config = tmp_path / "funnel.toml"
    config.write_text('[source.parse]\nencoding = "cp1250"\n', encoding="utf-8")
    inputs, validated = read(folder, settings_from_toml(config))
    assert inputs.files[0].source.encoding == "cp1250"
    assert customers(validated) == {"A": "Łódź Żółć"}
    # and a forced Latin-1 on the Salesforce export
    (folder / "opportunities.csv").unlink()
    (folder / "Opportunity.csv").write_bytes(
        (SALESFORCE_HEADER + LATIN_1_ROWS["accent before a comma"]).encode("latin-1")
    )
    config.write_text('[source.parse]\nencoding = "latin-1"\n', encoding="utf-8")
    inputs, validated = read(folder, settings_from_toml(config))
    assert inputs.files[0].source.encoding == "latin-1"
    assert customers(validated)["006B"] == "Café José"


def test_a_file_that_is_not_in_the_encoding_set_stops_the_run(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "opportunities.csv").write_bytes(
        "opportunity_id,stage,created_at,customer_name\nA,lead,2024-06-01,华东\n".encode("gbk")
    )
    config = tmp_path / "funnel.toml"
    config.write_text('[source.parse]\nencoding = "utf-8"\n', encoding="utf-8")
    assert main(["validate", "--input", str(folder), "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"funnel: {folder / 'opportunities.csv'}: cannot be read as utf-8 ")
    assert "[source.parse] encoding" in line


def test_an_unknown_encoding_name_is_a_settings_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    config = tmp_path / "funnel.toml"
    config.write_text('[source.parse]\nencoding = "latin-9x"\n', encoding="utf-8")
    assert main(["validate", "--input", str(tmp_path / "in"), "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"funnel: {config}: [source.parse] encoding = 'latin-9x': not a known encoding"
    )


def test_the_encoding_of_each_file_is_said_by_validate_and_the_manifest(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Opportunity.csv").write_bytes(
        (SALESFORCE_HEADER + LATIN_1_ROWS["letters only"]).encode("latin-1")
    )
    assert main(["validate", "--input", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("Opportunity.csv (opportunities): read 2, valid 2, quarantined 0")
    assert out[at + 1] == "  encoding: cp1252 (detected)"
    run = ["run", "--input", str(folder), "--period", "2024-06", "--out", str(tmp_path / "out")]
    assert main([*run, "--allow-stale"]) == 0  # the export ends on 2024-06-20
    manifest = json.loads((tmp_path / "out" / "2024-06" / "manifest.json").read_text("utf-8"))
    [entry] = manifest["inputs"]
    assert entry["encoding"] == "cp1252"
