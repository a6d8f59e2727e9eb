// Point-in-time replay: a chain (full + 3 incrementals) holding ~1 M changes (mixed inserts, updates, deletes)
// restored to a moment inside its last incremental; changes/s of the replay phase, and the result compared
// with the source as it was at that moment. On an embedded PostgreSQL with wal_level=logical.
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { replayTuning } from '../src/core/restore/apply'
import { runCli } from './cli'

const round = (n: number) => Math.round(n * 100) / 100

const SCHEMA = `
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, balance numeric(12, 2) NOT NULL, note text, updated_at timestamptz);
CREATE TABLE orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES accounts (id),
  amount numeric(10, 2) NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL,
  gross numeric(12, 2) GENERATED ALWAYS AS (amount * 1.2) STORED
);
CREATE INDEX orders_account ON orders (account_id);
CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com', g % 1000, NULL, now() FROM generate_series(1, 200000) g;
INSERT INTO orders (account_id, amount, status, created_at) SELECT 1 + g % 200000, g % 5000 / 10.0, 'new', now() FROM generate_series(1, 200000) g;
INSERT INTO events (kind, payload) SELECT 'seed', jsonb_build_object('g', g) FROM generate_series(1, 100000) g;
CREATE TABLE bench_state (next_event bigint);
INSERT INTO bench_state VALUES (1);
-- n transactions of 13 changes each (4 order inserts, 4 account updates, 1 order update, 2 event deletes, 2 event
-- inserts); every 50th also updates 500 accounts in a range. Returns the number of rows changed.
CREATE PROCEDURE work(n int, INOUT changed bigint DEFAULT 0) LANGUAGE plpgsql AS $$
DECLARE i int; r bigint; lo bigint; top bigint;
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO orders (account_id, amount, status, created_at)
      SELECT 1 + (random() * 199999)::int, (random() * 1000)::numeric(10, 2), 'new', clock_timestamp() FROM generate_series(1, 4);
    GET DIAGNOSTICS r = ROW_COUNT; changed := changed + r;
    UPDATE accounts SET balance = balance + 1, updated_at = clock_timestamp()
     WHERE id = ANY (ARRAY(SELECT 1 + (random() * 199999)::int FROM generate_series(1, 4)));
    GET DIAGNOSTICS r = ROW_COUNT; changed := changed + r;
    SELECT max(id) - (random() * 5000)::int INTO top FROM orders;
    UPDATE orders SET status = 'paid' WHERE id = top;
    GET DIAGNOSTICS r = ROW_COUNT; changed := changed + r;
    SELECT next_event INTO lo FROM bench_state;
    DELETE FROM events WHERE id = ANY (ARRAY(SELECT id FROM events WHERE id >= lo ORDER BY id LIMIT 2));
    GET DIAGNOSTICS r = ROW_COUNT; changed := changed + r;
    UPDATE bench_state SET next_event = (SELECT min(id) FROM events WHERE id >= lo);
    INSERT INTO events (kind, payload) SELECT 'work', jsonb_build_object('i', i, 'at', clock_timestamp()) FROM generate_series(1, 2);
    GET DIAGNOSTICS r = ROW_COUNT; changed := changed + r;
    IF i % 50 = 0 THEN
      lo := 1 + (random() * 199000)::int;
      UPDATE accounts SET note = 'bulk ' || i, balance = balance - 1 WHERE id BETWEEN lo AND lo + 499;
      GET DIAGNOSTICS r = ROW_COUNT; changed := changed + r;
    END IF;
    COMMIT;
  END LOOP;
END $$;
`
const TABLES = ['accounts', 'orders', 'events']

/** Rows and an order-independent hash of their text form, per table. */
async function digest(c: pg.Client): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const t of TABLES) {
    const { rows } = await c.query(`SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(x::text, 7)), 0)::text AS d FROM ${t} x`)
    out[t] = rows[0].d
  }
  return out
}

export async function replayBench() {
  const target = Number(process.env.BENCH_REPLAY_CHANGES ?? 1_000_000)
  const sample = Number(process.env.BENCH_REPLAY_ROW_SAMPLE ?? 20_000)
  // The batch limits to measure with (the core's defaults unless set).
  if (process.env.BENCH_REPLAY_BATCH_CHANGES) replayTuning.batchChanges = Number(process.env.BENCH_REPLAY_BATCH_CHANGES)
  if (process.env.BENCH_REPLAY_BATCH_MB) replayTuning.batchBytes = Number(process.env.BENCH_REPLAY_BATCH_MB) * 1024 * 1024
  const dataDir = join(process.env.BENCH_DATA_DIR ?? join(tmpdir(), 'examforge-ops-bench'), `replay-${Date.now().toString(36)}`)
  const { chmodSync, mkdirSync } = await import('node:fs')
  mkdirSync(dataDir, { recursive: true })
  chmodSync(dataDir, 0o755)
  const { startSandboxCluster } = await import('../src/core/sandbox/cluster')
  const { silentLogger } = await import('../src/core/log/logger')
  const { createOps } = await import('../src/core/ops')
  const { loadConfig } = await import('../src/core/config/config')
  const cluster = await startSandboxCluster({ dataDir, log: silentLogger })
  const url = (db: string) => {
    const u = new URL(cluster.url)
    u.pathname = `/${db}`
    return u.toString()
  }
  const admin = new pg.Client({ connectionString: cluster.url })
  admin.on('error', () => {})
  await admin.connect()
  await admin.query('CREATE DATABASE replay_src')
  const c = new pg.Client({ connectionString: url('replay_src') })
  c.on('error', () => {})
  await c.connect()
  let ops: Awaited<ReturnType<typeof createOps>> | null = null
  try {
    await c.query(SCHEMA)
    await c.query('VACUUM ANALYZE')
    await c.query('SET synchronous_commit = off')
    ops = await createOps({
      config: loadConfig({
        env: { DATABASE_URL: url('replay_src'), LOCAL_BACKUP_PATH: join(dataDir, 'backups'), BACKUP_INCREMENTAL: 'on' },
        dataDir,
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    const backup = async (type: 'full' | 'incremental') => {
      const { jobId } = type === 'full' ? ops!.backups.startFull('bench') : ops!.backups.startIncremental('bench')
      const info = await ops!.jobs.wait(jobId)
      if (info.state !== 'succeeded') throw new Error(`${type} ${info.state}: ${info.error?.message}`)
    }
    /** Transactions of the workload until `changes` more rows changed. */
    const work = async (changes: number) => {
      let done = 0
      while (done < changes) {
        const { rows } = await c.query(`CALL work($1)`, [Math.max(1, Math.min(2000, Math.ceil((changes - done) / 23)))])
        done += Number(rows[0].changed)
      }
      return done
    }
    const moment = async () => {
      const t0 = (await c.query('SELECT clock_timestamp() AS t')).rows[0].t as Date
      while (((await c.query('SELECT clock_timestamp() AS t')).rows[0].t as Date).getTime() <= t0.getTime() + 2);
      const at = (await c.query('SELECT clock_timestamp() AS t')).rows[0].t as Date
      const d = await digest(c)
      while (((await c.query('SELECT clock_timestamp() AS t')).rows[0].t as Date).getTime() <= at.getTime() + 2);
      return { at: at.toISOString(), digest: d }
    }
    await backup('full')
    const t0 = performance.now()
    let changes = await work(Math.min(sample, target))
    const early = { ...(await moment()), changes }
    changes += await work(Math.round(target / 3) - changes)
    await backup('incremental')
    changes += await work(Math.round((2 * target) / 3) - changes)
    await backup('incremental')
    changes += await work(target - changes)
    const stop = { ...(await moment()), changes }
    const after = await work(Math.round(target / 20)) // after the stop point: must not come back
    const workloadS = (performance.now() - t0) / 1000
    await backup('incremental')
    process.stderr.write(`chain made: ${changes} changes before the stop point, ${after} after (${round(workloadS)} s of workload)\n`)

    const restore = async (db: string, at: string, mode: 'batched' | 'row') => {
      replayTuning.mode = mode
      const { jobId } = await ops!.restores.start({ point: { time: at }, target: { kind: 'new', database: db } }, db, { actor: 'bench' })
      const t = performance.now()
      // This process's RSS while it restores (it also made the workload; the database server is another process).
      const rssBefore = process.memoryUsage().rss
      let rssMax = rssBefore
      const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 200)
      const info = await ops!.jobs.wait(jobId).finally(() => clearInterval(sampler))
      const seconds = (performance.now() - t) / 1000
      if (info.state !== 'succeeded') throw new Error(`restore ${info.state}: ${info.error?.message}`)
      const r = info.result as { phasesMs: Record<string, number>; transactions: number; report: { ok: boolean } }
      const rc = new pg.Client({ connectionString: url(db) })
      await rc.connect()
      const d = await digest(rc)
      await rc.end()
      await admin.query(`DROP DATABASE ${db} WITH (FORCE)`)
      return {
        seconds: round(seconds),
        replayMs: r.phasesMs.replay,
        profile: { ...replayTuning.profile },
        transactions: r.transactions,
        checkOk: r.report.ok,
        digest: d,
        peakRssMB: Math.round(rssMax / 1024 / 1024),
        rssBeforeMB: Math.round(rssBefore / 1024 / 1024),
      }
    }
    // The same chain restored BENCH_REPLAY_ROUNDS times (3 by default): the median round is reported, every round must be exact.
    const rounds = Math.max(1, Number(process.env.BENCH_REPLAY_ROUNDS ?? 3))
    const fulls: Awaited<ReturnType<typeof restore>>[] = []
    for (let i = 0; i < rounds; i++) {
      const r = await restore(`replay_full_${i}`, stop.at, 'batched')
      const ok = JSON.stringify(r.digest) === JSON.stringify(stop.digest)
      process.stderr.write(`batched, round ${i + 1} of ${rounds}: ${changes} changes in ${r.replayMs} ms, exact: ${ok}\n`)
      fulls.push(r)
    }
    const full = [...fulls].sort((a, b) => a.replayMs - b.replayMs)[Math.floor((fulls.length - 1) / 2)]
    const exact = fulls.every((r) => JSON.stringify(r.digest) === JSON.stringify(stop.digest))
    // The same restore as an operator runs it: the CLI in a process of its own, whose peak RSS is the restore's alone.
    const cli = await cliRestore(join(dataDir, 'backups'), url('replay_src'), url('replay_cli'), stop.at, dataDir)
    const cliDigest = await (async () => {
      const rc = new pg.Client({ connectionString: url('replay_cli') })
      await rc.connect()
      try {
        return await digest(rc)
      } finally {
        await rc.end()
      }
    })()
    await admin.query('DROP DATABASE replay_cli WITH (FORCE)')
    const sb = await restore('replay_sample_b', early.at, 'batched')
    const sr = await restore('replay_sample_r', early.at, 'row')
    const rate = (n: number, ms: number) => Math.round(n / (ms / 1000))
    return {
      what: 'point-in-time restore across a chain (full + 3 incrementals) to a moment inside its last incremental: changes/s of the replay phase; the restored tables compared with the source at that moment (row count and hash of every row). Embedded PostgreSQL with wal_level=logical, on a shared machine: indicative',
      changesReplayed: changes,
      changesAfterStopPoint: after,
      transactionsReplayed: full.transactions,
      workloadSeconds: round(workloadS),
      batched: {
        rounds,
        replaySeconds: round(full.replayMs / 1000),
        changesPerSecond: rate(changes, full.replayMs),
        allChangesPerSecond: fulls.map((r) => rate(changes, r.replayMs)),
        restoreSeconds: full.seconds,
        exactAtStopPoint: exact,
        checkOk: fulls.every((r) => r.checkOk),
        // This process's RSS when the restore started (what making the workload left) and at its peak during it.
        peakRssMB: full.peakRssMB,
        rssBeforeMB: full.rssBeforeMB,
        batchChanges: replayTuning.batchChanges,
        batchMB: Math.round(replayTuning.batchBytes / 1024 / 1024),
        profile: full.profile,
      },
      cliProcess: {
        what: 'the same point-in-time restore by `examforge-ops restore --to-time … --yes` in a process of its own',
        seconds: cli.seconds,
        peakRssMB: cli.maxRssMB,
        exactAtStopPoint: JSON.stringify(cliDigest) === JSON.stringify(stop.digest),
      },
      sample: {
        changes: early.changes,
        batched: {
          replayMs: sb.replayMs,
          changesPerSecond: rate(early.changes, sb.replayMs),
          exact: JSON.stringify(sb.digest) === JSON.stringify(early.digest),
        },
        oneRow: {
          replayMs: sr.replayMs,
          changesPerSecond: rate(early.changes, sr.replayMs),
          exact: JSON.stringify(sr.digest) === JSON.stringify(early.digest),
        },
      },
      target: { changesPerSecondAtLeast: 50_000 },
    }
  } finally {
    replayTuning.mode = 'batched'
    await c.end().catch(() => {})
    await admin.end().catch(() => {})
    await ops?.close()
    await cluster.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** A point-in-time restore by the built CLI in a process of its own; returns its wall time and peak RSS. */
async function cliRestore(backups: string, source: string, target: string, at: string, dataDir: string) {
  const { mkdirSync } = await import('node:fs')
  const opsData = join(dataDir, 'cli-data')
  mkdirSync(opsData, { recursive: true, mode: 0o700 })
  const r = await runCli(join(__dirname, 'cli.js'), ['restore', '--to-time', at, '--target', target, '--yes', '--json'], {
    DATABASE_URL: source,
    LOCAL_BACKUP_PATH: backups,
    OPS_DATA_DIR: opsData,
    BACKUP_INCREMENTAL: 'on',
  })
  return { seconds: round(r.seconds), maxRssMB: r.maxRssMB }
}
