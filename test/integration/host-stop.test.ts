import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { sandboxClusterDir } from '../../src/core/sandbox/cluster-dir'
import { hostEnv, needBuilt, serveHost } from '../helpers/served'
import { waitFor } from '../helpers/wait'

/**
 * `examforge-ops serve` on its sandbox stops cleanly: on Ctrl+C in a terminal (SIGINT to the whole process group,
 * so the sandbox's PostgreSQL gets it too and shuts down under the host's open connections) and on a SIGTERM to
 * the host alone (it stops its PostgreSQL itself). Both used to end in an unhandled connection error, exit 1.
 */
describe('the host stops cleanly', () => {
  for (const how of ['Ctrl+C in a terminal (SIGINT to the process group)', 'SIGTERM to the host'] as const)
    it(`on ${how}: exit 0, no crash, the sandbox PostgreSQL stopped`, async () => {
      needBuilt({ chromium: false })
      const dataDir = mkdtempSync(join(tmpdir(), 'ops-stop-'))
      chmodSync(dataDir, 0o755)
      const group = how.startsWith('Ctrl+C')
      const host = await serveHost(hostEnv({ OPS_DATA_DIR: dataDir, SANDBOX_SCALE: '0.02', HOST_LOAD_WARN_PER_CORE: '10000' }), {
        ownGroup: group,
        timeoutMs: 90_000,
      })
      const exited = new Promise<number | null>((r) => host.proc.once('exit', (code) => r(code)))
      try {
        // Running for real: the sandbox seeded and its traffic going.
        await waitFor(() => /sandbox\.seed .* -> succeeded/.test(host.output()), 'the sandbox seeded', 90_000)
        const cluster = sandboxClusterDir(dataDir)!
        const pid = existsSync(join(cluster, 'postmaster.pid'))
          ? join(cluster, 'postmaster.pid')
          : join(cluster, 'pgdata', 'postmaster.pid')
        expect(existsSync(pid)).toBe(true)
        if (group) process.kill(-host.proc.pid!, 'SIGINT')
        else host.proc.kill('SIGTERM')
        expect(await exited).toBe(0)
        expect(host.output()).toContain('Stopping: finishing running jobs')
        expect(host.output()).not.toMatch(/Unhandled|throw er|Node\.js v/)
        await waitFor(() => !existsSync(pid), 'the sandbox PostgreSQL to stop', 30_000)
      } finally {
        await host.stop()
        // Running as root, the cluster lives outside the data folder (cluster-dir.ts): remove it too.
        const cluster = sandboxClusterDir(dataDir)
        if (cluster) rmSync(cluster, { recursive: true, force: true })
        rmSync(dataDir, { recursive: true, force: true })
      }
    }, 150_000)
})
