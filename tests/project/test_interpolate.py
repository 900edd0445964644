import pytest

from nself.errors import ConfigError
from nself.project.interpolate import Substitution, interpolate

VARS = {"A": "a", "EMPTY": "", "N": "1"}


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("$A", "a"),
    ("${A}", "a"),
    ("x${A}y$A", "xaya"),
    ("${MISSING}", ""),
    ("${MISSING:-d}", "d"),
    ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""),            # `-` only when unset
    ("${MISSING-d}", "d"),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),       # `+` when set, even empty
    ("${MISSING+alt}", ""),
    ("$$A", "$A"),
    ("$$$A", "$a"),
    ("${MISSING:-${A}}", "a"),
    ("${MISSING:-${OTHER:-deep}}", "deep"),
    ("${A:-${MISSING:?never evaluated}}", "a"),
    ("cost: $5", "cost: $5"),      # not a name: kept
    ("a}b", "a}b"),
    ("${MISSING:-a:b}", "a:b"),
    ("${MISSING:-}", ""),
])
def test_interpolation_follows_the_compose_spec(text, expected):
    assert interpolate(text, VARS) == expected


@pytest.mark.parametrize("text, message", [
    ("${MISSING:?set it please}", "MISSING is unset in compose.yaml at services.web.image: set it please"),
    ("${EMPTY:?must not be empty}", "required variable EMPTY is empty"),
    ("${MISSING?m}", "MISSING is unset"),
    ("${A", "invalid interpolation"),
    ("${1A}", "invalid interpolation"),
    ("${A/x/y}", "invalid interpolation"),
    ("${MISSING:-${B}", "missing closing"),
])
def test_errors_name_the_variable(text, message):
    with pytest.raises(ConfigError) as exc:
        interpolate(text, VARS, where="compose.yaml at services.web.image")
    assert message in exc.value.message
    assert exc.value.code == 3


def test_empty_with_question_mark_is_allowed():
    assert interpolate("${EMPTY?m}", VARS) == ""


def test_records_used_and_missing_variables():
    seen = Substitution()
    interpolate("${A}-${GONE}-${X:-${A}}", VARS, seen=seen)
    assert seen.used == {"A", "GONE", "X"}
    assert seen.missing == {"GONE"}
