/** Error groups and events as the UI, the CLI and the contract see them (already scrubbed in core). */
import { z } from 'zod'

export const groupState = z.enum(['unresolved', 'regressed', 'resolved', 'ignored'])
export type GroupState = z.infer<typeof groupState>

export const errorGroup = z.object({
  id: z.string(),
  title: z.string(),
  culprit: z.string(),
  type: z.string(),
  level: z.string(),
  firstSeen: z.number(),
  lastSeen: z.number(),
  count: z.number(),
  users: z.number(),
  state: groupState,
  releases: z.array(z.string()),
  environments: z.array(z.string()),
  /** Events per hour over the last 24 h, oldest first (24 numbers). */
  spark: z.array(z.number()),
  regressedAt: z.number().nullable(),
  ignoreUntil: z.number().nullable(),
  ignoreUntilCount: z.number().nullable(),
  resolvedInRelease: z.string().nullable(),
})
export type ErrorGroup = z.infer<typeof errorGroup>

export const errorFrame = z.object({
  filename: z.string().nullable(),
  absPath: z.string().nullable(),
  module: z.string().nullable(),
  function: z.string().nullable(),
  lineno: z.number().nullable(),
  colno: z.number().nullable(),
  inApp: z.boolean(),
  contextLine: z.string().nullable(),
  preContext: z.array(z.string()),
  postContext: z.array(z.string()),
})

export const errorEventView = z.object({
  eventId: z.string(),
  timestamp: z.number(),
  received: z.number(),
  level: z.string(),
  platform: z.string(),
  message: z.string().nullable(),
  exceptions: z.array(z.object({ type: z.string(), value: z.string(), module: z.string().nullable(), frames: z.array(errorFrame) })),
  breadcrumbs: z.array(
    z.object({
      timestamp: z.number().nullable(),
      category: z.string().nullable(),
      level: z.string().nullable(),
      message: z.string().nullable(),
      type: z.string().nullable(),
      data: z.record(z.string(), z.unknown()).nullable(),
    }),
  ),
  request: z
    .object({
      method: z.string().nullable(),
      url: z.string().nullable(),
      headers: z.record(z.string(), z.string()),
      query: z.string().nullable(),
      data: z.unknown(),
    })
    .nullable(),
  user: z.record(z.string(), z.unknown()).nullable(),
  tags: z.record(z.string(), z.string()),
  contexts: z.record(z.string(), z.unknown()),
  extra: z.record(z.string(), z.unknown()),
  release: z.string().nullable(),
  environment: z.string().nullable(),
  serverName: z.string().nullable(),
  transaction: z.string().nullable(),
  sdk: z.string().nullable(),
})
export type ErrorEventView = z.infer<typeof errorEventView>

export const errorGroupDetail = z.object({
  group: errorGroup,
  why: z.object({ method: z.string(), explanation: z.string(), components: z.array(z.string()) }),
  event: errorEventView.nullable(),
  /** Neighbouring events of the group (older = received before the one shown). */
  olderId: z.string().nullable(),
  newerId: z.string().nullable(),
  eventCount: z.number(),
  /** What else the store recorded around the group's first event (±1 h): health changes, backups, restores. */
  around: z.array(z.object({ at: z.number(), kind: z.string(), text: z.string() })),
})
export type ErrorGroupDetail = z.infer<typeof errorGroupDetail>

export const errorListFilter = z
  .object({
    state: groupState.optional(),
    level: z.string().max(16).optional(),
    release: z.string().max(200).optional(),
    environment: z.string().max(64).optional(),
    text: z.string().max(200).optional(),
    limit: z.number().int().min(1).max(500).default(100),
  })
  .strict()
