import { existsSync, readFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { OpsError } from '../../shared/contract'
import { settingKeys } from '../config/keys'
import type { SecretStore } from './secret-store'

/**
 * Save one setting: secrets go to the face's secret store (never the plain file), other values to
 * settings.json, written atomically. The new value applies after a restart; an environment
 * variable of the same name still wins, and the reply says so.
 */
export async function updateSetting(
  o: { dataDir: string; secrets: SecretStore; env: Record<string, string | undefined> },
  key: string,
  value: string | null,
): Promise<{ restartRequired: true; overriddenByEnvironment: boolean }> {
  const def = settingKeys.find((k) => k.key === key)
  if (!def) throw new OpsError('unknown_setting', `There is no setting "${key}".`)
  if (value !== null && def.kind === 'number' && !Number.isFinite(Number(value)))
    throw new OpsError('invalid_input', `${key} must be a number.`)
  if (value !== null && def.kind === 'url') {
    try {
      new URL(value)
    } catch {
      throw new OpsError(
        'invalid_input',
        `${key} must be a URL (for example ${def.key === 'REDIS_URL' ? 'redis://host:6379' : 'https://host'}).`,
      )
    }
  }
  if (def.secret) {
    try {
      await o.secrets.save(key, value)
    } catch (e) {
      throw new OpsError('secret_store_unavailable', (e as Error).message)
    }
  } else {
    const file = join(o.dataDir, 'settings.json')
    const current = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {}
    if (value === null) delete current[key]
    else current[key] = value
    await mkdir(o.dataDir, { recursive: true })
    await writeFile(`${file}.tmp`, JSON.stringify(current, null, 2), { mode: 0o600 })
    await rename(`${file}.tmp`, file)
  }
  return { restartRequired: true, overriddenByEnvironment: !!o.env[key] }
}
