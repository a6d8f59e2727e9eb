/**
 * Who is calling, and whether they may do something destructive. Identity comes from how the
 * caller authenticated (the desktop app's or the CLI's OS user, a per-administrator API token, a
 * browser session minted by one of those, or the read-only program token), never from a name the
 * caller types. Every face (Electron, the host, the CLI) asks the same questions here.
 */
import os from 'node:os'
import { OpsError, type MethodName } from '../../shared/contract'
import type { Config } from '../config/config'

export interface Identity {
  /**
   * How the caller proved who they are: the desktop app or the CLI (the OS user running it), an
   * administrator's token (OPS_API_TOKENS), the program token (OPS_API_TOKEN: read-only), a browser
   * session (carrying the identity of whoever minted its launch link), or the agent's own schedule.
   */
  readonly via: 'desktop' | 'cli' | 'admin-token' | 'program-token' | 'browser' | 'agent'
  /** The OS user (desktop, CLI, or a browser session launched by one), else null. */
  readonly osUser: string | null
  /** The e-mail an administrator token names, else null (an OS user's comes from OPS_OS_USERS). */
  readonly email: string | null
}

export const osIdentity = (via: 'desktop' | 'cli'): Identity => ({ via, osUser: os.userInfo().username, email: null })

/** The e-mail this identity stands for: its token's, or its OS user's mapping in OPS_OS_USERS. */
export function emailOf(config: Config, id: Identity): string | null {
  return id.email ?? (id.osUser ? (config.osUsers[id.osUser] ?? null) : null)
}

/** A label for the audit log and for messages: "alice <alice@examforge.test> (cli)". */
export function describeIdentity(config: Config, id: Identity): string {
  const email = emailOf(config, id)
  const name = id.osUser && email ? `${id.osUser} <${email}>` : (email ?? id.osUser ?? 'the program token')
  return `${name} (${id.via})`
}

/** Methods that change or delete something that cannot simply be taken back: administrators only. */
export const destructiveMethods: ReadonlySet<MethodName> = new Set<MethodName>([
  'restore.start',
  'restore.undo',
  'restore.dropIncomplete',
  'restore.test',
  'backups.prune',
  'backups.dropSlot',
  'settings.update',
  'sandbox.seed',
  'app.restart',
  'alerts.saveRule',
  'alerts.deleteRule',
  'alerts.silence',
  'alerts.expireSilence',
])

/**
 * Jobs the destructive methods start: cancelling one (jobs.cancel) needs an administrator too, since
 * stopping a restore half-way can leave a new database incomplete or an incident's fix undone.
 */
export const destructiveJobKinds: ReadonlySet<string> = new Set(['restore', 'restore.undo', 'restore.test', 'sandbox.seed'])

/** What the program token may not call besides: it reads (health, metrics, catalog), it does not start work. */
const notForPrograms: ReadonlySet<MethodName> = new Set<MethodName>([
  'backups.start',
  'backups.verify',
  'jobs.cancel',
  'alerts.ack',
  'alerts.test',
  // Incidents are worked by people: a program reads them (and exports reports), it does not declare or change them.
  'incidents.open',
  'incidents.setStatus',
  'incidents.setCommander',
  'incidents.note',
  'incidents.pin',
  'incidents.saveReview',
])

/** An administrator: anyone when ADMIN_EMAILS is unset (except the read-only program token), else one of ADMIN_EMAILS. */
export function isAdmin(config: Config, id: Identity): boolean {
  if (id.via === 'program-token') return false
  if (!config.adminEmails.length) return true
  const email = emailOf(config, id)?.toLowerCase()
  return !!email && config.adminEmails.includes(email)
}

/** Refuse, with who is signed in and how to become an administrator, unless this identity is one. */
export function requireAdmin(config: Config, id: Identity, action: string): void {
  if (isAdmin(config, id)) return
  if (id.via === 'program-token')
    throw new OpsError(
      'forbidden',
      `${action} needs an administrator, and OPS_API_TOKEN is a read-only token for programs. Use an administrator's token from OPS_API_TOKENS (email=token) instead.`,
    )
  throw new OpsError(
    'forbidden',
    `${action} needs an administrator, and you are signed in as ${describeIdentity(config, id)}, which is not in ADMIN_EMAILS. ` +
      'Ask an administrator to add your e-mail to ADMIN_EMAILS and map your OS user to it (OPS_OS_USERS=user=email) or give you a token (OPS_API_TOKENS=email=token).',
  )
}

/** The check every face runs before a call reaches core. */
export function authorize(config: Config, id: Identity, method: MethodName): void {
  if (destructiveMethods.has(method)) return requireAdmin(config, id, method)
  if (id.via === 'program-token' && notForPrograms.has(method))
    throw new OpsError(
      'forbidden',
      `${method} starts work, and OPS_API_TOKEN is a read-only token for programs. Use an administrator's token from OPS_API_TOKENS (email=token) instead.`,
    )
}

/** "a=b, c=d" into { a: 'b', c: 'd' }; keys and values trimmed, empty pairs skipped. */
export function parsePairs(value: string | undefined, key: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (value ?? '').split(',')) {
    if (!part.trim()) continue
    const i = part.indexOf('=')
    if (i <= 0 || i === part.length - 1)
      throw new OpsError(
        'bad_setting',
        `${key} must be comma-separated name=value pairs; one entry has no "=" (or an empty side). Fix it and start again.`,
      )
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim()
  }
  return out
}
