import pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { STABLE_SESSION } from '../../src/core/backup/full'
import type { Ops } from '../../src/core/ops'
import type { PlanInput } from '../../src/core/restore/plan'
import type { RestoreResult } from '../../src/core/restore/service'

/** Run a restore as the wizard does (plan, confirm by name, job), and fail loudly unless it succeeded. */
export async function restoreNow(ops: Ops, input: PlanInput, confirm: string, operator?: string): Promise<RestoreResult> {
  const { jobId } = await ops.restores.start(input, confirm, { actor: 'test', operator })
  const info = await ops.jobs.wait(jobId)
  if (info.state !== 'succeeded') throw new Error(`restore ${info.state}: ${info.error?.message}`)
  return info.result as RestoreResult
}

/** Every row of a table ("schema.name"), as PostgreSQL prints it, sorted: two tables are equal when these are. */
export async function tableRows(url: string, table: string): Promise<string[]> {
  const i = table.indexOf('.')
  const rel = [table.slice(0, i), table.slice(i + 1)].map((p) => `"${p.replace(/"/g, '""')}"`).join('.')
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query(STABLE_SESSION)
    // Decoded once at the end: a chunk may end inside a multi-byte character.
    const chunks: Buffer[] = []
    for await (const chunk of c.query(copyTo(`COPY (SELECT * FROM ONLY ${rel}) TO STDOUT`))) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean).sort()
  } finally {
    await c.end()
  }
}

/** Rows of every user table of a database, keyed by table. */
export async function databaseRows(url: string, tables: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const t of tables) out[t] = await tableRows(url, t)
  return out
}
