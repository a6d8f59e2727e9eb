import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { safeStorageSecrets } from '../../src/main/secrets'
import { createSafeStorageStandIn } from '../helpers/electron-stand-in'

/** The Electron secret store on safeStorage's asynchronous API, with real files in a temporary folder. */
describe('secrets at rest in Electron (safeStorage)', () => {
  const dirs: string[] = []
  const folder = () => {
    const d = mkdtempSync(join(tmpdir(), 'ops-secrets-'))
    dirs.push(d)
    return d
  }
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const keyring = 'gnome_libsecret' // a real keyring (only Linux asks which one)

  it('stores secrets encrypted in a 0600 file and reads them back', async () => {
    const dir = folder()
    const cipher = createSafeStorageStandIn(keyring)
    const store = safeStorageSecrets(dir, cipher, () => {})
    await store.save('STRIPE_SECRET_KEY', 'sk_test_secret_1111')
    await store.save('AWS_SECRET_ACCESS_KEY', 'aws_secret_2222')
    await store.save('STRIPE_SECRET_KEY', null)
    const file = join(dir, 'secrets.bin')
    expect(readFileSync(file).toString()).not.toContain('aws_secret_2222')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(await store.load()).toEqual({ AWS_SECRET_ACCESS_KEY: 'aws_secret_2222' })
    expect(readdirSync(dir)).toEqual(['secrets.bin']) // no temporary file left behind
  })

  it('keeps every secret when saves overlap (one read-change-write at a time)', async () => {
    const dir = folder()
    const store = safeStorageSecrets(dir, createSafeStorageStandIn(keyring), () => {})
    const keys = Array.from({ length: 20 }, (_, i) => `SECRET_${i}`)
    await Promise.all(keys.map((k) => store.save(k, `value-${k}`)))
    expect(Object.keys(await store.load()).sort()).toEqual([...keys].sort())
  })

  it('encrypts the file again when the OS keychain reports a rotated key', async () => {
    const dir = folder()
    const cipher = createSafeStorageStandIn(keyring)
    const store = safeStorageSecrets(dir, cipher, () => {})
    await store.save('STRIPE_SECRET_KEY', 'sk_test_rotate_3333')
    const file = join(dir, 'secrets.bin')
    expect(cipher.reveal(readFileSync(file)).keyVersion).toBe(1)
    cipher.keyVersion = 2
    expect(await store.load()).toEqual({ STRIPE_SECRET_KEY: 'sk_test_rotate_3333' })
    expect(cipher.reveal(readFileSync(file))).toEqual({ keyVersion: 2, text: JSON.stringify({ STRIPE_SECRET_KEY: 'sk_test_rotate_3333' }) })
  })

  it.runIf(process.platform === 'linux')('refuses to save when safeStorage would only use basic_text, and writes nothing', async () => {
    const dir = folder()
    const warnings: string[] = []
    const store = safeStorageSecrets(dir, createSafeStorageStandIn('basic_text'), (m) => warnings.push(m))
    await expect(store.save('STRIPE_SECRET_KEY', 'sk_test_plain_4444')).rejects.toMatchObject({
      code: 'secret_store_unavailable',
      message: expect.stringMatching(/No OS keyring is available/),
    })
    expect(existsSync(join(dir, 'secrets.bin'))).toBe(false)
    expect(warnings).toHaveLength(1)
  })

  it('says what to do when the keychain is unavailable, instead of failing to start', async () => {
    const dir = folder()
    const cipher = createSafeStorageStandIn(keyring)
    const warnings: string[] = []
    const store = safeStorageSecrets(dir, cipher, (m) => warnings.push(m))
    await store.save('STRIPE_SECRET_KEY', 'sk_test_5555')
    cipher.available = false
    expect(await store.load()).toEqual({})
    expect(warnings.join('\n')).toMatch(/Set them in the environment instead/)
    await expect(store.save('STRIPE_SECRET_KEY', 'sk_test_6666')).rejects.toMatchObject({ code: 'secret_store_unavailable' })
  })
})
