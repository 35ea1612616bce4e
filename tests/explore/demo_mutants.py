#!/usr/bin/env python3
"""The shrinker on deliberate bugs: hp-harness explore against mutants of the
mutation check (tests/mutation), each reduced to a scenario of at most 10
steps.

For each mutant: a private copy of the tree gets the one-rule bug
(tests/mutation catalogues, same format and helpers as mutate.py), hp-harness
is rebuilt there, `hp-harness explore` runs with the mutant's settings below
until it finds a failure, shrinks it and writes a scenario.  The script then
checks what the demonstration claims:
  - explore exited 1 and wrote one scenario of at most 10 steps
    (epilogue and convergence expectation included);
  - `hp-harness run` of that file fails against the mutant (explore already
    ran it once from its text; here it is the real command line);
  - the same file passes against the unmutated build (so it is the bug, not
    the scenario, that fails).
With --save the scenarios are copied to tests/explore/<mutant-id>.yaml (the
files committed there came from this script).

  tests/explore/demo_mutants.py --build build            # all three, ~2-4 min on 2 cores
  tests/explore/demo_mutants.py --build build --only ws2-replay-skips-first --save
  tests/explore/demo_mutants.py --work /tmp/expl-mut ...  # keep the copy (incremental)

Exit 0 when every demonstration holds, 1 otherwise, 2 on bad usage.
Not part of CTest (it rebuilds the tree per mutant); CTest runs the saved
scenarios against the unmutated build instead (explore.shrunk).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "mutation"))
import mutate  # noqa: E402  (the mutation check's catalogue parser and tree copy)

# mutant id -> explore arguments that find it (found with this script; the
# seed is the first one tried that found the mutant's failure).
DEMOS = {
    "ws2-replay-skips-first": ["--seed", "1", "--clients", "2", "--steps", "30"],
    "cf4-server-conflict-at-info": ["--seed", "1", "--clients", "2", "--steps", "30"],
    "q1-queue-not-loaded": ["--seed", "1", "--clients", "2", "--steps", "30"],
}


def steps_of(path):
    """Number of steps in a scenario written by explore (the `  - ` items)."""
    n = 0
    in_steps = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("steps:"):
                in_steps = True
            elif in_steps and line.startswith("  - "):
                n += 1
    return n


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="the unmutated build dir (has harness/hp-harness)")
    ap.add_argument("--work", help="work dir for the mutated copy (default: temporary)")
    ap.add_argument("--only", action="append", default=[], help="mutant ids (comma-separated)")
    ap.add_argument("--save", action="store_true", help="copy the scenarios to tests/explore/")
    ap.add_argument("--budget", default="120s", help="explore budget per mutant")
    ap.add_argument("--jobs", default="2")
    a = ap.parse_args()
    clean_hx = os.path.join(os.path.abspath(a.build), "harness", "hp-harness")
    if not os.access(clean_hx, os.X_OK):
        print("demo_mutants: no %s (build first: bash scripts/build.sh normal)" % clean_hx)
        return 2
    only = [x for o in a.only for x in o.split(",") if x]
    ids = only or list(DEMOS)
    for i in ids:
        if i not in DEMOS:
            print("demo_mutants: no demonstration for '%s' (known: %s)" % (i, ", ".join(DEMOS)))
            return 2
    muts = {m.id: m for m in mutate.load_catalogues(mutate.default_catalogues())}
    work = a.work or tempfile.mkdtemp(prefix="hx-explore-mut-")
    src = os.path.join(work, "src")
    bld = os.path.join(work, "build")
    os.makedirs(src, exist_ok=True)
    ok_all = True
    try:
        for mid in ids:
            m = muts[mid]
            mutate.sync_tree(ROOT, src)
            for r in m.repl:
                p = os.path.join(src, r.path)
                with open(p, encoding="utf-8") as f:
                    text = f.read()
                if text.count(r.old) != r.count:
                    print("%s: STALE (the code moved)" % mid)
                    return 1
                mutate.write_fresh(p, text.replace(r.old, r.new).encode("utf-8"))
            if not os.path.isdir(bld):
                c = run(["cmake", "-S", src, "-B", bld, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
                if c.returncode:
                    print(c.stdout[-2000:], c.stderr[-2000:])
                    return 1
            if not mutate.build(bld, a.jobs, os.path.join(work, "build.log")):
                print("%s: BROKEN (does not build; %s/build.log)" % (mid, work))
                ok_all = False
                continue
            hx = os.path.join(bld, "harness", "hp-harness")
            out = os.path.join(work, "out-" + mid)
            shutil.rmtree(out, ignore_errors=True)
            e = run([hx, "explore", "--budget", a.budget, "--jobs", a.jobs, "--out", out] +
                    DEMOS[mid], cwd=src)
            files = sorted(os.listdir(out)) if os.path.isdir(out) else []
            print("== %s (%s): %s" % (mid, m.rule, m.what))
            print("\n".join("   " + l for l in e.stdout.strip().split("\n")))
            if e.returncode != 1 or len(files) != 1:
                print("   NOT SHOWN: explore exited %d with %d files" % (e.returncode, len(files)))
                ok_all = False
                continue
            f = os.path.join(out, files[0])
            n = steps_of(f)
            bad = run([hx, "run", f, "--no-reports"], cwd=src)
            good = run([clean_hx, "run", f, "--no-reports"], cwd=ROOT)
            shown = n <= 10 and bad.returncode == 1 and good.returncode == 0
            print("   %d steps; mutant: exit %d; unmutated: exit %d -> %s" %
                  (n, bad.returncode, good.returncode, "SHOWN" if shown else "NOT SHOWN"))
            ok_all &= shown
            if a.save and shown:
                dst = os.path.join(HERE, mid + ".yaml")
                with open(f, encoding="utf-8") as fi:
                    body = fi.read()
                body = body.replace("id: explore/seed-", "id: explore/%s-seed-" % mid, 1)
                hdr = ("# Shrunk by hp-harness explore from mutant '%s' (%s, tests/mutation):\n"
                       "#   %s\n# Against the mutant this scenario fails; unmutated it passes.\n"
                       "# Regenerate: tests/explore/demo_mutants.py --only %s --save\n"
                       % (mid, m.rule, m.what, mid))
                with open(dst, "w", encoding="utf-8") as fo:
                    fo.write(hdr + body.replace("THIS_FILE", "tests/explore/%s.yaml" % mid))
                print("   saved %s" % os.path.relpath(dst, ROOT))
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
