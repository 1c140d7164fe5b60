"""Decoding items by annotation and encoding results."""

import dataclasses
import typing
import unittest

from pluginpool import DecodeError
from pluginpool._codec import decoder, encode, parse


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class DecodeTest(unittest.TestCase):
    def ok(self, ann, raw, want):
        got = decoder(ann)(raw)
        self.assertEqual(got, want, "%r as %r" % (raw, ann))
        self.assertIs(type(got), type(want), "%r as %r" % (raw, ann))

    def bad(self, ann, raw, *fragments):
        with self.assertRaises(DecodeError) as cm:
            decoder(ann)(raw)
        for f in fragments:
            self.assertIn(f, str(cm.exception))

    def test_int(self):
        self.ok(int, b"7", 7)
        self.ok(int, b"0", 0)
        self.ok(int, b"-12", -12)
        self.ok(int, b" 42 ", 42)
        self.ok(int, b"123456789012345678901234567890", 123456789012345678901234567890)
        self.bad(int, b"007", "cannot decode input 007 as int", "extra data")
        self.bad(int, b"2.5", "want int, got a JSON number")
        self.bad(int, b'"3"', "want int, got a JSON string")
        self.bad(int, b"true", "want int, got a JSON boolean")
        self.bad(int, b"1_000", "extra data")
        self.bad(int, b"", "not valid JSON")

    def test_float(self):
        self.ok(float, b"2.5", 2.5)
        self.ok(float, b"3", 3.0)
        self.ok(float, b"-1e3", -1000.0)
        self.bad(float, b"NaN", "NaN is not JSON")
        self.bad(float, b"Infinity", "not JSON")
        self.bad(float, b"nan", "not valid JSON")

    def test_str(self):
        self.ok(str, b'"hello"', "hello")
        self.ok(str, b'"a\\"b"', 'a"b')
        self.ok(str, '"héllo"'.encode(), "héllo")
        self.ok(str, b'"\\u00e9"', "é")
        self.bad(str, b'"a\tb"', "Invalid control character")
        self.bad(str, b"hello", "not valid JSON")
        self.bad(str, b"1", "want str, got a JSON number")
        self.bad(str, b'"\xff"', "not valid UTF-8")

    def test_bool_none_any(self):
        self.ok(bool, b"true", True)
        self.bad(bool, b"1", "want bool")
        self.ok(typing.Optional[int], b"null", None)
        self.ok(typing.Optional[int], b"5", 5)
        self.bad(typing.Optional[int], b'"x"', "want")
        self.ok(typing.Any, b'{"a": [1, 2]}', {"a": [1, 2]})
        import inspect
        self.ok(inspect.Parameter.empty, b"[1]", [1])
        self.bad(inspect.Parameter.empty, b"[1", "cannot decode input [1 as JSON")

    def test_containers(self):
        self.ok(dict, b'{"a": 1}', {"a": 1})
        self.ok(typing.Dict[str, int], b'{"a": 1}', {"a": 1})
        self.ok(list, b"[1, 2]", [1, 2])
        self.ok(typing.List[int], b"[]", [])
        self.bad(dict, b"[1]", "want dict, got a JSON array")
        self.ok(Point, b'{"x": 1, "y": 2}', Point(1, 2))
        self.bad(Point, b'{"z": 1}', "cannot decode input as Point")

    def test_bytes(self):
        self.ok(bytes, b' {"raw": true} ', b' {"raw": true} ')

    def test_long_input_is_shortened(self):
        raw = b'"' + b"x" * 200 + b'"'
        with self.assertRaises(DecodeError) as cm:
            decoder(int)(raw)
        self.assertLess(len(str(cm.exception)), 150)
        self.assertIn("...", str(cm.exception))

    def test_parse_strict(self):
        self.assertEqual(parse(b"\t[1]\n"), [1])
        for raw in (b"1 2", b"{", b"-", b"'a'", b"[NaN]", b"01"):
            with self.assertRaises(ValueError, msg=raw):
                parse(raw)


class EncodeTest(unittest.TestCase):
    def test_scalars(self):
        self.assertEqual(encode(42), "42")
        self.assertEqual(encode(-1), "-1")
        self.assertEqual(encode(2.5), "2.5")
        self.assertEqual(encode(1e100), "1e+100")
        self.assertEqual(encode(True), "true")
        self.assertEqual(encode("a\"b\n"), '"a\\"b\\n"')
        self.assertEqual(encode("é"), '"é"')
        self.assertIsNone(encode(None))

    def test_not_json(self):
        for v in (float("nan"), float("inf"), [float("-inf")]):
            with self.assertRaises(ValueError):
                encode(v)
        with self.assertRaises(TypeError):
            encode(object())

    def test_containers(self):
        self.assertEqual(encode({"a": [1, 2.5, None, "x"]}), '{"a":[1,2.5,null,"x"]}')
        self.assertEqual(encode((1, 2)), "[1,2]")
        self.assertEqual(encode(Point(1, 2)), '{"x":1,"y":2}')
        self.assertEqual(encode({"p": Point(3)}), '{"p":{"x":3,"y":0}}')

    def test_raw_json(self):
        self.assertEqual(encode(b'{"a":1}'), '{"a":1}')
        self.assertEqual(encode(b'{\n "a": 1\n}'), '{  "a": 1 }')
        with self.assertRaises(ValueError):
            encode(b"\xff")

    def test_subclasses(self):
        import enum

        class Color(enum.IntEnum):
            RED = 1
        self.assertEqual(encode(Color.RED), "1")


if __name__ == "__main__":
    unittest.main()
