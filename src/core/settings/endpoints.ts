import { createHash, timingSafeEqual } from 'node:crypto'
import { lstatSync } from 'node:fs'
import { resolve } from 'node:path'
import { OpsError } from '../../shared/contract'

/**
 * Settings that say where a secret (or the backups) is sent are as sensitive as the secret: whoever
 * could change them from the UI could have the Stripe key, the AWS credentials or every backup sent
 * to a server of their choosing after the next restart. This file holds, per such setting, what a
 * change from the UI must prove (the secret it would receive, typed again), and the checks on the
 * new value (https for remote hosts, a private folder). The environment is not checked: whoever sets
 * it already holds the secrets.
 */

export interface EndpointGuard {
  /** What the caller must type again to change it (a setting key, or a URL's password); null when nothing. */
  confirmWith: string | null
  /** Why, for people: shown in the Settings page beside the field. */
  why: string
  /** Cannot be changed from the UI at all (there is no secret it could be confirmed with). */
  environmentOnly: boolean
}

/** The current values, secrets included (core only). */
type Raw = Record<string, string | undefined>

const DB_URLS = ['DATABASE_URL', 'OPS_DATABASE_URL', 'REDIS_URL']
const AWS_CREDENTIALS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']

/** 127.0.0.0/8, ::1 and localhost: nothing leaves this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

function urlPassword(url: string | undefined): string | null {
  if (!url) return null
  try {
    const u = new URL(url)
    return decodeURIComponent(u.password) || u.searchParams.get('password') || null
  } catch {
    return null
  }
}

function hostOf(url: string | undefined | null): string | null {
  if (!url) return null
  try {
    return new URL(url).host.toLowerCase()
  } catch {
    return null
  }
}

/** The guard on a setting as things are configured now; null for settings that send nothing anywhere. */
export function endpointGuard(key: string, raw: Raw): EndpointGuard | null {
  switch (key) {
    case 'STRIPE_API_BASE':
      return raw.STRIPE_SECRET_KEY
        ? { confirmWith: 'STRIPE_SECRET_KEY', why: 'The Stripe secret key is sent to this address.', environmentOnly: false }
        : { confirmWith: null, why: 'The Stripe secret key will be sent to this address once one is set.', environmentOnly: false }
    case 'S3_ENDPOINT':
    case 'BACKUP_S3_BUCKET':
      return raw.AWS_SECRET_ACCESS_KEY
        ? {
            confirmWith: 'AWS_SECRET_ACCESS_KEY',
            why: 'Backups (every row of the database) and requests signed with the AWS credentials go here.',
            environmentOnly: false,
          }
        : {
            confirmWith: null,
            why: 'Backups go here with the machine’s own AWS credentials (no AWS_SECRET_ACCESS_KEY is configured to confirm a change with): set it in the environment.',
            environmentOnly: true,
          }
    case 'AWS_ACCESS_KEY_ID':
    case 'AWS_SECRET_ACCESS_KEY':
      return raw.AWS_SECRET_ACCESS_KEY
        ? {
            confirmWith: 'AWS_SECRET_ACCESS_KEY',
            why: 'These credentials decide whose buckets the backups can reach: replacing or clearing them needs the current secret key.',
            environmentOnly: false,
          }
        : null
    case 'DATABASE_URL':
    case 'OPS_DATABASE_URL':
    case 'REDIS_URL':
      if (!raw[key]) return null
      return urlPassword(raw[key])
        ? {
            confirmWith: `the current password of ${key}`,
            why: 'Moving it to another server sends restores (backup data) and operations there: confirm with the current password.',
            environmentOnly: false,
          }
        : {
            confirmWith: null,
            why: 'Its current URL has no password to confirm a move to another server with: change the server in the environment.',
            environmentOnly: false,
          }
    case 'APP_URL':
      return {
        confirmWith: null,
        why: 'The health and metrics probes fetch this address: https:// unless it is on this machine.',
        environmentOnly: false,
      }
    case 'LOCAL_BACKUP_PATH':
      return {
        confirmWith: null,
        why: 'Backups are written here: a missing folder, or one of yours that only you can read.',
        environmentOnly: false,
      }
    default:
      return null
  }
}

function sameSecret(given: string, expected: string): boolean {
  // Compare digests: constant time whatever the lengths.
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/** Refuse http:// to a host other than this machine for an address that receives a secret or is fetched. */
function requireHttps(key: string, value: string, what: string): void {
  const u = new URL(value)
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new OpsError('invalid_input', `${key} must be an https:// address (for example https://host); it is ${u.protocol}//….`)
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname))
    throw new OpsError(
      'insecure_endpoint',
      `${key} must use https:// for ${u.hostname}: over http:// ${what} would cross the network in clear text. Only addresses on this machine (127.0.0.1, localhost) may use http://.`,
    )
}

/** Only a missing folder, or an existing one owned by this user that nobody else can read or write. */
function requirePrivateFolder(value: string): void {
  const path = resolve(value)
  let st
  try {
    st = lstatSync(path)
  } catch {
    return // created 0700 on first use
  }
  if (!st.isDirectory())
    throw new OpsError(
      'unsafe_folder',
      `LOCAL_BACKUP_PATH ${path} is not a folder (or is a symbolic link): choose a folder, or a path that does not exist yet.`,
    )
  if (process.platform === 'win32') return
  const mine = typeof process.getuid === 'function' ? process.getuid() : st.uid
  if (st.uid !== mine || (st.mode & 0o077) !== 0)
    throw new OpsError(
      'unsafe_folder',
      `LOCAL_BACKUP_PATH ${path} ${st.uid !== mine ? 'belongs to another user' : `can be read by other users (mode ${(st.mode & 0o777).toString(8)})`}, and backups hold every row: choose a folder of yours with mode 700, or a path that does not exist yet.`,
    )
}

/**
 * Check a change made from the UI (settings.update) before it is saved. Clearing an endpoint (back to
 * its default) is always allowed: it sends nothing to a place the caller chose. The AWS credentials
 * are another matter: whoever could swap them for their own could then confirm moving the bucket
 * with their own key, so replacing or clearing them needs the current secret key too.
 */
export function checkEndpointChange(key: string, value: string | null, confirmation: string | undefined, raw: Raw): void {
  if (value === null && !AWS_CREDENTIALS.includes(key)) return
  // The region names an AWS host (s3.<region>.amazonaws.com): only a region's shape, never a host of one's choosing.
  if (key === 'AWS_REGION' && value !== null && !/^[a-z]{2}(-[a-z0-9]+)+-\d{1,2}$/.test(value))
    throw new OpsError('invalid_input', `AWS_REGION must be a region name such as us-east-1 or eu-west-3; it is "${value.slice(0, 40)}".`)
  const guard = endpointGuard(key, raw)
  if (!guard) return
  if (value === null) return confirm(key, guard, raw[guard.confirmWith!], confirmation)
  if (key === 'STRIPE_API_BASE') requireHttps(key, value, 'the Stripe secret key')
  if (key === 'S3_ENDPOINT') requireHttps(key, value, 'backups and signed requests')
  if (key === 'APP_URL') requireHttps(key, value, 'the probes’ requests and answers')
  if (key === 'LOCAL_BACKUP_PATH') requirePrivateFolder(value)
  if (DB_URLS.includes(key) && hostOf(value) === hostOf(raw[key])) return // same server, new credentials or database
  if (guard.environmentOnly) throw new OpsError('environment_only', `${key} cannot be changed from the console. ${guard.why}`)
  if (DB_URLS.includes(key) && !guard.confirmWith)
    throw new OpsError('environment_only', `${key} cannot be moved to another server from the console. ${guard.why}`)
  if (!guard.confirmWith) return
  confirm(key, guard, DB_URLS.includes(key) ? urlPassword(raw[key]) : raw[guard.confirmWith], confirmation)
}

/** The secret typed again must be the one configured now (when there is one). */
function confirm(key: string, guard: EndpointGuard, expected: string | null | undefined, confirmation: string | undefined): void {
  if (!expected) return
  if (!confirmation)
    throw new OpsError('confirmation_required', `To change ${key}, enter ${guard.confirmWith} again to confirm. ${guard.why}`)
  if (!sameSecret(confirmation, expected))
    throw new OpsError('confirmation_failed', `That is not ${guard.confirmWith} as configured now, so ${key} was not changed.`)
}
