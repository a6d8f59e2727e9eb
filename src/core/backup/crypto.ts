import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scrypt, scryptSync, type DecipherGCM } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { OpsError } from '../../shared/contract'

const IV = 12
const TAG = 16

export interface EncryptionParams {
  algorithm: 'aes-256-gcm'
  /** How the key was made: given as 32 bytes, or derived from a passphrase with scrypt. */
  kdf: 'none' | 'scrypt'
  salt: string | null
  /** An HMAC of a fixed text under the key: tells a wrong key apart before any data is decrypted. Not the key. */
  keyCheck: string
}

/** The encryption settings a reader has: BACKUP_ENCRYPTION_KEY and BACKUP_ENCRYPTION_PASSPHRASE (either may be unset). */
export interface KeySource {
  key: string | null
  passphrase: string | null
}

export const hasKey = (k: KeySource | null | undefined): boolean => !!(k?.key || k?.passphrase)

/**
 * Keys derived from a passphrase, by passphrase and salt: scrypt costs ~0.1 s and 32 MB, and every set has
 * its own salt, so listing a catalog would otherwise derive one key per set each time. Kept in memory only.
 */
const derived = new Map<string, Buffer>()
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }
const derivedId = (passphrase: string, salt: string) => createHash('sha256').update(passphrase).update('\0').update(salt).digest('hex')
function remember(id: string, key: Buffer): Buffer {
  if (derived.size >= 1024) derived.delete(derived.keys().next().value!)
  derived.set(id, key)
  return key
}
function scryptKey(passphrase: string, salt: string): Buffer {
  const id = derivedId(passphrase, salt)
  return derived.get(id) ?? remember(id, scryptSync(passphrase, Buffer.from(salt, 'hex'), 32, SCRYPT))
}

/**
 * Derive the passphrase keys of many sets at once, on libuv's threads (a catalog listing checks every
 * set's manifest): afterwards keyForSet finds them derived. Failures are left for keyForSet to report.
 */
export async function deriveKeys(params: (EncryptionParams | null)[], o: KeySource): Promise<void> {
  const passphrase = o.passphrase
  if (!passphrase) return
  const salts = new Set(
    params.flatMap((p) => (p?.kdf === 'scrypt' && p.salt && !derived.has(derivedId(passphrase, p.salt)) ? [p.salt] : [])),
  )
  await Promise.all(
    [...salts].map(
      (salt) =>
        new Promise<void>((done) =>
          scrypt(passphrase, Buffer.from(salt, 'hex'), 32, SCRYPT, (err, key) => {
            if (!err) remember(derivedId(passphrase, salt), key)
            done()
          }),
        ),
    ),
  )
}

/** The key from configuration: BACKUP_ENCRYPTION_KEY (32 bytes, hex or base64) or BACKUP_ENCRYPTION_PASSPHRASE. */
export function resolveKey(
  o: { key: string | null; passphrase: string | null },
  salt?: string | null,
): { key: Buffer; params: EncryptionParams } | null {
  if (o.key) {
    const key = /^[0-9a-f]{64}$/i.test(o.key) ? Buffer.from(o.key, 'hex') : Buffer.from(o.key, 'base64')
    if (key.length !== 32)
      throw new OpsError(
        'bad_key',
        'BACKUP_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64 (e.g. the output of "openssl rand -hex 32").',
      )
    return { key, params: { algorithm: 'aes-256-gcm', kdf: 'none', salt: null, keyCheck: keyCheck(key) } }
  }
  if (o.passphrase) {
    const s = salt ?? randomBytes(16).toString('hex')
    const key = scryptKey(o.passphrase, s)
    return { key, params: { algorithm: 'aes-256-gcm', kdf: 'scrypt', salt: s, keyCheck: keyCheck(key) } }
  }
  return null
}

export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('examforge-ops key check v1').digest('hex').slice(0, 32)
}

/** The key a set needs, checked against the set's key check: a wrong key is refused before reading data. */
export function keyForSet(params: EncryptionParams, o: KeySource): Buffer {
  const k =
    params.kdf === 'scrypt'
      ? resolveKey({ key: null, passphrase: o.passphrase }, params.salt)
      : resolveKey({ key: o.key, passphrase: null })
  if (!k)
    throw new OpsError(
      'key_missing',
      `This backup is encrypted: set ${params.kdf === 'scrypt' ? 'BACKUP_ENCRYPTION_PASSPHRASE' : 'BACKUP_ENCRYPTION_KEY'} to the one it was made with.`,
    )
  if (k.params.keyCheck !== params.keyCheck)
    throw new OpsError(
      'wrong_key',
      `The encryption ${params.kdf === 'scrypt' ? 'passphrase' : 'key'} is wrong for this backup: use the one it was made with.`,
    )
  return k.key
}

/**
 * AES-256-GCM over a stream: [12-byte IV][ciphertext][16-byte tag]. Each object has its own IV.
 * The associated data (format version 2: the set and the object's key, see authenticity.ts) is not stored:
 * the reader supplies it from where it found the object, so an object read anywhere else fails its tag.
 */
export function encryptStream(key: Buffer, aad: Buffer | null = null): Transform {
  const iv = randomBytes(IV)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  if (aad) cipher.setAAD(aad)
  let started = false
  return new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      const out = cipher.update(chunk)
      if (!started) {
        started = true
        cb(null, Buffer.concat([iv, out]))
      } else cb(null, out)
    },
    flush(cb) {
      const fin = cipher.final()
      cb(null, Buffer.concat([started ? Buffer.alloc(0) : iv, fin, cipher.getAuthTag()]))
    },
  })
}

/**
 * The inverse; the tag is checked at the end, and a mismatch fails the stream (altered bytes, an object
 * from somewhere else when associated data is given, or a wrong key). `what` names the object for people.
 */
export function decryptStream(key: Buffer, what: string, aad: Buffer | null = null): Transform {
  let head = Buffer.alloc(0)
  let decipher: DecipherGCM | null = null
  let tail = Buffer.alloc(0)
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      try {
        if (!decipher) {
          head = Buffer.concat([head, chunk])
          if (head.length < IV) return cb()
          decipher = createDecipheriv('aes-256-gcm', key, head.subarray(0, IV))
          if (aad) decipher.setAAD(aad)
          chunk = head.subarray(IV)
        }
        const buf = Buffer.concat([tail, chunk])
        const keep = Math.min(TAG, buf.length)
        tail = buf.subarray(buf.length - keep)
        cb(null, decipher.update(buf.subarray(0, buf.length - keep)))
      } catch (e) {
        cb(e as Error)
      }
    },
    flush(cb) {
      if (!decipher || tail.length < TAG)
        return cb(new OpsError('corrupt', `${what} is truncated: it is too short to be an encrypted object.`))
      try {
        decipher.setAuthTag(tail)
        cb(null, decipher.final())
      } catch {
        cb(
          new OpsError(
            'corrupt',
            aad
              ? `${what} failed its authentication check: it does not belong here (copied from another set, or from another place in this one) or its bytes were altered or damaged.`
              : `${what} failed its authentication check: the bytes were altered or damaged, or the key is wrong.`,
          ),
        )
      }
    },
  })
}

export const sha256Hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
