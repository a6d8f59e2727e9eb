/** Where a face keeps secrets at rest: safeStorage in Electron; the host keeps none (environment or a 0600 file). */
export interface SecretStore {
  kind: 'safeStorage' | 'none'
  save(key: string, value: string | null): Promise<void>
}

export const noSecretStore: SecretStore = {
  kind: 'none',
  async save(key) {
    throw Object.assign(
      new Error(
        `The headless host does not store secrets: set ${key} in its environment or in the 0600 file named by OPS_SECRETS_FILE, then restart it.`,
      ),
      { code: 'secret_store_unavailable' },
    )
  },
}
