import pg from 'pg'
import { seedSandbox } from '../../src/core/sandbox/seed'

/** The ExamForge-like sandbox schema and data in a test database, at a small scale. */
export async function seedExamforge(url: string, scale = 0.2): Promise<void> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await seedSandbox(c, scale, { signal: new AbortController().signal, onProgress: () => {} })
  } finally {
    await c.end()
  }
}

export const noProgress = () => ({ signal: new AbortController().signal, onProgress: () => {} })
