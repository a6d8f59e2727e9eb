import { readFileSync } from 'node:fs'
import type { TLSSocket } from 'node:tls'
import type { RedisOptions } from 'ioredis'
import { isLoopbackHost, type Transport } from './transport'

/**
 * Every Redis connection the console makes takes its URL through here. `rediss://` means TLS with
 * the server's certificate verified (against the system's CAs, or the CA file in REDIS_TLS_CA or the
 * URL's `ssl_ca_certs=<path>`); `ssl_cert_reqs=none` in the URL encrypts without verifying (shown as
 * such on Health). `redis://` is clear text. The parameters we read are taken out of the URL handed
 * to ioredis, which would otherwise pass them on as options.
 */

type Env = Record<string, string | undefined>
const OUR_PARAMS = ['ssl_ca_certs', 'ssl_cert_reqs']

export interface RedisConnection {
  url: string
  /** Options to merge into ioredis' (the `tls` object for rediss://). */
  options: Pick<RedisOptions, 'tls'>
  tls: boolean
  verify: boolean
  caFile: string | null
  host: string
  /** A setting that cannot work (an unreadable CA file): connecting fails with it. */
  problem: string | null
}

export function redisConnection(url: string, env: Env = process.env): RedisConnection {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return { url, options: {}, tls: false, verify: false, caFile: null, host: url, problem: null }
  }
  const tls = u.protocol === 'rediss:'
  const caFile = u.searchParams.get('ssl_ca_certs') ?? env.REDIS_TLS_CA ?? null
  const verify = u.searchParams.get('ssl_cert_reqs') !== 'none'
  const host = u.hostname.replace(/^\[(.+)\]$/, '$1') || 'localhost'
  for (const p of OUR_PARAMS) u.searchParams.delete(p)
  const clean = u.toString()
  if (!tls) return { url: clean, options: {}, tls, verify: false, caFile: null, host, problem: null }
  let ca: string | undefined
  let problem: string | null = null
  if (caFile && verify) {
    try {
      ca = readFileSync(caFile, 'utf8')
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`
      problem = `The Redis CA file ${caFile} (REDIS_TLS_CA or ssl_ca_certs) ${why}: point it at the PEM file of the CA that signed the Redis server's certificate.`
    }
  }
  return {
    url: clean,
    options: { tls: { rejectUnauthorized: verify, ...(ca ? { ca } : {}) } },
    tls,
    verify,
    caFile: verify ? caFile : null,
    host,
    problem,
  }
}

const UNTRUSTED = /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|CERT_REJECTED/

/** A Redis TLS failure as a sentence an operator can act on, or null when it is not one. */
export function explainRedisTlsError(e: unknown, c: RedisConnection): string | null {
  const err = e as NodeJS.ErrnoException
  const code = err?.code ?? ''
  const ca = c.caFile ? `the CA in ${c.caFile}` : "the system's trusted CAs"
  if (UNTRUSTED.test(code))
    return `Redis at ${c.host} presented a certificate that is not signed by ${ca} (${err.message}): set REDIS_TLS_CA to the CA that issued it.`
  if (code === 'CERT_HAS_EXPIRED') return `Redis at ${c.host} presented an expired certificate: renew the server's certificate.`
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `Redis's certificate does not name "${c.host}" (${err.message}): connect with a host name the certificate lists.`
  if (c.tls && (code === 'ECONNRESET' || /wrong version number|packet length too long/i.test(err?.message ?? '')))
    return `Redis at ${c.host} did not complete a TLS handshake: does it listen for TLS on that port (tls-port), or should the URL be redis://?`
  return null
}

/** How a connected ioredis client's socket travels. */
export function redisTransport(stream: unknown, c: RedisConnection): Transport {
  const s = stream as Partial<TLSSocket> | null | undefined
  const loopback = isLoopbackHost(c.host)
  if (!s?.encrypted)
    return {
      encrypted: false,
      verified: false,
      loopback,
      detail: loopback ? "Not encrypted (redis://); fine on this machine's loopback." : 'Not encrypted (redis://).',
    }
  const what = [s.getProtocol?.(), s.getCipher?.()?.name].filter(Boolean).join(', ') || 'TLS'
  if (c.verify && s.authorized)
    return {
      encrypted: true,
      verified: true,
      loopback,
      detail: `Encrypted (${what}); certificate verified against ${c.caFile ?? "the system's CAs"} for "${c.host}".`,
    }
  return {
    encrypted: true,
    verified: false,
    loopback,
    detail: `Encrypted (${what}); the server's certificate is not verified (ssl_cert_reqs=none): remove it and set REDIS_TLS_CA to verify.`,
  }
}
