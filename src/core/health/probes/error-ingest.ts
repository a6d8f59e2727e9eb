import { probeIngest } from '../../errors/ingest'
import type { ErrorService } from '../../errors/service'
import { describeNetError, degraded, ok, unhealthy, type Probe } from '../probe'

/** Minutes over which refused (429) and failed (503) ingest requests make the tile degraded. */
export const SHED_WINDOW_MIN = 5

/**
 * The error ingest, where this face runs it (the host/agent): unhealthy when it is not listening (it could
 * not bind, or does not answer a header-only envelope with its own DSN key), degraded while it sheds load —
 * requests refused with 429 (a client over ERROR_INGEST_RATE, or the store too far behind) or failed with 503
 * (the store could not take them) in the last SHED_WINDOW_MIN minutes. Faces that do not run it (Electron,
 * one-shot CLI commands) report it as not configured here: the agent's own Health page shows it.
 */
export function errorIngestProbe(o: { errors: ErrorService; runsHere: boolean; address: string; timeoutMs: number }): Probe {
  return {
    id: 'error_ingest',
    label: 'Error ingest',
    howToConfigure:
      'The error ingest runs in the host/agent ("examforge-ops serve"), not in this window: SDKs send to the agent, whose Health page shows it.',
    configured: () => o.runsHere,
    async run(signal) {
      const url = o.errors.ingestUrl()
      if (!url)
        return unhealthy(
          `The error ingest is not listening: ${o.errors.ingestProblem() ?? 'it is not running'}. SDKs' events are lost; set ERROR_INGEST_ADDR to a free address and restart.`,
          { address: o.address },
        )
      const p = await probeIngest(url, o.errors.keys().key, o.timeoutMs, signal)
      if (p.state === 'none')
        return unhealthy(`The error ingest at ${url} does not answer: ${describeNetError(p.error, 'The ingest')}`, { address: o.address })
      if (p.state !== 'ours')
        return unhealthy(`Something at ${url} answers, but not as this console's ingest with its DSN key.`, { address: o.address })
      const r = o.errors.recentOutcomes(SHED_WINDOW_MIN)
      const details = {
        address: o.address,
        acceptedEvents: r.accepted ?? 0,
        refused429: r.rate_limited ?? 0,
        failed503: r.internal_error ?? 0,
        shedForBacklog: r.shed_backlog ?? 0,
        windowMinutes: SHED_WINDOW_MIN,
      }
      const latency = Math.round(p.latencyMs * 10) / 10
      if (details.refused429 || details.failed503) {
        const why = [
          details.refused429 &&
            `${details.refused429} request${details.refused429 === 1 ? '' : 's'} refused with 429 (${
              details.shedForBacklog ? 'the store is too far behind' : 'a client sends more than ERROR_INGEST_RATE events/s'
            })`,
          details.failed503 && `${details.failed503} failed with 503 (the store could not take them)`,
        ].filter(Boolean)
        return degraded(
          `The error ingest is shedding events: ${why.join(' and ')} in the last ${SHED_WINDOW_MIN} minutes; ${details.acceptedEvents} accepted.`,
          details,
          latency,
        )
      }
      return ok(`Listening on ${url}; ${details.acceptedEvents} events accepted in the last ${SHED_WINDOW_MIN} minutes, none refused.`, details, latency)
    },
  }
}
