import react from '@vitejs/plugin-react'
import { defineConfig } from 'electron-vite'

export default defineConfig({
  main: {
    build: { rollupOptions: { input: { index: 'src/main/index.ts' } } },
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
