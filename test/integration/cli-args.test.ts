import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { commands } from '../../src/host/cli'
import { commandHelp, usageLine } from '../../src/host/cli-command'
import { freePort } from '../../src/core/sandbox/cluster'
import { cli } from '../helpers/cli'
import { createDatabase, query } from '../helpers/db'
import { seedExamforge } from '../helpers/seed'

/** A Node stack frame ("    at main (/…/cli.js:12:3)"): the operator must never see one for bad arguments. */
const STACK = /\n\s+at .+:\d+:\d+/

/**
 * Every command of the table (a new command is walked automatically), through the built CLI: --help prints
 * its usage and runs nothing, a bogus flag and a flag without its value exit 64 with its usage line.
 */
describe('every examforge-ops command reads its arguments the same way', () => {
  // If a command ran anyway it would find nothing to talk to (and say so with exit 1, or hang for serve).
  let env: Record<string, string>
  beforeAll(async () => {
    env = {
      DATABASE_URL: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
      LOCAL_BACKUP_PATH: join(mkdtempSync(join(tmpdir(), 'ops-cliargs-')), 'backups'),
    }
  })

  it('the table holds every command the overview lists', async () => {
    const r = await cli(['--help'])
    expect(r.code).toBe(0)
    for (const c of commands) expect(r.stdout).toContain(`  ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}\n`)
    expect(commands.map((c) => c.name)).toEqual(expect.arrayContaining(['backups list', 'restore', 'sandbox url', 'seed']))
  })

  for (const c of commands) {
    const words = c.name.split(' ')
    it(`${c.name}: --help, a bogus flag, a flag without its value`, async () => {
      const strings = Object.entries(c.options)
        .filter(([, o]) => o.type === 'string')
        .map(([name]) => name)
      const [help, bogus, ...missing] = await Promise.all([
        cli([...words, '--help'], env),
        cli([...words, '--bogus-flag'], env),
        ...strings.map((name) => cli([...words, `--${name}`], env)),
      ])
      // --help: exactly its usage on stdout, exit 0, nothing else printed (it did not run).
      expect(help.stderr).toBe('')
      expect(help.stdout).toBe(commandHelp(c))
      expect(help.stdout.startsWith(`Usage: ${usageLine(c)}\n`)).toBe(true)
      expect(help.code).toBe(0)
      // An unknown flag: 64, says which, with the usage line, no stack.
      expect(bogus.code, bogus.stderr).toBe(64)
      expect(bogus.stderr).toContain(`Unknown option '--bogus-flag'.`)
      expect(bogus.stderr).toContain(`Usage: ${usageLine(c)}\n`)
      expect(bogus.stderr).not.toMatch(STACK)
      expect(bogus.stdout).toBe('')
      // Each option that takes a value, given none: 64, names the option.
      strings.forEach((name, i) => {
        const r = missing[i]
        expect(r.code, `--${name}: ${r.stderr}`).toBe(64)
        expect(r.stderr).toContain(`Option '--${name} <value>' argument missing.`)
        expect(r.stderr).toContain(`Usage: ${usageLine(c)}\n`)
        expect(r.stderr).not.toMatch(STACK)
      })
    }, 120_000)
  }

  it('a missing argument, an extra argument, an unknown sub-command: 64 with the usage', async () => {
    const [verify, extra, sub, group, groupHelp] = await Promise.all([
      cli(['backups', 'verify'], env),
      cli(['backups', 'list', 'extra'], env),
      cli(['backups', 'lst'], env),
      cli(['backups'], env),
      cli(['backups', '--help'], env),
    ])
    expect(verify.code).toBe(64)
    expect(verify.stderr).toMatch(/<set-id> is missing\.\nUsage: examforge-ops backups verify <set-id> \[--json\]/)
    expect(extra.code).toBe(64)
    expect(extra.stderr).toContain('Unexpected argument "extra".')
    expect(sub.code).toBe(64)
    expect(sub.stderr).toMatch(/Unknown command "backups lst"\.\nUsage:\n {2}examforge-ops backups list/)
    expect(group.code).toBe(64)
    expect(groupHelp.code).toBe(0)
    expect(groupHelp.stdout).toContain('examforge-ops backups drop-slot <slot>')
    for (const r of [verify, extra, sub, group]) expect(r.stderr).not.toMatch(STACK)
  })

  it('seed without --scale refuses (64) and starts nothing; --scale must be a positive number', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-cliseed-'))
    const none = await cli(['seed'], { OPS_DATA_DIR: dataDir })
    expect(none.code).toBe(64)
    expect(none.stderr).toContain('seed replaces all the sandbox data: say how much to generate with --scale N')
    // Nothing started: no sandbox cluster was created in the data folder.
    expect(existsSync(join(dataDir, 'sandbox'))).toBe(false)
    for (const bad of ['0', '-1', 'lots', '']) expect((await cli(['seed', `--scale=${bad}`], { OPS_DATA_DIR: dataDir })).code, bad).toBe(64)
    expect(existsSync(join(dataDir, 'sandbox'))).toBe(false)
  })

  it('restore --undo takes nothing but a restore id; an empty one is refused', async () => {
    const mixed = await cli(['restore', '--undo', 'r1', '--backup', 'x'], env)
    expect(mixed.code).toBe(64)
    expect(mixed.stderr).toContain('--undo takes only a restore id')
    expect((await cli(['restore', '--undo='], env)).code).toBe(64)
  })

  it('a --target that is not a PostgreSQL URL: 64, said without echoing it (it may hold a password)', async () => {
    for (const target of ['postgres://u:Pa55word@[bad/x', 'mysql://u@host/db']) {
      const r = await cli(['restore', '--to-time', '2026-12-01T00:00:00Z', '--target', target], env)
      expect(r.code, target).toBe(64)
      expect(r.stderr).toMatch(/--target is not a PostgreSQL URL: write it as postgres:\/\/user@host:5432\/database/)
      expect(r.stderr + r.stdout).not.toContain('Pa55word')
      expect(r.stderr).not.toMatch(STACK)
    }
  })

  it('OPS_SECRETS_FILE naming no file: exit 1 saying which and what to do, not an internal error', async () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'ops-clisec-')), 'secrets.env')
    const r = await cli(['backups', 'list'], { ...env, OPS_SECRETS_FILE: missing })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `OPS_SECRETS_FILE names ${missing}, which does not exist. Create it (lines of KEY=value, mode 600) or unset OPS_SECRETS_FILE`,
    )
    expect(r.stderr).not.toMatch(/internal error|bug in ExamForge Ops/)
  })

  it('sandbox url: exit 1 with what to do when no sandbox runs', async () => {
    const r = await cli(['sandbox', 'url'], { OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-clisbx-')) })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/No sandbox is running for the data folder .*: start one with "examforge-ops serve"/)
    expect(r.stdout).toBe('')
  })
})

describe('examforge-ops sandbox url', () => {
  /** A data folder whose sandbox record names a live process (this one) and a database that answers. */
  const running = () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-clisbx-'))
    mkdirSync(join(dataDir, 'sandbox'))
    writeFileSync(join(dataDir, 'sandbox', 'running.json'), JSON.stringify({ pid: process.pid, url: inject('pgUrl') }), { mode: 0o600 })
    return dataDir
  }

  it('prints the URL into a pipe only with --show-password; without it, refuses without printing it', async () => {
    const dataDir = running()
    const piped = await cli(['sandbox', 'url'], { OPS_DATA_DIR: dataDir })
    expect(piped.code).toBe(64)
    expect(piped.stderr).toContain('The sandbox URL holds its password, so it is printed only to a terminal: add --show-password')
    expect(piped.stdout).toBe('')
    expect(piped.stderr).not.toContain(inject('pgUrl'))
    const shown = await cli(['sandbox', 'url', '--show-password'], { OPS_DATA_DIR: dataDir })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toBe(`${inject('pgUrl')}\n`)
  })

  it('prints it to a terminal (a real pseudo-terminal from script(1)) without the flag', async () => {
    const dataDir = running()
    const root = resolve(__dirname, '../..')
    const out = await new Promise<{ code: number; text: string }>((done) => {
      const child = spawn('script', ['-qec', 'npx --no-install examforge-ops sandbox url', '/dev/null'], {
        cwd: root,
        env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: dataDir },
      })
      let text = ''
      child.stdout.on('data', (d) => (text += d))
      child.on('close', (code) => done({ code: code ?? -1, text }))
    })
    expect(out.code, out.text).toBe(0)
    expect(out.text).toContain(inject('pgUrl'))
  })

  it('a record whose process is gone is no sandbox: exit 1', async () => {
    const dataDir = running()
    // A pid that cannot be running: beyond the kernel's pid_max.
    writeFileSync(join(dataDir, 'sandbox', 'running.json'), JSON.stringify({ pid: 2 ** 30, url: inject('pgUrl') }))
    const r = await cli(['sandbox', 'url', '--show-password'], { OPS_DATA_DIR: dataDir })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/No sandbox is running/)
  })
})

describe('examforge-ops: not found is 1, bad arguments 64, output a person reads', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let dir: string
  let fullId: string
  const env = () => ({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, HOST_LOAD_WARN_PER_CORE: '10000', TZ: 'UTC', LANG: 'en_US.UTF-8' })
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'cliargs')
    await seedExamforge(db.url, 0.02)
    dir = mkdtempSync(join(tmpdir(), 'ops-cliargs-bk-'))
  }, 60_000)
  afterAll(async () => {
    await db?.drop()
  })

  it('backup and backups list: readable text, local times with their zone, aligned columns, an incremental shows its changes', async () => {
    // The first incremental is a full that starts the chain; then a change and a real incremental.
    const full = await cli(['backup', 'incremental'], env())
    expect(full.code, full.stderr).toBe(0)
    const [, id] = full.stdout.match(/^Backed up \(full\) as (\S+): (\d+) tables, [\d,]+ rows, [\d.]+ [KM]?B stored, in [\d.]+ s\.$/m) ?? []
    expect(id, full.stdout).toBeTruthy()
    expect(full.stdout).not.toContain('{')
    fullId = id
    await query(db.url, `UPDATE users SET "displayName" = 'renamed' WHERE id = 1; DELETE FROM subscriptions WHERE id IN (1, 2)`)
    const inc = await cli(['backup', 'incremental'], env())
    expect(inc.code, inc.stderr).toBe(0)
    // One transaction (one statement list): one update, and the deletes (with any cascade).
    const [, incId, changes] = inc.stdout.match(/^Backed up \(incremental\) as (\S+): (1 transaction: 1 update, [\d,]+ deletes?), /m) ?? []
    expect(incId, inc.stdout).toBeTruthy()

    const list = await cli(['backups', 'list'], env())
    expect(list.code, list.stderr).toBe(0)
    const lines = list.stdout.trimEnd().split('\n')
    const header = lines.find((l) => l.startsWith('set '))!
    const fullLine = lines.find((l) => l.startsWith(fullId))!
    const incLine = lines.find((l) => l.startsWith(incId))!
    // The incremental says what it holds, not "0 tables 0 rows".
    expect(incLine).toContain(changes)
    expect(incLine).not.toMatch(/0 tables/)
    expect(fullLine).toMatch(/\b11 tables, [\d,]+ rows\b/)
    // Times with their zone (TZ=UTC here), never ISO.
    expect(fullLine).toMatch(/\d{1,2}:\d{2}:\d{2}( [AP]M)? UTC/)
    expect(fullLine).not.toMatch(/\d{4}-\d{2}-\d{2}T/)
    // Aligned: every column starts where its header does.
    for (const col of ['status', 'taken', 'contents']) {
      const at = header.indexOf(col)
      expect(fullLine[at - 1]).toBe(' ')
      expect(fullLine[at]).not.toBe(' ')
      expect(incLine[at]).not.toBe(' ')
      expect(incLine[at - 1]).toBe(' ')
    }
    // Right-aligned sizes end in the same place.
    const sizeEnd = (l: string) => l.search(/\d+(\.\d)? [KM]?B\b/) + l.match(/\d+(\.\d)? [KM]?B\b/)![0].length
    expect(sizeEnd(fullLine)).toBe(sizeEnd(incLine))
  }, 120_000)

  it('not found is exit 1: an unknown set, table, restore id, slot; bad --tables is 64', async () => {
    const [set, table, undo, slot, emptyTables, commas] = await Promise.all([
      cli(['restore', '--backup', '20200101T000000Z-full-0000'], env()),
      cli(['restore', '--backup', fullId, '--tables', 'no_such_table'], env()),
      cli(['restore', '--undo', 'no-such-restore'], env()),
      cli(['backups', 'drop-slot', 'no_such_slot'], env()),
      cli(['restore', '--backup', fullId, '--tables', ''], env()),
      cli(['restore', '--backup', fullId, '--tables', ' , '], env()),
    ])
    expect(set.code, set.stderr).toBe(1)
    expect(set.stderr).toMatch(/There is no backup set "20200101T000000Z-full-0000"/)
    expect(table.code, table.stderr).toBe(1)
    expect(table.stderr).toMatch(/no_such_table/)
    expect(undo.code, undo.stderr).toBe(1)
    expect(undo.stderr).toContain('There is no restore "no-such-restore"')
    expect(slot.code, slot.stderr).toBe(1)
    expect(slot.stderr).toContain('There is no slot "no_such_slot"')
    // --tables '' used to mean the whole database: now it is refused before anything is planned.
    for (const r of [emptyTables, commas]) {
      expect(r.code, r.stderr).toBe(64)
      expect(r.stderr).toMatch(/--tables ".*" names no table: list them .* or leave --tables out to restore the whole database\./)
      expect(r.stdout).toBe('')
    }
    for (const r of [set, table, undo, slot]) expect(r.stderr).not.toMatch(STACK)
  }, 120_000)

  it('a restore plan reads as text with local times and "1 table"; --json is JSON', async () => {
    const plan = await cli(['restore', '--backup', fullId, '--tables', 'users'], env())
    expect(plan.code, plan.stderr).toBe(0)
    expect(plan.stdout).toMatch(/as of .+ UTC, the set's snapshot/)
    expect(plan.stdout).toContain('scope: 1 table;')
    expect(plan.stdout).toContain('reads 1 set,')
    expect(plan.stdout).toContain('Nothing was changed: add --yes to restore.')
    const json = await cli(['restore', '--backup', fullId, '--tables', 'users', '--json'], env())
    expect(JSON.parse(json.stdout)).toMatchObject({ applied: false, plan: { tables: [{ table: 'public.users' }] } })
  }, 60_000)

  it('a restore result is text a person reads (the check in words), not JSON', async () => {
    const target = await createDatabase(inject('pgUrl'), 'cliargs_to')
    try {
      const u = new URL(target.url)
      const password = decodeURIComponent(u.password)
      u.password = ''
      const r = await cli(['restore', '--backup', fullId, '--target', u.toString(), '--yes'], { ...env(), PGPASSWORD: password })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^Restored .+ into \S+ in [\d.]+ s \(restore \S+\)\.$/m)
      expect(r.stdout).toMatch(/^Check passed: 11 tables \(rows and digests\), [\d,]+ foreign keys?, [\d,]+ sequences?\.$/m)
      expect(r.stdout).not.toMatch(/[{}]/)
    } finally {
      await target.drop()
    }
  }, 120_000)
})
