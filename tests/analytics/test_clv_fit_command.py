"""`dangol analytics clv-fit PATH`: the papers' estimates from a CSV, and a clear error for every kind of bad file."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from importlib import resources

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytest.importorskip("lifetimes")

HEADER = "customer_id,frequency,recency,T"


def cdnow_csv(tmp_path, *, monetary: bool = True):
    frame = pd.read_csv(resources.files("lifetimes.datasets").joinpath("cdnow_customers_summary_with_transactions.csv"))
    frame = frame.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
    if not monetary:
        frame = frame.drop(columns="monetary_value")
    path = tmp_path / "cdnow.csv"
    frame.to_csv(path, index=False)
    return path


def fit(path) -> tuple[dict, str]:
    out = io.StringIO()
    call_command("analytics", "clv-fit", str(path), stdout=out)
    text = out.getvalue()
    return json.loads(text.strip().splitlines()[-1]), text


def write(tmp_path, text: str, name: str = "summary.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_it_prints_the_papers_estimates_as_its_last_line(tmp_path):
    result, text = fit(cdnow_csv(tmp_path))
    for name, expected in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert abs(result[name] - expected) <= 0.01 * expected, name
    assert result["ll"] == pytest.approx(-9582.4, abs=0.1)
    assert result["customers"] == 2357 and result["gg_customers"] == 946
    assert result["gg_ll"] < 0
    assert "Gamma-Gamma on the 946 customers with repeat purchases" in text


def test_without_monetary_values_it_fits_bgnbd_only(tmp_path):
    result, _ = fit(cdnow_csv(tmp_path, monetary=False))
    assert set(result) == {"customers", "r", "alpha", "a", "b", "ll"}


def test_monetary_value_may_be_blank_for_customers_without_repeat_purchases(tmp_path):
    path = write(tmp_path, "customer_id,frequency,recency,T,monetary_value\n"
                           "a,0,0,10,\nb,2,5,10,20.5\nc,1,3,9,14\nd,3,8,9,31\ne,0,0,4,\n")
    result, _ = fit(path)
    assert result["gg_customers"] == 3 and {"p", "q", "gamma"} <= set(result)


def test_a_byte_order_mark_and_spaces_in_the_header_are_fine(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcustomer_id, frequency ,recency,T\n1,0,0,10\n2,2,5,10\n3,1,3,9\n4,3,8,9\n".encode())
    result, _ = fit(path)
    assert result["customers"] == 4


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("   \n", "the file is empty"),
    (HEADER + "\n", "no customers"),
    ("customer_id,frequency,T\n1,2,10\n", "missing column(s) recency"),
    ("id,x,t_x,T\n1,2,3,10\n", "missing column(s) customer_id, frequency, recency"),
    (HEADER + "\n1,2,5,10\n2,-1,0,10\n", "cannot be negative: line 3"),
    (HEADER + "\n1,2,5,10\n2,1,-3,10\n", "cannot be negative: line 3"),
    (HEADER + "\n1,2,5,10\n2,1,3,-10\n", "cannot be negative: line 3"),
    (HEADER + "\n1,2,5,10\n2,1,12,10\n3,1,11,10\n", "recency cannot be greater than T: lines 3, 4"),
    (HEADER + "\n1,2,5,10\n2,two,3,10\n", "frequency is not a number: line 3"),
    (HEADER + "\n1,2,5,10\n2,1,,10\n", "recency is not a number: line 3"),
    (HEADER + "\n1,2,5,10\n2,1.5,3,10\n", "whole number: line 3"),
    (HEADER + "\n1,2,5,10\n2,0,3,10\n", "without repeat purchases has recency 0: line 3"),
    (HEADER + "\n1,2,5,10\n1,1,3,10\n", "customer_id appears more than once: lines 2, 3"),
    (HEADER + "\n1,2,5,10\n,1,3,10\n", "customer_id is missing: line 3"),
    (HEADER + "\n1,2,5,inf\n", "T is not a finite number: line 2"),
    (HEADER + "\n1,0,0,10\n2,0,0,5\n", "nobody bought twice"),
    (HEADER + ",monetary_value\n1,2,5,10,30\n2,1,3,10,-4\n", "monetary_value cannot be negative: line 3"),
    (HEADER + ",monetary_value\n1,2,5,10,30\n2,1,3,10,\n", "needs a positive monetary_value"),
    (HEADER + ",monetary_value\n1,2,5,10,30\n2,1,3,10,abc\n", "monetary_value is not a number: line 3"),
])
def test_bad_input_gets_a_clear_error(tmp_path, content, message):
    with pytest.raises(CommandError) as error:
        fit(write(tmp_path, content))
    assert message in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        fit(tmp_path / "nowhere.csv")


def test_the_command_line_exits_non_zero_with_one_error_line(tmp_path):
    path = write(tmp_path, HEADER + "\n1,2,12,10\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run([sys.executable, "-m", "dangol.cli", "analytics", "clv-fit", str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "recency cannot be greater than T: line 2" in done.stderr and done.stdout == ""
