'use strict'
// Where the Electron binary is, without fetching it. The `electron` package (45) no longer downloads its
// binary at install: `require('electron')` fetches it on first use (and throws without internet).
// Callers that only want to know whether it is there (npm start, the end-to-end specs) ask here.
const { existsSync, readFileSync } = require('node:fs')
const { dirname, join } = require('node:path')

/** The electron package's folder, or null when it is not installed. */
function electronPackageDir() {
  try {
    return dirname(require.resolve('electron/package.json', { paths: [join(__dirname, '..')] }))
  } catch {
    return null
  }
}

/** The path of the downloaded Electron binary, or null when none has been downloaded yet. */
function installedElectron() {
  const dir = electronPackageDir()
  if (!dir) return null
  let relative = null
  try {
    relative = readFileSync(join(dir, 'path.txt'), 'utf8')
  } catch {
    relative = null
  }
  // As the electron package itself resolves it (ELECTRON_OVERRIDE_DIST_PATH wins).
  const binary = process.env.ELECTRON_OVERRIDE_DIST_PATH
    ? join(process.env.ELECTRON_OVERRIDE_DIST_PATH, relative || 'electron')
    : relative
      ? join(dir, 'dist', relative)
      : null
  return binary && existsSync(binary) ? binary : null
}

module.exports = { electronPackageDir, installedElectron }
