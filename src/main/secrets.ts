import type { SafeStorage } from 'electron'
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SecretStore } from '../core/settings/secret-store'

/** The parts of Electron's safeStorage we use: the asynchronous API (Electron 45 deprecates the synchronous one). */
export type SecretCipher = Pick<
  SafeStorage,
  'isAsyncEncryptionAvailable' | 'encryptStringAsync' | 'decryptStringAsync' | 'getSelectedStorageBackend'
>

/**
 * Secrets at rest, encrypted with the OS keychain through safeStorage. On Linux without a keyring
 * safeStorage falls back to "basic_text" (a hard-coded key): we refuse to persist then. Files written
 * by the older synchronous API decrypt the same way; when the OS says the key has rotated, the file is
 * encrypted again with the new one. Saves run one at a time and replace the file whole (0600).
 */
export function safeStorageSecrets(
  dir: string,
  cipher: SecretCipher,
  warn: (m: string) => void,
): SecretStore & { load(): Promise<Record<string, string>> } {
  const file = join(dir, 'secrets.bin')
  const backend = () => (process.platform === 'linux' ? cipher.getSelectedStorageBackend() : 'os')

  const write = async (all: Record<string, string>): Promise<void> => {
    const encrypted = await cipher.encryptStringAsync(JSON.stringify(all))
    const tmp = `${file}.${process.pid}.tmp`
    try {
      writeFileSync(tmp, encrypted, { mode: 0o600 })
      renameSync(tmp, file)
    } finally {
      rmSync(tmp, { force: true })
    }
  }

  const load = async (): Promise<Record<string, string>> => {
    if (!existsSync(file)) return {}
    if (!(await cipher.isAsyncEncryptionAvailable())) {
      warn('Stored secrets cannot be decrypted: the OS keychain is not available. Set them in the environment instead.')
      return {}
    }
    const { result, shouldReEncrypt } = await cipher.decryptStringAsync(readFileSync(file))
    const all = JSON.parse(result) as Record<string, string>
    if (shouldReEncrypt) {
      try {
        await write(all)
      } catch (e) {
        warn(`Stored secrets could not be encrypted again with the OS keychain's new key: ${(e as Error).message}`)
      }
    }
    return all
  }

  const save = async (key: string, value: string | null): Promise<void> => {
    if (!(await cipher.isAsyncEncryptionAvailable()) || backend() === 'basic_text') {
      const msg =
        backend() === 'basic_text'
          ? 'No OS keyring is available (safeStorage would only obfuscate the secret with a fixed key), so it was not saved. Install/unlock a keyring (GNOME Keyring, KWallet) or set the variable in the environment.'
          : 'OS encryption is not available, so the secret was not saved. Set it in the environment instead.'
      warn(msg)
      throw Object.assign(new Error(msg), { code: 'secret_store_unavailable' })
    }
    const all = await load()
    if (value === null) delete all[key]
    else all[key] = value
    await write(all)
  }

  // One save at a time: each reads, changes and replaces the whole file.
  let queue: Promise<unknown> = Promise.resolve()
  return {
    kind: 'safeStorage',
    load,
    save(key, value) {
      const run = queue.then(() => save(key, value))
      queue = run.catch(() => undefined)
      return run
    },
  }
}
