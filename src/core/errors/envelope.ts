/**
 * Sentry's envelope format, read strictly: a header line (JSON), then items, each a header line (JSON,
 * with `type` and optionally `length`) and a payload (exactly `length` bytes, or up to the next newline).
 * A malformed envelope is refused whole (EnvelopeError), so nothing of it is stored half-way.
 *
 * Item types: `event` (and `error`, as some SDKs name it) is what the console keeps; the types SDKs send
 * beside events (sessions, client reports, transactions, attachments, …) are accepted and counted as
 * discarded; anything else is unknown: counted, and an envelope with nothing but unknown items is refused.
 */
export class EnvelopeError extends Error {}

export const KNOWN_DISCARDED = new Set([
  'session',
  'sessions',
  'client_report',
  'transaction',
  'attachment',
  'user_report',
  'feedback',
  'check_in',
  'profile',
  'profile_chunk',
  'replay_event',
  'replay_recording',
  'replay_video',
  'statsd',
  'metric_meta',
  'span',
  'otel_span',
  'log',
  'otel_log',
  'raw_security',
  'nel',
  'form_data',
])

export interface Envelope {
  header: Record<string, unknown>
  events: unknown[]
  discarded: Record<string, number>
  unknown: number
}

const MAX_ITEMS = 100

function json(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'))
  } catch {
    throw new EnvelopeError(`${what} is not valid JSON`)
  }
}

export function parseEnvelope(body: Buffer): Envelope {
  let pos = 0
  const line = (): Buffer | null => {
    if (pos >= body.length) return null
    const nl = body.indexOf(0x0a, pos)
    const end = nl === -1 ? body.length : nl
    const out = body.subarray(pos, end)
    pos = end + 1
    return out
  }
  const first = line()
  if (!first || !first.length) throw new EnvelopeError('the envelope is empty')
  const header = json(first, 'the envelope header')
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new EnvelopeError('the envelope header is not a JSON object')
  const env: Envelope = { header: header as Record<string, unknown>, events: [], discarded: {}, unknown: 0 }
  let items = 0
  while (pos < body.length) {
    const h = line()
    if (h == null) break
    if (!h.length || !h.toString('utf8').trim()) continue // blank lines between items are tolerated
    if (++items > MAX_ITEMS) throw new EnvelopeError(`the envelope has more than ${MAX_ITEMS} items`)
    const ih = json(h, `item ${items}'s header`) as { type?: unknown; length?: unknown } | null
    if (!ih || typeof ih !== 'object' || typeof ih.type !== 'string') throw new EnvelopeError(`item ${items} has no type`)
    let payload: Buffer
    if (ih.length != null) {
      if (typeof ih.length !== 'number' || !Number.isInteger(ih.length) || ih.length < 0)
        throw new EnvelopeError(`item ${items} has a bad length`)
      if (pos + ih.length > body.length) throw new EnvelopeError(`item ${items} is shorter than its length says`)
      payload = body.subarray(pos, pos + ih.length)
      pos += ih.length
      if (body[pos] === 0x0a) pos++
    } else payload = line() ?? Buffer.alloc(0)
    if (ih.type === 'event' || ih.type === 'error') env.events.push(json(payload, `item ${items} (event)`))
    else if (KNOWN_DISCARDED.has(ih.type)) env.discarded[ih.type] = (env.discarded[ih.type] ?? 0) + 1
    else env.unknown++
  }
  return env
}
