/**
 * The control file a running host leaves in its data folder (host.json, mode 0600): its address
 * and a local secret. Whoever can read it (the OS user running the host, or root) may ask the host
 * for a fresh launch link with `examforge-ops open`; nobody else can. A file left by a host that
 * died (killed, crashed, rebooted) is refused: its port may now belong to anyone's program, which
 * must not receive a secret or a token.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { OpsError } from '../shared/contract'

export interface ControlFile {
  pid: number
  port: number
  origin: string
  secret: string
}

export const controlPath = (dataDir: string) => join(dataDir, 'host.json')

export function writeControlFile(dataDir: string, c: ControlFile): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const file = controlPath(dataDir)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(c), { mode: 0o600 })
  chmodSync(tmp, 0o600) // whatever the umask
  renameSync(tmp, file)
  return file
}

/** Remove it when it is still ours (a newer host on the same folder may have replaced it). */
export function removeControlFile(dataDir: string, secret: string): void {
  try {
    if ((JSON.parse(readFileSync(controlPath(dataDir), 'utf8')) as ControlFile).secret === secret) rmSync(controlPath(dataDir))
  } catch {
    /* gone already, or not ours */
  }
}

/** Is the process still there? (EPERM: it is, and belongs to another OS user.) */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function readControlFile(dataDir: string): ControlFile {
  const file = controlPath(dataDir)
  if (!existsSync(file))
    throw new OpsError(
      'no_host',
      `No console host is running for the data folder ${dataDir} (no host.json). Start one with "examforge-ops serve".`,
    )
  let c: ControlFile
  try {
    c = JSON.parse(readFileSync(file, 'utf8')) as ControlFile
    if (typeof c.origin !== 'string' || typeof c.secret !== 'string' || typeof c.pid !== 'number') throw new Error('fields missing')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new OpsError(
      'no_host',
      code === 'EACCES'
        ? `${file} belongs to the OS user running the host: run "examforge-ops open" as that user, or use --as-token with an administrator's token.`
        : `${file} is not a host control file: restart "examforge-ops serve".`,
    )
  }
  if (!processAlive(c.pid))
    throw new OpsError(
      'stale_host',
      `${file} was left by a console host that is no longer running (process ${c.pid}), so nothing was sent to its old address. Start one with "examforge-ops serve".`,
    )
  return c
}
