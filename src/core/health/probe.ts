import type { HealthStatus, HealthTransport, ServiceId } from '../../shared/domain'

export type Details = Record<string, string | number | boolean | null>

export interface ProbeOutcome {
  status: HealthStatus
  reason: string
  details?: Details
  /** A probe may report the latency of the operation that matters (e.g. PING) instead of the whole run. */
  latencyMs?: number
  /** How the connection travelled (encrypted, verified, loopback), when the probe made one. */
  transport?: HealthTransport
}

export interface Probe {
  id: ServiceId
  label: string
  /** A probe that is not configured is reported as such and never run. */
  configured(): boolean
  /** What to set to configure it, shown on the tile. */
  howToConfigure: string
  /** What to change so the connection is encrypted (said when a non-loopback connection is clear text). */
  howToEncrypt?: string
  run(signal: AbortSignal): Promise<ProbeOutcome>
}

export const ok = (reason: string, details?: Details, latencyMs?: number): ProbeOutcome => ({
  status: 'healthy',
  reason,
  details,
  latencyMs,
})
export const degraded = (reason: string, details?: Details, latencyMs?: number): ProbeOutcome => ({
  status: 'degraded',
  reason,
  details,
  latencyMs,
})
export const unhealthy = (reason: string, details?: Details, latencyMs?: number): ProbeOutcome => ({
  status: 'unhealthy',
  reason,
  details,
  latencyMs,
})

export { formatBytes } from '../../shared/format'

/** Turn a network error into a sentence an operator can act on. */
export function describeNetError(e: unknown, what: string): string {
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
  const code = err?.code ?? err?.cause?.code
  switch (code) {
    case 'ECONNREFUSED':
      return `${what} refused the connection: is it running and listening on that port?`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${what}'s host name does not resolve: check the host in its URL.`
    case 'ETIMEDOUT':
      return `${what} did not answer in time: check the network path and firewall.`
    case 'ECONNRESET':
      return `${what} closed the connection unexpectedly.`
    default:
      return `${what} failed: ${err?.message ?? String(e)}`
  }
}
