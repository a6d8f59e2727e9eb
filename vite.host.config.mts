import { builtinModules } from 'node:module'
import { defineConfig } from 'vite'
import pkg from './package.json'

/** The headless host and CLI: plain Node (CommonJS), dependencies left to node_modules. */
export default defineConfig({
  build: {
    ssr: true,
    target: 'node20',
    outDir: 'out/host',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    rollupOptions: {
      input: {
        cli: 'src/host/cli.ts',
        bench: 'bench/backup.ts',
        'bench-restore': 'bench/restore.ts',
        'bench-metrics': 'bench/metrics.ts',
        'bench-collect': 'bench/collect.ts',
        'bench-alerts': 'bench/alerts.ts',
        'bench-errors': 'bench/errors.ts',
        'bench-replay': 'bench/replay.ts',
        'bench-incidents': 'bench/incidents.ts',
        'bench-catalog': 'bench/catalog.ts',
        'bench-soak': 'bench/soak.ts',
      },
      external: [...builtinModules, ...builtinModules.map((m) => `node:${m}`), ...Object.keys(pkg.dependencies)],
      output: { format: 'cjs', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
})
