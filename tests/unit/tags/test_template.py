"""{{expressions}}: Handlebars' argument and escaping rules, moment.js date formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from polyarch.errors import UsageError
from polyarch.tags.template import const, date_helper, expand, format_date

WHEN = datetime(2020, 1, 10, 0, 30, 5, 123000, tzinfo=UTC)
HELPERS = {"date": date_helper(WHEN), "branch": const("a&b='c'")}


@pytest.mark.parametrize(("template", "out"), [
    ("{{date 'YYYYMMDD'}}", "20200110"),
    ('{{date "YYYY-MM-DD"}}', "2020-01-10"),
    ("{{ date 'HHmmss' }}", "003005"),
    ("{{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", "20200110-093005"),
    # A bare word is a lookup of nothing: moment's default format.
    ("{{date YYYY-MM-DD}}", "2020-01-10T00:30:05Z"),
    ("{{date}}", "2020-01-10T00:30:05Z"),
    ("{{date tz='Asia/Tokyo'}}", "2020-01-10T09:30:05+09:00"),
    ("{{date 'X'}}", "1578616205"),
    # {{ }} escapes as Handlebars does; {{{ }}} does not; comments vanish.
    ("x{{branch}}", "xa&amp;b&#x3D;&#x27;c&#x27;"),
    ("x{{{branch}}}", "xa&b='c'"),
    ("a{{! a comment }}b", "ab"),
    ("no expressions", "no expressions"),
])
def test_template_expands_dates_and_escapes_as_handlebars(template: str, out: str) -> None:
    assert expand(template, HELPERS, "test") == out


@pytest.mark.parametrize(("fmt", "out"), [
    ("YYYY YY MMMM MMM MM M Mo", "2020 20 January Jan 01 1 1st"),
    ("DDDD DDD Do DD D", "010 10 10th 10 10"),
    ("dddd ddd dd d E", "Friday Fri Fr 5 5"),
    ("HH H hh h kk k A a", "00 0 12 12 24 24 AM am"),
    ("mm m ss s SSS SS S", "30 30 05 5 123 12 1"),
    ("Z ZZ", "+00:00 +0000"),
    ("Q Qo W WW GGGG", "1 1st 2 02 2020"),
    ("[YYYY]-YYYY [at] HH", "YYYY-2020 at 00"),
])
def test_date_tokens_format_as_moment(fmt: str, out: str) -> None:
    assert format_date(WHEN, fmt) == out


@pytest.mark.parametrize(("template", "words"), [
    ("{{brnach}}", "did you mean 'branch'"),
    ("${{ github.ref }}", "GitHub Actions expression"),
    ("{{date 'Y' tz='Mars/Base'}}", "unknown time zone"),
    ("{{date 'Y' zone='UTC'}}", "only tz= is known"),
    ("{{date 'A' 'B'}}", "give one format"),
    ("{{branch 'x'}}", "takes no arguments"),
    ("{{date (lookup x)}}", "cannot read"),
])
def test_errors_name_the_expression(template: str, words: str) -> None:
    with pytest.raises(UsageError) as e:
        expand(template, HELPERS, "tag spec 'x'")
    assert "tag spec 'x'" in e.value.line() and words in e.value.line()
