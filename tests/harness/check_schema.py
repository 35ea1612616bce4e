#!/usr/bin/env python3
"""Every suite file validates against docs/scenario.schema.json (the editor's
view of the language agrees with hp-harness on the positive side).  Skips
(exit 0) when PyYAML or jsonschema are not installed."""
import glob
import json
import os
import sys

try:
    import jsonschema
    import yaml
except ImportError:
    print("skipped: PyYAML or jsonschema not installed")
    sys.exit(0)

root = sys.argv[1] if len(sys.argv) > 1 else "."
schema = json.load(open(os.path.join(root, "docs", "scenario.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
files = sorted(glob.glob(os.path.join(root, "scenarios", "**", "*.yaml"), recursive=True))
for f in files:
    with open(f) as fh:
        doc = yaml.safe_load(fh)
    for err in validator.iter_errors(doc):
        bad += 1
        print("%s: %s at %s" % (f, err.message[:300], "/".join(map(str, err.absolute_path))))
        break
print("%d files, %d not matching the schema" % (len(files), bad))
sys.exit(1 if bad else 0)
