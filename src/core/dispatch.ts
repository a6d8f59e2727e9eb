import { OpsError, isMethodName, parseInput, type Reply } from '../shared/contract'
import { handlers, type CallContext } from './handlers'
import { scrub } from './log/scrub'
import type { Ops } from './ops'

/**
 * The single entry both transports use: validate the method name and input against the
 * contract, run the core function, and reply { ok, value } | { ok: false, error } with the
 * error scrubbed of secrets. Nothing unvalidated reaches core.
 */
export async function dispatch(ops: Ops, method: unknown, input: unknown, ctx: CallContext): Promise<Reply<unknown>> {
  try {
    if (!isMethodName(method)) throw new OpsError('unknown_method', `There is no method "${String(method).slice(0, 80)}".`)
    const parsed = parseInput(method, input)
    const handler = handlers[method] as (ops: Ops, input: unknown, ctx: CallContext) => unknown
    const value = await handler(ops, parsed, ctx)
    return { ok: true, value }
  } catch (e) {
    const code = e instanceof OpsError ? e.code : 'internal'
    const message = e instanceof Error ? e.message : String(e)
    if (code === 'internal') ops.log.error(`call ${String(method)} failed`, { error: message })
    return { ok: false, error: { code, message: scrub(message) } }
  }
}
