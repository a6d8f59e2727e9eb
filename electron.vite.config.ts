import react from '@vitejs/plugin-react'
import { defineConfig } from 'electron-vite'

export default defineConfig({
  main: {
    // zstd-napi (a native addon) stays a require from node_modules, never bundled; the app loads it only where
    // Electron's zlib lacks zstd (src/core/deps/lazy.ts), and electron-builder unpacks its .node file.
    build: { rollupOptions: { input: { index: 'src/main/index.ts' }, external: ['zstd-napi'] } },
  },
  preload: {
    // A sandboxed preload can require nothing but "electron": bundle its dependencies (zod via the contract).
    build: { externalizeDeps: false, rollupOptions: { input: { index: 'src/preload/index.ts' }, output: { format: 'cjs' } } },
  },
  renderer: {
    root: 'src/renderer',
    build: { rollupOptions: { input: 'src/renderer/index.html' } },
    plugins: [react()],
  },
})
