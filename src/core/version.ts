// A named import lets the bundler keep the version alone, not the whole package.json.
import { version as pkgVersion } from '../../package.json'

export const version: string = pkgVersion
