"""nself's YAML writer: the fast path writes exactly PyYAML's bytes (nself's settings)."""
import glob
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nself.k8s.yamlout import dump, pyyaml_dump

DATA = Path(__file__).resolve().parent.parent / "data"
TRICKY = ["", " x", "x ", "a: b", "a #b", "- x", "1e3", "0o17", "yes", "on", "12:30", "0755", "~",
          "null", "true", "{{ .Values.x }}", "*a", "&a", "!tag", "%x", "@x", "`x", "'q'", '"d"',
          "ü", "\t", "a\nb", "a\nb\n", "trailing \n", "x" * 200, "\x07", "[x]", "{x}", "?", ":",
          "https://a.b/c?d=e#f", "=", "<<", ".inf", "-.5", "2026-11-30", "0x1F"]
scalars = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12), st.integers(), st.booleans(),
                    st.none(), st.floats(allow_nan=False))
keys = st.one_of(st.sampled_from(TRICKY), st.text(max_size=8), st.integers(min_value=0, max_value=99))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_fast_writer_writes_what_pyyaml_writes(document):
    assert dump(document) == pyyaml_dump(document)


def test_real_documents_are_written_as_pyyaml_writes_them():
    count = 0
    for path in glob.glob(str(DATA / "**" / "*.y*ml"), recursive=True):
        try:
            docs = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8"))
                    if isinstance(d, (dict, list))]
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for doc in docs:
            try:
                expected = pyyaml_dump(doc)
            except yaml.representer.RepresenterError:
                continue                      # e.g. dates: not what nself writes
            assert dump(doc) == expected, path
            count += 1
    assert count > 250


def test_equal_values_written_differently_are_kept_apart():
    assert dump({"a": 0.0, "b": -0.0, "c": 1, "d": True, "e": 1.0}) == \
        pyyaml_dump({"a": 0.0, "b": -0.0, "c": 1, "d": True, "e": 1.0})
