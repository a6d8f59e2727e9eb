/** Alerts as the UI, the CLI and programs see them (core/alerts holds the engine). */
import { z } from 'zod'

export const alertView = z.object({
  id: z.string(),
  rule: z.string(),
  fingerprint: z.string(),
  labels: z.record(z.string(), z.string()),
  severity: z.string(),
  phase: z.enum(['pending', 'firing']),
  value: z.number().nullable(),
  text: z.string().nullable(),
  since: z.number(),
  ackedBy: z.string().nullable(),
  silencedBy: z.string().nullable(),
})
export type AlertView = z.infer<typeof alertView>

/** A rule in the form people write (durations as text), with where it came from and what it does now. */
export const ruleView = z.object({
  name: z.string(),
  kind: z.string(),
  spec: z.record(z.string(), z.unknown()),
  origin: z.enum(['default', 'ui', 'file']),
  enabled: z.boolean(),
  severity: z.string(),
  firing: z.number(),
  pending: z.number(),
  problem: z.string().nullable(),
})
export type RuleView = z.infer<typeof ruleView>

export const transitionView = z.object({
  rule: z.string(),
  labels: z.record(z.string(), z.string()),
  from: z.string(),
  to: z.string(),
  value: z.number().nullable(),
  text: z.string().nullable(),
  at: z.number(),
})

export const deliveryView = z.object({
  id: z.number(),
  channel: z.string(),
  groupKey: z.string(),
  status: z.string(),
  attempts: z.number(),
  outcome: z.string(),
  error: z.string().nullable(),
  at: z.number(),
  rules: z.array(z.string()),
})

export const matcher = z.object({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a label name is letters, digits and "_"'),
  value: z.string().max(500),
  op: z.enum(['=', '!=', '=~']).default('='),
})

export const silenceView = z.object({
  id: z.string(),
  matchers: z.array(matcher),
  startsAt: z.number(),
  endsAt: z.number(),
  createdBy: z.string(),
  reason: z.string(),
})

export const backtestView = z.array(
  z.object({
    series: z.string(),
    result: z.object({
      points: z.number(),
      firingMs: z.number(),
      episodes: z.array(z.object({ from: z.number(), to: z.number().nullable(), peak: z.number().nullable() })),
      transitions: z.array(
        z.object({ from: z.string(), to: z.string(), at: z.number(), value: z.number().nullable(), text: z.string().nullable() }),
      ),
    }),
  }),
)

export const channelView = z.object({
  name: z.string(),
  type: z.string(),
  groupWaitMs: z.number(),
  groupIntervalMs: z.number(),
  repeatIntervalMs: z.number(),
})
