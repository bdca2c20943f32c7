"""Population loaders: files, SQL, aggregated tables, mapping and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import Audit, DataError, SpecError
from audit._privacy import looks_like_personnummer
from audit.population import load_population, read_table


def _audit(tmp_path: Path, population: dict, sensitive: list[str] | None = None) -> Audit:
    data = {
        "name": "t",
        "population": population,
        "sensitive_features": sensitive or ["sex"],
        "engine": {"kind": "reference"},
    }
    if "aggregated" in population:
        data.pop("engine")
    return Audit.from_dict(data, base_dir=tmp_path, source="t.yaml")


def test_swedish_csv_export_semicolon_decimal_comma_cp1252(tmp_path: Path) -> None:
    text = "Ärende;Kön;Belopp;Kommun\r\nA1;K;1 234,50;0180\r\nA2;M;  ;1287\r\nA3;K;99,5;0180\r\n"
    (tmp_path / "log.csv").write_bytes(text.encode("cp1252"))
    frame, info = read_table(tmp_path / "log.csv")
    assert info == {"encoding": "cp1252", "delimiter": ";", "decimal": ","}
    assert list(frame.columns) == ["Ärende", "Kön", "Belopp", "Kommun"]
    assert frame["Belopp"].iloc[0] == pytest.approx(1234.5)
    assert np.isnan(frame["Belopp"].iloc[1])  # a lone space or blank cell is missing
    assert frame["Belopp"].iloc[2] == pytest.approx(99.5)
    assert frame["Kommun"].tolist() == ["0180", "1287", "0180"]  # codes with leading zeros stay text


def test_rename_recode_with_star_and_row_number(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("Kön,Beslut\nK,Bifall\nM,Avslag\nX,Delavslag\n", encoding="utf-8")
    audit = _audit(
        tmp_path,
        {
            "file": "log.csv",
            "case_id": "row_number",
            "rename": {"Kön": "sex", "Beslut": "decision"},
            "recode": {"sex": {"K": "female", "M": "male", "*": "other"},
                       "decision": {"Bifall": "grant", "Avslag": "deny", "Delavslag": "partial"}},
        },
    )
    pop = load_population(audit)
    assert pop.frame["case_id"].tolist() == ["1", "2", "3"]
    assert pop.frame["sex"].tolist() == ["female", "male", "other"]
    assert pop.frame["decision"].tolist() == ["grant", "deny", "partial"]


def test_label_without_recode_is_an_error_naming_file_column_value(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("id,Kön\n1,K\n2,M\n3,Q\n", encoding="utf-8")
    audit = _audit(tmp_path, {"file": "log.csv", "case_id": "id", "rename": {"Kön": "sex"},
                              "recode": {"sex": {"K": "female", "M": "male"}}})
    with pytest.raises(DataError) as info:
        load_population(audit)
    assert str(info.value).startswith(
        "log.csv: column 'sex' has the value 'Q', which population.recode does not map"
    )


def test_missing_mapped_column(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("id,sex\n1,female\n", encoding="utf-8")
    audit = _audit(tmp_path, {"file": "log.csv", "case_id": "id", "rename": {"Gender": "sex"}})
    with pytest.raises(DataError, match=r"log.csv: population.rename names the column 'Gender', which is not in "
                                        r"the data. Columns: id, sex."):
        load_population(audit)


def test_duplicated_case_ids(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("id,sex\n1,female\n2,male\n1,male\n", encoding="utf-8")
    audit = _audit(tmp_path, {"file": "log.csv", "case_id": "id"})
    with pytest.raises(DataError, match=r"column 'id' \(case_id\) has 2 rows with duplicated values \(1 distinct\)"):
        load_population(audit)


def test_personnummer_case_ids_never_survive(tmp_path: Path) -> None:
    # made-up numbers of the right shape, not real people
    (tmp_path / "log.csv").write_text(
        "pnr,sex,note\n19900101-0000,female,ok\n850615-1111,male,see 850615-1111\n", encoding="utf-8"
    )
    audit = _audit(tmp_path, {"file": "log.csv", "case_id": "pnr"})
    pop = load_population(audit)
    assert not looks_like_personnummer(pop.frame["case_id"]).any()
    assert pop.frame["case_id"].str.startswith("p-").all()
    assert pop.frame["note"].tolist() == ["ok", "see [personnummer removed]"]
    assert any("pseudonyms" in n for n in pop.notes)
    # the pseudonym is stable for the same input
    assert load_population(audit).frame["case_id"].tolist() == pop.frame["case_id"].tolist()


def test_excel_sheet_by_name_and_missing_sheet(tmp_path: Path) -> None:
    path = tmp_path / "log.xlsx"
    with pd.ExcelWriter(path) as xw:
        pd.DataFrame({"id": ["a"], "sex": ["male"]}).to_excel(xw, sheet_name="Other", index=False)
        pd.DataFrame({"id": ["b", "c"], "sex": ["female", " "]}).to_excel(xw, sheet_name="Gender 1 Decimal",
                                                                           index=False)
    pop = load_population(_audit(tmp_path, {"file": "log.xlsx", "sheet": "Gender 1 Decimal", "case_id": "id"}))
    assert pop.frame["case_id"].tolist() == ["b", "c"]
    assert pop.frame["sex"].isna().tolist() == [False, True]
    first = load_population(_audit(tmp_path, {"file": "log.xlsx", "case_id": "id"}))
    assert first.frame["case_id"].tolist() == ["a"]
    with pytest.raises(DataError, match=r"log.xlsx: no sheet named 'Nope'. Sheets: 'Other', 'Gender 1 Decimal'."):
        load_population(_audit(tmp_path, {"file": "log.xlsx", "sheet": "Nope", "case_id": "id"}))


def test_parquet_and_duckdb(tmp_path: Path) -> None:
    import duckdb

    df = pd.DataFrame({"case_id": ["x1", "x2", "x3"], "sex": ["female", "male", "female"], "income": [1.0, 2.0, 9.0]})
    df.to_parquet(tmp_path / "c.parquet")
    pop = load_population(_audit(tmp_path, {"file": "c.parquet"}))
    pd.testing.assert_frame_equal(pop.frame, df)
    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    con.execute("CREATE TABLE decisions AS SELECT * FROM df")
    con.close()
    pop = load_population(_audit(tmp_path, {"sql": "SELECT * FROM decisions ORDER BY case_id",
                                            "url": "duckdb:///c.duckdb"}))
    assert pop.frame["case_id"].tolist() == ["x1", "x2", "x3"]
    assert pop.inputs == (tmp_path / "c.duckdb",)


def test_quantile_bins(tmp_path: Path) -> None:
    pd.DataFrame({"case_id": [f"c{i}" for i in range(10)], "sex": ["female"] * 10,
                  "income": np.arange(10.0)}).to_parquet(tmp_path / "c.parquet")
    audit = _audit(tmp_path, {"file": "c.parquet", "derive": {
        "income_level": {"quantile_bins": {"column": "income", "q": [0, 0.5, 1], "labels": ["low", "high"]}}}})
    pop = load_population(audit)
    # median of 0..9 is 4.5: 0..4 low, 5..9 high
    assert pop.frame["income_level"].tolist() == ["low"] * 5 + ["high"] * 5


def test_fixed_bins_label_each_case_and_leave_the_rest_missing(tmp_path: Path) -> None:
    """Each age gets its bin's label (the lowest edge included); a missing age or one outside every bin is
    missing, as pandas.cut says (the labels are a str column whatever the bins)."""
    ages = [18.0, 29.0, 29.5, 64.0, 70.0, 17.0, np.nan, 121.0]
    pd.DataFrame({"case_id": [f"c{i}" for i in range(len(ages))], "sex": ["female"] * len(ages),
                  "applicant_age": ages}).to_parquet(tmp_path / "c.parquet")
    audit = _audit(tmp_path, {"file": "c.parquet", "derive": {"band": {"bins": {
        "column": "applicant_age", "edges": [18, 29, 64, 120], "labels": ["young", "middle", "old"]}}}})
    band = load_population(audit).frame["band"]
    assert isinstance(band.dtype, pd.StringDtype)
    expected = pd.cut(pd.Series(ages), bins=[18, 29, 64, 120], labels=["young", "middle", "old"],
                      include_lowest=True)
    assert band.tolist()[:5] == ["young", "young", "middle", "middle", "old"] == expected.tolist()[:5]
    assert band.isna().tolist() == [False] * 5 + [True] * 3


def test_aggregated_percent_with_suppressed_cells(tmp_path: Path) -> None:
    (tmp_path / "confusion.csv").write_text(
        "Dataset,Model,Feature_EN,Feature_Value_EN,TP,FP,FN,TN,group_size\n"
        "Prepilot,BR,Gender,Female,10.0,20.0,30.0,40.0,200\n"
        "Prepilot,BR,Gender,Male,5.0,,45.0,,100\n"
        "Pilot,BR,Gender,Female,1,1,1,97,10\n",
        encoding="utf-8",
    )
    audit = _audit(tmp_path, {"aggregated": "confusion.csv", "where": {"Dataset": "Prepilot", "Model": "BR"},
                              "attribute": "Feature_EN", "group": "Feature_Value_EN",
                              "cells": {"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"},
                              "units": "percent", "group_size": "group_size"}, sensitive=["Gender"])
    pop = load_population(audit)
    t = pop.aggregated
    assert t["group"].tolist() == ["Female", "Male"]
    assert t[["tp", "fp", "fn", "tn"]].iloc[0].tolist() == [20.0, 40.0, 60.0, 80.0]  # percent of 200
    assert t["tp"].iloc[1] == 5.0 and np.isnan(t["fp"].iloc[1]) and np.isnan(t["tn"].iloc[1])


def test_aggregated_bad_input(tmp_path: Path) -> None:
    base = {"aggregated": "c.csv", "attribute": "a", "group": "g",
            "cells": {"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"}}
    # 'x' is a suppression marker since issue 25 (Eurostat/ONS write suppressed cells so); 'ten' is not
    (tmp_path / "c.csv").write_text("a,g,TP,FP,FN,TN\nsex,f,1,ten,3,4\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column 'FP' \(cells.fp\) has the non-numeric value 'ten' for sex=f"):
        load_population(_audit(tmp_path, base, sensitive=["sex"]))
    (tmp_path / "c.csv").write_text("a,g,TP,FP,FN,TN,size\nsex,f,10,20,30,30,10\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"the percentages for sex=f add up to 90. Expected 100"):
        load_population(_audit(tmp_path, {**base, "units": "percent", "group_size": "size"}, sensitive=["sex"]))


# ---------------------------------------------------------------------------
# issue 7: aggregated recode and the bad-input messages (file, sheet, column, value)

_AGG = {"aggregated": "c.csv", "attribute": "Feature_EN", "group": "Feature_Value_EN",
        "cells": {"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"}}


def test_aggregated_recode_maps_attribute_and_group_labels(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "Feature_EN,Feature_Value_EN,TP,FP,FN,TN\nGender,Women,1,2,3,4\nGender,Men,5,,7,8\n", encoding="utf-8")
    recode = {"Feature_EN": {"Gender": "sex"}, "Feature_Value_EN": {"Women": "female", "Men": "male"}}
    pop = load_population(_audit(tmp_path, {**_AGG, "recode": recode}, sensitive=["sex"]))
    t = pop.aggregated
    assert t["attribute"].tolist() == ["sex", "sex"] and t["group"].tolist() == ["female", "male"]
    assert t["group_size"].tolist()[0] == 10 and np.isnan(t["group_size"].iloc[1])  # 1+2+3+4; unknown if suppressed
    assert np.isnan(t["fp"].iloc[1])
    bad = {"Feature_EN": {"Gender": "sex"}, "Feature_Value_EN": {"Women": "female"}}
    with pytest.raises(DataError) as info:
        load_population(_audit(tmp_path, {**_AGG, "recode": bad}, sensitive=["sex"]))
    assert str(info.value).startswith(
        "c.csv: column 'Feature_Value_EN' has the value 'Men', which population.recode does not map "
        "(no recode for this value; known: Women; first in data row 2)."
    )


def test_aggregated_source_refuses_case_keys(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("Feature_EN,Feature_Value_EN,TP,FP,FN,TN\nsex,f,1,2,3,4\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"^t.yaml: population.rename does not apply to an aggregated source"):
        load_population(_audit(tmp_path, {**_AGG, "rename": {"TP": "tp"}}, sensitive=["sex"]))
    with pytest.raises(SpecError, match=r"^t.yaml: population.derive does not apply to an aggregated source"):
        load_population(_audit(tmp_path, {**_AGG, "derive": {"x": {"count_items": "TP"}}}, sensitive=["sex"]))


@pytest.mark.parametrize(
    ("body", "options", "message"),
    [
        ("sex,f,1,2,3,4\nsex,f,1,2,3,4\n", {},
         r"c.csv: the group sex=f \(data row 2\) appears more than once. Expected one row per attribute and group"),
        ("sex,f,1.5,2,3,4\n", {},
         r"c.csv: column 'TP' \(cells.tp\) has the value 1.5 for sex=f \(data row 1\). Expected a whole number of "
         r"cases with units: count"),
        ("sex,f,1,-2,3,4\n", {},
         r"c.csv: column 'FP' \(cells.fp\) has the negative value -2 for sex=f \(data row 1\)"),
        ("sex,f,1,2,3,4,11\n", {"group_size": "n"},
         r"c.csv: the counts for sex=f add up to 10, but column 'n' \(group_size\) is 11. Expected the cells to add "
         r"up to the group size; got TP 1 \+ FP 2 \+ FN 3 \+ TN 4 in data row 1."),
        ("sex,f,1,2,3,4,\n", {"group_size": "n"},
         r"c.csv: column 'n' \(group_size\) is blank for sex=f \(data row 1\)"),
        ("sex,f,1,2,3,4,many\n", {"group_size": "n"},
         r"c.csv: column 'n' \(group_size\) has the non-numeric value 'many' for sex=f \(data row 1\). "
         r"Expected a count of cases."),
        ("sex,f,1,2,3,4,1e400\n", {"group_size": "n"},
         r"c.csv: column 'n' \(group_size\) has the infinite value inf for sex=f \(data row 1\). "
         r"Expected a count of cases."),
        ("sex,f,1,inf,3,4\n", {},
         r"c.csv: column 'FP' \(cells.fp\) has the infinite value inf for sex=f \(data row 1\)"),
        ("sex,f,60.0,,50.0,,10\n", {"group_size": "n", "units": "percent"},
         r"c.csv: the percentages for sex=f add up to 110. Expected at most 100 for a row with suppressed \(blank\) "
         r"cells; got TP 60 \+ FP blank \+ FN 50 \+ TN blank in data row 1."),
    ],
)
def test_aggregated_bad_rows(tmp_path: Path, body: str, options: dict, message: str) -> None:
    header = "Feature_EN,Feature_Value_EN,TP,FP,FN,TN" + (",n" if "group_size" in options else "") + "\n"
    (tmp_path / "c.csv").write_text(header + body, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_population(_audit(tmp_path, {**_AGG, **options}, sensitive=["sex"]))


def test_aggregated_where_without_rows_lists_the_values(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "Dataset,Feature_EN,Feature_Value_EN,TP,FP,FN,TN\nPilot,sex,f,1,2,3,4\nPrepilot,sex,f,1,2,3,4\n",
        encoding="utf-8")
    with pytest.raises(DataError, match=r"c.csv: no rows are left after population.where \{'Dataset': 'Pilott'\}. "
                                        r"Values in the table: Dataset: 'Pilot', 'Prepilot'."):
        load_population(_audit(tmp_path, {**_AGG, "where": {"Dataset": "Pilott"}}, sensitive=["sex"]))


def test_excel_errors_name_the_file_sheet_column_value_and_row(tmp_path: Path) -> None:
    path = tmp_path / "log.xlsx"
    with pd.ExcelWriter(path) as xw:
        pd.DataFrame({"Läs mig": ["notes"]}).to_excel(xw, sheet_name="Info", index=False)
        pd.DataFrame({"Ärende": ["A1", "A2", "A3"], "Kön": ["Kvinna", "Man", "Okänd"]}).to_excel(
            xw, sheet_name="Beslut", index=False)
    base = {"file": "log.xlsx", "sheet": "Beslut", "case_id": "Ärende", "rename": {"Kön": "sex"}}
    with pytest.raises(DataError) as info:
        load_population(_audit(tmp_path, {**base, "recode": {"sex": {"Kvinna": "female", "Man": "male"}}}))
    assert str(info.value) == (
        "log.xlsx (sheet 'Beslut'): column 'sex' has the value 'Okänd', which population.recode does not map "
        "(no recode for this value; known: Kvinna, Man; source column 'Kön', first in data row 3). Add it to "
        "recode or use '*' for every other value."
    )
    assert info.value.failures[["column", "value", "row", "source_column"]].to_dict("records") == [
        {"column": "sex", "value": "Okänd", "row": 3, "source_column": "Kön"}]
    with pytest.raises(DataError, match=r"^log.xlsx \(sheet 'Beslut'\): population.rename names the column 'Gender', "
                                        r"which is not in the data. Columns: Ärende, Kön."):
        load_population(_audit(tmp_path, {**base, "rename": {"Gender": "sex"}}))
    with pytest.raises(DataError, match=r"^log.xlsx \(sheet 'Beslut'\): population.case_id names the column 'Id'"):
        load_population(_audit(tmp_path, {**base, "case_id": "Id"}))
    with pytest.raises(DataError, match=r"log.xlsx: no sheet named 'Beslut 2025'. Sheets: 'Info', 'Beslut'."):
        load_population(_audit(tmp_path, {**base, "sheet": "Beslut 2025"}))


def test_sqlalchemy_url_and_blank_cells_in_parquet(tmp_path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "log.sqlite")
    con.execute("CREATE TABLE beslut (arende TEXT, kon TEXT, belopp REAL)")
    con.executemany("INSERT INTO beslut VALUES (?, ?, ?)", [("A1", "K", 100.5), ("A2", " ", None), ("A3", "M", 7.0)])
    con.commit()
    con.close()
    pop = load_population(_audit(tmp_path, {
        "sql": "SELECT * FROM beslut ORDER BY arende", "url": f"sqlite:///{tmp_path / 'log.sqlite'}",
        "case_id": "arende", "rename": {"kon": "sex"}, "recode": {"sex": {"K": "female", "M": "male"}}}))
    assert pop.frame["case_id"].tolist() == ["A1", "A2", "A3"]
    assert pop.frame["sex"].tolist()[0::2] == ["female", "male"] and pd.isna(pop.frame["sex"].iloc[1])
    assert pop.frame["belopp"].iloc[0] == 100.5 and np.isnan(pop.frame["belopp"].iloc[1])
    pd.DataFrame({"case_id": ["x", "y"], "sex": ["female", " "]}).to_parquet(tmp_path / "c.parquet")
    frame = load_population(_audit(tmp_path, {"file": "c.parquet"})).frame
    assert frame["sex"].isna().tolist() == [False, True]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_file_with_nul_bytes_is_refused_by_name(tmp_path: Path, chunked: bool) -> None:
    """A binary file or a UTF-16 "Unicode text" export decodes as cp1252 garbage; it is refused, in parts too."""
    from audit.population import iter_table, read_table

    path = tmp_path / "export.csv"
    path.write_text("case_id;sex\nc1;female\n", encoding="utf-16")
    with pytest.raises(DataError, match=r"export\.csv: holds NUL bytes, so it is not a text CSV export"):
        if chunked:
            next(iter(iter_table(path, chunk_size=10)))
        else:
            read_table(path)
