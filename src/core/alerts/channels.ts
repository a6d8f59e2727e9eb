/**
 * The channels configuration names: ALERT_WEBHOOK_URL (Alertmanager format), ALERT_SLACK_WEBHOOK_URL,
 * ALERT_DISCORD_WEBHOOK_URL, SMTP_URL with ALERT_EMAIL_TO (or ADMIN_EMAILS), and the desktop (on unless
 * ALERT_DESKTOP=off), each with the default grouping times (ALERT_GROUP_WAIT, ALERT_GROUP_INTERVAL,
 * ALERT_REPEAT_INTERVAL), which the rules file's `channels:` section can override per channel.
 */
import type { Config } from '../config/config'
import type { Channel } from './notify'

export function alertChannels(config: Config): Channel[] {
  const a = config.alerts
  const times = { groupWaitMs: a.groupWaitMs, groupIntervalMs: a.groupIntervalMs, repeatIntervalMs: a.repeatIntervalMs }
  const out: Channel[] = []
  if (a.desktop) out.push({ name: 'desktop', type: 'desktop', ...times })
  if (a.webhookUrl) out.push({ name: 'webhook', type: 'webhook', url: a.webhookUrl, ...times })
  if (a.slackUrl) out.push({ name: 'slack', type: 'slack', url: a.slackUrl, ...times })
  if (a.discordUrl) out.push({ name: 'discord', type: 'discord', url: a.discordUrl, ...times })
  if (a.smtpUrl && a.emailTo.length) out.push({ name: 'email', type: 'email', url: a.smtpUrl, to: a.emailTo, ...times })
  return out
}
