#!/usr/bin/env python3
"""Totals of a `dotnet test --logger trx` run, for `make test`.

Prints each failed test (assembly, name, first lines of its message) and then, as the
last line, `N passed, N failed`. The failures come first so that a CI log cut to its
last lines still names them. Exit code: 0 when nothing failed, 1 otherwise.

Usage: trx-summary.py RESULTS_DIR DOTNET_TEST_EXIT_CODE
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
MESSAGE_LINES = 3


def main() -> int:
    results_dir, rc = sys.argv[1], int(sys.argv[2])
    passed = failed = 0
    failures = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.trx"))):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            print(f"{path}: unreadable results file ({e}): counting it as 1 failure")
            failed += 1
            continue
        counters = root.find("t:ResultSummary/t:Counters", NS)
        if counters is not None:
            passed += int(counters.get("passed", "0"))
            failed += int(counters.get("failed", "0"))
        storage = {}
        for test in root.iterfind("t:TestDefinitions/t:UnitTest", NS):
            storage[test.get("id")] = os.path.basename(test.get("storage", "")).removesuffix(".dll")
        for result in root.iterfind("t:Results/t:UnitTestResult", NS):
            if result.get("outcome") != "Failed":
                continue
            message = result.findtext("t:Output/t:ErrorInfo/t:Message", default="", namespaces=NS)
            lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
            failures.append((storage.get(result.get("testId"), "?"), result.get("testName", "?"),
                             result.get("duration", ""), lines[:MESSAGE_LINES]))
    if failures:
        print(f"failed tests ({len(failures)}):")
        for assembly, name, duration, lines in failures:
            print(f"  {assembly}: {name} ({duration})")
            for line in lines:
                print(f"      {line[:300]}")
    if rc != 0 and failed == 0:
        print("the test run failed outside any test (build error, crash or hang): counting it as 1 failure")
        failed = 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
