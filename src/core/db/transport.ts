import { isIP } from 'node:net'
import type { HealthTransport } from '../../shared/domain'

/**
 * How a connection travels: encrypted or not, the peer verified or not, and whether it stays on
 * this machine's loopback (where clear text is fine). Shared by the PostgreSQL and Redis helpers
 * and the health probes of the HTTP services.
 */
export type Transport = HealthTransport

/** localhost, 127.0.0.0/8, ::1 (and IPv4-mapped loopback), or a Unix socket path. */
export function isLoopbackHost(host: string | null | undefined): boolean {
  if (!host) return true // every client here defaults to localhost
  const h = host.replace(/^\[(.+)\]$/, '$1').toLowerCase()
  if (h.startsWith('/')) return true
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1'
  return false
}

/**
 * An HTTP(S) endpoint's transport from its URL: https is encrypted and, since Node.js verifies
 * certificates by default, verified (unless NODE_TLS_REJECT_UNAUTHORIZED=0 turned that off).
 */
export function urlTransport(url: string, env: Record<string, string | undefined> = process.env): Transport {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return { encrypted: false, verified: false, loopback: false, detail: 'Not a valid URL.' }
  }
  const loopback = isLoopbackHost(u.hostname)
  if (u.protocol === 'https:') {
    if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0')
      return {
        encrypted: true,
        verified: false,
        loopback,
        detail: 'Encrypted (https); certificates are NOT verified because NODE_TLS_REJECT_UNAUTHORIZED=0 is set: unset it.',
      }
    return { encrypted: true, verified: true, loopback, detail: `Encrypted (https); certificate verified for "${u.hostname}".` }
  }
  return {
    encrypted: false,
    verified: false,
    loopback,
    detail: loopback
      ? `Not encrypted (${u.protocol.replace(':', '')}); fine on this machine's loopback.`
      : `Not encrypted (${u.protocol.replace(':', '')}).`,
  }
}
