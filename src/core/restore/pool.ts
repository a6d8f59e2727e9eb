import type pg from 'pg'

/**
 * Work for a fixed set of connections where tasks become ready as others finish (an index once its
 * table is loaded): each connection takes the next ready task, or waits for something to finish.
 * next() returns a task, 'wait' (tasks remain, none ready yet) or null (nothing left).
 */
export async function runPool<T>(
  clients: pg.Client[],
  next: () => T | 'wait' | null,
  run: (c: pg.Client, task: T) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  let wake: () => void = () => {}
  let changed = new Promise<void>((r) => (wake = r))
  const notify = () => {
    const w = wake
    changed = new Promise<void>((r) => (wake = r))
    w()
  }
  let failed: unknown = null
  await Promise.all(
    clients.map(async (c) => {
      for (;;) {
        if (failed) return
        signal.throwIfAborted()
        const t = next()
        if (t === null) return notify()
        if (t === 'wait') {
          await changed
          continue
        }
        try {
          await run(c, t)
        } catch (e) {
          failed ??= e
          notify()
          throw e
        }
        notify()
      }
    }),
  )
}
