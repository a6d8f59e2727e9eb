import { urlTransport } from '../db/transport'
import type { Probe, ProbeOutcome } from './probe'

/**
 * The encryption rule every health result passes through: a service reached over the network in
 * clear text is degraded, whatever else it reports, because its credentials and data cross the
 * wire readable. On this machine's loopback clear text is fine, and the transport says so.
 * A result that is already worse than healthy keeps its own reason (the transport is still shown).
 */
export function applyTransportRule(outcome: ProbeOutcome, howToEncrypt: string): ProbeOutcome {
  const t = outcome.transport
  if (!t || t.encrypted || t.loopback || outcome.status !== 'healthy') return outcome
  return {
    ...outcome,
    status: 'degraded',
    reason: `${outcome.reason} The connection is not encrypted (not a loopback address): ${howToEncrypt}`,
  }
}

/** A probe of an HTTP(S) service whose every outcome carries the transport its URL implies. */
export function withUrlTransport(probe: Probe, url: () => string | null): Probe {
  return {
    ...probe,
    async run(signal) {
      const outcome = await probe.run(signal)
      const u = url()
      return u ? { ...outcome, transport: urlTransport(u) } : outcome
    },
  }
}
