/**
 * Source maps per release: uploaded (the CLI's `errors sourcemaps upload --release R <dir>` or the
 * ingest's upload route), kept in `<data folder>/errors/sourcemaps/<release>/` (folders 0700, files
 * 0600: a map can hold the whole source), and applied at ingest before grouping, so a minified frame
 * `a.b (main.3f2a.js:1:2345)` becomes `QuizService.grade (src/quiz.ts:42)` with its source context and
 * groups by its real names.
 *
 * A frame is matched to a map by its file's base name (`main.3f2a.js` ↔ `main.3f2a.js.map`, or a map
 * whose `file` says so). Parsed maps are cached (a few dozen, oldest evicted).
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { SourceMapConsumer, type RawSourceMap } from 'source-map'
import { LIMITS, type ErrorEvent, type Frame } from './event'

const safe = (s: string) => s.replace(/[^A-Za-z0-9._@+-]/g, '_').slice(0, 200)

export class SourceMaps {
  private cache = new Map<string, Promise<SourceMapConsumer | null>>()

  constructor(private dir: string) {}

  private releaseDir(release: string) {
    return join(this.dir, safe(release))
  }

  /** Throws when the text is not a version 3 source map. */
  static check(name: string, text: string): void {
    let parsed: { version?: unknown; mappings?: unknown }
    try {
      parsed = JSON.parse(text) as { version?: unknown; mappings?: unknown }
    } catch {
      throw new Error(`${name} is not a source map (it is not JSON).`)
    }
    if (parsed.version !== 3 || typeof parsed.mappings !== 'string') throw new Error(`${name} is not a version 3 source map.`)
  }

  /** Keep one map (its JSON text) for a release; the name is the minified file's map name. */
  save(release: string, name: string, text: string): void {
    SourceMaps.check(name, text)
    const dir = this.releaseDir(release)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    chmodSync(this.dir, 0o700)
    const file = join(dir, safe(basename(name).endsWith('.map') ? basename(name) : `${basename(name)}.map`))
    writeFileSync(file, text, { mode: 0o600 })
    chmodSync(file, 0o600)
    for (const k of [...this.cache.keys()]) if (k.startsWith(`${release}\n`)) this.evict(k)
  }

  list(release: string): string[] {
    const dir = this.releaseDir(release)
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.map')) : []
  }

  private evict(key: string) {
    void this.cache.get(key)?.then((c) => c?.destroy())
    this.cache.delete(key)
  }

  private consumer(release: string, file: string): Promise<SourceMapConsumer | null> {
    const key = `${release}\n${file}`
    let c = this.cache.get(key)
    if (!c) {
      c = (async () => {
        const path = join(this.releaseDir(release), safe(`${basename(file)}.map`))
        if (!existsSync(path)) return null
        try {
          return await new SourceMapConsumer(JSON.parse(readFileSync(path, 'utf8')) as RawSourceMap)
        } catch {
          return null
        }
      })()
      this.cache.set(key, c)
      if (this.cache.size > 40) this.evict(this.cache.keys().next().value!)
    }
    return c
  }

  /** Frames of the event turned into original positions where a map of its release covers them. */
  async apply(ev: ErrorEvent): Promise<ErrorEvent> {
    if (!ev.release || !existsSync(this.releaseDir(ev.release))) return ev
    for (const e of ev.exceptions) {
      e.frames = await Promise.all(e.frames.map((f) => this.frame(ev.release!, f)))
    }
    return ev
  }

  private async frame(release: string, f: Frame): Promise<Frame> {
    const file = (f.filename ?? f.absPath ?? '').replace(/[?#].*$/, '')
    if (!file || f.lineno == null) return f
    const c = await this.consumer(release, file)
    if (!c) return f
    const pos = c.originalPositionFor({ line: f.lineno, column: Math.max(0, (f.colno ?? 1) - 1) })
    if (!pos.source || pos.line == null) return f
    const content = c.sourceContentFor(pos.source, true)
    const lines = content ? content.split('\n') : null
    const at = pos.line - 1
    return {
      ...f,
      filename: pos.source.replace(/^webpack:\/\/\/?/, ''),
      absPath: pos.source,
      function: pos.name ?? f.function,
      lineno: pos.line,
      colno: pos.column == null ? null : pos.column + 1,
      inApp: !/node_modules/.test(pos.source),
      contextLine: lines?.[at]?.slice(0, 1024) ?? null,
      preContext: lines ? lines.slice(Math.max(0, at - LIMITS.contextLines), at).map((l) => l.slice(0, 1024)) : [],
      postContext: lines ? lines.slice(at + 1, at + 1 + LIMITS.contextLines).map((l) => l.slice(0, 1024)) : [],
    }
  }

  close(): void {
    for (const k of [...this.cache.keys()]) this.evict(k)
  }
}
