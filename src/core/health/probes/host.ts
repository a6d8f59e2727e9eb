import os from 'node:os'
import { systemInformation } from '../../deps/lazy'
import { degraded, formatBytes, ok, type Probe } from '../probe'

/** This machine: uptime, memory and load. */
export function hostProbe(o: { memoryWarnRatio?: number; loadWarnPerCore?: number } = {}): Probe {
  return {
    id: 'host',
    label: `Host ${os.hostname()}`,
    howToConfigure: '',
    configured: () => true,
    async run() {
      const mem = await (await systemInformation()).mem()
      const cores = os.cpus().length || 1
      const [load1] = os.loadavg()
      // "available" counts reclaimable cache, as `free` does.
      const usedRatio = 1 - mem.available / mem.total
      const details = {
        hostname: os.hostname(),
        uptime: `${Math.floor(os.uptime() / 86400)}d ${Math.floor((os.uptime() % 86400) / 3600)}h`,
        uptimeS: Math.round(os.uptime()),
        memoryUsed: formatBytes(mem.total - mem.available),
        memoryTotal: formatBytes(mem.total),
        memoryUsedPercent: Math.round(usedRatio * 100),
        load1: Math.round(load1 * 100) / 100,
        cores,
      }
      if (usedRatio >= (o.memoryWarnRatio ?? 0.9))
        return degraded(`Memory is ${details.memoryUsedPercent}% used (${details.memoryUsed} of ${details.memoryTotal}).`, details)
      if (load1 / cores >= (o.loadWarnPerCore ?? 2))
        return degraded(`Load ${details.load1} on ${cores} cores: the machine is overloaded.`, details)
      return ok(`Up ${details.uptime}; memory ${details.memoryUsedPercent}%, load ${details.load1} on ${cores} cores.`, details)
    },
  }
}
