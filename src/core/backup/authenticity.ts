/**
 * Whether a backup set is what the console wrote (manifest format version 2, client-side encryption on).
 *
 * Whoever can write to the backup storage can rewrite a manifest, and a restore executes the schema and
 * loads the objects it names. An encrypted set is therefore written so that, without the key, nothing in
 * it can be changed unnoticed:
 * - the manifest carries an HMAC-SHA256 over its canonical bytes (every field but `auth`, as JSON with keys
 *   sorted), under a key derived from the set's encryption key by HKDF-SHA256 with a label of its own
 *   (never the encryption key itself). It covers the table list, digests, object SHA-256s and format version;
 * - each object is encrypted with AES-GCM associated data naming the format version, the set and the
 *   object's key, so an object copied from another set, or moved within its set, fails decryption by name.
 * The catalog, verify and restore check both. Sets without encryption, and encrypted sets written before
 * version 2, carry neither: their SHA-256s sit in a manifest anyone with write access can rewrite, so with
 * a key configured they are restored only when the operator acknowledges it (allowUnauthenticated).
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import { OpsError } from '../../shared/contract'
import { hasKey, keyForSet, type KeySource } from './crypto'
import { AUTHENTICATED_VERSION, manifestKey, setPrefix, type Manifest } from './manifest'

const MAC_LABEL = 'examforge-ops manifest mac v2'

/**
 * authenticated: its MAC was checked with the configured key. unauthenticated: it has no MAC (no encryption,
 * or written before version 2). unchecked: it has one, but no key (or another key) is configured to check it.
 */
export type Authenticity = 'authenticated' | 'unauthenticated' | 'unchecked'

/** The MAC key: HKDF-SHA256 of the set's encryption key, with a label of its own. */
export function macKey(encryptionKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', encryptionKey, Buffer.alloc(0), MAC_LABEL, 32))
}

/** JSON with object keys sorted at every level: the same value gives the same bytes, however it was stored. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

function macOf(fields: Record<string, unknown>, encryptionKey: Buffer): string {
  const { auth: _auth, ...rest } = fields
  // Through JSON and back first: what is MACed is exactly what a reader parses (no undefined fields).
  const canonical = canonicalJson(JSON.parse(JSON.stringify(rest)))
  return createHmac('sha256', macKey(encryptionKey)).update(canonical).digest('hex')
}

/** What an object is bound to when it is encrypted: the format, its set and its own key. */
export const objectAad = (setId: string, key: string): Buffer =>
  Buffer.from(`examforge-ops format ${AUTHENTICATED_VERSION}\0set ${setId}\0object ${key}`, 'utf8')

/** The associated data an object of this set was encrypted with (none before version 2). */
export const aadFor = (m: Pick<Manifest, 'formatVersion' | 'setId'>, key: string): Buffer | null =>
  m.formatVersion >= AUTHENTICATED_VERSION ? objectAad(m.setId, key) : null

/** The manifest as it is written: with its MAC when the set is encrypted (it is then version 2). */
export function sealManifest(m: Manifest, encryptionKey: Buffer | null): Manifest {
  if (!encryptionKey) return m
  if (m.formatVersion !== AUTHENTICATED_VERSION) throw new Error('an encrypted set is written as format version 2')
  return { ...m, auth: { algorithm: 'hmac-sha256', kdf: 'hkdf-sha256', mac: macOf(m, encryptionKey) } }
}

export interface ManifestCheck {
  tampered: boolean
  authenticity: Authenticity
  /** For people: why it is tampered, or what its authenticity means for a restore (null when nothing to say). */
  problem: string | null
}

const AFTER_TAMPER = 'It is never offered for restore: restore another set, and find out who or what can write to the backup storage.'

/**
 * Check a manifest read from `setId`'s folder: it describes that set and only its objects, and (version 2)
 * its MAC matches under the configured key. `raw` is the parsed JSON as stored (the MAC covers every field).
 */
export function checkManifest(setId: string, raw: Record<string, unknown>, m: Manifest, keys: KeySource | null): ManifestCheck {
  const where = manifestKey(setId)
  const tampered = (why: string): ManifestCheck => ({ tampered: true, authenticity: 'unauthenticated', problem: `${why} ${AFTER_TAMPER}` })
  if (m.setId !== setId) return tampered(`The manifest ${where} describes another set (${m.setId}): it was copied here.`)
  const outside = m.objects.find((o) => !o.key.startsWith(setPrefix(setId)))
  if (outside) return tampered(`The manifest ${where} names an object outside its set (${outside.key}): it was edited.`)
  const listed = new Set(m.objects.map((o) => o.key))
  const unlisted = m.tables.flatMap((t) => t.chunks).find((c) => !listed.has(c.key))
  if (unlisted) return tampered(`The manifest ${where} names a chunk without a checksum (${unlisted.key}): it was edited.`)
  if (m.formatVersion >= AUTHENTICATED_VERSION || m.auth) {
    if (!m.auth || !m.encryption || m.formatVersion < AUTHENTICATED_VERSION)
      return tampered(
        `The manifest ${where} is an encrypted set's (format version 2) with its MAC or its encryption removed: it was edited.`,
      )
    if (!hasKey(keys)) return { tampered: false, authenticity: 'unchecked', problem: null }
    let key: Buffer
    try {
      key = keyForSet(m.encryption, keys!)
    } catch (e) {
      return { tampered: false, authenticity: 'unchecked', problem: `Its authenticity cannot be checked: ${(e as Error).message}` }
    }
    const expected = Buffer.from(macOf(raw, key), 'hex')
    const given = Buffer.from(m.auth.mac, 'hex')
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return tampered(
        `The manifest ${where} failed its authentication check: it was edited or replaced after the backup was written, by someone without the key.`,
      )
    return { tampered: false, authenticity: 'authenticated', problem: null }
  }
  return {
    tampered: false,
    authenticity: 'unauthenticated',
    problem: hasKey(keys) ? unauthenticatedWhy(m) : null,
  }
}

function unauthenticatedWhy(m: Manifest): string {
  return `Unauthenticated: ${m.encryption ? 'written before format version 2' : 'written without encryption'}, its manifest carries no MAC, so a change by someone who can write to the backup storage would go unnoticed. Restoring it needs an explicit acknowledgement (--allow-unauthenticated); a new backup replaces it.`
}

/**
 * With a key configured, a restore reads only authenticated sets, unless the operator acknowledges the
 * unauthenticated ones. Without a key nothing can be authenticated, and nothing is asked (README says so).
 */
export function refuseUnauthenticated(
  sets: { manifest: Manifest; authenticity: Authenticity }[],
  keys: KeySource,
  allowUnauthenticated: boolean,
): { acknowledged: string[] } {
  if (!hasKey(keys)) return { acknowledged: [] }
  const bad = sets.filter((s) => s.authenticity === 'unauthenticated')
  if (bad.length && !allowUnauthenticated) {
    const names = bad.map((s) => `${s.manifest.setId} (${s.manifest.encryption ? 'written before format version 2' : 'not encrypted'})`)
    throw new OpsError(
      'unauthenticated_set',
      `The restore needs ${bad.length === 1 ? 'a set' : 'sets'} whose manifest is not authenticated: ${names.join(', ')}. An encryption key is configured, so only sets it authenticates are restored: restore a newer set, or, if you trust the storage, acknowledge it (--allow-unauthenticated, or the checkbox in the wizard). Nothing was changed.`,
    )
  }
  return { acknowledged: bad.map((s) => s.manifest.setId) }
}
