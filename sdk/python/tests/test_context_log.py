"""The task context's cancellation, and log lines as hclog JSON."""

import json
import logging
import os
import re
import unittest

from pluginpool._context import CANCELED, TIMEOUT, Context
from pluginpool._log import HclogHandler, hclog_level, timestamp


class ContextTest(unittest.TestCase):
    def test_cancel_targets_one_item(self):
        c = Context()
        c._item = 1
        c._cancel(1, TIMEOUT)
        self.assertTrue(c.cancelled)
        self.assertTrue(c.timed_out)
        # The runner moves on: a cancel meant for item 1 no longer shows,
        # and one that arrives late for it is ignored.
        c._item = 2
        self.assertFalse(c.cancelled)
        c._cancel(1, CANCELED)
        self.assertFalse(c.cancelled)
        self.assertFalse(c.done.is_set())
        c._cancel(2, CANCELED)
        self.assertTrue(c.cancelled)
        self.assertFalse(c.timed_out)
        self.assertTrue(c.done.is_set())
        self.assertTrue(c.wait(0))

    def test_first_reason_wins(self):
        c = Context()
        c._cancel(0, CANCELED)
        c._cancel(0, TIMEOUT)
        self.assertFalse(c.timed_out)

    def test_no_timeout(self):
        c = Context()
        self.assertIsNone(c.deadline)
        self.assertIsNone(c.remaining())
        self.assertFalse(c.wait(0))


class LogTest(unittest.TestCase):
    def test_timestamp_layout(self):
        # go-plugin's host parses exactly 2006-01-02T15:04:05.000000Z07:00;
        # any other layout turns the line into plain text.
        self.assertRegex(timestamp(1700000000.25), r"^2023-11-14T22:13:20\.250000Z$")

    def test_levels(self):
        self.assertEqual([hclog_level(n) for n in (5, 10, 20, 30, 40, 50)],
                         ["trace", "debug", "info", "warn", "error", "error"])

    def test_record(self):
        r, w = os.pipe()
        try:
            h = HclogHandler(w)
            log = logging.getLogger("pluginpool-test")
            log.addHandler(h)
            log.propagate = False
            log.warning("hello %s", "there", extra={"user": "ann"})
            line = os.read(r, 65536).decode()
        finally:
            os.close(r)
            os.close(w)
        self.assertTrue(line.endswith("}\n"))
        entry = json.loads(line)
        self.assertEqual(entry["@level"], "warn")
        self.assertEqual(entry["@message"], "hello there")
        self.assertEqual(entry["logger"], "pluginpool-test")
        self.assertEqual(entry["user"], "ann")
        self.assertTrue(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", entry["@timestamp"]))


if __name__ == "__main__":
    unittest.main()
