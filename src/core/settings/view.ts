import type { SettingView } from '../../shared/domain'
import { readSettingsFile, type Config } from '../config/config'
import { settingKeys, type SettingKey } from '../config/keys'
import { maskSecret, maskUrl } from '../log/scrub'
import { endpointGuard } from './endpoints'

/** A value as people may see it (the Settings page, the audit log): URLs without their passwords, secrets as their shape. */
export function shownValue(k: SettingKey, value: string | null): string | null {
  return !value ? null : k.kind === 'url' ? maskUrl(value) : k.secret ? maskSecret(value) : value
}

/**
 * Settings as the renderer may see them: every secret masked, URLs with their password hidden. What the
 * sandbox supplies (its database, Redis and web app) shows as such, where nothing is configured.
 */
export function settingsView(config: Config, sandbox: Partial<Record<string, string | null>> = {}): SettingView[] {
  let saved: Record<string, string> = {}
  try {
    saved = readSettingsFile(config.dataDir)
  } catch {
    // config.fileProblem says why, on every key.
  }
  return settingKeys.map((k) => {
    let value = config.raw[k.key] ?? null
    let source = config.sources[k.key] ?? 'unset'
    if (k.key === 'LOCAL_BACKUP_PATH' && !value) value = config.localBackupPath
    const fromSandbox = sandbox[k.key]
    if (!value && fromSandbox) {
      value = fromSandbox
      source = 'sandbox'
    }
    const shown = shownValue(k, value)
    const file = saved[k.key]
    const bad = config.problems.find((p) => p.key === k.key)
    // A saved value that is still bad is a problem, not a pending change.
    const stillBad = bad && file === bad.value
    const pending = !k.secret && !stillBad && file !== undefined && file !== config.raw[k.key] && source !== 'environment' ? file : null
    const problem = stillBad
      ? `The settings file ${bad.file} holds "${bad.value}", which cannot be used: ${bad.message} The console runs with the default instead; save a valid value or clear it.`
      : !k.secret && config.fileProblem
        ? config.fileProblem
        : null
    return {
      key: k.key,
      label: k.label,
      value: shown,
      secret: k.secret,
      source,
      pending,
      problem,
      guard: endpointGuard(k.key, config.raw),
    }
  })
}
