import { safeStorage } from 'electron'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SecretStore } from '../core/settings/secret-store'

/**
 * Secrets at rest, encrypted with the OS keychain through safeStorage. On Linux without a
 * keyring safeStorage falls back to "basic_text" (a hard-coded key): we refuse to persist then.
 */
export function safeStorageSecrets(dir: string, warn: (m: string) => void): SecretStore & { load(): Record<string, string> } {
  const file = join(dir, 'secrets.bin')
  const backend = () => (process.platform === 'linux' ? safeStorage.getSelectedStorageBackend() : 'os')
  const usable = () => safeStorage.isEncryptionAvailable() && backend() !== 'basic_text'
  const load = (): Record<string, string> => {
    if (!existsSync(file)) return {}
    if (!safeStorage.isEncryptionAvailable()) {
      warn('Stored secrets cannot be decrypted: the OS keychain is not available. Set them in the environment instead.')
      return {}
    }
    return JSON.parse(safeStorage.decryptString(readFileSync(file))) as Record<string, string>
  }
  return {
    kind: 'safeStorage',
    load,
    async save(key, value) {
      if (!usable()) {
        const msg =
          backend() === 'basic_text'
            ? 'No OS keyring is available (safeStorage would only obfuscate the secret with a fixed key), so it was not saved. Install/unlock a keyring (GNOME Keyring, KWallet) or set the variable in the environment.'
            : 'OS encryption is not available, so the secret was not saved. Set it in the environment instead.'
        warn(msg)
        throw Object.assign(new Error(msg), { code: 'secret_store_unavailable' })
      }
      const all = load()
      if (value === null) delete all[key]
      else all[key] = value
      writeFileSync(file, safeStorage.encryptString(JSON.stringify(all)), { mode: 0o600 })
    },
  }
}
