#!/usr/bin/env python3
"""Mutation check: show that the scenario suite catches rule violations.

For each mutation of mutations.txt (a plausible bug that breaks one policy
rule of SPEC section 4) this script applies an exact text replacement to a
private copy of the source tree, rebuilds hp-harness incrementally, runs the
whole suite and requires exit code 1 with at least one scenario failing that
passed without the mutation ("KILLED").  Exit 0 means the suite did not
notice the bug ("SURVIVED": a gap in the suite); a build failure, exit 2/3,
a crash or a timeout is "BROKEN" (the mutation or the tooling is wrong).
Both count as not killed and make the check fail.

How the copy is kept cheap: the tree (git ls-files, tracked + untracked,
ignoring build dirs and reports) is mirrored once into WORK/src and built
once in WORK/build (Release, no sanitizers); each mutation then rewrites
one or two files in place, rebuilds only what changed, runs, and writes the
original bytes back with a fresh mtime so the next build recompiles them.
A second run with the same --work dir re-syncs only files that changed.

Standard library only.  Run it through run.sh (see README.md).
"""

import argparse
import os
import shlex
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXCLUDE_TOP = re.compile(r"^(build[^/]*|reports|\.git)(/|$)")
RESULT_LINE = re.compile(r"^(PASS|FAIL|ERROR)\s+(\S+)")
SUMMARY_LINE = re.compile(r"^(\d+) passed, (\d+) failed")
KINDS = ("sim", "real", "ctest")
# What each kind builds: the suite needs only hp-harness; real mode and
# CTest run the programs (their adapters are what such mutants break).
TARGETS = {"sim": ["hp-harness"], "real": ["hp-harness", "hp-fake-server", "hp-fake-client",
                                             "hp-fault-proxy"],
           "ctest": ["all"]}
CTEST_FAILED = re.compile(r"^\s*\d+ - (\S+) \((Failed|Timeout|SEGFAULT|Subprocess aborted|"
                          r"Exception|Child aborted|Not Run)")


class Replacement:
    def __init__(self, path, old, new, count):
        self.path = path
        self.old = old
        self.new = new
        self.count = count


class Mutation:
    def __init__(self, src_file, line):
        self.src_file = src_file
        self.line = line
        self.id = None
        self.rule = None
        self.what = ""
        self.expect = ""
        self.args = []
        self.repl = []
        self.kind = "sim"        # sim | real | ctest: what runs against the mutant
        self.ctest = ""          # kind ctest: the -R regex of the CTest tests to run
        self.obligations = []    # the obligations (docs/SYNC_POLICY.md) it aims at


class SpecError(Exception):
    pass


def parse_mutations(path):
    """Parses mutations.txt (format described at its top)."""
    muts = []
    cur = None
    block = None     # "old" / "new" while reading "|" lines
    rp = None        # the replacement being read: dict
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")

    def where(i):
        return "%s:%d" % (path, i + 1)

    def finish_repl(i):
        nonlocal rp
        if rp is None:
            return
        if rp.get("old") is None or rp.get("new") is None:
            raise SpecError("%s: replacement in %s needs old: and new:" % (where(i), rp["file"]))
        cur.repl.append(Replacement(rp["file"], "\n".join(rp["old"]), "\n".join(rp["new"]),
                                    rp.get("count", 1)))
        rp = None

    def finish_mut(i):
        nonlocal cur
        if cur is None:
            return
        finish_repl(i)
        if not cur.id or not cur.rule or not cur.repl:
            raise SpecError("%s: mutation starting at line %d needs id:, rule: and at least "
                            "one file:/old:/new:" % (where(i), cur.line))
        if cur.kind == "ctest" and not cur.ctest:
            raise SpecError("%s: mutation '%s' is kind ctest: it needs ctest: REGEX"
                            % (where(i), cur.id))
        if cur.kind == "real" and not cur.args:
            raise SpecError("%s: mutation '%s' is kind real: it needs args: (the scenarios "
                            "to run in real mode, e.g. --tag server-profile)" % (where(i), cur.id))
        muts.append(cur)
        cur = None

    for i, raw in enumerate(lines):
        if block and raw.startswith("|"):
            rp[block].append(raw[1:])
            continue
        block = None
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s == "===":
            finish_mut(i)
            continue
        m = re.match(r"^([a-z]+):\s*(.*)$", s)
        if not m:
            raise SpecError("%s: expected 'key: value', '|code' or '==='" % where(i))
        key, val = m.group(1), m.group(2)
        if cur is None:
            cur = Mutation(path, i + 1)
        if key == "id":
            if not re.match(r"^[a-z0-9][a-z0-9-]*$", val):
                raise SpecError("%s: bad id '%s'" % (where(i), val))
            cur.id = val
        elif key == "rule":
            if not re.match(r"^(WS-[1-6]|Q-[1-7]|C-[1-4]|CF-[1-4]|N-1|R-1|A-[1-4])$", val):
                raise SpecError("%s: unknown rule '%s'" % (where(i), val))
            cur.rule = val
        elif key == "what":
            cur.what = val
        elif key == "expect":
            cur.expect = val
        elif key == "args":
            # Shell words (a --client-cmd template has spaces); {build} is
            # replaced by the mutant's build dir when it runs.
            cur.args = shlex.split(val)
        elif key == "kind":
            if val not in KINDS:
                raise SpecError("%s: kind must be one of %s, got '%s'" % (where(i), ", ".join(KINDS), val))
            cur.kind = val
        elif key == "ctest":
            cur.ctest = val
        elif key == "obligation":
            for o in re.split(r"[,\s]+", val.strip()):
                if not re.match(r"^(WS|Q|C|CF|N|R|A)-[0-9]+\.[0-9]+$", o):
                    raise SpecError("%s: bad obligation id '%s' (e.g. Q-5.2)" % (where(i), o))
                cur.obligations.append(o)
        elif key == "file":
            finish_repl(i)
            rp = {"file": val, "old": None, "new": None}
        elif key == "count":
            if rp is None or not val.isdigit() or int(val) < 1:
                raise SpecError("%s: count: needs a file: before it and a number >= 1" % where(i))
            rp["count"] = int(val)
        elif key in ("old", "new"):
            if rp is None:
                raise SpecError("%s: %s: needs a file: before it" % (where(i), key))
            if val:
                raise SpecError("%s: put the code on '|' lines under %s:" % (where(i), key))
            rp[key] = []
            block = key
        else:
            raise SpecError("%s: unknown key '%s'" % (where(i), key))
    finish_mut(len(lines))
    seen = set()
    for m in muts:
        if m.id in seen:
            raise SpecError("%s:%d: duplicate id '%s'" % (m.src_file, m.line, m.id))
        seen.add(m.id)
    return muts


def log(msg):
    print(msg, flush=True)


def source_files(src):
    """Files of the tree: tracked + untracked-not-ignored when src is a git
    work tree, else a walk; build dirs, reports and .git left out."""
    files = None
    try:
        out = subprocess.run(["git", "-C", src, "ls-files", "-co", "--exclude-standard", "-z"],
                             check=True, capture_output=True).stdout
        files = [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(src):
            rel = os.path.relpath(root, src)
            rel = "" if rel == "." else rel + "/"
            dirs[:] = [d for d in dirs if not EXCLUDE_TOP.match(rel + d)]
            files += [rel + n for n in names]
    res = []
    for p in files:
        if EXCLUDE_TOP.match(p) or "/__pycache__/" in "/" + p:
            continue
        if os.path.isfile(os.path.join(src, p)):
            res.append(p)
    return sorted(res)


def sync_tree(src, dst):
    """Mirrors the files of src into dst; unchanged files keep their mtime
    (so the build stays incremental), stale ones are removed."""
    files = source_files(src)
    want = set(files)
    changed = 0
    for p in files:
        s = os.path.join(src, p)
        d = os.path.join(dst, p)
        with open(s, "rb") as f:
            data = f.read()
        try:
            with open(d, "rb") as f:
                same = f.read() == data
        except OSError:
            same = False
        if not same:
            os.makedirs(os.path.dirname(d), exist_ok=True)
            with open(d, "wb") as f:
                f.write(data)
            os.chmod(d, os.stat(s).st_mode & 0o777)
            changed += 1
    removed = 0
    for root, dirs, names in os.walk(dst):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), dst)
            if rel not in want:
                os.unlink(os.path.join(root, n))
                removed += 1
    return len(files), changed, removed


def write_fresh(path, data):
    """Writes bytes and makes sure the mtime moves forward (make compares
    mtimes; the object built from the previous content is older)."""
    with open(path, "wb") as f:
        f.write(data)
    now = time.time()
    os.utime(path, (now, now))


def build(builddir, jobs, log_path, targets=("hp-harness",)):
    with open(log_path, "wb") as lf:
        r = subprocess.run(["cmake", "--build", builddir, "--target"] + list(targets) +
                           ["-j", str(jobs)], stdout=lf, stderr=subprocess.STDOUT)
    return r.returncode == 0


def load_catalogues(paths):
    """Every catalogue file, in order; ids are unique across all of them."""
    muts = []
    for p in paths:
        muts += parse_mutations(p)
    seen = {}
    for m in muts:
        if m.id in seen:
            raise SpecError("%s:%d: duplicate id '%s' (first in %s)" % (m.src_file, m.line, m.id,
                                                                         seen[m.id]))
        seen[m.id] = m.src_file
    return muts


def default_catalogues():
    """mutations.txt (the first list) and every catalogue/*.txt."""
    paths = [os.path.join(HERE, "mutations.txt")]
    cat = os.path.join(HERE, "catalogue")
    if os.path.isdir(cat):
        paths += sorted(os.path.join(cat, n) for n in os.listdir(cat) if n.endswith(".txt"))
    return paths


def run_ctest(builddir, regex, jobs, timeout, log_path):
    """Runs the CTest tests matching regex in the mutant's build; returns
    (exit code or None on timeout, {test: "PASS"|"FAIL"}, summary)."""
    cmd = ["ctest", "--test-dir", builddir, "-R", regex, "-j", str(jobs), "--timeout",
           str(timeout), "--output-on-failure"]
    try:
        with open(log_path, "wb") as lf:
            r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, timeout=timeout + 60)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        rc = None
    results, summary = {}, ""
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"^\s*\d+/\d+ Test\s+#\d+: (\S+) \.+\s*(\*\*\*)?(\w+)", line)
            if m:
                results[m.group(1)] = "PASS" if m.group(3) == "Passed" else "FAIL"
            if "tests passed" in line:
                summary = line.strip()
    if rc is not None and rc != 0 and not results:
        rc = 3
    return (1 if rc and rc != 3 else rc), results, summary


def tail(path, n=15):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def run_suite(hx, srcdir, scen, jobs, extra, timeout, log_path):
    """Runs the suite (scen: the copy's scenarios/ unless --scenarios);
    returns (exit code or None on timeout, {id: status}, summary)."""
    cmd = [hx, "run", scen, "--no-reports", "--jobs", str(jobs)] + list(extra)
    try:
        with open(log_path, "wb") as lf:
            r = subprocess.run(cmd, cwd=srcdir, stdout=lf, stderr=subprocess.STDOUT,
                               timeout=timeout)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        rc = None
    results = {}
    summary = ""
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = RESULT_LINE.match(line)
            if m:
                results[m.group(2)] = m.group(1)
            if SUMMARY_LINE.match(line.strip()):
                summary = line.strip()
    return rc, results, summary


def check_match(m, srcdir):
    """Every replacement must match exactly `count` times: otherwise the
    code moved and the mutation must be rewritten (never guessed)."""
    errs = []
    for r in m.repl:
        p = os.path.join(srcdir, r.path)
        try:
            with open(p, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            errs.append("%s: %s" % (r.path, e.strerror))
            continue
        n = text.count(r.old)
        if n != r.count:
            errs.append("%s: 'old' text found %d times, expected %d" % (r.path, n, r.count))
        if r.old == r.new:
            errs.append("%s: old and new are identical" % r.path)
    return errs


def main():
    ap = argparse.ArgumentParser(description="Break policy rules in a copy of the code and "
                                 "show the scenario suite fails.")
    ap.add_argument("--src", default=os.path.normpath(os.path.join(HERE, "..", "..")),
                    help="source tree (default: this repository)")
    ap.add_argument("--work", help="work dir for the copy and its build (kept and reused; "
                    "default: a temporary dir, removed at the end)")
    ap.add_argument("--mutations", action="append", default=[],
                    help="a catalogue file (repeatable; default: mutations.txt and "
                    "catalogue/*.txt)")
    ap.add_argument("--kinds", default="sim,real,ctest",
                    help="run only mutations of these kinds (comma-separated; default all)")
    ap.add_argument("--per-rule", type=int, default=0,
                    help="a sample: at most N mutations per rule and kind, the first ones of "
                    "the catalogues in order (0 = all; CI's short variant)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only these mutation ids (comma-separated, repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--check", action="store_true",
                    help="only check that every replacement matches the sources exactly once")
    ap.add_argument("--jobs", type=int, default=2, help="build and suite parallelism (2)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per suite run (300)")
    ap.add_argument("--min-rules", type=int, default=10,
                    help="fail unless killed mutations cover this many rules (10)")
    ap.add_argument("--allow-red-baseline", action="store_true",
                    help="go on when the unmutated suite already fails (a mutation then "
                    "counts as killed only by a scenario that passed unmutated, and exit 3 "
                    "from scenario ERRORs is accepted; for development only)")
    ap.add_argument("--scenarios", help="run these scenarios (file or dir) instead of the "
                    "suite, e.g. to show that a new scenario kills a survivor")
    ap.add_argument("--markdown", help="also write the result table (Markdown) to this file")
    a = ap.parse_args()

    try:
        muts = load_catalogues(a.mutations or default_catalogues())
    except (SpecError, OSError) as e:
        print("mutation: %s" % e, file=sys.stderr)
        return 2
    only = {x for o in a.only for x in o.split(",") if x}
    unknown = only - {m.id for m in muts}
    if unknown:
        print("mutation: unknown id(s): %s" % ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    if only:
        muts = [m for m in muts if m.id in only]
    kinds = {k for k in a.kinds.split(",") if k}
    if kinds - set(KINDS):
        print("mutation: --kinds takes %s" % ", ".join(KINDS), file=sys.stderr)
        return 2
    muts = [m for m in muts if m.kind in kinds]
    if a.per_rule > 0:
        seen = {}
        sample = []
        for m in muts:
            k = (m.rule, m.kind)
            if seen.get(k, 0) < a.per_rule:
                seen[k] = seen.get(k, 0) + 1
                sample.append(m)
        muts = sample

    if a.list:
        for m in muts:
            log("%-5s %-5s %-40s %s" % (m.rule, m.kind, m.id, m.what))
        log("%d mutations, %d rules" % (len(muts), len({m.rule for m in muts})))
        return 0

    if a.check:
        bad = 0
        for m in muts:
            errs = check_match(m, a.src)
            for e in errs:
                log("STALE %s %s: %s" % (m.rule, m.id, e))
            bad += bool(errs)
            if not errs:
                log("ok    %s %s" % (m.rule, m.id))
        log("%d mutations, %d stale" % (len(muts), bad))
        return 1 if bad else 0

    t0 = time.time()
    tmp = None
    work = a.work
    if not work:
        tmp = tempfile.mkdtemp(prefix="hp-mutation-")
        work = tmp
    work = os.path.abspath(work)
    srcdir = os.path.join(work, "src")
    builddir = os.path.join(work, "build")
    logdir = os.path.join(work, "logs")
    for d in (srcdir, builddir, logdir):
        os.makedirs(d, exist_ok=True)
    try:
        return run_all(a, muts, srcdir, builddir, logdir, t0)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def run_all(a, muts, srcdir, builddir, logdir, t0):
    n, changed, removed = sync_tree(os.path.abspath(a.src), srcdir)
    log("copy: %d files (%d updated, %d removed) in %s" % (n, changed, removed, srcdir))

    stale = [(m, check_match(m, srcdir)) for m in muts]
    stale = [(m, e) for m, e in stale if e]
    for m, errs in stale:
        for e in errs:
            log("STALE %s %s: %s" % (m.rule, m.id, e))
    if stale:
        log("mutation: %d mutation(s) no longer match the code; rewrite them" % len(stale))
        return 3

    cfg_log = os.path.join(logdir, "configure.log")
    with open(cfg_log, "wb") as lf:
        r = subprocess.run(["cmake", "-S", srcdir, "-B", builddir, "-DCMAKE_BUILD_TYPE=Release",
                            "-DWITH_SANITIZERS=OFF", "-DWITH_WERROR=OFF",
                            "-DWITH_MUTATION_TESTS=OFF"], stdout=lf, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        log("mutation: configure failed:\n" + tail(cfg_log))
        return 3
    targets = sorted({t for m in muts for t in TARGETS[m.kind]} or {"hp-harness"})
    if "all" in targets:
        targets = ["all"]
    blog = os.path.join(logdir, "build-baseline.log")
    if not build(builddir, a.jobs, blog, targets):
        log("mutation: the unmutated tree does not build:\n" + tail(blog))
        return 3
    hx = os.path.join(builddir, "harness", "hp-harness")
    scen = os.path.abspath(a.scenarios) if a.scenarios else "scenarios/"
    if a.scenarios:
        log("scenarios: %s (instead of the copy's scenarios/)" % scen)

    def run_for(m, log_path):
        """What runs against mutation m (or, unmutated, its baseline)."""
        if m.kind == "ctest":
            return run_ctest(builddir, m.ctest, a.jobs, a.timeout, log_path)
        extra = [x.replace("{build}", builddir) for x in m.args]
        if m.kind == "real":
            extra = ["--mode", "real", "--bin-dir", builddir] + extra
        return run_suite(hx, srcdir, scen, a.jobs, extra, a.timeout, log_path)

    # One baseline per distinct command: the sim suite, each real-mode
    # selection, each CTest regex.  Each must be green unmutated.
    baselines = {}
    for m in muts:
        key = (m.kind, m.ctest, tuple(m.args))
        if key in baselines:
            continue
        blog = os.path.join(logdir, "baseline-%d.log" % len(baselines))
        rc, base, summary = run_for(m, blog)
        base_failed = {k for k, v in base.items() if v != "PASS"}
        log("baseline %s %s: exit %s, %s (%.0f s so far)" % (
            m.kind, m.ctest or " ".join(m.args) or "suite", rc, summary or "no summary",
            time.time() - t0))
        ok_rcs = (0, 1, 3) if a.allow_red_baseline else (0, 1)
        if rc not in ok_rcs or not base:
            log("mutation: the unmutated run does not work (exit %s):\n%s" % (rc, tail(blog)))
            return 3
        if base_failed:
            log("baseline: %d fail without any mutation: %s"
                % (len(base_failed), ", ".join(sorted(base_failed))))
            if not a.allow_red_baseline:
                log("mutation: the baseline must be green first (or pass --allow-red-baseline)")
                return 3
        baselines[key] = base_failed

    rows = []
    for m in muts:
        base_failed = baselines[(m.kind, m.ctest, tuple(m.args))]
        originals = {}
        for r in m.repl:
            p = os.path.join(srcdir, r.path)
            if p not in originals:
                with open(p, "rb") as f:
                    originals[p] = f.read()
        texts = {p: data.decode("utf-8") for p, data in originals.items()}
        for r in m.repl:
            p = os.path.join(srcdir, r.path)
            texts[p] = texts[p].replace(r.old, r.new)
        status, detail, newly = "BROKEN", "", []
        t1 = time.time()
        try:
            for p, t in texts.items():
                write_fresh(p, t.encode("utf-8"))
            mlog = os.path.join(logdir, "build-%s.log" % m.id)
            if not build(builddir, a.jobs, mlog, TARGETS[m.kind]):
                detail = "does not compile: see %s" % mlog
            else:
                slog = os.path.join(logdir, "run-%s.log" % m.id)
                rc, res, summary = run_for(m, slog)
                newly = sorted(k for k, v in res.items() if v != "PASS" and k not in base_failed)
                if rc is None:
                    detail = "timed out after %d s: see %s" % (a.timeout, slog)
                elif newly and (rc == 1 or (rc == 3 and a.allow_red_baseline)):
                    status = "KILLED"
                    detail = "%d %s failed: %s" % (len(newly), "test" if m.kind == "ctest"
                                                   else "scenario(s)", ", ".join(newly))
                elif rc in (0, 1) or (rc == 3 and a.allow_red_baseline):
                    status = "SURVIVED"
                    detail = "exit %d, %s; should be caught by %s" % (
                        rc, summary or "no summary", m.expect or "?")
                else:
                    detail = "exit %d (2 = invalid input, 3 = runtime error, else a " \
                             "crash): see %s" % (rc, slog)
        finally:
            for p, data in originals.items():
                write_fresh(p, data)
        log("%s %s %s %s (%s) [%.0f s]" % (status, m.rule, m.kind, m.id, detail,
                                           time.time() - t1))
        rows.append((m, status, detail, newly))

    # Leave the work dir's binaries unmutated (the sources were restored above).
    if rows and not build(builddir, a.jobs, os.path.join(logdir, "build-restored.log"), targets):
        log("mutation: warning: rebuilding the restored tree failed")
    killed = [r for r in rows if r[1] == "KILLED"]
    not_killed = [r for r in rows if r[1] != "KILLED"]
    rules = sorted({r[0].rule for r in killed}, key=rule_key)
    log("rules with a killed mutation (%d): %s" % (len(rules), " ".join(rules)))
    for kind in KINDS:
        mine = [r for r in rows if r[0].kind == kind]
        if mine:
            log("%s: %d of %d killed" % (kind, sum(1 for r in mine if r[1] == "KILLED"),
                                         len(mine)))
    log("total %.0f s" % (time.time() - t0))
    if a.markdown:
        write_markdown(a.markdown, rows, rules)
    log("%d killed, %d survived" % (len(killed), len(not_killed)))
    if not_killed:
        return 1
    if len(rules) < a.min_rules and not a.only and len({m.rule for m in muts}) >= a.min_rules:
        log("mutation: only %d rules covered, %d wanted" % (len(rules), a.min_rules))
        return 1
    return 0


def rule_key(r):
    order = ["WS", "Q", "C", "CF", "N", "R", "A"]
    p, n = r.split("-")
    return (order.index(p), int(n))


def write_markdown(path, rows, rules):
    with open(path, "w", encoding="utf-8") as f:
        f.write("| result | rule | kind | catalogue | mutation | the bug | caught by |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for m, status, detail, newly in rows:
            if status == "KILLED":
                shown = newly if len(newly) <= 6 else newly[:5]
                caught = ", ".join("`%s`" % s for s in shown)
                if len(shown) < len(newly):
                    caught += " and %d more" % (len(newly) - len(shown))
            else:
                caught = detail
            f.write("| %s | %s | %s | %s | `%s` | %s | %s |\n" % (
                status, m.rule, m.kind, os.path.basename(m.src_file), m.id, m.what, caught))
        f.write("\n%d killed, %d survived; rules with a killed mutation (%d): %s\n" % (
            sum(1 for r in rows if r[1] == "KILLED"), sum(1 for r in rows if r[1] != "KILLED"),
            len(rules), ", ".join(rules)))


if __name__ == "__main__":
    sys.exit(main())
