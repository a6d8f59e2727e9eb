// Restore of the same database (BENCH_SHAPE: the ~2 GB sandbox shape or the indexed one) into an empty database: ours vs pg_restore -j2 from a pg_dump -Fd made in the same run.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { base, benchSource, dbUrl, q } from './shapes'
import { machineBusy } from './backup'
import { runCli } from './cli'
import { DEFAULT_COMPRESSION } from '../src/core/backup/compression'
const pgArgs = (url: string) => {
  const u = new URL(url)
  return {
    args: ['-h', u.hostname, '-p', u.port || '5432', '-U', u.username],
    env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) },
  }
}

/** The CLI in its own process, as an operator runs it. */
const cli = (root: string, args: string[], env: Record<string, string>) => runCli(join(root, 'out/host/cli.js'), args, env)

const round = (n: number) => Math.round(n * 100) / 100
const mbps = (bytes: number, s: number) => Math.round((bytes / 1e6 / s) * 10) / 10

export async function restoreBench({ root }: { root: string }) {
  const rounds = Number(process.env.BENCH_RESTORE_ROUNDS ?? 3)
  // BENCH_SHAPE: sandbox (BENCH_SCALE) or indexed (BENCH_INDEXED_MB).
  const { url: src, shape } = await benchSource()
  const server = (await q(src, `SELECT current_setting('server_version') AS v, pg_database_size(current_database()) AS size`))[0]
  const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'bench-restore-'))
  try {
    // The two backups, made in this run.
    const dumpDir = join(work, 'dump')
    const { args, env } = pgArgs(src)
    const d = spawnSync('pg_dump', ['-Fd', '-j2', '-Z6', '-f', dumpDir, ...args, new URL(src).pathname.slice(1)], { env, encoding: 'utf8' })
    if (d.status !== 0) throw new Error(`pg_dump failed: ${d.stderr}`)
    const backupDir = join(work, 'ours')
    const ourEnv = {
      DATABASE_URL: src,
      LOCAL_BACKUP_PATH: backupDir,
      OPS_DATA_DIR: join(work, 'data'),
      BACKUP_INCREMENTAL: 'off',
      BACKUP_COMPRESSION: DEFAULT_COMPRESSION,
      ...(JSON.parse(process.env.BENCH_OURS_ENV ?? '{}') as Record<string, string>),
    }
    const backup = await cli(root, ['backup', 'full', '--json'], ourEnv)
    const result = backup.out.result as { setId: string; rawBytes: number; rows: number }
    const tableBytes = result.rawBytes
    process.stderr.write(`backups made: pg_dump -Fd and ${result.setId}\n`)

    const pgRuns: number[] = []
    type Run = {
      wallS: number
      toConstraintsS: number
      toCheckPassedS: number
      phasesMs: Record<string, number>
      maxRssMB: number
      machineCpuS: number
    }
    const pgCpu: number[] = []
    // BENCH_RESTORE_VARIANTS='{"name": {"ENV": "value"}, ...}': ours under each environment (the first is the headline).
    const variants = Object.entries(
      JSON.parse(process.env.BENCH_RESTORE_VARIANTS ?? '{"ours": {}}') as Record<string, Record<string, string>>,
    )
    const variantRuns = new Map(variants.map(([name]) => [name, [] as Run[]]))
    const ourRuns = variantRuns.get(variants[0][0])!
    for (let i = 0; i < rounds; i++) {
      const pgDb = `bench_restore_pg_${i}`
      await q(base, `DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`)
      await q(base, `CREATE DATABASE ${pgDb}`)
      await q(base, 'CHECKPOINT')
      const t0 = performance.now()
      const busy0 = machineBusy()
      const r = spawnSync('pg_restore', ['-j2', '-d', pgDb, ...args, dumpDir], { env, encoding: 'utf8' })
      pgRuns.push((performance.now() - t0) / 1000)
      pgCpu.push(Math.round((machineBusy() - busy0) * 10) / 10)
      if (r.status !== 0) throw new Error(`pg_restore failed: ${r.stderr}`)
      await q(base, `DROP DATABASE ${pgDb} WITH (FORCE)`)

      // Each variant of ours (BENCH_RESTORE_VARIANTS), in an order that rotates with the round: alternated, so a
      // busy machine weighs on each alike.
      for (let j = 0; j < variants.length; j++) {
        const [name, extra] = variants[(i + j) % variants.length]
        const ourDb = `bench_restore_ours_${i}_${j}`
        await q(base, `DROP DATABASE IF EXISTS ${ourDb} WITH (FORCE)`)
        await q(base, 'CHECKPOINT')
        const busy0 = machineBusy()
        const ours = await cli(root, ['restore', '--backup', result.setId, '--target', dbUrl(ourDb), '--yes', '--json'], {
          ...ourEnv,
          ...extra,
        })
        const job = ours.out.job as { result: { durationMs: number; phasesMs: Record<string, number>; report: { ok: boolean } } }
        if (!job.result.report.ok) throw new Error('our restore check failed')
        const run = {
          wallS: round(ours.seconds),
          toConstraintsS: round((job.result.durationMs - (job.result.phasesMs.check ?? 0)) / 1000),
          toCheckPassedS: round(job.result.durationMs / 1000),
          phasesMs: job.result.phasesMs,
          maxRssMB: ours.maxRssMB,
          machineCpuS: Math.round((machineBusy() - busy0) * 10) / 10,
        }
        variantRuns.get(name)!.push(run)
        await q(base, `DROP DATABASE ${ourDb} WITH (FORCE)`)
        process.stderr.write(
          `round ${i + 1}: pg_restore ${pgRuns[i].toFixed(1)} s, ${name} ${run.toConstraintsS} s (check passed at ${run.toCheckPassedS} s)\n`,
        )
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    const pgS = med(pgRuns)
    const oursS = med(ourRuns.map((r) => r.toConstraintsS))
    const checkS = med(ourRuns.map((r) => r.toCheckPassedS))
    return {
      shape,
      what: 'restore into an empty database on the same server: MB/s of table data (COPY text bytes); ours includes checking every object against its SHA-256 first',
      server: `PostgreSQL ${server.v}`,
      databaseBytes: Number(server.size),
      tableDataBytes: tableBytes,
      rows: result.rows,
      pgRestore_j2: { seconds: round(pgS), mbPerS: mbps(tableBytes, pgS) },
      examforgeOps: {
        secondsToDataKeysIndexesConstraints: oursS,
        mbPerS: mbps(tableBytes, oursS),
        secondsFromStartToCheckPassed: checkS,
      },
      ratioVsPgRestore: round(pgS / oursS),
      ratioToCheckPassedVsPgRestore: round(pgS / checkS),
      // Ours as an operator sees it: the whole CLI process (start-up, planning, the restore, the check).
      ratioWallVsPgRestore: round(pgS / med(ourRuns.map((r) => r.wallS))),
      peakRssMB: Math.max(...ourRuns.map((r) => r.maxRssMB)),
      // Busy CPU-seconds of the whole machine (the database server included) per run: how much of the two cores each used.
      machineCpuSeconds: { pgRestore: pgCpu, examforgeOps: ourRuns.map((r) => r.machineCpuS) },
      variants: Object.fromEntries(
        [...variantRuns].map(([name, runs]) => [
          name,
          {
            env: Object.fromEntries(variants)[name],
            medianToCheckPassedS: med(runs.map((r) => r.toCheckPassedS)),
            medianPhasesMs: Object.fromEntries(
              Object.keys(runs[0]?.phasesMs ?? {}).map((k) => [k, med(runs.map((r) => r.phasesMs[k] ?? 0))]),
            ),
            toCheckPassedS: runs.map((r) => r.toCheckPassedS),
          },
        ]),
      ),
      rounds,
      all: { pgRestore: pgRuns.map(round), examforgeOps: ourRuns },
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
