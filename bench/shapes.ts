// The bench databases, two shapes (issue 16), each made once on the bench server and kept between runs
// (marked complete by a comment on the database):
//  - sandbox: the sandbox's schema at a scale (few tables, most of the bytes in a few big ones, integer keys);
//  - indexed: a real-world Prisma schema (an exam/LMS app with NextAuth, billing, webhooks, audit): 45 tables,
//    text cuid ids, 61 foreign keys between them, 2-4 secondary indexes on every table but _prisma_migrations
//    (foreign keys, timestamps, unique emails/slugs/tokens, composites; 166 indexes with the keys), jsonb and
//    long text big enough to be TOASTed and not squashed by pglz, enums, numeric, inet, text[], timestamptz(3),
//    two tables without a primary key (as NextAuth and Prisma's implicit many-to-many make them). A few big
//    tables (Answer, LessonProgress, AuditLog, Notification), many small ones; index bytes about 0.8 of table
//    bytes (measured at 60 and 200 MB). It measures what the sandbox shape hides: many tables (per-table
//    overheads, parallelism across them), index builds after the load, TOAST reads and writes.
import pg from 'pg'
import { seedSandbox } from '../src/core/sandbox/seed'
import { qi } from '../src/core/db/sql'

export const base = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
/** The bench server's URL for another database on it. */
export const dbUrl = (name: string) => {
  const u = new URL(base)
  u.pathname = `/${name}`
  return u.toString()
}

export async function q(url: string, sql: string) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query(sql)).rows
  } finally {
    await c.end()
  }
}

/** Creates database `name` unless it exists with `marker` as its comment; returns its URL and whether it is ready. */
async function kept(name: string, marker: string): Promise<{ url: string; ready: boolean }> {
  const exists = await q(base, `SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = '${name}'`)
  if (exists[0]?.c === marker) return { url: dbUrl(name), ready: true }
  if (!exists.length) await q(base, `CREATE DATABASE ${name}`)
  return { url: dbUrl(name), ready: false }
}

/** A database of the sandbox's schema at a scale, made once and kept between runs (marked complete by a comment). */
export async function ensureBenchDatabase(scale: number): Promise<string> {
  const name = `examforge_bench_${String(scale).replace('.', '_')}`
  const marker = `examforge-ops bench scale=${scale} complete`
  const { url, ready } = await kept(name, marker)
  if (ready) return url
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const t0 = Date.now()
  await seedSandbox(c, scale, {
    signal: new AbortController().signal,
    onProgress: (p) => process.stderr.write(`\rseeding ${name}: ${p.phase} ${p.done}/${p.total}   `),
  })
  await c.query('VACUUM ANALYZE')
  await c.end()
  process.stderr.write(`\nseeded ${name} in ${Math.round((Date.now() - t0) / 1000)} s\n`)
  await q(base, `COMMENT ON DATABASE ${name} IS '${marker}'`)
  return url
}

// ---- the indexed shape ----

interface Col {
  name: string
  type: string
  expr: string
  nullable?: boolean
  default?: string
  ref?: string
}
interface Table {
  name: string
  rows: number
  cols: Col[]
  /** The primary key's columns (['id'] unless said); none for a table Prisma makes without one. */
  pk: string[] | null
  unique: string[][]
  index: string[][]
  /** Rows per INSERT: fewer for tables with long values. */
  chunk: number
}

const enums: Record<string, string[]> = {
  Role: ['USER', 'INSTRUCTOR', 'ADMIN'],
  OrgPlan: ['FREE', 'TEAM', 'SCHOOL', 'ENTERPRISE'],
  MemberRole: ['OWNER', 'ADMIN', 'MEMBER', 'VIEWER'],
  EnrollmentStatus: ['ACTIVE', 'COMPLETED', 'DROPPED', 'EXPIRED'],
  ExamStatus: ['DRAFT', 'PUBLISHED', 'ARCHIVED'],
  QuestionKind: ['SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_TEXT', 'ESSAY'],
  AttemptStatus: ['IN_PROGRESS', 'SUBMITTED', 'GRADED', 'ABANDONED'],
  NotificationType: ['EXAM_PUBLISHED', 'ATTEMPT_GRADED', 'COMMENT_REPLY', 'MENTION', 'INVOICE_DUE', 'SYSTEM'],
  SubscriptionStatus: ['TRIALING', 'ACTIVE', 'PAST_DUE', 'CANCELED', 'UNPAID'],
  InvoiceStatus: ['DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE'],
  BillingInterval: ['MONTH', 'YEAR'],
  EmailStatus: ['QUEUED', 'SENT', 'DELIVERED', 'BOUNCED', 'COMPLAINED'],
  JobStatus: ['PENDING', 'RUNNING', 'DONE', 'FAILED'],
}

/** A cuid-like id (25 characters, 'c' and 24 hex) of row `idx` of `table`: the same from any table that refers to it. */
const cuid = (table: string, idx: string) => `('c' || substr(md5('${table}:' || (${idx})), 1, 24))`
/** Row `i` (1-based, bigint) spread over n parents: each parent gets its share, in no order tied to i. */
let salt = 0
const spread = (n: number) => `(1 + (i * ${[7919, 104729, 1299709, 15485863, 49979687][salt++ % 5]} + ${salt}) % ${n})`
/** The two halves of a unique pair over nA x nB (rows must stay <= nA * nB). */
const modIdx = (nA: number) => `(1 + (i - 1) % ${nA})`
const divIdx = (nA: number, nB: number) => `(1 + ((i - 1) / ${nA}) % ${nB})`
const nullEvery = (k: number, expr: string) => `CASE WHEN i % ${k} = 0 THEN NULL ELSE ${expr} END`

const id = (): Col => ({ name: 'id', type: 'TEXT', expr: '' }) // filled in with the table's name
const fk = (name: string, parent: string, idx: string, opt: { nullEvery?: number } = {}): Col => ({
  name,
  type: 'TEXT',
  expr: opt.nullEvery ? nullEvery(opt.nullEvery, cuid(parent, idx)) : cuid(parent, idx),
  nullable: !!opt.nullEvery,
  ref: parent,
})
const ts = (name: string, opt: { nullEvery?: number; now?: boolean; seed?: number } = {}): Col => {
  // Two years of timestamps, millisecond precision as Prisma stores them.
  const e = `(timestamptz '2024-01-01 00:00:00+00' + ((i * ${7907 + (opt.seed ?? 0) * 2} + ${opt.seed ?? 0}) % 63072000) * interval '1 second' + (i % 1000) * interval '1 millisecond')`
  return {
    name,
    type: 'TIMESTAMPTZ(3)',
    expr: opt.nullEvery ? nullEvery(opt.nullEvery, e) : e,
    nullable: !!opt.nullEvery,
    default: opt.now ? 'CURRENT_TIMESTAMP' : undefined,
  }
}
const bool = (name: string, every: number): Col => ({ name, type: 'BOOLEAN', expr: `(i % ${every} = 0)`, default: 'false' })
const en = (name: string, type: string, opt: { default?: boolean } = {}): Col => ({
  name,
  type: `"${type}"`,
  expr: `(ARRAY[${enums[type].map((v) => `'${v}'`).join(', ')}]::"${type}"[])[1 + ((i * 31) % ${enums[type].length})::int]`,
  default: opt.default ? `'${enums[type][0]}'` : undefined,
})
const num = (name: string, precision: number, scale: number, max: number, opt: { nullEvery?: number } = {}): Col => {
  const e = `round((((i * 7937) % ${max * 10 ** scale}) / ${10 ** scale}.0)::numeric, ${scale})`
  return { name, type: `DECIMAL(${precision},${scale})`, expr: opt.nullEvery ? nullEvery(opt.nullEvery, e) : e, nullable: !!opt.nullEvery }
}
const int = (name: string, expr: string, type = 'INTEGER'): Col => ({ name, type, expr })
const str = (name: string, expr: string, opt: { nullEvery?: number } = {}): Col => ({
  name,
  type: 'TEXT',
  expr: opt.nullEvery ? nullEvery(opt.nullEvery, expr) : expr,
  nullable: !!opt.nullEvery,
})
const words = ['exam', 'quiz', 'algebra', 'biology', 'history', 'chemistry', 'essay', 'review', 'final', 'midterm', 'practice', 'unit']
/** A short human-ish phrase, different per row. */
const phrase = (seed: number) =>
  `(ARRAY[${words.map((w) => `'${w}'`).join(',')}])[1 + ((i * ${seed + 3}) % ${words.length})::int] || ' ' || (ARRAY[${words.map((w) => `'${w}'`).join(',')}])[1 + ((i * ${seed + 7} / 5) % ${words.length})::int] || ' ' || (i % 997)`
/**
 * Long text of min..min+span chunks of 60 bytes: an md5 of its own seed (hex pglz can barely compress) and a
 * phrase (which it can), so a 3 kB value stays over 2 kB compressed and goes to the TOAST table.
 */
const blob = (seed: number, min: number, span: number) =>
  `(SELECT string_agg(md5(i::text || ':${seed}:' || g) || ' answered the question on page ' || g % 100, ' ') FROM generate_series(1, ${min} + (i * ${seed + 31}) % ${span + 1}) g)`
const long = (name: string, seed: number, min: number, span: number, opt: { every?: number; short?: string } = {}): Col => ({
  name,
  type: 'TEXT',
  // Every `every`-th row long, the others short (or NULL).
  expr: opt.every ? `CASE WHEN i % ${opt.every} = 0 THEN ${blob(seed, min, span)} ELSE ${opt.short ?? 'NULL'} END` : blob(seed, min, span),
  nullable: !!opt.every && !opt.short,
})
const json = (name: string, fields: string, opt: { blob?: [number, number, number]; every?: number } = {}): Col => {
  const small = `jsonb_build_object(${fields})`
  const big = opt.blob ? `jsonb_build_object(${fields}, 'body', ${blob(...opt.blob)})` : small
  return {
    name,
    type: 'JSONB',
    expr: opt.blob && opt.every ? `CASE WHEN i % ${opt.every} = 0 THEN ${big} ELSE ${small} END` : big,
    default: `'{}'`,
  }
}
const email = (name: string, domainSeed = 0) => str(name, `'user' || i || '@school' || ((i + ${domainSeed}) % 211) || '.example.edu'`)
const slug = (name: string, prefix: string) => str(name, `'${prefix}-' || i || '-' || substr(md5('${prefix}' || i), 1, 6)`)
const token = (name: string, seed: string, times = 1) =>
  str(name, Array.from({ length: times }, (_, k) => `md5('${seed}:${k}:' || i)`).join(' || '))

/** The 45 tables at ~sizeMB of COPY text: rows per MB tuned by measuring, minimums for the small tables. */
function indexedSchema(sizeMB: number): Table[] {
  salt = 0
  // Rows per MB set the mix; K scales them all to ~sizeMB of COPY text (measured: 60 MB asked, 81 MB with K = 1; 200 asked, 200.0 with this K).
  const K = 0.739
  const per = (perMB: number, min = 2) => Math.max(min, Math.round(perMB * K * sizeMB))
  const n = {
    Organization: per(2, 5),
    User: per(60, 50),
    Course: per(3, 5),
    Module: per(12, 10),
    Lesson: per(16, 20),
    Enrollment: per(300, 50),
    Exam: per(4, 5),
    ExamSection: per(12, 10),
    Question: per(25, 50),
    Tag: per(0.5, 40),
    Attempt: per(280, 100),
    Comment: per(100, 50),
    Thread: per(8, 10),
    Webhook: per(1, 5),
    Plan: 6,
    Subscription: per(2, 5),
    Invoice: per(24, 20),
    File: per(20, 20),
  }
  const t = (name: string, rows: number, cols: Col[], o: Partial<Pick<Table, 'pk' | 'unique' | 'index' | 'chunk'>> = {}): Table => ({
    name,
    rows,
    cols: cols.map((c) => (c.name === 'id' && c.expr === '' ? { ...c, expr: cuid(name, 'i') } : c)),
    pk: o.pk === undefined ? ['id'] : o.pk,
    unique: o.unique ?? [],
    index: o.index ?? [],
    chunk: o.chunk ?? 50_000,
  })
  const userAgent = `'Mozilla/5.0 (' || (ARRAY['Windows NT 10.0; Win64; x64','Macintosh; Intel Mac OS X 14_4','X11; Linux x86_64','iPhone; CPU iPhone OS 17_4'])[1 + (i % 4)::int] || ') Chrome/' || (110 + i % 15) || '.0'`
  const ip = (name: string): Col => ({
    name,
    type: 'INET',
    expr: `('10.' || (i % 256) || '.' || ((i / 256) % 256) || '.' || ((i * 7) % 256))::inet`,
    nullable: true,
  })
  return [
    t(
      '_prisma_migrations',
      40,
      [
        { name: 'id', type: 'VARCHAR(36)', expr: `(md5('migration' || i)::uuid)::text` },
        { name: 'checksum', type: 'VARCHAR(64)', expr: `md5('a' || i) || md5('b' || i)` },
        { ...ts('finished_at', { seed: 1 }), type: 'TIMESTAMPTZ' },
        { name: 'migration_name', type: 'VARCHAR(255)', expr: `'2024' || lpad(i::text, 10, '0') || '_migration_' || i` },
        str('logs', 'NULL', { nullEvery: 1 }),
        { ...ts('rolled_back_at', { nullEvery: 1 }), type: 'TIMESTAMPTZ' },
        { ...ts('started_at', { now: true }), type: 'TIMESTAMPTZ', default: 'now()' },
        { ...int('applied_steps_count', '1'), default: '0' },
      ],
      // As Prisma makes it: the primary key and no other index.
    ),
    t(
      'Organization',
      n.Organization,
      [
        id(),
        str('name', `initcap(${phrase(1)})`),
        slug('slug', 'org'),
        en('plan', 'OrgPlan', { default: true }),
        str('logoUrl', `'https://cdn.example.edu/logos/' || md5('logo' || i) || '.png'`, { nullEvery: 3 }),
        json('metadata', `'region', (ARRAY['eu','us','apac'])[1 + (i % 3)::int], 'seats', i % 500`),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 2 }),
      ],
      { unique: [['slug']], index: [['plan'], ['createdAt']] },
    ),
    t(
      'User',
      n.User,
      [
        id(),
        email('email'),
        str('name', `initcap(${phrase(2)})`, { nullEvery: 11 }),
        en('role', 'Role', { default: true }),
        ts('emailVerified', { nullEvery: 5, seed: 3 }),
        str('image', `'https://cdn.example.edu/avatars/' || md5('avatar' || i) || '.jpg'`, { nullEvery: 4 }),
        long('bio', 1, 10, 60, { every: 10 }),
        json(
          'settings',
          `'theme', (ARRAY['light','dark'])[1 + (i % 2)::int], 'locale', (ARRAY['en','de','fr','es'])[1 + (i % 4)::int], 'emails', i % 3 = 0`,
        ),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 4 }),
        ts('deletedAt', { nullEvery: 1 }),
      ],
      { unique: [['email']], index: [['createdAt'], ['role', 'createdAt']], chunk: 20_000 },
    ),
    t(
      'Account',
      per(40, 50),
      [
        id(),
        fk('userId', 'User', spread(n.User)),
        str('type', `'oauth'`),
        str('provider', `(ARRAY['google','github','azure-ad'])[1 + (i % 3)::int]`),
        str('providerAccountId', `(100000000000 + i * 7)::text`),
        token('refresh_token', 'rt', 2),
        token('access_token', 'at', 4),
        int('expires_at', `(1700000000 + i * 37)`),
        str('token_type', `'Bearer'`),
        str('scope', `'openid email profile'`),
        token('id_token', 'idt', 10),
        str('session_state', 'NULL', { nullEvery: 1 }),
      ],
      { unique: [['provider', 'providerAccountId']], index: [['userId']], chunk: 20_000 },
    ),
    t(
      'Session',
      per(120, 50),
      [
        id(),
        token('sessionToken', 'st', 2),
        fk('userId', 'User', spread(n.User)),
        ts('expires', { seed: 5 }),
        ts('createdAt', { now: true }),
        ip('ipAddress'),
        str('userAgent', userAgent),
      ],
      { unique: [['sessionToken']], index: [['userId'], ['expires']] },
    ),
    t(
      'VerificationToken',
      per(5, 10),
      [email('identifier', 5), token('token', 'vt', 2), ts('expires', { seed: 6 })],
      // As NextAuth's Prisma adapter makes it: no primary key, a unique pair.
      { pk: null, unique: [['token'], ['identifier', 'token']] },
    ),
    t(
      'Membership',
      Math.min(per(70, 50), n.Organization * n.User),
      [
        id(),
        fk('organizationId', 'Organization', modIdx(n.Organization)),
        fk('userId', 'User', divIdx(n.Organization, n.User)),
        en('role', 'MemberRole', { default: true }),
        ts('createdAt', { now: true }),
      ],
      { unique: [['organizationId', 'userId']], index: [['userId'], ['createdAt']] },
    ),
    t(
      'Invitation',
      per(5, 10),
      [
        id(),
        fk('organizationId', 'Organization', spread(n.Organization)),
        email('email', 7),
        en('role', 'MemberRole'),
        token('token', 'inv', 1),
        fk('invitedById', 'User', spread(n.User)),
        ts('expiresAt', { seed: 7 }),
        ts('acceptedAt', { nullEvery: 2, seed: 8 }),
        ts('createdAt', { now: true }),
      ],
      { unique: [['token']], index: [['organizationId'], ['email']] },
    ),
    t(
      'Course',
      n.Course,
      [
        id(),
        fk('organizationId', 'Organization', spread(n.Organization)),
        fk('ownerId', 'User', spread(n.User)),
        slug('slug', 'course'),
        str('title', `initcap(${phrase(3)})`),
        long('description', 2, 10, 50),
        bool('published', 4),
        num('price', 10, 2, 500),
        str('language', `(ARRAY['en','de','fr'])[1 + (i % 3)::int]`),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 9 }),
      ],
      { unique: [['slug']], index: [['organizationId', 'published'], ['ownerId']], chunk: 5_000 },
    ),
    t(
      'Module',
      n.Module,
      [
        id(),
        fk('courseId', 'Course', modIdx(n.Course)),
        int('position', `((i - 1) / ${n.Course})`),
        str('title', `initcap(${phrase(4)})`),
        ts('createdAt', { now: true }),
      ],
      { unique: [['courseId', 'position']], index: [['createdAt']] },
    ),
    t(
      'Lesson',
      n.Lesson,
      [
        id(),
        fk('moduleId', 'Module', spread(n.Module)),
        str('title', `initcap(${phrase(5)})`),
        slug('slug', 'lesson'),
        long('body', 3, 20, 100),
        int('durationSec', `(60 + i % 3600)`),
        str('videoUrl', `'https://video.example.edu/' || md5('video' || i)`, { nullEvery: 3 }),
        bool('published', 5),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 10 }),
      ],
      { unique: [['slug']], index: [['moduleId'], ['createdAt']], chunk: 5_000 },
    ),
    t(
      'Enrollment',
      Math.min(n.Enrollment, n.User * n.Course),
      [
        id(),
        fk('userId', 'User', modIdx(n.User)),
        fk('courseId', 'Course', divIdx(n.User, n.Course)),
        en('status', 'EnrollmentStatus', { default: true }),
        num('progress', 5, 2, 100),
        ts('enrolledAt', { now: true }),
        ts('completedAt', { nullEvery: 3, seed: 11 }),
      ],
      { unique: [['userId', 'courseId']], index: [['courseId'], ['enrolledAt']] },
    ),
    t(
      'LessonProgress',
      Math.min(per(1300, 100), n.Enrollment * n.Lesson),
      [
        id(),
        fk('enrollmentId', 'Enrollment', modIdx(n.Enrollment)),
        fk('lessonId', 'Lesson', divIdx(n.Enrollment, n.Lesson)),
        bool('completed', 2),
        ts('completedAt', { nullEvery: 2, seed: 12 }),
        int('secondsWatched', `(i * 13) % 7200`),
        ts('updatedAt', { seed: 13 }),
      ],
      { unique: [['enrollmentId', 'lessonId']], index: [['lessonId'], ['updatedAt']] },
    ),
    t(
      'Exam',
      n.Exam,
      [
        id(),
        fk('courseId', 'Course', spread(n.Course)),
        fk('authorId', 'User', spread(n.User)),
        str('title', `initcap(${phrase(6)})`),
        long('instructions', 4, 5, 40),
        en('status', 'ExamStatus', { default: true }),
        int('timeLimitSec', `(600 + (i % 12) * 300)`),
        num('passScore', 5, 2, 100),
        bool('shuffle', 2),
        json(
          'settings',
          `'showResults', i % 2 = 0, 'attemptsAllowed', 1 + i % 3, 'proctoring', (ARRAY['none','webcam','lockdown'])[1 + (i % 3)::int]`,
        ),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 14 }),
        ts('publishedAt', { nullEvery: 3, seed: 15 }),
      ],
      { index: [['courseId'], ['authorId'], ['status', 'publishedAt']], chunk: 5_000 },
    ),
    t(
      'ExamSection',
      n.ExamSection,
      [
        id(),
        fk('examId', 'Exam', modIdx(n.Exam)),
        int('position', `((i - 1) / ${n.Exam})`),
        str('title', `initcap(${phrase(7)})`),
        ts('createdAt', { now: true }),
      ],
      { unique: [['examId', 'position']], index: [['createdAt']] },
    ),
    t(
      'Question',
      n.Question,
      [
        id(),
        fk('examId', 'Exam', spread(n.Exam)),
        fk('sectionId', 'ExamSection', spread(n.ExamSection), { nullEvery: 4 }),
        en('kind', 'QuestionKind'),
        long('prompt', 5, 2, 24),
        str('explanation', `'Because ' || ${phrase(8)}`, { nullEvery: 3 }),
        num('points', 6, 2, 10),
        int('position', `(i % 50)`),
        json('meta', `'difficulty', 1 + i % 5, 'source', (ARRAY['bank','import','ai','manual'])[1 + (i % 4)::int]`),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 16 }),
      ],
      { index: [['examId', 'position'], ['sectionId'], ['kind']], chunk: 10_000 },
    ),
    t(
      'QuestionOption',
      per(200, 100),
      [
        id(),
        fk('questionId', 'Question', modIdx(n.Question)),
        str('label', `'Option ' || chr(65 + ((i - 1) / ${n.Question})::int % 26) || ': ' || ${phrase(9)}`),
        bool('isCorrect', 4),
        int('position', `((i - 1) / ${n.Question})`),
      ],
      { unique: [['questionId', 'position']], index: [['isCorrect']] },
    ),
    t('Tag', n.Tag, [id(), slug('slug', 'tag'), str('name', `initcap(${phrase(10)})`), ts('createdAt', { now: true })], {
      unique: [['slug']],
      index: [['name'], ['createdAt']],
    }),
    t(
      '_QuestionToTag',
      Math.min(per(150, 50), n.Question * n.Tag),
      [fk('A', 'Question', modIdx(n.Question)), fk('B', 'Tag', divIdx(n.Question, n.Tag))],
      // Prisma's implicit many-to-many table: no primary key, a unique pair and an index on B.
      { pk: null, unique: [['A', 'B']], index: [['B']] },
    ),
    t(
      'Attempt',
      n.Attempt,
      [
        id(),
        fk('examId', 'Exam', spread(n.Exam)),
        fk('userId', 'User', spread(n.User)),
        en('status', 'AttemptStatus', { default: true }),
        ts('startedAt', { now: true, seed: 17 }),
        ts('submittedAt', { nullEvery: 4, seed: 18 }),
        num('score', 6, 2, 100, { nullEvery: 3 }),
        ip('ipAddress'),
        json(
          'clientInfo',
          `'screen', (1024 + i % 900) || 'x' || (768 + i % 400), 'tz', (ARRAY['Europe/Berlin','America/New_York','Asia/Tokyo'])[1 + (i % 3)::int]`,
        ),
      ],
      { index: [['examId', 'userId'], ['userId'], ['submittedAt'], ['status']] },
    ),
    t(
      'Answer',
      Math.min(per(2200, 200), n.Attempt * n.Question),
      [
        id(),
        fk('attemptId', 'Attempt', modIdx(n.Attempt)),
        fk('questionId', 'Question', divIdx(n.Attempt, n.Question)),
        fk('optionId', 'QuestionOption', spread(per(200, 100)), { nullEvery: 3 }),
        str('textAnswer', `'answer ' || ${phrase(11)}`, { nullEvery: 2 }),
        bool('isCorrect', 2),
        num('scoredPoints', 6, 2, 10),
        int('timeSpentMs', `(i * 97) % 600000`),
        ts('answeredAt', { seed: 19 }),
      ],
      { unique: [['attemptId', 'questionId']], index: [['questionId'], ['optionId'], ['answeredAt']] },
    ),
    t(
      'Grade',
      Math.min(per(80, 50), n.Attempt),
      [
        id(),
        fk('attemptId', 'Attempt', 'i'),
        fk('graderId', 'User', spread(n.User), { nullEvery: 2 }),
        num('score', 6, 2, 100),
        long('feedback', 6, 8, 40, { every: 10, short: `'Good work: ' || ${phrase(12)}` }),
        ts('gradedAt', { seed: 20 }),
      ],
      { unique: [['attemptId']], index: [['graderId'], ['gradedAt']], chunk: 20_000 },
    ),
    t(
      'Rubric',
      n.Exam,
      [
        id(),
        fk('examId', 'Exam', 'i'),
        json('criteria', `'scale', 1 + i % 10, 'levels', jsonb_build_array('poor','fair','good','excellent')`, { blob: [7, 10, 40] }),
        ts('createdAt', { now: true }),
      ],
      { unique: [['examId']], index: [['createdAt']], chunk: 5_000 },
    ),
    t(
      'Certificate',
      Math.min(per(30, 20), n.User * n.Course),
      [
        id(),
        fk('userId', 'User', modIdx(n.User)),
        fk('courseId', 'Course', divIdx(n.User, n.Course)),
        str('serial', `'EF-' || lpad(i::text, 10, '0')`),
        ts('issuedAt', { now: true }),
        bool('revoked', 50),
      ],
      { unique: [['serial'], ['userId', 'courseId']], index: [['courseId'], ['issuedAt']] },
    ),
    t(
      'Comment',
      n.Comment,
      [
        id(),
        fk('lessonId', 'Lesson', spread(n.Lesson)),
        fk('authorId', 'User', spread(n.User)),
        {
          ...fk('parentId', 'Comment', ''),
          expr: `CASE WHEN i % 4 = 0 AND i > 1 THEN ${cuid('Comment', '1 + (i * 7919) % (i - 1)')} END`,
          nullable: true,
        },
        long('body', 8, 8, 40, { every: 6, short: `'I think ' || ${phrase(13)}` }),
        ts('createdAt', { now: true }),
        ts('editedAt', { nullEvery: 1 }),
        bool('deleted', 40),
      ],
      { index: [['lessonId', 'createdAt'], ['authorId'], ['parentId'], ['createdAt']], chunk: 20_000 },
    ),
    t(
      'Reaction',
      Math.min(per(400, 50), n.Comment * n.User),
      [
        id(),
        fk('commentId', 'Comment', modIdx(n.Comment)),
        fk('userId', 'User', divIdx(n.Comment, n.User)),
        str('emoji', `(ARRAY['👍','🎉','❤️','😕','🚀'])[1 + (i % 5)::int]`),
        ts('createdAt', { now: true }),
      ],
      { unique: [['commentId', 'userId', 'emoji']], index: [['userId']] },
    ),
    t(
      'Thread',
      n.Thread,
      [
        id(),
        fk('courseId', 'Course', spread(n.Course)),
        fk('authorId', 'User', spread(n.User)),
        str('title', `initcap(${phrase(14)}) || '?'`),
        bool('pinned', 20),
        bool('locked', 30),
        ts('createdAt', { now: true }),
        ts('lastPostAt', { seed: 21 }),
      ],
      { index: [['courseId', 'lastPostAt'], ['authorId']] },
    ),
    t(
      'Post',
      per(25, 20),
      [
        id(),
        fk('threadId', 'Thread', spread(n.Thread)),
        fk('authorId', 'User', spread(n.User)),
        long('body', 9, 3, 60),
        ts('createdAt', { now: true }),
        ts('editedAt', { nullEvery: 2, seed: 22 }),
      ],
      { index: [['threadId', 'createdAt'], ['authorId']], chunk: 5_000 },
    ),
    t(
      'Announcement',
      per(2, 10),
      [
        id(),
        fk('courseId', 'Course', spread(n.Course)),
        fk('authorId', 'User', spread(n.User)),
        str('title', `initcap(${phrase(15)})`),
        long('body', 10, 5, 60),
        ts('publishedAt', { nullEvery: 4, seed: 23 }),
        ts('createdAt', { now: true }),
      ],
      { index: [['courseId'], ['publishedAt']], chunk: 5_000 },
    ),
    t(
      'Notification',
      per(450, 100),
      [
        id(),
        fk('userId', 'User', spread(n.User)),
        en('type', 'NotificationType'),
        json('payload', `'title', initcap(${phrase(16)}), 'actor', ${cuid('User', spread(n.User))}`),
        ts('readAt', { nullEvery: 3, seed: 24 }),
        ts('createdAt', { now: true }),
      ],
      { index: [['userId', 'readAt'], ['userId', 'createdAt'], ['createdAt'], ['type']] },
    ),
    t(
      'AuditLog',
      per(230, 100),
      [
        id(),
        fk('organizationId', 'Organization', spread(n.Organization)),
        fk('actorId', 'User', spread(n.User), { nullEvery: 10 }),
        str('action', `(ARRAY['create','update','delete','login','export'])[1 + (i % 5)::int]`),
        str('entityType', `(ARRAY['Course','Exam','Question','User','Invoice'])[1 + (i % 5)::int]`),
        str('entityId', cuid('Question', 'i')),
        json('diff', `'field', (ARRAY['title','status','price','role'])[1 + (i % 4)::int], 'from', md5('f' || i), 'to', md5('t' || i)`, {
          blob: [11, 20, 40],
          every: 20,
        }),
        ip('ipAddress'),
        ts('createdAt', { now: true }),
      ],
      { index: [['organizationId', 'createdAt'], ['actorId'], ['entityType', 'entityId'], ['createdAt']], chunk: 20_000 },
    ),
    t(
      'ApiKey',
      per(1, 10),
      [
        id(),
        fk('organizationId', 'Organization', spread(n.Organization)),
        str('name', `initcap(${phrase(17)})`),
        token('hashedKey', 'key', 2),
        str('prefix', `'ef_' || substr(md5('p' || i), 1, 8)`),
        ts('lastUsedAt', { nullEvery: 3, seed: 25 }),
        ts('createdAt', { now: true }),
        ts('revokedAt', { nullEvery: 1 }),
      ],
      { unique: [['hashedKey']], index: [['organizationId'], ['prefix']] },
    ),
    t(
      'Webhook',
      n.Webhook,
      [
        id(),
        fk('organizationId', 'Organization', spread(n.Organization)),
        str('url', `'https://hooks.example.com/' || md5('wh' || i)`),
        token('secret', 'whs', 1),
        {
          name: 'events',
          type: 'TEXT[]',
          expr: `ARRAY['attempt.submitted','exam.published'] || CASE WHEN i % 2 = 0 THEN ARRAY['invoice.paid'] ELSE ARRAY[]::text[] END`,
        },
        bool('active', 1),
        ts('createdAt', { now: true }),
      ],
      { index: [['organizationId'], ['active']] },
    ),
    t(
      'WebhookDelivery',
      per(20, 20),
      [
        id(),
        fk('webhookId', 'Webhook', spread(n.Webhook)),
        str('event', `(ARRAY['attempt.submitted','exam.published','invoice.paid'])[1 + (i % 3)::int]`),
        int('status', `(ARRAY[200,200,200,201,204,500,502,410])[1 + (i % 8)::int]`),
        json('requestBody', `'id', md5('evt' || i), 'type', 'attempt.submitted'`, { blob: [12, 10, 50] }),
        str('responseBody', `'{"ok":' || (i % 8 < 5) || '}'`),
        int('durationMs', `(i * 17) % 3000`),
        ts('deliveredAt', { seed: 26 }),
      ],
      { index: [['webhookId', 'deliveredAt'], ['status']], chunk: 5_000 },
    ),
    t(
      'Plan',
      n.Plan,
      [
        id(),
        str('code', `(ARRAY['free','team-m','team-y','school-m','school-y','enterprise'])[i::int]`),
        str('name', `initcap(${phrase(18)})`),
        int('priceCents', `(i - 1) * 2900`),
        en('interval', 'BillingInterval'),
        json('features', `'seats', i * 10, 'proctoring', i > 3`),
        bool('active', 1),
      ],
      { unique: [['code']], index: [['active']] },
    ),
    t(
      'Subscription',
      Math.min(n.Subscription, n.Organization),
      [
        id(),
        fk('organizationId', 'Organization', 'i'),
        fk('planId', 'Plan', spread(n.Plan)),
        en('status', 'SubscriptionStatus', { default: true }),
        str('stripeSubscriptionId', `'sub_' || substr(md5('sub' || i), 1, 24)`, { nullEvery: 7 }),
        ts('currentPeriodEnd', { seed: 27 }),
        bool('cancelAtPeriodEnd', 9),
        ts('createdAt', { now: true }),
        ts('updatedAt', { seed: 28 }),
      ],
      { unique: [['organizationId'], ['stripeSubscriptionId']], index: [['planId'], ['status']] },
    ),
    t(
      'Invoice',
      n.Invoice,
      [
        id(),
        fk('subscriptionId', 'Subscription', spread(Math.min(n.Subscription, n.Organization))),
        str('number', `'INV-' || lpad(i::text, 9, '0')`),
        num('amount', 12, 2, 5000),
        str('currency', `(ARRAY['usd','eur','gbp'])[1 + (i % 3)::int]`),
        en('status', 'InvoiceStatus'),
        ts('issuedAt', { seed: 29 }),
        ts('dueAt', { seed: 30 }),
        ts('paidAt', { nullEvery: 4, seed: 31 }),
      ],
      { unique: [['number']], index: [['subscriptionId'], ['status', 'dueAt'], ['issuedAt']] },
    ),
    t(
      'InvoiceLine',
      per(60, 40),
      [
        id(),
        fk('invoiceId', 'Invoice', spread(n.Invoice)),
        str('description', `'Seats: ' || ${phrase(19)}`),
        int('quantity', `1 + i % 40`),
        num('unitAmount', 10, 2, 200),
        ts('createdAt', { now: true }),
      ],
      { index: [['invoiceId'], ['createdAt']] },
    ),
    t(
      'Payment',
      per(20, 20),
      [
        id(),
        fk('invoiceId', 'Invoice', spread(n.Invoice)),
        str('provider', `(ARRAY['stripe','paypal'])[1 + (i % 2)::int]`),
        str('providerRef', `'pi_' || substr(md5('pi' || i), 1, 24)`),
        num('amount', 12, 2, 5000),
        ts('succeededAt', { nullEvery: 6, seed: 32 }),
        str('failureReason', `'card_declined'`, { nullEvery: 1 }),
        ts('createdAt', { now: true }),
      ],
      { unique: [['providerRef']], index: [['invoiceId'], ['createdAt']] },
    ),
    t(
      'File',
      n.File,
      [
        id(),
        fk('ownerId', 'User', spread(n.User)),
        fk('organizationId', 'Organization', spread(n.Organization)),
        str('key', `'uploads/' || md5('file' || i) || '/' || i || '.pdf'`),
        str('mimeType', `(ARRAY['application/pdf','image/png','image/jpeg','video/mp4'])[1 + (i % 4)::int]`),
        int('size', `(i * 104729) % 50000000`, 'BIGINT'),
        token('checksum', 'sha', 2),
        ts('createdAt', { now: true }),
      ],
      { unique: [['key']], index: [['ownerId'], ['organizationId', 'createdAt']] },
    ),
    t(
      'Attachment',
      per(25, 20),
      [
        id(),
        fk('fileId', 'File', spread(n.File)),
        fk('questionId', 'Question', spread(n.Question), { nullEvery: 2 }),
        fk('lessonId', 'Lesson', spread(n.Lesson), { nullEvery: 3 }),
        ts('createdAt', { now: true }),
      ],
      { index: [['fileId'], ['questionId'], ['lessonId']] },
    ),
    t(
      'FeatureFlag',
      40,
      [
        id(),
        str('key', `'flag.' || ${phrase(20)} || '.' || i`),
        bool('enabled', 2),
        json('rules', `'percent', i * 2, 'orgs', jsonb_build_array(${cuid('Organization', '1 + i % 3')})`),
        ts('updatedAt', { seed: 34 }),
      ],
      { unique: [['key']], index: [['enabled']] },
    ),
    t(
      'Setting',
      Math.min(per(6, 10), n.Organization * 50),
      [
        id(),
        fk('organizationId', 'Organization', modIdx(n.Organization)),
        str('key', `'setting.' || ((i - 1) / ${n.Organization})`),
        json('value', `'enabled', i % 2 = 0, 'limit', i % 100`),
        ts('updatedAt', { seed: 35 }),
      ],
      { unique: [['organizationId', 'key']], index: [['updatedAt']] },
    ),
    t(
      'EmailLog',
      per(230, 100),
      [
        id(),
        fk('userId', 'User', spread(n.User), { nullEvery: 9 }),
        str('template', `(ARRAY['welcome','reset-password','exam-reminder','grade-ready','invoice'])[1 + (i % 5)::int]`),
        email('to', 3),
        str('subject', `initcap(${phrase(21)})`),
        en('status', 'EmailStatus'),
        str('providerMessageId', `'<' || md5('msg' || i) || '@mail.example.edu>'`),
        json('metadata', `'campaign', (ARRAY['none','spring','fall'])[1 + (i % 3)::int], 'attempt', i % 3`),
        ts('sentAt', { seed: 36 }),
        ts('openedAt', { nullEvery: 2, seed: 37 }),
      ],
      { unique: [['providerMessageId']], index: [['userId'], ['template', 'sentAt'], ['sentAt']] },
    ),
    t(
      'Job',
      per(40, 20),
      [
        id(),
        str('queue', `(ARRAY['email','grading','webhooks','exports'])[1 + (i % 4)::int]`),
        json('payload', `'ref', md5('job' || i), 'try', i % 3`, { blob: [13, 10, 30], every: 4 }),
        en('status', 'JobStatus'),
        ts('runAt', { seed: 38 }),
        int('attempts', `(i % 4)`),
        long('lastError', 14, 5, 30, { every: 10 }),
        str('lockedBy', `'worker-' || (i % 8)`, { nullEvery: 1 }),
        ts('createdAt', { now: true }),
      ],
      { index: [['queue', 'status', 'runAt'], ['createdAt']], chunk: 20_000 },
    ),
  ]
}

/**
 * The indexed shape at ~sizeMB of COPY text (1000 -> ~1 GB of COPY text, ~1.05 GB of tables and ~0.85 GB of indexes), made once and
 * kept between runs: tables, then rows in chunks (INSERT ... SELECT generate_series), then keys, indexes and
 * foreign keys (faster after the data), then VACUUM ANALYZE.
 */
export async function ensureIndexedDatabase(sizeMB: number): Promise<string> {
  if (!(sizeMB > 0)) throw new Error(`BENCH_INDEXED_MB must be a positive number, not ${sizeMB}`)
  const name = `examforge_bench_indexed_${String(sizeMB).replace('.', '_')}`
  const marker = `examforge-ops bench indexed sizeMB=${sizeMB} complete`
  const { url, ready } = await kept(name, marker)
  if (ready) return url
  const tables = indexedSchema(sizeMB)
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const t0 = Date.now()
  try {
    // Durable at the end (VACUUM and the marker); a crash halfway leaves no marker, so the next run starts over.
    await c.query(`SET synchronous_commit = off; SET maintenance_work_mem = '256MB'`)
    // A fresh public schema, owned and granted as in a new database (a Prisma database has the default one).
    await c.query(`DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner;
      GRANT USAGE ON SCHEMA public TO PUBLIC; COMMENT ON SCHEMA public IS 'standard public schema'`)
    for (const [type, values] of Object.entries(enums))
      await c.query(`CREATE TYPE ${qi(type)} AS ENUM (${values.map((v) => `'${v}'`).join(', ')})`)
    for (const t of tables) {
      const cols = t.cols.map(
        (col) => `${qi(col.name)} ${col.type}${col.nullable ? '' : ' NOT NULL'}${col.default ? ` DEFAULT ${col.default}` : ''}`,
      )
      await c.query(`CREATE TABLE ${qi(t.name)} (${cols.join(', ')})`)
    }
    const total = tables.reduce((s, t) => s + t.rows, 0)
    let done = 0
    for (const t of tables) {
      const insert = `INSERT INTO ${qi(t.name)} (${t.cols.map((col) => qi(col.name)).join(', ')})
        SELECT ${t.cols.map((col) => col.expr).join(', ')} FROM generate_series($1::bigint, $2::bigint) AS i`
      for (let lo = 1; lo <= t.rows; lo += t.chunk) {
        const hi = Math.min(t.rows, lo + t.chunk - 1)
        await c.query(insert, [lo, hi])
        done += hi - lo + 1
        process.stderr.write(`\rseeding ${name}: ${t.name} ${done}/${total} rows   `)
      }
    }
    const tData = Date.now()
    for (const t of tables) {
      const cols = (cs: string[]) => cs.map(qi).join(', ')
      const ix = (cs: string[], suffix: string) => qi(`${t.name}_${cs.join('_')}_${suffix}`)
      process.stderr.write(`\rindexing ${name}: ${t.name}                          `)
      if (t.pk) await c.query(`ALTER TABLE ${qi(t.name)} ADD CONSTRAINT ${qi(`${t.name}_pkey`)} PRIMARY KEY (${cols(t.pk)})`)
      for (const u of t.unique) await c.query(`CREATE UNIQUE INDEX ${ix(u, 'key')} ON ${qi(t.name)} (${cols(u)})`)
      for (const i of t.index) await c.query(`CREATE INDEX ${ix(i, 'idx')} ON ${qi(t.name)} (${cols(i)})`)
    }
    for (const t of tables)
      for (const col of t.cols.filter((x) => x.ref)) {
        // Prisma's defaults: RESTRICT for a required relation, SET NULL for an optional one; updates cascade.
        const onDelete = col.nullable ? 'SET NULL' : 'RESTRICT'
        await c.query(
          `ALTER TABLE ${qi(t.name)} ADD CONSTRAINT ${qi(`${t.name}_${col.name}_fkey`)} FOREIGN KEY (${qi(col.name)})
             REFERENCES ${qi(col.ref!)} (id) ON DELETE ${onDelete} ON UPDATE CASCADE`,
        )
      }
    const tIndex = Date.now()
    await c.query('VACUUM ANALYZE')
    const s = (ms: number) => Math.round(ms / 100) / 10
    process.stderr.write(
      `\nseeded ${name} in ${s(Date.now() - t0)} s (data ${s(tData - t0)} s, keys/indexes/foreign keys ${s(tIndex - tData)} s, vacuum analyze ${s(Date.now() - tIndex)} s)\n`,
    )
  } finally {
    await c.end()
  }
  await q(base, `COMMENT ON DATABASE ${name} IS '${marker}'`)
  return url
}

/** What a bench measured on: counts and sizes of the source database's user tables and indexes. */
export async function describeDatabase(url: string) {
  const [r] = await q(
    url,
    `SELECT (SELECT count(*) FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace)::int AS tables,
            (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace)::int AS indexes,
            (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace)::int AS "foreignKeys",
            (SELECT COALESCE(sum(pg_table_size(c.oid)), 0) FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace)::bigint AS "tableBytes",
            (SELECT COALESCE(sum(pg_relation_size(c.reltoastrelid)), 0) FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND c.reltoastrelid <> 0)::bigint AS "toastBytes",
            (SELECT COALESCE(sum(pg_indexes_size(c.oid)), 0) FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace)::bigint AS "indexBytes"`,
  )
  return {
    tables: r.tables as number,
    indexes: r.indexes as number,
    foreignKeys: r.foreignKeys as number,
    tableBytes: Number(r.tableBytes),
    toastBytes: Number(r.toastBytes),
    indexBytes: Number(r.indexBytes),
  }
}

/**
 * The source database the backup and restore benches measure, by BENCH_SHAPE: sandbox (default, BENCH_SCALE)
 * or indexed (BENCH_INDEXED_MB, default 1000). `shape` says which, for the result.
 */
export async function benchSource(): Promise<{ url: string; shape: Record<string, unknown> & { name: 'sandbox' | 'indexed' } }> {
  const name = process.env.BENCH_SHAPE ?? 'sandbox'
  if (name === 'indexed') {
    const sizeMB = Number(process.env.BENCH_INDEXED_MB ?? 1000)
    const url = await ensureIndexedDatabase(sizeMB)
    return { url, shape: { name, sizeMB, ...(await describeDatabase(url)) } }
  }
  if (name !== 'sandbox') throw new Error(`BENCH_SHAPE must be sandbox or indexed, not "${name}"`)
  const scale = Number(process.env.BENCH_SCALE ?? 200)
  const url = await ensureBenchDatabase(scale)
  return { url, shape: { name, scale, ...(await describeDatabase(url)) } }
}

/**
 * The sandbox schema seeded at a scale into the database `c` is connected to (an embedded cluster kept between
 * runs), once: the database's comment marks it complete, and a later run with the same scale reuses it.
 */
export async function seedSandboxOnce(c: pg.ClientBase, scale: number): Promise<void> {
  const marker = `examforge-ops bench scale=${scale} complete`
  const { rows } = await c.query(`SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = current_database()`)
  if (rows[0]?.c === marker) return
  process.stderr.write(`seeding an embedded PostgreSQL at scale ${scale} (once)...\n`)
  await seedSandbox(c, scale, { signal: new AbortController().signal, onProgress: () => {} })
  await c.query('VACUUM ANALYZE')
  const { rows: db } = await c.query(`SELECT current_database() AS d`)
  await c.query(`COMMENT ON DATABASE ${qi(db[0].d)} IS '${marker}'`)
}
