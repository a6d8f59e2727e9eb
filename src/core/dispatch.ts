import { OpsError, isMethodName, parseInput, type Reply } from '../shared/contract'
import { authorize, describeIdentity } from './auth/identity'
import { handlers, type CallContext, type HandlerContext } from './handlers'
import { scrub } from './log/scrub'
import type { Ops } from './ops'

/** A name for a value a caller sent, without calling anything on it (String() runs the caller's toString). */
const shown = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : `of type ${typeof v}`)

/**
 * The single entry every face uses: validate the method name and input against the contract,
 * check the caller may call it (destructive methods need an administrator), run the core
 * function, and reply { ok, value } | { ok: false, error } with the error scrubbed of secrets.
 * Nothing unvalidated reaches core, and this never rejects.
 */
export async function dispatch(ops: Ops, method: unknown, input: unknown, ctx: CallContext): Promise<Reply<unknown>> {
  try {
    if (!isMethodName(method)) throw new OpsError('unknown_method', `There is no method ${shown(method)}.`)
    authorize(ops.config, ctx.actor, method)
    const parsed = parseInput(method, input)
    const handler = handlers[method] as (ops: Ops, input: unknown, ctx: HandlerContext) => unknown
    const value = await handler(ops, parsed, { identity: ctx.actor, who: describeIdentity(ops.config, ctx.actor) })
    return { ok: true, value }
  } catch (e) {
    const code = e instanceof OpsError ? e.code : 'internal'
    const message = e instanceof Error && typeof e.message === 'string' ? e.message : 'The call failed with a value that is not an error.'
    if (code === 'internal') ops.log.error(`call ${isMethodName(method) ? method : '(unknown)'} failed`, { error: scrub(message) })
    return { ok: false, error: { code, message: scrub(message) } }
  }
}
