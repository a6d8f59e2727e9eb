import type pg from 'pg'
import type { LogicalReplicationService } from 'pg-logical-replication'
import { OpsError } from '../../../shared/contract'
import { logicalReplication } from '../../deps/lazy'
import { lsnToBigInt, type PgoutputDecoder, type PgoutputMessage } from './pgoutput'
import { PUBLICATION } from './slot'

/**
 * Reading a chain's slot: a stream of pgoutput messages from the slot's confirmed position up to a
 * target, with nothing confirmed while reading (an incremental confirms only once its set is stored).
 */

/** pgoutput through pg-logical-replication's streaming, decoded by our decoder (exact text values). */
class RawPgoutputPlugin {
  constructor(readonly options: { decoder: PgoutputDecoder; messages: boolean }) {}
  get name() {
    return 'pgoutput'
  }
  parse(buffer: Buffer) {
    return this.options.decoder.decode(buffer)
  }
  start(client: pg.Client, slot: string, lsn: string) {
    return client.query(
      `START_REPLICATION SLOT "${slot}" LOGICAL ${lsn} (proto_version '1', publication_names '${PUBLICATION}'${this.options.messages ? ", messages 'true'" : ''})`,
    )
  }
}

export interface ReadOptions {
  url: string
  /** The replication connection's options (TLS as the first connection found it, timeouts; see db/connect). */
  clientConfig: pg.ClientConfig
  slot: string
  /** Answered to keepalives: nothing is confirmed while reading. */
  holdAt: string
  targetLsn: bigint
  signal: AbortSignal
  decoder: PgoutputDecoder
  /** Handle one message in order; true once everything wanted is in. */
  onMessage(m: PgoutputMessage): boolean
  /** Whether a transaction is open (a heartbeat past the target ends the read only outside one). */
  inTxn(): boolean
  /** Receives the socket's pause/resume, for backpressure. */
  flow?(pause: () => void, resume: () => void): void
  /** Ends the read with its error when it rejects (storage failed). */
  failure?: Promise<unknown>
  /** Also receive logical decoding messages (PostgreSQL 14+): they mark where a new table joined the chain. */
  messages?: boolean
}

/**
 * Read the chain's slot from its confirmed position up to a target, without confirming anything
 * (the standby-status timer is off; keepalives are answered with the parent's point). Returns the
 * open stream (to confirm once the set is stored) and the time spent waiting for the server.
 */
export async function readSlot(r: ReadOptions): Promise<{ stream: LogicalReplicationService; fetchMs: number }> {
  const { LogicalReplicationService } = await logicalReplication()
  const stream = new LogicalReplicationService(r.clientConfig, {
    acknowledge: { auto: false, timeoutSeconds: 0 },
    flowControl: { enabled: false },
  })
  let fetchMs = 0
  let lastMessageAt = performance.now()
  const socket = () => (stream as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream
  r.flow?.(
    () => socket()?.pause(),
    () => socket()?.resume(),
  )
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = false
      const finish = (e?: unknown) => {
        if (finished) return
        finished = true
        clearInterval(idle)
        r.signal.removeEventListener('abort', onAbort)
        if (e) reject(e)
        else resolve()
      }
      const onAbort = () => finish(r.signal.reason ?? new Error('cancelled'))
      r.signal.addEventListener('abort', onAbort, { once: true })
      // Messages arrive in order and are handled synchronously, in order.
      stream.on('data', (_lsn: string, m: PgoutputMessage) => {
        if (finished) return
        const f0 = performance.now()
        fetchMs += f0 - lastMessageAt
        try {
          if (r.onMessage(m)) finish()
        } catch (e) {
          finish(e)
        }
        lastMessageAt = performance.now()
      })
      // Caught up: the server's position passed the target outside a transaction.
      stream.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
        if (!finished && !r.inTxn() && lsnToBigInt(lsn) >= r.targetLsn) finish()
        else if (shouldRespond) void stream.acknowledge(r.holdAt)
      })
      stream.on('error', (e: Error) => finish(e))
      // If the server is quiet, ask it where it is (the answer arrives as a heartbeat).
      const idle = setInterval(() => {
        if (!finished && performance.now() - lastMessageAt > 250) void stream.acknowledge(r.holdAt, true)
      }, 100)
      r.failure?.catch((e) => finish(e))
      stream.subscribe(new RawPgoutputPlugin({ decoder: r.decoder, messages: r.messages ?? false }), r.slot, '0/0').catch((e) => finish(e))
    })
  } catch (e) {
    await stream.stop().catch(() => {})
    throw e
  }
  return { stream, fetchMs }
}
/**
 * Wait until nobody reads the slot: the server ends the walsender of a read that just stopped a moment
 * after its connection closes, and a slot serves one reader at a time.
 */
export async function slotIdle(c: pg.Client, slot: string, signal: AbortSignal, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    signal.throwIfAborted()
    const { rows } = await c.query<{ pid: number | null }>(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1`, [
      slot,
    ])
    if (!rows[0]?.pid) return
    if (Date.now() > deadline)
      throw new OpsError(
        'slot_busy',
        `The chain's replication slot ${slot} is being read by another session (pid ${rows[0].pid}): is another backup running? Wait for it, then try again.`,
      )
    await new Promise((r) => setTimeout(r, 50))
  }
}
