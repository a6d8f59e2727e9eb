import { existsSync, readFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { OpsError } from '../../shared/contract'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import { settingKeys, type SettingKey } from '../config/keys'
import { checkSettingValue } from '../config/parse'
import { checkEndpointChange } from './endpoints'
import type { SecretStore } from './secret-store'
import { shownValue } from './view'

/**
 * A change asked for from the UI (settings.update): checked against what an endpoint that receives a
 * secret requires (see endpoints.ts), saved, and recorded in the audit log with the old and new values
 * as the Settings page shows them (secrets masked). A refused change is recorded too, with why.
 */
export async function changeSetting(
  o: { config: Config; secrets: SecretStore; env: Record<string, string | undefined>; audit: AuditLog },
  input: { key: string; value: string | null; secret?: string },
  actor: string,
): Promise<{ restartRequired: true; overriddenByEnvironment: boolean }> {
  const def = settingKeys.find((k) => k.key === input.key)
  const details = def
    ? { old: shownValue(def, o.config.raw[def.key] ?? null), new: shownValue(def, input.value), confirmed: !!input.secret }
    : {}
  try {
    validateSetting(input.key, input.value)
    checkEndpointChange(input.key, input.value, input.secret, o.config.raw)
    const r = await updateSetting({ dataDir: o.config.dataDir, secrets: o.secrets, env: o.env }, input.key, input.value)
    await o.audit.record({ actor, action: 'settings.update', target: input.key, outcome: 'saved', details })
    return r
  } catch (e) {
    const code = e instanceof OpsError ? e.code : 'internal'
    await o.audit.record({ actor, action: 'settings.update', target: input.key, outcome: `refused (${code})`, details })
    throw e
  }
}

/** The setting named, with the value checked by the parser the configuration loader uses (config/parse.ts); a clear error otherwise. */
export function validateSetting(key: string, value: string | null): SettingKey {
  const def = settingKeys.find((k) => k.key === key)
  if (!def) throw new OpsError('unknown_setting', `There is no setting "${key}".`)
  checkSettingValue(key, value)
  return def
}

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
  const def = validateSetting(key, value)
  if (def.secret) {
    try {
      await o.secrets.save(key, value)
    } catch (e) {
      throw new OpsError('secret_store_unavailable', (e as Error).message)
    }
  } else {
    const file = join(o.dataDir, 'settings.json')
    let current: Record<string, string> = {}
    if (existsSync(file)) {
      try {
        current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>
      } catch (e) {
        // Never overwrite what cannot be read: the operator's other settings are in it.
        throw new OpsError(
          'bad_settings',
          `The settings file ${file} is not valid JSON (${(e as Error).message}), so nothing was saved. Fix or delete the file, then save again.`,
        )
      }
    }
    if (value === null) delete current[key]
    else current[key] = value
    await mkdir(o.dataDir, { recursive: true })
    await writeFile(`${file}.tmp`, JSON.stringify(current, null, 2), { mode: 0o600 })
    await rename(`${file}.tmp`, file)
  }
  return { restartRequired: true, overriddenByEnvironment: !!o.env[key] }
}
