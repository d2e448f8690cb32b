"""Tests for zentrack._step fingerprint, code_digest, content_hash: what keys a cache entry."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import zentrack as zt
from tests import steps_for_tests
from tests.steps_for_tests import TrainerStep, counted, mixed, train
from tests.strategies import param_names, tracked_values
from zentrack._step.code_digest import code_digest
from zentrack._step.content_hash import content_digest
from zentrack.exceptions import UnhashableInputError


@zt.step(name="golden", version="1")
def golden(data=None, *, lr=0.01, layers=(64, 32), act="relu"):
    return None


@zt.step(version="1")
class GoldenTrainer:
    def __init__(self, lr=0.01, layers=None):
        self.lr = lr

    def run(self, data):
        return None


@zt.step
def positional(a, b=2, c=3):
    return None


@zt.step
def keywords(*, a=0, b=0, c=0, d=0, e=0):
    return None


@zt.step
def anything(**kwargs):
    return None


def documented_fingerprint(name: str, identity: str, params: str, inputs: str) -> str:
    """The fingerprint exactly as docs/fingerprint.md spells scheme v1."""
    text = f"zentrack-fingerprint-v1\0{name}\0{identity}\0{params}\0{inputs}"
    return hashlib.sha256(text.encode()).hexdigest()


# Golden digests of fingerprint scheme v1 and content scheme v1.  They were computed
# once and are pinned on purpose: a different value here means every cached result
# of every user is invalidated.  That is a breaking change that needs a scheme bump
# (zentrack-fingerprint-v2 / zentrack-content-v2) and a CHANGELOG entry, never a
# quiet update of these constants.
GOLDEN_DEFAULTS = "7beb6b54985c631281aea56ce2c503549b9d792bf29f81683b2dd3befceba5de"
GOLDEN_LR_INT = "d7e7cf46a969d563bf9d05c050eec1a807ede2fbb02f6017f225abeef7f9f9d4"
GOLDEN_LR_FLOAT = "06d50a22187020c60c5eeb8fa1e60c9a64c6fcdc95a966a610c36213903c6087"
GOLDEN_LR_BOOL = "3681681957b6d800aa1310bb6a19b941656a329be9077a4340d9e3e78911c040"
GOLDEN_BYTES_INPUT = "7c48395d01652b52c13e779864e3cb3cc8854ea758f162b49332d39a60282f28"
GOLDEN_AWKWARD = "e2c843fcd05f5cbd10ceb717b379310028dc02f9ec8d52c3b004454469b660fa"
GOLDEN_CLASS = "0e8477894d756c33c825cd28d9e7941c195447c5e1c32ecbf5725f766730fd7a"
GOLDEN_CLASS_BYTES = "624584eeb18cc115deaf382962353ed5ecc60fe791433c29709642a3f3235d00"
GOLDEN_CONTENT_BYTES = "1d98bcf06e5f890b1a050bd7b0f93a11df5fd4bc615857318c935c55192fecf7"
GOLDEN_CONTENT_INT = "54ebfa17c9f35dead0755e08b5917fb0e07a1655f3c1a89fb68978f3ecf131fd"
GOLDEN_CONTENT_ARRAY = "face354b12e4d8dfec667aac1e5ef5891f051dc273301781847bf6dceea18dff"
GOLDEN_CONTENT_NESTED = "0de97f9c4502e0e2affe5e033f509bb32a3933b65884c8e8518166bb6616c0a9"


class TestGoldenDigests:
    def test_function_step_goldens(self):
        """Function-step fingerprints of scheme v1 are pinned."""
        actual = [
            zt.fingerprint(golden),
            zt.fingerprint(golden, lr=1),
            zt.fingerprint(golden, lr=1.0),
            zt.fingerprint(golden, lr=True),
            zt.fingerprint(golden, b"abc", lr=0.5),
            zt.fingerprint(golden, lr=float("nan"), layers={"b": [None, -0.0], "a": "é"}),
        ]
        expected = [
            GOLDEN_DEFAULTS,
            GOLDEN_LR_INT,
            GOLDEN_LR_FLOAT,
            GOLDEN_LR_BOOL,
            GOLDEN_BYTES_INPUT,
            GOLDEN_AWKWARD,
        ]
        assert expected == actual

    def test_class_step_goldens(self):
        """Class-step fingerprints of scheme v1 are pinned."""
        actual = [
            zt.fingerprint(GoldenTrainer(), [1, 2, 3]),
            zt.fingerprint(GoldenTrainer(lr=1e-7, layers=[64, 32]), b"abc"),
        ]
        expected = [GOLDEN_CLASS, GOLDEN_CLASS_BYTES]
        assert expected == actual

    def test_content_digest_goldens(self):
        """Content digests of inputs (scheme zentrack-content-v1) are pinned."""
        actual = [
            content_digest(b"abc"),
            content_digest(1),
            content_digest(np.arange(3, dtype="<i8")),
            content_digest({"a": b"x", "b": [np.float32(1)]}),
        ]
        expected = [
            GOLDEN_CONTENT_BYTES,
            GOLDEN_CONTENT_INT,
            GOLDEN_CONTENT_ARRAY,
            GOLDEN_CONTENT_NESTED,
        ]
        assert expected == actual

    def test_goldens_follow_the_documented_scheme(self):
        """The pinned digests are sha256 of the byte strings docs/fingerprint.md describes."""
        params = '{{"act":"relu","data":null,"layers":[64,32],"lr":{}}}'
        inputs = f'{{"data":"{GOLDEN_CONTENT_BYTES}"}}'
        actual = [
            documented_fingerprint("golden", "version:1", params.format("0.01"), "{}"),
            documented_fingerprint("golden", "version:1", params.format("1"), "{}"),
            documented_fingerprint("golden", "version:1", params.format("1.0"), "{}"),
            documented_fingerprint("golden", "version:1", params.format("true"), "{}"),
            documented_fingerprint(
                "golden", "version:1", '{"act":"relu","layers":[64,32],"lr":0.5}', inputs
            ),
            hashlib.sha256(
                b"zentrack-content-v1\0B" + (3).to_bytes(8, "little") + b"abc"
            ).hexdigest(),
        ]
        expected = [
            GOLDEN_DEFAULTS,
            GOLDEN_LR_INT,
            GOLDEN_LR_FLOAT,
            GOLDEN_LR_BOOL,
            GOLDEN_BYTES_INPUT,
            GOLDEN_CONTENT_BYTES,
        ]
        assert expected == actual


class TestFingerprintCall:
    def test_function_and_method_spellings_agree(self):
        """zt.fingerprint(fn, ...) equals fn.fingerprint(...)."""
        data = np.arange(4)
        assert zt.fingerprint(train, data, lr=0.2) == train.fingerprint(data, lr=0.2)

    def test_equals_the_recorded_fingerprint(self):
        """The predicted fingerprint is the one the real call records."""
        data = np.arange(4)
        predicted = zt.fingerprint(train, data, lr=0.2, epochs=3)
        train(data, lr=0.2, epochs=3)
        assert [predicted] == [r.fingerprint for r in zt.lookup(predicted)]

    def test_class_step_equals_the_recorded_fingerprint(self):
        """For a class-step instance, the prediction matches the recorded call."""
        trainer = TrainerStep(lr=0.1, hidden_layers=[8])
        predicted = zt.fingerprint(trainer, [1, 2, 3])
        trainer.run([1, 2, 3])
        assert [predicted] == [r.fingerprint for r in zt.find(step="TrainerStep")]

    def test_never_runs_the_step(self):
        """Fingerprinting neither runs the step nor records anything."""
        before = steps_for_tests.CALLS["counted"]
        zt.fingerprint(counted, [1, 2], lr=0.3)
        counted.fingerprint([1, 2], lr=0.3)
        assert (before, 0) == (steps_for_tests.CALLS["counted"], zt.flush())

    @given(st.dictionaries(st.sampled_from("abcde"), tracked_values, min_size=2), st.randoms())
    def test_keyword_order_does_not_matter(self, values, random):
        """Keyword arguments in any order give the same fingerprint."""
        items = list(values.items())
        random.shuffle(items)
        assert keywords.fingerprint(**values) == keywords.fingerprint(**dict(items))

    @given(tracked_values, tracked_values, tracked_values)
    def test_positional_keyword_and_default_agree(self, a, b, c):
        """Giving an argument by position, keyword or default gives the same fingerprint."""
        expected = positional.fingerprint(a, b, c)
        spellings = [
            positional.fingerprint(a=a, b=b, c=c),
            positional.fingerprint(c=c, a=a, b=b),
            positional.fingerprint(a, c=c, b=b),
        ]
        assert [expected] * 3 == spellings
        assert positional.fingerprint(a) == positional.fingerprint(a, 2, c=3)

    @given(st.integers(min_value=-(2**52), max_value=2**52))
    def test_int_float_and_bool_differ(self, number):
        """1, 1.0 and True (also inside containers) give different fingerprints."""
        as_float = float(number)
        fingerprints = {
            positional.fingerprint(number),
            positional.fingerprint(as_float),
            positional.fingerprint([number]),
            positional.fingerprint([as_float]),
        }
        expected = 4
        assert expected == len(fingerprints)
        if number in (0, 1):
            pair = {positional.fingerprint(number), positional.fingerprint(bool(number))}
            expected = 2
            assert expected == len(pair)

    @given(param_names, tracked_values)
    def test_parameter_name_matters(self, name, value):
        """The same value under a different parameter name is a different fingerprint."""
        renamed = name + "x"
        assert anything.fingerprint(**{name: value}) != anything.fingerprint(**{renamed: value})

    def test_list_and_tuple_fingerprint_alike(self):
        """A tuple and a list with equal items fingerprint alike (documented)."""
        assert positional.fingerprint((64, 32)) == positional.fingerprint([64, 32])

    def test_input_content_matters(self):
        """Equal input contents match; different contents, dtypes or shapes do not."""
        base = train.fingerprint(np.arange(6), lr=0.1)
        assert base == train.fingerprint(np.arange(6).copy(), lr=0.1)
        others = {
            train.fingerprint(np.arange(1, 7), lr=0.1),
            train.fingerprint(np.arange(6, dtype=np.int32), lr=0.1),
            train.fingerprint(np.arange(6).reshape(2, 3), lr=0.1),
        }
        expected = 3
        assert expected == len(others - {base})

    def test_version_and_name_matter(self):
        """Changing a step's name or version changes its fingerprints."""

        def fit(lr=0.1):
            return None

        variants = {
            zt.step(name="a", version="1")(fit).fingerprint(),
            zt.step(name="b", version="1")(fit).fingerprint(),
            zt.step(name="a", version="2")(fit).fingerprint(),
            zt.step(name="a")(fit).fingerprint(),
        }
        expected = 4
        assert expected == len(variants)

    def test_unhashable_input_is_a_clear_type_error(self):
        """An input that cannot be digested by content names the step and the input."""
        with pytest.raises(UnhashableInputError) as info:
            train(object(), lr=0.1)
        message = str(info.value)
        expected = (True, True, True)
        assert expected == (
            isinstance(info.value, TypeError),
            "'train'" in message,
            "'data'" in message,
        )

    def test_not_a_step_is_a_type_error(self):
        """Fingerprinting something that is not a step raises TypeError."""
        with pytest.raises(TypeError):
            zt.fingerprint(len, [1])

    def test_method_step_fingerprint_matches_record(self):
        """For a @step method, Class.method.fingerprint(obj, ...) predicts the recorded call."""

        class Model:
            @zt.step
            def fit(self, data, lr=0.1):
                return None

        model = Model()
        model.fit(b"abc", lr=0.2)
        (record,) = zt.find(step="fit")
        assert [record.fingerprint] * 2 == [
            Model.fit.fingerprint(model, b"abc", lr=0.2),
            zt.fingerprint(model.fit, b"abc", lr=0.2),
        ]


HASHSEED_SCRIPT = """
import json
import numpy as np
import zentrack as zt
from tests.steps_for_tests import TrainerStep, mixed, train

print(json.dumps([
    zt.fingerprint(mixed, {"x", "y", "z", "w"}, config={"b": 1, "a": [1.0, None]}, tags=("a",)),
    zt.fingerprint(mixed, {"k2": b"v", "k1": frozenset({1, 2, 3})}, config={"z": {"y": 1}}),
    zt.fingerprint(train, np.arange(5), lr=0.1),
    zt.fingerprint(TrainerStep(lr=0.5, hidden_layers=[4, 2]), ["a", "b"]),
]))
"""


class TestStability:
    def test_same_across_processes_and_hash_seeds(self, run_python):
        """Fingerprints are equal in this process and in others with other PYTHONHASHSEEDs."""
        here = [
            zt.fingerprint(
                mixed, {"x", "y", "z", "w"}, config={"b": 1, "a": [1.0, None]}, tags=("a",)
            ),
            zt.fingerprint(mixed, {"k2": b"v", "k1": frozenset({1, 2, 3})}, config={"z": {"y": 1}}),
            zt.fingerprint(train, np.arange(5), lr=0.1),
            zt.fingerprint(TrainerStep(lr=0.5, hidden_layers=[4, 2]), ["a", "b"]),
        ]
        elsewhere = []
        for seed in ("0", "4242"):
            done = run_python(HASHSEED_SCRIPT, env={"PYTHONHASHSEED": seed})
            expected = (0, "")
            assert expected == (done.returncode, done.stderr.strip())
            elsewhere.append(json.loads(done.stdout))
        assert [here, here] == elsewhere


BASE_MODULE = '''
import zentrack as zt


@zt.step
def fit(data, lr=0.1):
    """Fit the model."""
    scaled = lr * 2
    return scaled
'''

COSMETIC_VARIANTS = {
    "comments": '''
import zentrack as zt

# a comment before the step
@zt.step
def fit(data, lr=0.1):  # trailing comment
    """Fit the model."""
    # explain the next line
    scaled = lr*2    # spacing changed too


    return scaled
''',
    "docstring": '''
import zentrack as zt


@zt.step
def fit(data, lr=0.1):
    """A completely different docstring.

    With a second paragraph.
    """
    scaled = lr * 2
    return scaled
''',
    "decorator_options": '''
import zentrack as zt


@zt.step(cache=False)
def fit(data, lr=0.1):
    """Fit the model."""
    scaled = lr * 2
    return scaled
''',
}

BEHAVIOUR_VARIANTS = {
    "constant": BASE_MODULE.replace("lr * 2", "lr * 3"),
    "operator": BASE_MODULE.replace("lr * 2", "lr + 2"),
    "extra_statement": BASE_MODULE.replace(
        "    return scaled", "    print(scaled)\n    return scaled"
    ),
}


CLASS_MODULE = '''
import zentrack as zt


@zt.step
class Fit:
    """Doc."""

    def __init__(self, lr=0.1):
        self.lr = lr

    def run(self, data):
        return self.lr * 2
'''


class TestCodeDigest:
    @pytest.fixture(autouse=True)
    def _modules(self, monkeypatch):
        """Register generated modules only for the duration of the test."""
        self.monkeypatch = monkeypatch

    def load(self, tmp_path, label, source, attribute="fit"):
        """Import ``source`` as a real module file, as a user's step module would be."""
        name = f"zt_code_{label}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        self.monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return getattr(module, attribute)

    @pytest.mark.parametrize("label", sorted(COSMETIC_VARIANTS))
    def test_cosmetic_change_keeps_digest_and_fingerprint(self, tmp_path, label):
        """Comments, formatting, docstrings and decorator options change nothing."""
        base = self.load(tmp_path, "base", BASE_MODULE)
        variant = self.load(tmp_path, label, COSMETIC_VARIANTS[label])
        assert (code_digest(base.__wrapped__), base.fingerprint(b"d", lr=0.5)) == (
            code_digest(variant.__wrapped__),
            variant.fingerprint(b"d", lr=0.5),
        )

    @pytest.mark.parametrize("label", sorted(BEHAVIOUR_VARIANTS))
    def test_body_change_changes_digest_and_fingerprint(self, tmp_path, label):
        """Any change to what runs changes the code digest and the fingerprint."""
        base = self.load(tmp_path, "base", BASE_MODULE)
        variant = self.load(tmp_path, label, BEHAVIOUR_VARIANTS[label])
        expected = (False, False)
        assert expected == (
            code_digest(base.__wrapped__) == code_digest(variant.__wrapped__),
            base.fingerprint(b"d", lr=0.5) == variant.fingerprint(b"d", lr=0.5),
        )

    def test_declared_version_replaces_code(self, tmp_path):
        """With version=..., a body change keeps the fingerprint."""
        pinned = BASE_MODULE.replace("@zt.step", '@zt.step(version="7")')
        base = self.load(tmp_path, "pinned_base", pinned)
        variant = self.load(tmp_path, "pinned_variant", pinned.replace("lr * 2", "lr * 3"))
        assert base.fingerprint(b"d") == variant.fingerprint(b"d")

    def test_class_body_change_changes_digest(self, tmp_path):
        """A change in a class step's method changes the class's code digest."""
        base = self.load(tmp_path, "cls_base", CLASS_MODULE, "Fit")
        docstring = self.load(
            tmp_path, "cls_doc", CLASS_MODULE.replace('"""Doc."""', '"""Other."""'), "Fit"
        )
        changed = self.load(tmp_path, "cls_body", CLASS_MODULE.replace("lr * 2", "lr * 4"), "Fit")
        expected = (True, False)
        assert expected == (
            code_digest(base) == code_digest(docstring),
            code_digest(base) == code_digest(changed),
        )

    def test_source_less_class_body_change_changes_fingerprint(self):
        """Without source (REPL, notebook, exec), a class step's body still counts."""
        namespace_a: dict = {"__name__": "zt_exec_a"}
        namespace_b: dict = {"__name__": "zt_exec_b"}
        exec(textwrap.dedent(CLASS_MODULE), namespace_a)
        exec(textwrap.dedent(CLASS_MODULE.replace("lr * 2", "lr * 4")), namespace_b)
        first, second = namespace_a["Fit"](), namespace_b["Fit"]()
        assert zt.fingerprint(first, b"d") != zt.fingerprint(second, b"d")

    def test_source_less_code_falls_back_to_bytecode(self):
        """Code built with exec still gets a digest that tells bodies apart."""
        namespace_a: dict = {}
        namespace_b: dict = {}
        exec("def fit(lr=0.1):\n    return lr * 2\n", namespace_a)
        exec("def fit(lr=0.1):\n    return lr * 3\n", namespace_b)
        assert code_digest(namespace_a["fit"]) != code_digest(namespace_b["fit"])


class TestContentDigest:
    def test_sets_are_order_free(self):
        """Sets with the same items digest alike whatever their iteration order."""
        items = [f"item{i}" for i in range(50)]
        assert content_digest(set(items)) == content_digest(set(reversed(items)))

    def test_types_are_told_apart(self):
        """b"1", "1", 1, 1.0 and True digest differently."""
        values = [b"1", "1", 1, 1.0, True, [1], (b"1",)]
        assert len(values) == len({content_digest(v) for v in values})
