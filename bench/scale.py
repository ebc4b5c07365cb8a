#!/usr/bin/env python3
"""Bulk loader for Valet's benchmark scale runs (issue #5 item 3): N live refresh tokens and
N Account records written straight into a Valet database that `valet serve` has created and
migrated (and that holds at least one refresh token and one Account made through the API: they
are the templates). Python standard library only; PostgreSQL through the `psql` client (COPY).

  python3 bench/scale.py --sqlite DATA_DIR/valet.db --refresh-tokens 1000000 --accounts 1000000
  python3 bench/scale.py --postgres postgres://postgres@127.0.0.1:5432/DB --refresh-tokens ... --accounts ...

Stop the Valet server first (SQLite: the load switches the file out of WAL for the load and back;
PostgreSQL: any order is safe, but the start-up measured afterwards needs a fresh process anyway).

What it writes, shaped exactly as Valet writes it (crates/valet-store, crates/valet-data):
  * token_families: one per token, id = the creation time in 8 sortable base-62 characters + 14
    alphanumerics (Engine::new_family_id),
    org/app/user/scopes/grant_type/auth_time copied from the template token's family, created_at
    = load time spread over the last N ms, revoked_at NULL;
  * refresh_tokens: a fresh value "5Aep861" + the creation time (8 sortable characters) + 72
    chars of [A-Za-z0-9._] + "==" (secret::new_refresh_token); token_hash = that time head +
    the value's lowercase hex SHA-256 (TokenHash::of), family_id = its family, the
    other columns copied from the template (org, app, user, scopes, expires_at), created_at =
    last_used_at = the family's, revoked_at / replaced_by / successor_sealed NULL;
  * obj_account: id = "001" + "0" + 11 alphanumerics + the 3-character checksum (DataApi::new_id,
    ids::to18), name "Scale Account 0000001"..., created/modified dates = load time, every other
    column (org, owner, created_by, is_deleted = 0, defaults) copied from the template Account.
Rows go in sorted by primary key (and the families' ids sorted alongside the tokens' hashes), so
the primary keys are appended to; the other indexes of the three tables are dropped before the
rows go in and made again afterwards from their own definitions (read back from the catalog), all
in the one transaction. The database ends up with the same rows and the same indexes as if Valet
had written them, but its B-trees are packed fuller than random-order inserts leave them (about
two-thirds full on average), so the sizes reported are a lower bound for a database grown in use. A
sample of the token values (they exist nowhere else) is written to --tokens-out, one per line, and
a sample of the new Account ids to --accounts-out, for the benchmark's requests.

SQLite: one transaction of executemany() over generators, `synchronous=OFF` and a rollback journal
for the load only, foreign keys checked in bulk (`PRAGMA foreign_key_check`) before the commit,
then back to WAL (as Valet keeps it) and an fsync. No ANALYZE: Valet never runs it, so a database
that grew to this size in use would have no statistics either.
PostgreSQL: one psql session, one transaction: the three `COPY ... FROM STDIN` with the
foreign-key triggers off (`session_replication_role = replica`, which needs a superuser, as the
benchmark's trust-auth `postgres` is), the indexes, then every single-column foreign key of the
three tables checked in bulk (one anti-join each; the transaction aborts on a violation); then
`VACUUM (ANALYZE)` of the three tables (what autovacuum does after a bulk insert) and a CHECKPOINT.

Prints a JSON summary on stdout (times, rows, database size).
"""

import argparse
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

# crates/valet-core/src/rand.rs
TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TOKEN_TABLE = bytes(TOKEN_CHARS[b & 63] for b in range(256))
# alnum(): bytes >= 248 are rejected, the rest map to ALNUM[b % 62] (uniform).
_ALNUM_TABLE = bytes(ALNUM[b % 62] if b < 248 else 0 for b in range(256))
_ALNUM_REJECT = bytes(range(248, 256))
_ID18_MAP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_UPPER_BITS = {c: ("1" if 65 <= c <= 90 else "0") for c in range(128)}

REFRESH_PREFIX = "5Aep861"  # secret::new_refresh_token
ACCOUNT_TABLE = "obj_account"  # valet-data: one table per object, Account -> obj_account
ACCOUNT_PREFIX = "001"


def log(*a):
    print("[scale]", *a, file=sys.stderr, flush=True)


def alnum_strings(n, length):
    """n random strings of `length` alphanumerics (valet_core::rand::alnum)."""
    out = []
    need = n * length
    buf = b""
    while len(buf) < need:
        buf += os.urandom(int((need - len(buf)) * 1.04) + 64).translate(_ALNUM_TABLE, _ALNUM_REJECT)
    s = buf[:need].decode("ascii")
    for i in range(n):
        out.append(s[i * length:(i + 1) * length])
    return out


def to18(id15):
    """crates/valet-core/src/ids.rs to18: the case-safe 3-character checksum (bit j of chunk k is
    set when character 5k+j is an ASCII capital)."""
    bits = id15.translate(_UPPER_BITS)
    return id15 + _ID18_MAP[int(bits[4::-1], 2)] + _ID18_MAP[int(bits[9:4:-1], 2)] + _ID18_MAP[int(bits[14:9:-1], 2)]


SORTED_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sortable(ms):
    """valet_core::clock::sortable: ms as 8 base-62 characters that sort as the times do."""
    out = []
    for _ in range(8):
        ms, r = divmod(ms, 62)
        out.append(SORTED_BASE62[r])
    return "".join(reversed(out))


def storage_key(value):
    """TokenHash::of for a refresh token (valet_core::secret): the 8-character time head after
    "5Aep861", when it is one, + the value's SHA-256 hex; older values: the bare digest."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    head = value[len(REFRESH_PREFIX):len(REFRESH_PREFIX) + 8] if value.startswith(REFRESH_PREFIX) else ""
    return head + digest if len(head) == 8 and head.isascii() and head.isalnum() else digest


def created_times(n, now_ms):
    """Row i's creation time: the last n milliseconds, oldest first (as family_rows/refresh_rows)."""
    return (now_ms - (n - i) for i in range(n))


def refresh_tokens(n, sample, now_ms):
    """-> (n storage keys in ascending order, `sample` token values among them). Token i is
    "5Aep861" + sortable(created_i) + 72 chars of [A-Za-z0-9._] + "==" and its key is the time
    head + its SHA-256 hex (secret::new_refresh_token, TokenHash::of): the keys ascend with i."""
    raw = os.urandom(n * 72).translate(_TOKEN_TABLE).decode("ascii")
    step = max(1, n // max(1, sample)) if sample else 0
    keys = []
    kept = []
    for i, t in enumerate(created_times(n, now_ms)):
        v = REFRESH_PREFIX + sortable(t) + raw[i * 72:(i + 1) * 72] + "=="
        keys.append(storage_key(v))
        if step and i % step == 0 and len(kept) < sample:
            kept.append(v)
    return keys, kept


def unique_sorted(make, n, existing=()):
    """n unique values from make(k) (-> list of k values), sorted, none in `existing`."""
    seen = set(existing)
    vals = set()
    while len(vals) < n:
        for v in make(n - len(vals)):
            if v not in seen:
                vals.add(v)
    return sorted(vals)


def account_ids(n, existing):
    def make(k):
        return [to18(ACCOUNT_PREFIX + "0" + s) for s in alnum_strings(k, 11)]
    return unique_sorted(make, n, existing)


def family_ids(n, now_ms):
    """Engine::new_family_id: sortable(created) + 14 alphanumerics; ascending with i."""
    return [sortable(t) + r for t, r in zip(created_times(n, now_ms), alnum_strings(n, 14))]


def pick_sample(xs, k):
    return xs if len(xs) <= k else random.sample(xs, k)


def write_lines(path, lines):
    if path:
        with open(path, "w") as f:
            for l in lines:
                f.write(l + "\n")


# --------------------------------------------------------------------------------------------
# the rows (as dicts of overrides over a template row, column by column)

def plan(n_tokens, n_accounts, now_ms, sample, existing_accounts):
    t0 = time.time()
    hashes, tokens = refresh_tokens(n_tokens, sample, now_ms) if n_tokens else ([], [])
    fams = family_ids(n_tokens, now_ms) if n_tokens else []
    accs = account_ids(n_accounts, existing_accounts) if n_accounts else []
    log(f"generated {n_tokens:,} token hashes + families and {n_accounts:,} account ids in {time.time() - t0:.1f} s")
    return hashes, tokens, fams, accs


# Columns the loaded rows leave NULL whatever the template holds (a live token, a family not revoked).
NULLED = {"token_families": ("revoked_at",), "refresh_tokens": ("revoked_at", "replaced_by", "successor_sealed")}


def non_null(table, cols, template):
    """-> (columns, template values) without the columns that are NULL in the loaded rows: they are left out of the
    INSERT / COPY and so take their default, NULL (less to bind and parse: an Account has 27 columns, 10 of them set)."""
    keep = [i for i, c in enumerate(cols) if template[i] is not None and c not in NULLED.get(table, ())]
    return [cols[i] for i in keep], [template[i] for i in keep]


def family_rows(cols, template, fams, now_ms):
    """Tuples in `cols` order. Families' created_at ascends with their id (both sorted)."""
    idx = {c: i for i, c in enumerate(cols)}
    base = list(template)
    if "revoked_at" in idx:
        base[idx["revoked_at"]] = None
    n = len(fams)
    i_id, i_created = idx["id"], idx["created_at"]
    for i, fid in enumerate(fams):
        row = base[:]
        row[i_id] = fid
        row[i_created] = now_ms - (n - i)
        yield row


def refresh_rows(cols, template, hashes, fams, now_ms):
    idx = {c: i for i, c in enumerate(cols)}
    base = list(template)
    for c in ("revoked_at", "replaced_by", "successor_sealed"):
        if c in idx:
            base[idx[c]] = None
    n = len(hashes)
    i_hash, i_fam, i_created, i_used = idx["token_hash"], idx["family_id"], idx["created_at"], idx["last_used_at"]
    for i, (h, fid) in enumerate(zip(hashes, fams)):
        row = base[:]
        row[i_hash] = h
        row[i_fam] = fid
        row[i_created] = row[i_used] = now_ms - (n - i)
        yield row


def account_rows(cols, template, accs, now_ms):
    idx = {c: i for i, c in enumerate(cols)}
    base = list(template)
    base[idx["is_deleted"]] = 0
    for c in ("created_date", "last_modified_date", "system_modstamp"):
        base[idx[c]] = now_ms
    i_id, i_name = idx["id"], idx["name"]
    for i, aid in enumerate(accs):
        row = base[:]
        row[i_id] = aid
        row[i_name] = f"Scale Account {i + 1:07d}"
        yield row


# --------------------------------------------------------------------------------------------
# SQLite

def sqlite_size(path):
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def load_sqlite(path, n_tokens, n_accounts, template_hash=None, sample=100000, account_sample=1000):
    if not os.path.exists(path):
        raise RuntimeError(f"{path} does not exist: start `valet serve --data-dir` on it once first")
    t_start = time.time()
    size_before = sqlite_size(path)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        mode = db.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if mode.lower() != "delete":
            raise RuntimeError(f"cannot leave WAL mode ({mode}): is a Valet server still using {path}?")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -262144")
        db.execute("PRAGMA foreign_keys = OFF")

        def template(table, where, args=()):
            cur = db.execute(f'SELECT * FROM "{table}" WHERE {where} LIMIT 1', args)
            row = cur.fetchone()
            return [d[0] for d in cur.description], row

        rt_cols, rt_tpl = ([], None)
        if n_tokens:
            if template_hash:
                rt_cols, rt_tpl = template("refresh_tokens", "token_hash = ?", (template_hash,))
            else:
                rt_cols, rt_tpl = template("refresh_tokens", "revoked_at IS NULL AND replaced_by IS NULL ORDER BY created_at DESC")
            if rt_tpl is None:
                raise RuntimeError("no template refresh token in the database (do one code exchange first)")
            fam_id = rt_tpl[rt_cols.index("family_id")]
            fam_cols, fam_tpl = template("token_families", "id = ?", (fam_id,))
            if fam_tpl is None:
                raise RuntimeError(f"the template token's family {fam_id} is missing")
        acc_cols, acc_tpl, existing = [], None, []
        if n_accounts:
            acc_cols, acc_tpl = template(ACCOUNT_TABLE, "is_deleted = 0 ORDER BY created_date DESC")
            if acc_tpl is None:
                raise RuntimeError("no template Account (create one through POST /services/data/vXX.X/sobjects/Account first)")
            existing = [r[0] for r in db.execute(f'SELECT id FROM "{ACCOUNT_TABLE}"')]
        if n_tokens:
            fam_cols, fam_tpl = non_null("token_families", fam_cols, fam_tpl)
            rt_cols, rt_tpl = non_null("refresh_tokens", rt_cols, rt_tpl)
        if n_accounts:
            acc_cols, acc_tpl = non_null(ACCOUNT_TABLE, acc_cols, acc_tpl)
        now_ms = int(time.time() * 1000)
        hashes, tokens, fams, accs = plan(n_tokens, n_accounts, now_ms, sample, existing)

        def ins(table, cols, rows):
            t0 = time.time()
            sql = f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) VALUES ({", ".join("?" * len(cols))})'
            db.executemany(sql, rows)
            log(f"  {table}: {time.time() - t0:.1f} s")

        tables = [t for t, n in (("token_families", n_tokens), ("refresh_tokens", n_tokens), (ACCOUNT_TABLE, n_accounts)) if n]
        if not tables:
            raise RuntimeError("nothing to load")
        t0 = time.time()
        db.execute("BEGIN")
        # The secondary indexes are dropped and made again afterwards from their own definitions (faster than
        # maintaining six of them row by row); the primary keys stay and are appended to in key order.
        indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (%s)"
                             % ", ".join("?" * len(tables)), tables).fetchall()
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        if n_tokens:
            ins("token_families", fam_cols, family_rows(fam_cols, fam_tpl, fams, now_ms))
            ins("refresh_tokens", rt_cols, refresh_rows(rt_cols, rt_tpl, hashes, fams, now_ms))
        if n_accounts:
            ins(ACCOUNT_TABLE, acc_cols, account_rows(acc_cols, acc_tpl, accs, now_ms))
        t1 = time.time()
        for _, sql in indexes:
            db.execute(sql)
        log(f"  {len(indexes)} indexes: {time.time() - t1:.1f} s")
        # Foreign keys are off on this connection (SQLite's default); check the loaded tables in bulk instead.
        t1 = time.time()
        for t in tables:
            bad = db.execute(f'PRAGMA foreign_key_check("{t}")').fetchmany(5)
            if bad:
                raise RuntimeError(f"foreign key violations in {t}: {bad}")
        log(f"  foreign_key_check: {time.time() - t1:.1f} s")
        db.execute("COMMIT")
        t_insert = time.time() - t0
        db.execute("PRAGMA journal_mode = WAL")
        counts = {
            "refresh_tokens": db.execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()[0],
            "token_families": db.execute("SELECT COUNT(*) FROM token_families").fetchone()[0],
            ACCOUNT_TABLE: db.execute(f'SELECT COUNT(*) FROM "{ACCOUNT_TABLE}"').fetchone()[0],
        }
    finally:
        db.close()
    # synchronous=OFF left the pages to the kernel: write them out now, not during the measured runs.
    t0 = time.time()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    t_sync = time.time() - t0
    log(f"  fsync: {t_sync:.1f} s")
    return {
        "backend": "sqlite", "path": path, "refresh_tokens_loaded": n_tokens, "accounts_loaded": n_accounts,
        "insert_s": round(t_insert, 2), "fsync_s": round(t_sync, 2), "total_s": round(time.time() - t_start, 2), "row_counts": counts,
        "indexes_rebuilt": [n for n, _ in indexes],
        "db_bytes_before": size_before, "db_bytes_after": sqlite_size(path),
        "token_sample": tokens, "account_sample": pick_sample(accs, account_sample),
    }


# --------------------------------------------------------------------------------------------
# PostgreSQL

def psql(url, sql, stdin=None, timeout=600):
    r = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       input=stdin, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {sql[:80]}: {r.stderr.strip()}")
    return r.stdout


def pg_columns(url, table):
    out = psql(url, "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    f"AND table_name = '{table}' ORDER BY ordinal_position")
    return [l for l in out.splitlines() if l]


def pg_template(url, table, where):
    """-> (columns, values in COPY text format: strings, None for NULL)."""
    cols = pg_columns(url, table)
    sel = ", ".join(f'"{c}"' for c in cols)
    out = psql(url, f'COPY (SELECT {sel} FROM "{table}" WHERE {where} LIMIT 1) TO STDOUT')
    line = out.rstrip("\n")
    if not line:
        return cols, None
    return cols, [None if v == r"\N" else v for v in line.split("\t")]


def _copy_line(row):
    return "\t".join(r"\N" if v is None else str(v) for v in row) + "\n"


def pg_size(url):
    return int(psql(url, "SELECT pg_database_size(current_database())").strip())


def load_postgres(url, n_tokens, n_accounts, template_hash=None, sample=100000, account_sample=1000):
    t_start = time.time()
    size_before = pg_size(url)
    rt_cols = fam_cols = acc_cols = []
    existing = []
    if n_tokens:
        where = f"token_hash = '{template_hash}'" if template_hash else \
            "revoked_at IS NULL AND replaced_by IS NULL ORDER BY created_at DESC"
        if template_hash and not (template_hash.isascii() and template_hash.isalnum()):
            raise RuntimeError("bad template hash")
        rt_cols, rt_tpl = pg_template(url, "refresh_tokens", where)
        if rt_tpl is None:
            raise RuntimeError("no template refresh token in the database (do one code exchange first)")
        fam_id = rt_tpl[rt_cols.index("family_id")]
        if not fam_id.isalnum():
            raise RuntimeError(f"unexpected family id {fam_id!r}")
        fam_cols, fam_tpl = pg_template(url, "token_families", f"id = '{fam_id}'")
        if fam_tpl is None:
            raise RuntimeError(f"the template token's family {fam_id} is missing")
    if n_accounts:
        acc_cols, acc_tpl = pg_template(url, ACCOUNT_TABLE, "is_deleted = 0 ORDER BY created_date DESC")
        if acc_tpl is None:
            raise RuntimeError("no template Account (create one through POST /services/data/vXX.X/sobjects/Account first)")
        existing = [l for l in psql(url, f'SELECT id FROM "{ACCOUNT_TABLE}"').splitlines() if l]
    if n_tokens:
        fam_cols, fam_tpl = non_null("token_families", fam_cols, fam_tpl)
        rt_cols, rt_tpl = non_null("refresh_tokens", rt_cols, rt_tpl)
    if n_accounts:
        acc_cols, acc_tpl = non_null(ACCOUNT_TABLE, acc_cols, acc_tpl)
    now_ms = int(time.time() * 1000)
    hashes, tokens, fams, accs = plan(n_tokens, n_accounts, now_ms, sample, existing)

    tables = [t for t, n in (("token_families", n_tokens), ("refresh_tokens", n_tokens), (ACCOUNT_TABLE, n_accounts)) if n]
    if not tables:
        raise RuntimeError("nothing to load")
    # Secondary indexes (those backing no constraint) are dropped and made again from their own definitions.
    out = psql(url, "COPY (SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename IN (%s) "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = (quote_ident(i.schemaname) || '.' || "
                    "quote_ident(i.indexname))::regclass)) TO STDOUT" % ", ".join(f"'{t}'" for t in tables))
    indexes = [tuple(l.split("\t", 1)) for l in out.splitlines() if l]
    # Single-column foreign keys of the loaded tables: checked in bulk after the COPY (one anti-join each) instead of
    # row by row by their triggers, which the load turns off (session_replication_role = replica: superuser).
    out = psql(url, "COPY (SELECT c.conname, c.conrelid::regclass, a.attname, c.confrelid::regclass, af.attname FROM pg_constraint c "
                    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                    "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] "
                    "WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND c.conrelid::regclass::text IN (%s)) TO STDOUT"
               % ", ".join(f"'{t}'" for t in tables + [f'"{t}"' for t in tables]))
    fkeys = [l.split("\t") for l in out.splitlines() if l]
    t0 = time.time()
    # One psql session reads the whole script from its stdin, COPY data in line (as a pg_dump file).
    with tempfile.TemporaryFile(mode="w+") as errf:
        p = subprocess.Popen(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=errf, text=True, bufsize=1 << 20)
        try:
            w = p.stdin.write
            w("BEGIN;\nSET LOCAL maintenance_work_mem = '256MB';\nSET LOCAL session_replication_role = replica;\n")
            for name, _ in indexes:
                w(f'DROP INDEX "{name}";\n')

            def copy(table, cols, rows):
                # psql reads through a pipe: the time spent writing a table is the time COPY takes to consume it.
                t1 = time.time()
                w(f'COPY "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) FROM STDIN;\n')
                buf = []
                for r in rows:
                    buf.append(_copy_line(r))
                    if len(buf) >= 20000:
                        w("".join(buf))
                        buf = []
                w("".join(buf))
                w("\\.\n")
                log(f"  {table}: {time.time() - t1:.1f} s")

            if n_tokens:
                copy("token_families", fam_cols, family_rows(fam_cols, fam_tpl, fams, now_ms))
                copy("refresh_tokens", rt_cols, refresh_rows(rt_cols, rt_tpl, hashes, fams, now_ms))
            if n_accounts:
                copy(ACCOUNT_TABLE, acc_cols, account_rows(acc_cols, acc_tpl, accs, now_ms))
            for _, sql in indexes:
                w(sql + ";\n")
            w("SET LOCAL session_replication_role = origin;\n")
            for con, child, col, parent, pcol in fkeys:
                w(f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM {child} c WHERE c.\"{col}\" IS NOT NULL AND NOT EXISTS "
                  f"(SELECT 1 FROM {parent} p WHERE p.\"{pcol}\" = c.\"{col}\")) THEN RAISE EXCEPTION 'foreign key {con} violated'; "
                  "END IF; END $$;\n")
            w("COMMIT;\n")
            p.stdin.close()
        except BrokenPipeError:  # psql stopped at an error: its message is in errf
            try:
                p.stdin.close()
            except OSError:
                pass
        t1 = time.time()
        rc = p.wait(timeout=600)
        log(f"  {len(indexes)} indexes, {len(fkeys)} foreign-key checks, COMMIT: {time.time() - t1:.1f} s")
        errf.seek(0)
        err = errf.read()
    if rc != 0:
        raise RuntimeError(f"psql COPY failed: {err.strip()[:500]}")
    t_insert = time.time() - t0
    log(f"  COPY: {t_insert:.1f} s")
    t0 = time.time()
    psql(url, f'VACUUM (ANALYZE) token_families, refresh_tokens, "{ACCOUNT_TABLE}"')
    t_vacuum = time.time() - t0
    log(f"  VACUUM (ANALYZE): {t_vacuum:.1f} s")
    # Dirty buffers out now, not during the measured runs.
    t0 = time.time()
    try:
        psql(url, "CHECKPOINT")
    except RuntimeError as e:  # needs superuser or pg_checkpoint: only a quieter start without it
        log(f"  no CHECKPOINT: {e}")
    t_checkpoint = time.time() - t0
    log(f"  CHECKPOINT: {t_checkpoint:.1f} s")
    counts = {}
    for t in ("refresh_tokens", "token_families", ACCOUNT_TABLE):
        counts[t] = int(psql(url, f'SELECT COUNT(*) FROM "{t}"').strip())
    return {
        "backend": "postgres", "refresh_tokens_loaded": n_tokens, "accounts_loaded": n_accounts,
        "insert_s": round(t_insert, 2), "vacuum_analyze_s": round(t_vacuum, 2), "checkpoint_s": round(t_checkpoint, 2),
        "total_s": round(time.time() - t_start, 2), "indexes_rebuilt": [n for n, _ in indexes],
        "foreign_keys_checked": [f[0] for f in fkeys],
        "row_counts": counts, "db_bytes_before": size_before, "db_bytes_after": pg_size(url),
        "token_sample": tokens, "account_sample": pick_sample(accs, account_sample),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--sqlite", help="path of valet.db (Valet stopped)")
    g.add_argument("--postgres", help="postgres:// URL of Valet's database")
    ap.add_argument("--refresh-tokens", type=int, default=1000000)
    ap.add_argument("--accounts", type=int, default=1000000)
    ap.add_argument("--template-refresh-hash", help="token_hash of the refresh token to copy (default: the newest live one)")
    ap.add_argument("--tokens-out", help="write a sample of the new refresh-token values here, one per line")
    ap.add_argument("--accounts-out", help="write a sample of the new Account ids here, one per line")
    ap.add_argument("--sample", type=int, default=100000, help="how many token values to keep for --tokens-out")
    a = ap.parse_args()
    if a.sqlite:
        r = load_sqlite(a.sqlite, a.refresh_tokens, a.accounts, a.template_refresh_hash, a.sample)
    else:
        r = load_postgres(a.postgres, a.refresh_tokens, a.accounts, a.template_refresh_hash, a.sample)
    write_lines(a.tokens_out, r.pop("token_sample"))
    write_lines(a.accounts_out, r.pop("account_sample"))
    print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
