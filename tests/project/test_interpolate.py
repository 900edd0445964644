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


@pytest.mark.parametrize("text, expected", [
    ("${MISSING:-d}tail", "dtail"),          # the text after the closing brace is kept
    ("${A:+${N}}", "1"),                     # the alternative is expanded with the variables
    ("${MISSING:-${N}}", "1"),
    ("${MISSING-${N}}", "1"),
    ("${A+${N}}-${A?${N}}", "1-a"),
    ("${MISSING:-a$$b}", "a$b"),             # `$$` inside a default
    ("pay $$5, then $$6", "pay $5, then $6"),
])
def test_defaults_and_alternatives_are_expanded_in_place(text, expected):
    assert interpolate(text, VARS) == expected


def nested(levels: int) -> str:
    return "${X:-" * levels + "v" + "}" * levels


def test_nesting_is_allowed_to_the_limit_and_refused_beyond():
    from nself.project.interpolate import MAX_NESTING

    assert interpolate(nested(MAX_NESTING), VARS) == "v"
    with pytest.raises(ConfigError) as exc:
        interpolate(nested(MAX_NESTING + 1), VARS, where="compose.yaml at x")
    assert "nested more than" in exc.value.message and "in compose.yaml at x" in exc.value.message


@pytest.mark.parametrize("text, message, hint", [
    ("${MISSING:-${GONE:?deep}}", "required variable GONE is unset in f.yml at k: deep", "set GONE"),
    ("${MISSING:?}", "MISSING is unset in f.yml at k: no message", "env file"),
    ("${A/x}", "invalid interpolation '${A/x}' in f.yml at k", "Compose supports ${VAR}"),
    ("${-x}", "invalid interpolation '${-x}' in f.yml at k", "write '$$' for a literal dollar"),
    ("${MISSING:-${B}", "in f.yml at k: missing closing", "close every"),
    ("${MISSING:-${1B}}", "invalid interpolation '${1B}' in f.yml at k", "starts with a letter"),
    ("${MISSING:+x}${A:?${1B}}", "invalid interpolation '${1B}' in f.yml at k", "starts with a letter"),
])
def test_errors_say_where_and_how_to_fix(text, message, hint):
    with pytest.raises(ConfigError) as exc:
        interpolate(text, VARS, where="f.yml at k")
    assert message in exc.value.message and hint in exc.value.hint, (exc.value.message, exc.value.hint)


def test_variables_inside_defaults_and_alternatives_are_recorded():
    seen = Substitution()
    interpolate("${A:+${B}}${MISSING:-${C}}${A?${D}}", VARS, seen=seen)
    assert seen.used == {"A", "B", "MISSING", "C", "D"} and seen.missing == {"B", "C", "D"}


def test_lenient_loads_record_a_missing_required_variable_as_empty():
    seen = Substitution(lenient=True)
    assert interpolate("x${MISSING:?m}y", VARS, seen=seen) == "xy"
    assert seen.missing == {"MISSING"}
