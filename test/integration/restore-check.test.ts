import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { tableRows } from '../helpers/restore'
import { seedExamforge } from '../helpers/seed'

/** Start a restore as the wizard does and wait for it to end, however it ends. */
async function restore(ops: Ops, input: Parameters<Ops['restores']['start']>[0], confirm: string) {
  const { jobId } = await ops.restores.start(input, confirm, { actor: 'test' })
  return ops.jobs.wait(jobId)
}

describe('the restore check catches a row altered after load, and names the table', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let setId: string
  const created: string[] = []
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'rchk')
    await seedExamforge(src.url, 0.05)
    ops = await openOps({
      DATABASE_URL: src.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-rchk-')),
      BACKUP_INCREMENTAL: 'off',
      BACKUP_CHUNK_MB: '1',
    })
    setId = (await backupNow(ops, 'full')).setId
  }, 120_000)
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  it('into an empty database: a row changed once its table is loaded (an event trigger on its key) fails the check', async () => {
    const name = `rchk_new_${Date.now().toString(36)}`
    created.push(name)
    await query(inject('pgUrl'), `CREATE DATABASE "${name}"`)
    const target = new URL(src.url)
    target.pathname = `/${name}`
    // The hook: when the restore builds a key or index of users (its rows are all in by then), one row changes.
    await query(
      target.toString(),
      `CREATE FUNCTION public.alter_after_load() RETURNS event_trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF to_regclass('public.users') IS NOT NULL AND EXISTS (
              SELECT 1 FROM pg_event_trigger_ddl_commands() d
               WHERE d.objid = 'public.users'::regclass
                  OR d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'public.users'::regclass)) THEN
           UPDATE public.users SET "displayName" = 'altered after load'
            WHERE id = (SELECT min(id) FROM public.users) AND "displayName" IS DISTINCT FROM 'altered after load';
         END IF;
       END $$;
       CREATE EVENT TRIGGER alter_after_load ON ddl_command_end WHEN TAG IN ('ALTER TABLE', 'CREATE INDEX')
         EXECUTE FUNCTION public.alter_after_load();`,
    )
    const info = await restore(ops, { point: { setId }, target: { kind: 'existing', database: name } }, name)
    expect(info.state).toBe('failed')
    expect(info.error?.message).toMatch(/did not pass its check \(public\.users: the rows differ from the backup \(digest mismatch\)\)/)
    const [comment] = await query<{ c: string }>(
      inject('pgUrl'),
      `SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1`,
      [name],
    )
    expect(comment.c).toMatch(/CHECK FAILED/)
  })

  it('in place: a row altered as it is loaded (an ALWAYS trigger) fails the check before COMMIT, and nothing changes', async () => {
    const before = await tableRows(src.url, 'public.users')
    await query(
      src.url,
      `CREATE FUNCTION public.alter_on_load() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.id = 1 THEN NEW."displayName" := 'altered while loading'; END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER alter_on_load BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION public.alter_on_load();
       ALTER TABLE public.users ENABLE ALWAYS TRIGGER alter_on_load;`,
    )
    try {
      const info = await restore(ops, { point: { setId }, target: { kind: 'in-place' } }, new URL(src.url).pathname.slice(1))
      expect(info.state).toBe('failed')
      expect(info.error?.message).toMatch(/did not pass its check \(public\.users: the rows differ from the backup \(digest mismatch\)\)/)
      expect(await tableRows(src.url, 'public.users')).toEqual(before) // rolled back
    } finally {
      await query(src.url, `DROP TRIGGER alter_on_load ON public.users; DROP FUNCTION public.alter_on_load()`)
    }
  })
})
