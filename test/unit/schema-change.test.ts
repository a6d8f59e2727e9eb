import { describe, expect, it } from 'vitest'
import { parseCreateTable, planCarry } from '../../src/core/backup/changes/schema-change'

const users = (cols: string) => `CREATE TABLE public.users (id bigint NOT NULL, ${cols});`
const tables = [
  { schema: 'public', name: 'users', partitioned: false },
  { schema: 'public', name: 'badges', partitioned: false },
]
const relationOf = new Map([
  ['public.users', 'public.users'],
  ['public.badges', 'public.badges'],
])
const plan = (before: string[], now: string[], post: [string[], string[]] = [[], []], publishable = ['public.users', 'public.badges']) =>
  planCarry(
    { pre: before, post: post[0] },
    { pre: now, post: post[1] },
    tables,
    new Set(['public.users']),
    new Set(publishable),
    relationOf,
  )

describe('carrying a schema change through a chain', () => {
  it('reads a captured CREATE TABLE column by column, defaults left out (commas and parentheses inside them included)', () => {
    const t = parseCreateTable(
      `CREATE TABLE public."User" (id text NOT NULL, tags text[] DEFAULT '{a,b}'::text[] NOT NULL, "x, y" numeric(10,2) DEFAULT round(1.5, 1), n int);`,
    )!
    expect(t.relation).toBe('public."User"')
    expect([...t.columns]).toEqual([
      ['id', 'id text NOT NULL'],
      ['tags', 'tags text[] NOT NULL'],
      ['x, y', '"x, y" numeric(10,2)'],
      ['n', 'n int'],
    ])
    expect(parseCreateTable('CREATE TABLE public.m_1 PARTITION OF public.m FOR VALUES IN (1);')).toBeNull()
  })

  it('carries columns added and dropped, a new table with a key, new types and indexes', () => {
    const r = plan(
      [users(`email text NOT NULL, old text`)],
      [
        users(`email text NOT NULL, locale text DEFAULT 'en'::text NOT NULL`),
        `CREATE TYPE public.mood AS ENUM ('a', 'b');`,
        'CREATE TABLE public.badges (id integer NOT NULL, name text);',
      ],
      [
        [],
        [
          'CREATE INDEX users_locale ON public.users USING btree (locale);',
          'ALTER TABLE public.badges ADD CONSTRAINT badges_pkey PRIMARY KEY (id);',
        ],
      ],
    )
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.plan.added.get('public.users')).toEqual(['locale'])
    expect([...r.plan.dropped.get('public.users')!]).toEqual(['old'])
    expect(r.plan.newTables).toEqual(['public.badges'])
    expect(r.plan.preAdded).toEqual([`CREATE TYPE public.mood AS ENUM ('a', 'b');`])
    // The new table's own key comes with it; the index on the old table runs after the replay.
    expect(r.plan.postAdded).toEqual(['CREATE INDEX users_locale ON public.users USING btree (locale);'])
  })

  it('ends the chain for what replay cannot reproduce: a retyped or now NOT NULL column, a new table without a key, a dropped table, a changed function', () => {
    expect(plan([users('email text')], [users('email varchar(10)')])).toMatchObject({
      ok: false,
      why: expect.stringMatching(/column email .* changed/),
    })
    expect(plan([users('email text')], [users('email text NOT NULL')])).toMatchObject({ ok: false })
    expect(
      plan([users('email text')], [users('email text'), 'CREATE TABLE public.badges (id integer);'], [[], []], ['public.users']),
    ).toMatchObject({
      ok: false,
      why: expect.stringMatching(/no replica identity/),
    })
    expect(plan([users('email text'), 'CREATE TABLE public.gone (id integer);'], [users('email text')])).toMatchObject({ ok: false })
    expect(
      plan(
        [users('email text'), 'CREATE FUNCTION public.f() RETURNS int AS 1;'],
        [users('email text'), 'CREATE FUNCTION public.f() RETURNS int AS 2;'],
      ),
    ).toMatchObject({ ok: false })
    // A default changing is harmless (replay writes every value); an added identity column is not carried.
    expect(plan([users('email text')], [users(`email text DEFAULT 'x'::text`)])).toMatchObject({ ok: true })
    expect(
      plan([users('email text')], [users('email text, n bigint GENERATED ALWAYS AS IDENTITY (INCREMENT BY 1) NOT NULL')]),
    ).toMatchObject({
      ok: false,
      why: expect.stringMatching(/generated or an identity/),
    })
  })

  it('carries enum values added (anywhere in the list) as ADD VALUE, and ends the chain when one is renamed or removed', () => {
    const e = (labels: string) => `CREATE TYPE public."Role" AS ENUM (${labels});`
    const r = plan([users('email text'), e(`'A', 'B'`)], [users('email text'), e(`'Z', 'A', 'it''s', 'B', 'C'`)])
    expect(r.ok && r.plan.preAdded).toEqual([
      `ALTER TYPE public."Role" ADD VALUE IF NOT EXISTS 'Z' BEFORE 'A'`,
      `ALTER TYPE public."Role" ADD VALUE IF NOT EXISTS 'it''s' BEFORE 'B'`,
      `ALTER TYPE public."Role" ADD VALUE IF NOT EXISTS 'C' AFTER 'B'`,
    ])
    expect(plan([users('email text'), e(`'A', 'B'`)], [users('email text'), e(`'A', 'C'`)])).toMatchObject({ ok: false })
    expect(plan([users('email text'), e(`'A', 'B'`)], [users('email text'), e(`'B', 'A'`)])).toMatchObject({ ok: false })
  })

  it('lets an index on a dropped column go with it, but not an index dropped on its own', () => {
    const before = [users('email text, old text')]
    const now = [users('email text')]
    expect(plan(before, now, [['CREATE INDEX users_old ON public.users USING btree (old);'], []])).toMatchObject({ ok: true })
    expect(
      plan([users('email text')], [users('email text')], [['CREATE INDEX users_email ON public.users USING btree (email);'], []]),
    ).toMatchObject({
      ok: false,
      why: expect.stringMatching(/was dropped/),
    })
  })
})
